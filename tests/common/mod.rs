//! Shared helpers for the integration tests: the binary, the sample channel, its media, ffprobe.
#![allow(dead_code)]

pub mod http;
pub mod ts;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_airclass")
}

pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules/cetv4")
}

pub fn airclass(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run airclass")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The heavy tests share two cores; run them one at a time so real-time ones keep time.
pub fn heavy() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Generate the sample day's media once per test binary (files that exist are kept).
pub fn sample_media() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = sample();
        let o = airclass(&[
            "media",
            "demo",
            dir.to_str().unwrap(),
            "--date",
            "2020-02-17",
            "--only",
        ]);
        assert!(o.status.success(), "media demo failed: {}", text(&o));
    });
}

/// The rundown of a day as JSON, from the CLI.
pub fn rundown(channel: &Path, date: &str) -> serde_json::Value {
    let o = airclass(&[
        "build",
        channel.to_str().unwrap(),
        "--date",
        date,
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).expect("rundown JSON")
}

/// Run an independent tool, insist that it succeeds, and return what it printed.
pub fn stdout_of(cmd: &mut Command, what: &str) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what} cannot run: {e}"));
    assert!(
        o.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

pub fn ffprobe(args: &[&str]) -> String {
    stdout_of(
        Command::new("ffprobe").args(["-v", "error"]).args(args),
        &format!("ffprobe {args:?}"),
    )
}

/// Presentation timestamps (90 kHz) of every video packet, in presentation order.
pub fn video_pts(ts: &Path) -> Vec<i64> {
    let out = ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts",
        "-of",
        "csv=p=0",
        ts.to_str().unwrap(),
    ]);
    let mut v: Vec<i64> = out
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Run ffmpeg with `args` and return its log (where filters such as showinfo report).
pub fn ffmpeg_log<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let o = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats"])
        .args(args)
        .output()
        .expect("ffmpeg is installed");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Frame numbers (from the file's first frame) where the picture changes completely: the cuts.
/// ffmpeg's showinfo counts timestamps from the file's start, so pts / 3600 is the frame.
pub fn cuts(ts: &Path) -> Vec<i64> {
    ffmpeg_log(&[
        "-i",
        ts.to_str().unwrap(),
        "-an",
        "-vf",
        "select='gt(scene,0.15)',showinfo",
        "-f",
        "null",
        "-",
    ])
    .lines()
    .filter(|l| l.contains("Parsed_showinfo") && l.contains(" pts:"))
    .filter_map(|l| {
        l.split(" pts:")
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse::<i64>()
            .ok()
    })
    .map(|pts| pts / 3600)
    .collect()
}

/// Run ffmpeg with `args` and read the number that follows `key` in its log (showinfo,
/// volumedetect).
fn ffmpeg_stat(args: &[String], key: &str) -> f64 {
    let err = ffmpeg_log(args);
    let line = err
        .lines()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no `{key}` in ffmpeg {args:?}: {err}"));
    let value = line
        .split(key)
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    value
        .parse()
        .unwrap_or_else(|_| panic!("`{value}` after `{key}` is not a number"))
}

/// Mean luma of the frame `frame` frames into the file, from ffmpeg's showinfo.
pub fn mean_luma(ts: &Path, frame: i64) -> f64 {
    let args = [
        "-i",
        ts.to_str().unwrap(),
        "-an",
        "-vf",
        &format!("select='eq(n,{frame})',showinfo"),
        "-frames:v",
        "1",
        "-f",
        "null",
        "-",
    ];
    ffmpeg_stat(&args.map(String::from), "mean:[")
}

/// Mean audio level (dB) of `secs` seconds starting `from` seconds into the file.
pub fn mean_volume(ts: &Path, from: f64, secs: f64) -> f64 {
    let args = [
        "-ss",
        &from.to_string(),
        "-t",
        &secs.to_string(),
        "-i",
        ts.to_str().unwrap(),
        "-vn",
        "-af",
        "volumedetect",
        "-f",
        "null",
        "-",
    ];
    ffmpeg_stat(&args.map(String::from), "mean_volume:")
}

/// A one-colour clip with a tone, made with ffmpeg: `secs` long, 720x576 at 25 fps.
pub fn colour_clip(path: &Path, colour: &str, secs: u32) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    stdout_of(
        Command::new("ffmpeg").args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            &format!("color=c={colour}:s=720x576:r=25:d={secs}"),
            "-f",
            "lavfi",
            "-i",
            &format!("sine=f=440:sample_rate=48000:d={secs}"),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            path.to_str().unwrap(),
        ]),
        "ffmpeg (making a test clip)",
    );
}

/// Every frame's time (seconds from the file's start) and mean luma, over the region `crop`
/// (an ffmpeg crop, e.g. `iw/2:ih/2`), from ffmpeg's showinfo: one pass for a whole file.
pub fn frame_lumas(file: &Path, crop: &str) -> Vec<(f64, f64)> {
    let vf = format!("crop={crop},showinfo");
    let err = ffmpeg_log(&[
        "-i",
        file.to_str().unwrap(),
        "-an",
        "-vf",
        &vf,
        "-f",
        "null",
        "-",
    ]);
    let after = |l: &str, key: &str| -> Option<f64> {
        l.split(key).nth(1)?.split_whitespace().next()?.parse().ok()
    };
    err.lines()
        .filter(|l| l.contains("Parsed_showinfo") && l.contains(" n:"))
        .map(|l| {
            (
                after(l, "pts_time:").expect("pts_time"),
                after(l, "mean:[").expect("mean"),
            )
        })
        .collect()
}

/// The audio's level (RMS dB, -inf for digital silence) in consecutive chunks of `samples`
/// samples, each with its time (seconds from the file's start), from ffmpeg's astats.
pub fn audio_levels(file: &Path, samples: usize) -> Vec<(f64, f64)> {
    let af = format!(
        "asetnsamples=n={samples}:p=0,astats=metadata=1:reset=1,\
         ametadata=mode=print:key=lavfi.astats.Overall.RMS_level"
    );
    let err = ffmpeg_log(&[
        "-i",
        file.to_str().unwrap(),
        "-vn",
        "-af",
        &af,
        "-f",
        "null",
        "-",
    ]);
    let mut out = Vec::new();
    let mut time = None;
    for l in err.lines().filter(|l| l.contains("Parsed_ametadata")) {
        if let Some(t) = l.split("pts_time:").nth(1) {
            time = t.split_whitespace().next().and_then(|t| t.parse().ok());
        } else if let (Some(t), Some(v)) = (time.take(), l.split("RMS_level=").nth(1)) {
            out.push((t, v.trim().parse().unwrap_or(f64::NEG_INFINITY)));
        }
    }
    out
}
