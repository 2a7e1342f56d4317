#!/bin/bash
# Where the order pipeline's statements and transactions go (issue 22): a private
# PostgreSQL cluster with pg_stat_statements, `shop serve` on it, `shop load` at a fixed
# offered rate, then the statements by calls per order and the load's summary line.
# Several shop binaries (say, the builds before and after a change) run in turn on the
# same cluster, each in schemas of its own, so their figures come from one run.
#
#   bash scripts/pipeline-profile.sh SHOP_BINARY...
#
# An argument may carry `serve` flags after the binary, quoted as one word
# ("/tmp/shop --max-backlog 0"). ORDERS (3000), RATE (200), PORT (5491), TOP (25
# statements), SORT (calls, total_exec_time: where the server's time went, or total_plan_time) and HOT=1
# (every order on one product) override. Needs root (runs initdb/pg_ctl as `postgres`).
set -u
[ $# -ge 1 ] || { echo "usage: $0 SHOP_BINARY..." >&2; exit 2; }
ORDERS=${ORDERS:-3000}; RATE=${RATE:-200}; PORT=${PORT:-5491}; TOP=${TOP:-25}
SORT=${SORT:-calls}
case $SORT in calls|total_exec_time|total_plan_time) ;; *) echo "SORT is calls, total_exec_time or total_plan_time" >&2; exit 2 ;; esac
BIN=$(pg_config --bindir)
DIR=/tmp/pg-profile-$$
mkdir -p "$DIR"; chown postgres "$DIR"
runuser -u postgres -- "$BIN/initdb" -D "$DIR/data" -A trust -U postgres > /dev/null
# The shared server's settings that matter here (fsync and synchronous commit on), plus
# the statement counter.
runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -o "-p $PORT -k $DIR \
  -c listen_addresses=127.0.0.1 -c shared_buffers=128MB -c fsync=on -c synchronous_commit=on \
  -c max_connections=200 -c shared_preload_libraries=pg_stat_statements \
  -c pg_stat_statements.track=all -c pg_stat_statements.max=10000 \
  -c pg_stat_statements.track_planning=on" start > /dev/null
trap 'runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m fast stop > /dev/null; rm -rf "$DIR"' EXIT
URL=postgres://postgres@127.0.0.1:$PORT/postgres
psql -q "$URL" -c "CREATE EXTENSION pg_stat_statements" > /dev/null
HOTARG=""; [ "${HOT:-0}" = 1 ] && HOTARG="--hot"
N=0
for BUILD in "$@"; do
  read -r SHOP SERVE_ARGS <<< "$BUILD"
  N=$((N + 1))
  LISTEN=127.0.0.1:$((18290 + N))
  echo "== $BUILD (run $N) $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$SHOP" serve --listen "$LISTEN" --database-url "$URL" --schema-prefix "p${N}_" --admin-open \
    $SERVE_ARGS > "$DIR/serve-$N.log" 2>&1 &
  SERVE=$!
  sleep 12
  psql -q "$URL" -c "SELECT pg_stat_statements_reset()" > /dev/null
  "$SHOP" load --target "http://$LISTEN" --reads 0 --settle-s 300 --orders "$ORDERS" \
    --rate "$RATE" $HOTARG --database-url "$URL" 2> /dev/null | tail -1
  psql -q -A -F ' | ' "$URL" -c "SELECT calls, round(calls::numeric / $ORDERS, 2) AS per_order,
      round(total_exec_time::numeric) AS ms,
      round(shared_blks_hit::numeric / greatest(calls, 1), 1) AS blocks_per_call,
      plans, round(total_plan_time::numeric) AS plan_ms,
      left(regexp_replace(regexp_replace(query, '--[^\n]*', '', 'g'), '\s+', ' ', 'g'), 70)
      || coalesce(' … ' || substring(regexp_replace(query, '\s+', ' ', 'g') from 'FROM \S+ WHERE .{0,50}'), '') AS query
    FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'
    ORDER BY $SORT DESC LIMIT $TOP"
  # `shop load` ends by reading every order back (GET /v1/orders/{id}: three view
  # documents and the saga instance, each `... AND instance_id = $2` or a checked get)
  # to count outcomes; those reads are not the pipeline's, so they are shown apart.
  psql -q -A -t "$URL" -c "SELECT 'statements per order: ' || round(sum(calls)::numeric / $ORDERS, 1)
      || ' (the pipeline without the load''s read-back: '
      || round(sum(calls) FILTER (WHERE query NOT LIKE '%SELECT (SELECT version FROM%'
           AND query NOT LIKE 'SELECT data FROM %.instances WHERE process = \$1 AND instance_id = \$2')::numeric / $ORDERS, 1)
      || '), execution ms per order: ' || round(sum(total_exec_time)::numeric / $ORDERS, 2)
      || ', planning ms per order: ' || round(sum(total_plan_time)::numeric / $ORDERS, 2)
      || ' (' || sum(plans) || ' plans made)'
    FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'"
  kill "$SERVE"; wait "$SERVE" 2> /dev/null
done
exit 0
