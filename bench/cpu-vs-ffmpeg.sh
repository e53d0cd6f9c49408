#!/usr/bin/env bash
# Cost of playout, side by side: `airclass render` of a window of the sample day against the
# ffmpeg command a user would write instead: the same clips (the window's items in order, each cut
# to its slot), decoded, conformed (25 fps, 720x576 16:9) and concatenated with filter_complex,
# encoded as airclass encodes (x264 veryfast zerolatency, CBR 1800 kbit/s with NAL HRD, 2 s GOP,
# no B-frames, 2 threads; AAC 128 kbit/s 48 kHz stereo) into MPEG-TS at a constant 2400 kbit/s.
# Reports, per round, user+system CPU seconds per hour of output, the ratio airclass/ffmpeg and
# each render speed as a multiple of real time; then the median ratio (goal: <= 1.0), and
# ffprobe's view of both outputs. CPU time on a shared machine varies by about 10% from run to
# run, so one run pair proves little: ROUNDS (default 3) sets how many pairs.
# Needs: ffmpeg (apt). Usage: [ROUNDS=N] bench/cpu-vs-ffmpeg.sh [from, default 08:20] [to, default 08:40]
set -euo pipefail
cd "$(dirname "$0")/.."
from=${1:-08:20}
to=${2:-08:40}
rounds=${ROUNDS:-3}
dpkg-query -W -f='${Status}' ffmpeg 2>/dev/null | grep -q "install ok installed" || { echo "apt-get install ffmpeg first" >&2; exit 1; }
cargo build --release --locked -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ch=schedules/cetv4
target/release/airclass media demo "$ch" --date 2020-02-17 --only > /dev/null
target/release/airclass build "$ch" --date 2020-02-17 --format json > "$work/rundown.json"
# The ffmpeg command for the window's items.
/usr/bin/python3 - "$work/rundown.json" "$ch" "$from" "$to" "$work/ffmpeg.ts" > "$work/ffmpeg.args" <<'PY'
import datetime as dt, json, subprocess, sys
rundown, ch, frm, to, out = sys.argv[1:]
items = json.load(open(rundown))["items"]
tz = dt.datetime.fromisoformat(items[0]["start"]).tzinfo
day = dt.date.fromisoformat(json.load(open(rundown))["date"])
at = lambda hm: dt.datetime.combine(day, dt.time.fromisoformat(hm), tz)
ws, we = at(frm), at(to)
args, vf, n = [], [], 0
for it in items:
    s, e = dt.datetime.fromisoformat(it["start"]), dt.datetime.fromisoformat(it["end"])
    if e <= ws or s >= we:
        continue
    path = f"{ch}/{it['media']}"
    probe = lambda q: subprocess.run(["ffprobe", "-v", "error", *q, "-of", "csv=p=0", path], capture_output=True, text=True).stdout.split()
    offset, dur = (max(ws, s) - s).total_seconds(), (min(we, e) - max(ws, s)).total_seconds()
    if it["kind"] in ("break", "filler"):  # looping kinds
        offset %= float(probe(["-show_entries", "format=duration"])[0])
        args += ["-stream_loop", "-1"]
    args += ["-ss", f"{offset}", "-t", f"{dur}", "-i", path]
    vf.append(f"[{n}:v]fps=25,scale=720:576,setsar=64/45,format=yuv420p[v{n}]")
    if probe(["-select_streams", "a", "-show_entries", "stream=index"]):
        vf.append(f"[{n}:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[a{n}]")
    else:
        vf.append(f"anullsrc=r=48000:cl=stereo,atrim=duration={dur}[a{n}]")
    n += 1
vf.append("".join(f"[v{i}][a{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=1[v][a]")
args += ["-filter_complex", ";".join(vf), "-map", "[v]", "-map", "[a]",
  "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "main", "-threads", "2",
  "-b:v", "1800k", "-minrate", "1800k", "-maxrate", "1800k", "-bufsize", "1800k", "-g", "50", "-bf", "0",
  "-x264-params", "nal-hrd=cbr:force-cfr=1",
  "-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "2",
  "-f", "mpegts", "-muxrate", "2400k", "-pcr_period", "20", "-pat_period", "0.1", "-sdt_period", "0.1",
  "-mpegts_pmt_start_pid", "32", "-mpegts_start_pid", "256", out]
print("\0".join(args), end="")
PY
# Rounds alternate which command runs first, so a machine that gets busier or quieter during the
# run weighs on both alike; each round's ratio compares two runs made minutes apart.
# Each run: "user sys elapsed" seconds.
run_airclass() {
  /usr/bin/time -f "%U %S %e" -o "$work/airclass.time.$1" target/release/airclass render "$ch" --date 2020-02-17 \
    --from "$from" --to "$to" --out "$work/airclass.ts" --as-run-dir "$work/as-run" > /dev/null
}
run_ffmpeg() {
  xargs -0 -a "$work/ffmpeg.args" /usr/bin/time -f "%U %S %e" -o "$work/ffmpeg.time.$1" ffmpeg -v error -nostdin -y
}
for round in $(seq "$rounds"); do
  if (( round % 2 )); then run_airclass "$round"; run_ffmpeg "$round"; else run_ffmpeg "$round"; run_airclass "$round"; fi
done
window=$(( $(date -d "2020-02-17 $to" +%s) - $(date -d "2020-02-17 $from" +%s) ))
echo "Outputs (ffprobe):"
for r in airclass ffmpeg; do
  v=$(ffprobe -v error -select_streams v -show_entries stream=codec_name,profile,width,height,sample_aspect_ratio,r_frame_rate,nb_read_frames -count_frames -of csv=p=0 "$work/$r.ts" | head -1)
  a=$(ffprobe -v error -select_streams a -show_entries stream=codec_name,sample_rate,channels,bit_rate -of csv=p=0 "$work/$r.ts" | head -1)
  secs=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$work/$r.ts" | head -1)
  awk -v r="$r" -v v="$v" -v a="$a" -v d="$secs" -v b="$(stat -c %s "$work/$r.ts")" 'BEGIN {
    printf "  %-9s video %s; audio %s; %.2f s; %.1f kbit/s\n", r, v, a, d, b * 8 / d / 1000 }'
done
echo "CPU (user+system) per hour of output, and render speed, for $from-$to ($window s), $rounds rounds:"
printf "%6s %15s %15s %8s %10s %10s\n" round "airclass CPU s/h" "ffmpeg CPU s/h" ratio "airclass" "ffmpeg"
for round in $(seq "$rounds"); do
  read -r au as ae < "$work/airclass.time.$round"
  read -r fu fs fe < "$work/ffmpeg.time.$round"
  awk -v n="$round" -v au="$au" -v as="$as" -v ae="$ae" -v fu="$fu" -v fs="$fs" -v fe="$fe" -v w="$window" 'BEGIN {
    a = (au + as) * 3600 / w; f = (fu + fs) * 3600 / w
    printf "%6d %15.1f %15.1f %8.3f %9.1fx %9.1fx\n", n, a, f, a / f, w / ae, w / fe }'
done | tee "$work/rounds"
sort -n -k4 "$work/rounds" | awk '{ r[NR] = $4 } END {
  m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2
  printf "ratio airclass/ffmpeg, CPU seconds per hour of output: median %.3f, range %.3f-%.3f over %d rounds (goal <= 1.0)\n", m, r[1], r[NR], NR }'
