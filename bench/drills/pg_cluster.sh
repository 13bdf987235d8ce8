# A throw-away Postgres cluster for the drills that stop and start Postgres
# (postgres-restart.sh, cache-outage.sh). Source it before lib.sh: it sets PGURL.
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# own_pg_cluster PORT: initdb + start on PORT; lib.sh's drill_cleanup stops and removes it.
own_pg_cluster() {
  PGDATA_DIR=$(mktemp -d /tmp/licensd-drill-pg.XXXXXX)
  chown postgres "$PGDATA_DIR" 2>/dev/null || true
  as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR/data" -A trust -U postgres >/dev/null
  PG_START="$PG_BIN/pg_ctl -D $PGDATA_DIR/data -o '-p $1 -k /tmp -c max_connections=100' -l $PGDATA_DIR/log -w start"
  PG_STOP="$PG_BIN/pg_ctl -D $PGDATA_DIR/data -m fast -w stop"
  pg_cleanup() { as_pg bash -c "$PG_STOP" >/dev/null 2>&1 || true; rm -rf "$PGDATA_DIR"; }
  # Whatever fails from here on, the throw-away cluster goes with it.
  trap pg_cleanup EXIT
  as_pg bash -c "$PG_START" >/dev/null
  export PGURL=postgres://postgres@127.0.0.1:$1
}

# postgres_outage AFTER SECONDS: Postgres stops AFTER seconds from now, for SECONDS.
postgres_outage() {
  sleep "$1"
  echo "stopping Postgres at +$1 s for $2s"
  as_pg bash -c "$PG_STOP" >/dev/null
  sleep "$2"
  as_pg bash -c "$PG_START" >/dev/null
  echo "Postgres back at +$(($1 + $2)) s"
}

# stream_count AWK: lines of the drill's request stream that match.
stream_count() { awk "$1" "$DRILL_WORK/stream" | wc -l; }
