#!/usr/bin/env bash
# Runs every test of allot in three builds (see tests/CMakeLists.txt for the
# labels):
#   build/       Release           everything but fuzz
#   build-asan/  clang ASan+UBSan  criterion suites (unit, model) and the
#                                  libFuzzer targets for a bounded time
#   build-tsan/  clang TSan        the concurrency stress programs
# Exits non-zero on the first build or test that fails.
#
# usage: tools/test.sh [--quick]   (--quick: Release build only)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh

jobs=$(nproc)
summary=()
passed=0
failed=0

run_ctest() {
    local dir=$1; shift
    local log="$dir/ctest.log"
    echo "== ctest in $dir ($*)"
    set +e
    ctest --test-dir "$dir" --output-on-failure --timeout 900 "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    set -e
    local line
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1 || true)
    if [ -n "$line" ]; then
        local total fails
        total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
        fails=$(sed -E 's/.*tests passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
        passed=$((passed + total - fails))
        failed=$((failed + fails))
    fi
    summary+=("$dir: ${line:-no tests ran} (exit $rc)")
    return "$rc"
}

build() {
    local dir=$1; shift
    echo "== building $dir"
    cmake -S . -B "$dir" "$@" >/dev/null
    if ! cmake --build "$dir" -j"$jobs" >"$dir/build.log" 2>&1; then
        grep -E 'error|Error' "$dir/build.log" | head -40 >&2 || true
        echo "test.sh: build of $dir failed (log: $dir/build.log)" >&2
        exit 1
    fi
}

status=0
run_ctest build -LE fuzz || status=1

if [ "${1:-}" != "--quick" ]; then
    build build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
        -DALLOT_ASAN=ON -DALLOT_FUZZ=ON
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
        run_ctest build-asan -L 'unit|model|fuzz' || status=1

    build build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DALLOT_TSAN=ON
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        run_ctest build-tsan -L stress || status=1
fi

echo
echo "== summary"
for s in "${summary[@]}"; do echo "   $s"; done
echo "tests: $passed passed, $failed failed"
exit "$status"
