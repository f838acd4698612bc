"""The long fuzz campaign: ``python -m tests.fuzz TARGET [--runs N] [-- atheris options]``.

With atheris installed (``pip install -e '.[fuzz]'``) the run is coverage-guided, starts from
the regression corpus ``tests/fuzz/regressions/TARGET/`` (its discoveries go to
``fuzz-corpus-TARGET/`` in the current directory) and writes any crashing input there too
(``crash-*``): copy it into the regressions, fix, commit. Without atheris the
same target runs under hypothesis with byte-level mutations of the corpus (see
``tests/test_fuzz.py``) for ``--runs`` examples.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.fuzz.corpus import CORPUS, TARGET_NAMES


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=TARGET_NAMES)
    parser.add_argument("--runs", type=int, default=100_000)
    args, rest = parser.parse_known_args()
    try:
        import atheris
    except ImportError:
        from tests.fuzz.targets import TARGETS
        from tests.test_fuzz import campaign

        campaign(args.target, args.runs)
        return 0
    # Coverage of sipstats' own Python code guides the search.
    with atheris.instrument_imports(include=["sipstats"]):
        from tests.fuzz.targets import TARGETS
    # libFuzzer writes what it learns into the first corpus folder: a scratch one, so that
    # the committed regressions stay as they are.
    scratch = Path(f"fuzz-corpus-{args.target}")
    scratch.mkdir(exist_ok=True)
    seeds = str(CORPUS / args.target)
    argv = [sys.argv[0], f"-runs={args.runs}", *rest, str(scratch), seeds]
    atheris.Setup(argv, TARGETS[args.target])
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
