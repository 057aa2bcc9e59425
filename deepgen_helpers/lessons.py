"""Run a lesson's own definitions outside the notebook, so tests and training scripts use the lesson's classes.

Cells tagged ``lesson-model`` (cell metadata ``tags``) hold a lesson's model, loss and helper definitions; they
must only define things (no training, no data loading), so executing them is fast.
"""
from pathlib import Path

import nbformat

from deepgen_helpers.config import repo_root


def lesson_namespace(stem: str, tag: str = "lesson-model") -> dict:
    """Execute, in order, the cells of ``notebooks/<stem>.ipynb`` tagged ``tag``; return their namespace."""
    path = repo_root() / "notebooks" / f"{stem}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]
    if not cells:
        raise AssertionError(f"{path.name} has no code cell tagged {tag!r}")
    namespace: dict = {"__name__": f"lesson_{stem}"}
    for cell in cells:
        exec(compile(cell.source, f"{path.name}:{cell.get('id')}", "exec"), namespace)
    return namespace
