//! The playout engine end to end on the sample day's generated media: frame-exact renders
//! checked with ffprobe/ffmpeg, odd media, missing media, and real-time UDP output.

mod common;
use common::ts;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

const FPS: i64 = 25;

/// Frame of the broadcast day for a local time on 2020-02-17 (day starts 06:00).
fn frame_of(hms: &str) -> i64 {
    let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    ((p[0] - 6) * 3600 + p[1] * 60 + p.get(2).copied().unwrap_or(0)) * FPS
}

fn hms(frame: i64) -> String {
    let s = frame / FPS + 6 * 3600;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Render [from, to) of 2020-02-17; returns the output file and the as-run lines.
fn render(dir: &Path, from: &str, to: &str) -> (std::path::PathBuf, Vec<Value>) {
    render_day(dir, "2020-02-17", from, to)
}

/// Render [from, to) of broadcast day `date`; returns the output file and that day's as-run
/// lines (a later day's are beside them in `DIR/asrun-FROM/`).
fn render_day(dir: &Path, date: &str, from: &str, to: &str) -> (std::path::PathBuf, Vec<Value>) {
    let out = dir.join(format!(
        "{date}-{}-{}.ts",
        from.replace(':', ""),
        to.replace(':', "")
    ));
    let asrun = dir.join(format!("asrun-{}", from.replace(':', "")));
    let o = airclass(&[
        "render",
        sample().to_str().unwrap(),
        "--date",
        date,
        "--from",
        from,
        "--to",
        to,
        "--out",
        out.to_str().unwrap(),
        "--as-run-dir",
        asrun.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "render failed: {}", text(&o));
    (out, as_run(&asrun, date))
}

fn as_run(dir: &Path, date: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join(format!("cetv4.example.cn-{date}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Item boundaries of the rundown inside (from, to), as frames from `from`.
fn planned_cuts(rd: &Value, from: i64, to: i64) -> Vec<i64> {
    rd["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["start_frame"].as_i64().unwrap())
        .filter(|&s| s > from && s < to)
        .map(|s| s - from)
        .collect()
}

fn item<'a>(rd: &'a Value, id: &str) -> &'a Value {
    rd["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in rundown"))
}

#[test]
fn a_30_minute_render_is_frame_exact_with_every_cut_on_plan() {
    let _g = heavy();
    sample_media();
    let rd = rundown(&sample(), "2020-02-17");
    let tmp = tempfile::tempdir().unwrap();
    // 08:04:40-08:34:40 crosses the opening -> grade 1, grade 1 -> break, break -> grade 2 (a
    // 1280x720 30 fps file) boundaries.
    let (from, to) = (frame_of("08:04:40"), frame_of("08:34:40"));
    let (ts, asrun) = render(tmp.path(), &hms(from), &hms(to));
    let ts_s = ts.to_str().unwrap();

    let streams = ffprobe(&[
        "-show_entries",
        "stream=codec_type,codec_name,width,height,r_frame_rate,sample_rate,channels",
        "-of",
        "json",
        ts_s,
    ]);
    let streams: Value = serde_json::from_str(&streams).unwrap();
    let streams = streams["streams"].as_array().unwrap();
    let video: Vec<&Value> = streams
        .iter()
        .filter(|s| s["codec_type"] == "video")
        .collect();
    let audio: Vec<&Value> = streams
        .iter()
        .filter(|s| s["codec_type"] == "audio")
        .collect();
    assert_eq!(video.len(), 1);
    assert_eq!(audio.len(), 1);
    assert_eq!(
        (
            video[0]["codec_name"].as_str(),
            video[0]["width"].as_i64(),
            video[0]["height"].as_i64()
        ),
        (Some("h264"), Some(720), Some(576))
    );
    assert_eq!(video[0]["r_frame_rate"], "25/1");
    assert_eq!(
        (
            audio[0]["codec_name"].as_str(),
            audio[0]["sample_rate"].as_str(),
            audio[0]["channels"].as_i64()
        ),
        (Some("aac"), Some("48000"), Some(2))
    );

    let service = ffprobe(&[
        "-show_entries",
        "program_tags=service_name,service_provider",
        "-of",
        "default=nw=1",
        ts_s,
    ]);
    assert!(
        service.contains("service_name=CETV-4 同上一堂课"),
        "{service}"
    );

    // The layout downstream equipment is configured for: program 1, PMT on PID 32, video 256, audio 257.
    let layout = ffprobe(&[
        "-show_entries",
        "program=program_num,pmt_pid:program_stream=id",
        "-of",
        "compact",
        ts_s,
    ]);
    assert!(layout.contains("program_num=1|pmt_pid=32"), "{layout}");
    assert!(
        layout.contains("id=0x100") && layout.contains("id=0x101"),
        "{layout}"
    );

    let pts = video_pts(&ts);
    assert_eq!(pts.len() as i64, to - from, "video frames");
    assert!(
        pts.windows(2).all(|w| w[1] - w[0] == 3600),
        "every PTS step is 3600 ticks"
    );

    let expected = planned_cuts(&rd, from, to);
    assert_eq!(
        expected.len(),
        3,
        "the window should cross three boundaries"
    );
    assert_eq!(
        cuts(&ts),
        expected,
        "scene changes must fall exactly on the planned frames"
    );

    // Transport stream: the checker in tests/common/ts.rs, cross-checked with ffprobe's frame count.
    let rep = ts::check(&std::fs::read(&ts).unwrap());
    eprintln!("transport stream check: {rep:?}");
    assert_eq!(rep.continuity_errors, 0);
    assert!(
        rep.max_pcr_gap_ms <= 40.0,
        "PCR gap {} ms",
        rep.max_pcr_gap_ms
    );
    for (name, g) in [
        ("PAT", rep.max_pat_gap_ms),
        ("PMT", rep.max_pmt_gap_ms),
        ("SDT", rep.max_sdt_gap_ms),
    ] {
        assert!(g <= 500.0, "{name} gap {g} ms");
    }
    assert!(
        (rep.bitrate - 2_400_000.0).abs() / 2_400_000.0 < 0.001,
        "bitrate {}",
        rep.bitrate
    );
    assert!(
        rep.max_bitrate_deviation < 0.001,
        "bitrate varies by {}",
        rep.max_bitrate_deviation
    );
    assert_eq!(
        rep.unit_starts[&256] as i64,
        to - from,
        "one PES per video frame, as ffprobe counts"
    );

    // The as-run log agrees: every start at its planned frame.
    for e in asrun.iter().filter(|e| e["event"] == "start") {
        assert_eq!(e["planned_frame"], e["actual_frame"], "{e}");
    }
    assert!(
        asrun.iter().all(|e| e["event"] != "fault"),
        "no faults expected: {asrun:?}"
    );
}

/// Render a minute around each edge of an item's slot and check the cut lands on the edge.
fn edges(id: &str, check_inside: impl Fn(&Path, i64, &[Value])) {
    let _g = heavy();
    sample_media();
    let rd = rundown(&sample(), "2020-02-17");
    let it = item(&rd, id);
    let (start, end) = (
        it["start_frame"].as_i64().unwrap(),
        it["start_frame"].as_i64().unwrap() + it["duration_frames"].as_i64().unwrap(),
    );
    let tmp = tempfile::tempdir().unwrap();
    for (edge, inside_is_after) in [(start, true), (end, false)] {
        let (from, to) = (edge - 30 * FPS, edge + 30 * FPS);
        let (ts, asrun) = render(tmp.path(), &hms(from), &hms(to));
        assert_eq!(video_pts(&ts).len() as i64, to - from, "{id}: frames");
        assert_eq!(
            cuts(&ts),
            vec![30 * FPS],
            "{id}: the cut must be exactly on the slot edge at {}",
            hms(edge)
        );
        // A frame well inside the slot (seconds from the file start).
        let inside = if inside_is_after { 45 * FPS } else { 15 * FPS };
        check_inside(&ts, inside, &asrun);
    }
}

#[test]
fn an_odd_format_lesson_airs_for_exactly_its_slot() {
    // Grade 2's Monday lesson is 1280x720 at 30 fps; it is conformed to 720x576 at 25 fps.
    edges("2020-02-17-g2-mon-chinese", |ts, _, asrun| {
        let v = ffprobe(&[
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height,r_frame_rate",
            "-of",
            "csv=p=0",
            ts.to_str().unwrap(),
        ]);
        // ffprobe lists the stream once per program and once on its own.
        assert!(
            v.lines()
                .filter(|l| !l.is_empty())
                .all(|l| l == "720,576,25/1"),
            "{v}"
        );
        assert!(
            mean_volume(ts, 40.0, 15.0) > -40.0,
            "the lesson's tone is heard"
        );
        assert!(asrun.iter().all(|e| e["event"] != "fault"));
    });
}

#[test]
fn a_lesson_without_audio_airs_with_silence_for_exactly_its_slot() {
    edges("2020-02-17-g5-mon-chinese", |ts, inside, _| {
        let secs = inside as f64 / FPS as f64;
        assert!(
            mean_volume(ts, secs - 5.0, 10.0) < -80.0,
            "silence inside the no-audio lesson"
        );
        let other = if secs > 30.0 { 10.0 } else { 40.0 };
        assert!(
            mean_volume(ts, other, 10.0) > -40.0,
            "tone in the neighbouring item"
        );
    });
}

#[test]
fn missing_media_airs_slate_for_exactly_its_slot_and_is_logged() {
    let slate = sample().join("media/interstitials/slate.mp4");
    edges("2020-02-17-g12-mon-physics", |ts, inside, asrun| {
        let slate_luma = mean_luma(&slate, 0);
        let got = mean_luma(ts, inside);
        assert!(
            (got - slate_luma).abs() < 4.0,
            "slate picture inside the slot: {got} vs slate {slate_luma}"
        );
        assert!(
            mean_volume(ts, inside as f64 / FPS as f64 - 5.0, 10.0) < -80.0,
            "silence with the slate"
        );
        assert!(
            asrun
                .iter()
                .any(|e| e["event"] == "fault" && e["item"] == "2020-02-17-g12-mon-physics"),
            "the as-run log records the fault: {asrun:?}"
        );
    });
}

#[test]
fn air_to_udp_is_received_cleanly_for_two_minutes() {
    let _g = heavy();
    sample_media();
    let tmp = tempfile::tempdir().unwrap();
    let port = 15000 + (std::process::id() % 1000) as u16;
    let url = format!("udp://127.0.0.1:{port}");
    let rx = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostats",
            "-v",
            "error",
            "-i",
            &format!("{url}?timeout=20000000&fifo_size=1000000"),
            "-t",
            "110",
            "-f",
            "null",
            "-",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg");
    // A second UDP output read by the test itself: datagram sizes, pacing and the stream.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let own = format!("udp://127.0.0.1:{}", sock.local_addr().unwrap().port());
    sock.set_read_timeout(Some(std::time::Duration::from_secs(8)))
        .unwrap();
    let reader = std::thread::spawn(move || {
        let (mut sizes, mut times, mut stream) = (Vec::new(), Vec::new(), Vec::new());
        let mut buf = [0u8; 65536];
        while let Ok(n) = sock.recv(&mut buf) {
            sizes.push(n);
            times.push(std::time::Instant::now());
            stream.extend_from_slice(&buf[..n]);
        }
        (sizes, times, stream)
    });
    let file = tmp.path().join("air.ts");
    let asrun = tmp.path().join("asrun");
    let o = airclass(&[
        "air",
        sample().to_str().unwrap(),
        "--output",
        &url,
        "--output",
        &own,
        "--output",
        &format!("file:{}", file.display()),
        "--as-if",
        "2020-02-17 08:24:00",
        "--for",
        "120",
        "--as-run-dir",
        asrun.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "air failed: {}", text(&o));
    let rx = rx.wait_with_output().unwrap();
    let errors = String::from_utf8_lossy(&rx.stderr);
    assert!(rx.status.success(), "receiver failed: {errors}");
    assert!(
        errors.trim().is_empty(),
        "the receiver reported errors:\n{errors}"
    );
    let (sizes, times, stream) = reader.join().unwrap();
    assert!(sizes.iter().all(|&n| n == 1316), "7 packets per datagram");
    // Paced: once running (the first 3 s fill the encoder), no 100 ms window carries more than
    // twice its share of the 2.4 Mbit/s.
    let per_100ms = 2_400_000.0 / 8.0 / 1316.0 / 10.0;
    let settled = times
        .iter()
        .position(|t| t.duration_since(times[0]).as_secs() >= 3)
        .unwrap_or(0);
    let burst = (settled..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]).as_millis() < 100)
                .count()
        })
        .max()
        .unwrap_or(0);
    eprintln!(
        "UDP: {} datagrams, largest 100 ms burst {burst} (share {per_100ms:.1})",
        sizes.len()
    );
    assert!(
        (burst as f64) <= 2.0 * per_100ms,
        "bursty output: {burst} datagrams in 100 ms"
    );
    let rep = ts::check(&stream);
    eprintln!("UDP transport stream check: {rep:?}");
    assert_eq!(rep.continuity_errors, 0);
    assert!(
        rep.max_pcr_gap_ms <= 40.0
            && rep.max_pat_gap_ms <= 500.0
            && rep.max_pmt_gap_ms <= 500.0
            && rep.max_sdt_gap_ms <= 500.0,
        "{rep:?}"
    );
    assert!(rep.max_bitrate_deviation < 0.001, "{rep:?}");
    // The file output of the same run holds exactly the two minutes asked for.
    assert_eq!(video_pts(&file).len(), 120 * FPS as usize);
    // It joined grade 1's lesson in progress and cut to the break on the planned frame.
    let log = std::fs::read_to_string(asrun.join("cetv4.example.cn-2020-02-17.jsonl")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["event"], "join");
    let brk = lines
        .iter()
        .find(|e| e["event"] == "start" && e["kind"] == "break")
        .expect("the break started");
    assert_eq!(brk["planned_frame"], brk["actual_frame"]);
    let cut = brk["output_frame"].as_i64().unwrap();
    assert_eq!(
        cuts(&file),
        vec![cut],
        "the picture cuts where the engine started the break"
    );
}

/// Exactly `frames` video frames, each one frame's time after the last, continuity counters
/// intact.
fn continuous(ts: &Path, frames: usize) {
    let pts = video_pts(ts);
    assert_eq!(pts.len(), frames);
    assert!(
        pts.windows(2).all(|w| w[1] - w[0] == 3600),
        "continuous timestamps"
    );
    let rep = ts::check(&std::fs::read(ts).unwrap());
    assert_eq!(rep.continuity_errors, 0);
    assert_eq!(rep.unit_starts[&256], frames);
}

#[test]
fn a_render_across_the_broadcast_day_start_and_midnight_has_no_repeated_or_skipped_frame() {
    let _g = heavy();
    sample_media();
    let tmp = tempfile::tempdir().unwrap();
    // 05:59:50 belongs to broadcast day 2020-02-17 (it ends at 06:00 on the 18th).
    let (ts, asrun) = render(tmp.path(), "05:59:50", "06:00:10");
    continuous(&ts, 500);
    // Day 17 ends on its last frame and day 18 starts on frame 0, at output frame 250.
    let end = asrun
        .iter()
        .find(|e| e["event"] == "end" && e["date"] == "2020-02-17")
        .expect("day 17 ends");
    assert_eq!(end["actual_frame"], 24 * 3600 * 25);
    assert_eq!(end["output_frame"], 250);
    let first = &as_run(&tmp.path().join("asrun-055950"), "2020-02-18")[0];
    assert_eq!(
        (
            first["event"].as_str(),
            first["actual_frame"].as_i64(),
            first["output_frame"].as_i64()
        ),
        (Some("start"), Some(0), Some(250))
    );
    // Midnight falls inside the broadcast day: the filler runs through it untouched.
    let (ts, asrun) = render(tmp.path(), "23:59:50", "00:00:10");
    continuous(&ts, 500);
    assert_eq!(
        asrun
            .iter()
            .map(|e| e["event"].as_str())
            .collect::<Vec<_>>(),
        vec![Some("join"), Some("end")]
    );
    assert_eq!(asrun[0]["actual_frame"], frame_of("23:59:50"));
}

#[test]
fn a_day_without_a_schedule_airs_filler_with_one_alert() {
    let _g = heavy();
    sample_media();
    let tmp = tempfile::tempdir().unwrap();
    // The sample weeks end with broadcast day 2020-03-01; nothing covers 2020-03-02.
    let (ts, _) = render_day(tmp.path(), "2020-03-01", "05:59:50", "06:01:00");
    continuous(&ts, 70 * 25);
    let next = as_run(&tmp.path().join("asrun-055950"), "2020-03-02");
    assert_eq!(next[0]["event"], "start");
    assert_eq!(next[0]["kind"], "filler");
    assert_eq!(
        (
            next[0]["actual_frame"].as_i64(),
            next[0]["output_frame"].as_i64()
        ),
        (Some(0), Some(250))
    );
    let alerts: Vec<&Value> = next.iter().filter(|e| e["event"] == "fault").collect();
    assert_eq!(alerts.len(), 1, "{next:#?}");
    assert_eq!(alerts[0]["fault"], "no-schedule");
    assert!(
        alerts[0]["detail"]
            .as_str()
            .unwrap()
            .contains("no weekly schedule covers 2020-03-02"),
        "{alerts:?}"
    );
    // The filler airs, not yesterday's items: one item all the way.
    assert!(
        next.iter()
            .filter(|e| e["event"] == "start")
            .all(|e| e["kind"] == "filler"),
        "{next:#?}"
    );
}

#[test]
fn kill_9_and_restart_resume_within_2_s_at_the_frame_the_clock_says() {
    use std::time::{Instant, SystemTime, UNIX_EPOCH};
    let _g = heavy();
    sample_media();
    let tmp = tempfile::tempdir().unwrap();
    let rd = rundown(&sample(), "2020-02-17");
    // The cut from grade 1's lesson to the break at 08:24:30 (+08:00), as a UTC instant.
    let cut = item(&rd, "2020-02-17-break-1")["start"]
        .as_str()
        .unwrap()
        .to_string();
    let cut_utc = chrono::DateTime::parse_from_rfc3339(&cut)
        .unwrap()
        .timestamp_millis() as f64
        / 1e3;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Put the cut 9 s from now on the shifted clock.
    let shift = (cut_utc - (now + 9.0)).round() as i64;
    let cut_wall = cut_utc - shift as f64;
    let asrun = tmp.path().join("asrun");
    let air = |outputs: &[String], seconds: Option<&str>| {
        let mut c = Command::new(bin());
        c.args([
            "air",
            sample().to_str().unwrap(),
            "--shift",
            &shift.to_string(),
            "--as-run-dir",
            asrun.to_str().unwrap(),
        ]);
        for o in outputs {
            c.args(["--output", o]);
        }
        if let Some(s) = seconds {
            c.args(["--for", s]);
        }
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = air(
        &[format!("file:{}", tmp.path().join("first.ts").display())],
        None,
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    let _ = Command::new("kill")
        .args(["-9", &first.id().to_string()])
        .status();
    let _ = first.wait();

    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let url = format!("udp://127.0.0.1:{}", sock.local_addr().unwrap().port());
    let restarted = Instant::now();
    let restarted_wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut second = air(&[url], Some("12"));
    let mut stream = Vec::new();
    let mut first_arrival = None;
    let mut buf = [0u8; 65536];
    while let Ok(n) = sock.recv(&mut buf) {
        first_arrival.get_or_insert_with(|| restarted.elapsed().as_secs_f64());
        stream.extend_from_slice(&buf[..n]);
    }
    assert!(second.wait().unwrap().success());
    let resumed = first_arrival.expect("output after the restart");
    eprintln!("restart: output resumed {resumed:.2} s after the restart");
    assert!(resumed <= 2.0, "output resumed after {resumed:.2} s");

    // Where the picture cuts in the captured stream, and where the wall clock says it should be.
    let cap = tmp.path().join("second.ts");
    std::fs::write(&cap, &stream).unwrap();
    let found = cuts(&cap);
    assert_eq!(found.len(), 1, "one cut in the capture: {found:?}");
    let expected = (cut_wall - (restarted_wall + resumed)) * FPS as f64;
    eprintln!(
        "restart: cut at frame {} of the capture, wall clock says {expected:.1}",
        found[0]
    );
    assert!(
        (found[0] as f64 - expected).abs() <= 13.0,
        "cut at {} but the clock says {expected:.1}",
        found[0]
    );
    // The as-run log has the join and, to the frame, the cut.
    let log = std::fs::read_to_string(asrun.join("cetv4.example.cn-2020-02-17.jsonl")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let joins: Vec<&Value> = lines.iter().filter(|e| e["event"] == "join").collect();
    assert_eq!(joins.len(), 2, "both starts joined in progress");
    let brk = lines
        .iter()
        .rfind(|e| e["event"] == "start" && e["item"] == "2020-02-17-break-1")
        .unwrap();
    assert_eq!(
        brk["output_frame"].as_i64().unwrap(),
        found[0],
        "the stream cuts where the engine says"
    );
}

/// SRT as caller (to a listening receiver, and to nobody) and as listener (to a receiver that
/// connects and then stops reading), beside a file: the file still gets every frame on time, the
/// working receiver gets the stream, and the run ends when it should.
#[test]
fn srt_outputs_never_block_the_others_whatever_their_receivers_do() {
    use std::time::{Duration, Instant};
    let _g = heavy();
    sample_media();
    let tmp = tempfile::tempdir().unwrap();
    let port = |n: u16| 16000 + (std::process::id() % 1000) as u16 * 4 + n;
    let (to_listener, to_nobody, listening) = (port(0), port(1), port(2));
    let recv = |url: String, out: &Path| {
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostats", "-v", "error", "-y", "-i", &url])
            .args(["-c", "copy", "-f", "mpegts", out.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // A receiver that listens for our call.
    let listened = tmp.path().join("listened.ts");
    let mut listener = recv(
        format!("srt://127.0.0.1:{to_listener}?mode=listener"),
        &listened,
    );
    std::thread::sleep(Duration::from_millis(500));
    let file = tmp.path().join("file.ts");
    let started = Instant::now();
    let mut air = Command::new(bin())
        .args([
            "air",
            sample().to_str().unwrap(),
            "--as-if",
            "2020-02-17 08:24:20",
        ])
        .args(["--for", "10", "--as-run-dir", tmp.path().to_str().unwrap()])
        .args(["--output", &format!("file:{}", file.display())])
        .args(["--output", &format!("srt://127.0.0.1:{to_listener}")])
        .args(["--output", &format!("srt://127.0.0.1:{to_nobody}")])
        .args([
            "--output",
            &format!("srt://127.0.0.1:{listening}?mode=listener"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A receiver that calls our listener, takes 3 s of stream, then stops reading (SIGSTOP).
    // GStreamer's srtsrc writes what arrives at once (ffmpeg would still be probing the stream
    // when it is stopped, and write nothing).
    std::thread::sleep(Duration::from_secs(2));
    let stalled_out = tmp.path().join("stalled.ts");
    let mut stalled = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "srtsrc",
            &format!("uri=srt://127.0.0.1:{listening}?mode=caller"),
            "!",
            "filesink",
            &format!("location={}", stalled_out.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("kill")
        .args(["-STOP", &stalled.id().to_string()])
        .status();
    let status = air.wait().unwrap();
    let took = started.elapsed().as_secs_f64();
    let _ = stalled.kill();
    let _ = stalled.wait();
    std::thread::sleep(Duration::from_secs(1));
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(status.success(), "air exited with {status}");
    eprintln!("srt: 10 s on air took {took:.1} s from start to exit");
    assert!(took < 16.0, "the run took {took:.1} s for 10 s of output");
    let pts = video_pts(&file);
    assert_eq!(pts.len(), 250, "the file has every frame");
    assert!(pts.windows(2).all(|w| w[1] - w[0] == 3600));
    // The called receiver got a decodable stream with the service in it, and so did the one that
    // stalled, up to when it stopped.
    for (what, got) in [("called", &listened), ("stalled", &stalled_out)] {
        let frames: usize = ffprobe(&[
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            got.to_str().unwrap(),
        ])
        // The stream is listed under its program and again on its own: the same count twice.
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
        eprintln!("srt: the {what} receiver got {frames} video frames");
        assert!(frames >= 50, "the {what} receiver got {frames} frames");
    }
    // The service is named in what srtsrc wrote as it came (ffmpeg's remux writes its own SDT).
    let svc = ffprobe(&[
        "-show_entries",
        "program_tags=service_name",
        "-of",
        "csv=p=0",
        stalled_out.to_str().unwrap(),
    ]);
    assert!(svc.contains("CETV-4"), "{svc}");
}
