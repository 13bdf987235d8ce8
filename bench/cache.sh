#!/usr/bin/env bash
# Issue 14's side-by-side benchmark on one seeded database, every figure from the same run,
# interleaved per concurrency: Postgres's two ceilings (pgbench: a prepared point read of a
# license by key joined to its product over 64 hot keys, and licensd's own miss statement),
# then licensd validate from the cache (64 hot keys), without the cache (budget 0, random
# keys), the default cache on random keys (at 1M and 10M more keys than it holds), with a
# cache smaller than the working set (1 MiB, random keys), with a fingerprint
# (cached and not), activate, and /healthz. Per measurement: req/s, p50, p99, CPU µs per
# request of the server and of Postgres (all postgres processes: other users of the same
# cluster count too), the 1-minute load. Then each server's peak RSS.
#
#   bench/seed.sh licensd_bench_10k 10000          # once per size (10k, 1m, 10m)
#   bench/cache.sh licensd_bench_10k               # CONCURRENCY="16 64" DURATION=10
#
# Needs wrk, pgbench, psql and a release build (LICENSD=... to use another binary).
# Writes bench/results/cache-<db>-<time>.md.
set -euo pipefail
DB=${1:?seeded database, e.g. licensd_bench_10k}
CONCURRENCY=${CONCURRENCY:-16 64}
DURATION=${DURATION:-10}
PORT=${PORT:-18430}
FP_KEYS=${FP_KEYS:-1000}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LICENSD=${LICENSD:-$ROOT/target/release/licensd}
OUT=${OUT:-$ROOT/bench/results/cache-$DB-$(date -u +%Y%m%dT%H%M%S).md}
WORK=$(mktemp -d)
export LICENSD_LOG=${LICENSD_LOG:-warn} LICENSD_DB_POOL_SIZE=${LICENSD_DB_POOL_SIZE:-20}
export LICENSD_WORKERS=${LICENSD_WORKERS:-0}
export LICENSD_RATE_LIMIT_REQUESTS_PER_IP=100000000 LICENSD_RATE_LIMIT_FAILED_LOOKUPS_PER_IP=100000000 LICENSD_RATE_LIMIT_ACTIVATIONS_PER_KEY=100000000
mkdir -p "$(dirname "$OUT")"
source "$ROOT/bench/lib.sh"

N=$(psql_db -c "SELECT count(*) FROM licenses")
psql_db -c "\copy (SELECT bench_key(i) FROM generate_series(1, 64) i) TO '$WORK/hot.txt'"
psql_db -c "\copy (SELECT bench_key((random() * ($N - 1))::bigint + 1) FROM generate_series(1, 100000)) TO '$WORK/all.txt'"
psql_db -c "\copy (SELECT bench_key(i) FROM generate_series(1, $FP_KEYS) i) TO '$WORK/fp.txt'"
# The device every fingerprint validate names, activated on the first FP_KEYS licenses.
psql_db -c "INSERT INTO activations (license_id, fingerprint)
  SELECT id, 'bench-dev' FROM licenses WHERE key IN (SELECT bench_key(i) FROM generate_series(1, $FP_KEYS) i)
  ON CONFLICT DO NOTHING"

# Three servers: the cache as shipped, no cache, and a cache smaller than the working set.
start cached "$PORT" LICENSD_CACHE_BUDGET_MIB="${CACHE_MIB:-64}"
start nocache $((PORT + 1)) LICENSD_CACHE_BUDGET_MIB=0
start small $((PORT + 2)) LICENSD_CACHE_BUDGET_MIB=1

# Warm-up: the cached server learns the hot keys and the fingerprinted ones, then fills its
# budget with random keys (at 1M and 10M licenses more than it holds: its peak RSS is then
# the bound that matters).
wrk_run "$PORT" validate hot 16 >/dev/null
wrk_run "$PORT" validate_fp fp 16 >/dev/null
DURATION=${FILL_SECS:-30} wrk_run "$PORT" validate all 64 >/dev/null
{
  echo "## $DB ($N licenses), $(date -u '+%Y-%m-%d %H:%M UTC'), ${DURATION}s per measurement"
  echo
  echo "$(nproc) cores; licensd: LICENSD_WORKERS=$LICENSD_WORKERS LICENSD_DB_POOL_SIZE=$LICENSD_DB_POOL_SIZE LICENSD_LOG=$LICENSD_LOG; load at start: $(cat /proc/loadavg)"
  echo
  echo "| conc. | what | req/s | p50 ms | p99 ms | server CPU µs/req | Postgres CPU µs/req | load |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|"
} | tee "$OUT"
for C in $CONCURRENCY; do
  measure "Postgres: point read by key joined to product (64 keys)" - pg_run pointread.sql "$C" -D hot=64
  measure "Postgres: licensd's miss statement (random keys)" - pg_run validate.sql "$C" -D n="$N"
  measure "validate, cached (64 hot keys)" cached wrk_run "$PORT" validate hot "$C"
  measure "validate, no cache (random keys)" nocache wrk_run $((PORT + 1)) validate all "$C"
  measure "validate, ${CACHE_MIB:-64} MiB cache, random keys" cached wrk_run "$PORT" validate all "$C"
  measure "validate, 1 MiB cache < working set (random keys)" small wrk_run $((PORT + 2)) validate all "$C"
  measure "validate + fingerprint, cached ($FP_KEYS keys)" cached wrk_run "$PORT" validate_fp fp "$C"
  measure "validate + fingerprint, no cache ($FP_KEYS keys)" nocache wrk_run $((PORT + 1)) validate_fp fp "$C"
  measure "activate (new device each call)" nocache wrk_run $((PORT + 1)) activate all "$C"
  measure "/healthz" cached wrk_run "$PORT" healthz hot "$C"
done
{
  echo
  declare -A ports
  ports=([cached]=$PORT [nocache]=$((PORT + 1)) [small]=$((PORT + 2)))
  for s in cached nocache small; do
    held=$(curl -s "http://127.0.0.1:${ports[$s]}/metrics" | awk '/^licensd_validate_cache_bytes / {printf "%.1f", $2 / 1048576}')
    echo "Peak RSS ($s): $(($(awk '/VmHWM/ {print $2}' "/proc/${PID[$s]}/status") / 1024)) MiB; cache holds $held MiB"
  done
  echo
  echo "Load at end: $(cat /proc/loadavg)"
} | tee -a "$OUT"
