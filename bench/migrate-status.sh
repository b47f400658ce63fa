#!/usr/bin/env bash
# migrate-status.sh: how long `migrate status` takes on an up-to-date database, process start to
# exit, against a local cluster. For scale it also times `migrate wait` (process start, one
# connection, SELECT 1, exit) and psql -c 'select 1' (the same, with psql).
#
#   bench/migrate-status.sh [RUNS=50]        (env: BUILD, default build/release)
#
# Starts a private PostgreSQL (scripts/pg-cluster, temp dir) and stops it on exit. Prints min,
# median, p90 and max in milliseconds for each command.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-50}
BUILD=${BUILD:-build/release}
if [ ! -x "$BUILD/bin/migrate" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" --target migrate >/dev/null
fi
MIGRATE=$(realpath "$BUILD/bin/migrate")

tmp=$(mktemp -d /tmp/bench-migrate.XXXXXX)
chmod 755 "$tmp"
cleanup() {
  scripts/pg-cluster stop "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

url=$(scripts/pg-cluster start "$tmp/pg")
psql "$url" -qXc "CREATE DATABASE bench" >/dev/null
export DATABASE_URL=${url%/postgres}/bench
unset DATABASE_URL_UNPOOLED
"$MIGRATE" -q up
"$MIGRATE" -q status --exit-code || { echo "migrate-status.sh: database not up to date" >&2; exit 1; }
count=$(ls migrations/[0-9]*_*.sql | wc -l)

# times one command RUNS times (after 3 warm-up runs); prints "min median p90 max" in ms
timeit() {
  local i t0 t1
  for i in 1 2 3; do "$@" >/dev/null 2>&1; done
  for ((i = 0; i < RUNS; i++)); do
    t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1
    t1=$EPOCHREALTIME
    echo "$t0 $t1"
  done | awk '{ print ($2 - $1) * 1000 }' | sort -n | awk '
    { v[NR] = $1 }
    END { printf "%.2f %.2f %.2f %.2f\n", v[1], v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)], v[NR] }'
}

printf 'migrate status on an up-to-date database (%s migrations), %s runs, PostgreSQL %s on 127.0.0.1\n' \
  "$count" "$RUNS" "$(psql "$url" -AtXc 'show server_version')"
printf '%-32s %8s %8s %8s %8s\n' command min median p90 max
for name in "migrate status" "migrate status --exit-code -q" "migrate wait -q" "psql -c 'select 1'"; do
  case "$name" in
  "migrate status") r=$(timeit "$MIGRATE" status) ;;
  "migrate status --exit-code -q") r=$(timeit "$MIGRATE" -q status --exit-code) ;;
  "migrate wait -q") r=$(timeit "$MIGRATE" -q wait --timeout 5) ;;
  *) r=$(timeit psql "$DATABASE_URL" -qAtXc 'select 1') ;;
  esac
  read -r mn md p9 mx <<<"$r"
  printf '%-32s %8s %8s %8s %8s  ms\n' "$name" "$mn" "$md" "$p9" "$mx"
done
