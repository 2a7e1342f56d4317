#!/usr/bin/env bash
# Runs every test of the workspace against a real PostgreSQL.
#
# Finds the PostgreSQL named by DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
# if it is not answering, starts the local cluster; if PostgreSQL is not installed,
# installs it from Debian's packages, starts it, and creates the database. Likewise for the
# brokers of the integration-event tests: NATS with JetStream on 127.0.0.1:4222 and RabbitMQ
# on 127.0.0.1:5672 (guest/guest) are used when answering, else started, else installed
# from Debian's packages and started. Installs Debian's chromium and chromium-driver when
# missing (the operator console's browser tests). Says what it did.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
say() { printf '[test.sh] %s\n' "$*"; }

# host, port and database out of the URL (postgres://user[:pw]@host[:port]/db[?..]).
rest="${DATABASE_URL#*://}"; rest="${rest#*@}"
hostport="${rest%%/*}"; db="${rest#*/}"; db="${db%%\?*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=5432
user_part="${DATABASE_URL#*://}"; user_part="${user_part%%@*}"; user="${user_part%%:*}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

answering() {
    command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h "$host" -p "$port" -t 3
}

if answering; then
    say "PostgreSQL is answering at $host:$port: using it."
else
    if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        say "PostgreSQL is not installed: installing it from Debian's packages (apt-get install postgresql)."
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql postgresql-client >/dev/null
    fi
    if [ "$host" != 127.0.0.1 ] && [ "$host" != localhost ]; then
        say "ERROR: nothing answers at $host:$port and it is not this machine; start it or set DATABASE_URL." >&2
        exit 1
    fi
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1 || true)"
    if [ -z "$version" ]; then
        version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
        say "No PostgreSQL cluster exists: creating cluster $version/main on port $port."
        as_root pg_createcluster "$version" main -p "$port" >/dev/null
    fi
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba" 2>/dev/null; then
        say "Allowing passwordless (trust) connections from 127.0.0.1 and ::1 for the tests ($hba)."
        as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    fi
    say "Starting PostgreSQL cluster $version/main."
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do answering && break; sleep 1; done
    answering || { say "ERROR: PostgreSQL did not come up on $host:$port." >&2; exit 1; }
    say "PostgreSQL is up at $host:$port."
fi

if ! psql "${DATABASE_URL%/*}/postgres" -Atqc "select 1 from pg_database where datname = '$db'" | grep -q 1; then
    say "Creating database $db."
    psql "${DATABASE_URL%/*}/postgres" -qc "create database \"$db\"" >/dev/null
fi
# The brokers of the integration-event tests: NATS with JetStream and RabbitMQ.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if listening 4222; then
    say "NATS is answering at 127.0.0.1:4222: using it."
else
    if ! command -v nats-server >/dev/null 2>&1; then
        say "NATS is not installed: installing it from Debian's packages (apt-get install nats-server)."
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
    fi
    mkdir -p /tmp/tessera-nats
    say "Starting nats-server with JetStream on 127.0.0.1:4222 (store /tmp/tessera-nats, log /tmp/tessera-nats/server.log)."
    nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /tmp/tessera-nats -l /tmp/tessera-nats/server.log >/dev/null 2>&1 &
    for _ in $(seq 1 30); do listening 4222 && break; sleep 1; done
    listening 4222 || { say "ERROR: NATS did not come up on 127.0.0.1:4222." >&2; exit 1; }
fi
if listening 5672; then
    say "RabbitMQ is answering at 127.0.0.1:5672: using it."
else
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        say "RabbitMQ is not installed: installing it from Debian's packages (apt-get install rabbitmq-server)."
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    fi
    say "Starting RabbitMQ (service rabbitmq-server start, else rabbitmq-server -detached) on 127.0.0.1:5672."
    as_root service rabbitmq-server start >/dev/null 2>&1 || as_root rabbitmq-server -detached >/dev/null 2>&1 || true
    for _ in $(seq 1 90); do listening 5672 && break; sleep 1; done
    listening 5672 || { say "ERROR: RabbitMQ did not come up on 127.0.0.1:5672." >&2; exit 1; }
    say "RabbitMQ is up at 127.0.0.1:5672 (guest/guest)."
fi

# The headless browser of the operator console's tests (examples/shop/tests/shop/browser.rs):
# Debian's chromium and its chromedriver, driven over WebDriver.
browser_installed() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
if browser_installed; then
    say "chromium and chromedriver are installed: the console's browser tests use them."
else
    install_hint="apt-get install -y chromium chromium-driver (as root, or with sudo)"
    if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
        say "ERROR: the console's browser tests need chromium and chromedriver, which are not installed, and this user is not root and has no sudo: install them with $install_hint, then run this again." >&2
        exit 1
    fi
    say "chromium or chromedriver is missing: installing them from Debian's packages (apt-get install chromium chromium-driver)." >&2
    if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
        || ! browser_installed; then
        say "ERROR: could not install chromium and chromedriver (see apt-get's messages above); install them with $install_hint, then run this again." >&2
        exit 1
    fi
    say "Installed chromium ($(command -v chromium)) and chromedriver ($(command -v chromedriver))." >&2
fi

say "Running: cargo test --workspace (DATABASE_URL=$(printf '%s' "$DATABASE_URL" | sed -E 's|(://[^:/@]*):[^/?#]*@|\1:***@|; s|(password=)[^& ]*|\1***|g'), user $user)"
exec cargo test --workspace "$@"
