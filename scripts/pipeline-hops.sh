#!/bin/bash
# Where an order's time goes between the shop's stages (issue 22): `shop serve` on
# PostgreSQL (fresh schemas), `shop load` at a fixed offered rate, then for the last
# four fifths of the orders each event's delay after the one before it in the same
# order (events of one order share a correlation id across the three stores; an
# event's `recorded_at` is its transaction's start), as p10 / p50 / p90 per hop, in
# the order of the path.
#
#   bash scripts/pipeline-hops.sh SHOP_BINARY [RATE] [ORDERS]
#
# RATE (10) and ORDERS (150) default; DATABASE_URL
# (postgres://postgres@127.0.0.1:5432/test) overrides. The binary may carry `serve`
# flags, quoted as one word with it.
set -u
[ $# -ge 1 ] || { echo "usage: $0 SHOP_BINARY [RATE] [ORDERS]" >&2; exit 2; }
read -r SHOP SERVE_ARGS <<< "$1"
RATE=${2:-10}; ORDERS=${3:-150}
URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
P=hops$$; LISTEN=127.0.0.1:18391
drop() {
  PGOPTIONS="-c client_min_messages=warning" psql -q -o /dev/null "$URL" -c "DO \$\$ DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE '${P}\_%' LOOP EXECUTE 'DROP SCHEMA ' || quote_ident(s) || ' CASCADE'; END LOOP; END \$\$"
}
# shellcheck disable=SC2086 # SERVE_ARGS holds several flags
"$SHOP" serve --listen "$LISTEN" --database-url "$URL" --schema-prefix "${P}_" --admin-open \
  $SERVE_ARGS > "/tmp/$P-serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2> /dev/null; wait $SERVE 2> /dev/null; drop' EXIT
for _ in $(seq 1 60); do
  curl -sf "http://$LISTEN/health/ready" > /dev/null && break
  sleep 0.5
done
curl -sf "http://$LISTEN/health/ready" > /dev/null \
  || { echo "shop serve is not ready; its log: /tmp/$P-serve.log" >&2; exit 1; }
"$SHOP" load --target "http://$LISTEN" --reads 0 --settle-s 120 --orders "$ORDERS" \
  --rate "$RATE" > "/tmp/$P-load.log" 2>&1 \
  || { echo "shop load failed; its output: /tmp/$P-load.log" >&2; exit 1; }
tail -1 "/tmp/$P-load.log"
rm -f "/tmp/$P-load.log" "/tmp/$P-serve.log"
psql -q "$URL" -c "
WITH e AS (
  SELECT 'ordering' AS store, stream_id, event_type, recorded_at, global_position AS pos, metadata->>'correlation_id' AS c FROM ${P}_ordering.events
  UNION ALL SELECT 'inventory', stream_id, event_type, recorded_at, global_position, metadata->>'correlation_id' FROM ${P}_inventory.events
  UNION ALL SELECT 'payment', stream_id, event_type, recorded_at, global_position, metadata->>'correlation_id' FROM ${P}_payment.events
), late AS (
  SELECT metadata->>'correlation_id' AS c FROM ${P}_ordering.events
  WHERE event_type = 'OrderPlaced' ORDER BY global_position DESC LIMIT $((ORDERS * 4 / 5))
), hops AS (
  SELECT store || ' ' || split_part(stream_id, '-', 1) || ' ' || event_type AS hop,
         extract(epoch FROM recorded_at - lag(recorded_at) OVER (PARTITION BY c ORDER BY recorded_at, store, pos)) * 1000 AS ms,
         extract(epoch FROM recorded_at - min(recorded_at) OVER (PARTITION BY c)) * 1000 AS since
  FROM e JOIN late USING (c)
)
SELECT hop, count(*) AS orders,
       round(percentile_cont(0.1) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p10_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p50_ms,
       round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p90_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY since)::numeric, 1) AS since_placed_p50_ms
FROM hops WHERE ms IS NOT NULL GROUP BY hop ORDER BY since_placed_p50_ms"
