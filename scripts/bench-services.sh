#!/bin/bash
# The shop as services against the all-in-one server, in one run (issue 21): shop load
# on `shop serve --database-url` (all in one, PostgreSQL), then on `shop up` (three
# services on a database each, NATS between them, the gateway in front); then reads of
# existing orders through the gateway and straight at the ordering service, one and 16
# at a time. Usage: bash scripts/bench-services.sh RUN_TAG (lower-case, names the
# databases RUN_TAG_*, dropped at the end); ORDERS, RATE, READS, PG and B override.
# Build first: cargo build --release -p shop --bin shop
set -u
B=${B:-target/release/shop}
RUN=${1:?run tag}
ORDERS=${ORDERS:-3000}; RATE=${RATE:-200}; READS=${READS:-3000}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
psql "$PG/postgres" -qc "create database ${RUN}_aio"
echo "== all-in-one on PostgreSQL $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
SHOP_LOG=warn $B serve --database-url $PG/${RUN}_aio --listen 127.0.0.1:8301 --admin-open > /tmp/bench-$RUN-aio.log 2>&1 &
AIO=$!
sleep 10
$B load --target http://127.0.0.1:8301 --orders $ORDERS --rate $RATE --reads $READS --settle-s 300 | tail -1
for C in 1 16; do
echo "-- GET all-in-one, concurrency $C"
$B load --target http://127.0.0.1:8301 --orders 0 --read-existing --reads 3000 --concurrency $C | tail -1
done
kill -TERM $AIO; wait $AIO
echo "== shop up on NATS $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
SHOP_LOG=warn $B up --database-url $PG/postgres --bus nats://127.0.0.1:4222 --bus-prefix $RUN --database-prefix ${RUN} --listen 127.0.0.1:8400 > /tmp/bench-$RUN-up.log 2>&1 &
UP=$!
for i in $(seq 1 120); do grep -q "shop up: gateway at" /tmp/bench-$RUN-up.log && break; sleep 0.5; done
ORD=$(grep -o "ordering http://127.0.0.1:[0-9]*" /tmp/bench-$RUN-up.log | head -1 | awk '{print $2}')
sleep 5
$B load --target http://127.0.0.1:8400 --orders $ORDERS --rate $RATE --reads $READS --settle-s 300 | tail -1
for C in 1 16; do
echo "-- composed GET through the gateway, concurrency $C"
$B load --target http://127.0.0.1:8400 --orders 0 --read-existing --reads 3000 --concurrency $C | tail -1
echo "-- GET straight at the ordering service ($ORD), concurrency $C"
$B load --target $ORD --orders 0 --read-existing --reads 3000 --concurrency $C | tail -1
done
kill -TERM $UP; wait $UP
for d in ${RUN}_aio ${RUN}_ordering ${RUN}_inventory ${RUN}_payment; do psql "$PG/postgres" -qc "drop database if exists $d with (force)"; done
