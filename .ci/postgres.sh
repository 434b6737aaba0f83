#!/usr/bin/env bash
# Installs (if needed) and starts a local PostgreSQL cluster for veritee-store's tests, and
# creates the role and database they use. The server speaks TLS with a certificate from a
# CA made here, and the URL asks for it (sslmode=verify-full, sslrootcert=that CA), so
# every PostgreSQL suite runs over TLS. Idempotent; run as root on Debian. Exports
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

# A CA and a server certificate for 127.0.0.1, made once.
tls_dir=/var/lib/postgresql/veritee-tls
if [ ! -s "$tls_dir/server.crt" ]; then
    command -v openssl >/dev/null || apt-get install -y -qq openssl >/dev/null
    mkdir -p "$tls_dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
        -subj "/CN=veritee CI database CA" -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.pem" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -subj "/CN=127.0.0.1" -keyout "$tls_dir/server.key" -out "$tls_dir/server.csr" 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=critical,CA:FALSE' \
        'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >"$tls_dir/server.ext"
    openssl x509 -req -in "$tls_dir/server.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" \
        -CAcreateserial -days 3650 -extfile "$tls_dir/server.ext" -out "$tls_dir/server.crt" 2>/dev/null
    chown -R postgres:postgres "$tls_dir"
    chmod 600 "$tls_dir/server.key" "$tls_dir/ca.key"
fi
tls_changed=0
if [ "$(pg_conftool -s "$version" main show ssl_cert_file 2>/dev/null)" != "$tls_dir/server.crt" ]; then
    pg_conftool "$version" main set ssl on
    pg_conftool "$version" main set ssl_cert_file "$tls_dir/server.crt"
    pg_conftool "$version" main set ssl_key_file "$tls_dir/server.key"
    tls_changed=1
fi
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" && $4 ~ /^online/ { found = 1 } END { exit !found }'; then
    pg_ctlcluster "$version" main start
elif [ "$tls_changed" = 1 ]; then
    pg_ctlcluster "$version" main reload
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

echo "postgres://veritee:veritee@127.0.0.1:$port/veritee?sslmode=verify-full&sslrootcert=$tls_dir/ca.pem"
