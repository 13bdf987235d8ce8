# Shared by the drills: one Postgres database, several licensd processes on it.
# Source it; set DRILL (a short name) first. Uses ports DRILL_PORT_BASE.. (default 18420).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
DRILL_DB=licensd_bench_drill_$DRILL
DRILL_PORT_BASE=${DRILL_PORT_BASE:-18420}
# The newer of the release and debug builds (both work), unless LICENSD names one.
if [ -z "${LICENSD:-}" ]; then
  LICENSD=$(ls -t "$ROOT/target/release/licensd" "$ROOT/target/debug/licensd" 2>/dev/null | head -1 || true)
fi
DRILL_WORK=$(mktemp -d)
export DATABASE_URL=$PGURL/$DRILL_DB LICENSD_LOG=${LICENSD_LOG:-info} LICENSD_LOG_FORMAT=json
export LICENSD_MAIL_DIR=$DRILL_WORK/mail
# The drills load one key from one address on purpose: lift the abuse limits (per IP, per key).
export LICENSD_RATE_LIMIT_REQUESTS_PER_IP=1000000 LICENSD_RATE_LIMIT_FAILED_LOOKUPS_PER_IP=1000000 LICENSD_RATE_LIMIT_ACTIVATIONS_PER_KEY=1000000
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
  # A drill with a cluster of its own (postgres-restart.sh) stops it too.
  if declare -F pg_cleanup >/dev/null; then pg_cleanup; fi
}
trap drill_cleanup EXIT

sql() { psql "$DATABASE_URL" -Atc "$1"; }

# verdict OK "what was checked": prints the last line every drill ends with.
verdict() {
  if [ "$1" = 0 ]; then echo "PASS drill $DRILL: $2"; exit 0; else echo "FAIL drill $DRILL: $2"; exit 1; fi
}

# --- Stripe and email (drills 1, 3, 4 and the webhook benchmark) ---------------------
TOOLS="python3 $ROOT/bench/drills/stripe_tools.py"
FAKE_STRIPE_PORT=$((DRILL_PORT_BASE + 10))
SMTP_PORT=$((DRILL_PORT_BASE + 11))
MAILS=$DRILL_WORK/mails.jsonl
declare -a HELPER_PIDS=()
SMTP_PID=

# with_stripe: the settings every instance needs for the webhook and SMTP delivery.
with_stripe() {
  export LICENSD_STRIPE_WEBHOOK_SECRETS=whsec_drill LICENSD_STRIPE_API_KEY=sk_test_drill
  export LICENSD_STRIPE_API_BASE=http://127.0.0.1:$FAKE_STRIPE_PORT
  export LICENSD_SMTP_URL=smtp://127.0.0.1:$SMTP_PORT
  $TOOLS fake-stripe --port "$FAKE_STRIPE_PORT" & HELPER_PIDS+=($!)
  touch "$MAILS"
}
smtp_up() {
  $TOOLS smtp-sink --port "$SMTP_PORT" --out "$MAILS" & SMTP_PID=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$SMTP_PORT) 2>/dev/null && return 0; sleep 0.1; done
}
smtp_down() { [ -n "$SMTP_PID" ] && kill "$SMTP_PID" 2>/dev/null; wait "$SMTP_PID" 2>/dev/null || true; SMTP_PID=; }
drill_product() {
  "$LICENSD" product create --name "Drill App" --slug drill --price price_drill "$@" >/dev/null
}
urls() { local u=() i; for i in "$@"; do u+=("http://127.0.0.1:$((DRILL_PORT_BASE + i))"); done; (IFS=,; echo "${u[*]}"); }
# wait_for_mails N SECONDS: until the sink holds N emails (or time runs out).
wait_for_mails() {
  local deadline=$((SECONDS + $2))
  while (( SECONDS < deadline )); do (( $(wc -l <"$MAILS") >= $1 )) && return 0; sleep 0.5; done
  return 1
}
stripe_cleanup() { smtp_down; for pid in "${HELPER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; drill_cleanup; }
