"""docs/tutorial.ipynb runs top to bottom (offline, on the bundled digits) and draws its figures; it matches
its jupytext twin docs/tutorial.py."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
NOTEBOOK, SCRIPT = DOCS / "tutorial.ipynb", DOCS / "tutorial.py"

nbformat = pytest.importorskip("nbformat")


def _code_and_markdown(notebook) -> list:
    return [(c.cell_type, c.source.strip()) for c in notebook.cells]


def test_notebook_and_script_hold_the_same_cells():
    jupytext = pytest.importorskip("jupytext")
    assert _code_and_markdown(jupytext.read(NOTEBOOK)) == _code_and_markdown(jupytext.read(SCRIPT)), (
        "docs/tutorial.py and docs/tutorial.ipynb differ: run `jupytext --sync docs/tutorial.py`")


def test_notebook_executes_and_draws_figures(monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "commit it without outputs"
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(DOCS)}}).execute()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    text = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert len(images) >= 5  # Hebb/Oja curves, eigendigits, clusters, Krotov/SoftHebb filters, GHL/backprop filters
    assert "Oja = 1.0" in text  # Oja's weight converged to unit norm, Hebb's did not
    learned = {m: (float(change), float(before), float(after)) for m, change, before, after in re.findall(
        r"(\w+): weight change ([\d.]+); cosine with the nearest class mean ([\d.]+) -> ([\d.]+)", text)}
    assert set(learned) == {"krotov", "softhebb", "ghl", "backprop"}
    for method in ("krotov", "softhebb"):  # step 4: the units moved and became prototypes, the features improved
        change, before, after = learned[method]
        assert change > 0.5 and after > before + 0.3, (method, learned[method])
        probe, control = map(float, re.search(rf"{method}: .*probe ([\d.]+)% vs control ([\d.]+)%", text).groups())
        assert probe > control + 3, (method, probe, control)
    for method in ("ghl", "backprop"):  # step 5: both trained their first layer and the network
        assert learned[method][0] > 0.2
        assert float(re.search(rf"{method}: .*network test accuracy ([\d.]+)%", text).group(1)) > 70
