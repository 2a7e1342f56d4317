#!/usr/bin/env bash
# What bounds issue 22's target (2,000 settled orders/s on PostgreSQL) on this machine,
# with no Rust client in the way: pgbench (a C client, extended protocol) writes every
# row one settled order leaves behind in the shop, in the shop's own table shapes, for
# batches of B orders at a time, perfectly batched:
#   - the log: 7 events in 5 streams (order placed and confirmed, stock reserved, the
#     two inbox copies, payment requested and captured) with their stream rows;
#   - read models: 6 document upserts (orders twice, products, reservations, payments
#     twice) and their checkpoints (one row per batch);
#   - the saga: its instance (inserted, updated 4 times), 3 handled inputs, 3 outbox
#     commands inserted and marked dispatched, a deadline scheduled and cancelled;
#   - the inboxes: 2 source-position upserts.
# Variant "staged": the 15 transactions a batch needs when each stage waits for the
# previous one's commit, as the pipeline does (place, the orders view and the saga,
# dispatch, reserve, the inventory views, the inbox, ... confirm, the orders view);
# variant "one": every statement of the batch in one transaction (no design that keeps
# the stages apart can beat it). No reads at all (the pipeline's log polls, aggregate
# loads and idempotency checks are left out), so both are upper bounds.
#
#   scripts/pipeline-ceiling.sh [seconds per run (default 15)] [clients (default 4)]
#
# Needs pgbench and psql. DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
# works in the schema tessera_pipeline_ceiling, dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
seconds="${1:-15}" clients="${2:-4}"
say() { printf '[pipeline-ceiling] %s\n' "$*" >&2; }
pgbin() {
    command -v "$1" 2>/dev/null && return
    ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1
}
PGBENCH="$(pgbin pgbench)" PSQL="$(pgbin psql)"
[ -n "$PGBENCH" ] && [ -n "$PSQL" ] || { say "needs pgbench and psql"; exit 1; }
s=tessera_pipeline_ceiling
dir="$(mktemp -d)"
psql_() { "$PSQL" -q -v ON_ERROR_STOP=1 "$url" "$@"; }
cleanup() { psql_ -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

say "setting up $s at $url"
psql_ -c "DROP SCHEMA IF EXISTS $s CASCADE" -c "CREATE SCHEMA $s" 2>/dev/null
sed "s/{schema}/$s/g" stores/postgres/src/migrations/0001_events.sql | psql_
sed "s/{schema}/$s/g" projections/src/process/postgres/sql/create.sql | psql_ 2>/dev/null
psql_ -c "CREATE TABLE $s.docs (view text NOT NULL, id text NOT NULL, version bigint NOT NULL, doc jsonb NOT NULL, PRIMARY KEY (view, id))" \
      -c "CREATE TABLE $s.checkpoints (name text PRIMARY KEY, position text NOT NULL)" \
      -c "CREATE TABLE $s.positions (key text PRIMARY KEY, position text NOT NULL)" \
      -c "INSERT INTO $s.checkpoints SELECT n || '-' || c, '0.0' FROM unnest(array['ordering_orders','inventory_products','inventory_reservations','payment_payments','payment_worker','fulfilment']) n, generate_series(0, 63) c"

# One batch: `:k` names it, order i of it has id md5(k-i); `-- commit` marks the end of a
# stage (a COMMIT; BEGIN in the staged variant, nothing in the other).
o="FROM generate_series(1, :b) i"
id="md5(:k::text || '-' || i)::uuid"
ev="INSERT INTO $s.events (stream_id, version, event_id, event_type, schema_version, data, metadata)"
meta="jsonb_build_object('correlation_id', $id, 'causation_id', gen_random_uuid())"
cat > "$dir/batch.sql" <<SQL
\\set k random(1, 2000000000)
BEGIN;
INSERT INTO $s.streams SELECT 'order-' || $id, 0 $o;
$ev SELECT 'order-' || $id, 0, gen_random_uuid(), 'OrderPlaced', 1, jsonb_build_object('order_id', $id, 'customer_id', 'alice', 'lines', jsonb_build_array(jsonb_build_object('sku', 'tea', 'quantity', 2, 'unit_price_cents', 450)), 'total_cents', 900), $meta $o;
-- commit
INSERT INTO $s.docs SELECT 'ordering_orders', $id, 0, jsonb_build_object('order_id', $id, 'status', 'pending', 'total_cents', 900) $o ON CONFLICT (view, id) DO UPDATE SET doc = excluded.doc, version = $s.docs.version + 1;
UPDATE $s.checkpoints SET position = :k::text WHERE name = 'ordering_orders-' || :client_id;
INSERT INTO $s.instances (process, instance_id, version, status, data) SELECT 'fulfilment', $id::text, 1, 'pending', jsonb_build_object('order_id', $id) $o;
INSERT INTO $s.handled (process, instance_id, trigger_id) SELECT 'fulfilment', $id::text, gen_random_uuid() $o;
INSERT INTO $s.outbox (process, command_id, instance_id, issued, not_before) SELECT 'fulfilment', md5(:k::text || '-' || i || 'r')::uuid, $id::text, jsonb_build_object('command', jsonb_build_object('Reserve', jsonb_build_object('sku', 'tea', 'quantity', 2))), now() $o;
UPDATE $s.checkpoints SET position = :k::text WHERE name = 'fulfilment-' || :client_id;
-- commit
UPDATE $s.outbox SET state = 'dispatched', attempts = 1, dispatched_at = now() WHERE command_id IN (SELECT md5(:k::text || '-' || i || 'r')::uuid $o);
-- commit
INSERT INTO $s.streams SELECT 'product-' || $id, 0 $o;
$ev SELECT 'product-' || $id, 0, gen_random_uuid(), 'StockReserved', 1, jsonb_build_object('order_id', $id, 'sku', 'tea', 'quantity', 2), $meta $o;
-- commit
INSERT INTO $s.docs SELECT 'inventory_products', $id, 0, jsonb_build_object('sku', 'tea', 'reserved', 2) $o ON CONFLICT (view, id) DO UPDATE SET doc = excluded.doc, version = $s.docs.version + 1;
INSERT INTO $s.docs SELECT 'inventory_reservations', $id, 0, jsonb_build_object('order_id', $id, 'status', 'reserved') $o ON CONFLICT (view, id) DO UPDATE SET doc = excluded.doc, version = $s.docs.version + 1;
UPDATE $s.checkpoints SET position = :k::text WHERE name IN ('inventory_products-' || :client_id, 'inventory_reservations-' || :client_id);
-- commit
INSERT INTO $s.streams SELECT 'inbox-' || $id, 0 $o;
$ev SELECT 'inbox-' || $id, 0, gen_random_uuid(), 'StockReserved', 1, jsonb_build_object('order_id', $id, 'sku', 'tea', 'quantity', 2), $meta $o;
INSERT INTO $s.positions SELECT 'fulfilment_inbox_inventory/product-' || $id, '1.0' $o ON CONFLICT (key) DO UPDATE SET position = excluded.position;
-- commit
INSERT INTO $s.handled (process, instance_id, trigger_id) SELECT 'fulfilment', $id::text, gen_random_uuid() $o;
UPDATE $s.instances SET version = version + 1, data = data || '{"reserved": true}', updated_at = now() WHERE process = 'fulfilment' AND instance_id IN (SELECT $id::text $o);
INSERT INTO $s.outbox (process, command_id, instance_id, issued, not_before) SELECT 'fulfilment', md5(:k::text || '-' || i || 'p')::uuid, $id::text, jsonb_build_object('command', jsonb_build_object('RequestPayment', jsonb_build_object('amount_cents', 900))), now() $o;
INSERT INTO $s.deadlines (id, process, instance_id, key, due_at, timeout) SELECT md5(:k::text || '-' || i || 'd')::uuid, 'fulfilment', $id::text, 'payment', now() + interval '30 s', '"PaymentDue"' $o;
UPDATE $s.checkpoints SET position = :k::text WHERE name = 'fulfilment-' || :client_id;
-- commit
UPDATE $s.outbox SET state = 'dispatched', attempts = 1, dispatched_at = now() WHERE command_id IN (SELECT md5(:k::text || '-' || i || 'p')::uuid $o);
UPDATE $s.instances SET version = version + 1, updated_at = now() WHERE process = 'fulfilment' AND instance_id IN (SELECT $id::text $o);
-- commit
INSERT INTO $s.streams SELECT 'payment-' || $id, 0 $o;
$ev SELECT 'payment-' || $id, 0, gen_random_uuid(), 'PaymentRequested', 1, jsonb_build_object('order_id', $id, 'amount_cents', 900), $meta $o;
-- commit
UPDATE $s.streams SET version = 1 WHERE stream_id IN (SELECT 'payment-' || $id $o);
$ev SELECT 'payment-' || $id, 1, gen_random_uuid(), 'PaymentCaptured', 1, jsonb_build_object('order_id', $id, 'amount_cents', 900), $meta $o;
UPDATE $s.checkpoints SET position = :k::text WHERE name = 'payment_worker-' || :client_id;
-- commit
INSERT INTO $s.docs SELECT 'payment_payments', $id, 0, jsonb_build_object('order_id', $id, 'status', 'captured', 'captured_cents', 900) $o ON CONFLICT (view, id) DO UPDATE SET doc = excluded.doc, version = $s.docs.version + 1;
UPDATE $s.checkpoints SET position = :k::text WHERE name = 'payment_payments-' || :client_id;
-- commit
UPDATE $s.streams SET version = 1 WHERE stream_id IN (SELECT 'inbox-' || $id $o);
$ev SELECT 'inbox-' || $id, 1, gen_random_uuid(), 'PaymentCaptured', 1, jsonb_build_object('order_id', $id), $meta $o;
INSERT INTO $s.positions SELECT 'fulfilment_inbox_payment/payment-' || $id, '2.0' $o ON CONFLICT (key) DO UPDATE SET position = excluded.position;
-- commit
INSERT INTO $s.handled (process, instance_id, trigger_id) SELECT 'fulfilment', $id::text, gen_random_uuid() $o;
UPDATE $s.instances SET version = version + 1, status = 'completed', updated_at = now() WHERE process = 'fulfilment' AND instance_id IN (SELECT $id::text $o);
INSERT INTO $s.outbox (process, command_id, instance_id, issued, not_before) SELECT 'fulfilment', md5(:k::text || '-' || i || 'c')::uuid, $id::text, '{"command": "Confirm"}', now() $o;
UPDATE $s.deadlines SET state = 'cancelled' WHERE id IN (SELECT md5(:k::text || '-' || i || 'd')::uuid $o);
UPDATE $s.checkpoints SET position = :k::text WHERE name = 'fulfilment-' || :client_id;
-- commit
UPDATE $s.outbox SET state = 'dispatched', attempts = 1, dispatched_at = now() WHERE command_id IN (SELECT md5(:k::text || '-' || i || 'c')::uuid $o);
UPDATE $s.instances SET version = version + 1, updated_at = now() WHERE process = 'fulfilment' AND instance_id IN (SELECT $id::text $o);
-- commit
UPDATE $s.streams SET version = 1 WHERE stream_id IN (SELECT 'order-' || $id $o);
$ev SELECT 'order-' || $id, 1, gen_random_uuid(), 'OrderConfirmed', 1, jsonb_build_object('order_id', $id), $meta $o;
-- commit
INSERT INTO $s.docs SELECT 'ordering_orders', $id, 0, jsonb_build_object('order_id', $id, 'status', 'confirmed', 'total_cents', 900) $o ON CONFLICT (view, id) DO UPDATE SET doc = excluded.doc, version = $s.docs.version + 1;
UPDATE $s.checkpoints SET position = :k::text WHERE name = 'ordering_orders-' || :client_id;
COMMIT;
SQL
sed 's/^-- commit$/COMMIT; BEGIN;/' "$dir/batch.sql" > "$dir/staged.sql"
grep -v '^-- commit$' "$dir/batch.sql" > "$dir/one.sql"
stages=$(( $(grep -c '^-- commit$' "$dir/batch.sql") + 1 ))
psql_ -c "CHECKPOINT" 2>/dev/null || true

run() { # variant batch
    local out
    # Each client moves checkpoint rows of its own (as if every component ran one
    # runner per client): no client waits for another's row lock, so it stays an
    # upper bound (the shop runs one runner per read model, whose batches take turns).
    out="$("$PGBENCH" -n -M extended -c "$clients" -j 2 -T "$seconds" -D b="$2" -f "$dir/$1.sql" "$url" 2>&1)" || { echo "$out" >&2; return 1; }
    local tps orders
    tps="$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)"
    orders="$(awk -v t="$tps" -v b="$2" 'BEGIN { printf "%.0f", t * b }')"
    local tx_per_order
    if [ "$1" = staged ]; then tx_per_order="$(awk -v s="$stages" -v b="$2" 'BEGIN { printf "%.3f", s / b }')"; else tx_per_order="$(awk -v b="$2" 'BEGIN { printf "%.3f", 1 / b }')"; fi
    echo "variant=$1 batch=$2 clients=$clients seconds=$seconds batches_per_s=$tps orders_per_s=$orders tx_per_order=$tx_per_order load=$(cut -d' ' -f1 /proc/loadavg)"
}
for b in ${BATCHES:-1 10 100 500}; do
    run staged "$b"
    run one "$b"
done
