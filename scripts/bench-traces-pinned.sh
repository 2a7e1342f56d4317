#!/bin/bash
# What exporting traces costs when the exporter does not compete with the database for
# CPU (issue 23): a private PostgreSQL cluster pinned to CPU 0, the benchmark, its
# exporter and the OTLP sink pinned to CPU 1; tessera-bench append at 8 tasks without
# and with --trace-export, pairs alternating; then the same unpinned on the same cluster
# (everything on both cores, as scripts/bench-traces.sh measures), for comparison in the
# same run.
# Usage: bash scripts/bench-traces-pinned.sh RUN_TAG; PAIRS, PORT and PINS ("pinned shared")
# override.
# Build first: cargo build --release -p tessera-benches. Needs root (runs initdb/pg_ctl
# as `postgres`), taskset, and two CPUs.
set -u
RUN=${1:?run tag}
PAIRS=${PAIRS:-3}; PORT=${PORT:-5493}
BENCH=$PWD/target/release/tessera-bench
BIN=$(pg_config --bindir)
DIR=/tmp/pg-pinned-$RUN
rm -rf "$DIR"; mkdir -p "$DIR"; chown postgres "$DIR"
runuser -u postgres -- "$BIN/initdb" -D "$DIR/data" -A trust -U postgres > /dev/null
# The shared server's settings that matter here: fsync and synchronous commit on.
runuser -u postgres -- taskset -c 0 "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w \
  -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c shared_buffers=128MB -c fsync=on -c synchronous_commit=on -c max_connections=200" start > /dev/null
trap 'runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -m fast stop > /dev/null; rm -rf "$DIR"' EXIT
PG=postgres://postgres@127.0.0.1:$PORT/postgres
echo "== cluster on port $PORT, postmaster affinity: $(taskset -pc "$(head -1 "$DIR/data/postmaster.pid")")"
for PIN in ${PINS:-pinned shared}; do
  if [ $PIN = pinned ]; then RUNAS="taskset -c 1"; else RUNAS=""; fi
  $RUNAS $BENCH otlp-sink --listen 127.0.0.1:4319 > /tmp/bench-$RUN-sink.log 2>&1 &
  SINK=$!
  sleep 1
  if [ $PIN = shared ]; then
    # The cluster's processes (and the backends it forks from now on) on both cores.
    for P in $(pgrep -u postgres -f "$DIR/data") $(head -1 "$DIR/data/postmaster.pid"); do taskset -apc 0,1 "$P" > /dev/null; done
  fi
  for P in $(seq 1 "$PAIRS"); do
    for T in "" "--trace-export"; do
      echo "== $PIN pair $P ${T:-no-export} $(date -u +%T) load: $(cut -d' ' -f1-3 /proc/loadavg)"
      # The benchmark's own CPU (its exporter included; `bench_cpu` 100 % is one core).
      OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4319 /usr/bin/time -f "bench_cpu=%P" $RUNAS $BENCH --database-url "$PG" $T append --concurrency 8 --aggregates 100 --commands 50 2>&1 | grep -E "^workload|bench_cpu"
    done
  done
  kill $SINK; wait $SINK 2> /dev/null
done
exit 0
