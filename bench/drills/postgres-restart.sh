#!/usr/bin/env bash
# Drill 5: Postgres restarted mid-stream. Three licensd instances take a steady stream of
# validates and activations; Postgres is stopped for OUTAGE seconds, then started again.
# Pass: during the outage the answers are 503 (never 500, never a hang past the pool
# timeout), every instance answers 200 again afterwards without being restarted, every
# activation that got a 201 is stored, and no activation is half-made (rows = counters).
#
# The drill runs its own throw-away Postgres cluster (initdb, port DRILL_PG_PORT), so
# restarting it disturbs nobody else on the machine. To drill a real cluster instead, set
# PGURL and PG_STOP / PG_START, e.g. PG_STOP="pg_ctlcluster --skip-systemctl-redirect 15 main stop".
DRILL=postgres_restart
DRILL_PG_PORT=${DRILL_PG_PORT:-18499}
OUTAGE=${OUTAGE:-5}
source "$(dirname "$0")/pg_cluster.sh"
if [ -z "${PG_STOP:-}" ]; then
  own_pg_cluster "$DRILL_PG_PORT"
else
  as_pg() { "$@"; }
  pg_cleanup() { :; }
fi
source "$(dirname "$0")/lib.sh"
export LICENSD_DB_TIMEOUT_SECS=${LICENSD_DB_TIMEOUT_SECS:-2}
trap drill_cleanup EXIT

drill_db_reset
for i in 0 1 2; do start_instance $i; done
"$LICENSD" product create --name "Drill App" --slug drill >/dev/null
KEY=$("$LICENSD" license create --product drill --email buyer@example.com --no-email |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

# The stream: 6 clients (2 per instance), alternating validate and activate, for the
# outage plus 10 s either side. One line per request: time instance kind status.
python3 - "$KEY" "$DRILL_PORT_BASE" $((OUTAGE + 20)) >"$DRILL_WORK/stream" <<'PY' &
import json, sys, threading, time, urllib.request, urllib.error
key, base, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
t0 = time.time(); out = []; lock = threading.Lock()
def client(c):
    n = 0
    while time.time() - t0 < seconds:
        n += 1
        inst = c % 3
        kind = "activate" if n % 2 else "validate"
        body = {"key": key}
        if kind == "activate": body["fingerprint"] = f"c{c}-{n}"
        req = urllib.request.Request(f"http://127.0.0.1:{base + inst}/v1/licenses/{kind}",
                                     json.dumps(body).encode(), {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status = r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except Exception:
            status = "conn"
        fp = body.get("fingerprint", "-")
        with lock: out.append(f"{time.time() - t0:.2f} {inst} {kind} {status} {fp}")
        time.sleep(0.02)
ts = [threading.Thread(target=client, args=(c,)) for c in range(6)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
PY
STREAM=$!
postgres_outage 8 "$OUTAGE"
wait $STREAM

total=$(wc -l <"$DRILL_WORK/stream")
ok200=$(stream_count '$4 ~ /^20[01]$/')
s503=$(stream_count '$4 == 503')
s500=$(stream_count '$4 >= 500 && $4 != 503')
conn=$(stream_count '$4 == "conn"')
# After the outage (+2 s grace), each instance must have answered 200/201 again.
recovered=$(awk -v t=$((8 + OUTAGE + 2)) '$1 > t && $4 ~ /^20[01]$/ {print $2}' "$DRILL_WORK/stream" | sort -u | wc -l)
late503=$(awk -v t=$((8 + OUTAGE + 5)) '$1 > t && $4 == 503' "$DRILL_WORK/stream" | wc -l)
acked=$(awk '$3 == "activate" && $4 == 201 {print $5}' "$DRILL_WORK/stream" | sort)
stored=$(sql "SELECT fingerprint FROM activations ORDER BY 1" | sort)
lost=$(comm -23 <(echo "$acked") <(echo "$stored") | grep -c . || true)
rows=$(sql "SELECT count(*) FROM activations")
counter=$(sql "SELECT activations_count FROM licenses")
echo "requests: $total; 200/201: $ok200; 503: $s503; other 5xx: $s500; connection errors: $conn"
echo "instances answering 200 after the outage: $recovered/3; 503s later than 5 s after: $late503"
echo "activations acknowledged 201 but not stored: $lost; activation rows $rows, counter $counter"
ok=1
[ "$s500" = 0 ] && [ "$conn" = 0 ] && [ "$s503" -gt 0 ] && [ "$recovered" = 3 ] && [ "$late503" = 0 ] &&
  [ "$lost" = 0 ] && [ "$rows" = "$counter" ] && ok=0
verdict $ok "Postgres down ${OUTAGE}s under load: $s503 x 503, $s500 x other 5xx, $conn connection errors, $recovered/3 instances recovered without restart, $lost acknowledged activations lost, rows $rows = counter $counter"
