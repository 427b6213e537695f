#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: set up and build, then run
# the engine benchmark (a flash-sale shaped load, in process).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
echo "== allot engine: 1,000,000 SKUs, zipf 0.99 demand, single-line orders"
build/bin/allot-bench engine --skus 1000000 --distribution zipf:0.99 --lines 1
echo "== the same, uniform demand"
build/bin/allot-bench engine --skus 1000000 --distribution uniform --lines 1
