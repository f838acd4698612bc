"""``python -m sipstats``: the same command line as the ``sipstats`` console script."""

from sipstats.cli import main

if __name__ == "__main__":
    main(prog_name="sipstats")
