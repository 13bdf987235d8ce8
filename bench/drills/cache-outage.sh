#!/usr/bin/env bash
# Drill 7: validates through a Postgres restart, answered from the cache. Three licensd
# instances hold a license in their validate caches; 6 clients validate it (with and
# without an activated device) while Postgres is stopped for OUTAGE seconds and started.
# A license changed just before the outage is not held (its entry was dropped), so the
# activations of the stream go to a second license.
# Pass: no 5xx and no connection error on any validate; answers given while Postgres was
# down carry "stale_since" (the signed mark of a cached answer); an activation tried
# during the outage answers 503; every instance answers fresh (no stale_since) after.
#
# Runs its own throw-away Postgres cluster like postgres-restart.sh (DRILL_PG_PORT).
DRILL=cache_outage
DRILL_PG_PORT=${DRILL_PG_PORT:-18498}
OUTAGE=${OUTAGE:-6}
source "$(dirname "$0")/pg_cluster.sh"
own_pg_cluster "$DRILL_PG_PORT"
export DRILL_PORT_BASE=${DRILL_PORT_BASE:-18440}
source "$(dirname "$0")/lib.sh"
export LICENSD_DB_TIMEOUT_SECS=${LICENSD_DB_TIMEOUT_SECS:-2}
trap drill_cleanup EXIT

drill_db_reset
for i in 0 1 2; do start_instance $i; done
"$LICENSD" product create --name "Drill App" --slug drill >/dev/null
KEY=$("$LICENSD" license create --product drill --email buyer@example.com --no-email |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
# Activations go to a second license: a change to a license drops it from every cache
# (exactly what must happen), so the drill keeps the validated one unchanged.
OTHER=$("$LICENSD" license create --product drill --email other@example.com --no-email |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
curl -sf "http://127.0.0.1:$DRILL_PORT_BASE/v1/licenses/activate" -H 'content-type: application/json' \
  -d "{\"key\":\"$KEY\",\"fingerprint\":\"laptop\"}" >/dev/null

# One line per request: time instance kind status stale(0/1) code.
python3 - "$KEY" "$OTHER" "$DRILL_PORT_BASE" $((OUTAGE + 20)) >"$DRILL_WORK/stream" <<'PY' &
import json, sys, threading, time, urllib.request, urllib.error
key, other, base, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
t0 = time.time(); out = []; lock = threading.Lock()
def call(inst, kind, body):
    req = urllib.request.Request(f"http://127.0.0.1:{base + inst}/v1/licenses/{kind}",
                                 json.dumps(body).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {}
    except Exception:
        return "conn", {}
def client(c):
    n = 0
    while time.time() - t0 < seconds:
        n += 1
        inst = c % 3
        body = {"key": key}
        if c % 2: body["fingerprint"] = "laptop"
        status, answer = call(inst, "validate", body)
        stale = 1 if "stale_since" in answer else 0
        with lock: out.append(f"{time.time() - t0:.2f} {inst} validate {status} {stale} {answer.get('code', '-')}")
        if n % 25 == 0:
            status, _ = call(inst, "activate", {"key": other, "fingerprint": f"c{c}-{n}"})
            with lock: out.append(f"{time.time() - t0:.2f} {inst} activate {status} 0 -")
        time.sleep(0.01)
ts = [threading.Thread(target=client, args=(c,)) for c in range(6)]
for t in ts: t.start()
for t in ts: t.join()
print("\n".join(out))
PY
STREAM=$!
postgres_outage 8 "$OUTAGE"
wait $STREAM

validates=$(stream_count '$3 == "validate"')
v5xx=$(stream_count '$3 == "validate" && $4 >= 500')
vconn=$(stream_count '$3 == "validate" && $4 == "conn"')
notvalid=$(stream_count '$3 == "validate" && $4 == 200 && $6 != "VALID"')
stale=$(stream_count '$3 == "validate" && $5 == 1')
a503=$(stream_count '$3 == "activate" && $4 == 503')
# Fresh answers from every instance after the outage (+3 s grace), and no stale one late.
fresh_after=$(awk -v t=$((8 + OUTAGE + 3)) '$1 > t && $3 == "validate" && $4 == 200 && $5 == 0 {print $2}' "$DRILL_WORK/stream" | sort -u | wc -l)
late_stale=$(awk -v t=$((8 + OUTAGE + 5)) '$1 > t && $5 == 1' "$DRILL_WORK/stream" | wc -l)
echo "validates: $validates; 5xx: $v5xx; connection errors: $vconn; not VALID: $notvalid; marked stale: $stale"
echo "activations answered 503 during the outage: $a503; instances answering fresh after: $fresh_after/3; stale answers later than 5 s after: $late_stale"
[ -n "${KEEP_STREAM:-}" ] && cp "$DRILL_WORK/stream" "$KEEP_STREAM"
ok=1
[ "$v5xx" = 0 ] && [ "$vconn" = 0 ] && [ "$notvalid" = 0 ] && [ "$stale" -gt 0 ] && [ "$a503" -gt 0 ] &&
  [ "$fresh_after" = 3 ] && [ "$late_stale" = 0 ] && ok=0
verdict $ok "Postgres down ${OUTAGE}s: $validates validates of a cached key, $v5xx x 5xx, $vconn connection errors, $stale answered from the cache marked stale_since, $a503 activations 503, $fresh_after/3 instances fresh after"
