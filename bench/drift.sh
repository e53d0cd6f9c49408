#!/usr/bin/env bash
# Timing of real-time playout: `airclass air` to UDP for N minutes of a generated test channel
# whose programmes start every 30 s, white and black in turn (so every
# start is a clear scene cut), with `--shift` mapping the wall clock to 07:59:55. A receiver
# stamps each datagram with its kernel arrival time (SO_TIMESTAMPNS) and keeps the stream. Then:
# - the PCR-vs-arrival line over the whole capture: its slope in ppm (0: the stream's clock runs at
#   the wall clock's rate), the spread around it, and how the earliest arrivals moved from the
#   first minute to the last;
# - each item start that the as-run log reports, found as a scene cut in the captured pictures
#   (ffmpeg scene detection), and its offset from the wall-clock plan (schedule time - shift) in
#   frames, twice: when the cut's first packet arrived, and when a receiver locked to the PCR
#   shows it (PTS through the PCR/arrival line). Drift is the change of offset from the first item
#   start to the last; the goal is 0 frames.
# Needs: ffmpeg (apt). Usage: bench/drift.sh [minutes, default 30]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
dpkg-query -W -f='${Status}' ffmpeg 2>/dev/null | grep -q "install ok installed" || { echo "apt-get install ffmpeg first" >&2; exit 1; }
cargo build --release --locked -q
work=$(mktemp -d)
trap 'kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
ch=$work/ch
. bench/test-channel.sh
test_channel "$ch" DRIFT
colours=(white black)  # alternating: every start is a cut of most of the luma range
for c in "${colours[@]}" purple; do
  ffmpeg -v error -y -f lavfi -i "color=c=$c:s=720x576:r=25" -f lavfi -i sine=f=440:sample_rate=48000 -t 30 \
    -pix_fmt yuv420p -c:v libx264 -preset ultrafast -c:a aac "$ch/media/$c.mp4"
done
mv "$ch/media/purple.mp4" "$ch/media/filler.mp4"
/usr/bin/python3 - "$minutes" "${colours[@]}" > "$ch/weeks/2020-W08.yaml" <<'PY'
import sys
minutes, colours = int(sys.argv[1]), sys.argv[2:]
print("week: 2020-W08\nstart: 2020-02-17\ndays:\n  mon:\n    pinned:")
for i in range(minutes * 2 + 2):
    s = 8 * 3600 + 30 * i
    print(f'      - {{ id: p{i}, at: "{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}", title: p{i}, '
          f'media: media/{colours[i % len(colours)]}.mp4, duration: 30s }}')
PY
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secs=$((minutes * 60 + 5))
# Receiver: the stream to capture.ts, "arrival_ns length" per datagram (binary) to arrivals.
/usr/bin/python3 - "$port" "$work" "$((secs + 15))" <<'PY' & echo $! > "$work/receiver.pid"
import socket, struct, sys, time
port, work, limit = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
SO_TIMESTAMPNS = 35
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
s.bind(("127.0.0.1", port))
s.settimeout(3)
end, started = time.time() + limit, False
with open(f"{work}/capture.ts", "wb") as ts, open(f"{work}/arrivals", "wb") as arr:
    while time.time() < end:
        try:
            data, anc, _, _ = s.recvmsg(2048, 64)
        except socket.timeout:
            if started:
                break  # the sender has stopped
            continue
        started = True
        sec, ns = struct.unpack("qq", next(d for lvl, t, d in anc if t == SO_TIMESTAMPNS)[:16])
        ts.write(data)
        arr.write(struct.pack("<qI", sec * 1_000_000_000 + ns, len(data)))
PY
sched=$(date -d "2020-02-17 07:59:55 +0800" +%s)
shift_s=$((sched - $(date +%s)))
target/release/airclass air "$ch" --output "udp://127.0.0.1:$port" --shift "$shift_s" --for "$secs" \
  --as-run-dir "$work/as-run" > "$work/air.log" 2>&1 || { cat "$work/air.log" >&2; exit 1; }
wait "$(cat "$work/receiver.pid")"
rm "$work/receiver.pid"
# Scene cuts: the PTS (90 kHz) of each picture that differs from the one before.
ffmpeg -nostdin -copyts -i "$work/capture.ts" -an -vf "select='gt(scene,0.3)',showinfo" -f null - 2>&1 \
  | sed -n 's/.*Parsed_showinfo.* pts: *\([0-9]*\).*/\1/p' > "$work/cuts"
/usr/bin/python3 - "$work" "$shift_s" <<'PY'
import datetime as dt, glob, json, mmap, struct, sys
work, shift = sys.argv[1], int(sys.argv[2])
FPS = 25
capture = open(f"{work}/capture.ts", "rb")
ts = mmap.mmap(capture.fileno(), 0, access=mmap.ACCESS_READ)
raw = open(f"{work}/arrivals", "rb").read()
pcr, first_packet = [], {}  # (PCR s, arrival s); video PTS -> arrival s of its first packet
off = 0
for i in range(0, len(raw), 12):
    ns, length = struct.unpack_from("<qI", raw, i)
    t = ns / 1e9
    for p in range(off, off + length - 187, 188):
        pid, afc, body = (ts[p + 1] & 0x1F) << 8 | ts[p + 2], ts[p + 3] >> 4 & 3, p + 4
        if afc & 2:
            if ts[p + 4] and ts[p + 5] & 0x10:
                b = ts[p + 6 : p + 12]
                base = b[0] << 25 | b[1] << 17 | b[2] << 9 | b[3] << 1 | b[4] >> 7
                pcr.append(((base * 300 + ((b[4] & 1) << 8 | b[5])) / 27e6, t))
            body += 1 + ts[p + 4]
        if pid == 256 and ts[p + 1] & 0x40 and afc & 1 and ts[body : body + 3] == b"\0\0\1" and ts[body + 7] & 0x80:
            b = ts[body + 9 : body + 14]
            first_packet.setdefault((b[0] >> 1 & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1, t)
    off += length
# Least squares arrival = a + k * PCR (times relative to the first PCR, so the sums stay exact).
x0, y0 = pcr[0]
xs, ys = [x - x0 for x, _ in pcr], [y - y0 for _, y in pcr]
n, sx, sy = len(xs), sum(xs), sum(ys)
k = (n * sum(x * y for x, y in zip(xs, ys)) - sx * sy) / (n * sum(x * x for x in xs) - sx * sx)
a = (sy - k * sx) / n
dev = sorted(y - a - k * x for x, y in zip(xs, ys))
# Packets leave late, never early: the earliest arrival in a minute is the steady edge.
edge = lambda lo, hi: min(y - x for x, y in zip(xs, ys) if lo <= x < hi)
shown = lambda pts: y0 + a + k * (pts / 90000 - x0)
print(f"capture: {len(first_packet)} pictures, {n} PCRs over {xs[-1]:.0f} s")
print(f"PCR vs arrival: slope {(k - 1) * 1e6:+.2f} ppm; deviation from the line p1 {dev[n // 100] * 1000:+.1f} ms, "
      f"p99 {dev[n * 99 // 100] * 1000:+.1f} ms, max {dev[-1] * 1000:+.1f} ms")
print(f"earliest arrival minus PCR, last minute vs first: {(edge(xs[-1] - 60, xs[-1] + 1) - edge(0, 60)) * 1000:+.2f} ms")
# Planned item starts (wall clock) from the as-run log; each matched to the nearest cut.
starts = []
for line in open(glob.glob(f"{work}/as-run/*")[0]):
    e = json.loads(line)
    if e["event"] == "start":
        air = dt.datetime.fromisoformat(e["air_time"]).timestamp()
        starts.append((air + (e["planned_frame"] - e["actual_frame"]) / FPS - shift, e["item"]))
cuts = [int(c) for c in open(f"{work}/cuts")]
print(f"{'item':<28} {'planned (UTC)':<24} {'arrival - plan':>15} {'shown - plan':>13}  (frames)")
offsets = []
for plan, item in starts:
    pts = min(cuts, key=lambda c: abs(shown(c) - plan), default=None)
    if pts is None or abs(shown(pts) - plan) > 2:
        print(f"{item:<28} no scene cut within 2 s of the plan")
        continue
    arr, disp = (first_packet[pts] - plan) * FPS, (shown(pts) - plan) * FPS
    offsets.append((arr, disp))
    when = dt.datetime.fromtimestamp(plan, dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    print(f"{item:<28} {when:<24} {arr:>15.2f} {disp:>13.2f}")
if offsets:
    print(f"drift from the first item start to the last ({len(offsets)} starts): arrival "
          f"{offsets[-1][0] - offsets[0][0]:+.2f} frames, shown {offsets[-1][1] - offsets[0][1]:+.2f} frames (goal 0)")
PY
