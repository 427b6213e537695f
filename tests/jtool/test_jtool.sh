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
same "dump csv: 21 columns everywhere" "$(awk -F, '{print NF}' "$W/out" | sort -u)" "21"
has "dump csv: PLACE lines flattened" ",PLACE,," "$W/out"
grep -qE ',PLACE,.*,[0-9]+:[0-9]+:[0-9]+(;[0-9]+:[0-9]+:[0-9]+)*,,,0,[0-9]+,,[0-9:;]*$' "$W/out" &&
    ok "dump csv: lines as sku:qty:alloc;..." || bad "dump csv: lines as sku:qty:alloc;..."

# Filters, against counts computed from the jsonl dump.
count() { python3 "$W/count.py" "$W/all.jsonl" "$@"; }
cat >"$W/count.py" <<'EOF'
import json, os, sys
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
    # SKUs from the records alone: on_hand and allocated, by location too,
    # and the lines waiting (BACKORDERED orders' short lines)
    skus, orders = {}, {}
    def loc(s, l):
        return skus.setdefault(s, {}).setdefault(l, [0, 0])
    for r in recs:
        t = r["type"]
        if t == "SKU_SET": loc(r["sku"], r["location"])[0] = r["on_hand"]
        elif t == "RESTOCK": loc(r["sku"], r["location"])[0] += r["qty"]
        elif t == "ADJUST": loc(r["sku"], r["location"])[0] += r["delta"]
        elif t == "PLACE":
            o = orders[r["order"]] = {"lines": r["lines"], "state": r["state"]}
            for l in r["lines"]:
                for a in l["locations"]: loc(l["sku"], a["location"])[1] += a["units"]
        elif t == "FILL":
            o = orders[r["order"]]
            l = o["lines"][r["line"]]
            l["allocated"] += r["units"]
            o["state"] = r["state"]
            for a in r["locations"]:
                loc(l["sku"], a["location"])[1] += a["units"]
                l["locations"].append(a)
        elif t in ("CANCEL", "EXPIRE", "FULFILL"):
            for l in orders.pop(r["order"])["lines"]:
                for a in l["locations"]:
                    c = loc(l["sku"], a["location"])
                    c[1] -= a["units"]
                    if t == "FULFILL": c[0] -= a["units"]
    waiting = {}
    for o in orders.values():
        if o["state"] != "BACKORDERED": continue
        for l in o["lines"]:
            if l["allocated"] < l["qty"]:
                w = waiting.setdefault(l["sku"], [0, 0])
                w[0] += 1; w[1] += l["qty"] - l["allocated"]
    out = []
    for s in map(int, arg):
        ls = skus.get(s, {})
        out.append("%d:%d:%d" % (s, sum(c[0] for c in ls.values()), sum(c[1] for c in ls.values())))
        if os.environ.get("MODEL_LOCATIONS"):
            w = waiting.get(s, [0, 0])
            out[-1] += "|%d:%d|" % tuple(w) + ",".join(
                "%d=%d/%d" % (l, c[0], c[1]) for l, c in sorted(ls.items()))
    print(" ".join(out))
elif kind == "units":
    # units allocated per SKU by PLACEs and FILLs (stats' top SKUs)
    lines, units = {}, {}
    for r in recs:
        if r["type"] == "PLACE":
            lines[r["order"]] = [l["sku"] for l in r["lines"]]
            for l in r["lines"]: units[l["sku"]] = units.get(l["sku"], 0) + l["allocated"]
        elif r["type"] == "FILL":
            s = lines[r["order"]][r["line"]]
            units[s] = units.get(s, 0) + r["units"]
    print(" ".join("%d:%d" % (s, units.get(s, 0)) for s in map(int, arg)))
elif kind == "soldout":
    # stats' sell-outs: after a PLACE or FILL that took units, available
    # (on_hand over all locations - allocated) is 0; "sku:first seq:times"
    onh, alloc, orders, sold = {}, {}, {}, {}
    def take(r, s, u):
        alloc[s] = alloc.get(s, 0) + u
        if sum(onh.get(s, {}).values()) - alloc[s] <= 0:
            x = sold.setdefault(s, [r["seq"], 0]); x[1] += 1
    for r in recs:
        t = r["type"]
        if t == "SKU_SET": onh.setdefault(r["sku"], {})[r["location"]] = r["on_hand"]
        elif t in ("RESTOCK", "ADJUST"):
            d = onh.setdefault(r["sku"], {})
            d[r["location"]] = d.get(r["location"], 0) + r.get("qty", r.get("delta"))
        elif t == "PLACE":
            orders[r["order"]] = r["lines"]
            for l in r["lines"]:
                if l["allocated"]: take(r, l["sku"], l["allocated"])
        elif t == "FILL":
            l = orders[r["order"]][r["line"]]
            l["allocated"] += r["units"]; l["locations"] += r["locations"]
            take(r, l["sku"], r["units"])
        elif t in ("CANCEL", "EXPIRE", "FULFILL"):
            for l in orders.pop(r["order"]):
                alloc[l["sku"]] -= l["allocated"]
                for a in l["locations"] if t == "FULFILL" else []:
                    onh[l["sku"]][a["location"]] -= a["units"]
    print(" ".join("%d:%d:%d" % (k, v[0], v[1]) for k, v in sorted(sold.items())))
elif kind == "sum":
    # sum of field arg[1] over records of type arg[0]
    print(sum(r[arg[1]] for r in recs if r["type"] == arg[0]))
elif kind == "where":
    # records of type arg[0] whose field arg[1] equals arg[2] (as text)
    print(sum(r["type"] == arg[0] and str(r.get(arg[1])) == arg[2] for r in recs))
elif kind == "first":
    # the first order (or seq, with arg[1] == "seq") of a record matching a python test
    for r in recs:
        if eval(arg[0], {}, {"r": r}):
            print(r["seq"] if len(arg) > 1 and arg[1] == "seq" else r["order"]); break
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
same "stats: sell-outs match a model of the records" \
    "$(python3 -c 'import json,sys; print(" ".join("%d:%d:%d" % x for x in sorted((s["sku"], s["seq"], s["times"]) for s in json.load(sys.stdin)["sold_out"])))' <"$W/out")" \
    "$(count soldout)"

# ---- waitlists and locations ------------------------------------------------------------------
# BACKORDER orders that wait and are filled (FILL records) by restocks,
# cancellations and expiries; SKUs stocked at several locations with
# priorities; single-location PLACEs.
WL=$W/waitlist
WC=$W/wcorrupt
wcount() { python3 "$W/count.py" "$W/wl.jsonl" "$@"; }
"$G" write "$WL" --records 80000 --segment-mb 4 --digest-every 20000 --snapshot-at 50000 \
    --retain-ms 3000 --retain-max 20000 --backorder-pct 30 --locations 4 >"$W/genw.out" ||
    { echo "FAIL jgen write (waitlist)"; exit 1; }
read -r _ WLAST WFINAL < <(grep '^final' "$W/genw.out")
expect "waitlist: verify" 0 "$J" verify "$WL"
has "waitlist: verify clean" "verify: clean" "$W/out"
expect "waitlist: replay" 0 "$J" replay "$WL" "${RT[@]}"
same "waitlist: replay digest = live digest" "$(digest_of)" "$WFINAL"
has "waitlist: replay used the snapshot" "after the snapshot at seq" "$W/out"
expect "waitlist: replay --no-snapshot" 0 "$J" replay "$WL" --no-snapshot "${RT[@]}"
same "waitlist: replay --no-snapshot digest" "$(digest_of)" "$WFINAL"
while read -r _ seq dig; do
    expect "waitlist: replay --until $seq" 0 "$J" replay "$WL" --until "$seq" --no-snapshot "${RT[@]}"
    same "waitlist: replay --until $seq: digest" "$(digest_of)" "$dig"
done < <(grep '^digest' "$W/genw.out")

expect "waitlist: dump jsonl" 0 "$J" dump "$WL" --format jsonl
cp "$W/out" "$W/wl.jsonl"
same "waitlist: dump jsonl: one line per record" "$(wc -l <"$W/wl.jsonl")" "$WLAST"
python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <"$W/wl.jsonl" &&
    ok "waitlist: every jsonl line parses" || bad "waitlist: every jsonl line parses"
NFILL=$(wcount type FILL)
[ "$NFILL" -gt 100 ] && ok "waitlist: $NFILL FILL records" || bad "waitlist: $NFILL FILL records"
for what in 'r["type"] == "PLACE" and r["state"] == "BACKORDERED"' \
    'r["type"] == "PLACE" and r["state"] == "BACKORDERED" and r["deadline_ms"] > 0' \
    'r["type"] == "PLACE" and r["flags"] == "SINGLE_LOCATION"' \
    'r["type"] == "PLACE" and any(a["location"] != 0 for l in r["lines"] for a in l["locations"])' \
    'r["type"] == "PLACE" and any(len(l["locations"]) > 1 for l in r["lines"])' \
    'r["type"] == "FILL" and r["state"] == "HELD"' \
    'r["type"] == "FILL" and r["state"] == "BACKORDERED"' \
    'r["type"] == "FILL" and r["locations"][0]["location"] != 0' \
    'r["type"] == "SKU_SET" and r["location"] != 0' \
    'r["type"] == "SKU_SET" and r["priority"] != 0' \
    'r["type"] in ("RESTOCK", "ADJUST") and r["location"] != 0' \
    'r["type"] == "EXPIRE" and r["seq"] > 20000'; do
    [ -n "$(wcount first "$what" seq)" ] && ok "waitlist: has $what" || bad "waitlist: none with $what"
done
python3 - "$W/wl.jsonl" <<'EOF2' && ok "waitlist: FILLs and allocations add up" || bad "waitlist: FILLs and allocations add up"
import json, sys
orders = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["type"] == "PLACE":
        for x in r["lines"]:
            assert sum(a["units"] for a in x["locations"]) == x["allocated"], r
            assert len({a["location"] for a in x["locations"]}) == len(x["locations"]), r
        orders[r["order"]] = [[x["qty"], x["allocated"]] for x in r["lines"]]
    elif r["type"] == "FILL":
        line = orders[r["order"]][r["line"]]
        line[1] += r["units"]
        assert line[1] <= line[0], r
        assert sum(a["units"] for a in r["locations"]) == r["units"], r
        done = all(a == q for q, a in orders[r["order"]])
        assert (r["state"] != "BACKORDERED") == done, r
EOF2
expect "waitlist: dump text" 0 "$J" dump "$WL"
same "waitlist: dump text: one line per record" "$(wc -l <"$W/out")" "$WLAST"
grep -qE ' FILL order=[0-9]+ line=[0-9]+ units=[0-9]+(\[[0-9]+:[0-9]+(,[0-9]+:[0-9]+)*\])? state=' "$W/out" &&
    ok "waitlist: dump text FILL" || bad "waitlist: dump text FILL"
grep -qE ' PLACE .*policy=BACKORDER state=BACKORDERED.* wait_deadline=2026-' "$W/out" &&
    ok "waitlist: dump text wait deadline" || bad "waitlist: dump text wait deadline"
grep -qE ' PLACE .* lines=[0-9]+:[0-9]+/[0-9]+\[[0-9]+:[0-9]+' "$W/out" &&
    ok "waitlist: dump text line locations" || bad "waitlist: dump text line locations"
grep -qE ' SKU_SET .* location=[1-9][0-9]* priority=' "$W/out" &&
    ok "waitlist: dump text SKU_SET location" || bad "waitlist: dump text SKU_SET location"
expect "waitlist: dump csv" 0 "$J" dump "$WL" --format csv
same "waitlist: dump csv: 21 columns everywhere" "$(awk -F, '{print NF}' "$W/out" | sort -u)" "21"
grep -qE '^[0-9]+,[0-9]+,[^,]+,FILL,,[0-9]+,,[0-9]+,,,,[A-Z]+,[0-9]+,,,,,,,[0-9]+,[0-9]+:[0-9]+:[0-9]+' "$W/out" &&
    ok "waitlist: dump csv FILL row" || bad "waitlist: dump csv FILL row"
expect "waitlist: dump --type fill" 0 "$J" dump "$WL" --type fill
same "waitlist: dump --type FILL: count" "$(wc -l <"$W/out")" "$NFILL"
FORDER=$(wcount first 'r["type"] == "FILL" and r["state"] != "BACKORDERED"')
expect "waitlist: dump --order (with its FILLs)" 0 "$J" dump "$WL" --order "$FORDER" --format jsonl
same "waitlist: dump --order: count" "$(wc -l <"$W/out")" "$(wcount order "$FORDER")"
has "waitlist: dump --order shows the FILL" '"type":"FILL"' "$W/out"
HOT=$(python3 -c 'import json,sys
c = {}
o = {}
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["type"] == "PLACE": o[r["order"]] = r["lines"]
    if r["type"] == "FILL":
        s = o[r["order"]][r["line"]]["sku"]; c[s] = c.get(s, 0) + 1
print(max(c, key=c.get))' "$W/wl.jsonl")
expect "waitlist: dump --sku (FILLs of followed orders)" 0 "$J" dump "$WL" --sku "$HOT" --format jsonl
same "waitlist: dump --sku: count" "$(wc -l <"$W/out")" "$(wcount sku "$HOT")"
has "waitlist: dump --sku has FILLs" '"type":"FILL"' "$W/out"

expect "waitlist: stats --json" 0 "$J" stats "$WL" --json
python3 - "$W/out" "$WLAST" "$NFILL" "$(wcount sum FILL units)" \
    "$(wcount where PLACE state BACKORDERED)" <<'EOF2' && ok "waitlist: stats --json consistent" || bad "waitlist: stats --json consistent"
import json, sys
s = json.load(open(sys.argv[1]))
records, fills, units, waiting = map(int, sys.argv[2:6])
assert s["records"] == records and sum(s["by_type"].values()) == records
assert s["by_type"]["FILL"] == fills == s["fill"]["records"], s["fill"]
assert s["fill"]["units"] == units, s["fill"]
assert s["place"]["waiting"] == waiting == s["outcomes"]["BACKORDERED"], s["place"]
assert 0 < s["fill"]["completed"] == s["outcomes"]["FILLED"] <= fills
assert s["place"]["by_policy"]["BACKORDER"] > 0 and s["place"]["located"] > 0
assert s["fill"]["located"] > 0
EOF2
same "waitlist: stats: FILLs completing orders" \
    "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["fill"]["completed"])' <"$W/out")" \
    "$(python3 -c 'import json,sys; print(sum(json.loads(l)["type"] == "FILL" and json.loads(l)["state"] != "BACKORDERED" for l in sys.stdin))' <"$W/wl.jsonl")"
TOP=$(python3 -c 'import json,sys; print(" ".join(str(t["sku"]) for t in json.load(sys.stdin)["top_skus"]))' <"$W/out")
same "waitlist: stats top SKUs count FILL units" \
    "$(python3 -c 'import json,sys; print(" ".join("%d:%d" % (t["sku"], t["units"]) for t in json.load(sys.stdin)["top_skus"]))' <"$W/out")" \
    "$(wcount units $TOP)"
same "waitlist: stats sell-outs (stock over locations)" \
    "$(python3 -c 'import json,sys; print(" ".join("%d:%d:%d" % x for x in sorted((s["sku"], s["seq"], s["times"]) for s in json.load(sys.stdin)["sold_out"])))' <"$W/out")" \
    "$(wcount soldout)"
expect "waitlist: stats text" 0 "$J" stats "$WL"
has "waitlist: stats text FILL" "FILL           $NFILL:" "$W/out"
has "waitlist: stats text outcomes" ", BACKORDERED $(wcount where PLACE state BACKORDERED), completed by FILL" "$W/out"

# SKU and order state: replay against the model computed from the dump,
# locations and waiting lines included.
MSKUS="$HOT 1 2 3 4 5 6 7 8 9 10 $TOP"
expect "waitlist: replay --sku" 0 "$J" replay "$WL" --json --sku ${MSKUS// /,} "${RT[@]}"
same "waitlist: replay --sku: stock by location and waiting lines" \
    "$(python3 -c 'import json,sys
print(" ".join("%d:%d:%d|%d:%d|%s" % (s["sku"], s["on_hand"], s["allocated"], s["backorder_orders"], s["backorder_units"], ",".join("%d=%d/%d" % (l["location"], l["on_hand"], l["allocated"]) for l in sorted(s["locations"], key=lambda l: l["location"]))) for s in json.load(sys.stdin)["selected_skus"]))' <"$W/out")" \
    "$(MODEL_LOCATIONS=1 wcount model $MSKUS)"
WORDER=$(python3 -c 'import json,sys
placed, last = {}, None
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["type"] == "PLACE": placed[r["order"]] = r["policy"]
    if r["type"] == "FILL" and r["state"] == "BACKORDERED" and placed.get(r["order"]) == "BACKORDER": last = r["order"]
    if r["type"] in ("CANCEL", "EXPIRE", "FULFILL") and r["order"] == last: last = None
print(last)' "$W/wl.jsonl")
expect "waitlist: replay --order of a waiting order" 0 "$J" replay "$WL" --order "$WORDER" "${RT[@]}"
grep -qE "^order $WORDER: BACKORDERED .* lines " "$W/out" && ok "waitlist: replay --order: BACKORDERED" ||
    bad "waitlist: replay --order: BACKORDERED"
expect "waitlist: replay --order --json" 0 "$J" replay "$WL" --json --order "$WORDER" "${RT[@]}"
python3 - "$W/out" <<'EOF2' && ok "waitlist: replay --order --json: lines and locations" || bad "waitlist: replay --order --json: lines and locations"
import json, sys
o = json.load(open(sys.argv[1]))["selected_orders"][0]
assert o["found"] and o["state"] == "BACKORDERED" and o["policy"] == "BACKORDER", o
assert any(l["allocated"] < l["qty"] for l in o["lines"]), o
for l in o["lines"]:
    assert sum(a["units"] for a in l["locations"]) == l["allocated"], o
EOF2

# A FILL whose units are moved to a location the SKU lacks: well-formed, so
# verify passes; replay must refuse it.
RSEQ=$(wcount first 'r["type"] == "FILL" and r["locations"][0]["location"] != 0 and r["seq"] > 55000' seq)
read -r RF RO _ < <("$G" locate "$WL" "$RSEQ")
rm -rf "$WC"; cp -r "$WL" "$WC"
"$G" relocate "$WC/$RF" "$RO" 4242 || bad "jgen relocate"
expect "moved FILL: verify sees a well-formed journal" 0 "$J" verify "$WC"
expect "moved FILL: replay stops" 1 "$J" replay "$WC" --no-snapshot "${RT[@]}"
has "moved FILL: replay names the record" "replay stopped at seq $RSEQ: $RF offset $RO: seq $RSEQ:" "$W/out"
PSEQ=$(wcount first 'r["type"] == "PLACE" and any(a["location"] != 0 for l in r["lines"] for a in l["locations"]) and r["seq"] > 55000' seq)
read -r RF RO _ < <("$G" locate "$WL" "$PSEQ")
rm -rf "$WC"; cp -r "$WL" "$WC"
"$G" relocate "$WC/$RF" "$RO" 4242 || bad "jgen relocate"
expect "moved PLACE allocation: replay stops" 1 "$J" replay "$WC" --no-snapshot "${RT[@]}"
has "moved PLACE allocation: replay names the record" "replay stopped at seq $PSEQ:" "$W/out"
rm -rf "$WC"

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
