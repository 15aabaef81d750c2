#!/usr/bin/env bash
# A throw-away PostgreSQL on 127.0.0.1 and a free port, in a temporary directory, stopped by its PID.
# Usage: source tests/postgres.sh; pg_find_bin && pg_start; ...; pg_stop
#   pg_find_bin  sets PGBIN (keeps a PGBIN that holds initdb; else the newest /usr/lib/postgresql/*/bin; else pg_config)
#   pg_start     exports RULEBILL_TEST_POSTGRES_URL, PG_PID, PG_PORT, PG_DIR; on failure returns 1 with PG_ERROR set
#   pg_stop      stops that PID (TERM, then KILL after 10 s) and removes the directory
# initdb and postgres refuse to run as root: as root the server runs as the `postgres` user when it exists
# (Debian's packages create it), else as `nobody`; the temporary directory is handed to that user.

pg_find_bin() {
  if [ -n "${PGBIN:-}" ] && [ -x "$PGBIN/initdb" ]; then return 0; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then PGBIN=$d; export PGBIN; return 0; fi
  done
  if command -v pg_config >/dev/null 2>&1; then
    d=$(pg_config --bindir 2>/dev/null)
    if [ -x "$d/initdb" ]; then PGBIN=$d; export PGBIN; return 0; fi
  fi
  return 1
}

_pg_user() {
  if [ "$(id -u)" != 0 ]; then echo ""; elif id postgres >/dev/null 2>&1; then echo postgres; else echo nobody; fi
}

_as_pg() {
  local user; user=$(_pg_user)
  if [ -n "$user" ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

pg_start() {
  PG_ERROR=""
  PG_DIR=$(mktemp -d /tmp/rulebill-pg.XXXXXX)
  chmod 755 "$PG_DIR"
  local user; user=$(_pg_user)
  [ -n "$user" ] && chown "$user" "$PG_DIR"
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  if ! _as_pg "$PGBIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >"$PG_DIR/initdb.log" 2>&1; then
    PG_ERROR="initdb failed: $(tail -n 1 "$PG_DIR/initdb.log")"; return 1
  fi
  _as_pg "$PGBIN/postgres" -D "$PG_DIR/data" -h 127.0.0.1 -p "$PG_PORT" -k "$PG_DIR" \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 >"$PG_DIR/server.log" 2>&1 &
  local launcher=$! _
  for _ in $(seq 1 150); do
    if [ -f "$PG_DIR/data/postmaster.pid" ] && "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -q; then break; fi
    sleep 0.1
  done
  if ! "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -q; then
    PG_ERROR="not ready after 15 s: $(tail -n 1 "$PG_DIR/server.log")"
    [ -f "$PG_DIR/data/postmaster.pid" ] && PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid") || kill "$launcher" 2>/dev/null
    return 1
  fi
  PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
  export PG_PID PG_DIR PG_PORT
  export RULEBILL_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:${PG_PORT}/postgres"
  echo "PostgreSQL pid $PG_PID on 127.0.0.1:$PG_PORT"
}

pg_stop() {
  if [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -TERM "$PG_PID"
    local _
    for _ in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PG_PID" 2>/dev/null && kill -KILL "$PG_PID"
  fi
  [ -n "${PG_DIR:-}" ] && rm -rf "$PG_DIR"
  PG_PID=""
}
