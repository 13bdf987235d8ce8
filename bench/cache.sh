#!/usr/bin/env bash
# Issue 14's side-by-side benchmark on one seeded database, every figure from the same run,
# interleaved per concurrency: Postgres's two ceilings (pgbench: a prepared point read of a
# license by key joined to its product over 64 hot keys, and licensd's own miss statement),
# then licensd validate from the cache (64 hot keys), without the cache (budget 0, random
# keys), with a cache smaller than the working set (1 MiB, random keys), with a fingerprint
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
declare -A PID=()
cleanup() { for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
psql_db() { psql "$PGURL/$DB" -qAt "$@"; }

N=$(psql_db -c "SELECT count(*) FROM licenses")
psql_db -c "\copy (SELECT bench_key(i) FROM generate_series(1, 64) i) TO '$WORK/hot.txt'"
psql_db -c "\copy (SELECT bench_key((random() * ($N - 1))::bigint + 1) FROM generate_series(1, 100000)) TO '$WORK/all.txt'"
psql_db -c "\copy (SELECT bench_key(i) FROM generate_series(1, $FP_KEYS) i) TO '$WORK/fp.txt'"
# The device every fingerprint validate names, activated on the first FP_KEYS licenses.
psql_db -c "INSERT INTO activations (license_id, fingerprint)
  SELECT id, 'bench-dev' FROM licenses WHERE key IN (SELECT bench_key(i) FROM generate_series(1, $FP_KEYS) i)
  ON CONFLICT DO NOTHING"

# Three servers: the cache as shipped, no cache, and a cache smaller than the working set.
start() { # name port budget_mib
  DATABASE_URL=$PGURL/$DB LICENSD_BIND=127.0.0.1:$2 LICENSD_CACHE_BUDGET_MIB=$3 \
    "$LICENSD" serve >"$WORK/$1.log" 2>&1 &
  PID[$1]=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/readyz" >/dev/null && return; sleep 0.1; done
  cat "$WORK/$1.log"; exit 1
}
start cached "$PORT" "${CACHE_MIB:-64}"
start nocache $((PORT + 1)) 0
start small $((PORT + 2)) 1

wrk_run() { # port mode keys connections
  KEYS_FILE=$WORK/$3.txt WRK_CONNECTIONS=$4 wrk -t1 -c"$4" -d"${DURATION}s" --timeout 10s \
    -s "$ROOT/bench/load.lua" "http://127.0.0.1:$1" -- "$2" | grep '^RESULT'
}
pg_run() { # script connections extra-args...
  local f=$1 c=$2; shift 2
  pgbench -n -M prepared -f "$ROOT/bench/$f" "$@" -c "$c" -j 1 -T "$DURATION" "$PGURL/$DB" 2>&1 |
    sed -n 's/^tps = \([0-9.]*\) .*/RESULT rps=\1 p50_ms=- p99_ms=- requests=0/p' | head -1
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Postgres CPU: a snapshot "pid ticks" of every postgres process; a delta counts the pids
# present at the end (a backend that exited meanwhile is lost, one that started is whole).
pg_snap() { local p; for p in $(pgrep -x postgres); do echo "$p $(ticks "$p")"; done; }
pg_delta() { awk 'NR == FNR { t0[$1] = $2; next } { d += $2 - ($1 in t0 ? t0[$1] : 0) } END { print d + 0 }' "$1" "$2"; }
field() { sed -n "s/.*$1=\([0-9.-]*\).*/\1/p"; }
HZ=$(getconf CLK_TCK)

measure() { # label server(or -) command...
  local label=$1 server=$2; shift 2
  local load s0 p0 r s1 p1 rps reqs
  load=$(cut -d' ' -f1 /proc/loadavg)
  s0=$([ "$server" = - ] && echo 0 || ticks "${PID[$server]}"); pg_snap >"$WORK/pg0"
  r=$("$@")
  s1=$([ "$server" = - ] && echo 0 || ticks "${PID[$server]}"); pg_snap >"$WORK/pg1"
  rps=$(echo "$r" | field rps); reqs=$(echo "$r" | field requests)
  [ "$reqs" = 0 ] && reqs=$(echo "$rps * $DURATION" | bc)
  printf '| %s | %s | %.0f | %s | %s | %s | %.0f | %s |\n' "$C" "$label" "$rps" \
    "$(echo "$r" | field p50_ms)" "$(echo "$r" | field p99_ms)" \
    "$([ "$server" = - ] && echo - || printf '%.0f' "$(echo "($s1 - $s0) * 1000000 / $HZ / $reqs" | bc -l)")" \
    "$(echo "$(pg_delta "$WORK/pg0" "$WORK/pg1") * 1000000 / $HZ / $reqs" | bc -l)" "$load" | tee -a "$OUT"
}

# Warm-up: the cached server learns the hot keys and the fingerprinted ones.
wrk_run "$PORT" validate hot 16 >/dev/null
wrk_run "$PORT" validate_fp fp 16 >/dev/null
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
  measure "validate, 1 MiB cache < working set (random keys)" small wrk_run $((PORT + 2)) validate all "$C"
  measure "validate + fingerprint, cached ($FP_KEYS keys)" cached wrk_run "$PORT" validate_fp fp "$C"
  measure "validate + fingerprint, no cache ($FP_KEYS keys)" nocache wrk_run $((PORT + 1)) validate_fp fp "$C"
  measure "activate (new device each call)" nocache wrk_run $((PORT + 1)) activate all "$C"
  measure "/healthz" cached wrk_run "$PORT" healthz hot "$C"
done
{
  echo
  for s in cached nocache small; do
    echo "Peak RSS ($s): $(($(awk '/VmHWM/ {print $2}' "/proc/${PID[$s]}/status") / 1024)) MiB"
  done
  echo
  echo "Load at end: $(cat /proc/loadavg)"
} | tee -a "$OUT"
