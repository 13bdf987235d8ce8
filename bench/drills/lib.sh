# Shared by the drills: one Postgres database, several licensd processes on it.
# Source it; set DRILL (a short name) first. Uses ports DRILL_PORT_BASE.. (default 18420).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
DRILL_DB=licensd_bench_drill_$DRILL
DRILL_PORT_BASE=${DRILL_PORT_BASE:-18420}
# A release build if there is one, else the debug build (both work).
LICENSD=${LICENSD:-$ROOT/target/release/licensd}
[ -x "$LICENSD" ] || LICENSD=$ROOT/target/debug/licensd
DRILL_WORK=$(mktemp -d)
export DATABASE_URL=$PGURL/$DRILL_DB LICENSD_LOG=${LICENSD_LOG:-info} LICENSD_LOG_FORMAT=json
export LICENSD_MAIL_DIR=$DRILL_WORK/mail
declare -a PIDS=()

drill_db_reset() {
  psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS $DRILL_DB WITH (FORCE)" 2>/dev/null
  "$LICENSD" migrate >/dev/null 2>&1
}

# start_instance I: licensd serve on port DRILL_PORT_BASE+I, logs in $DRILL_WORK/licensd-I.log.
start_instance() {
  local i=$1 port=$((DRILL_PORT_BASE + $1))
  LICENSD_BIND=127.0.0.1:$port "$LICENSD" serve >>"$DRILL_WORK/licensd-$i.log" 2>&1 &
  PIDS[$i]=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "instance $i did not start:"; cat "$DRILL_WORK/licensd-$i.log"; return 1
}

drill_cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP_DRILL_DB:-}" ]; then
    psql "$PGURL/postgres" -qc "DROP DATABASE IF EXISTS $DRILL_DB WITH (FORCE)" 2>/dev/null || true
  fi
  rm -rf "$DRILL_WORK"
}
trap drill_cleanup EXIT

sql() { psql "$DATABASE_URL" -Atc "$1"; }

# verdict OK "what was checked": prints the last line every drill ends with.
verdict() {
  if [ "$1" = 0 ]; then echo "PASS drill $DRILL: $2"; exit 0; else echo "FAIL drill $DRILL: $2"; exit 1; fi
}
