#!/usr/bin/env bash
# Side by side on loopback: `airclass serve` against Debian's nginx serving the same published
# export, measured with wrk for the day JSON and the XMLTV file. Prints requests/s, p99 latency
# and the ratio airclass/nginx. Needs: nginx-light wrk (apt). Usage: bench/serve-vs-nginx.sh [secs]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
for p in nginx-light wrk; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || { echo "apt-get install $p first" >&2; exit 1; }; done
cargo build --release --locked -q
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/airclass publish schedules/cetv4 --out "$work/export" > /dev/null
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { application/json json; application/xml xml; text/calendar ics; text/html html; }
  sendfile on;
  etag on;
  gzip_static on;
  gzip_vary on;
  server { listen 127.0.0.1:18481; root $work/export; add_header Access-Control-Allow-Origin *; }
}
CONF
nginx -c "$work/nginx.conf"
target/release/airclass serve "$work/export" --bind 127.0.0.1:18482 > /dev/null & echo $! > "$work/airclass.pid"
sleep 1
run() { # server port path [header] -> "rps p99ms"
  wrk -t2 -c64 -d"${secs}s" --latency ${4:+-H "$4"} "http://127.0.0.1:$2$3" > "$work/out" 2>&1
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/out")
  p99=$(awk '$1=="99%" {print $2}' "$work/out")
  echo "$rps $p99"
}
printf "%-10s %-50s %12s %10s\n" server "path (encoding)" "req/s" "p99"
for case in "/cetv4.example.cn/latest/days/2020-02-17.json|" "/cetv4.example.cn/latest/xmltv.xml|" "/cetv4.example.cn/latest/xmltv.xml|Accept-Encoding: gzip"; do
  path=${case%%|*}; hdr=${case#*|}
  enc=identity; [ -n "$hdr" ] && enc=gzip
  label="$path ($enc)"
  read -r n_rps n_p99 < <(run nginx 18481 "$path" "$hdr")
  read -r a_rps a_p99 < <(run airclass 18482 "$path" "$hdr")
  printf "%-10s %-50s %12s %10s\n" nginx "$label" "$n_rps" "$n_p99" airclass "$label" "$a_rps" "$a_p99"
  awk -v a="$a_rps" -v n="$n_rps" -v p="$label" 'BEGIN { printf "ratio airclass/nginx throughput, %s: %.2f\n", p, a / n }'
done
