"""``sipstats codes``: what a SIP status code means, from :mod:`sipstats.catalogue`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

import click
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from sipstats.errors import CatalogueError
from sipstats.vocabulary import STATUS_CLASSES

if TYPE_CHECKING:
    from sipstats.catalogue import CodeInfo

# The catalogue (and pandas, which reads it) loads when a code is looked up, not for --help.

Lang = Literal["en", "zh"]

#: Terminal output never grows wider than this, however wide the terminal.
MAX_WIDTH = 100

_LABELS: dict[Lang, dict[str, str]] = {
    "en": {
        "class": "Class",
        "category": "Category",
        "retry_after": "Retry-After",
        "retry_after_yes": "meaningful on this code (RFC 3261 §20.33)",
        "retry_after_no": "no defined meaning on this code",
        "rfc": "Defined in",
        "meaning": "Meaning",
        "note": "Note",
        "unregistered": "not registered with IANA; treated as {base} (RFC 3261 §8.1.3.2)",
        "code": "Code",
        "reason": "Reason",
        "yes": "yes",
        "all": "SIP status codes: {n} registered",
        "one_class": "{cls} {name}: {n} registered codes",
    },
    "zh": {
        "class": "类别",
        "category": "分类",
        "retry_after": "Retry-After",
        "retry_after_yes": "对此状态码有意义（RFC 3261 §20.33）",
        "retry_after_no": "对此状态码无规定含义",
        "rfc": "定义",
        "meaning": "含义",
        "note": "注意",
        "unregistered": "未在 IANA 注册；按 {base} 处理（RFC 3261 §8.1.3.2）",
        "code": "代码",
        "reason": "原因",
        "yes": "是",
        "all": "SIP 状态码：共 {n} 个已注册",
        "one_class": "{cls} {name}：共 {n} 个已注册状态码",
    },
}


class _NotAStatusCode(click.ClickException):
    """A bad CODE argument: one ``Error:`` line on stderr, exit status 2 like a usage error."""

    exit_code = 2


def _echo(*renderables: RenderableType) -> None:
    """Render with rich at most MAX_WIDTH wide; trailing padding stripped for clean pipes.

    Rich drops colour by itself when stdout is not a terminal (or NO_COLOR is set).
    """
    console = Console(markup=False, highlight=False, emoji=False)
    # A pipe has no width of its own: give it the full MAX_WIDTH rather than rich's 80.
    console.width = min(console.width, MAX_WIDTH) if console.is_terminal else MAX_WIDTH
    with console.capture() as captured:
        console.print(*renderables)
    click.echo("\n".join(line.rstrip() for line in captured.get().splitlines()))


def _category(name: str, lang: Lang) -> str:
    from sipstats.catalogue import CATEGORY_NAMES_ZH

    return f"{CATEGORY_NAMES_ZH[name]} ({name})" if lang == "zh" else name


def _show_code(info: CodeInfo, lang: Lang) -> None:
    from sipstats.catalogue import CLASS_NAMES, CLASS_NAMES_ZH, lookup

    labels = _LABELS[lang]
    if lang == "zh":
        english = f" ({info.reason})" if info.registered else ""
        title = f"{info.code} {info.reason_zh}{english}"
        class_name, description = CLASS_NAMES_ZH[info.status_class], info.description_zh
    else:
        title = f"{info.code} {info.reason}"
        class_name, description = CLASS_NAMES[info.status_class], info.description
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")  # Chinese has no spaces to wrap at
    grid.add_row(labels["class"], f"{info.status_class} {class_name}")
    grid.add_row(labels["category"], _category(info.category, lang))
    grid.add_row(
        labels["retry_after"], labels["retry_after_yes" if info.retry_after else "retry_after_no"]
    )
    grid.add_row(labels["rfc"], info.rfc)
    if not info.registered:
        base = lookup(info.treated_as)
        grid.add_row(
            labels["note"], labels["unregistered"].format(base=f"{base.code} {base.reason}")
        )
    grid.add_row(labels["meaning"], description)
    _echo(Text(title, style="bold"), grid)


def _show_list(infos: list[CodeInfo], status_class: str | None, lang: Lang) -> None:
    from sipstats.catalogue import CATEGORY_NAMES_ZH, CLASS_NAMES, CLASS_NAMES_ZH

    labels = _LABELS[lang]
    if status_class is None:
        title = labels["all"].format(n=len(infos))
    else:
        names = CLASS_NAMES_ZH if lang == "zh" else CLASS_NAMES
        title = labels["one_class"].format(cls=status_class, name=names[status_class], n=len(infos))
    table = Table(title=title, title_justify="left")
    table.add_column(labels["code"], no_wrap=True)
    table.add_column(labels["reason"], overflow="fold")
    if lang == "zh":
        table.add_column("Reason")
    table.add_column(labels["category"], overflow="fold")
    table.add_column(labels["retry_after"], no_wrap=True)
    table.add_column("RFC", no_wrap=True)
    for info in infos:
        reasons = [info.reason_zh, info.reason] if lang == "zh" else [info.reason]
        table.add_row(
            str(info.code),
            *reasons,
            CATEGORY_NAMES_ZH[info.category] if lang == "zh" else info.category,
            labels["yes"] if info.retry_after else "",
            info.rfc,
        )
    _echo(table)


@click.command("codes")
@click.argument("code", required=False)
@click.option(
    "--class",
    "status_class",
    type=click.Choice(STATUS_CLASSES, case_sensitive=False),
    help="List the codes of one class.",
)
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Language of reasons, descriptions and labels.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (both languages) for scripts.")
def codes(code: str | None, status_class: str | None, lang: Lang, as_json: bool) -> None:
    """Explain SIP status CODE (e.g. 486), or list the catalogue or one --class.

    Unregistered codes such as 499 are explained as their class's x00 (RFC 3261 §8.1.3.2).
    """
    from sipstats.catalogue import catalogue, lookup

    if code is not None and status_class is not None:
        raise click.UsageError("give a CODE or --class, not both")
    if code is not None:
        try:
            info = lookup(code)
        except CatalogueError as exc:
            raise _NotAStatusCode(f"invalid CODE: {exc}") from None
        if as_json:
            click.echo(json.dumps(info.to_dict(), ensure_ascii=False, indent=2))
        else:
            _show_code(info, lang)
        return
    infos = [lookup(int(c)) for c in catalogue(status_class=status_class)["code"]]
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in infos], ensure_ascii=False, indent=2))
    else:
        _show_list(infos, status_class, lang)
