#!/usr/bin/env bash
# Start PostgreSQL, RabbitMQ and Redis if they are down and create the test database.
# Commands are the machine's own (see the env skill's python-svc page).
set -euo pipefail

# Redis holds the flash-sale gate in production (`hub up` starts it the same way: workers/local_services.py).
start_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
  fi
}

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  for _ in $(seq 1 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
fi

start_redis

# The test run's own database and RabbitMQ vhost (from HUB_TEST_DATABASE_URL / HUB_TEST_BROKER_URL), so a run
# that truncates tables or purges queues cannot disturb another run on the same machine.
db_url=${HUB_TEST_DATABASE_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/hub_test}
db=${db_url##*/}
db=${db%%\?*}
broker_url=${HUB_TEST_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/hub_test}
vhost=${broker_url##*/}
if [ -n "${vhost}" ] && ! rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx "${vhost}"; then
  rabbitmqctl -q add_vhost "${vhost}" >/dev/null
  rabbitmqctl -q set_permissions -p "${vhost}" guest ".*" ".*" ".*" >/dev/null
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='${db}'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "create database ${db}"
fi
# The reservation concurrency test opens 200 connections at once, beside the other test workers' pools: make room.
max=$(psql -h 127.0.0.1 -U postgres -tAc "show max_connections")
if [ "${max}" -lt 600 ]; then
  echo "raising PostgreSQL max_connections from ${max} to 600"
  psql -h 127.0.0.1 -U postgres -qc "alter system set max_connections = 600"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main restart
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  max=$(psql -h 127.0.0.1 -U postgres -tAc "show max_connections")
fi
echo "PostgreSQL up (max_connections=${max}); RabbitMQ up; Redis up"
