#!/usr/bin/env bash
# allot against Redis + Lua, side by side, at matched durability:
#   allot --durability sync   vs  Redis appendonly yes, appendfsync always
#   allot --durability async  vs  Redis appendonly yes, appendfsync everysec
# Each row runs the same flash scenario (allot-bench run) against a fresh
# allotd and a fresh redis-server, both on loopback with private ports and
# temporary directories: single-line and three-line orders, batched
# (--batch 64) and unbatched (--batch 1, deep --pipeline). Prints a table
# with the ratio of each row and writes, per row, the JSON reports, the
# latency CSVs and an SVG chart of both latency distributions.
#
# usage: bench/compare.sh [--seconds S] [--warmup S] [--connections N]
#                         [--out DIR] [--quick]
#   --seconds S      measured seconds per run (default 5)
#   --quick          1 s per run, sync rows only: a smoke test
#   ALLOT_BIN=dir    binaries (default build/bin, built by tools/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=5
warmup=1
connections=16
modes="sync async"
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quick) seconds=1; warmup=0.5; modes="sync"; shift ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

bin=${ALLOT_BIN:-build/bin}
if [ ! -x "$bin/allotd" ] || [ ! -x "$bin/allot-bench" ]; then
    tools/setup.sh # installs what is missing (redis-server included) and builds
elif ! command -v redis-server >/dev/null; then
    tools/setup.sh --deps-only
fi
out=${out:-$bin/../compare}
mkdir -p "$out"
tmp=$(mktemp -d -t allot-compare.XXXXXX)

server_pid=
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
cleanup() {
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# ---- servers ----------------------------------------------------------------

start_allotd() { # MODE -> sets port
    local mode=$1 d="$tmp/allot-$RANDOM"
    local flags=(--durability "$mode")
    mkdir -p "$d"
    "$bin/allotd" --listen 127.0.0.1:0 --port-file "$d/port" --data-dir "$d/data" \
        --orders-max 4000000 "${flags[@]}" --log-level warn 2>"$d/log" &
    server_pid=$!
    for _ in $(seq 150); do
        [ -s "$d/port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ ! -s "$d/port" ]; then
        echo "compare.sh: allotd did not start:" >&2
        cat "$d/log" >&2
        exit 1
    fi
    port=$(cat "$d/port")
}

start_redis() { # APPENDFSYNC -> sets port (Redis cannot pick a free port itself)
    local fsync=$1 d="$tmp/redis-$RANDOM"
    mkdir -p "$d"
    for _ in 1 2 3 4 5 6 7 8; do
        port=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
        redis-server --port "$port" --bind 127.0.0.1 --dir "$d" --save '' \
            --appendonly yes --appendfsync "$fsync" --logfile "$d/log" &
        server_pid=$!
        for _ in $(seq 50); do
            redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        stop_server
    done
    echo "compare.sh: redis-server did not start:" >&2
    cat "$d/log" >&2
    exit 1
}

# ---- runs -------------------------------------------------------------------

num() { # num FIELD FILE: a number of a JSON report
    sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$2" | head -1
}

run_bench() { # NAME TARGET-ARGS... (scenario args come from $row_args)
    local name=$1
    shift
    "$bin/allot-bench" run "$@" "${row_args[@]}" --json --quiet \
        --hist-out "$out/$name.csv" >"$out/$name.json" 2>"$out/$name.err" || true
    if ! grep -q '"verdict"' "$out/$name.json"; then
        echo "compare.sh: $name did not report; see $out/$name.err" >&2
        cat "$out/$name.err" >&2
    fi
}

# One SVG: latency against percentile ("nines" on the x axis, log scale on
# the y axis), one curve per CSV of hist_write_csv.
svg_chart() { # OUT TITLE LABEL1 CSV1 LABEL2 CSV2
    awk -v title="$2" -v l1="$3" -v l2="$5" -F, '
    FNR == 1 { f++; next }
    {
        q = $3 + 0; if (q > 0.999999) q = 0.999999
        x = -log(1 - q) / log(10); y = log($1 / 1000) / log(10)
        n[f]++; px[f, n[f]] = x; py[f, n[f]] = y
        if (!seen || y < ymin) ymin = y
        if (!seen || y > ymax) ymax = y
        seen = 1
    }
    END {
        W = 760; H = 440; L = 70; R = 150; T = 40; B = 50
        ylo = int(ymin); if (ylo > ymin) ylo--; yhi = int(ymax); if (yhi < ymax) yhi++
        if (yhi == ylo) yhi++
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H
        printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
        printf "<text x=\"%d\" y=\"22\" font-size=\"14\">%s</text>\n", L, title
        pw = W - L - R; ph = H - T - B
        split("0%,90%,99%,99.9%,99.99%,99.999%,99.9999%", xl, ",")
        for (i = 0; i <= 6; i++) {
            gx = L + pw * i / 6
            printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", gx, T, gx, T + ph
            printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", gx, T + ph + 18, xl[i + 1]
        }
        for (d = ylo; d <= yhi; d++) {
            gy = T + ph - ph * (d - ylo) / (yhi - ylo)
            v = 10 ^ d; lab = v >= 1000 ? (v / 1000) " ms" : v " us"
            printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", L, gy, L + pw, gy
            printf "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 6, gy + 4, lab
        }
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">percentile</text>\n", L + pw / 2, H - 8
        split("#1f77b4,#d62728", col, ","); lab2[1] = l1; lab2[2] = l2
        for (k = 1; k <= 2; k++) {
            printf "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col[k]
            for (i = 1; i <= n[k]; i++)
                printf "%.1f,%.1f ", L + pw * px[k, i] / 6, T + ph - ph * (py[k, i] - ylo) / (yhi - ylo)
            printf "\"/>\n"
            printf "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/>\n", L + pw + 14, T + 10 + 22 * k, col[k]
            printf "<text x=\"%d\" y=\"%d\">%s</text>\n", L + pw + 34, T + 16 + 22 * k, lab2[k]
        }
        printf "</svg>\n"
    }' "$4" "$6" >"$1"
}

us() { # ns -> "123 us" / "1.2 ms"
    awk -v v="${1:-0}" 'BEGIN { if (v >= 1e6) printf "%.1f ms", v / 1e6; else printf "%.0f us", v / 1e3 }'
}

ratio() { # A B -> "12.3x"
    awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.1fx", a / b; else print "-" }'
}

rows=()
row() { # MODE LINES KIND
    local mode=$1 lines=$2 kind=$3 fsync=always
    [ "$mode" = async ] && fsync=everysec
    local name="$mode-${lines}line-$kind"
    if [ "$kind" = batched ]; then
        row_args=(--scenario flash --lines "$lines" --duration "$seconds" --warmup "$warmup"
                  --connections "$connections" --batch 64 --pipeline 4)
    else
        row_args=(--scenario flash --lines "$lines" --duration "$seconds" --warmup "$warmup"
                  --connections "$connections" --batch 1 --pipeline 64)
    fi
    echo "== $name: allot" >&2
    start_allotd "$mode"
    run_bench "$name-allot" --port "$port"
    stop_server
    echo "== $name: redis (appendfsync $fsync)" >&2
    start_redis "$fsync"
    run_bench "$name-redis" --target "redis://127.0.0.1:$port"
    stop_server

    local a="$out/$name-allot.json" r="$out/$name-redis.json"
    local ao ro ak rk av rv
    ao=$(num orders_per_sec "$a"); ro=$(num orders_per_sec "$r")
    ak=$(num ok_orders_per_sec "$a"); rk=$(num ok_orders_per_sec "$r")
    av=$(grep -q '"verdict":"pass"' "$a" && echo pass || echo FAIL)
    rv=$(grep -q '"verdict":"pass"' "$r" && echo pass || echo FAIL)
    local dur="$mode vs $fsync"
    local frames="batch 64, pipeline 4"
    [ "$kind" = batched ] || frames="batch 1, pipeline 64"
    rows+=("| $dur | $lines | $frames | ${ao:-?} | ${ro:-?} | **$(ratio "$ao" "$ro")** | ${ak:-?} | ${rk:-?} | **$(ratio "$ak" "$rk")** | $(us "$(num p50 "$a")") / $(us "$(num p99 "$a")") | $(us "$(num p50 "$r")") / $(us "$(num p99 "$r")") | $av / $rv |")
    if [ -s "$out/$name-allot.csv" ] && [ -s "$out/$name-redis.csv" ]; then
        svg_chart "$out/$name.svg" "latency per operation, $name ($connections connections, $frames)" \
            "allot" "$out/$name-allot.csv" "Redis + Lua" "$out/$name-redis.csv"
    fi
}

echo "compare.sh: $seconds s per run after $warmup s of warm-up, $connections connections;" \
     "results in $out" >&2
for mode in $modes; do
    for lines in 1 3; do
        for kind in batched unbatched; do
            row "$mode" "$lines" "$kind"
        done
    done
done

{
    echo "allot vs Redis 7 + Lua, flash scenario, $seconds s per run, $connections connections" \
         "($(date -u +%Y-%m-%d), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "| durability | lines | frames | allot orders/s | Redis orders/s | ratio | allot OK/s | Redis OK/s | OK ratio | allot p50 / p99 | Redis p50 / p99 | checks |"
    echo "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"
    printf '%s\n' "${rows[@]}"
    echo
    echo "orders/s: PLACE operations answered per second, whatever the result; OK/s: those"
    echo "answered OK. The faster side sells the hot SKUs out sooner, and refusals are"
    echo "cheaper than allocations: the OK ratio is the conservative one."
    echo "Charts: $out/*.svg; reports: $out/*.json."
} | tee "$out/compare.md"
