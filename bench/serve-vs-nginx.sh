#!/usr/bin/env bash
# Side by side on loopback: `airclass serve` against Debian's nginx serving the same published
# export, measured with wrk for the day JSON and the XMLTV file (identity and gzip). A second
# nginx with sendfile off copies each response through user space as airclass does.
# Rounds alternate between the servers so that other load on the machine hits all of them alike;
# the median round is reported: requests/s, p99 latency, and the server's own CPU time per request
# (user + system, from /proc), which does not depend on what else runs.
# Needs: nginx-light wrk (apt). Usage: bench/serve-vs-nginx.sh [secs-per-round] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
rounds=${2:-3}
for p in nginx-light wrk; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || { echo "apt-get install $p first" >&2; exit 1; }; done
cargo build --release --locked -q
work=$(mktemp -d)
chmod 755 "$work"  # nginx's workers run as nobody: they must be able to read the export
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/airclass publish schedules/cetv4 --out "$work/export" > /dev/null 2>&1
nginx_conf() { # port sendfile name
cat <<CONF
worker_processes auto;  # Debian's default: one worker per core, as airclass runs one thread per core
pid $work/$3.pid;
error_log $work/$3-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  types { application/json json; application/xml xml; text/calendar ics; text/html html; }
  sendfile $2;
  etag on;
  gzip_static on;
  gzip_vary on;
  server { listen 127.0.0.1:$1; root $work/export; add_header Access-Control-Allow-Origin *; }
}
CONF
}
nginx_conf 18481 on nginx > "$work/nginx.conf" && nginx -c "$work/nginx.conf"
nginx_conf 18483 off nginx-copy > "$work/nginx-copy.conf" && nginx -c "$work/nginx-copy.conf"
target/release/airclass serve "$work/export" --bind 127.0.0.1:18482 > /dev/null & echo $! > "$work/airclass.pid"
sleep 1
# Each server answers each path with exactly the published bytes (decompressed where asked).
for p in 18481 18483 18482; do
  for f in days/2020-02-17.json xmltv.xml; do
    curl -sf --compressed "http://127.0.0.1:$p/cetv4.example.cn/latest/$f" \
      | cmp -s - "$work/export/cetv4.example.cn/latest/$f" || { echo "port $p does not serve $f correctly" >&2; exit 1; }
  done
done
workers() { pgrep -d' ' -P "$(cat "$work/$1.pid")"; }
declare -A port=([nginx]=18481 [nginx-copy]=18483 [airclass]=18482)
declare -A pid=([nginx]=$(workers nginx) [nginx-copy]=$(workers nginx-copy) [airclass]=$(cat "$work/airclass.pid"))
ticks() { local p; for p in "$@"; do cat "/proc/$p/stat"; done | awk '{t += $14 + $15} END {print t}'; }
hz=$(getconf CLK_TCK)
round() { # server path [header] -> "rps p99ms cpu_us_per_request"
  local before after
  before=$(ticks ${pid[$1]})
  wrk -t2 -c64 -d"${secs}s" --latency ${3:+-H "$3"} "http://127.0.0.1:${port[$1]}$2" > "$work/out" 2>&1
  after=$(ticks ${pid[$1]})
  # Every answer must have been a 200 with the file: an error page is not a served request.
  if grep -q -e "Non-2xx" -e "Socket errors" "$work/out"; then
    echo "$1 $2: wrk saw errors:" >&2; cat "$work/out" >&2; exit 1
  fi
  awk -v t=$((after - before)) -v hz="$hz" -v s="$secs" '
    /Requests\/sec/ { rps = $2 }
    $1 == "99%" { p = $2; if (p ~ /us$/) p = p / 1000; else if (p ~ /ms$/) p = p + 0; else p = p * 1000 }
    END { printf "%.0f %.2f %.1f\n", rps, p, t / hz * 1e6 / (rps * s) }' "$work/out"
}
median() { sort -n | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'; }
printf "%-10s %-48s %9s %8s %11s\n" server "path (encoding)" "req/s" "p99 ms" "cpu us/req"
for case in "/cetv4.example.cn/latest/days/2020-02-17.json|" "/cetv4.example.cn/latest/xmltv.xml|" "/cetv4.example.cn/latest/xmltv.xml|Accept-Encoding: gzip"; do
  path=${case%%|*}; hdr=${case#*|}
  enc=identity; [ -n "$hdr" ] && enc=gzip
  for s in nginx nginx-copy airclass; do : > "$work/$s.rounds"; done
  for _ in $(seq "$rounds"); do
    for s in nginx nginx-copy airclass; do round "$s" "$path" "$hdr" >> "$work/$s.rounds"; done
  done
  declare -A rps=() p99=() cpu=()
  for s in nginx nginx-copy airclass; do
    rps[$s]=$(cut -d' ' -f1 "$work/$s.rounds" | median)
    p99[$s]=$(cut -d' ' -f2 "$work/$s.rounds" | median)
    cpu[$s]=$(cut -d' ' -f3 "$work/$s.rounds" | median)
    printf "%-10s %-48s %9s %8s %11s\n" "$s" "${path##*/} ($enc)" "${rps[$s]}" "${p99[$s]}" "${cpu[$s]}"
  done
  awk -v a="${rps[airclass]}" -v n="${rps[nginx]}" -v c="${rps[nginx-copy]}" \
      -v ac="${cpu[airclass]}" -v nc="${cpu[nginx]}" -v p="${path##*/} ($enc)" 'BEGIN {
    printf "ratio airclass/nginx, %s: throughput %.2f (vs nginx without sendfile %.2f); CPU per request %.2f\n", p, a / n, a / c, ac / nc }'
done
