#!/usr/bin/env bash
# Webhook throughput and webhook-to-email latency: signed checkout.session.completed events
# posted at a steady RATE for SECONDS to INSTANCES licensd processes (one Postgres), with a
# local fake Stripe API (line items) and a real SMTP server (aiosmtpd) on loopback.
#   bench/webhook.sh                 # RATES="10 25 50" SECONDS_EACH=20 INSTANCES=1
DRILL=webhook_bench
source "$(dirname "$0")/drills/lib.sh"
python3 -c 'import aiosmtpd' 2>/dev/null || { echo "bench/webhook.sh: python3 module aiosmtpd missing (pip install aiosmtpd)" >&2; exit 1; }
trap stripe_cleanup EXIT
RATES=${RATES:-10 25 50}
SECONDS_EACH=${SECONDS_EACH:-20}
INSTANCES=${INSTANCES:-1}
drill_db_reset
with_stripe; smtp_up
for i in $(seq 0 $((INSTANCES - 1))); do start_instance "$i"; done
drill_product
echo "| target events/s | acknowledged events/s | webhook p50 ms | webhook p99 ms | email delivered p50 ms | p99 ms | max ms | failed | load |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for rate in $RATES; do
  : >"$MAILS"
  n=$(echo "$rate * $SECONDS_EACH" | bc | cut -d. -f1)
  l=$(cut -d' ' -f1 /proc/loadavg)
  $TOOLS post --urls "$(urls $(seq 0 $((INSTANCES - 1))))" --secret whsec_drill --count "$n" --rate "$rate" \
    --prefix "r$rate" --max-attempts 1 --out "$DRILL_WORK/posted-$rate.jsonl"
  wait_for_mails "$n" 60 || true
  python3 - "$DRILL_WORK/posted-$rate.jsonl" "$MAILS" "$rate" "$l" <<'PY'
import json, sys
posted = [json.loads(l) for l in open(sys.argv[1])]
mails = {}
for l in open(sys.argv[2]):
    m = json.loads(l)
    for r in m["to"]: mails.setdefault(r, m["t"])
ok = [p for p in posted if p["status"] == 200]
span = max(p["done"] for p in posted) - min(p["sent"] for p in posted)
def pct(xs, q):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")
hook = [p["done"] - p["sent"] for p in ok]
mail = [mails[p["email"]] - p["sent"] for p in ok if p["email"] in mails]
print(f"| {sys.argv[3]} | {len(ok) / span:.1f} | {pct(hook, .5):.1f} | {pct(hook, .99):.1f} | "
      f"{pct(mail, .5):.1f} | {pct(mail, .99):.1f} | {max(mail) * 1000 if mail else float('nan'):.1f} | "
      f"{len(posted) - len(ok) + len(ok) - len(mail)} | {sys.argv[4]} |")
PY
done
