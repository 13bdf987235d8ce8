#!/usr/bin/env bash
# Drill 6: a thousand connections from one address stall mid-body. Expect: at most
# LICENSD_MAX_CONNECTIONS_PER_IP (128) of them are kept, each answered 408 and closed at
# the body deadline (LICENSD_BODY_TIMEOUT_SECS, 10 s); the rest are answered 429 and
# closed at once; the server's open descriptors stay bounded; /healthz keeps answering
# another address throughout. About 15 s.
DRILL=slowbodies
source "$(dirname "$0")/lib.sh"
drill_db_reset
start_instance 0
port=$DRILL_PORT_BASE
pid=${PIDS[0]}

python3 - "$port" "$pid" "$DRILL_WORK/answers.txt" <<'PY' &
import socket, sys, time
port, pid, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
head = (b"POST /v1/licenses/validate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 1000\r\n\r\n{\"key\": \"")
socks = []
for _ in range(1000):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(head)
    socks.append(s)
open(out + ".opened", "w").close()
answers = {}
for s in socks:
    s.settimeout(30)
    try:
        line = s.recv(4096).split(b"\r\n", 1)[0].decode() or "closed"
    except OSError as e:
        line = f"error {e}"
    answers[line] = answers.get(line, 0) + 1
with open(out, "w") as f:
    for k, v in sorted(answers.items()):
        f.write(f"{v} {k}\n")
PY
client=$!

fds_peak=0
fds_settled=
health_failures=0
health_ok=0
while kill -0 "$client" 2>/dev/null; do
  fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  (( fds > fds_peak )) && fds_peak=$fds
  # Once all 1000 are open and the refused ones closed: what the server still holds.
  if [ -z "$fds_settled" ] && [ -e "$DRILL_WORK/answers.txt.opened" ]; then
    sleep 1; fds_settled=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
  fi
  if curl -sf --max-time 5 --interface 127.0.0.2 "http://127.0.0.1:$port/healthz" >/dev/null; then
    health_ok=$((health_ok + 1))
  else
    health_failures=$((health_failures + 1))
  fi
  sleep 0.5
done
wait "$client"
cat "$DRILL_WORK/answers.txt"
echo "server descriptors: peak $fds_peak while connections arrived, ${fds_settled:-?} once all were open; /healthz from another address: $health_ok answered, $health_failures failed"
t408=$(awk '/ 408 /{print $1}' "$DRILL_WORK/answers.txt"); t429=$(awk '/ 429 /{print $1}' "$DRILL_WORK/answers.txt")
ok=1
[ "${t408:-0}" = 128 ] && [ "${t429:-0}" = 872 ] && [ "$health_failures" = 0 ] && [ "$health_ok" -gt 0 ] && [ "${fds_settled:-9999}" -lt 300 ] && ok=0
verdict $ok "1000 stalled bodies from one address: 128 kept until 408, 872 refused with 429, ${fds_settled:-?} descriptors held, /healthz answered"
