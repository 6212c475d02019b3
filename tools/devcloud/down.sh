#!/usr/bin/env bash
# Stops every process of the dev cloud (by the PID files in .devcloud/run).
#   tools/devcloud/down.sh [--purge]     --purge also deletes .devcloud/
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec "$PY" -m networking_vpp.testing.devcloud down "$@"
