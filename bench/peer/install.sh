#!/usr/bin/env bash
# Installs the peer library for `stayledger-bench` into a virtualenv beside this script and prints the
# path of its python. Idempotent: an existing venv that already imports eventsourcing is reused.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="$here/.venv/bin/python"
if [ -x "$python" ] && "$python" -c "import eventsourcing" 2>/dev/null; then
    echo "$python"
    exit 0
fi
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install --quiet --disable-pip-version-check "eventsourcing>=9.3,<10" >&2
echo "$python"
