#!/usr/bin/env bash
# http-floor.sh: what a request costs in the HTTP layer alone. GET /health (no database) on one
# loop of the release API, beside two baselines that send the same reply (bench/http_floor.c):
# bare evhttp (the API's HTTP layer before app/wire.c) and a bare epoll responder (a read and a
# write per request: the floor of a keep-alive HTTP/1.1 exchange). Each runs alone on one thread, in
# alternating order from run to run; CPU per request is the process's user + system time over the
# measured run divided by its requests.
#
#   bench/http-floor.sh [RUNS=3] [DURATION=8] [CONNECTIONS=32]
#   env: BUILD (build/release)
#
# Loopback only: a private PostgreSQL (the API checks its schema at start) and the servers on free
# ports; every step under `timeout`; everything it started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DURATION=${2:-8}
CONNS=${3:-32}
BUILD=${BUILD:-build/release}
SECRET=bench-secret-0123456789abcdef0123456789abcdef

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_need http-floor.sh wrk python3 psql
bench_build "$BUILD" api migrate http_floor

bench_tmp floor pid
pid=""

bench_cluster "$BUILD"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# side -> "req/s us_per_request"; each side in a session of its own (bench/api_start.py), as the
# API in the other benchmarks
measure() {
  local side=$1 port bin t0 t1 out reqs rps
  port=$(free_port)
  case $side in
    api) bin=$(realpath "$BUILD/bin/api") ;;
    *) bin="$tmp/$side.sh"
       printf '#!/bin/sh\nexec %s %s %s\n' "$(realpath "$BUILD/bin/http_floor")" "$side" "$port" > "$bin"
       chmod +x "$bin" ;;
  esac
  read -r _ pid < <(cd "$tmp" && env DATABASE_URL="$url" JWT_SECRET="$SECRET" PORT="$port" LOOPS=1 \
      APP_ENV=production LOG_FORMAT=json ACCESS_LOG=false timeout 10 python3 "$OLDPWD/bench/api_start.py" \
      "$port" "$tmp/$side.log" "$bin")
  timeout 20 wrk -t2 -c"$CONNS" -d1s "http://127.0.0.1:$port/health" >/dev/null
  t0=$(ticks "$pid")
  out=$(timeout $((DURATION + 30)) wrk -t2 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$port/health")
  t1=$(ticks "$pid")
  kill -TERM "$pid"; wait_pid "$pid"; pid=""
  rps=$(echo "$out" | awk '/^Requests\/sec/ {printf "%.0f", $2}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  if echo "$out" | grep -q "Non-2xx"; then echo "http-floor.sh: $side answered other than 2xx" >&2; exit 1; fi
  awk -v r="$rps" -v n="$reqs" -v dt=$((t1 - t0)) -v hz="$HZ" 'BEGIN { printf "%s %.1f\n", r, dt / hz / n * 1e6 }'
}

SIDES="raw evhttp api"
echo "GET /health, one thread each, wrk -t2 -c$CONNS, ${DURATION}s, $RUNS runs"
printf "%-4s %-7s %9s %14s\n" run side "req/s" "CPU us/req"
: > "$tmp/all"
for run in $(seq 1 "$RUNS"); do
  order=$SIDES
  [ $((run % 2)) -eq 0 ] && order=$(echo "$SIDES" | tr ' ' '\n' | tac | tr '\n' ' ')
  for side in $order; do
    measure "$side" > "$tmp/m"
    read -r rps us < "$tmp/m"
    printf "%-4s %-7s %9s %14s\n" "$run" "$side" "$rps" "$us"
    echo "$side $rps $us" >> "$tmp/all"
  done
done
median() { # side column -> the median of that column over the runs
  awk -v s="$1" -v c="$2" '$1 == s {print $c}' "$tmp/all" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
echo "medians:"
for side in $SIDES; do
  printf "  %-7s %9s req/s %6s us/req\n" "$side" "$(median "$side" 2)" "$(median "$side" 3)"
done
awk -v raw="$(median raw 3)" -v ev="$(median evhttp 3)" -v api="$(median api 3)" 'BEGIN {
    printf "evhttp costs %.1f us per request over the floor, the API %.1f us over evhttp (%.1fx the floor in all)\n",
           ev - raw, api - ev, api / raw }'
