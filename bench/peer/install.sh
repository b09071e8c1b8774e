#!/usr/bin/env bash
# Installs the peer library for `stayledger bench` into a virtualenv beside this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install --quiet --disable-pip-version-check "eventsourcing>=9.3,<10"
echo "$here/.venv/bin/python"
