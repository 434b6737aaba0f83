#!/usr/bin/env bash
# Installs (if needed) and starts a local PostgreSQL cluster for veritee-store's tests, and
# creates the role and database they use. Idempotent; run as root on Debian. Exports
# nothing: it prints the connection URL as its last line, for the caller to export as
# VERITEE_TEST_POSTGRES.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi

version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
    pg_createcluster "$version" main >/dev/null
fi
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { print $3 }')
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" && $4 ~ /^online/ { found = 1 } END { exit !found }'; then
    pg_ctlcluster "$version" main start
fi

for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$port" >/dev/null

cd /tmp # psql run as postgres warns when it cannot read the current directory
as_postgres() { su postgres -c "$1"; }
if [ "$(as_postgres "psql -p $port -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'veritee'\"")" != 1 ]; then
    as_postgres "psql -p $port -q -c \"CREATE ROLE veritee LOGIN PASSWORD 'veritee' SUPERUSER\""
fi
if [ "$(as_postgres "psql -p $port -tAc \"SELECT 1 FROM pg_database WHERE datname = 'veritee'\"")" != 1 ]; then
    as_postgres "createdb -p $port -O veritee veritee"
fi

echo "postgres://veritee:veritee@127.0.0.1:$port/veritee"
