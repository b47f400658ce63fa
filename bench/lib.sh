# shellcheck shell=bash
# lib.sh: what the benchmark scripts share, sourced (`. bench/lib.sh`) once they are in the
# repository's root.
#   bench_need SCRIPT TOOL...    exits 1 naming the first tool missing from PATH
#   bench_build BUILD TARGET...  a Release build of the targets whose binary is missing in BUILD/bin
#   bench_tmp NAME PIDVAR...     sets $tmp to a new /tmp/bench-NAME.XXXXXX that the postgres user can
#                                read (scripts/pg-cluster runs the server as postgres); on exit, stops
#                                the processes whose pids the named variables hold (those set then),
#                                the cluster under $tmp/pg, and removes $tmp
#   bench_cluster BUILD          starts that cluster, sets $url, applies migrations/ with BUILD's migrate
#   wait_pid PID                 waits up to 10 s for PID to exit, then kills it
#   free_port                    prints a TCP port free on 127.0.0.1

bench_need() {
  local script=$1 tool
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null ||
      { echo "$script: $tool is missing (scripts/install-deps --bench)" >&2; exit 1; }
  done
}

bench_build() {
  local build=$1 target missing=()
  shift
  for target in "$@"; do
    [ -x "$build/bin/$target" ] || missing+=("$target")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j "$(nproc)" --target "${missing[@]}" >/dev/null
}

bench_tmp() {
  tmp=$(mktemp -d "/tmp/bench-$1.XXXXXX")
  chmod 755 "$tmp"
  shift
  bench_pidvars=("$@")
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local var
  for var in "${bench_pidvars[@]}"; do
    [ -n "${!var:-}" ] && kill -TERM "${!var}" 2>/dev/null && wait_pid "${!var}"
  done
  scripts/pg-cluster stop "$tmp/pg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}

bench_cluster() {
  url=$(scripts/pg-cluster start "$tmp/pg" | tail -1)
  "$1/bin/migrate" -q up --url "$url" --dir migrations
}

wait_pid() {
  for _ in $(seq 1 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
  kill -KILL "$1" 2>/dev/null || true
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
