#!/usr/bin/env bash
# endpoints.sh: every endpoint of the Todo API, and a frontend's mix of them, against pgbench
# running the handlers' exact SQL at the same concurrency, in the same run; then the same through a
# delay proxy (a distant database).
#
#   bench/endpoints.sh [RUNS=3] [DURATION=5] [CONNECTIONS=32]
#   env: BUILD (build/release), KINDS ("get list create put toggle delete mix"), DELAYS ("1 10":
#        milliseconds added to every database round trip by tests/tools/faultproxy, "" to skip),
#        DELAY_KINDS ("get list mix"), PERF (a directory: perf record of the server per kind), FSYNC (off | on: fsync=on and synchronous_commit=on, commits wait
#        for the disk), DB_POOL_MAX (10, the engine's default), DB_PIPELINE, DB_PIPELINE_WRITES, DB_PREPARE,
#        TAIL_MS (50: an API p99 over it in any run is named), PLAN_CACHE_MODE (the server's
#        plan_cache_mode, for both sides: force_generic_plan, docs/benchmarks.md), WORKERS, LOOPS (auto, the server's default: a loop per CPU, at most DB_PIPELINE_CONNS),
#        PGB_PREPARED (1: pgbench -M prepared too, the baseline of statements prepared as the API
#        prepares them; 0 skips it), BASE_API (another api binary, running beside the API in the
#        local runs and measured next to it for each kind, before it in every other run: a
#        before/after in one run, with each run's ratio and their median)
#
# Starts a private PostgreSQL (scripts/pg-cluster, temp dir), migrates it, seeds 10,000 tasks owned
# by 100 users (read, updated, toggled, listed) and 200,000 more of 100 other users to be deleted (restored after each
# measurement that deleted some). Per run, per kind: pgbench -M extended with the handler's
# statement(s) (the issue's baseline: each statement parsed and planned each time), pgbench
# -M prepared (each parsed once per connection, as the API's with DB_PREPARE), and wrk against the API started as in production (access log, metrics, request
# ids), one after the other, alternating which goes first from run to run. The mix is the frontend
# pattern of the brief: 50% get, 25% list, 10% create, 10% toggle, 5% delete; pgbench runs the
# same statements with the same weights (-f file@weight). Prints per run and the medians: req/s,
# the API's share of pgbench, p50/p99 of both, the server CPU per request, and the database
# connections each held. Everything it started is stopped on exit; every step is under `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
DURATION=${2:-5}
CONNS=${3:-32}
BUILD=${BUILD:-build/release}
KINDS=${KINDS:-get list create put toggle delete mix}
DELAYS=${DELAYS-1 10}
DELAY_KINDS=${DELAY_KINDS:-get list mix}
FSYNC=${FSYNC:-off}
POOL=${DB_POOL_MAX:-10}
USERS=100
ROWS=10000
DEL_LO=100001
DEL_HI=300000
SECRET=bench-secret-0123456789abcdef0123456789abcdef
METRICS_TOKEN=bench-metrics-token-0123456789
MIX="get=50 list=25 create=10 toggle=10 delete=5"

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_need endpoints.sh pgbench wrk python3 psql curl
bench_build "$BUILD" api migrate
API=$(realpath "$BUILD/bin/api")
PROXY=""
if [ -n "$DELAYS" ]; then
  if [ -x "$BUILD/bin/faultproxy" ] || { cmake --build "$BUILD" --target faultproxy >/dev/null 2>&1 &&
                                         [ -x "$BUILD/bin/faultproxy" ]; }; then
    PROXY=$(realpath "$BUILD/bin/faultproxy")
  else
    echo "endpoints.sh: no faultproxy in $BUILD (tests/tools): skipping the distant database" >&2
  fi
fi

bench_tmp endpoints api_pid base_pid proxy_pid
api_pid="" proxy_pid="" base_pid=""

url=$(scripts/pg-cluster start "$tmp/pg" | tail -1)
pgport=$(cat "$tmp/pg/port")
if [ "$FSYNC" = on ]; then
  psql "$url" -qX -c "alter system set fsync = on" -c "alter system set synchronous_commit = on" \
       -c "alter system set full_page_writes = on" -c "select pg_reload_conf()" >/dev/null
fi
if [ -n "${PLAN_CACHE_MODE:-}" ]; then # the server's, for the API and pgbench alike
  psql "$url" -qX -c "alter system set plan_cache_mode = '$PLAN_CACHE_MODE'" -c "select pg_reload_conf()" >/dev/null
fi
"$BUILD/bin/migrate" -q up --url "$url" --dir migrations
psql "$url" -qX -v ON_ERROR_STOP=1 <<SQL
insert into tasks (user_id, title, description, completed)
select (i % $USERS)::text, 'task ' || i, case when i % 3 = 0 then null else 'details of task ' || i end, i % 2 = 0
from generate_series(1, $ROWS) i;
insert into tasks (id, user_id, title, description, completed) overriding system value
select i, ($USERS + i % $USERS)::text, 'task ' || i, 'to be deleted', false from generate_series($DEL_LO, $DEL_HI) i;
vacuum analyze tasks;
vacuum tasks;
SQL
# the deleted tasks come back after each measurement that deleted some (and the created ones go,
# so every measurement starts from the same table). Vacuumed twice: the first VACUUM after the
# insert leaves its new pages not all-visible (relallvisible 2,165 of 4,227 pages), and the list's
# count then reads the heap where a table autovacuum keeps is read from the index alone.
restore() {
  psql "$url" -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
delete from tasks where id > $ROWS and id < $DEL_LO or id > $DEL_HI;
insert into tasks (id, user_id, title, description, completed) overriding system value
select i, ($USERS + i % $USERS)::text, 'task ' || i, 'to be deleted', false from generate_series($DEL_LO, $DEL_HI) i
where not exists (select from tasks t where t.id = i);
vacuum analyze tasks;
vacuum tasks;
SQL
}
# identity values after the deletable range, so created tasks never collide with restored ones
psql "$url" -qX -c "select setval(pg_get_serial_sequence('tasks', 'id'), $DEL_HI * 10)" >/dev/null

# The handlers' statements (app/tasks.c), parameters as the API sends them. Without search and
# status the list's statement (tasks_list_sql) keeps $2 and $3 only in `is null` tests: typed NULLs
# here, which the planner folds, as the API's generic plan makes them a one-time filter.
TASK_COLS="id, user_id, title, description, completed, created_at at time zone 'UTC', updated_at at time zone 'UTC'"
pick='\set id random(1, '$ROWS')
\set uid :id % '$USERS
cat > "$tmp/get.sql" <<SQL
$pick
select $TASK_COLS from tasks where id = :id and user_id = :uid;
SQL
cat > "$tmp/list.sql" <<SQL
$pick
select c.total, t.* from (select count(*) from (select from tasks where user_id = :uid and null::boolean is null and null::text is null limit 10001) m) c(total) left join lateral (select $TASK_COLS from tasks where user_id = :uid and null::boolean is null and null::text is null order by tasks.created_at desc, tasks.id desc limit 20 offset 0) t on true;
SQL
cat > "$tmp/create.sql" <<SQL
$pick
insert into tasks (user_id, title, description, completed) values (:uid, 'task', 'details of the task', false) returning $TASK_COLS;
SQL
cat > "$tmp/put.sql" <<SQL
$pick
update tasks set title = 'task', description = 'details of the task', completed = false, updated_at = now() where id = :id and user_id = :uid returning $TASK_COLS;
SQL
cat > "$tmp/toggle.sql" <<SQL
$pick
update tasks set completed = not completed, updated_at = now() where id = :id and user_id = :uid returning $TASK_COLS;
SQL
cat > "$tmp/delete.sql" <<SQL
\set id random($DEL_LO, $DEL_HI)
\set uid $USERS + :id % $USERS
delete from tasks where id = :id and user_id = :uid;
SQL

gen() { python3 bench/workload.py "$SECRET" $USERS $ROWS $DEL_LO $DEL_HI "$@"; }
for k in get list create put toggle delete; do gen "$k" > "$tmp/$k.lua"; done
# shellcheck disable=SC2086
gen $MIX > "$tmp/mix.lua"
pgb_files() { # kind -> pgbench's -f arguments
  if [ "$1" = mix ]; then
    for m in $MIX; do printf -- '-f %s@%s ' "$tmp/${m%%=*}.sql" "${m#*=}"; done
  else
    printf -- '-f %s' "$tmp/$1.sql"
  fi
}
writes() { case "$1" in get|list) return 1 ;; esac; }
deletes() { case "$1" in delete|mix) return 0 ;; esac; return 1; }

ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# wrk's "850.00us" / "1.23ms" / "1.20s" in milliseconds
to_ms() { awk '/us$/ {printf "%.2f", $1 / 1000; next} /ms$/ {printf "%.2f", $1 + 0; next} /s$/ {printf "%.2f", $1 * 1000; next} {print "-"}'; }
# percentiles (ms) of pgbench's per-transaction log (column 3: latency in us)
pgb_pcts() { cat "$1".* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {if (NR) printf "%.2f %.2f", a[int(NR*0.5)+1]/1000, a[int(NR*0.99)+1]/1000; else print "- -"}'; }

# While a measurement runs, how many of one side's connections run a statement at once (a commit
# waiting for the disk or the safekeepers included), sampled every 20 ms on a connection of its own:
# the proof that writes commit in parallel. busy_start APPLICATION_NAME; busy_stop prints the most.
busy_start() {
  printf "select count(*) from pg_stat_activity where application_name = '%s' and state = 'active';\n\\watch 0.02\n" "$1" |
    psql "$url" -qAtX > "$tmp/busy" 2>/dev/null &
  busy_pid=$!
}
busy_stop() {
  kill "$busy_pid" 2>/dev/null; wait "$busy_pid" 2>/dev/null || true
  awk '/^[0-9]+$/ && $1 > m {m = $1} END {print m + 0}' "$tmp/busy"
}

# pgbench URL (direct, or through the proxy)
pgb() { # kind dburl [protocol: extended | prepared] -> "tps p50 p99 busy"
  rm -f "$tmp"/pgl.*
  local out tps busy
  busy_start pgbench
  # shellcheck disable=SC2046
  out=$(cd "$tmp" && timeout $((DURATION + 30)) pgbench -n -M "${3:-extended}" -c "$CONNS" -j 2 -T "$DURATION" \
        -l --log-prefix=pgl $(pgb_files "$1") "$2" 2>&1) || { echo "$out" >&2; busy_stop >/dev/null; return 1; }
  busy=$(busy_stop)
  tps=$(echo "$out" | awk '/^tps = / {print $3}')
  echo "$tps $(pgb_pcts "$tmp/pgl") $busy"
}

start_api() { # dburl [binary [log name]]
  local port checks log="$tmp/${3:-api}.log"
  rm -f "$tmp/writes-warm"
  checks=$(grep -c 'schema' "$log" 2>/dev/null || true)
  port=$(free_port)
  read -r _ api_pid < <(cd "$tmp" && env DATABASE_URL="$1" JWT_SECRET="$SECRET" PORT="$port" METRICS_TOKEN="$METRICS_TOKEN" \
      APP_ENV=production LOG_FORMAT=json ACCESS_LOG=true WORKERS="${WORKERS:-64}" LOOPS="${LOOPS:-auto}" \
      DB_PIPELINE="${DB_PIPELINE:-true}" DB_POOL_MAX="$POOL" DB_POOL_IDLE_TIMEOUT=600 DB_APPLICATION_NAME=neon-todo \
      python3 "$OLDPWD/bench/api_start.py" "$port" "$log" "${2:-$API}")
  api_port=$port
  # the startup schema check borrows a pooled connection; measured before it returned it, the
  # lanes would open connections of their own beside it and "db conns" would count that one too
  for _ in $(seq 1 100); do (($(grep -c 'schema' "$log") > checks)) && break; sleep 0.05; done
}
# BASE_API runs beside the API (idle while the API is measured, and the other way round);
# on_base runs a command with api_pid/api_port pointing at it.
start_base() {
  local pid=$api_pid port=$api_port
  start_api "$url" "$(realpath "$BASE_API")" base
  base_pid=$api_pid base_port=$api_port api_pid=$pid api_port=$port
}
on_base() {
  local pid=$api_pid port=$api_port
  api_pid=$base_pid api_port=$base_port
  "$@"
  api_pid=$pid api_port=$port
}
# One second of load before measuring, so the lanes have their pooled connections open, as
# pgbench's connections are open before its clock starts: GETs when the API starts (the read
# lanes), and the kind itself before the first kind that writes (the write lanes; through the
# delay proxy a connection's startup and authentication take about four round trips). Not the
# mix at the start: the write lanes' connections would then sit idle in the pool during the GET
# measurement, where the connections the API holds are one of the figures.
warm_up() { # kind
  timeout 20 wrk -t2 -c"$CONNS" -d1s -s "$tmp/$1.lua" "http://127.0.0.1:$api_port" >/dev/null
  if writes "$1"; then restore; touch "$tmp/writes-warm"; fi
}
stop_api() { kill -TERM "$api_pid"; wait_pid "$api_pid"; api_pid=""; }
held() { # the API's open database connections, from /metrics
  curl -s -H "Authorization: Bearer $METRICS_TOKEN" "http://127.0.0.1:$api_port/metrics" | awk '/^db_pool_connections\{state="open"\}/ {print $2}'
}

wrk_api() { # kind -> "rps p50 p99 cpu_us non2xx conns busy"
  local c0 c1 out busy
  busy_start neon-todo
  c0=$(cpu_ticks "$api_pid")
  local perf_pid=""
  if [ -n "${PERF:-}" ]; then # a CPU profile of the server per kind: perf report -i $PERF/KIND.data
    mkdir -p "$PERF"
    perf record -q -e cpu-clock ${PERF_G:+-g} -p "$api_pid" -o "$PERF/$1.data" 2>/dev/null &
    perf_pid=$!
  fi
  out=$(timeout $((DURATION + 30)) wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$tmp/$1.lua" \
        "http://127.0.0.1:$api_port")
  c1=$(cpu_ticks "$api_pid")
  busy=$(busy_stop)
  [ -n "$perf_pid" ] && kill -INT "$perf_pid" && wait "$perf_pid" || true
  local rps reqs p50 p99 bad
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}' | to_ms)
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms)
  bad=$(echo "$out" | awk '/Non-2xx/ {n = $NF} /Socket errors/ {s = $0} END {print n ? n : 0; if (s) print s > "/dev/stderr"}')
  awk -v rps="$rps" -v reqs="$reqs" -v dt=$((c1 - c0)) -v tck="$ticks" -v p50="$p50" -v p99="$p99" \
      -v bad="$bad" -v conns="$(held)" -v busy="$busy" \
      'BEGIN { printf "%.0f %s %s %.1f %s %s %s", rps, p50, p99, dt / tck / reqs * 1e6, bad, conns, busy }'
}

# pgbench's rate with the statements prepared once per connection (-M prepared), as the API
# prepares them (DB_PREPARE): the baseline of the same server work per statement. PGB_PREPARED=0
# skips it.
pgb_prepared() { # kind dburl -> tps, or "-"
  if [ "${PGB_PREPARED:-1}" = 0 ]; then echo -; return; fi
  pgb "$1" "$2" prepared | awk '{printf "%.0f", $1}'
  deletes "$1" && restore
}

# One measurement of one kind: both sides, order alternating with the run. Prints one line:
# kind pg_tps pg_p50 pg_p99 pg_busy api_rps api_p50 api_p99 cpu_us non2xx api_conns api_busy share
#   pgp_tps share_of_pgp
measure() { # kind run dburl
  local kind=$1 run=$2 dburl=$3 pgl apil pgp
  if writes "$kind" && [ ! -e "$tmp/writes-warm" ]; then
    warm_up "$kind"
    [ -z "$base_pid" ] || on_base warm_up "$kind"
  fi
  if ((run % 2)); then
    pgl=$(pgb "$kind" "$dburl"); deletes "$kind" && restore
    pgp=$(pgb_prepared "$kind" "$dburl")
    apil=$(wrk_api "$kind"); deletes "$kind" && restore
    measure_base "$kind" "$apil"
  else
    measure_base "$kind" ""
    apil=$(wrk_api "$kind"); deletes "$kind" && restore
    pgp=$(pgb_prepared "$kind" "$dburl")
    pgl=$(pgb "$kind" "$dburl"); deletes "$kind" && restore
  fi
  if [ -n "$base_pid" ]; then # ((A || B) && C would move a file never written without BASE_API)
    awk -v k="$kind" -v a="$apil" '$1 == k && $4 == "" {split(a, f, " "); $4 = f[1]} 1' \
      "$tmp/base" > "$tmp/base.new" && mv "$tmp/base.new" "$tmp/base"
  fi
  writes "$kind" && restore # created rows go, every kind starts from the same table
  set -- $pgl $apil
  awk -v k="$kind" -v a="$*" -v p="$pgp" 'BEGIN { split(a, f, " ")
    printf "%s %s %.2f %s %s\n", k, a, f[5] / f[1], p, p == "-" ? "-" : sprintf("%.2f", f[5] / p) }'
}

# BASE_API's side of one kind, next to the API's: "kind rps cpu_us [api_rps]" in $tmp/base (the
# API's rate is filled in when it was measured after). Prints to stderr, as the run goes.
measure_base() { # kind api_line_or_empty
  [ -n "$base_pid" ] || return 0
  local f
  read -r -a f <<< "$(PERF="" on_base wrk_api "$1")"
  deletes "$1" && restore
  writes "$1" && restore
  echo "$1 ${f[0]} ${f[3]} $(echo "$2" | awk '{print $1}')" >> "$tmp/base"
  printf '  %-7s BASE_API %6s req/s cpu %5s us/req\n' "$1" "${f[0]}" "${f[3]}" >&2
}

FMT='  %-7s pgbench %6.0f tps p50 %5sms p99 %5sms busy %-2s | api %6s req/s p50 %5sms p99 %5sms cpu %5s us/req non-2xx %-5s db conns %-2s busy %-2s | %sx pgbench | -M prepared %6s tps: %sx'
report() { # line
  # shellcheck disable=SC2086,SC2059
  printf "$FMT\n" $1
}

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
medians() { # file-of-lines title
  echo "$2"
  for k in $KINDS; do
    grep "^$k " "$1" >/dev/null || continue
    local m=("$k")
    for col in 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
      m+=("$(awk -v k="$k" -v c=$col '$1 == k {print $c}' "$1" | median)")
    done
    # shellcheck disable=SC2059
    printf "$FMT (runs: %s; of -M prepared: %s)\n" "${m[@]}" "$(awk -v k="$k" '$1 == k {printf "%s ", $13}' "$1")" \
      "$(awk -v k="$k" '$1 == k {printf "%s ", $15}' "$1")"
  done
}

echo "endpoints.sh: $CONNS connections, ${DURATION}s each, $RUNS runs, fsync=$FSYNC, plan_cache_mode=${PLAN_CACHE_MODE:-auto}, DB_POOL_MAX=$POOL" \
     "DB_PIPELINE=${DB_PIPELINE:-true} DB_PIPELINE_CONNS=${DB_PIPELINE_CONNS:-2} DB_PIPELINE_WRITES=${DB_PIPELINE_WRITES:-true} DB_PREPARE=${DB_PREPARE:-auto}; pgbench holds $CONNS database connections;" \
     "busy: most of a side's connections running a statement (a commit included) at once, sampled every 20 ms"
: > "$tmp/local"
for run in $(seq 1 "$RUNS"); do
  echo "run $run (local):"
  start_api "$url"
  ((run > 1)) || grep -o '[0-9]* loop(s), up to [0-9]* handler(s) in all' "$tmp/api.log" | sed "s/^/  the API (LOOPS=${LOOPS:-auto}): /" || true
  warm_up get
  if [ -n "${BASE_API:-}" ]; then start_base; on_base warm_up get; fi
  for kind in $KINDS; do
    line=$(measure "$kind" "$run" "$url")
    echo "$line" >> "$tmp/local"
    report "$line"
  done
  stop_api
  if [ -n "$base_pid" ]; then on_base stop_api; base_pid=""; fi
done

for d in ${PROXY:+$DELAYS}; do
  : > "$tmp/delay$d"
  "$PROXY" --upstream "127.0.0.1:$pgport" --port-file "$tmp/proxy.ports" --delay "$d" >"$tmp/proxy.log" 2>&1 &
  proxy_pid=$!
  for _ in $(seq 1 100); do [ -s "$tmp/proxy.ports" ] && break; sleep 0.05; done
  read -r pport _ < "$tmp/proxy.ports"
  purl=$(echo "$url" | sed "s/:$pgport\//:$pport\//")
  for run in $(seq 1 "$RUNS"); do
    echo "run $run (every database round trip + $d ms):"
    start_api "$purl"
    warm_up get
    for kind in $DELAY_KINDS; do
      line=$(measure "$kind" "$run" "$purl")
      echo "$line" >> "$tmp/delay$d"
      report "$line"
    done
    stop_api
  done
  kill -TERM "$proxy_pid"; wait_pid "$proxy_pid"; proxy_pid=""
  rm -f "$tmp/proxy.ports"
done

echo
medians "$tmp/local" "median of $RUNS runs, local (connections $CONNS, ${DURATION}s each, fsync=$FSYNC):"
if [ -n "${BASE_API:-}" ]; then
  echo "the API against BASE_API, medians of $RUNS runs (req/s, CPU us per request; the ratio is"
  echo "the median of each run's, measured side by side):"
  for k in $KINDS; do
    a=$(awk -v k="$k" '$1 == k {print $6}' "$tmp/local" | median)
    ac=$(awk -v k="$k" '$1 == k {print $9}' "$tmp/local" | median)
    b=$(awk -v k="$k" '$1 == k {print $2}' "$tmp/base" | median)
    bc=$(awk -v k="$k" '$1 == k {print $3}' "$tmp/base" | median)
    runs=$(awk -v k="$k" '$1 == k {printf "%.2f ", $4 / $2}' "$tmp/base")
    r=$(awk -v k="$k" '$1 == k {print $4 / $2}' "$tmp/base" | median)
    awk -v k="$k" -v a="$a" -v b="$b" -v ac="$ac" -v bc="$bc" -v r="$r" -v runs="$runs" \
      'BEGIN { printf "  %-7s api %6s  base %6s  %.3fx (runs: %s) | cpu %5s  base %5s\n", k, a, b, r, runs, ac, bc }'
  done
fi
# A median hides one bad run: an API p99 over TAIL_MS (50, issue 31's bound) in any local run is
# named, as GIN pending-list merges once gave toggles (migrations/0005)
awk -v max="${TAIL_MS:-50}" '{ n[$1]++ } $8 > max + 0 { bad = 1
    printf "endpoints.sh: %s had an API p99 of %s ms in run %d (over %s ms)\n", $1, $8, n[$1], max }
  END { if (!bad) printf "every API p99 of every local run within %s ms\n", max }' "$tmp/local"
for d in ${PROXY:+$DELAYS}; do
  KINDS=$DELAY_KINDS medians "$tmp/delay$d" "median of $RUNS runs, every database round trip + $d ms (tests/tools/faultproxy):"
done
