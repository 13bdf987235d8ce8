# Shared by bench/cache.sh and bench/threading.sh: servers under test, wrk and pgbench runs,
# and one table row per measurement with CPU per request of the server and of Postgres.
# The sourcing script sets DB, DURATION, PGURL, ROOT, LICENSD, WORK, OUT and C (the
# concurrency of the current row).
declare -A PID=()
cleanup() { for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
psql_db() { psql "$PGURL/$DB" -qAt "$@"; }

# start NAME PORT [VAR=value ...]: a licensd on PORT with extra settings, ready when it returns.
start() {
  local name=$1 port=$2; shift 2
  env DATABASE_URL="$PGURL/$DB" LICENSD_BIND="127.0.0.1:$port" "$@" \
    "$LICENSD" serve >"$WORK/$name.log" 2>&1 &
  PID[$name]=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return; sleep 0.1; done
  cat "$WORK/$name.log"; exit 1
}

stop() { kill "${PID[$1]}" 2>/dev/null || true; wait "${PID[$1]}" 2>/dev/null || true; unset "PID[$1]"; }

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
# Postgres CPU: every live postgres process's ticks plus what the postmaster collected from
# its children that exited (cutime + cstime), so a backend that ends between two snapshots
# (pgbench's, at the end of a run) still counts, and a reused pid cannot subtract.
pg_ticks() {
  local master p sum=0
  master=$(pgrep -o -x postgres) # the oldest: the postmaster
  for p in $(pgrep -x postgres); do sum=$((sum + $(ticks "$p"))); done
  echo $((sum + $(awk '{print $16 + $17}' "/proc/$master/stat" 2>/dev/null || echo 0)))
}
pg_snap() { pg_ticks; }
pg_delta() { echo $(($(cat "$2") - $(cat "$1"))); }
field() { sed -n "s/.*$1=\([0-9.-]*\).*/\1/p"; }
HZ=$(getconf CLK_TCK)

# CPU per request is taken over the middle of each run (from 1 s in to 1 s before the end),
# while every process of the measurement is alive: pgbench's backends exit with it.
measure() { # label server(or -) command...
  local label=$1 server=$2; shift 2
  local load s0 s1 r rps window
  load=$(cut -d' ' -f1 /proc/loadavg)
  "$@" >"$WORK/result" &
  local run=$!
  sleep 1
  s0=$([ "$server" = - ] && echo 0 || ticks "${PID[$server]}"); pg_snap >"$WORK/pg0"
  local t0; t0=$(date +%s.%N)
  sleep $((DURATION - 2))
  s1=$([ "$server" = - ] && echo 0 || ticks "${PID[$server]}"); pg_snap >"$WORK/pg1"
  window=$(echo "$(date +%s.%N) - $t0" | bc -l)
  wait "$run"
  r=$(cat "$WORK/result")
  rps=$(echo "$r" | field rps)
  local reqs; reqs=$(echo "$rps * $window" | bc -l)
  printf '| %s | %s | %.0f | %s | %s | %s | %.0f | %s |\n' "$C" "$label" "$rps" \
    "$(echo "$r" | field p50_ms)" "$(echo "$r" | field p99_ms)" \
    "$([ "$server" = - ] && echo - || printf '%.0f' "$(echo "($s1 - $s0) * 1000000 / $HZ / $reqs" | bc -l)")" \
    "$(echo "$(pg_delta "$WORK/pg0" "$WORK/pg1") * 1000000 / $HZ / $reqs" | bc -l)" "$load" | tee -a "$OUT"
}

