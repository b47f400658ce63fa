#!/usr/bin/env bash
# pool.sh: the pool benchmark (bench/pool.c) against a private cluster it starts and stops.
#
#   bench/pool.sh [ITERATIONS]
#
# Builds a Release binary in build/bench, starts a throwaway PostgreSQL with scripts/pg-cluster on
# a free port, runs bench_pool against it (direct TCP on 127.0.0.1), and stops and removes the
# cluster at the end, whatever happens.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD:-$root/build/bench}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" --target bench_pool -j "$(nproc)" -- --no-print-directory >/dev/null

tmp=$(mktemp -d /tmp/neon-todo-bench.XXXXXX)
chmod 755 "$tmp"
cleanup() { "$root/scripts/pg-cluster" stop "$tmp/pg" || true; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
url=$("$root/scripts/pg-cluster" start "$tmp/pg")
echo "PostgreSQL $(psql "$url" -Atc 'show server_version' | cut -d' ' -f1) on 127.0.0.1, $(nproc) cores"
"$build/bin/bench_pool" "$url" ${1:+"$1"}
