#!/usr/bin/env bash
# Drill 3: the SMTP server is down for OUTAGE seconds (default 60) during a stream of
# purchases over three instances -> after it returns, every buyer gets exactly one email.
DRILL=smtp_outage
source "$(dirname "$0")/lib.sh"
trap stripe_cleanup EXIT
OUTAGE=${OUTAGE:-60}
PURCHASES=${PURCHASES:-60}
RATE=${RATE:-1}
# Retry sooner than the shipped 30 s first backoff, so the drill ends in minutes.
export LICENSD_MAIL_RETRY_BASE_MS=${LICENSD_MAIL_RETRY_BASE_MS:-2000}
drill_db_reset
with_stripe; smtp_up
for i in 0 1 2; do start_instance $i; done
drill_product
$TOOLS post --urls "$(urls 0 1 2)" --secret whsec_drill --count "$PURCHASES" --rate "$RATE" --out "$DRILL_WORK/posted.jsonl" &
POSTER=$!
sleep 5
echo "SMTP down at +5 s for ${OUTAGE}s"; smtp_down
sleep "$OUTAGE"
smtp_up; echo "SMTP back at +$((5 + OUTAGE)) s"
wait $POSTER
wait_for_mails "$PURCHASES" 120 || true
sleep 6
python3 - "$DRILL_WORK/posted.jsonl" "$MAILS" "$PURCHASES" >"$DRILL_WORK/report" <<'PY'
import collections, json, sys
posted = [json.loads(l) for l in open(sys.argv[1])]
mails = [json.loads(l) for l in open(sys.argv[2])]
want = {p["email"] for p in posted if p["status"] == 200}
got = collections.Counter(r for m in mails for r in m["to"])
lost = sorted(want - set(got)); doubled = sorted(e for e, n in got.items() if n > 1)
print(len(posted), sum(p["status"] == 200 for p in posted), len(mails), len(lost), len(doubled))
PY
read -r posted acked mails lost doubled <"$DRILL_WORK/report"
pending=$(sql "SELECT count(*) FROM email_outbox WHERE status <> 'sent'")
echo "purchases: $posted, webhooks acknowledged: $acked; emails received: $mails; lost: $lost; doubled: $doubled; outbox rows not sent: $pending"
ok=1; [ "$acked" = "$PURCHASES" ] && [ "$lost" = 0 ] && [ "$doubled" = 0 ] && [ "$mails" = "$PURCHASES" ] && [ "$pending" = 0 ] && ok=0
verdict $ok "SMTP down ${OUTAGE}s during $PURCHASES purchases -> $mails emails, $lost lost, $doubled sent twice"
