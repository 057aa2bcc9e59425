"""Every lesson follows the skeleton of COURSE.md section 4 and is stored clean (section 8)."""
import json
import re
from pathlib import Path

import pytest

from deepgen_helpers import publish
from deepgen_helpers.config import repo_root

NOTEBOOKS = sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ALL_NOTEBOOKS = sorted(p for p in (repo_root() / "notebooks").rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)


def _load(path):
    return json.loads(path.read_text())


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_lessons():
    names = [p.stem for p in NOTEBOOKS]
    assert "00_welcome_and_setup" in names and "01_generative_modelling_basics" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_skeleton(path):
    cells = _load(path)["cells"]
    title = _src(cells[0])
    assert cells[0]["cell_type"] == "markdown" and title.startswith("# "), \
        "first cell must be the title"
    rel = path.relative_to(repo_root()).as_posix()
    assert publish.colab_badge(rel) in title, "title cell needs the Colab badge for this notebook"
    for part in ("Learning objectives", "Prerequisites", "Expected run time"):
        assert part in title, f"title cell lacks '{part}'"
    setup = next(c for c in cells if c["cell_type"] == "code")
    setup_src = _src(setup)
    assert publish.BLOCK_START in setup_src and "setup(" in setup_src, \
        "first code cell must be the setup cell"
    headings = [_src(c) for c in cells if c["cell_type"] == "markdown"]
    assert any(re.search(r"^## .*Exercises", h, re.M) for h in headings), \
        "needs an '## Exercises' section"
    assert any(re.search(r"^## .*Summary", h, re.M) for h in headings), \
        "needs a '## Summary' section"
    solutions = repo_root() / "notebooks" / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solutions.exists(), f"published solutions missing: {solutions.relative_to(repo_root())}"


def _in_progress(path):
    """Lessons still being built may not have stored default-mode outputs yet (see IN_PROGRESS in
    test_prose_numbers.py); everything else about them is checked."""
    from test_prose_numbers import IN_PROGRESS

    reason = IN_PROGRESS.get(path.stem)
    return pytest.param(path, marks=pytest.mark.xfail(strict=False, reason=reason)) if reason else path


@pytest.mark.parametrize("path", [_in_progress(p) for p in ALL_NOTEBOOKS], ids=lambda p: p.stem)
def test_stored_outputs_are_clean(path):
    assert path.stat().st_size < 3_000_000, "notebook over 3 MB: keep stored outputs lean"
    nb = _load(path)
    assert "widgets" not in nb.get("metadata", {}), "stored widget state"
    counts = [c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code"]
    assert counts == list(range(1, len(counts) + 1)), \
        f"execution counts {counts[:8]}... are not 1..n from a fresh kernel"
    ids = [c.get("id") for c in nb["cells"]]
    assert all(ids) and len(set(ids)) == len(ids), \
        "every cell needs a stable, unique id (for translations)"
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            assert out["output_type"] != "error", f"stored error output in cell {cell.get('id')}"
            if out["output_type"] == "stream" and out["name"] == "stderr":
                assert not re.search(r"Warning|Traceback", "".join(out["text"])), \
                    f"warning in stored stderr ({cell.get('id')})"
        src = _src(cell)
        loads_checkpoint = "torch.load" + "(" in src
        if cell["cell_type"] == "code" and loads_checkpoint:
            assert "weights_only=True" in src, "load checkpoints with weights_only=True"


MAX_CODE_LINE = 100   # Colab and a projector show about this much without scrolling sideways


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_code_lines_fit_a_projector(path):
    long = [(c.get("id"), len(line)) for c in _load(path)["cells"] if c["cell_type"] == "code"
            for line in _src(c).splitlines() if len(line) > MAX_CODE_LINE]
    assert not long, f"code lines over {MAX_CODE_LINE} characters (cell id, length): {long[:10]}"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_notebook_is_what_jupyterlab_writes(path):
    """Opening a lesson in JupyterLab must not mark it changed: it rewrites any other kernelspec."""
    assert _load(path)["metadata"].get("kernelspec") == publish.KERNELSPEC, "run `... publish sync`"


MACHINE_PATH = re.compile(r"(/home/|/Users/|/root/|/tmp/|/work/|[A-Z]:\\\\Users)")


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_outputs_are_portable_and_short(path):
    """No machine paths (they depend on where the course was cloned) and no floods of
    progress text."""
    root = str(repo_root())
    for cell in _load(path)["cells"]:
        for out in cell.get("outputs", []):
            text = "".join(out.get("text", "")) + "".join(
                "".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/plain"))
            assert root not in text and not MACHINE_PATH.search(text), \
                f"machine path in the stored output of cell {cell.get('id')}: {text[:200]!r}"
            if out["output_type"] == "stream":
                assert "\r" not in text and not re.search(r"\d+(\.\d+)?it/s\]", text), \
                    f"progress-bar text in the stored output of cell {cell.get('id')} " \
                    "(re-run publish execute)"


def test_exported_modules_badges_and_colab_blocks_are_in_sync():
    """One source: deepgen_helpers/models/*.py are exactly the notebooks' export cells."""
    stale = publish.sync(check=True)
    assert stale == [], "run `python -m deepgen_helpers.publish sync`: " + "; ".join(stale)
