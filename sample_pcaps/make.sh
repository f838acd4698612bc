#!/usr/bin/env bash
# Regenerates the sample captures in this directory from real traffic: SIPp callers (UAC) and
# callees / registrars (UAS) talk over the loopback interface of private network namespaces
# created here, tcpdump writes what crosses it, and sipp_counts.py turns SIPp's own logs into
# expected.json (the numbers tests/test_samples.py checks sipstats against).
#
# Needs root, sipp (Debian: sip-tester), tcpdump, iproute2 and python3.  Nothing leaves the
# namespaces: they have no interface but their own loopback, and every address is 127.x.
# Every process is bounded (sipp -m / -timeout, `timeout`), stopped by its PID, and every
# namespace is deleted on exit.  Re-running replaces the captures (outcomes are drawn at random,
# so the numbers change; expected.json always describes the captures beside it).
#
#   sudo sample_pcaps/make.sh                 # all samples
#   sudo sample_pcaps/make.sh outage mixed    # some of them
#   sudo KEEP_LOGS=/tmp/logs sample_pcaps/make.sh   # keep SIPp's logs and captures there
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SC="$HERE/scenarios"
ALL=(basic mixed register tcp outage)
if [ $# -gt 0 ]; then SAMPLES=("$@"); else SAMPLES=("${ALL[@]}"); fi

log() { printf '[make.sh %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (ip netns, tcpdump)"
for tool in sipp tcpdump ip python3 timeout; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install sip-tester tcpdump iproute2)"
done
for s in "${SAMPLES[@]}"; do
  [[ " ${ALL[*]} " == *" $s "* ]] || die "unknown sample '$s' (known: ${ALL[*]})"
done

if [ -n "${KEEP_LOGS:-}" ]; then
  WORK="$KEEP_LOGS"; mkdir -p "$WORK"
else
  WORK="$(mktemp -d /tmp/sipstats-samples.XXXXXX)"
fi

# stop_jobs: our own background jobs that still run (after an error): tcpdump and sipp, by PID
stop_jobs() {
  local pid
  for pid in $(jobs -p); do kill -TERM "$pid" 2>/dev/null || true; done
}
cleanup() {
  local s
  stop_jobs
  for s in "${SAMPLES[@]}"; do ip netns del "samples_$s" 2>/dev/null || true; done
  [ -n "${KEEP_LOGS:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ns_new NAME: a fresh namespace with only its loopback up (127.0.0.0/8 is local there)
ns_new() {
  ip netns del "$1" 2>/dev/null || true
  ip netns add "$1"
  ip -n "$1" link set lo up
}

# cap_start NS PCAP FILTER...: tcpdump on the namespace's loopback, packet-buffered (-U) and
# in immediate mode, so that a packet sent just before tcpdump is stopped is not left in the ring
cap_start() {
  local ns="$1" out="$2"; shift 2
  ip netns exec "$ns" timeout -s TERM 240 tcpdump -i lo -s 0 -U --immediate-mode -w "$out" "$@" 2>"$out.log" &
  CAP_PID=$!
  local i
  for i in $(seq 50); do grep -q "listening on" "$out.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "listening on" "$out.log" || die "tcpdump did not start: $(cat "$out.log")"
  sleep 0.3
}

cap_stop() {
  sleep 1
  kill -TERM "$CAP_PID" 2>/dev/null || true
  wait "$CAP_PID" 2>/dev/null || true
  grep -E "packets (captured|dropped by kernel)" "$1.log" >&2 || true
}

# sipp_start NS DIR NAME sipp-args...: one sipp in the background, its logs in DIR (sets SIPP_PID)
SIPP_TRACE=(-trace_stat -fd 1 -trace_counts -trace_msg -trace_logs -trace_err -nostdin)
sipp_start() {
  local ns="$1" dir="$2" name="$3"; shift 3
  mkdir -p "$dir"
  ( cd "$dir" && exec ip netns exec "$ns" timeout 200 sipp "$@" "${SIPP_TRACE[@]}" >"$name.stdout.txt" 2>&1 ) &
  SIPP_PID=$!
}

# sipp_wait PID DIR NAME: wait for a sipp we started; its exit status goes to DIR/NAME.rc.
# Every scenario ends each call on a path it planned (a 486 is a planned outcome), so anything
# but 0 (a failed call, a bad scenario, a socket error, killed by timeout) is a broken run.
sipp_wait() {
  local rc=0
  wait "$1" || rc=$?
  echo "$rc" >"$2/$3.rc"
  log "sipp $3 exited with $rc"
  [ "$rc" = 0 ] || die "sipp $3 failed (rc $rc): $(tail -n 5 "$2/$3.stdout.txt")"
}

wait_udp() {  # wait_udp NS ADDR:PORT : until a UAS listens
  local i
  for i in $(seq 50); do
    ip netns exec "$1" ss -lnuH | grep -q " $2 " && return 0
    sleep 0.1
  done
  die "nothing listens on udp $2 in $1"
}
wait_tcp() {
  local i
  for i in $(seq 50); do
    ip netns exec "$1" ss -lntH | grep -q " $2 " && return 0
    sleep 0.1
  done
  die "nothing listens on tcp $2 in $1"
}

# callee / caller knobs (see the comments at the top of scenarios/callee.xml and caller.xml)
callee_args() {  # callee_args P200 P486 P480 P503 P503N P603 WAIT_RETRY [T0 OUT_FROM OUT_TO]
  echo -sf "$SC/callee.xml" -set p200 "$1" -set p486 "$2" -set p480 "$3" -set p503 "$4" \
    -set p503n "$5" -set p603 "$6" -set wait_retry "$7" \
    -set t0 "${8:-0}" -set out_from "${9:-0}" -set out_to "${10:-0}" \
    -key ra486 4 -key ra480 "6;duration=3600" -key ra503 8 -key ra_outage 10
}
caller_args() {  # caller_args P_HONOUR P_EARLY P_NORA MAX_RETRIES
  echo -sf "$SC/caller.xml" -inf "$SC/callees.csv" \
    -set p_honour "$1" -set p_early "$2" -set p_nora "$3" -set max_retries "$4"
}

# check_capture SAMPLE: tcpdump lost nothing, and over UDP (one message per packet) it saw
# exactly the messages the sipps logged as sent
check_capture() {
  local log="$WORK/$1.pcap.log" captured dropped sent
  captured=$(sed -n 's/^\([0-9]*\) packets captured$/\1/p' "$log")
  dropped=$(sed -n 's/^\([0-9]*\) packets dropped by kernel$/\1/p' "$log")
  [ "$dropped" = 0 ] || die "$1: tcpdump dropped $dropped packets"
  [ "$1" = tcp ] && return 0
  sent=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["sip_messages"])' \
    "$WORK/expected.json" "$1.pcap")
  [ "$captured" = "$sent" ] || die "$1: $captured packets captured, but the sipps sent $sent messages"
}

# ------------------------------------------------------------------------------ samples
basic() {  # 40 answered calls, 4 per second
  local ns=samples_basic w="$WORK/basic" a=127.0.71.10 b=127.0.71.20
  ns_new $ns
  cap_start $ns "$w.pcap" udp port 5060
  # shellcheck disable=SC2046
  sipp_start $ns "$w/callee" callee $(callee_args 100 0 0 0 0 0 0) -i $b -p 5060 -bind_local -m 40 -timeout 120s
  local uas=$SIPP_PID; wait_udp $ns $b:5060
  # shellcheck disable=SC2046
  sipp_start $ns "$w/caller" caller $b:5060 $(caller_args 0 0 0 0) -i $a -p 5060 -bind_local \
    -m 40 -r 4 -l 50 -timeout 120s
  sipp_wait "$SIPP_PID" "$w/caller" caller
  sipp_wait "$uas" "$w/callee" callee
  cap_stop "$w.pcap"
}

mixed() {  # 100 original calls at 4 per second, failures with Retry-After, callers retrying
  local ns=samples_mixed w="$WORK/mixed" a=127.0.72.10 b=127.0.72.20
  ns_new $ns
  cap_start $ns "$w.pcap" udp port 5060
  # shellcheck disable=SC2046
  sipp_start $ns "$w/callee" callee $(callee_args 45 15 10 10 6 6 1) -i $b -p 5060 -bind_local \
    -m 100 -timeout 150s
  local uas=$SIPP_PID; wait_udp $ns $b:5060
  # shellcheck disable=SC2046
  sipp_start $ns "$w/caller" caller $b:5060 $(caller_args 40 35 50 2) -i $a -p 5060 -bind_local \
    -m 100 -r 4 -l 200 -timeout 150s
  sipp_wait "$SIPP_PID" "$w/caller" caller
  sipp_wait "$uas" "$w/callee" callee
  cap_stop "$w.pcap"
}

tcp() {  # 50 calls over one TCP connection (sipp -t t1), mixed outcomes, no retries
  local ns=samples_tcp w="$WORK/tcp" a=127.0.74.10 b=127.0.74.20
  ns_new $ns
  cap_start $ns "$w.pcap" tcp port 5060
  # shellcheck disable=SC2046
  sipp_start $ns "$w/callee" callee $(callee_args 60 15 5 10 0 5 0) -t t1 -i $b -p 5060 -bind_local \
    -m 50 -timeout 120s
  local uas=$SIPP_PID; wait_tcp $ns $b:5060
  # shellcheck disable=SC2046
  sipp_start $ns "$w/caller" caller $b:5060 $(caller_args 0 0 0 0) -t t1 -i $a -p 5062 -bind_local \
    -m 50 -r 5 -l 100 -timeout 120s
  sipp_wait "$SIPP_PID" "$w/caller" caller
  sipp_wait "$uas" "$w/callee" callee
  cap_stop "$w.pcap"
}

register() {  # 60 registrations: 401 challenge then 200, or 403 on a wrong password
  local ns=samples_register w="$WORK/register" a=127.0.73.10 b=127.0.73.20
  ns_new $ns
  cap_start $ns "$w.pcap" udp port 5060
  sipp_start $ns "$w/registrar" registrar -sf "$SC/registrar.xml" -i $b -p 5060 -bind_local \
    -m 60 -timeout 120s
  local uas=$SIPP_PID; wait_udp $ns $b:5060
  sipp_start $ns "$w/phone" phone $b:5060 -sf "$SC/phone.xml" -set p_badpass 20 -i $a -p 5060 \
    -bind_local -m 60 -r 5 -l 60 -timeout 120s
  sipp_wait "$SIPP_PID" "$w/phone" phone
  sipp_wait "$uas" "$w/registrar" registrar
  cap_stop "$w.pcap"
}

# The post-mortem story, ~60 s: site A (127.0.75.10) calls pbx-a (127.0.75.20) at 3 calls/s and
# site B (127.0.75.11) calls pbx-b (127.0.75.30) at 1 call/s.  From 18 s to 36 s after it
# started, pbx-a answers every INVITE with "503 Service Unavailable / Retry-After: 10"; most of
# site A's callers retry after 1-5 s (too early), some wait the 10 s, a few give up; up to 3
# retries each.  pbx-b stays healthy.
outage() {
  local ns=samples_outage w="$WORK/outage"
  local site_a=127.0.75.10 site_b=127.0.75.11 pbx_a=127.0.75.20 pbx_b=127.0.75.30 t0
  ns_new $ns
  cap_start $ns "$w.pcap" udp port 5060
  t0=$(date +%s)
  # shellcheck disable=SC2046
  sipp_start $ns "$w/pbx_a" pbx_a $(callee_args 88 6 3 0 0 3 1 "$t0" 18 36) -i $pbx_a -p 5060 \
    -bind_local -m 135 -timeout 150s
  local uas_a=$SIPP_PID
  # shellcheck disable=SC2046
  sipp_start $ns "$w/pbx_b" pbx_b $(callee_args 90 6 2 0 0 2 1) -i $pbx_b -p 5060 -bind_local \
    -m 45 -timeout 150s
  local uas_b=$SIPP_PID
  wait_udp $ns $pbx_a:5060; wait_udp $ns $pbx_b:5060
  # shellcheck disable=SC2046
  sipp_start $ns "$w/site_a" site_a $pbx_a:5060 $(caller_args 20 70 0 3) -i $site_a -p 5060 \
    -bind_local -m 135 -r 3 -l 300 -timeout 150s
  local uac_a=$SIPP_PID
  # shellcheck disable=SC2046
  sipp_start $ns "$w/site_b" site_b $pbx_b:5060 $(caller_args 50 30 0 2) -i $site_b -p 5060 \
    -bind_local -m 45 -r 1 -l 100 -timeout 150s
  sipp_wait "$uac_a" "$w/site_a" site_a
  sipp_wait "$SIPP_PID" "$w/site_b" site_b
  sipp_wait "$uas_a" "$w/pbx_a" pbx_a
  sipp_wait "$uas_b" "$w/pbx_b" pbx_b
  cap_stop "$w.pcap"
}

# make_sample NAME: traffic, capture, SIPp's counts into $WORK/expected.json and the capture
# check, in a subshell that stops its own processes and deletes its namespace however it ends
make_sample() {
  rm -rf "${WORK:?}/$1" "$WORK/$1.pcap" "$WORK/$1.pcap.log"
  (
    trap 'stop_jobs; ip netns del "samples_$1" 2>/dev/null || true' EXIT
    trap 'exit 130' INT TERM
    "$1"
    python3 "$HERE/sipp_counts.py" "$WORK/$1" "$WORK/$1.pcap" "$WORK/expected.json"
    check_capture "$1"
  )
}

rm -f "$WORK/expected.json"
[ ! -f "$HERE/expected.json" ] || cp "$HERE/expected.json" "$WORK/expected.json"
for s in "${SAMPLES[@]}"; do
  log "making $s.pcap"
  # random traffic on a busy machine can go wrong once (a sipp call failing on a timer);
  # a second failure stops everything.  errexit stays on inside: no `if` around the call.
  set +e; make_sample "$s"; rc=$?; set -e
  if [ "$rc" != 0 ]; then
    [ "$rc" != 130 ] || exit 130
    log "WARNING: $s failed (see above); making it once more"
    set +e; make_sample "$s"; rc=$?; set -e
    [ "$rc" = 0 ] || die "$s failed twice"
  fi
  install -m 0644 "$WORK/$s.pcap" "$HERE/$s.pcap"
  install -m 0644 "$WORK/expected.json" "$HERE/expected.json"
  log "$s.pcap: $(stat -c %s "$HERE/$s.pcap") bytes"
done
log "done"
