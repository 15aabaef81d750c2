#!/usr/bin/env bash
# Run a command (the test suite) with a throw-away PostgreSQL for the integration tests.
#
#   tests/with-postgres.sh CMD...
#
# - RULEBILL_TEST_POSTGRES_URL already set: that server is used as is.
# - Otherwise PostgreSQL's server binaries are looked for (PGBIN, then /usr/lib/postgresql/<newest>/bin, then
#   `pg_config --bindir`). Found: a server is initialised in a temporary directory, started on 127.0.0.1 and a free
#   port, exported as RULEBILL_TEST_POSTGRES_URL for CMD, and stopped by its PID when CMD ends (whatever the outcome).
#   A server that is found but does not start is an error: one line, exit 1, CMD is not run.
# - Not found: one line says so and CMD runs on SQLite alone (the PostgreSQL tests report as skipped).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if [ -n "${RULEBILL_TEST_POSTGRES_URL:-}" ]; then
  exec "$@"
fi

# shellcheck source=tests/postgres.sh
source "$here/postgres.sh"
if ! pg_find_bin; then
  echo "make test: no PostgreSQL server binaries (set PGBIN or RULEBILL_TEST_POSTGRES_URL); the PostgreSQL tests will be skipped" >&2
  exec "$@"
fi
trap pg_stop EXIT
if ! pg_start >/dev/null; then
  echo "make test: PostgreSQL from $PGBIN did not start: $PG_ERROR" >&2
  exit 1
fi
echo "make test: throw-away PostgreSQL (pid $PG_PID) on 127.0.0.1:$PG_PORT from $PGBIN" >&2
"$@"
