"""Benchmark: execute lessons headless and print one JSON line per lesson (wall time, peak memory,
metrics).

    python -m deepgen_helpers.bench                       # every lesson, default mode
    python -m deepgen_helpers.bench 01 03 --mode fast     # some lessons, by number or name
    python -m deepgen_helpers.bench --markdown            # also print a table for the README

Lessons report their quality figures with :func:`record`; outside a benchmark run it only returns
them. Run nothing else heavy at the same time: two torch processes on two cores slow each other
several-fold.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from .config import MODE_ENV, MODES, repo_root

METRICS_ENV = "DEEPGEN_METRICS_FILE"


def _metric(name: str, value: Any) -> Any:
    """A JSON value for ``record``: numbers (NumPy scalars and one-element tensors too), strings or
    None."""
    if hasattr(value, "detach"):  # a tensor
        if value.numel() != 1:
            raise TypeError(f"record({name}=...) needs one number, got a tensor of shape "
                            f"{tuple(value.shape)}; pass {name}.item() or a summary "
                            "such as .mean().item().")
        value = value.detach().cpu().item()
    elif hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "size", 1) == 1:
        value = value.item()  # a NumPy scalar or one-element array
    if value is None or isinstance(value, (str, bool)):
        return value
    if not isinstance(value, (int, float)):
        raise TypeError(f"record({name}=...) needs a number or a string, "
                        f"got {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"record({name}={value}) is not a finite number; the run that measured it "
                         "has probably diverged.")
    return value if isinstance(value, int) else round(float(value), 4)


def record(**metrics: float) -> Dict[str, float]:
    """Report a lesson's quality figures to a benchmark run (written to ``$DEEPGEN_METRICS_FILE``
    when set).

    Values are numbers (NumPy scalars and one-element tensors are converted; floats rounded to 4
    decimals) or strings. Raises ``TypeError``/``ValueError`` for anything else, including NaN,
    before writing.
    """
    clean = {k: _metric(k, v) for k, v in metrics.items()}
    path = os.environ.get(METRICS_ENV)
    if path:
        p = Path(path)
        try:
            old = json.loads(p.read_text()) if p.exists() and p.stat().st_size else {}
            if not isinstance(old, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise ValueError(f"{METRICS_ENV}={path!r} does not hold a benchmark's metrics ({exc}); "
                             f"unset {METRICS_ENV} outside a benchmark run.") from None
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
    _m['_device'] = 'cuda' if _torch.cuda.is_available() else ('mps' if getattr(_torch.backends,
    'mps', None) and _torch.backends.mps.is_available() else 'cpu')
except Exception:
    pass
open(_p, 'w').write(_json.dumps(_m))
"""


def run_lesson(path: Path, mode: str = "default", timeout: int = 1800) -> Dict:
    """Execute one lesson in a fresh kernel with ``DEEPGEN_MODE=mode``; return its benchmark
    record."""
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
    except (
        Exception
    ) as exc:  # report the failure as a record instead of stopping the whole benchmark
        lines = str(exc).strip().splitlines()
        error = f"{type(exc).__name__}: {lines[-1][:300] if lines else ''}"
    finally:
        wall = time.time() - start
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        try:
            metrics = json.loads(Path(metrics_path).read_text() or "{}")
        except (OSError, ValueError):  # a lesson that died while writing leaves no usable metrics
            metrics = {}
        Path(metrics_path).unlink(missing_ok=True)
    if not isinstance(metrics, dict):
        metrics = {}
    out = {"lesson": path.stem, "mode": mode, "device": metrics.pop("_device", "unknown"),
           "wall_s": round(wall, 1), "peak_mb": metrics.pop("_peak_mb", None), "metrics": metrics}
    if error:
        out["error"] = error
    return out


def markdown_table(rows: List[Dict]) -> str:
    """The README's results table from benchmark records; a failed lesson shows its error, not
    numbers."""
    def number(value: Any, unit: str) -> str:
        return (
            f"{value:.0f} {unit}"
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else "–"
        )

    lines = [
        "| lesson | mode | device | wall time | peak memory | metrics |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = ", ".join(f"{k} = {v}" for k, v in (r.get("metrics") or {}).items())
        if r.get("error"):
            m = f"**failed**: {str(r['error']).replace('|', '/')[:120]}" + (f"; {m}" if m else "")
        lines.append(f"| {r.get('lesson', '?')} | {r.get('mode', '?')} | "
                     f"{r.get('device', 'unknown')} | {number(r.get('wall_s'), 's')} | "
                     f"{number(r.get('peak_mb'), 'MB')} | {m} |")
    return "\n".join(lines)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1 second")
    return value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers or names (default: all)")
    parser.add_argument("--mode", choices=MODES, default="default")
    parser.add_argument("--timeout", type=_positive_int, default=1800, help="seconds per cell")
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
