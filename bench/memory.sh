#!/usr/bin/env bash
# Peak memory of a server whose validate cache is full: random keys over a large table at 64
# connections for FILL_SECS, then VmHWM (peak RSS), RssAnon and RssFile (now), and the
# cache's own estimate (/metrics). One server per setting, one after the other.
#
#   bench/memory.sh licensd_bench_10m            # CACHE_MIB=64 FILL_SECS=60
#   VARIANTS="default MALLOC_ARENA_MAX=2" bench/memory.sh licensd_bench_10m
set -euo pipefail
DB=${1:?seeded database, e.g. licensd_bench_10m}
DURATION=${FILL_SECS:-60}
PORT=${PORT:-18460}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LICENSD=${LICENSD:-$ROOT/target/release/licensd}
WORK=$(mktemp -d)
OUT=${OUT:-$ROOT/bench/results/memory-$DB-$(date -u +%Y%m%dT%H%M%S).md}
export LICENSD_LOG=${LICENSD_LOG:-warn} LICENSD_DB_POOL_SIZE=${LICENSD_DB_POOL_SIZE:-8}
export LICENSD_CACHE_BUDGET_MIB=${CACHE_MIB:-64}
export LICENSD_RATE_LIMIT_REQUESTS_PER_IP=100000000 LICENSD_RATE_LIMIT_FAILED_LOOKUPS_PER_IP=100000000
source "$ROOT/bench/lib.sh"
N=$(psql_db -c "SELECT count(*) FROM licenses")
psql_db -c "\copy (SELECT bench_key((random() * ($N - 1))::bigint + 1) FROM generate_series(1, 1000000)) TO '$WORK/all.txt'"
{
echo "## memory with a full cache: $DB ($N licenses), budget $LICENSD_CACHE_BUDGET_MIB MiB, ${DURATION}s of random keys at 64 connections, $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| setting | req/s | cache holds MiB (estimate) | peak RSS MiB | RssAnon MiB | RssFile MiB |"
echo "|---|---:|---:|---:|---:|---:|"
for v in ${VARIANTS:-default}; do
  extra=(); [ "$v" = default ] || extra=("$v")
  start mem "$PORT" "${extra[@]}"
  r=$(wrk_run "$PORT" validate all 64)
  held=$(curl -s "http://127.0.0.1:$PORT/metrics" | awk '/^licensd_validate_cache_bytes / {printf "%.1f", $2 / 1048576}')
  kb() { awk "/^$1:/ {printf \"%.0f\", \$2 / 1024}" "/proc/${PID[mem]}/status"; }
  echo "| $v | $(echo "$r" | field rps | cut -d. -f1) | $held | $(kb VmHWM) | $(kb RssAnon) | $(kb RssFile) |"
  stop mem
done
} | tee "$OUT"
