#!/usr/bin/env bash
# Drill 2: 100 concurrent activations with distinct fingerprints on a 3-seat license,
# spread over three licensd instances sharing one Postgres -> exactly 3 succeed.
DRILL=activation_limit
source "$(dirname "$0")/lib.sh"
ATTEMPTS=${ATTEMPTS:-100}

drill_db_reset
for i in 0 1 2; do start_instance $i; done
"$LICENSD" product create --name "Drill App" --slug drill --max-activations 3 >/dev/null
KEY=$("$LICENSD" license create --product drill --email buyer@example.com --no-email |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

python3 - "$KEY" "$ATTEMPTS" "$DRILL_PORT_BASE" >"$DRILL_WORK/statuses" <<'PY'
import json, sys, threading, urllib.request, urllib.error
key, n, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start = threading.Barrier(n)
statuses = [None] * n
def activate(i):
    body = json.dumps({"key": key, "fingerprint": f"device-{i}"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{base + i % 3}/v1/licenses/activate",
                                 body, {"content-type": "application/json"})
    start.wait()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            statuses[i] = r.status
    except urllib.error.HTTPError as e:
        statuses[i] = e.code
    except Exception as e:
        statuses[i] = repr(e)
threads = [threading.Thread(target=activate, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
for s in statuses: print(s)
PY

created=$(grep -c '^201$' "$DRILL_WORK/statuses" || true)
refused=$(grep -c '^409$' "$DRILL_WORK/statuses" || true)
other=$((ATTEMPTS - created - refused))
rows=$(sql "SELECT count(*) FROM activations")
counter=$(sql "SELECT activations_count FROM licenses")
echo "answers: $created x 201, $refused x 409, $other other; activation rows: $rows; licenses.activations_count: $counter"
ok=1; [ "$created" = 3 ] && [ "$refused" = $((ATTEMPTS - 3)) ] && [ "$rows" = 3 ] && [ "$counter" = 3 ] && ok=0
verdict $ok "$ATTEMPTS concurrent activations over 3 instances on a 3-seat license -> $created created, $rows rows, counter $counter (want 3, 3, 3; $other lost/other answers)"
