#!/usr/bin/env bash
# Install what the demo and the tests need on a fresh Debian machine (run as root):
# Debian packages for building and running test hosts, and a virtualenv with the project.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "run as root: test hosts need network namespaces, mounts and debootstrap" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
need=()
for cmd in debootstrap:debootstrap ip:iproute2 nsenter:util-linux mount:mount \
           php:php-cli ssh:openssh-client; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || need+=("${cmd##*:}")
done
# The WHMCS module's test runs its own sshd (tests/test_whmcs_module.py).
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
python3 -m venv --help >/dev/null 2>&1 && python3 -c "import ensurepip" 2>/dev/null \
    || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ] || [ "${SA_APT_ALWAYS:-}" = 1 ]; then
    apt-get update -q
    apt-get install -y -q debootstrap iproute2 util-linux mount python3-venv "${need[@]}"
fi
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]'
