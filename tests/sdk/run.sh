#!/usr/bin/env bash
# Drives a real licensd through the vendors' own, unmodified Python SDKs (pinned in
# tests/sdk/requirements.txt): every license call each SDK offers.
#
# Creates a virtualenv under target/sdk-venv, a database of its own on the local
# Postgres, starts `licensd serve` on a free port, runs tests/sdk/test_*.py against it,
# and cleans up. If PyPI cannot be reached the SDKs cannot be installed: the run is
# skipped with a loud message (exit 0) unless SDK_TESTS_REQUIRED=1.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/sdk-venv
server="${TEST_DATABASE_SERVER:-postgres://postgres@127.0.0.1:5432}"
db="licensd_sdk_$$"
work=$(mktemp -d)
pid=""

cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

skip() {
  echo "" >&2
  echo "################################################################" >&2
  echo "## SDK TESTS SKIPPED: $1" >&2
  echo "## The vendors' SDKs were NOT exercised in this run." >&2
  echo "################################################################" >&2
  [ "${SDK_TESTS_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
}

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || skip "python3 -m venv failed"
fi
if ! "$venv/bin/pip" install -q --disable-pip-version-check -r tests/sdk/requirements.txt \
    >"$work/pip.log" 2>&1; then
  if grep -qiE "connection|resolve|network|timed out|No matching distribution" "$work/pip.log"; then
    skip "PyPI is unreachable ($(tail -n1 "$work/pip.log"))"
  fi
  cat "$work/pip.log" >&2
  exit 1
fi

cargo build -q --bin licensd
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DATABASE_URL="$server/$db"
export LICENSD_BIND="127.0.0.1:$port"
export LICENSD_PUBLIC_URL="http://127.0.0.1:$port"
export LICENSD_MAIL_DIR="$work/mail"
export LICENSD_LOG="${LICENSD_LOG:-warn}"
# The key-guessing limit is tested in tests/api; here every unknown-key call is deliberate.
export LICENSD_RATE_LIMIT_FAILED_LOOKUPS_PER_IP=1000

target/debug/licensd migrate >/dev/null
token=$(target/debug/licensd api-key create --name sdk-tests)
target/debug/licensd serve >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

export LICENSD_URL="http://127.0.0.1:$port" LICENSD_TOKEN="$token"
status=0
for t in tests/sdk/test_*.py; do
  echo "== $t"
  "$venv/bin/python" "$t" || status=1
done
if [ $status -ne 0 ]; then
  echo "-- licensd log:" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit $status
