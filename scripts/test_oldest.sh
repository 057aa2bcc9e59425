#!/usr/bin/env bash
# Install the LOWEST versions the declared ranges allow (scripts/lowest_deps.py reads them from pyproject.toml)
# into a separate environment, and run the whole test suite there, so the lower bounds stay true.
#
#   scripts/test_oldest.sh                 # uses python3; .venv-oldest/ is created next to .venv
#   PYTHON=python3.10 scripts/test_oldest.sh -x -q
#
# Not part of every CI run: the oldest torch on the public index is a CUDA build of several GB. Extra arguments
# go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV="${DEEPGEN_OLDEST_VENV:-.venv-oldest}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# tomllib is in the standard library from Python 3.11; 3.10 needs tomli to read pyproject.toml
"$VENV/bin/python" -c 'import tomllib' 2>/dev/null || "$VENV/bin/python" -m pip install -q tomli
"$VENV/bin/python" scripts/lowest_deps.py test > "$VENV/lowest.txt"
echo "Installing the lowest allowed versions:"; tr '\n' ' ' < "$VENV/lowest.txt"; echo
"$VENV/bin/python" -m pip install -q -r "$VENV/lowest.txt"
"$VENV/bin/python" -m pip install -q --no-deps -e .
"$VENV/bin/python" -m pip list 2>/dev/null | grep -iE '^(torch|numpy|matplotlib|tqdm|ipywidgets|pytest|nbval|nbclient|nbformat|ipykernel) ' || true
exec "$VENV/bin/python" -m pytest "$@"
