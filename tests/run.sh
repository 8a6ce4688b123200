#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds the test-host image once (cached),
# then runs every test, including those against real sshd/Apache/MariaDB test hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup-machine.sh
.venv/bin/python -m ruff check agent tests
# The fast tier first (no root, fake connector): seconds, with the coverage of the core.
.venv/bin/python -m pytest -q -p no:cacheprovider tests/fast --cov=agent.engine \
    --cov=agent.runner --cov=agent.journal --cov=agent.cli --cov=agent.records \
    --cov=agent.recovery --cov-report=term --cov-fail-under=85
rm -f .coverage
exec .venv/bin/python -m pytest -q --durations=15 --ignore=tests/fast "$@"
