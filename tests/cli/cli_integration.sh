#!/usr/bin/env bash
# The allot CLI against the real allotd on a free port: every command in
# text and --json form, exit codes 0/1/2/3, --help, CSV import, allotd's
# --help, a scripted sale over two locations with a waitlist filled by
# restocks in FIFO order while `allot watch` records the events, the data
# dir lock, and the state digest across a clean restart.
#
# usage: cli_integration.sh ALLOTD ALLOT SOURCE_DIR [ALLOT_JOURNAL]
set -u

ALLOTD=$1
ALLOT=$2
SRC=$3
JOURNAL=${4:-}

T=$(mktemp -d /tmp/allot-cli-XXXXXX)
DATA=$T/data
LOG=$T/allotd.log
PID=
CHECKS=0

WATCHERS=()

cleanup() {
    for w in "${WATCHERS[@]}"; do kill -9 "$w" 2>/dev/null; done
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID" 2>/dev/null; fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    echo "---- last command: rc=$RC" >&2
    echo "---- stdout:" >&2; printf '%s\n' "$OUT" >&2
    echo "---- stderr:" >&2; cat "$T/err" >&2 2>/dev/null
    echo "---- allotd log (last 20 lines):" >&2; tail -20 "$LOG" >&2 2>/dev/null
    echo "(work dir kept: $T)" >&2
    exit 1
}

ok() { CHECKS=$((CHECKS + 1)); }

# run CMD...: OUT = stdout, RC = exit status, stderr in $T/err
run() {
    OUT=$("$@" 2>"$T/err")
    RC=$?
}

# expect RC CMD...
expect() {
    local want=$1
    shift
    run "$@"
    [ "$RC" -eq "$want" ] || fail "'$*' exited $RC, expected $want"
    ok
}

has() { # has TEXT: stdout contains TEXT
    printf '%s' "$OUT" | grep -qF -- "$1" || fail "stdout lacks '$1'"
    ok
}

has_err() {
    grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1'"
    ok
}

# jq EXPR: evaluates a Python expression over the JSON stdout (bound to j)
jq() {
    printf '%s' "$OUT" | python3 -c '
import json, sys
j = json.loads(sys.stdin.read())
v = eval(sys.argv[1])
print(v if not isinstance(v, bool) else ("true" if v else "false"))' "$1" ||
        fail "stdout is not the JSON expected for $1"
}

# jexpect EXPR VALUE
jexpect() {
    local got
    got=$(jq "$1")
    [ "$got" = "$2" ] || fail "$1 is '$got', expected '$2'"
    ok
}

start_server() { # start_server [EXTRA ALLOTD FLAGS...]
    rm -f "$T/port"
    "$ALLOTD" --listen 127.0.0.1:0 --port-file "$T/port" --data-dir "$DATA" --threads 1 \
        --skus-max 1024 --orders-max 4096 "$@" 2>>"$LOG" &
    PID=$!
    for _ in $(seq 200); do
        [ -s "$T/port" ] && break
        kill -0 "$PID" 2>/dev/null || { RC=-1; OUT=; fail "allotd exited at start-up"; }
        sleep 0.05
    done
    [ -s "$T/port" ] || fail "allotd wrote no port file"
    PORT=$(cat "$T/port")
    A=("$ALLOT" --port "$PORT")
}

stop_server() {
    kill -TERM "$PID"
    local rc=0
    wait "$PID" || rc=$?
    PID=
    [ "$rc" -eq 0 ] || { RC=$rc; OUT=; fail "allotd exited $rc after SIGTERM"; }
    ok
}

RC=0
OUT=

# ---- allotd --help: every flag main.c knows is documented ---------------------

expect 0 "$ALLOTD" --help
flags=$(sed -n '/long_options\[\] = {/,/^};/p' "$SRC/src/allotd/main.c" |
        grep -o '{"[a-z-]*"' | tr -d '{"')
[ "$(printf '%s\n' $flags | wc -l)" -ge 15 ] || fail "could not read allotd's flags from main.c"
for f in $flags; do has "--$f"; done
expect 2 "$ALLOTD" --no-such-flag
expect 2 "$ALLOTD" --threads 0

# ---- allot --help, command help ---------------------------------------------------

expect 0 "$ALLOT" --help
for c in "sku set" restock adjust place confirm cancel fulfill extend order "sku SKU" watch \
         stats import help; do
    has "  $c"
done
has "Exit status"
expect 0 "$ALLOT" place --help
has "usage: allot [OPTIONS] place"
has "--hold-ms"
has "--policy"
has "--max-wait MS"
has "--single-location"
printf '%s' "$OUT" | grep -qi "does not offer\|as this version of allotd" &&
    fail "place --help still says the server refuses backorder"
ok
expect 0 "$ALLOT" help adjust
has "DELTA"
expect 0 "$ALLOT" sku set --help
has "--reorder-point"
has "--location L"
has "--priority P"
expect 0 "$ALLOT" watch --help
for o in --sku --type --from hold_expired backorder_filled reorder_point sold_out restocked \
         SIGTERM LOST TOO_OLD; do
    has "$o"
done
# Every option of a command's usage line is explained below it.
for c in "sku set" restock adjust place confirm cancel fulfill extend order sku watch \
         stats import; do
    # shellcheck disable=SC2086
    expect 0 "$ALLOT" $c --help
    usage=$(printf '%s\n' "$OUT" | head -1)
    body=$(printf '%s\n' "$OUT" | tail -n +2)
    for o in $(printf '%s' "$usage" | grep -o -- '--[a-z-]*' | sort -u); do
        [ "$o" = "--help" ] && continue
        printf '%s' "$body" | grep -qF -- "$o" || fail "'allot $c --help' does not explain $o"
        ok
    done
done

# ---- usage errors (2) and connection failures (3), no server needed --------------

expect 2 "$ALLOT"
expect 2 "$ALLOT" frobnicate
has_err "unknown command"
expect 2 "$ALLOT" --port 0 stats
expect 2 "$ALLOT" sku set 7
has_err "--on-hand is required"
expect 2 "$ALLOT" place x --customer 1 7:1
expect 2 "$ALLOT" place 1 7:1
expect 2 "$ALLOT" place 1 --customer 1 --policy sometimes 7:1
expect 2 "$ALLOT" place 1 --customer 1 7:zero
expect 2 "$ALLOT" adjust 7 five
expect 2 "$ALLOT" restock 7
expect 2 "$ALLOT" import "$T/no-such-file.csv"
expect 2 "$ALLOT" place 1 --customer 1 --max-wait 500 7:1
has_err "--max-wait applies to --policy backorder only"
expect 2 "$ALLOT" place 1 --customer 1 --max-wait 5 --max-wait-ms 6 --policy backorder 7:1
expect 2 "$ALLOT" place 1 --customer 1 --policy backorder --single-location 7:1
expect 2 "$ALLOT" sku set 7 --on-hand 1 --location 65536
expect 2 "$ALLOT" restock 7 1 --location -1
expect 2 "$ALLOT" adjust 7 -1 --location x
expect 2 "$ALLOT" sku set 7 --on-hand 1 --priority 70000
expect 2 "$ALLOT" watch --type lost
has_err "--type takes"
expect 2 "$ALLOT" watch --from -3
expect 2 "$ALLOT" watch extra
CLOSED=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
expect 3 "$ALLOT" --port "$CLOSED" stats
expect 3 "$ALLOT" --port "$CLOSED" --json sku 7
expect 3 "$ALLOT" --port "$CLOSED" place 1 --customer 1 7:1

# ---- the server ----------------------------------------------------------------------

start_server

# sku set / sku: text and JSON
expect 0 "${A[@]}" sku set 7 --on-hand 10 --limit 3 --reorder-point 2
has "sku 7: OK"
has "on_hand           10"
has "limit             3 per customer"
has "reorder_point     2"
expect 0 "${A[@]}" --json sku set 8 --on-hand 50
jexpect 'j["result"]' OK
jexpect 'j["sku"]' 8
jexpect 'j["on_hand"]' 50
jexpect 'j["limit"]' 0
expect 0 "${A[@]}" sku 7
has "available         10"
expect 0 "${A[@]}" sku 7 --json
jexpect 'j["limit"]' 3
jexpect 'j["reorder_point"]' 2
expect 1 "${A[@]}" sku 424242
has "UNKNOWN_SKU"
expect 1 "${A[@]}" --json sku 424242
jexpect 'j["result"]' UNKNOWN_SKU

# string SKUs are XXH3-64 of the text (checked against libxxhash itself)
SHOE=$(python3 -c '
import ctypes, ctypes.util
f = ctypes.CDLL(ctypes.util.find_library("xxhash")).XXH3_64bits
f.restype = ctypes.c_uint64
f.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
print(f(b"shoe", 4))')
[ -n "$SHOE" ] || fail "could not compute XXH3 of 'shoe'"
expect 0 "${A[@]}" --json sku set shoe --on-hand 20
jexpect 'j["sku"]' "$SHOE"
expect 0 "${A[@]}" sku shoe
has "sku $SHOE (\"shoe\"): OK"
expect 0 "${A[@]}" --json sku "$SHOE"
jexpect 'j["on_hand"]' 20
expect 1 "${A[@]}" --json sku '#8'
jexpect 'j["result"]' UNKNOWN_SKU
[ "$(jq 'j["sku"]')" != 8 ] || fail "'#8' was not hashed"

# restock / adjust (negative deltas are not options)
expect 0 "${A[@]}" restock 7 5
has "on_hand           15"
expect 0 "${A[@]}" --json restock 7 1
jexpect 'j["on_hand"]' 16
expect 0 "${A[@]}" adjust 7 -5
has "on_hand           11"
expect 0 "${A[@]}" adjust 7 -1 --json
jexpect 'j["on_hand"]' 10
expect 0 "${A[@]}" --json adjust 7 +2
jexpect 'j["on_hand"]' 12
expect 0 "${A[@]}" adjust 7 -2
expect 1 "${A[@]}" adjust 7 -1000
has "INSUFFICIENT_STOCK"

# place: all-or-nothing, partial, holds, string SKUs, replays, conflicts, limits
expect 0 "${A[@]}" place 1 --customer 9 7:2 shoe:1
has "place order 1: OK"
has "state     CONFIRMED"
has "line 1    sku 7: 2 of 2 allocated"
has "line 2    sku $SHOE: 1 of 1 allocated"
NOW=$(python3 -c 'import time; print(int(time.time() * 1000))')
expect 0 "${A[@]}" --json place 2 --customer 9 --hold-ms 600000 7:1
jexpect 'j["result"]' OK
jexpect 'j["state"]' HELD
jexpect 'j["lines"][0]["allocated"]' 1
jexpect 'j["deadline_ms"] >= '"$NOW"' + 590000' true
expect 1 "${A[@]}" place 3 --customer 8 shoe:100
has "INSUFFICIENT_STOCK"
has "REJECTED"
expect 1 "${A[@]}" --json place 3 --customer 8 --policy all shoe:100
jexpect 'j["result"]' INSUFFICIENT_STOCK
jexpect 'j["state"]' REJECTED
expect 1 "${A[@]}" place 4 --customer 9 7:1
has "LIMIT_EXCEEDED"
expect 0 "${A[@]}" --json place 5 --customer 10 --policy partial 7:5 shoe:2
jexpect 'j["result"]' OK
jexpect 'j["lines"][0]["allocated"]' 3
jexpect 'j["lines"][1]["allocated"]' 2
expect 0 "${A[@]}" place 6 --customer 11 --policy partial 8:1 nosuchsku:4
has "line 2    sku"
has ": 0 of 4 allocated"
expect 0 "${A[@]}" place 1 --customer 9 7:2 shoe:1
has "place order 1: OK (replay)"
expect 0 "${A[@]}" --json place 1 --customer 9 7:2 shoe:1
jexpect 'j["replay"]' true
expect 1 "${A[@]}" place 1 --customer 9 7:1
has "ORDER_ID_CONFLICT"
expect 0 "${A[@]}" --json sku 7
jexpect 'j["allocated"]' 6
jexpect 'j["available"]' 4

# confirm / extend / cancel / fulfill
expect 0 "${A[@]}" place 7 --customer 12 --hold-ms 60000 8:2
has "state     HELD"
expect 0 "${A[@]}" extend 7 120000
has "extend order 7: OK"
expect 0 "${A[@]}" --json extend 7 300000
jexpect 'j["state"]' HELD
jexpect 'j["deadline_ms"] >= '"$NOW"' + 290000' true
expect 0 "${A[@]}" confirm 2
has "confirm order 2: OK"
has "state     CONFIRMED"
expect 0 "${A[@]}" --json confirm 2
jexpect 'j["replay"]' true
expect 1 "${A[@]}" extend 2 1000
has "INVALID_STATE"
expect 0 "${A[@]}" cancel 7
has "cancel order 7: OK"
has "state     CANCELLED"
expect 0 "${A[@]}" --json cancel 7
jexpect 'j["state"]' CANCELLED
jexpect 'j["replay"]' true
expect 1 "${A[@]}" cancel 999
has "UNKNOWN_ORDER"
expect 1 "${A[@]}" --json confirm 999
jexpect 'j["result"]' UNKNOWN_ORDER
expect 0 "${A[@]}" fulfill 1
has "fulfill order 1: OK"
has "state     FULFILLED"
expect 0 "${A[@]}" --json fulfill 2
jexpect 'j["state"]' FULFILLED
expect 1 "${A[@]}" fulfill 7
has "INVALID_STATE"
expect 0 "${A[@]}" --json sku 7 # 10 - 2 (order 1) - 1 (order 2) shipped
jexpect 'j["on_hand"]' 7
jexpect 'j["allocated"]' 3

# order
expect 0 "${A[@]}" order 1
has "order 1: OK"
has "state     FULFILLED"
has "policy    ALL_OR_NOTHING"
has "line 1    sku 7: 2 of 2 allocated"
expect 0 "${A[@]}" --json order 5
jexpect 'j["policy"]' PARTIAL
jexpect 'j["customer"]' 10
jexpect 'j["state"]' CONFIRMED
jexpect '[(l["requested"], l["allocated"]) for l in j["lines"]]' "[(5, 3), (2, 2)]"
expect 1 "${A[@]}" order 12345
has "UNKNOWN_ORDER"
expect 1 "${A[@]}" order 12345 --json
jexpect 'j["state"]' NONE

# stats
expect 0 "${A[@]}" stats
printf '%s\n' "$OUT" | grep -Eq '^state_digest +[0-9a-f]{16}$' || fail "no state_digest line"
ok
has "operations (by opcode and result, non-zero only):"
expect 0 "${A[@]}" stats --json
jexpect 'bool(__import__("re").fullmatch("[0-9a-f]{16}", j["state_digest"]))' true
jexpect 'j["ops"]["PLACE"]["OK"] >= 5' true
jexpect 'j["ops"]["PLACE"]["LIMIT_EXCEEDED"]' 1
jexpect 'j["orders_live"]' 2

# import: header, quoted fields, blank line, a bad row, a row the server refuses
cat >"$T/skus.csv" <<'EOF'
sku,on_hand,limit,reorder_point
100,5,,
"101",6,2,1

hat,7,0,3
102,lots,1,1
7,0
EOF
expect 1 "${A[@]}" import "$T/skus.csv"
has "5 rows read, 3 ok, 1 failed, 1 bad"
has "failed INSUFFICIENT_STOCK"
has_err "skus.csv:6: bad row"
has_err "skus.csv:7: sku 7: INSUFFICIENT_STOCK"
expect 0 "${A[@]}" --json sku 101
jexpect '(j["on_hand"], j["limit"], j["reorder_point"])' "(6, 2, 1)"
expect 0 "${A[@]}" --json sku hat
jexpect 'j["on_hand"]' 7
printf '300,1\nbad,row\n' >"$T/bad-only.csv" # a bad row alone fails the import too
expect 1 "${A[@]}" import "$T/bad-only.csv"
has "2 rows read, 1 ok, 0 failed, 1 bad"
has_err "bad-only.csv:2: bad row"
printf '200,1\n201,2\n202,3\n' >"$T/good.csv"
expect 0 "${A[@]}" --json import "$T/good.csv"
jexpect '(j["rows"], j["ok"], j["failed"], j["bad"])' "(3, 3, 0, 0)"
expect 1 "${A[@]}" import --json "$T/skus.csv"
jexpect '(j["rows"], j["ok"], j["bad"], j["failed_by_result"])' "(5, 3, 1, {'INSUFFICIENT_STOCK': 1})"
expect 0 "${A[@]}" import - <"$T/good.csv"
has "3 rows read, 3 ok"

# ---- a scripted sale: two locations, a waitlist, live events -----------------------

# watchers start from the next journal sequence number: whenever they
# connect, the server replays what they missed
expect 0 "${A[@]}" --json stats
FROM=$(( $(jq 'j["sequence"]') + 1 ))
"${A[@]}" watch --json --sku 500 --from "$FROM" >"$T/events.jsonl" 2>"$T/watch.err" &
W_ALL=$!
"${A[@]}" watch --type backorder_filled --type sold_out --from "$FROM" \
    >"$T/filled.txt" 2>"$T/watch2.err" &
W_FILLED=$!
WATCHERS=("$W_ALL" "$W_FILLED")

# stock at two locations: 3 at location 1 (priority 10), 2 at location 2
expect 0 "${A[@]}" sku set 500 --on-hand 3 --location 1 --priority 10 --reorder-point 2
expect 0 "${A[@]}" --json sku set 500 --on-hand 2 --location 2 --priority 5 --reorder-point 2
jexpect 'j["on_hand"]' 5
expect 0 "${A[@]}" sku 500
has "location 1: priority 10, on_hand 3, allocated 0, available 3"
has "location 2: priority 5, on_hand 2, allocated 0, available 2"
expect 0 "${A[@]}" --json sku 500
jexpect '[(l["location"], l["priority"], l["on_hand"]) for l in j["locations"] if l["on_hand"]]' \
    "[(1, 10, 3), (2, 5, 2)]"

# no single location holds 4: with --single-location all-or-nothing fails,
# without it the line is split by priority
expect 1 "${A[@]}" place 20 --customer 1 --single-location 500:4
has "INSUFFICIENT_STOCK"
expect 0 "${A[@]}" place 20 --customer 1 500:4
has "line 1    sku 500: 4 of 4 allocated"
expect 0 "${A[@]}" order 20
has "line 1    sku 500: 4 of 4 allocated"
has "3 at location 1"
has "1 at location 2"
expect 0 "${A[@]}" --json order 20
jexpect 'sorted((l["location"], l["units"]) for l in j["lines"][0]["locations"])' "[(1, 3), (2, 1)]"
jexpect 'j["lines"][0]["queue_place"]' 0
jexpect 'j["confirmed_in_advance"]' false

# the last unit sells out; two backorders wait, in the order they came
expect 0 "${A[@]}" place 21 --customer 2 500:1
expect 0 "${A[@]}" place 22 --customer 3 --policy backorder 500:2
has "state     BACKORDERED"
has "line 1    sku 500: 0 of 2 allocated, 2 waiting"
expect 0 "${A[@]}" --json place 23 --customer 4 --policy backorder --max-wait 600000 500:1
jexpect 'j["state"]' BACKORDERED
jexpect 'j["lines"][0]["allocated"]' 0
expect 0 "${A[@]}" sku 500
has "available         0"
has "backorder_orders  2"
has "backorder_units   3"
expect 0 "${A[@]}" --json sku 500
jexpect '(j["backorder_orders"], j["backorder_units"])' "(2, 3)"
expect 0 "${A[@]}" order 22
has "state     BACKORDERED"
has "policy    BACKORDER"
has "0 of 2 allocated, 2 waiting at place 1 in the queue"
expect 0 "${A[@]}" --json order 23
jexpect 'j["lines"][0]["queue_place"]' 2
jexpect 'j["policy"]' BACKORDER
expect 0 "${A[@]}" --json confirm 23 # paid in advance: CONFIRMED once complete
jexpect '(j["result"], j["state"])' "('OK', 'BACKORDERED')"
expect 0 "${A[@]}" --json order 23
jexpect 'j["state"]' BACKORDERED
jexpect 'j["confirmed_in_advance"]' true
expect 1 "${A[@]}" extend 22 1000 # only a HELD order's hold is extended
has "INVALID_STATE"

# a restock of 2 at location 2 fills the first order placed (22), not 23
expect 0 "${A[@]}" restock 500 2 --location 2
expect 0 "${A[@]}" --json order 22
jexpect 'j["state"]' CONFIRMED
jexpect 'j["lines"][0]["allocated"]' 2
jexpect '[(l["location"], l["units"]) for l in j["lines"][0]["locations"]]' "[(2, 2)]"
expect 0 "${A[@]}" --json order 23
jexpect 'j["state"]' BACKORDERED
jexpect 'j["lines"][0]["allocated"]' 0
jexpect 'j["lines"][0]["queue_place"]' 1
expect 0 "${A[@]}" --json sku 500
jexpect '(j["available"], j["backorder_orders"], j["backorder_units"])' "(0, 1, 1)"
# one more at location 1 fills 23, confirmed in advance
expect 0 "${A[@]}" restock 500 1 --location 1
expect 0 "${A[@]}" order 23
has "state     CONFIRMED"
has "1 at location 1"
expect 0 "${A[@]}" --json sku 500
jexpect '(j["on_hand"], j["allocated"], j["available"], j["backorder_orders"])' "(8, 8, 0, 0)"

# stock comes back for sale, then a hold is extended and runs out
expect 0 "${A[@]}" restock 500 3
expect 0 "${A[@]}" place 24 --customer 5 --hold-ms 300 500:1
has "state     HELD"
expect 0 "${A[@]}" --json extend 24 3000
jexpect 'j["state"]' HELD
sleep 0.6 # past the first deadline, not the extended one
expect 0 "${A[@]}" --json order 24
jexpect 'j["state"]' HELD
for _ in $(seq 150); do
    run "${A[@]}" --json order 24
    [ "$(jq 'j["state"]')" = EXPIRED ] && break
    sleep 0.1
done
jexpect 'j["state"]' EXPIRED
# adjusting location 0 down takes its available units; location 1 has none
expect 1 "${A[@]}" adjust 500 -1 --location 1
has "INSUFFICIENT_STOCK"
expect 0 "${A[@]}" --json adjust 500 -3 --location 0
jexpect 'j["available"]' 0

# the watchers saw it all, in order, once durable
for _ in $(seq 100); do
    grep -q '"SOLD_OUT"' "$T/events.jsonl" 2>/dev/null &&
        [ "$(grep -c '"SOLD_OUT"' "$T/events.jsonl")" -ge 2 ] &&
        grep -q HOLD_EXPIRED "$T/events.jsonl" && break
    sleep 0.1
done
kill -0 "$W_ALL" 2>/dev/null || fail "watch exited early: $(cat "$T/watch.err")"
kill -TERM "$W_ALL" "$W_FILLED"
rc=0; wait "$W_ALL" || rc=$?
[ "$rc" -eq 0 ] || { RC=$rc; OUT=$(cat "$T/watch.err"); fail "watch exited $rc on SIGTERM"; }
ok
rc=0; wait "$W_FILLED" || rc=$?
[ "$rc" -eq 0 ] || { RC=$rc; OUT=$(cat "$T/watch2.err"); fail "watch --type exited $rc on SIGTERM"; }
ok
WATCHERS=()
OUT=$(cat "$T/events.jsonl")
RC=0
python3 - "$T/events.jsonl" "$FROM" <<'PY' || fail "the events are not those of the scripted sale"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
frm = int(sys.argv[2])
def bad(msg):
    print("events: " + msg, file=sys.stderr)
    for e in evs:
        print("  ", e, file=sys.stderr)
    sys.exit(1)
seqs = [e["seq"] for e in evs]
if seqs != sorted(seqs) or any(s < frm for s in seqs):
    bad("seq not in order, or before --from")
if any(e["sku"] != 500 for e in evs):
    bad("an event of another SKU got through --sku 500")
keys = set(evs[0]) if evs else set()
if keys != {"seq", "time", "time_ms", "type", "sku", "order", "value", "state", "location"}:
    bad("keys %s" % sorted(keys))
def key(e):
    t = e["type"]
    return (t, e["order"] if t in ("BACKORDER_FILLED", "HOLD_EXPIRED") else 0, e["value"],
            e["location"] if t == "RESTOCKED" else 0)
got = [key(e) for e in evs if e["type"] != "REORDER_POINT"]
want = [("SOLD_OUT", 0, 0, 0),                 # order 21 took the last unit
        ("RESTOCKED", 0, 2, 2),
        ("BACKORDER_FILLED", 22, 2, 0),        # first come, first served
        ("RESTOCKED", 0, 1, 1),
        ("BACKORDER_FILLED", 23, 1, 0),
        ("RESTOCKED", 0, 3, 0),
        ("HOLD_EXPIRED", 24, 1, 0),
        ("SOLD_OUT", 0, 0, 0)]                  # the adjust took the rest
if got != want:
    bad("got %s,\n want %s" % (got, want))
st = {e["order"]: e["state"] for e in evs if e["type"] == "BACKORDER_FILLED"}
if st != {22: "CONFIRMED", 23: "CONFIRMED"}:
    bad("fill states %s" % st)
if not any(e["type"] == "REORDER_POINT" and e["value"] <= 2 for e in evs):
    bad("no REORDER_POINT at or below 2")
if [e["state"] for e in evs if e["type"] == "HOLD_EXPIRED"] != ["EXPIRED"]:
    bad("HOLD_EXPIRED state")
PY
ok
# the text watcher: only the types asked for, one line each, ISO time first
OUT=$(cat "$T/filled.txt")
[ "$(grep -c 'type=BACKORDER_FILLED' "$T/filled.txt")" -eq 2 ] || fail "text watch: fills"
ok
grep -v -q 'type=BACKORDER_FILLED\|type=SOLD_OUT' "$T/filled.txt" && fail "text watch: other types"
ok
grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z seq=[0-9]+ type=BACKORDER_FILLED sku=500 order=22 value=2 state=CONFIRMED location=[0-9]+$' \
    "$T/filled.txt" || fail "text watch: the line of order 22"
ok

# watch stops quietly when its reader goes away, and on SIGINT
run timeout 10 bash -c '"$@" | head -1' _ "${A[@]}" watch --from "$FROM"
[ "$RC" -eq 0 ] || fail "watch | head -1 exited $RC"
ok
printf '%s\n' "$OUT" | grep -q "seq=$FROM\|seq=" || fail "watch | head -1 printed nothing"
ok
run timeout 10 bash -c 'set -o pipefail; "$@" | head -1' _ "${A[@]}" watch --from "$FROM"
[ "$RC" -eq 0 ] || fail "watch in a closed pipe exited $RC (pipefail)"
ok
"${A[@]}" watch --from "$FROM" >"$T/int.txt" 2>"$T/watch3.err" &
W_INT=$!
WATCHERS=("$W_INT")
for _ in $(seq 100); do [ -s "$T/int.txt" ] && break; sleep 0.05; done # its handler is in place
[ -s "$T/int.txt" ] || fail "watch --from $FROM printed nothing"
kill -INT "$W_INT"
rc=0; wait "$W_INT" || rc=$?
[ "$rc" -eq 0 ] || { RC=$rc; OUT=$(cat "$T/watch3.err"); fail "watch exited $rc on SIGINT"; }
ok
WATCHERS=()

# a backorder whose maximum wait runs out expires and leaves the queue
expect 0 "${A[@]}" --json place 25 --customer 6 --policy backorder --max-wait-ms 300 500:1
jexpect 'j["state"]' BACKORDERED
jexpect 'j["deadline_ms"] > 0' true
for _ in $(seq 100); do
    run "${A[@]}" --json order 25
    [ "$(jq 'j["state"]')" = EXPIRED ] && break
    sleep 0.1
done
jexpect 'j["state"]' EXPIRED
expect 0 "${A[@]}" --json sku 500
jexpect '(j["backorder_orders"], j["backorder_units"])' "(0, 0)"

# ---- the data dir lock ------------------------------------------------------------------

rm -f "$T/port2"
run timeout 10 "$ALLOTD" --listen 127.0.0.1:0 --port-file "$T/port2" --data-dir "$DATA" --threads 1 \
    --skus-max 1024 --orders-max 4096
[ "$RC" -eq 1 ] || fail "a second allotd on the same data dir exited $RC, expected 1"
ok
has_err "is locked"
[ ! -e "$T/port2" ] || fail "the second allotd wrote a port file"
expect 0 "${A[@]}" --json sku 7 # the first one is unharmed
jexpect 'j["on_hand"]' 7

# ---- the digest across a clean restart ---------------------------------------------------

expect 0 "${A[@]}" --json stats
D1=$(jq 'j["state_digest"]')
S1=$(jq 'j["sequence"]')
stop_server
if [ -n "$JOURNAL" ]; then
    expect 0 "$JOURNAL" replay "$DATA" --json
    jexpect 'j["state_digest"]' "$D1"
    expect 0 "$JOURNAL" replay "$DATA" --json --no-snapshot
    jexpect 'j["state_digest"]' "$D1"
fi
start_server --events-retain 4
expect 0 "${A[@]}" --json stats
jexpect 'j["state_digest"]' "$D1"
jexpect 'j["sequence"]' "$S1"
expect 0 "${A[@]}" --json order 5
jexpect '[(l["requested"], l["allocated"]) for l in j["lines"]]' "[(5, 3), (2, 2)]"
expect 0 "${A[@]}" --json order 20 # locations survive the restart
jexpect 'sorted((l["location"], l["units"]) for l in j["lines"][0]["locations"])' "[(1, 3), (2, 1)]"
# with 4 events kept, the sale's first ones are gone: TOO_OLD, exit 1
expect 1 timeout 10 "${A[@]}" watch --from "$FROM"
has_err "TOO_OLD"
has_err "the oldest it has is"
expect 0 "${A[@]}" --json place 8 --customer 13 8:1
jexpect 'j["result"]' OK
stop_server

rm -rf "$T"
echo "cli_integration: $CHECKS checks passed"
