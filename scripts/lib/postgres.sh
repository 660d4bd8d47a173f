# A throwaway PostgreSQL in a directory of its own: `pg_start DIR PORT` initialises and starts it
# (as the `postgres` user when run as root: PostgreSQL refuses root), `pg_stop DIR` stops it.
# Its binaries are where `pg_config --bindir` says (Debian keeps them off PATH).

pg_run() {
  local program=$1; shift
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$(pg_config --bindir)/$program" "$@"
  else
    "$(pg_config --bindir)/$program" "$@"
  fi
}

pg_start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chmod 755 "$(dirname "$dir")"; chown -R postgres "$dir"; fi
  [ -f "$dir/data/PG_VERSION" ] || pg_run initdb -D "$dir/data" -A trust -U postgres --no-sync >/dev/null
  pg_run pg_ctl -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
}

pg_stop() {
  pg_run pg_ctl -D "$1/data" -m fast -w stop >/dev/null 2>&1 || true
}
