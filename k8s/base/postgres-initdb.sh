#!/usr/bin/env bash
# Runs once, when the postgres image initialises an empty data directory.
# Creates the role the services log in as: it may create databases (each
# service creates and then owns popug_auth, popug_tracker, popug_billing or
# popug_analytics at start) but it is not a superuser.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  --set=role_password="$POPUG_ROLE_PASSWORD" <<'SQL'
CREATE ROLE popug LOGIN CREATEDB PASSWORD :'role_password';
SQL
