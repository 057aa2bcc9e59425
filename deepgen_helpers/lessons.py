"""Run a lesson's own definitions outside the notebook, so tests and training scripts use the lesson's classes.

Cells tagged ``lesson-model`` (cell metadata ``tags``) hold a lesson's model, loss and helper definitions; they
must only define things (no training, no data loading), so executing them is fast. They may use the standard
imports of a setup cell (``math``, ``dataclass``, ``field``, ``Optional``, ``Tuple``, ``List``, ``torch``, ``nn``, ``F``);
anything else they need they import themselves.
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
    # the imports every lesson's setup cell makes, so definitions run as they do in the notebook
    exec("import math\nfrom dataclasses import dataclass, field\nfrom typing import Optional, Tuple, List\n"
         "import torch\nimport torch.nn.functional as F\nfrom torch import nn", namespace)
    for cell in cells:
        exec(compile(cell.source, f"{path.name}:{cell.get('id')}", "exec"), namespace)
    return namespace
