#!/bin/sh
# allot-bench run against a real allotd: started on a free port (--port-file),
# a short flash run must pass its correctness check with orders answered, and
# so must a second run against the same server (fresh order ids, the check
# on the change of state) with three-line orders, open loop, unbatched; then
# two short waitlist runs and a multi-location run, each passing its check
# with the work it exists for done (fills, split lines).
#
# usage: run_allotd.sh ALLOTD ALLOT_BENCH
set -eu
allotd=$1
bench=$2
dir=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"$allotd" --listen 127.0.0.1:0 --port-file "$dir/port" --data-dir "$dir/data" \
    --threads 1 --log-level warn 2>"$dir/allotd.log" &
pid=$!
i=0
while [ ! -s "$dir/port" ]; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "allotd did not start:" >&2
        cat "$dir/allotd.log" >&2
        exit 1
    fi
    sleep 0.1
done
port=$(cat "$dir/port")

field() { # field NAME JSON: a number field of the report
    printf '%s\n' "$2" | sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"
}

out=$("$bench" run --port "$port" --scenario flash --duration 3 --warmup 0.5 --json \
    --templates 200000 --hist-out "$dir/lat.csv")
echo "$out"
printf '%s\n' "$out" | grep -q '"verdict":"pass"' || { echo "FAIL: verdict" >&2; exit 1; }
ops=$(field orders_per_sec "$out")
if [ -z "$ops" ] || [ "$ops" -le 0 ]; then echo "FAIL: orders_per_sec '$ops'" >&2; exit 1; fi
head -1 "$dir/lat.csv" | grep -q '^value_ns,count,cumulative$' || { echo "FAIL: csv" >&2; exit 1; }
[ "$(wc -l <"$dir/lat.csv")" -gt 2 ] || { echo "FAIL: csv rows" >&2; exit 1; }

out=$("$bench" run --port "$port" --scenario flash --lines 3 --batch 1 --pipeline 16 \
    --rate 20000 --duration 1 --warmup 0.2 --hold-ms 500 --templates 50000 --json --quiet)
echo "$out"
printf '%s\n' "$out" | grep -q '"verdict":"pass"' || { echo "FAIL: second run" >&2; exit 1; }
printf '%s\n' "$out" | grep -q '"loop":"open"' || { echo "FAIL: open loop" >&2; exit 1; }

# The waitlist: a sell-out, restocks every 100 ms, backorders filled first
# come first served (checked), every order read back. Twice: the second run
# finds the queues the first one cleaned up.
for i in 1 2; do
    out=$("$bench" run --port "$port" --scenario waitlist --duration 2 --warmup 0.5 \
        --templates 20000 --json --quiet)
    echo "$out"
    printf '%s\n' "$out" | grep -q '"verdict":"pass"' || { echo "FAIL: waitlist $i" >&2; exit 1; }
    for f in backordered fill_units completed orders_verified; do
        v=$(field "$f" "$out")
        if [ -z "$v" ] || [ "$v" -le 0 ]; then echo "FAIL: waitlist $f '$v'" >&2; exit 1; fi
    done
    [ "$(field fifo_violations "$out")" = 0 ] || { echo "FAIL: fifo" >&2; exit 1; }
done

# Multi-location: SKUs at 2..8 locations, lines split, every order read back
# and every location checked.
out=$("$bench" run --port "$port" --scenario multi-location --duration 2 --warmup 0.5 \
    --templates 50000 --json --quiet)
echo "$out"
printf '%s\n' "$out" | grep -q '"verdict":"pass"' || { echo "FAIL: multi-location" >&2; exit 1; }
for f in split_lines single_location_orders locations_checked orders_read; do
    v=$(field "$f" "$out")
    if [ -z "$v" ] || [ "$v" -le 0 ]; then echo "FAIL: multi-location $f '$v'" >&2; exit 1; fi
done
echo "PASS"
