"""The README documents what the code does: its column table and every CLI option."""

from __future__ import annotations

import re

import click
import pytest

from sipstats import schema
from sipstats.cli import main
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_setup_commands() -> None:
    block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert block is not None
    commands = block.group(1).strip().splitlines()
    assert len(commands) == 2
    assert "sipstats sample_pcaps/" in commands[0]
    assert commands[1] == "bash scripts/test.sh"
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_readme_messages_table_matches_the_schema() -> None:
    start = README.index("<!-- messages-schema:start -->\n") + len(
        "<!-- messages-schema:start -->\n"
    )
    end = README.index("<!-- messages-schema:end -->")
    assert README[start:end] == schema.markdown_table(schema.MESSAGES)


def test_readme_documents_every_report_option() -> None:
    command = main.get_command(click.Context(main), "report")
    assert command is not None
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            for flag in param.opts:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in README or f", {flag}" in README, flag


@pytest.mark.parametrize("name", ["calls", "flow", "extract", "diff"])
def test_readme_documents_every_drill_down_option(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert command is not None
    assert f"sipstats {name} " in README
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            for flag in param.opts:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in README or f", {flag}" in README, (name, flag)
