#!/usr/bin/env bash
# allot-journal end to end, on journals written by jgen through the real
# engine and the real journal code, then damaged on purpose.
#
# usage: test_jtool.sh ALLOT_JOURNAL JGEN WORKDIR
set -u
J=$1
G=$2
W=$3
rm -rf "$W"
mkdir -p "$W"

fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
# expect DESCRIPTION CODE COMMAND...: runs it, output in $W/out, checks the exit code.
expect() {
    local desc=$1 want=$2
    shift 2
    "$@" >"$W/out" 2>"$W/err"
    local got=$?
    if [ "$got" -eq "$want" ]; then ok "$desc"; else
        bad "$desc: exit $got, wanted $want"
        head -5 "$W/out" "$W/err"
    fi
}
has() { # has DESCRIPTION TEXT FILE
    if grep -qF -- "$2" "$3"; then ok "$1"; else
        bad "$1: '$2' not in $3"
        head -5 "$3"
    fi
}
same() { # same DESCRIPTION A B
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: '$2' != '$3'"; fi
}
digest_of() { awk '/^state_digest/{print $2}' "$W/out"; }
# Small engine tables: the test journals are small, and the tables are
# populated up front.
RT=(--skus-max 30000 --orders-max 200000 --limits-max 200000)
sum_dir() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum) }

# ---- a journal of several segments, with a snapshot -----------------------------------
B=$W/base
"$G" write "$B" --records 150000 --segment-mb 4 --digest-every 25000 --snapshot-at 100000 \
    --retain-ms 3000 --retain-max 20000 >"$W/gen.out" || { echo "FAIL jgen write"; exit 1; }
read -r _ LAST FINAL < <(grep '^final' "$W/gen.out")
SNAP=$(awk '/^snapshot/{print $2}' "$W/gen.out")
NSEGS=$(ls "$B"/journal-*.seg | wc -l)
[ "$NSEGS" -ge 3 ] && ok "jgen wrote $NSEGS segments" || bad "jgen wrote $NSEGS segments"
BEFORE=$(sum_dir "$B")

expect "verify: a clean journal" 0 "$J" verify "$B"
has "verify: summary records" "records    $LAST" "$W/out"
has "verify: summary problems" "problems   0" "$W/out"
has "verify: summary snapshots" "snapshots  1 (1 valid)" "$W/out"
has "verify: summary last" "last       seq $LAST at 2026-11-26T" "$W/out"
has "verify: says clean" "verify: clean" "$W/out"

# ---- replay: digests equal the live engine's ---------------------------------------------
expect "replay: whole journal" 0 "$J" replay "$B" "${RT[@]}"
same "replay: digest = live digest" "$(digest_of)" "$FINAL"
has "replay: used the snapshot" "after the snapshot at seq $SNAP" "$W/out"
has "replay: final check" "check          ok" "$W/out"
expect "replay: --no-snapshot" 0 "$J" replay "$B" --no-snapshot "${RT[@]}"
same "replay --no-snapshot: digest = live digest" "$(digest_of)" "$FINAL"
expect "replay: --json" 0 "$J" replay "$B" --json "${RT[@]}"
same "replay --json: state_digest" \
    "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["state_digest"])' <"$W/out")" "$FINAL"
while read -r _ seq dig; do
    expect "replay --until $seq" 0 "$J" replay "$B" --until "$seq" "${RT[@]}"
    same "replay --until $seq: digest" "$(digest_of)" "$dig"
done < <(grep '^digest' "$W/gen.out")
read -r _ S1 D1 < <(grep '^digest' "$W/gen.out" | head -1)
expect "replay --until $S1 --no-snapshot" 0 "$J" replay "$B" --until "$S1" --no-snapshot "${RT[@]}"
same "replay --until --no-snapshot: digest" "$(digest_of)" "$D1"

# Default tables (1M each) and the default table growth path.
expect "replay: default tables" 0 "$J" replay "$B"
same "replay: default tables digest" "$(digest_of)" "$FINAL"
expect "replay: tables too small grow" 0 "$J" replay "$B" --no-snapshot --skus-max 1000 \
    --orders-max 20000 --limits-max 1000
same "replay: grown tables digest" "$(digest_of)" "$FINAL"
has "replay: says it grew the tables" "replaying again with" "$W/err"

# ---- dump in every format ------------------------------------------------------------------
expect "dump: text" 0 "$J" dump "$B"
same "dump text: one line per record" "$(wc -l <"$W/out")" "$LAST"
has "dump text: ISO times and names" "2026-11-26T10:00:00.000Z SKU_SET sku=1 on_hand=" "$W/out"
expect "dump: jsonl" 0 "$J" dump "$B" --format jsonl
cp "$W/out" "$W/all.jsonl"
same "dump jsonl: one line per record" "$(wc -l <"$W/all.jsonl")" "$LAST"
python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <"$W/all.jsonl" &&
    ok "dump jsonl: every line parses" || bad "dump jsonl: every line parses"
expect "dump: csv" 0 "$J" dump "$B" --format csv
same "dump csv: header plus one row per record" "$(wc -l <"$W/out")" "$((LAST + 1))"
same "dump csv: 15 columns everywhere" "$(awk -F, '{print NF}' "$W/out" | sort -u)" "15"
has "dump csv: PLACE lines flattened" ",PLACE,," "$W/out"
grep -qE ',PLACE,.*,[0-9]+:[0-9]+:[0-9]+(;[0-9]+:[0-9]+:[0-9]+)*$' "$W/out" &&
    ok "dump csv: lines as sku:qty:alloc;..." || bad "dump csv: lines as sku:qty:alloc;..."

# Filters, against counts computed from the jsonl dump.
count() { python3 "$W/count.py" "$W/all.jsonl" "$@"; }
cat >"$W/count.py" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
kind, arg = sys.argv[2], sys.argv[3:]
if kind == "type":
    print(sum(r["type"] in arg for r in recs))
elif kind == "order":
    print(sum(r.get("order") == int(arg[0]) for r in recs))
elif kind in ("customer", "sku"):
    v, followed, n = int(arg[0]), set(), 0
    for r in recs:
        t = r["type"]
        if t == "PLACE":
            hit = r["customer"] == v if kind == "customer" else any(l["sku"] == v for l in r["lines"])
            if hit:
                followed.add(r["order"]); n += 1
        elif "order" in r:
            if r["order"] in followed:
                n += 1
                if t in ("CANCEL", "FULFILL", "EXPIRE"):
                    followed.discard(r["order"])
        elif kind == "sku" and r.get("sku") == v:
            n += 1
    print(n)
elif kind == "time":
    lo, hi = int(arg[0]), int(arg[1])
    print(sum(lo <= r["time_ms"] <= hi for r in recs))
elif kind == "time_of":
    print(next(r["time_ms"] for r in recs if r["seq"] == int(arg[0])))
elif kind == "last_at":
    print(max(r["seq"] for r in recs if r["time_ms"] <= int(arg[0])))
elif kind == "model":
    # on_hand and allocated of SKUs, from the records alone
    skus, orders = {}, {}
    for r in recs:
        t = r["type"]
        if t == "SKU_SET": skus[r["sku"]] = [r["on_hand"], 0]
        elif t == "RESTOCK": skus[r["sku"]][0] += r["qty"]
        elif t == "ADJUST": skus[r["sku"]][0] += r["delta"]
        elif t == "PLACE":
            orders[r["order"]] = [(l["sku"], l["allocated"]) for l in r["lines"]]
            for s, a in orders[r["order"]]: skus[s][1] += a
        elif t in ("CANCEL", "EXPIRE", "FULFILL"):
            for s, a in orders.pop(r["order"]):
                skus[s][1] -= a
                if t == "FULFILL": skus[s][0] -= a
    print(" ".join("%d:%d:%d" % (s, skus[s][0], skus[s][1]) for s in map(int, arg)))
EOF
for t in PLACE CANCEL EXPIRE RETIRE; do
    expect "dump --type $t" 0 "$J" dump "$B" --type "$t"
    same "dump --type $t: count" "$(wc -l <"$W/out")" "$(count type "$t")"
done
expect "dump --type list" 0 "$J" dump "$B" --type confirm,Fulfill --type extend
same "dump --type list: count" "$(wc -l <"$W/out")" "$(count type CONFIRM FULFILL EXTEND)"
[ "$(count type RETIRE)" -gt 0 ] && ok "journal has RETIRE records" || bad "no RETIRE records"
[ "$(count type EXPIRE)" -gt 0 ] && ok "journal has EXPIRE records" || bad "no EXPIRE records"
ORDER=$(python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l)
    if r["type"] == "FULFILL": print(r["order"]); break' <"$W/all.jsonl")
expect "dump --order" 0 "$J" dump "$B" --order "$ORDER" --format jsonl
same "dump --order: count" "$(wc -l <"$W/out")" "$(count order "$ORDER")"
[ "$(wc -l <"$W/out")" -ge 2 ] && ok "dump --order: PLACE and FULFILL" || bad "dump --order: too few"
expect "dump --customer" 0 "$J" dump "$B" --customer 77 --format jsonl
same "dump --customer: count (with the orders' later records)" "$(wc -l <"$W/out")" "$(count customer 77)"
expect "dump --sku" 0 "$J" dump "$B" --sku 3 --format csv
same "dump --sku: count (with the orders' later records)" "$(($(wc -l <"$W/out") - 1))" "$(count sku 3)"
expect "dump --from/--to seq" 0 "$J" dump "$B" --from 70000 --to 70999
same "dump --from/--to seq: count" "$(wc -l <"$W/out")" 1000
has "dump --from: starts there" "#70000 " "$W/out"
T1=$(count time_of 60000)
T2=$(count time_of 90000)
F1=$(python3 -c "import datetime as d; print(d.datetime.fromtimestamp($T1/1000, d.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]+'Z')")
expect "dump --from TIME --to @MS" 0 "$J" dump "$B" --from "$F1" --to "@$T2" --format jsonl
same "dump --from/--to time: count" "$(wc -l <"$W/out")" "$(count time "$T1" "$T2")"

# replay --until TIME is replay --until the last record at or before it.
expect "replay --until TIME" 0 "$J" replay "$B" --until "$F1" "${RT[@]}"
DT=$(digest_of)
expect "replay --until the same seq" 0 "$J" replay "$B" --until "$(count last_at "$T1")" "${RT[@]}"
same "replay --until TIME: digest" "$DT" "$(digest_of)"

# SKU state: replay against a model computed from the dump.
expect "replay --sku" 0 "$J" replay "$B" --json --sku 1,2,3 --sku 400 777 "${RT[@]}"
same "replay --sku: on_hand and allocated" \
    "$(python3 -c 'import json,sys; print(" ".join("%d:%d:%d" % (s["sku"], s["on_hand"], s["allocated"]) for s in json.load(sys.stdin)["selected_skus"]))' <"$W/out")" \
    "$(count model 1 2 3 400 777)"
expect "replay --order" 0 "$J" replay "$B" --order "$ORDER" 424242424242
has "replay --order: unknown order" "order 424242424242: not in memory" "$W/out"

# A closed pipe stops the dump quietly.
"$J" dump "$B" 2>"$W/err" | head -1 >/dev/null
same "dump | head: exit 0" "${PIPESTATUS[0]}" 0
"$J" dump "$B" --format jsonl 2>"$W/err" | head -c 100 >/dev/null
same "dump jsonl | head -c: exit 0" "${PIPESTATUS[0]}" 0

# ---- stats ------------------------------------------------------------------------------------
expect "stats: text" 0 "$J" stats "$B"
has "stats: records" "records        $LAST" "$W/out"
has "stats: top SKUs" "top SKUs by units allocated" "$W/out"
expect "stats: json" 0 "$J" stats "$B" --json
python3 - "$W/out" "$LAST" "$(count type PLACE)" <<'EOF' && ok "stats --json: consistent" || bad "stats --json: consistent"
import json, sys
s = json.load(open(sys.argv[1]))
records, places = int(sys.argv[2]), int(sys.argv[3])
assert s["records"] == records, s["records"]
assert sum(s["by_type"].values()) == records
assert s["by_type"]["PLACE"] == places
assert s["place"]["full"] + s["place"]["partial"] == places
assert sum(s["place"]["by_policy"].values()) == places
assert sum(b["n"] for b in s["throughput"]["per_second"]) == records
assert sum(b["n"] for b in s["throughput"]["per_minute"]) == records
assert max(b["n"] for b in s["throughput"]["per_second"]) == s["throughput"]["peak_per_second"]["n"]
top = [t["units"] for t in s["top_skus"]]
assert 0 < len(top) <= 10 and top == sorted(top, reverse=True)
assert len(s["sold_out"]) > 0
seqs = [x["seq"] for x in s["sold_out"]]
assert seqs == sorted(seqs)
EOF

# ---- usage and help ------------------------------------------------------------------------------
for c in verify dump replay stats truncate; do
    expect "$c --help" 0 "$J" "$c" --help
    has "$c --help: usage line" "usage: allot-journal $c" "$W/out"
done
expect "--help lists the commands" 0 "$J" --help
for c in verify dump replay stats truncate; do has "--help names $c" "  $c DIR" "$W/out"; done
expect "usage: no command" 2 "$J"
expect "usage: unknown command" 2 "$J" frobnicate "$B"
expect "usage: missing DIR" 2 "$J" verify
expect "usage: unknown option" 2 "$J" dump "$B" --colour
expect "usage: bad --type" 2 "$J" dump "$B" --type PLACE,SHIP
has "usage: bad --type names it" "SHIP" "$W/err"
expect "usage: bad --from" 2 "$J" dump "$B" --from yesterday
expect "usage: bad --format" 2 "$J" dump "$B" --format xml
expect "usage: --until 0" 2 "$J" replay "$B" --until 0
expect "usage: truncate without --at" 2 "$J" truncate "$B"
expect "no such directory" 1 "$J" verify "$W/nowhere"
[ ! -e "$W/nowhere" ] && ok "a missing DIR is not created" || bad "a missing DIR was created"
same "read-only commands changed nothing" "$(sum_dir "$B")" "$BEFORE"

# ---- torn tails: every offset of the last record ------------------------------------------------
T=$W/torn
"$G" write "$T.orig" --records 20000 --segment-mb 4 >"$W/gen2.out" || bad "jgen write (torn)"
read -r _ TLAST _ < <(grep '^final' "$W/gen2.out")
"$J" replay "$T.orig" --until $((TLAST - 1)) "${RT[@]}" >"$W/out"
DPREV=$(digest_of)
read -r TF TO TS < <("$G" locate "$T.orig" "$TLAST")
torn_fail=0
for k in $(seq 1 $((TS - 1))); do
    rm -rf "$T"
    cp -r "$T.orig" "$T"
    zeroed=$("$G" tear "$T/$TF" $((TO + k)) | awk '{print $2}')
    "$J" verify "$T" >"$W/out" 2>&1
    code=$?
    if [ "$zeroed" -eq 0 ]; then
        [ $code -eq 0 ] || { torn_fail=1; echo "k=$k: nothing changed but verify says $code"; }
        continue
    fi
    if [ $code -ne 1 ] || ! grep -qF "torn tail at $TF offset $TO " "$W/out"; then
        torn_fail=1
        echo "k=$k: verify exit $code:"
        head -3 "$W/out"
    fi
    "$J" replay "$T" "${RT[@]}" >"$W/out" 2>&1 || { torn_fail=1; echo "k=$k: replay failed"; }
    [ "$(digest_of)" = "$DPREV" ] || { torn_fail=1; echo "k=$k: replay digest $(digest_of)"; }
done
[ $torn_fail -eq 0 ] && ok "torn tail at each of $((TS - 1)) offsets: verify names it, replay ends before it" ||
    bad "torn tail at every offset"
# A file cut short (not zero-filled) inside the last record.
for k in 1 7 $((TS / 2)) $((TS - 1)); do
    rm -rf "$T"
    cp -r "$T.orig" "$T"
    "$G" cut "$T/$TF" $((TO + k))
    expect "file cut at +$k: verify" 1 "$J" verify "$T"
    has "file cut at +$k: torn tail named" "torn tail at $TF offset $TO (the record runs past the end of the file): the server will cut it at start-up" "$W/out"
    expect "file cut at +$k: replay" 0 "$J" replay "$T" "${RT[@]}"
    same "file cut at +$k: replay digest" "$(digest_of)" "$DPREV"
    has "file cut at +$k: replay notes the torn tail" "torn tail at $TF offset $TO: not replayed" "$W/out"
    expect "file cut at +$k: dump ends cleanly" 0 "$J" dump "$T"
    same "file cut at +$k: dump has the whole records" "$(wc -l <"$W/out")" $((TLAST - 1))
done

# ---- corruption in the middle ----------------------------------------------------------------------
C=$W/corrupt
M=70000
read -r MF MO MS < <("$G" locate "$B" $M)

rm -rf "$C"; cp -r "$B" "$C"
"$G" flip "$C/$MF" $((MO + 30)) 3
expect "flipped bit: verify" 1 "$J" verify "$C"
has "flipped bit: named by file and offset" "$MF offset $MO: record checksum mismatch, and valid records resume at offset $((MO + MS)) with sequence $((M + 1)) (record $M is lost)" "$W/out"
has "flipped bit: counted" "problems   1" "$W/out"
expect "flipped bit: replay stops" 1 "$J" replay "$C" --no-snapshot "${RT[@]}"
has "flipped bit: replay names the record" "replay stopped at seq $M: $MF offset $MO" "$W/out"
expect "flipped bit: dump stops" 1 "$J" dump "$C"
has "flipped bit: dump says where" "$MF offset $MO" "$W/err"

rm -rf "$C"; cp -r "$B" "$C"
SEG2=$(ls "$C"/journal-*.seg | sed -n 2p)
SEG3=$(basename "$(ls "$C"/journal-*.seg | sed -n 3p)")
A=$(basename "$SEG2" | sed 's/journal-0*//; s/\.seg//')
Z=$(($(echo "$SEG3" | sed 's/journal-0*//; s/\.seg//') - 1))
rm "$SEG2"
expect "missing segment: verify" 1 "$J" verify "$C"
has "missing segment: the gap is named" "$SEG3 starts at sequence $((Z + 1)) but $A was expected: records $A..$Z are missing (a segment is missing)" "$W/out"
expect "missing segment: replay stops" 1 "$J" replay "$C" --no-snapshot "${RT[@]}"
has "missing segment: replay says so" "replay stopped at seq $A" "$W/out"

rm -rf "$C"; cp -r "$B" "$C"
"$G" reseq "$C/$MF" "$MO" $((M + 1000))
expect "sequence gap: verify" 1 "$J" verify "$C"
has "sequence gap: named" "$MF offset $MO: sequence $((M + 1000)) where $M was expected" "$W/out"
expect "sequence gap: replay stops" 1 "$J" replay "$C" --no-snapshot "${RT[@]}"
has "sequence gap: replay names the record" "replay stopped at seq $M:" "$W/out"

rm -rf "$C"; cp -r "$B" "$C"
"$G" retype "$C/$MF" "$MO" 77
expect "unknown type: verify" 1 "$J" verify "$C"
has "unknown type: named" "$MF offset $MO: unknown record type (type 77; its checksum is valid), and valid records resume at offset $((MO + MS))" "$W/out"
expect "unknown type: replay stops" 1 "$J" replay "$C" --no-snapshot "${RT[@]}"

# An oversell with a valid checksum: verify cannot see it, replay must.
PSEQ=$(python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l)
    if r["type"] == "PLACE" and r["seq"] > 60000: print(r["seq"]); break' <"$W/all.jsonl")
read -r PF PO _ < <("$G" locate "$B" "$PSEQ")
rm -rf "$C"; cp -r "$B" "$C"
"$G" overalloc "$C/$PF" "$PO" 1000000
expect "oversell: verify sees a well-formed journal" 0 "$J" verify "$C"
expect "oversell: replay stops" 1 "$J" replay "$C" --no-snapshot "${RT[@]}"
has "oversell: replay names the record and the invariant" "replay stopped at seq $PSEQ: $PF offset $PO: seq $PSEQ: oversell" "$W/out"
expect "oversell: replay --json" 1 "$J" replay "$C" --no-snapshot --json "${RT[@]}"
same "oversell: replay --json seq" \
    "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])' <"$W/out")" "$PSEQ"
expect "oversell: replay --until before it" 0 "$J" replay "$C" --no-snapshot --until $((PSEQ - 1)) "${RT[@]}"

rm -rf "$C"; cp -r "$B" "$C"
SNAPF=$(cd "$C" && ls snapshot-*.snap)
"$G" flip "$C/$SNAPF" 1000 0
expect "damaged snapshot: verify" 1 "$J" verify "$C"
has "damaged snapshot: named" "$SNAPF offset" "$W/out"
has "damaged snapshot: checksum" "checksum mismatch over the body" "$W/out"
expect "damaged snapshot: replay falls back to the journal" 0 "$J" replay "$C" "${RT[@]}"
same "damaged snapshot: digest" "$(digest_of)" "$FINAL"

# ---- random damage: never a crash, only 0 or 1 ------------------------------------------------------------
cat >"$W/damage.py" <<'EOF'
import os, random, sys
d, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
segs = sorted(f for f in os.listdir(d) if f.startswith("journal-0"))
path = os.path.join(d, rnd.choice(segs))
size = os.path.getsize(path)
kind = seed % 5
with open(path, "r+b") as f:
    if kind == 0:    # scattered bytes, the header included
        for _ in range(rnd.randint(1, 20)):
            f.seek(rnd.randrange(0, min(size, 200000)))
            f.write(bytes([rnd.randrange(256)]))
    elif kind == 1:  # a run of garbage among the records
        f.seek(rnd.randrange(128, min(size, 3000000)))
        f.write(os.urandom(rnd.randint(8, 5000)))
    elif kind == 2:  # a file cut anywhere
        f.truncate(rnd.randrange(0, size))
    elif kind == 3:  # garbage after the records, in the zeros
        f.seek(size - rnd.randint(1, 100000))
        f.write(os.urandom(rnd.randint(1, 64)))
    else:            # a length word made plausible but wrong
        off = 128 + 8 * rnd.randrange(0, 100000)
        f.seek(off)
        f.write(rnd.choice([8, 40, 48, 1120, 1128, 65536]).to_bytes(4, "little"))
EOF
crash=0
for i in $(seq 0 19); do
    rm -rf "$C"; cp -r "$B" "$C"
    python3 "$W/damage.py" "$C" "$i"
    for cmd in "verify" "dump --format jsonl" "stats --json" "replay --no-snapshot ${RT[*]}"; do
        # shellcheck disable=SC2086
        "$J" $cmd "$C" >/dev/null 2>&1
        code=$?
        if [ $code -gt 1 ]; then
            crash=1
            echo "damage $i: '$cmd' exit $code"
        fi
    done
done
[ $crash -eq 0 ] && ok "random damage x20: every command ends with 0 or 1" || bad "random damage"

# ---- truncate ------------------------------------------------------------------------------------------
X=$W/cut
rm -rf "$X"; cp -r "$B" "$X"
XB=$(sum_dir "$X")
expect "truncate without --yes refuses" 2 "$J" truncate "$X" --at $M
has "truncate without --yes explains" "run again with --yes" "$W/out"
has "truncate without --yes shows the plan" "would cut $MF at offset $((MO + MS)), after record $M" "$W/out"
same "truncate without --yes changed nothing" "$(sum_dir "$X")" "$XB"
"$G" lock "$X" 30 >"$W/lock.out" &
LOCKER=$!
for _ in $(seq 100); do grep -q locked "$W/lock.out" && break; sleep 0.05; done
expect "truncate while locked refuses" 1 "$J" truncate "$X" --at $M --yes
has "truncate while locked says why" "is locked" "$W/err"
kill "$LOCKER"
wait "$LOCKER" 2>/dev/null
same "truncate while locked changed nothing" "$(sum_dir "$X")" "$XB"
expect "truncate beyond the journal refuses" 1 "$J" truncate "$X" --at $((LAST + 5)) --yes
expect "truncate --yes" 0 "$J" truncate "$X" --at $M --yes
BK=$(ls -d "$X"/truncated-*)
[ -d "$BK" ] && ok "truncate: backup directory" || bad "truncate: backup directory"
expect "truncate: verify after" 0 "$J" verify "$X"
has "truncate: ends at the cut" "last       seq $M at" "$W/out"
expect "truncate: replay after" 0 "$J" replay "$X" "${RT[@]}"
DCUT=$(digest_of)
expect "replay --until the cut on the original" 0 "$J" replay "$B" --until $M "${RT[@]}"
same "truncate: digest = replay --until" "$DCUT" "$(digest_of)"
[ -f "$BK/MANIFEST" ] && ok "truncate: MANIFEST" || bad "truncate: MANIFEST"
[ -f "$BK/$SNAPF" ] && ok "truncate: snapshot ahead moved aside" || bad "truncate: snapshot ahead moved aside"
moved=0
for s in $(cd "$B" && ls journal-*.seg); do
    if [ ! -f "$X/$s" ]; then
        cmp -s "$B/$s" "$BK/$s" && moved=$((moved + 1)) || bad "truncate: $s not kept intact"
    fi
done
[ $moved -ge 1 ] && ok "truncate: $moved later segments moved intact" || bad "truncate: later segments"
TAIL=$BK/$MF.from-$((MO + MS))
python3 - "$B/$MF" "$X/$MF" "$TAIL" $((MO + MS)) <<'EOF' && ok "truncate: cut bytes saved, then zeroed" || bad "truncate: cut bytes saved, then zeroed"
import sys
orig, cut, tail, off = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read(), int(sys.argv[4])
assert len(tail) > 0
assert orig[off:off + len(tail)] == tail
assert orig[off + len(tail):].strip(b"\0") == b""
assert cut[:off] == orig[:off]
assert cut[off:].strip(b"\0") == b""
EOF
expect "truncate again: nothing to cut" 0 "$J" truncate "$X" --at $M --yes
has "truncate again: says so" "nothing to cut" "$W/out"

echo
if [ $fails -eq 0 ]; then
    echo "jtool end to end: all passed"
    rm -rf "$W"
    exit 0
fi
echo "jtool end to end: $fails failed (work files kept in $W)"
exit 1
