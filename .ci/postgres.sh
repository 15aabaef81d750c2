#!/usr/bin/env bash
# Start a throw-away PostgreSQL 15 on 127.0.0.1 and a free port, in a temporary directory.
# Usage: source .ci/postgres.sh; pg_start; ...; pg_stop
# pg_start exports RULEBILL_TEST_POSTGRES_URL and PG_PID; pg_stop stops that PID and removes the directory.
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

_as_pg() {
  # initdb refuses root: run the server as the postgres user when we are root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  PG_DIR=$(mktemp -d /tmp/rulebill-pg.XXXXXX)
  chmod 755 "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  _as_pg "$PGBIN/initdb" -D "$PG_DIR/data" -A trust -U postgres --no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log"; return 1; }
  _as_pg "$PGBIN/postgres" -D "$PG_DIR/data" -h 127.0.0.1 -p "$PG_PORT" -k "$PG_DIR" \
      -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 >"$PG_DIR/server.log" 2>&1 &
  for _ in $(seq 1 100); do
    if [ -f "$PG_DIR/data/postmaster.pid" ] && "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -q; then break; fi
    sleep 0.1
  done
  "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -q || { echo "PostgreSQL did not start:"; cat "$PG_DIR/server.log"; return 1; }
  PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
  export PG_PID PG_DIR PG_PORT
  export RULEBILL_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:${PG_PORT}/postgres"
  echo "PostgreSQL pid $PG_PID on 127.0.0.1:$PG_PORT"
}

pg_stop() {
  if [ -n "${PG_PID:-}" ] && kill -0 "$PG_PID" 2>/dev/null; then
    kill -TERM "$PG_PID"
    for _ in $(seq 1 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$PG_PID" 2>/dev/null && kill -KILL "$PG_PID"
  fi
  [ -n "${PG_DIR:-}" ] && rm -rf "$PG_DIR"
  PG_PID=""
}
