#!/usr/bin/env bash
# Start Debian's PostgreSQL on loopback with a database for the storage tests; prints its URL.
# Used by .ci/run; a developer can run it too (as root or with sudo).
set -euo pipefail
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
pg_lsclusters -h | grep -q "^$version main" || $SUDO pg_createcluster "$version" main >/dev/null
$SUDO pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
as_postgres psql -q -c "DO \$\$BEGIN CREATE ROLE nas LOGIN PASSWORD 'nas'; EXCEPTION WHEN duplicate_object THEN NULL; END\$\$;" >/dev/null
as_postgres psql -qtAc "SELECT 1 FROM pg_database WHERE datname = 'nas_test'" | grep -q 1 || as_postgres createdb -O nas nas_test
echo "postgresql://nas:nas@127.0.0.1:5432/nas_test"
