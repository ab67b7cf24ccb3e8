#!/bin/sh
# One database and one role per service (each owns its database and sees no other), created by the
# postgres image on the first start of an empty volume; passwords from the Compose environment.
set -eu
for db in gateway customer ticket sla analytics notify kb; do
  password_var="$(echo "$db" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
  password="$(printenv "$password_var")"
  psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres \
       -v role="$db" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
