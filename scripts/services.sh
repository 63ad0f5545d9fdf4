#!/usr/bin/env bash
# Start PostgreSQL and RabbitMQ if they are down and create the test database.
# Commands are the machine's own (see the env skill's python-svc page).
set -euo pipefail

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

db=hub_test
if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='${db}'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -qc "create database ${db}"
fi
# The reservation concurrency test opens 200 connections at once: make room for them.
max=$(psql -h 127.0.0.1 -U postgres -tAc "show max_connections")
if [ "${max}" -lt 300 ]; then
  echo "raising PostgreSQL max_connections from ${max} to 300"
  psql -h 127.0.0.1 -U postgres -qc "alter system set max_connections = 300"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main restart
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  max=$(psql -h 127.0.0.1 -U postgres -tAc "show max_connections")
fi
echo "PostgreSQL up (max_connections=${max}); RabbitMQ up"
