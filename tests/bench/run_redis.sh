#!/bin/sh
# allot-bench run against a real redis-server (the Lua-script design it is
# compared with): started on a private port with a temporary directory, a
# short flash run must pass the same correctness check. Skipped (exit 77)
# when redis-server is not installed; tools/setup.sh installs it.
#
# usage: run_redis.sh ALLOT_BENCH
set -eu
bench=$1
if ! command -v redis-server >/dev/null 2>&1; then
    echo "SKIP: redis-server is not installed (tools/setup.sh installs it)"
    exit 77
fi
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

# Redis cannot pick its own port: try a few random private ones.
port=
for _ in 1 2 3 4 5 6 7 8; do
    p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
    redis-server --port "$p" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
        --logfile "$dir/redis.log" &
    pid=$!
    i=0
    while [ "$i" -lt 50 ] && kill -0 "$pid" 2>/dev/null; do
        if redis-cli -p "$p" ping 2>/dev/null | grep -q PONG; then
            port=$p
            break
        fi
        i=$((i + 1))
        sleep 0.1
    done
    [ -n "$port" ] && break
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
done
[ -n "$port" ] || { echo "FAIL: redis-server did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }

out=$("$bench" run --target "redis://127.0.0.1:$port" --scenario flash --duration 2 \
    --warmup 0.5 --hold-ms 1000 --templates 50000 --json)
echo "$out"
printf '%s\n' "$out" | grep -q '"verdict":"pass"' || { echo "FAIL: verdict" >&2; exit 1; }
ops=$(printf '%s\n' "$out" | sed -n 's/.*"orders_per_sec":\([0-9]*\).*/\1/p')
if [ -z "$ops" ] || [ "$ops" -le 0 ]; then echo "FAIL: orders_per_sec '$ops'" >&2; exit 1; fi

out=$("$bench" run --target "redis://127.0.0.1:$port" --scenario flash --lines 3 --batch 1 \
    --pipeline 32 --duration 1 --warmup 0.2 --hold-ms 500 --templates 20000 --json --quiet)
echo "$out"
printf '%s\n' "$out" | grep -q '"verdict":"pass"' || { echo "FAIL: second run" >&2; exit 1; }
echo "PASS"
