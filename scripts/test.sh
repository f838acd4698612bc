#!/usr/bin/env bash
# Install everything the test suite needs (Debian packages + a virtualenv), then run it:
# lint, format check, type check and pytest. Safe to run again; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package that provides it
declare -A packages=(
  [tshark]=tshark [sipp]=sip-tester [tcpdump]=tcpdump [chromium]=chromium
  [nft]=nftables [ip]=iproute2 [mergecap]=wireshark-common
)
missing=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${packages[$cmd]}")
done
# Chinese reports (--lang zh) need a CJK font for the figures and the browser test
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-noto-cjk)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'

.venv/bin/ruff check sipstats tests benchmarks
.venv/bin/ruff format --check sipstats tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
