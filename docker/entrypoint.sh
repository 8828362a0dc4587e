#!/bin/sh
# Container entry point: bring the database schema up to date, then run the command
# (by default `manage.py serve --host 0.0.0.0`). Migrations are idempotent; compose starts
# the second Tabcast only once the first is healthy, so two never migrate at once.
set -eu
python manage.py migrate --noinput
exec "$@"
