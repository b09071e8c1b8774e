#!/usr/bin/env bash
# R5: fuzz every route of the published OpenAPI document with schemathesis (from PyPI), once per role,
# against a real `serve` on 127.0.0.1, and fail on any 5xx. Usage: scripts/fuzz-openapi.sh [binary]
set -euo pipefail
binary="${1:-target/debug/stayledger}"
examples="${STAYLEDGER_FUZZ_EXAMPLES:-20}"
venv="${STAYLEDGER_FUZZ_VENV:-${TMPDIR:-/tmp}/stayledger-schemathesis}"
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4.3,<5"
fi

data="$(mktemp -d)"
out="$data/serve.out"
"$binary" serve --addr 127.0.0.1:0 --data-dir "$data" >"$out" 2>"$data/serve.err" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  grep -q "listening on" "$out" 2>/dev/null && break
  sleep 0.1
done
base="$(sed -n 's/^stayledger listening on //p' "$out" | head -n 1)"
[ -n "$base" ] || { echo "serve did not start"; cat "$data/serve.err"; exit 1; }

token() { "$binary" token --data-dir "$data" "$@"; }
admin="$(token --role admin --sub fuzz-admin --lodging '*')"
curl -fsS -o /dev/null -X POST "$base/lodgings" -H "Authorization: Bearer $admin" \
  -H 'content-type: application/json' -d '{"lodging_id":"fuzz-1","name":"Fuzz Inn","nightly_rate":1000,"rooms":3}'

status=0
fuzz_as() {
  local bearer
  bearer="$(token "$@")"
  echo "== schemathesis as $2"
  timeout 300 "$venv/bin/st" run "$base/openapi.json" \
    --checks not_a_server_error --max-examples "$examples" --request-timeout 10 \
    -H "Authorization: Bearer $bearer" || status=1
}
fuzz_as --role customer --sub fuzz-customer
fuzz_as --role auditor --sub fuzz-auditor
# Last: a platform admin may slow the sandbox down (PUT /sandbox/config), which later runs would feel.
fuzz_as --role admin --sub fuzz-admin --lodging '*'
kill -0 "$serve_pid" || { echo "serve died during fuzzing"; status=1; }
exit "$status"
