#!/bin/bash
# What exporting traces costs (issue 23), in one run: tessera-bench append at 8 tasks on
# PostgreSQL and on the memory store, without and with --trace-export, pairs
# alternating; then shop load against `shop serve` on PostgreSQL (a fresh database each
# time), without and with OTEL_EXPORTER_OTLP_ENDPOINT, the spans going to
# `tessera-bench otlp-sink` on 127.0.0.1:4318 (reads each export, answers 200).
# Usage: bash scripts/bench-traces.sh RUN_TAG (lower-case; databases RUN_TAG_* dropped
# at the end); PAIRS, ORDERS and PG override.
# Build first: cargo build --release -p shop -p tessera-benches
set -u
RUN=${1:?run tag}
PAIRS=${PAIRS:-3}; ORDERS=${ORDERS:-2000}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
BENCH=target/release/tessera-bench; SHOP=target/release/shop
$BENCH otlp-sink --listen 127.0.0.1:4318 > /tmp/bench-$RUN-sink.log 2>&1 &
SINK=$!
sleep 1
for P in $(seq 1 "$PAIRS"); do
  for T in "" "--trace-export"; do
    echo "== pair $P postgres ${T:-no-export} $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 $BENCH --database-url $PG/test $T append --concurrency 8 --aggregates 100 --commands 50 | tail -1
  done
done
for P in $(seq 1 "$PAIRS"); do
  for T in "" "--trace-export"; do
    echo "== pair $P memory ${T:-no-export} $(date -u +%T)"
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 $BENCH --store memory $T append --concurrency 8 --aggregates 20000 --commands 5 | tail -1
  done
done
for P in $(seq 1 2); do
  for T in off on; do
    DB=${RUN}_${T}${P}
    psql "$PG/postgres" -qc "create database $DB"
    echo "== pair $P shop load, export $T $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [ $T = on ]; then export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318; else unset OTEL_EXPORTER_OTLP_ENDPOINT; fi
    SHOP_LOG=warn $SHOP serve --database-url $PG/$DB --listen 127.0.0.1:8301 --admin-open > /tmp/bench-$RUN-$DB.log 2>&1 &
    S=$!
    unset OTEL_EXPORTER_OTLP_ENDPOINT
    sleep 8
    $SHOP load --target http://127.0.0.1:8301 --orders $ORDERS --concurrency 16 --reads 2000 --settle-s 300 | tail -1
    kill -TERM $S; wait $S
    psql "$PG/postgres" -qc "drop database if exists $DB with (force)"
  done
done
kill $SINK
