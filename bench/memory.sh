#!/usr/bin/env bash
# Memory over many item changes: `airclass render` of a test day made of 5-frame programmes
# pinned every second with filler between them (two item changes a second), played from four
# clips of different formats (H.264/AAC 720x576, MPEG-2/MP2 mono 44.1 kHz 1280x720 30 fps in
# MPEG-TS, H.264 without audio 640x480, the looping filler), so a decoder opens and closes at
# every change. The process's VmRSS is sampled from /proc while it renders and tied to the item
# changes so far (the `start` lines of the as-run log). Reports RSS at change 100 and at the last
# change, and the growth between them; the goal is under 10 MB.
# (Pinned items, because the builder's placement of scheduled lessons grows cubically with their
# number: 10,000 lessons take minutes to place.)
# Needs: ffmpeg (apt). Usage: bench/memory.sh [changes, default 10000]
set -euo pipefail
cd "$(dirname "$0")/.."
changes=${1:-10000}
dpkg-query -W -f='${Status}' ffmpeg 2>/dev/null | grep -q "install ok installed" || { echo "apt-get install ffmpeg first" >&2; exit 1; }
cargo build --release --locked -q
work=$(mktemp -d)
trap 'kill "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
ch=$work/ch
. bench/test-channel.sh
test_channel "$ch" BENCH
clip() { local out=$1; shift; ffmpeg -v error -y "$@" -t 3 -pix_fmt yuv420p "$out"; }
clip "$ch/media/a.mp4" -f lavfi -i testsrc2=s=720x576:r=25 -f lavfi -i sine=f=440:sample_rate=48000 -c:v libx264 -preset ultrafast -c:a aac
clip "$ch/media/b.ts" -f lavfi -i testsrc=s=1280x720:r=30 -f lavfi -i sine=f=330:sample_rate=44100 -c:v mpeg2video -c:a mp2 -ac 1
clip "$ch/media/c.mp4" -f lavfi -i smptebars=s=640x480:r=25 -c:v libx264 -preset ultrafast
clip "$ch/media/filler.mp4" -f lavfi -i color=c=purple:s=720x576:r=25 -f lavfi -i sine=f=660:sample_rate=48000 -c:v libx264 -preset ultrafast -c:a aac
secs=$(( (changes + 1) / 2 ))
/usr/bin/python3 - "$secs" > "$ch/weeks/2020-W08.yaml" <<'PY'
import sys
print("week: 2020-W08\nstart: 2020-02-17\ndays:\n  mon:\n    pinned:")
for i in range(int(sys.argv[1])):
    s = 8 * 3600 + i
    media = ["a.mp4", "b.ts", "c.mp4"][i % 3]
    print(f'      - {{ id: p{i}, at: "{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}", title: p{i}, media: media/{media}, duration: "00:00:00:05" }}')
PY
end=$(( 8 * 3600 + secs ))
to=$(printf "%02d:%02d:%02d" $((end / 3600)) $((end / 60 % 60)) $((end % 60)))
target/release/airclass render "$ch" --date 2020-02-17 --from 08:00 --to "$to" --out "$work/out.ts" \
  --as-run-dir "$work/as-run" > "$work/render.log" 2>&1 & echo $! > "$work/pid"
# Sample: one "changes rss_kb" line each 0.2 s while the render runs.
/usr/bin/python3 - "$(cat "$work/pid")" "$work/as-run" > "$work/samples" <<'PY'
import glob, os, sys, time
pid, asrun = sys.argv[1], sys.argv[2]
changes, pos = 0, 0
while True:
    try:
        rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
    except (FileNotFoundError, StopIteration):
        break
    for path in glob.glob(f"{asrun}/*"):  # one broadcast day: one file
        with open(path, "rb") as f:
            f.seek(pos)
            data = f.read()
        done = data.rfind(b"\n") + 1
        changes += data[:done].count(b'"event":"start"')
        pos += done
    print(changes, rss, flush=True)
    time.sleep(0.2)
PY
wait "$(cat "$work/pid")" || { cat "$work/render.log" >&2; exit 1; }
tail -1 "$work/render.log"
/usr/bin/python3 - "$work/samples" <<'PY'
import statistics, sys
s = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
last = max(c for c, _ in s)
# RSS swings by tens of MB with the raw video queued for the encoder, so each mark is the median
# of the samples over the 100 changes from it (up to it, for the last).
def at(n):
    lo, hi = (n - 100, n) if n == last else (n, n + 100)
    w = [r for c, r in s if lo <= c <= hi]
    return statistics.median(w) / 1024, min(w) / 1024, max(w) / 1024
print(f"{'changes':>8} {'RSS MB (median)':>16} {'min':>7} {'max':>7}")
for n in sorted({100, 1000, last // 4, last // 2, 3 * last // 4, last}):
    if 100 <= n <= last:
        print(f"{n:>8} {at(n)[0]:>16.1f} {at(n)[1]:>7.1f} {at(n)[2]:>7.1f}")
xs = [(c, r / 1024) for c, r in s if c >= 100]
slope = statistics.linear_regression(*zip(*xs)).slope
print(f"peak RSS {max(r for _, r in s) / 1024:.1f} MB; least-squares slope over changes 100..{last}: {slope * 1024:.2f} KB per change")
print(f"growth from change 100 to {last}: {at(last)[0] - at(100)[0]:.1f} MB (goal < 10 MB)")
PY
