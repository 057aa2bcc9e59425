"""Benchmark: execute lessons headless and print one JSON line per lesson (wall time, peak memory, metrics).

    python -m deepgen_helpers.bench                       # every lesson, default mode
    python -m deepgen_helpers.bench 01 03 --mode fast     # some lessons, by number or name
    python -m deepgen_helpers.bench --markdown            # also print a table for the README

Lessons report their quality figures with :func:`record`; outside a benchmark run it only returns them.
Run nothing else heavy at the same time: two torch processes on two cores slow each other several-fold.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

from .config import MODE_ENV, MODES, repo_root

METRICS_ENV = "DEEPGEN_METRICS_FILE"


def record(**metrics: float) -> Dict[str, float]:
    """Report a lesson's quality figures to a benchmark run (written to ``$DEEPGEN_METRICS_FILE`` when set)."""
    clean = {k: (round(float(v), 4) if isinstance(v, (int, float)) else v) for k, v in metrics.items()}
    path = os.environ.get(METRICS_ENV)
    if path:
        p = Path(path)
        old = json.loads(p.read_text()) if p.exists() and p.stat().st_size else {}
        old.update(clean)
        p.write_text(json.dumps(old))
    return clean


def lesson_paths(selectors: Optional[List[str]] = None) -> List[Path]:
    """Lesson notebooks in ``notebooks/`` (not solutions), filtered by number prefix or name."""
    lessons = sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not selectors:
        return lessons
    chosen = []
    for sel in selectors:
        hits = [p for p in lessons if p.stem.startswith(sel) or p.stem == sel or p.name == sel]
        if not hits:
            raise SystemExit(f"No lesson matches {sel!r}. Lessons: {[p.stem for p in lessons]}")
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


_FINAL_CELL = """
import json as _json, os as _os, resource as _resource, sys as _sys
_rss = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
_rss_mb = _rss / 1e6 if _sys.platform == 'darwin' else _rss / 1024
_p = _os.environ['DEEPGEN_METRICS_FILE']
_m = _json.loads(open(_p).read()) if _os.path.getsize(_p) else {}
_m['_peak_mb'] = round(_rss_mb, 1)
try:
    import torch as _torch
    _m['_device'] = 'cuda' if _torch.cuda.is_available() else ('mps' if getattr(_torch.backends, 'mps', None) and _torch.backends.mps.is_available() else 'cpu')
except Exception:
    pass
open(_p, 'w').write(_json.dumps(_m))
"""


def run_lesson(path: Path, mode: str = "default", timeout: int = 1800) -> Dict:
    """Execute one lesson in a fresh kernel with ``DEEPGEN_MODE=mode``; return its benchmark record."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_FINAL_CELL))
    fd, metrics_path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    saved = {k: os.environ.get(k) for k in (MODE_ENV, METRICS_ENV)}
    os.environ[MODE_ENV], os.environ[METRICS_ENV] = mode, metrics_path
    start = time.time()
    error = None
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    except Exception as exc:  # report the failure as a record instead of stopping the whole benchmark
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else ''}"
    wall = time.time() - start
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    metrics = json.loads(Path(metrics_path).read_text() or "{}")
    os.unlink(metrics_path)
    out = {"lesson": path.stem, "mode": mode, "device": metrics.pop("_device", "unknown"),
           "wall_s": round(wall, 1), "peak_mb": metrics.pop("_peak_mb", None), "metrics": metrics}
    if error:
        out["error"] = error
    return out


def markdown_table(rows: List[Dict]) -> str:
    """The README's results table from benchmark records."""
    lines = ["| lesson | mode | device | wall time | peak memory | metrics |", "|---|---|---|---|---|---|"]
    for r in rows:
        m = ", ".join(f"{k} = {v}" for k, v in r["metrics"].items())
        lines.append(f"| {r['lesson']} | {r['mode']} | {r['device']} | {r['wall_s']:.0f} s | {r['peak_mb']:.0f} MB | {m} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers or names (default: all)")
    parser.add_argument("--mode", choices=MODES, default="default")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = parser.parse_args(argv)
    rows = []
    for path in lesson_paths(args.lessons):
        row = run_lesson(path, args.mode, args.timeout)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.markdown:
        print(markdown_table(rows))
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
