"""The long fuzz campaign: ``python -m tests.fuzz TARGET [--runs N] [-- atheris options]``.

With atheris installed (``pip install -e '.[fuzz]'``) the run is coverage-guided, starts from
the regression corpus ``tests/fuzz/regressions/TARGET/`` and writes any crashing input to the
current directory (``crash-*``): copy it into the corpus, fix, commit. Without atheris the
same target runs under hypothesis with byte-level mutations of the corpus (see
``tests/test_fuzz.py``) for ``--runs`` examples.
"""

from __future__ import annotations

import argparse
import sys

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
    seeds = str(CORPUS / args.target)
    atheris.Setup([sys.argv[0], f"-runs={args.runs}", *rest, seeds], TARGETS[args.target])
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
