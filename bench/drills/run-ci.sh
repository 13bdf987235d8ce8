#!/usr/bin/env bash
# The drills short enough for CI (each well under a minute). Needs a built licensd
# (release or debug), psql, python3 and Postgres at $PGURL. Exits non-zero if any fails.
set -uo pipefail
DIR=$(cd "$(dirname "$0")" && pwd)
failed=0
for drill in activation-limit.sh postgres-restart.sh; do
  echo "--- $drill"
  "$DIR/$drill" || failed=1
done
exit $failed
