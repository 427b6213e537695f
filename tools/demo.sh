#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: set up and build, start
# allotd on a temporary data dir and a free port, run a ten-second flash
# sale against it with allot-bench (progress line each second), print the
# report and its correctness verdict, walk a waitlist through the CLI with
# `allot watch` printing the events, audit the journal, and stop the
# server cleanly. The server never outlives the script.
#
# usage: tools/demo.sh [SECONDS]      (default 10)
#   ALLOT_BIN=dir   use the binaries in dir instead of build/bin
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}

if [ -z "${ALLOT_BIN:-}" ]; then
    tools/setup.sh
fi
bin=${ALLOT_BIN:-build/bin}
for b in allotd allot-bench; do
    [ -x "$bin/$b" ] || { echo "demo: $bin/$b is missing (did the build fail?)" >&2; exit 1; }
done

dir=$(mktemp -d -t allot-demo.XXXXXX)
pid=
stop_server() {
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local rc=0
    wait "$pid" || rc=$?
    pid=
    return "$rc"
}
cleanup() {
    stop_server || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Durable, as in production: every answer waits for its journal record.
durability=(--durability sync)

echo "== starting allotd (data in $dir/data)"
# Room for every order the run keeps at once: held carts, and the
# finished ones kept for idempotent retries.
"$bin/allotd" --listen 127.0.0.1:0 --port-file "$dir/port" --data-dir "$dir/data" \
    --orders-max 4000000 "${durability[@]}" --log-level warn 2>"$dir/allotd.log" &
pid=$!
for _ in $(seq 100); do
    [ -s "$dir/port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -s "$dir/port" ]; then
    echo "demo: allotd did not start:" >&2
    cat "$dir/allotd.log" >&2
    exit 1
fi
port=$(cat "$dir/port")
echo "   listening on 127.0.0.1:$port${durability[*]:+ (${durability[*]})}"

echo "== flash sale: 100 hot SKUs of 10,000 units (2 per customer) among 100,000 SKUs,"
echo "   100,000 customers, 2 s cart holds (60% paid and shipped, 10% cancelled,"
echo "   30% abandoned to expire), ${seconds} s measured after 1 s of warm-up"
status=0
"$bin/allot-bench" run --port "$port" --scenario flash --duration "$seconds" \
    --hot 100 --hot-stock 10000 --skus 100000 || status=$?

# A waitlist, step by step through the CLI: stock in two warehouses, an
# order split across them, a sell-out, two backorders in a queue, and the
# restocks that fill them first come, first served. `allot watch` prints
# the events the server streams meanwhile.
if [ -x "$bin/allot" ]; then
    echo "== waitlist: a scripted sale through allot, allot watch listening"
    cli=("$bin/allot" --port "$port")
    "${cli[@]}" watch --sku demo-sneaker >"$dir/events.txt" 2>&1 &
    watch_pid=$!
    sleep 0.3
    run() {
        echo "\$ allot $*"
        "${cli[@]}" "$@" | sed 's/^/    /' || status=1
    }
    run sku set demo-sneaker --on-hand 2 --location 1 --priority 10 --reorder-point 1
    run sku set demo-sneaker --on-hand 1 --location 2 --priority 5 --reorder-point 1
    run place 1 --customer 1 demo-sneaker:3
    run order 1
    run place 2 --customer 2 --policy backorder demo-sneaker:1
    run place 3 --customer 3 --policy backorder --hold-ms 600000 demo-sneaker:2
    run order 3
    run restock demo-sneaker 2 --location 2
    run order 2
    run restock demo-sneaker 1 --location 1
    run order 3
    run sku demo-sneaker
    sleep 0.3
    kill -TERM "$watch_pid" 2>/dev/null || true
    wait "$watch_pid" || status=1
    echo "== what allot watch printed"
    sed 's/^/    /' "$dir/events.txt"
fi

echo "== stopping allotd (SIGTERM)"
if stop_server; then
    echo "   stopped cleanly"
else
    echo "demo: allotd exited with an error; its log:" >&2
    cat "$dir/allotd.log" >&2
    status=1
fi

if [ -x "$bin/allot-journal" ]; then
    echo "== allot-journal verify"
    "$bin/allot-journal" verify "$dir/data" || status=1
    echo "== allot-journal stats"
    "$bin/allot-journal" stats "$dir/data" || status=1
fi
exit "$status"
