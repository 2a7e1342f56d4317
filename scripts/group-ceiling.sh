#!/usr/bin/env bash
# What the group statement can do at the SQL level, with no Rust client in the way:
# pgbench (a C client, prepared statements) runs the store's own group statement
# (stores/postgres/src/sql/append_group.sql, arrays built from pgbench variables) with
# exactly 8 single-event appends in flight, as 1 connection x groups of 8, 2 x 4 and
# 4 x 2, against the raw baseline of `tessera-bench append --concurrency 8`: 8
# connections, one single-row INSERT transaction each into a table LIKE the events
# table. Rounds alternate the variants, so a host whose speed drifts weighs on all.
# One more variant bounds every design that writes the same rows in shared
# transactions: `insert8x1`, 1 connection inserting 8 such rows (8 new streams) in one
# INSERT, with no compare-and-set and no stream row at all. What it cannot beat, no
# store that checks versions can.
#
#   scripts/group-ceiling.sh [rounds (default 5)] [seconds per variant (default 5)]
#
# Needs pgbench and psql (installed with PostgreSQL) and python3. DATABASE_URL (default
# postgres://postgres@127.0.0.1:5432/test) names the database; the run works in the
# schema tessera_ceiling and drops it at the end. Every append is a "stream exists"
# append to a stream created beforehand (the compare-and-set UPDATE path of an exact
# expectation); each pgbench client writes its own range of streams.
set -euo pipefail
cd "$(dirname "$0")/.."

url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
rounds="${1:-5}" seconds="${2:-5}"
say() { printf '[group-ceiling] %s\n' "$*" >&2; }
pgbin() {
    command -v "$1" 2>/dev/null && return
    ls /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1
}
PGBENCH="$(pgbin pgbench)" PSQL="$(pgbin psql)"
[ -n "$PGBENCH" ] && [ -n "$PSQL" ] || { say "needs pgbench and psql (PostgreSQL's client programs)"; exit 1; }
schema=tessera_ceiling per_client=96
dir="$(mktemp -d)"
psql_() { "$PSQL" -q -v ON_ERROR_STOP=1 "$url" "$@"; }
cleanup() { psql_ -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT

say "setting up $schema at $url (8 x $per_client streams, one event each)"
psql_ -c "DROP SCHEMA IF EXISTS $schema CASCADE" -c "CREATE SCHEMA $schema" 2>/dev/null
sed "s/{schema}/$schema/g" stores/postgres/src/migrations/0001_events.sql | psql_
psql_ -c "CREATE TABLE $schema.raw_events (LIKE $schema.events INCLUDING ALL)" \
    -c "INSERT INTO $schema.streams SELECT 's-' || g, 0 FROM generate_series(1, $((9 * per_client))) g" \
    -c "INSERT INTO $schema.events (stream_id, version, event_id, event_type, schema_version, data, metadata)
        SELECT stream_id, 0, gen_random_uuid(), 'LineAdded', 1, '{}', '{}' FROM $schema.streams"
psql_ -c "VACUUM ANALYZE $schema.streams" -c "VACUUM ANALYZE $schema.events"
# The set-up's WAL would otherwise be checkpointed during the first round.
psql_ -c "CHECKPOINT" 2>/dev/null || say "CHECKPOINT refused (not a superuser): the first round may be slower"

python3 - "$schema" "$per_client" "$dir" <<'EOF'
import sys
schema, per_client, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# The event of tessera-bench's command (benches/src/order.rs, sample_event).
data = '{"sku":"SKU-000001","quantity":3,"unit_price_cents":1299,"total_cents":3897,"note":"bench line"}'
text = open("stores/postgres/src/sql/append_group.sql").read().replace("{schema}", schema)
text = " ".join(l for l in text.splitlines() if not l.lstrip().startswith("--"))
with open(f"{out}/raw.sql", "w") as f:
    # Random stream and version: a pair repeats about once in 10^18 inserts.
    f.write("\\set s random(1, 1000000000)\n\\set v random(0, 1000000000)\n")
    f.write(f"INSERT INTO {schema}.raw_events (stream_id, version, event_id, event_type, "
            "schema_version, data, metadata) VALUES ('raw-' || :client_id || '-' || :s, :v, "
            f"gen_random_uuid(), 'LineAdded', 1, '{data}', '{{}}');\n")
with open(f"{out}/insert8.sql", "w") as f:
    # The upper bound: the group's 8 rows, one statement, no stream row touched
    # (random stream and version, as raw's).
    f.write("\\set s random(1, 1000000000)\n\\set v random(0, 1000000000)\n")
    f.write(f"INSERT INTO {schema}.raw_events (stream_id, version, event_id, event_type, "
            "schema_version, data, metadata) SELECT 'ins-' || :client_id || '-' || :s || '-' || g, "
            f":v, gen_random_uuid(), 'LineAdded', 1, '{data}', '{{}}' FROM generate_series(1, 8) g;\n")
for n in (2, 4, 8):
    arr = lambda xs, t: "ARRAY[" + ",".join(xs) + "]::" + t
    stream = lambda i: f"'s-' || (:client_id * {per_client} + :b * {n} + {i + 1})"
    params = {
        1: arr([stream(i) for i in range(n)], "text[]"),
        2: arr(["2"] * n, "int[]"),
        3: arr(["NULL"] * n, "bigint[]"),
        4: arr(["1"] * n, "bigint[]"),
        5: arr([str(i + 1) for i in range(n)], "bigint[]"),
        6: arr(["1"] * n, "bigint[]"),
        7: arr(["gen_random_uuid()"] * n, "uuid[]"),
        8: arr(["'LineAdded'"] * n, "text[]"),
        9: arr(["1"] * n, "bigint[]"),
        10: arr([f"'{data}'"] * n, "jsonb[]"),
        11: arr(["'{}'"] * n, "jsonb[]"),
    }
    sql = text
    for k in sorted(params, reverse=True):  # $11 before $1
        sql = sql.replace(f"${k}::{params[k].split('::')[1]}", params[k])
    assert "$" not in sql, "a parameter was left unsubstituted"
    with open(f"{out}/group{n}.sql", "w") as f:
        f.write(f"\\set b random(0, {per_client // n - 1})\n{' '.join(sql.split())};\n")
EOF

# name script clients appends-per-transaction
variants=("raw raw 8 1" "group8x1 group8 1 8" "group4x2 group4 2 4" "group2x4 group2 4 2" "insert8x1 insert8 1 8")
declare -A total
for r in $(seq 1 "$rounds"); do
    line="round $r:"
    for v in "${variants[@]}"; do
        read -r name script clients per <<<"$v"
        out=$("$PGBENCH" -n -M prepared -f "$dir/$script.sql" -c "$clients" -j 2 -T "$seconds" "$url" 2>&1) ||
            { say "pgbench failed for $name:"; printf '%s\n' "$out" >&2; exit 1; }
        tps=$(awk '/^tps/ {print $3}' <<<"$out")
        events=$(awk -v t="$tps" -v n="$per" 'BEGIN {printf "%.0f", t * n}')
        total[$name]=$(( ${total[$name]:-0} + events ))
        line+=" $name=$events"
    done
    say "$line (events/s)"
done
raw=${total[raw]}
for v in "${variants[@]}"; do
    read -r name _ <<<"$v"
    awk -v n="$name" -v t="${total[$name]}" -v raw="$raw" -v r="$rounds" \
        'BEGIN {printf "%s events_per_s=%.0f ratio_to_raw=%.2f\n", n, t / r, t / raw}'
done
