#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds the test-host image once (cached),
# then runs every test, including those against real sshd/Apache/MariaDB test hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup-machine.sh
.venv/bin/python -m ruff check agent tests
exec .venv/bin/python -m pytest -q "$@"
