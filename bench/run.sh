#!/usr/bin/env bash
# Benchmarks one seeded database: for each concurrency, in the same run and one after
# the other, (a) actix-web's ceiling: GET /healthz, (b) POST /v1/licenses/validate,
# (c) Postgres's ceiling: pgbench running validate's exact statement on the same table
# and index, (d) POST /v1/licenses/activate (a new device each call). Then validate
# paced at half its peak rate (p99 target), and the server's peak RSS.
#
#   bench/seed.sh licensd_bench_1m 1000000     # once
#   bench/run.sh licensd_bench_1m              # CONCURRENCY="1 4 16 64" DURATION=10
#
# Settings passed to licensd: LICENSD_LOG (default info, as shipped), LICENSD_DB_POOL_SIZE
# (default 20), LICENSD_WORKERS (default 0 = one per core). Needs wrk, pgbench, psql and
# a release build (cargo build --release). Writes bench/results/<db>-<time>.md.
set -euo pipefail
DB=${1:?seeded database, e.g. licensd_bench_1m}
CONCURRENCY=${CONCURRENCY:-1 4 16 64}
DURATION=${DURATION:-10}
PORT=${PORT:-18410}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LICENSD=${LICENSD:-$ROOT/target/release/licensd}
OUT=${OUT:-$ROOT/bench/results/$DB-$(date -u +%Y%m%dT%H%M%S).md}
WORK=$(mktemp -d)
export LICENSD_LOG=${LICENSD_LOG:-info}
export LICENSD_DB_POOL_SIZE=${LICENSD_DB_POOL_SIZE:-20}
export LICENSD_WORKERS=${LICENSD_WORKERS:-0}
# wrk loads from one address: lift the per-IP abuse limits (they would answer 429).
export LICENSD_RATE_LIMIT_REQUESTS_PER_IP=${LICENSD_RATE_LIMIT_REQUESTS_PER_IP:-100000000} LICENSD_RATE_LIMIT_FAILED_LOOKUPS_PER_IP=${LICENSD_RATE_LIMIT_FAILED_LOOKUPS_PER_IP:-100000000} LICENSD_RATE_LIMIT_ACTIVATIONS_PER_KEY=${LICENSD_RATE_LIMIT_ACTIVATIONS_PER_KEY:-100000000}
URL=http://127.0.0.1:$PORT
mkdir -p "$(dirname "$OUT")"

SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

N=$(psql "$PGURL/$DB" -Atc "SELECT count(*) FROM licenses")
export KEYS_FILE=$WORK/keys.txt
psql "$PGURL/$DB" -qc "\copy (SELECT bench_key((random() * ($N - 1))::bigint + 1) FROM generate_series(1, 100000)) TO '$KEYS_FILE'"

DATABASE_URL=$PGURL/$DB LICENSD_BIND=127.0.0.1:$PORT LICENSD_LOG_FORMAT=json \
  "$LICENSD" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 50); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.2; done
curl -sf "$URL/readyz" >/dev/null || { cat "$WORK/server.log"; exit 1; }

# wrk -t1: the load generator shares the machine's cores with the server and Postgres.
wrk_run() { # concurrency mode [rate]
  WRK_CONNECTIONS=$1 wrk -t1 -c"$1" -d"${DURATION}s" --timeout 10s -s "$ROOT/bench/load.lua" \
    "$URL" -- "$2" "${3:-}" | grep '^RESULT'
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
pg_run() { # concurrency
  pgbench -n -M prepared -f "$ROOT/bench/validate.sql" -D n="$N" -D fp=x -c "$1" -j 1 \
    -T "$DURATION" "$PGURL/$DB" 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/tps=\1/p' | head -1
}
load() { cut -d' ' -f1 /proc/loadavg; }
# Other people's compile jobs running now (this machine is shared): a noise indicator.
others() { ps -eo comm= | grep -cE '^(rustc|clippy-driver|cc1|cc1plus|ld|cargo)$' || true; }

wrk_run 16 validate >/dev/null  # warm-up: caches, pool connections

{
  echo "## $DB ($N licenses), $(date -u '+%Y-%m-%d %H:%M UTC'), ${DURATION}s per measurement"
  echo
  echo "licensd: LICENSD_LOG=$LICENSD_LOG LICENSD_DB_POOL_SIZE=$LICENSD_DB_POOL_SIZE LICENSD_WORKERS=$LICENSD_WORKERS; $(nproc) cores; load average at start $(load)"
  echo
  echo "| conc. | healthz req/s | validate req/s | p50 ms | p99 ms | pg point-read tps | validate ÷ pg | validate ÷ healthz | activate req/s | p50 ms | p99 ms | errors | load | others' compile jobs |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} | tee "$OUT"

PEAK=0; PEAK_C=1
for c in $CONCURRENCY; do
  l=$(load); o=$(others)
  h=$(wrk_run "$c" healthz)
  v=$(wrk_run "$c" validate)
  p=$(pg_run "$c")
  a=$(wrk_run "$c" activate)
  hr=$(echo "$h" | field rps); vr=$(echo "$v" | field rps); ar=$(echo "$a" | field rps)
  pr=$(echo "$p" | field tps)
  errs=$(( $(echo "$v" | field errors) + $(echo "$v" | field non2xx) + $(echo "$a" | field errors) + $(echo "$a" | field non2xx) ))
  printf '| %s | %.0f | %.0f | %s | %s | %.0f | %.2f | %.2f | %.0f | %s | %s | %s | %s | %s |\n' \
    "$c" "$hr" "$vr" "$(echo "$v" | field p50_ms)" "$(echo "$v" | field p99_ms)" "$pr" \
    "$(echo "$vr / $pr" | bc -l)" "$(echo "$vr / $hr" | bc -l)" "$ar" \
    "$(echo "$a" | field p50_ms)" "$(echo "$a" | field p99_ms)" "$errs" "$l" "$o" | tee -a "$OUT"
  if (( $(echo "$vr > $PEAK" | bc) )); then PEAK=$vr; PEAK_C=$c; fi
done

HALF=$(echo "$PEAK / 2" | bc)
hc=$PEAK_C; (( hc < 4 )) && hc=4
half=$(wrk_run "$hc" validate "$HALF")
rss_peak=$(awk '/VmHWM/ {print $2}' /proc/$SERVER_PID/status)
rss_now=$(awk '/VmRSS/ {print $2}' /proc/$SERVER_PID/status)
{
  echo
  printf 'Validate paced at half its peak (%.0f req/s target, %s connections): achieved %.0f req/s, p50 %s ms, p99 %s ms, max %s ms.\n' \
    "$HALF" "$hc" "$(echo "$half" | field rps)" "$(echo "$half" | field p50_ms)" "$(echo "$half" | field p99_ms)" "$(echo "$half" | field max_ms)"
  echo
  echo "Server RSS: peak $((rss_peak / 1024)) MiB (VmHWM), $((rss_now / 1024)) MiB after the run. Log lines written: $(wc -l <"$WORK/server.log")."
  echo
} | tee -a "$OUT"
