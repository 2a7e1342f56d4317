#!/usr/bin/env bash
# Runs every macro-benchmark against the local PostgreSQL, each beside its raw baseline
# measured in the same run, and prints one key=value line per workload (ending with the
# issue's target and `met=` where there is one). The lines also go to target/bench-<time>.txt.
#
#   scripts/bench.sh            # the sizes in BENCHMARKS.md (rebuild over 1,000,000 events)
#   scripts/bench.sh --quick    # small sizes, a few minutes: to check the harness works
#
# DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test) names the database; the
# workloads run in schemas of their own and drop them. The integration-event workloads
# (relay, bus-latency) run on NATS_URL (default nats://127.0.0.1:4222) and AMQP_URL
# (default amqp://guest:guest@127.0.0.1:5672/%2f) when they answer, each in a stream or
# exchange of its own that it deletes; an unreachable broker is skipped with a note.
# The shop runs under the schema prefix `benchshop_`, dropped at the end (needs `psql`).
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
quick=false
[ "${1:-}" = "--quick" ] && quick=true
say() { printf '[bench.sh] %s\n' "$*" >&2; }

if $quick; then
    per=(1 200 8 25 32 10) long=1000 rebuild=100000 seconds=3 orders=300 reads=2000 mem=100000 relayed=10000
else
    per=(1 200 8 100 32 50) long=10000 rebuild=1000000 seconds=10 orders=2000 reads=20000 mem=300000 relayed=100000
fi

say "building tessera-bench and shop (release)"
cargo build --release -q -p tessera-benches -p shop
B=target/release/tessera-bench
SHOP=target/release/shop
mkdir -p target
out="target/bench-$(date +%Y%m%d-%H%M%S).txt"
line() { tee -a "$out"; }

say "PostgreSQL at $(printf '%s' "$DATABASE_URL" | sed -E 's|(://[^:/@]*):[^/?#]*@|\1:***@|; s|(password=)[^& ]*|\1***|g'); lines also in $out"
for i in 0 2 4; do
    c=${per[$i]} a=${per[$((i + 1))]}
    $B append --concurrency "$c" --aggregates "$a" --commands 20 --state-cache 100000 | line
    $B append --concurrency "$c" --aggregates "$a" --commands 20 | line
done
$B batch --batches 300 --size 100 | line
$B long-stream --streams 4 --length "$long" --commands 50 | line
$B rebuild --events "$rebuild" --streams 10000 | line
$B latency --rate 1000 --seconds "$seconds" | line
$B view-latency --rate 1000 --seconds "$seconds" --rounds 2 | line
$B --store memory append --concurrency 1 --aggregates "$mem" --commands 1 | line
$B --store memory batch --batches 10000 --size 100 | line

# Integration events: relay throughput beside the broker's own client, and append →
# inbox latency at 1,000 events/s (inbox positions in PostgreSQL, then in memory).
# `memory` is the relay without a broker: what reading the log costs it.
answers() { # whether something listens at the host:port of URL $1
    local hostport
    hostport=$(printf '%s' "$1" | sed -E 's|^[a-z]+://([^@/]*@)?([^/?#]*).*|\2|')
    timeout 2 bash -c "exec 3<>/dev/tcp/${hostport%:*}/${hostport##*:}" 2>/dev/null
}
$B relay --bus memory --events "$relayed" --streams 100 | line
for bus in "$NATS_URL" "$AMQP_URL"; do
    shown=$(printf '%s' "$bus" | sed -E 's|(://)[^@/]*@|\1|')
    if ! answers "$bus"; then
        say "no broker answers at $shown: its relay and bus-latency runs are skipped"
        continue
    fi
    $B relay --bus "$bus" --events "$relayed" --streams 100 | line
    $B bus-latency --bus "$bus" --rate 1000 --seconds "$seconds" | line
    $B bus-latency --bus "$bus" --rate 1000 --seconds "$seconds" --inbox-positions memory | line
done

# The shop over HTTP: seeded in process through the real saga, then served and loaded.
prefix=benchshop_
port=$((20000 + RANDOM % 20000))
cleanup() {
    [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
    if command -v psql >/dev/null 2>&1; then
        psql "$DATABASE_URL" -qAt -c "SELECT format('DROP SCHEMA %I CASCADE;', nspname) FROM pg_namespace WHERE nspname LIKE '${prefix}%'" |
            psql "$DATABASE_URL" -q >/dev/null 2>&1 || true
    else
        say "psql not found: the shop's schemas (prefix $prefix) were left in place"
    fi
}
trap cleanup EXIT
cleanup
say "shop: seeding $orders orders, then serving on 127.0.0.1:$port"
$SHOP seed --database-url "$DATABASE_URL" --schema-prefix "$prefix" --orders "$orders" 2>/dev/null | line
$SHOP serve --listen "127.0.0.1:$port" --database-url "$DATABASE_URL" --schema-prefix "$prefix" >/dev/null 2>&1 &
server=$!
for _ in $(seq 1 60); do
    if command -v curl >/dev/null 2>&1; then
        curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
    elif [ "$_" -ge 5 ]; then
        break
    fi
    sleep 1
done
rss() { awk '/VmRSS/{print $2}' "/proc/$server/status"; }
echo "workload=shop-rss when=start server_rss_kib=$(rss)" | line
$SHOP load --target "http://127.0.0.1:$port" --orders 0 --read-existing --reads "$reads" 2>/dev/null | tail -1 | line
$SHOP load --target "http://127.0.0.1:$port" --orders 200 --skus 20 --reads 2000 2>/dev/null | tail -1 | line
echo "workload=shop-rss when=end server_rss_kib=$(rss)" | line
say "done: $out"
