#!/usr/bin/env bash
# Installs what allot needs to build (Debian 12 packages) when it is missing,
# then configures and builds the Release build into build/.
# Idempotent, and quiet when everything is already there.
#
# usage: tools/setup.sh [--deps-only]
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(liburing-dev libxxhash-dev libjemalloc-dev libcriterion-dev cmake pkg-config
          gcc clang libclang-rt-14-dev redis-server python3)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ "${1:-}" = "--deps-only" ] && exit 0

if [ ! -f build/CMakeCache.txt ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
log=build/build.log
if ! cmake --build build -j"$(nproc)" >"$log" 2>&1; then
    grep -E 'error|Error' "$log" | head -40 >&2 || true
    echo "setup: the build failed; full log in $log" >&2
    exit 1
fi
