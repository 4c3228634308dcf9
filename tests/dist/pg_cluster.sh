#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the lease tests and benchmark.
#
#   pg_cluster.sh start DIR [OWNER_PID]
#       initdb into DIR/data (DIR: an empty directory), start the server on
#       a private Unix socket in DIR (no TCP), print the libpq connection
#       string on stdout. With OWNER_PID, a watchdog stops the server and
#       removes DIR once that process has exited, whatever way it ended.
#   pg_cluster.sh kill DIR      stop the server at once (-m immediate), keep the data
#   pg_cluster.sh restart DIR   start a killed server again (same socket)
#   pg_cluster.sh stop DIR      stop the server and remove DIR
#
# The server runs as an unprivileged user: the caller, or when the caller
# is root, the `postgres` user Debian's package creates (else a system user
# `ursa-pg`, created on first use). PG_BIN overrides where initdb and
# pg_ctl are found (default: pg_config --bindir, then the newest
# /usr/lib/postgresql/*/bin). For debugging: PGT_EXTRA_OPTS adds server
# options (e.g. "-c log_statement=all"), PGT_KEEP_LOG=FILE keeps the
# server log when the cluster is removed.
set -euo pipefail

die() { echo "pg_cluster.sh: $*" >&2; exit 1; }

bindir() {
  local d="${PG_BIN:-}"
  if [ -z "$d" ] && command -v pg_config >/dev/null; then d="$(pg_config --bindir)"; fi
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  fi
  [ -x "$d/initdb" ] || die "initdb not found (install postgresql, or set PG_BIN)"
  echo "$d"
}

# Runs a command as the cluster's user.
as_owner() {
  if [ "$(id -u)" != 0 ]; then
    "$@"
  else
    local u=postgres
    if ! id "$u" >/dev/null 2>&1; then
      u=ursa-pg
      id "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
    fi
    runuser -u "$u" -- "$@"
  fi
}

owner_of() { stat -c %U "$1"; }

# Fast and unsafe for everyone else: fsync off (a process crash keeps the
# OS cache) and synchronous_commit off, which the lease turns back on for
# its own sessions; test_server_down_past_ttl fails if it does not (the
# grant is lost in the crash and the next grant reuses its fence).
pg_ctl_opts() {
  local dir="$1"
  echo "-c listen_addresses='' -c unix_socket_directories='$dir' -c unix_socket_permissions=0777" \
       "-c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
       "-c shared_buffers=32MB -c log_min_messages=warning ${PGT_EXTRA_OPTS:-}"
}

start_server() {
  local dir="$1" bin
  bin="$(bindir)"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 -s \
    -o "$(pg_ctl_opts "$dir")" start >/dev/null
}

cmd="${1:-}"
dir="${2:-}"
[ -n "$dir" ] || die "usage: pg_cluster.sh start|kill|restart|stop DIR [OWNER_PID]"

case "$cmd" in
start)
  owner_pid="${3:-}"
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  dir="$(cd "$dir" && pwd)"
  bin="$(bindir)"
  if [ "$(id -u)" = 0 ]; then
    as_owner true # creates the user if needed
    chown "$(as_owner id -un)" "$dir"
    chmod 0755 "$dir"
  fi
  as_owner "$bin/initdb" -D "$dir/data" -U ursa -A trust -E UTF8 --locale=C --no-sync \
    --no-instructions >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  if [ -n "$owner_pid" ]; then
    # The watchdog: detached, silent, gone once the cluster is.
    setsid bash -c '
      while kill -0 "$1" 2>/dev/null && [ -d "$2" ]; do sleep 0.5; done
      [ -d "$2" ] && bash "$0" stop "$2"' "$0" "$owner_pid" "$dir" </dev/null >/dev/null 2>&1 &
  fi
  start_server "$dir" || { cat "$dir/log" >&2; die "the server did not start"; }
  echo "host=$dir port=5432 user=ursa dbname=postgres"
  ;;
kill)
  as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w -s stop >/dev/null 2>&1 || true
  ;;
restart)
  start_server "$dir" || { cat "$dir/log" >&2; die "the server did not start"; }
  ;;
stop)
  if [ -n "${PGT_KEEP_LOG:-}" ] && [ -f "$dir/log" ]; then cp "$dir/log" "$PGT_KEEP_LOG"; fi
  if [ -d "$dir/data" ]; then
    as_owner "$(bindir)/pg_ctl" -D "$dir/data" -m immediate -w -s stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  die "unknown command $cmd"
  ;;
esac
