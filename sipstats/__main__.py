"""``python -m sipstats``: the same command line as the ``sipstats`` console script."""

from sipstats.cli import run

if __name__ == "__main__":
    run()
