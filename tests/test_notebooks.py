"""The notebooks are documentation that runs: each executes top to bottom on the samples.

They are stored without outputs; executing one here (nbclient, the ``python3`` kernel of the
interpreter running the tests) fails on the first cell that raises.  The checks after the run
make sure the cells showed what the prose promises (tables, figures, the outage's 503s).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

pytestmark = pytest.mark.notebook

NOTEBOOKS = ROOT / "notebooks"


def _execute(name: str) -> Any:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=120,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return notebook


def _outputs(notebook: Any) -> list[dict[str, Any]]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def _text(notebook: Any) -> str:
    parts = []
    for out in _outputs(notebook):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


@pytest.mark.parametrize("name", ["quickstart.ipynb", "postmortem.ipynb", "drilldown.ipynb"])
def test_notebook_is_stored_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    source = "\n".join(cell.source for cell in code)
    assert "sipstats.read_capture(" in source
    assert "sipstats.analyze(" in source
    assert "import sipstats." not in source  # public API only (no private modules)
    assert "._" not in source.replace("_repr_html_", "")


def test_quickstart_runs() -> None:
    notebook = _execute("quickstart.ipynb")
    outputs = _outputs(notebook)
    assert not [out for out in outputs if out["output_type"] == "error"]
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 2
    assert sum("text/html" in out.get("data", {}) for out in outputs) >= 4  # frames, summaries
    text = _text(notebook)
    assert "Busy Here" in text
    assert "answered" in text


def test_postmortem_runs_and_tells_the_outage() -> None:
    notebook = _execute("postmortem.ipynb")
    outputs = _outputs(notebook)
    assert not [out for out in outputs if out["output_type"] == "error"]
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 2
    text = _text(notebook)
    assert "5xx from" in text
    assert "127.0.75.20:5060" in text  # the PBX that failed
    assert "503" in text
    assert all(period in text for period in ("before", "during", "after"))


def test_drilldown_goes_from_a_failure_to_its_packets() -> None:
    notebook = _execute("drilldown.ipynb")
    outputs = _outputs(notebook)
    assert not [out for out in outputs if out["output_type"] == "error"]
    assert sum("image/svg+xml" in out.get("data", {}) for out in outputs) == 1  # the ladder
    text = _text(notebook)
    assert "calls ended with 503" in text
    assert "503 Service Unavailable" in text
    assert "the extracted capture holds the same" in text
