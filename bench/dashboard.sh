#!/usr/bin/env bash
# Times the dashboard's search and license pages against a seeded database, server-side
# view (curl on loopback, time to the last byte), and prints the query plans of each search.
#   bench/seed.sh licensd_bench_1m 1000000 && bench/dashboard.sh licensd_bench_1m
# Needs: psql, curl, a built licensd binary (release if present, else debug).
set -euo pipefail
DB=${1:?database name (seeded by bench/seed.sh)}
RUNS=${RUNS:-50}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LICENSD=${LICENSD:-$ROOT/target/release/licensd}
[ -x "$LICENSD" ] || LICENSD=$ROOT/target/debug/licensd
PORT=${PORT:-18481}
BASE="http://127.0.0.1:$PORT"
export DATABASE_URL="$PGURL/$DB" LICENSD_BIND="127.0.0.1:$PORT" LICENSD_LOG=warn LICENSD_LOGIN_MAX_ATTEMPTS=1000
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

psql_db() { psql "$PGURL/$DB" -v ON_ERROR_STOP=1 -qAt "$@"; }
psql_db -c "DELETE FROM web_sessions; DELETE FROM users WHERE email = 'bench@example.com'"
PASSWORD=$("$LICENSD" user create --email bench@example.com 2>/dev/null)
"$LICENSD" serve >/dev/null 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done

JAR="$WORK/cookies"
curl -s -c "$JAR" -b "$JAR" "$BASE/admin/login" >/dev/null
CSRF=$(awk '$6 == "licensd_csrf" {print $7}' "$JAR")
curl -s -c "$JAR" -b "$JAR" -o /dev/null -d "csrf=$CSRF&email=bench@example.com" \
  --data-urlencode "password=$PASSWORD" "$BASE/admin/login"

# Terms from the seeded rows (bench_key(i), buyerI@example.com, every 10th with Stripe ids).
KEY=$(psql_db -c "SELECT bench_key(424242)")
LICENSE_ID=$(psql_db -c "SELECT id FROM licenses WHERE key = bench_key(424240)")
declare -a NAMES=(
  "no query (newest first)"
  "key, 5 characters, lower case"
  "key, whole"
  "email, whole"
  "email, prefix"
  "cs_ checkout session"
  "pi_ payment intent"
  "sub_ subscription"
  "cus_ customer"
  "status filter: revoked"
  "license page"
)
declare -a PATHS=(
  "/admin/licenses"
  "/admin/licenses?q=$(echo "${KEY:6:5}" | tr 'A-Z' 'a-z')"
  "/admin/licenses?q=$KEY"
  "/admin/licenses?q=buyer424242%40example.com"
  "/admin/licenses?q=buyer42424%40"
  "/admin/licenses?q=cs_bench_424240"
  "/admin/licenses?q=pi_bench_424240"
  "/admin/licenses?q=sub_bench_424240"
  "/admin/licenses?q=cus_bench_424240"
  "/admin/licenses?status=revoked"
  "/admin/licenses/$LICENSE_ID"
)

printf '%-34s %8s %8s %8s  %s\n' "page ($RUNS runs each)" "median" "p95" "max" "rows shown"
for i in "${!PATHS[@]}"; do
  url="$BASE${PATHS[$i]}"
  code=$(curl -s -b "$JAR" -o "$WORK/page" -w '%{http_code}' "$url")
  [ "$code" = 200 ] || { echo "${NAMES[$i]}: HTTP $code" >&2; exit 1; }
  rows=$(grep -c '<tr><td><a href="/admin/licenses/' "$WORK/page" || true)
  for _ in $(seq 1 "$RUNS"); do
    curl -s -b "$JAR" -o /dev/null -w '%{time_total}\n' "$url"
  done | sort -n | awk -v name="${NAMES[$i]}" -v rows="$rows" '
    { t[NR] = $1 * 1000 }
    END { printf "%-34s %6.1f ms %6.1f ms %6.1f ms  %s\n", name, t[int(NR/2)+1], t[int(NR*0.95)], t[NR], rows }'
done

echo
echo "== query plans (the id query of each search; the page then loads those ids by primary key)"
explain() {
  echo "-- $1"
  psql_db -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING ON, SUMMARY ON) $2" | grep -E 'Scan|Execution Time|Limit|Sort|Recheck' | sed 's/^/   /'
}
explain "key part" "SELECT id FROM licenses WHERE key LIKE '%${KEY:6:5}%' ORDER BY created_at DESC, id DESC LIMIT 51"
explain "email prefix" "SELECT id FROM licenses WHERE lower(email) LIKE 'buyer42424@%' ORDER BY created_at DESC, id DESC LIMIT 51"
explain "checkout session" "SELECT id FROM licenses WHERE stripe_checkout_session_id = 'cs_bench_424240' ORDER BY created_at DESC, id DESC LIMIT 51"
explain "payment intent" "SELECT id FROM licenses WHERE stripe_payment_intent_id = 'pi_bench_424240' ORDER BY created_at DESC, id DESC LIMIT 51"
explain "subscription" "SELECT id FROM licenses WHERE stripe_subscription_id = 'sub_bench_424240' ORDER BY created_at DESC, id DESC LIMIT 51"
explain "customer" "SELECT id FROM licenses WHERE stripe_customer_id = 'cus_bench_424240' ORDER BY created_at DESC, id DESC LIMIT 51"
explain "newest first" "SELECT id FROM licenses ORDER BY created_at DESC, id DESC LIMIT 51"
explain "license page: email status" "SELECT id FROM email_outbox WHERE license_ids @> ARRAY['$LICENSE_ID'::uuid] AND kind = 'license_keys' ORDER BY created_at DESC LIMIT 1"
explain "license page: history" "SELECT id FROM license_history WHERE license_id = '$LICENSE_ID' ORDER BY id DESC LIMIT 1000"
