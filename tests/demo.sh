#!/usr/bin/env bash
# The demo: a local test host, a graded suspension over SSH, the visitor's view, the reversal.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup-machine.sh
exec .venv/bin/python -m tests.demo "$@"
