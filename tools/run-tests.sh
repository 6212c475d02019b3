#!/usr/bin/env bash
# Runs the whole test suite (unit, functional with real etcd, system with real
# Neutron). Extra arguments go to pytest, e.g. tools/run-tests.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" -m pytest -q -rs "${@:-tests}"
