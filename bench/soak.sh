#!/usr/bin/env bash
# soak.sh: the mixed load of bench/chaos.sh (careful writers and readers), without faults, for a long
# time; every SOAK_INTERVAL seconds (default 60) the api's RSS, open fds, server connections and the
# p99 latency of that interval. Exit 0 when flat after warm-up: RSS growth from the first interval to
# the last <= 1 MB, no fd growth.
#
#   bench/soak.sh [SECONDS=600]        (env: BUILD, WRITERS, READERS, DB_POOL_MAX, SOAK_INTERVAL)
set -euo pipefail
cd "$(dirname "$0")/.."
CHAOS_MODE=soak exec bench/chaos.sh "${1:-600}" direct
