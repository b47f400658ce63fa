#!/usr/bin/env bash
# api.sh: the API's throughput against the database's own limit, on one machine, in one go.
#
#   bench/api.sh [RUNS=3] [DURATION=8] [CONNECTIONS=32]      (env: BUILD, WORKERS, DB_POOL_MAX, LOOPS, DB_PIPELINE)
#   env BASE_API=path/to/api: also measures that binary (DB_PIPELINE=true) in each run, as the row
#   "base": a before/after comparison in one run (the variants in reverse order every other run);
#   VARIANTS="true" leaves DB_PIPELINE=false out
#
# Starts a private PostgreSQL (scripts/pg-cluster, temp dir), migrates it, seeds 10,000 tasks owned
# by 100 users, then per run:
#   1. pgbench -M extended with the handler's exact SELECT at the same concurrency (the limit for
#      one query per round trip), and -M prepared (the same, parsed and planned once per
#      connection, as the API prepares it: DB_PREPARE);
#   2. starts bin/api as in production (access log, metrics, request ids), timing spawn to the
#      first 200 on /health; twice: with DB_PIPELINE=true (the default: concurrent reads share
#      pipelined batches) and DB_PIPELINE=false (one query per round trip, like pgbench);
#   3. wrk against GET /api/{user_id}/tasks/{id} with valid tokens for random users and ids;
#   4. server CPU per request (utime+stime from /proc/<pid>/stat), peak RSS (VmHWM).
# Prints each run and the median of the runs. Everything it started is stopped on exit; the whole
# thing is bounded by `timeout`s.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DURATION=${2:-8}
CONNS=${3:-32}
BUILD=${BUILD:-build/release}
USERS=100
ROWS=10000
SECRET=bench-secret-0123456789abcdef0123456789abcdef

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_need api.sh pgbench wrk python3 psql
bench_build "$BUILD" api migrate
API=$(realpath "$BUILD/bin/api")

bench_tmp api api_pid
api_pid=""

bench_cluster "$BUILD"
psql "$url" -qX -v ON_ERROR_STOP=1 <<SQL
insert into tasks (user_id, title, description, completed)
select (i % $USERS)::text, 'task ' || i, case when i % 3 = 0 then null else 'details of task ' || i end, i % 2 = 0
from generate_series(1, $ROWS) i;
vacuum analyze tasks;
SQL

# the handler's statement (app/tasks.c, tasks_get), parameters as the server sends them
cat > "$tmp/select.sql" <<'SQL'
\set id random(1, 10000)
\set uid :id % 100
select id, user_id, title, description, completed, created_at at time zone 'UTC', updated_at at time zone 'UTC' from tasks where id = :id and user_id = :uid;
SQL
python3 bench/api_tokens.py "$SECRET" $USERS $ROWS > "$tmp/get.lua"
# user 1's token (task 1 belongs to user 1), for the slow-request check
tok1=$(awk -F'"' '/^tokens\[1\] =/ {print $2}' "$tmp/get.lua")

# During the measured run: task 1 stays locked by a direct connection and two PUTs wait on it
# (holding two workers and two pool connections); /health is timed meanwhile. The property: a
# request stuck on the database never stalls the event loop.
slow_check() {
  psql "$url" -qX -c "begin" -c "select id from tasks where id = 1 for update" \
       -c "select pg_sleep($DURATION - 1)" -c "commit" >/dev/null 2>&1 &
  local holder=$!
  sleep 0.3
  for _ in 1 2; do
    curl -s -o /dev/null -w '%{http_code}\n' -X PUT -H "Authorization: $tok1" \
         -d '{"title":"task 1"}' "http://127.0.0.1:$port/api/1/tasks/1" >> "$tmp/puts" &
  done
  sleep 1
  for _ in $(seq 1 10); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/health"
    sleep 0.1
  done | sort -g | tail -1 > "$tmp/health_max"
  wait "$holder"
}

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One measured run of the API with the given DB_PIPELINE; prints one line of figures:
# rps share cpu_us p50 p99 rss_mb start_ms health_ms puts share_of_prepared
measure_api() {
  local pipeline=$1 port bin=$API
  if [ "$pipeline" = base ]; then pipeline=true bin=$BASE_API; fi
  port=$(free_port)
  read -r start_ms api_pid < <(cd "$tmp" && env DATABASE_URL="$url" JWT_SECRET="$SECRET" PORT="$port" \
      APP_ENV=production LOG_FORMAT=json ACCESS_LOG=true WORKERS="${WORKERS:-64}" LOOPS="${LOOPS:-auto}" \
      DB_PIPELINE="$pipeline" DB_POOL_MAX="${DB_POOL_MAX:-4}" \
      python3 "$OLDPWD/bench/api_start.py" "$port" "$tmp/api.log" "$bin")
  # warm the pool, then measure
  timeout 20 wrk -t2 -c"$CONNS" -d1s -s "$tmp/get.lua" "http://127.0.0.1:$port" >/dev/null
  c0=$(cpu_ticks "$api_pid")
  : > "$tmp/puts"
  slow_check &
  slow_pid=$!
  out=$(timeout $((DURATION + 30)) wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$tmp/get.lua" "http://127.0.0.1:$port")
  c1=$(cpu_ticks "$api_pid")
  wait "$slow_pid"
  sleep 0.5
  health_ms=$(awk '{printf "%.1f", $1 * 1000}' "$tmp/health_max")
  puts=$(sort "$tmp/puts" | uniq -c | awk '{printf "%sx%s,", $1, $2}')
  if ! hwm=$(awk '/VmHWM/ {print $2}' "/proc/$api_pid/status" 2>/dev/null); then
    echo "api.sh: the server died (DB_PIPELINE=$pipeline); its log:" >&2
    grep -v '"msg":"request"' "$tmp/api.log" | tail -20 >&2
    exit 1
  fi
  kill -TERM "$api_pid"; wait_pid "$api_pid"; api_pid=""
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')
  [ -n "$errs" ] && echo "DB_PIPELINE=$pipeline: $errs" >&2
  awk -v pg="$pg" -v pgp="$pgp" -v rps="$rps" -v reqs="$reqs" -v dt=$((c1 - c0)) -v tck="$ticks" \
      -v p50="$p50" -v p99="$p99" -v hwm="$hwm" -v st="$start_ms" -v h="$health_ms" -v puts="${puts%,}" \
      'BEGIN { printf "%.0f %.1f %.1f %s %s %.1f %.1f %s %s %.1f", rps, 100 * rps / pg,
               dt / tck / reqs * 1e6, p50, p99, hwm / 1024, st, h, puts, 100 * rps / pgp }'
}

report() { # label line
  set -- "$1" $2
  printf '  %-22s %6s req/s (%5s%% of pgbench) | cpu %5s us/req | p50 %s p99 %s | RSS %s MB | start->200 %s ms | slowest /health %s ms while 2 PUTs waited (then %s) | %s%% of -M prepared\n' "$@"
}

read -r -a variants <<< "${VARIANTS:-true false}"
declare -A results=([true]="" [false]="" [base]="")
if [ -n "${BASE_API:-}" ]; then
  BASE_API=$(realpath "$BASE_API")
  variants+=(base)
fi
pgs="" pgps=""
for run in $(seq 1 "$RUNS"); do
  pg=$(timeout $((DURATION + 30)) pgbench -n -M extended -c "$CONNS" -j 2 -T "$DURATION" -f "$tmp/select.sql" "$url" 2>&1 |
       awk '/^tps = / {print $3}')
  pgp=$(timeout $((DURATION + 30)) pgbench -n -M prepared -c "$CONNS" -j 2 -T "$DURATION" -f "$tmp/select.sql" "$url" 2>&1 |
       awk '/^tps = / {print $3}')
  echo "run $run: pgbench $(printf '%.0f' "$pg") tps (-M prepared $(printf '%.0f' "$pgp") tps)"
  order=("${variants[@]}") # every other run in reverse: no variant is always measured first
  if ((run % 2 == 0)); then for ((i = ${#variants[@]} - 1, k = 0; i >= 0; i--, k++)); do order[k]=${variants[i]}; done; fi
  for v in "${order[@]}"; do
    measure_api "$v" > "$tmp/line" # not in a subshell: api_pid stays visible to the cleanup trap
    line=$(cat "$tmp/line")
    results[$v]+="$line"$'\n'
    report "api DB_PIPELINE=$v" "$line"
  done
  pgs+="$pg"$'\n'
  pgps+="$pgp"$'\n'
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "median of $RUNS runs (connections $CONNS, ${DURATION}s each, WORKERS=${WORKERS:-64} LOOPS=${LOOPS:-auto} DB_POOL_MAX=${DB_POOL_MAX:-4}):"
echo "  pgbench -M extended    $(printf '%s' "$pgs" | median | xargs printf '%.0f') tps"
echo "  pgbench -M prepared    $(printf '%s' "$pgps" | median | xargs printf '%.0f') tps"
for v in "${variants[@]}"; do
  m=()
  for col in 1 2 10 3 6 7 8; do m+=("$(printf '%s' "${results[$v]}" | awk -v c=$col 'NF {print $c}' | median)"); done
  lat=$(printf '%s' "${results[$v]}" | awk 'NF {printf "%s/%s ", $4, $5}')
  printf '  api DB_PIPELINE=%-6s %6s req/s (%5s%% of pgbench, %5s%% of -M prepared) | cpu %5s us/req | RSS %s MB | start->200 %s ms | slowest /health %s ms | p50/p99 per run: %s\n' \
    "$v" "${m[@]}" "$lat"
done
