#!/usr/bin/env bash
# chaos.sh: the API under a mixed load of careful clients while the database is made to fail, then an
# audit of what the clients were told against what the database holds (bench/chaos.py does the load,
# the faults and the audit; this script sets the stage and stops everything it started).
#
#   bench/chaos.sh [SECONDS=30] [direct|pooler]     (env: BUILD, WRITERS=6, READERS=6, DB_POOL_MAX=10)
#
# Starts a private PostgreSQL (scripts/pg-cluster, temp dir, never a shared one), migrates it, puts the
# fault proxy (tests/tools/faultproxy) in front of it (pooler: in front of a pgbouncer in transaction
# mode, itself in front of the server) and starts bin/api on it. Loopback only, bounded by `timeout`.
# Exit 0 when the targets hold: 0 lost, 0 duplicated, 0 failed reads outside outages, every outage
# recovered within 1 s (CHAOS_RECOVERY_LIMIT: seconds, or auto = max(1, 20 x the run's median read
# latency), which the chaos ctest uses), the API never restarted, its server connections within
# DB_POOL_MAX.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-30}
VARIANT=${2:-direct}
BUILD=${BUILD:-build/release}
for tool in python3 psql pg_isready; do
  command -v $tool >/dev/null || { echo "chaos.sh: $tool is missing (scripts/install-deps)" >&2; exit 1; }
done
if [ ! -x "$BUILD/bin/api" ] || [ ! -x "$BUILD/bin/migrate" ] || [ ! -x "$BUILD/bin/faultproxy" ]; then
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  cmake --build "$BUILD" -j "$(nproc)" >/dev/null
fi
tmp=$(mktemp -d /tmp/chaos.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  rc=$?
  # a missed target keeps the API's log and the proxy's for the post-mortem
  if [ $rc != 0 ] && [ -f "$tmp/api.log" ]; then
    keep=build/chaos-$(date +%Y%m%d-%H%M%S)
    mkdir -p "$keep" && cp "$tmp/api.log" "$tmp/proxy.log" "$keep/" 2>/dev/null || true
    echo "chaos.sh: the API's and the proxy's logs are in $keep/" >&2
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  [ -f "$tmp/bouncer/pgbouncer.pid" ] && kill "$(cat "$tmp/bouncer/pgbouncer.pid")" 2>/dev/null || true
  scripts/pg-cluster stop "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

url=$(scripts/pg-cluster start "$tmp/pg" | tail -1)
"$BUILD/bin/migrate" -q up --url "$url" --dir migrations
pgport=$(cat "$tmp/pg/port")
password=$(cat "$tmp/pg/password")
upstream=$pgport
if [ "$VARIANT" = pooler ]; then
  PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
  mkdir -p "$tmp/bouncer"
  printf '"postgres" "%s"\n' "$password" > "$tmp/bouncer/userlist.txt"
  bport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$tmp/bouncer/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$pgport
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $tmp/bouncer/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 40
server_reset_query =
ignore_startup_parameters = extra_float_digits
; after a failed server login pgbouncer waits this long before the next (default 15 s): Neon's
; pooler reconnects at once; 15 s would measure pgbouncer's setting, not the API's recovery
server_login_retry = 0.25
pidfile = $tmp/bouncer/pgbouncer.pid
logfile = $tmp/bouncer/pgbouncer.log
INI
  [ "$(id -u)" = 0 ] && chown -R postgres: "$tmp/bouncer"
  printf '#!/bin/sh\n[ "$(id -u)" = 0 ] && exec runuser -u postgres -- %s -d %s/bouncer/pgbouncer.ini\nexec %s -d %s/bouncer/pgbouncer.ini\n' \
    "$PGBOUNCER" "$tmp" "$PGBOUNCER" "$tmp" > "$tmp/bouncer-start"
  chmod +x "$tmp/bouncer-start"
  "$tmp/bouncer-start" >/dev/null 2>&1
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p "$bport" && break; sleep 0.1; done
  upstream=$bport
fi

"$BUILD/bin/faultproxy" --upstream "127.0.0.1:$upstream" --port-file "$tmp/proxy.ports" >"$tmp/proxy.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [ -s "$tmp/proxy.ports" ] && break; sleep 0.1; done
read -r pport cport < "$tmp/proxy.ports"

export CHAOS_TMP=$tmp CHAOS_VARIANT=$VARIANT CHAOS_DIRECT_URL=$url CHAOS_PGDIR=$tmp/pg
CHAOS_API=$(realpath "$BUILD/bin/api")
export CHAOS_PROXY_CONTROL=$cport CHAOS_API
export CHAOS_API_URL="postgresql://postgres:${password}@127.0.0.1:${pport}/postgres"
export CHAOS_PG_PORT=$pgport CHAOS_BOUNCER_PORT=${bport:-}
timeout $(( SECONDS_RUN + 120 )) python3 bench/chaos.py "$SECONDS_RUN"
