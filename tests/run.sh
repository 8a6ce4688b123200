#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds the test-host image once (cached),
# then runs every test, including those against real sshd/Apache/MariaDB test hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/setup-machine.sh
.venv/bin/python -m ruff check agent tests
# The fast tier first (no root, fake connector): seconds, with the coverage of the core.
.venv/bin/python -m pytest -q -p no:cacheprovider tests/fast --cov=agent.engine.engine \
    --cov=agent.engine.account_verbs --cov=agent.engine.runner --cov=agent.journal.journal \
    --cov=agent.cli --cov=agent.engine.records --cov=agent.engine.recovery \
    --cov=agent.engine.batch --cov=agent.engine.batch_stage --cov=agent.engine.batch_lift \
    --cov=agent.engine.batch_report --cov=agent.engine.tree_verbs --cov=agent.engine.step_run \
    --cov=agent.config.resellers --cov-report=term --cov-fail-under=85
rm -f .coverage
# The host tests on three workers, each with its own test host (tests/conftest.py; tests of
# one xdist_group share a worker, so a second host layout is brought up once): most of
# their time is spent waiting on daemons and links, not on the CPU. SA_TEST_WORKERS=0 runs
# them in this one process.
exec .venv/bin/python -m pytest -q --durations=15 --ignore=tests/fast \
    -n "${SA_TEST_WORKERS:-3}" --dist loadgroup "$@"
