#!/usr/bin/env bash
# Drill 1: the same checkout webhook delivered 50 times at once, spread over three
# instances -> one license, one outbox row, one email.
DRILL=webhook_once
source "$(dirname "$0")/lib.sh"
trap stripe_cleanup EXIT
DELIVERIES=${DELIVERIES:-50}
drill_db_reset
with_stripe; smtp_up
for i in 0 1 2; do start_instance $i; done
drill_product
$TOOLS post --urls "$(urls 0 1 2)" --secret whsec_drill --count "$DELIVERIES" --same --out "$DRILL_WORK/posted.jsonl"
ok200=$(grep -c '"status": 200' "$DRILL_WORK/posted.jsonl" || true)
wait_for_mails 1 30 || true
sleep 6  # longer than the worker's poll: a second email would have been sent by now
licenses=$(sql "SELECT count(*) FROM licenses WHERE stripe_checkout_session_id = 'cs_drill_0'")
events=$(sql "SELECT count(*) FROM stripe_events")
outbox=$(sql "SELECT count(*) FROM email_outbox")
mails=$(wc -l <"$MAILS")
echo "deliveries: $DELIVERIES, answered 200: $ok200; licenses: $licenses; event rows: $events; outbox rows: $outbox; emails received: $mails"
ok=1; [ "$ok200" = "$DELIVERIES" ] && [ "$licenses" = 1 ] && [ "$events" = 1 ] && [ "$outbox" = 1 ] && [ "$mails" = 1 ] && ok=0
verdict $ok "same event x$DELIVERIES over 3 instances -> $licenses license(s), $outbox outbox row(s), $mails email(s) (want 1, 1, 1)"
