#!/usr/bin/env bash
# Build the three C extensions with AddressSanitizer + UndefinedBehaviorSanitizer and fuzz them:
# the C walk and SIP parser tests, the whole fuzz regression corpus and a hypothesis campaign
# of FUZZ_EXAMPLES mutants per target, all through the sanitized build. Any report (heap
# overflow, signed overflow, misaligned load...) stops the run with a non-zero exit.
#
#   bash scripts/sanitize.sh            # FUZZ_EXAMPLES=2000 by default
#
# Needs gcc and the project's virtualenv (scripts/test.sh makes it). The build goes to a
# scratch copy of the tree, so the normal extensions stay as they were.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
py=$root/.venv/bin/python
examples=${FUZZ_EXAMPLES:-2000}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

git ls-files -z sipstats tests setup.py pyproject.toml | tar -c --null -T - | tar -x -C "$scratch"
cd "$scratch"
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" "$py" -m pip install -q --no-deps \
  --no-cache-dir --target "$scratch/site" "$scratch" 2>&1 | grep -v "^WARNING: Location" || true
for ext in sipstats/_sipscan sipstats/_codes sipstats/capture/_pcapscan; do
  ls "$scratch/site/$ext".*.so >/dev/null  # optional in setup.py: fail when it was not built
done
rm -rf "$scratch/sipstats"  # the tests import the sanitized build, not the copied sources

# The interpreter is not sanitized: the ASan runtime is preloaded; Python's own allocations
# look like leaks to it, so leak detection is off.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONPATH=$scratch/site:$scratch
"$py" -c 'import sipstats.capture.pcap as p, sipstats.sip as s
assert p.c_walk() is not None and s.c_scanner() is not None
print("sanitized extensions:", p.c_walk().__file__, s.c_scanner().__file__)'
FUZZ_EXAMPLES=$examples "$py" -m pytest -q -s -p no:cacheprovider -x \
  tests/test_capture_cwalk.py tests/test_sip_scan.py tests/test_sip_fastpath.py \
  tests/test_hostile_reader.py tests/test_fuzz.py
echo "sanitize: no ASan/UBSan report; $examples mutants per target"
