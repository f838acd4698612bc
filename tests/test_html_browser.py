"""The HTML report in headless Chromium: key figures in the DOM, no request leaves the page,
no console error, hostile capture text stays text. Screenshots land in a temporary directory
and, for the corpus captures, beside /tmp/sipstats-report.png for a person to look at.

Uses Debian's chromium (``/usr/bin/chromium``) through Playwright; never downloads a browser.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sipstats.analyze import analyze
from sipstats.messages import read_capture
from sipstats.render import RenderOptions, write_report
from tests.conftest import load_truth
from tests.report_captures import IMG_UA, MARKUP, SCRIPT, mixed_capture

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Where a person can look at the last corpus report screenshot.
SHOWCASE = Path("/tmp")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Python Playwright missing")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@dataclass
class Visit:
    """What happened while a report was open."""

    page: Any
    foreign_requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def open_report(browser: Any, html: Path, screenshot: Path) -> Visit:
    """Load ``html`` with every request other than the file itself counted and refused."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    visit = Visit(page)
    own = html.resolve().as_uri()

    def route(request_route: Any) -> None:
        if request_route.request.url == own:
            request_route.continue_()
        else:
            visit.foreign_requests.append(request_route.request.url)
            request_route.abort()

    page.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and visit.console_errors.append(m.text))
    page.on("pageerror", lambda e: visit.console_errors.append(str(e)))
    page.on("dialog", lambda d: (visit.dialogs.append(d.message), d.dismiss()))
    page.goto(own, wait_until="load")
    page.screenshot(path=str(screenshot), full_page=True)
    return visit


def render(capture_path: Path, out: Path, lang: str = "en") -> Path:
    analysis = analyze(read_capture([capture_path]))
    (path,) = write_report(analysis, "html", out, RenderOptions(lang=lang))  # type: ignore[arg-type]
    return path


@pytest.mark.corpus
@pytest.mark.parametrize("scenario", ["c02_mixed_udp", "c10_retry"])
def test_corpus_report_in_chromium(
    browser: Any, corpus_dir: Path, tmp_path: Path, scenario: str
) -> None:
    truth = load_truth(scenario)["captures"][f"{scenario}.pcap"]["sip"]
    html = render(corpus_dir / scenario / f"{scenario}.pcap", tmp_path / f"{scenario}.html")
    visit = open_report(browser, html, tmp_path / f"{scenario}.png")
    page = visit.page

    assert page.inner_text("#card-messages .v") == f"{truth['messages']:,}"
    row = page.locator("#code-486 td")
    assert row.nth(0).inner_text() == "486"
    assert row.nth(4).inner_text() == f"{truth['responses_by_code']['486']:,}"  # unique
    assert page.locator("#fig-failures svg").count() == 1
    assert page.locator("#fig-timeline svg").count() == 1
    assert page.locator("details").count() >= len(truth["responses_by_code"])
    assert visit.foreign_requests == []
    assert visit.console_errors == []
    assert (tmp_path / f"{scenario}.png").stat().st_size > 10_000
    shutil.copyfile(tmp_path / f"{scenario}.png", SHOWCASE / f"sipstats-report-{scenario}.png")
    if scenario == "c10_retry":
        shutil.copyfile(tmp_path / f"{scenario}.png", SHOWCASE / "sipstats-report.png")
        retry_row = page.locator("#t-retry_after tbody tr", has_text="486").first
        assert retry_row.locator("td").nth(0).inner_text() == "486"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_hostile_capture_text_stays_text_in_chromium(
    browser: Any, tmp_path: Path, lang: str
) -> None:
    html = render(mixed_capture(tmp_path / "mixed.pcap"), tmp_path / "mixed.html", lang)
    visit = open_report(browser, html, tmp_path / f"mixed-{lang}.png")
    page = visit.page

    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    assert visit.dialogs == []
    assert visit.foreign_requests == []
    assert visit.console_errors == []
    sent_as = page.locator("#code-486 td").nth(2).inner_text()
    assert SCRIPT in sent_as
    assert page.locator("#code-603 td").nth(2).inner_text() == MARKUP
    software = page.inner_text("#t-software")
    assert IMG_UA in software  # shown as text ...
    assert IMG_UA not in page.content()  # ... because the markup holds it escaped
    assert page.inner_text("#card-calls .v") == "8"
