#!/bin/bash
# Issue 22's pipeline figures for several shop builds in one run, alternating: each
# build serves on PostgreSQL (fresh schemas), `shop load` offers orders at a fixed rate,
# and the run reports settled orders per second, place -> confirmed p50/p99,
# transactions per order and where the CPU went (shop serve, shop load, PostgreSQL's
# processes) over 10 s of the load.
#
#   bash scripts/pipeline-ab.sh SHOP_BINARY...
#
# An argument may carry `serve` flags after the binary, quoted as one word
# ("/tmp/shop --max-backlog 0"): the same build with and without admission control.
#
# RATES ("200 400"), ORDERS_PER_S (15: orders = rate x this), ROUNDS (2), HOT=1 (every
# order on one product: the flash sale) and DATABASE_URL
# (postgres://postgres@127.0.0.1:5432/test) override; LOAD_ARGS adds `shop load` flags
# ("--poll-ms 20"). Build each binary first (for an
# earlier commit: a `git worktree` of it and `cargo build -p shop --release` there).
set -u
[ $# -ge 1 ] || { echo "usage: $0 SHOP_BINARY..." >&2; exit 2; }
URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
RATES=${RATES:-200 400}; ROUNDS=${ROUNDS:-2}; PER=${ORDERS_PER_S:-15}
HOTARG=""; [ "${HOT:-0}" = 1 ] && HOTARG="--hot"
ticks() { # utime+stime of pid $1, in clock ticks (0 if gone)
  [ -n "$1" ] && [ -e "/proc/$1/stat" ] && awk '{print $14+$15}' "/proc/$1/stat" || echo 0
}
pg_ticks() { for p in $(pgrep -u postgres); do ticks "$p"; done | awk '{s+=$1} END {print s+0}'; }
cpu_total() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5+$6}' /proc/stat; }
N=0
for ROUND in $(seq 1 "$ROUNDS"); do
  for RATE in $RATES; do
    for BUILD in "$@"; do
      read -r SHOP SERVE_ARGS <<< "$BUILD"
      N=$((N + 1)); P="ab${N}_$$"; LISTEN=127.0.0.1:$((18400 + N % 100))
      # shellcheck disable=SC2086 # the build's serve flags, split into words
      "$SHOP" serve --listen "$LISTEN" --database-url "$URL" --schema-prefix "${P}_" --admin-open $SERVE_ARGS \
        > "/tmp/pipeline-ab-serve.log" 2>&1 &
      S=$!
      sleep 10
      "$SHOP" load --target "http://$LISTEN" --reads 0 --settle-s 300 --orders $((RATE * PER)) \
        --rate "$RATE" $HOTARG ${LOAD_ARGS:-} --database-url "$URL" > "/tmp/pipeline-ab-load.log" 2>&1 &
      L=$!
      sleep 3
      A=($(ticks $S) $(ticks $L) $(pg_ticks) $(cpu_total)); sleep 10
      B=($(ticks $S) $(ticks $L) $(pg_ticks) $(cpu_total))
      wait $L
      kill $S; wait $S 2> /dev/null
      SUMMARY=$(tail -1 /tmp/pipeline-ab-load.log | tr ' ' '\n' | grep -E "^(place_failed|place_refused|settled|settled_per_s|confirm_p50_ms|confirm_p99_ms|tx_per_order|write_tx_per_order)=" | tr '\n' ' ')
      echo "round=$ROUND rate=$RATE build=$BUILD $SUMMARY cpu_serve=$((B[0]-A[0])) cpu_load=$((B[1]-A[1])) cpu_pg=$((B[2]-A[2])) busy=$(( (B[3]-A[3]) - (B[4]-A[4]) ))/$((B[3]-A[3]))"
      PGOPTIONS="-c client_min_messages=warning" psql -q -o /dev/null "$URL" -c "DO \$\$ DECLARE s text; BEGIN FOR s IN SELECT nspname FROM pg_namespace WHERE nspname LIKE '${P}\_%' LOOP EXECUTE 'DROP SCHEMA ' || quote_ident(s) || ' CASCADE'; END LOOP; END \$\$"
    done
  done
done
