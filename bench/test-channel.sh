# Sourced by the benchmarks: test_channel DIR NAME writes DIR/channel.yaml for a generated channel
# (25 fps 720x576 16:9, air hours 08:00-12:00, media/filler.mp4 as slate, filler and break, the
# same 2.4 Mbit/s output as the sample channel) and makes DIR/weeks and DIR/media.
test_channel() {
  local dir=$1 name=$2
  mkdir -p "$dir/weeks" "$dir/media"
  cat > "$dir/channel.yaml" <<YAML
id: ${name,,}.example.cn
name: ${name,,}
short_name: $name
timezone: Asia/Shanghai
broadcast_day_start: "06:00"
video: { width: 720, height: 576, fps: "25", aspect: "16:9" }
air_hours: [{ from: "08:00", to: "12:00" }]
break: { duration: 10m, media: media/filler.mp4 }
slate: media/filler.mp4
filler: media/filler.mp4
output: { service_name: $name, provider_name: bench, program_number: 1, video_kbps: 1800, audio_kbps: 128, mux_kbps: 2400 }
subjects: [语文]
YAML
}
