#!/usr/bin/env bash
# Where validate's miss read runs, measured: on the blocking pool (tokio's spawn_blocking,
# as every other database call: LICENSD_DB_INLINE_READS=0) or on the HTTP worker itself
# when a pooled connection is idle (the default: every worker may; a number N: at most N
# at once), each at 2, 4 and 8 HTTP workers. Every server runs without the cache (budget 0)
# on random keys, so every validate is a miss; Postgres's point read (pgbench) is the
# baseline of each row.
# Interleaved per concurrency, one server at a time, load recorded.
#
#   bench/threading.sh licensd_bench_10k          # CONCURRENCY="16 64" DURATION=10
#
# INLINE="0 default" and WORKERS="2 4 8" choose the servers; ROUNDS=2 repeats each
# concurrency's set. CACHED=1 measures cache hits instead (the default 64 MiB cache, 64
# hot keys): how the worker count shapes the tail of an answer that is all CPU.
# SSLMODES="prefer disable" repeats each set with libpq's PGSSLMODE (for pgbench and licensd
# alike): what TLS to a Postgres on loopback costs.
set -euo pipefail
DB=${1:?seeded database, e.g. licensd_bench_10k}
CONCURRENCY=${CONCURRENCY:-16 64}
DURATION=${DURATION:-10}
PORT=${PORT:-18450}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LICENSD=${LICENSD:-$ROOT/target/release/licensd}
OUT=${OUT:-$ROOT/bench/results/threading-$DB-$(date -u +%Y%m%dT%H%M%S).md}
WORK=$(mktemp -d)
export LICENSD_LOG=${LICENSD_LOG:-warn} LICENSD_DB_POOL_SIZE=${LICENSD_DB_POOL_SIZE:-10}
CACHED=${CACHED:-0}
if [ "$CACHED" = 1 ]; then KEYS=hot; WHAT="cache hits (64 hot keys)"; export LICENSD_CACHE_BUDGET_MIB=64
else KEYS=all; WHAT="no cache, random keys"; export LICENSD_CACHE_BUDGET_MIB=0; fi
export LICENSD_RATE_LIMIT_REQUESTS_PER_IP=100000000 LICENSD_RATE_LIMIT_FAILED_LOOKUPS_PER_IP=100000000 LICENSD_RATE_LIMIT_ACTIVATIONS_PER_KEY=100000000
mkdir -p "$(dirname "$OUT")"
source "$ROOT/bench/lib.sh"

N=$(psql_db -c "SELECT count(*) FROM licenses")
psql_db -c "\copy (SELECT bench_key((random() * ($N - 1))::bigint + 1) FROM generate_series(1, 100000)) TO '$WORK/all.txt'"
psql_db -c "\copy (SELECT bench_key(i) FROM generate_series(1, 64) i) TO '$WORK/hot.txt'"

{
  echo "## threading of validate, $DB ($N licenses), $(date -u '+%Y-%m-%d %H:%M UTC'), ${DURATION}s per measurement"
  echo
  echo "$(nproc) cores; LICENSD_DB_POOL_SIZE=$LICENSD_DB_POOL_SIZE LICENSD_LOG=$LICENSD_LOG, $WHAT; load at start: $(cat /proc/loadavg)"
  echo
  echo "| conc. | what | req/s | p50 ms | p99 ms | server CPU µs/req | Postgres CPU µs/req | load |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|"
} | tee "$OUT"
for C in $CONCURRENCY; do
  for sslmode in ${SSLMODES:-prefer}; do
  export PGSSLMODE=$sslmode
  tls=$([ "$sslmode" = disable ] && echo ", no TLS" || echo "")
  measure "Postgres: point read by key joined to product (64 keys)$tls" - pg_run pointread.sql "$C" -D hot=64
  for _ in $(seq "${ROUNDS:-1}"); do
  for inline in ${INLINE:-0 default}; do
    for w in ${WORKERS:-2 4 8}; do
      # One server at a time (each holds its pool's connections while it lives).
      setting=()
      [ "$inline" = default ] || setting=(LICENSD_DB_INLINE_READS="$inline")
      start "i$inline-w$w" "$PORT" LICENSD_WORKERS="$w" "${setting[@]}"
      DURATION=3 wrk_run "$PORT" validate "$KEYS" "$C" >/dev/null # warm-up at the same concurrency
      n=$([ "$inline" = default ] && echo "$w" || echo $((inline < w ? inline : w)))
      label=$([ "$n" = 0 ] && echo "blocking pool" || echo "inline (up to $n at once)")
      measure "validate, $label, $w workers$tls" "i$inline-w$w" wrk_run "$PORT" validate "$KEYS" "$C"
      stop "i$inline-w$w"
    done
  done
  done
  done
done
echo "Load at end: $(cat /proc/loadavg)" | tee -a "$OUT"
