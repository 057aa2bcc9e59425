"""Publishing chores: Colab badges and setup cells from ``config.REPO_URL``, and storing clean lesson outputs.

    python -m deepgen_helpers.publish sync            # rewrite every badge and Colab block from REPO_URL
    python -m deepgen_helpers.publish sync --check    # exit 1 if anything is out of date (used by the tests)
    python -m deepgen_helpers.publish execute notebooks/01_generative_modelling_basics.ipynb [--mode default]

``execute`` runs a notebook top to bottom in a fresh kernel and stores its outputs without widget state,
timing metadata or widget views (which GitHub cannot show), so readers see the results of a clean run.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import List

from .config import MODE_ENV, REPO_BRANCH, REPO_URL, repo_root

BADGE_RE = re.compile(r"\[!\[Open In Colab\]\(https://colab\.research\.google\.com/assets/colab-badge\.svg\)\]\([^)]*\)")
BLOCK_START = "# --- Colab only: fetch the course and install its helpers (does nothing elsewhere) ---"
BLOCK_END = "# --- end of Colab block ---"
PLAIN_PROGRESS_ENV = "DEEPGEN_PLAIN_PROGRESS"


def _github_path() -> str:
    return REPO_URL.rstrip("/").split("github.com/")[-1]


COLAB_URL_RE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]*?/blob/[^/)\s]+/(notebooks/[^)\s]+\.ipynb)")


def colab_url(relpath: str) -> str:
    """The Colab address that opens the notebook at ``relpath`` (relative to the repo root) from GitHub."""
    return f"https://colab.research.google.com/github/{_github_path()}/blob/{REPO_BRANCH}/{relpath}"


def colab_badge(relpath: str) -> str:
    """Markdown for the "Open in Colab" badge of the notebook at ``relpath`` (relative to the repo root)."""
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(relpath)})"


def colab_block() -> str:
    """The lines at the top of every setup cell that install the course on Colab, and only there."""
    return "\n".join([
        BLOCK_START,
        "import os, subprocess, sys",
        'if "google.colab" in sys.modules:',
        '    if not os.path.isdir("/content/deepgen"):',
        f'        subprocess.run(["git", "clone", "-q", "--depth", "1", "{REPO_URL}", "/content/deepgen"], check=True)',
        "        # Installs only what is missing: Colab's own torch, numpy and matplotlib satisfy the ranges.",
        '        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/deepgen"], check=True)',
        '    sys.path.insert(0, "/content/deepgen")',
        BLOCK_END,
    ])


def _notebooks() -> List[Path]:
    return sorted((repo_root() / "notebooks").rglob("*.ipynb"))


def sync(check: bool = False) -> List[str]:
    """Rewrite badges and Colab blocks in every notebook and the README's Colab links; return what changed."""
    import nbformat

    changed = []
    for path in _notebooks():
        if ".ipynb_checkpoints" in path.parts:
            continue
        nb = nbformat.read(str(path), as_version=4)
        rel = path.relative_to(repo_root()).as_posix()
        dirty = False
        for cell in nb.cells:
            src = cell.source
            if cell.cell_type == "markdown" and BADGE_RE.search(src):
                new = BADGE_RE.sub(lambda _: colab_badge(rel), src)
            elif cell.cell_type == "code" and BLOCK_START in src and BLOCK_END in src:
                a, b = src.index(BLOCK_START), src.index(BLOCK_END) + len(BLOCK_END)
                new = src[:a] + colab_block() + src[b:]
            else:
                continue
            if new != src:
                cell.source, dirty = new, True
        if dirty:
            changed.append(rel)
            if not check:
                nbformat.write(nb, str(path))
    readme = repo_root() / "README.md"
    if readme.exists():
        text = readme.read_text()
        new = COLAB_URL_RE.sub(lambda m: colab_url(m.group(1)), text)
        if new != text:
            changed.append("README.md")
            if not check:
                readme.write_text(new)
    return changed


def clean_outputs(nb) -> None:
    """Drop widget state, timing metadata and widget views (keeping their text), in place."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and "application/vnd.jupyter.widget-view+json" in data:
                data.pop("application/vnd.jupyter.widget-view+json")
                data["text/plain"] = "(interactive widget: run the notebook to use it)"


def execute(path: Path, mode: str = "default", timeout: int = 1800) -> float:
    """Run ``path`` in a fresh kernel with ``DEEPGEN_MODE=mode`` and store its clean outputs; return seconds."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    os.environ[MODE_ENV] = mode
    os.environ[PLAIN_PROGRESS_ENV] = "1"
    start = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    clean_outputs(nb)
    nbformat.write(nb, str(path))
    return time.time() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Colab badges and stored outputs.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sync")
    s.add_argument("--check", action="store_true")
    e = sub.add_parser("execute")
    e.add_argument("notebooks", nargs="+", type=Path)
    e.add_argument("--mode", default="default")
    args = parser.parse_args(argv)
    if args.cmd == "sync":
        changed = sync(check=args.check)
        print("\n".join(changed) if changed else "badges and Colab blocks are up to date")
        return 1 if (args.check and changed) else 0
    for nb in args.notebooks:
        print(f"{nb}: executed in {execute(nb.resolve(), args.mode):.0f} s ({args.mode} mode)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
