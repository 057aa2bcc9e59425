"""Print the lowest versions that the project's dependency ranges allow, as pip pins (one per line).

    python scripts/lowest_deps.py > /tmp/lowest.txt      # e.g. torch==2.1.0, numpy==1.24.0, ...

Read from pyproject.toml (runtime and the lab/test extras), so the pins follow the declared ranges:
if a lower bound stops being true, `scripts/test_oldest.sh` fails and the bound must move up.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lowest_pins(pyproject: Path = ROOT / "pyproject.toml", extras=("test",)) -> list:
    """``name==lower_bound`` for every dependency (and the given extras) declared with ``>=``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    pins = []
    for req in reqs:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*(,.*)?",
                         req.split(";")[0])
        if not m:
            raise SystemExit(f"pyproject.toml: {req!r} has no '>=' lower bound; give it one.")
        pins.append(f"{m.group(1)}=={m.group(2)}")
    return pins


if __name__ == "__main__":
    print("\n".join(lowest_pins(extras=tuple(sys.argv[1:]) or ("test",))))
