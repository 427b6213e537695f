#!/usr/bin/env bash
# The allot CLI against the real allotd on a free port: every command in
# text and --json form, exit codes 0/1/2/3, --help, CSV import, allotd's
# --help, the data dir lock, and the state digest across a clean restart.
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

cleanup() {
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

start_server() {
    rm -f "$T/port"
    "$ALLOTD" --listen 127.0.0.1:0 --port-file "$T/port" --data-dir "$DATA" --threads 1 \
        --skus-max 1024 --orders-max 4096 2>>"$LOG" &
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
for c in "sku set" restock adjust place confirm cancel fulfill extend order "sku SKU" stats \
         import help; do
    has "  $c"
done
has "Exit status"
expect 0 "$ALLOT" place --help
has "usage: allot [OPTIONS] place"
has "--hold-ms"
has "--policy"
expect 0 "$ALLOT" help adjust
has "DELTA"
expect 0 "$ALLOT" sku set --help
has "--reorder-point"

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
start_server
expect 0 "${A[@]}" --json stats
jexpect 'j["state_digest"]' "$D1"
jexpect 'j["sequence"]' "$S1"
expect 0 "${A[@]}" --json order 5
jexpect '[(l["requested"], l["allocated"]) for l in j["lines"]]' "[(5, 3), (2, 2)]"
expect 0 "${A[@]}" --json place 8 --customer 13 8:1
jexpect 'j["result"]' OK
stop_server

rm -rf "$T"
echo "cli_integration: $CHECKS checks passed"
