//! The media fault suite (faults.md, "Media"): one small generated file per fault kind, and local
//! HTTP servers for the remote kinds, aired back to back in pinned slots of one test channel. The
//! render is checked frame by frame with ffmpeg (every frame shows the picture its slot must
//! show: the item's own grey level or the slate), the sound per frame, the timestamps, the
//! transport stream, and the as-run log (a fault entry for each faulty item, none for good ones).

mod common;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FPS: i64 = 25;
/// Every slot is this long (frames), and so is a clip unless it is made longer or shorter.
const SLOT: i64 = 4 * FPS;
const SECS: f64 = (SLOT / FPS) as f64;
/// Grey levels (RGB) of the channel's slate and filler; clips get their own, 6 apart.
const SLATE_GREY: u32 = 40;
const FILLER_GREY: u32 = 20;
/// Where the test rundown starts (local time, 2020-02-17).
const START: &str = "10:00:00";
const START_FRAME: i64 = 4 * 3600 * FPS;

/// A clip to generate with ffmpeg: a flat grey picture (so every item has its own luma) with a
/// band of scrolling stripes at the top (motion, outside the centre where luma is measured),
/// and a 440 Hz tone.
#[derive(Clone)]
struct Spec {
    secs: f64,
    size: (u32, u32),
    sar: &'static str,
    rate: &'static str,
    /// Sample rate, channels and length of the tone; None for no audio track.
    audio: Option<(u32, u32, f64)>,
    /// When the tone starts (seconds into the clip).
    audio_from: f64,
    video: bool,
    interlaced: bool,
    pix_fmt: &'static str,
    /// Extra ffmpeg inputs and output options (subtitles, a timecode track, a second audio).
    extra_inputs: Vec<String>,
    extra_args: Vec<String>,
    /// File name extension, which also picks the container unless `format` says otherwise.
    ext: &'static str,
    format: Option<&'static str>,
}

impl Spec {
    /// A clip already in the channel's format: 720x576 16:9, 25 fps, 48 kHz stereo.
    fn base() -> Spec {
        Spec {
            secs: SECS,
            size: (720, 576),
            sar: "64/45",
            rate: "25",
            audio: Some((48000, 2, SECS)),
            audio_from: 0.0,
            video: true,
            interlaced: false,
            pix_fmt: "yuv420p",
            extra_inputs: vec![],
            extra_args: vec![],
            ext: "mp4",
            format: None,
        }
    }
}

/// Generate `spec` as `path` with the picture at grey level `grey`.
fn make_clip(path: &Path, spec: &Spec, grey: u32) {
    let (w, h) = spec.size;
    let band = (h / 6) & !1;
    // Interlaced clips are made from 50p and woven into fields.
    let rate = if spec.interlaced { "50" } else { spec.rate };
    let d = spec.secs;
    let mut args: Vec<String> = vec!["-y".into(), "-v".into(), "error".into()];
    let mut maps = vec![];
    if spec.video {
        let weave = if spec.interlaced {
            "tinterlace=mode=interleave_bottom,setfield=tff,"
        } else {
            ""
        };
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("color=c=0x{grey:02x}{grey:02x}{grey:02x}:s={w}x{h}:r={rate}:d={d}"),
            "-filter_complex".into(),
            format!(
                "color=c=white:s={w}x{band}:r={rate}:d={d},drawgrid=w=16:h={band}:t=8:c=black,\
                 scroll=h=0.01[band];[0][band]overlay=0:0,{weave}setsar={}[v]",
                spec.sar
            ),
        ]);
        maps.extend(["-map".to_string(), "[v]".to_string()]);
    }
    if let Some((ar, ac, ad)) = spec.audio {
        args.extend([
            "-itsoffset".into(),
            spec.audio_from.to_string(),
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=f=440:sample_rate={ar}:d={ad}"),
        ]);
        let input = if spec.video { 1 } else { 0 };
        maps.extend([
            "-map".into(),
            format!("{input}:a"),
            "-ac".into(),
            ac.to_string(),
        ]);
    }
    args.extend(spec.extra_inputs.iter().cloned());
    args.extend(maps);
    if spec.video {
        args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "25",
                "-pix_fmt",
                spec.pix_fmt,
            ]
            .map(String::from),
        );
        if spec.interlaced {
            args.extend(["-flags", "+ildct+ilme", "-x264-params", "tff=1"].map(String::from));
        }
    }
    args.extend(["-c:a", "aac", "-b:a", "64k"].map(String::from));
    args.extend(spec.extra_args.iter().cloned());
    if spec.ext == "mp4" || spec.format == Some("mp4") {
        args.extend(["-movflags", "+faststart"].map(String::from));
    }
    if let Some(f) = spec.format {
        args.extend(["-f".into(), f.into()]);
    }
    args.push(path.to_str().unwrap().into());
    stdout_of(
        Command::new("ffmpeg").args(&args),
        &format!("ffmpeg making {}", path.display()),
    );
}

/// How a local HTTP server answers every request for its one file.
#[derive(Clone, Copy)]
enum Serve {
    Whole,
    NotFound,
    /// Accepts the connection, reads the request and never answers.
    Silent,
    /// Sends the file at this many bytes per second.
    Slow(usize),
    /// Sends the file up to its picture at STALL_AT seconds, then keeps the connection open
    /// without sending anything more: a source that stops producing without an error.
    Stall,
}

/// Where the stalling source stops sending (seconds into its clip).
const STALL_AT: f64 = 2.0;

/// Start a server for `file` on a free local port (it lives until the test process ends).
fn serve(file: &Path, how: Serve) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let body = Arc::new(std::fs::read(file).unwrap());
    let stop = match how {
        Serve::Stall => byte_at(file, STALL_AT),
        _ => body.len(),
    };
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || answer(c, how, &body, stop));
        }
    });
    format!(
        "http://127.0.0.1:{port}/{}",
        file.file_name().unwrap().to_str().unwrap()
    )
}

/// Answer one request: `stop` is where a stalling server stops sending.
fn answer(mut c: TcpStream, how: Serve, body: &[u8], stop: usize) {
    let mut head = Vec::new();
    let mut b = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&b[..n]),
        }
    }
    // Byte ranges (`Range: bytes=N-`), which a source uses to resume or seek.
    let from = String::from_utf8_lossy(&head)
        .lines()
        .find_map(|l| {
            let v = l.to_ascii_lowercase();
            v.strip_prefix("range: bytes=")?
                .split('-')
                .next()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0)
        .min(body.len());
    let ok = if from > 0 {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\n",
            body.len() - 1,
            body.len()
        )
    } else {
        "HTTP/1.1 200 OK\r\n".to_string()
    } + &format!(
        "Content-Type: video/mp4\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len() - from
    );
    let body = &body[from..];
    let _ = match how {
        Serve::Whole => c.write_all(ok.as_bytes()).and_then(|_| c.write_all(body)),
        Serve::NotFound => {
            c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        }
        Serve::Silent => {
            hold(&mut c);
            Ok(())
        }
        Serve::Slow(rate) => c.write_all(ok.as_bytes()).and_then(|_| {
            for chunk in body.chunks((rate / 10).max(1)) {
                c.write_all(chunk)?;
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        }),
        Serve::Stall => c
            .write_all(ok.as_bytes())
            .and_then(|_| c.write_all(&body[..stop.saturating_sub(from)]))
            .map(|_| hold(&mut c)),
    };
}

/// Keep a connection open, sending nothing, until the client closes it.
fn hold(c: &mut TcpStream) {
    let mut b = [0u8; 256];
    while matches!(c.read(&mut b), Ok(n) if n > 0) {}
}

/// Byte offset in `file` of the first video packet at or after `secs`: a source cut there
/// has pictures for the frames before it.
fn byte_at(file: &Path, secs: f64) -> usize {
    let out = ffprobe(&[
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time,pos",
        "-of",
        "csv=p=0",
        file.to_str().unwrap(),
    ]);
    out.lines()
        .filter_map(|l| {
            let (t, p) = l.split_once(',')?;
            Some((t.parse::<f64>().ok()?, p.trim().parse::<usize>().ok()?))
        })
        .find(|&(t, _)| t >= secs - 1e-6)
        .map(|(_, p)| p)
        .expect("a packet at that time")
}

/// How a slot must look on air (item-local frames).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pic {
    /// The item's own picture for the whole slot.
    Clip,
    /// The slate for the whole slot.
    Slate,
    /// The item's picture, then the slate from a frame in [lo, hi] to the slot's end.
    ClipThenSlate(i64, i64),
}

/// How a slot must sound: the tone over item-local frames [from, until) and silence elsewhere;
/// the tone until the picture turns to slate (`WithPicture`); the tone but for a gap of at most
/// this many frames (`Damaged`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Snd {
    Tone(i64, i64),
    WithPicture,
    Damaged(i64),
}
const TONE: Snd = Snd::Tone(0, SLOT);
const SILENCE: Snd = Snd::Tone(0, 0);

/// One item of the test rundown and what must air in its slot.
struct Case {
    id: &'static str,
    media: String,
    /// The clip's grey level, when it has a picture.
    grey: Option<u32>,
    pic: Pic,
    snd: Snd,
    /// For a faulty item, a word its as-run fault entry must hold.
    fault: Option<&'static str>,
    /// Not checked (with the reason printed), when the test cannot produce the fault here.
    skip: Option<String>,
}

impl Case {
    fn new(id: &'static str, media: String, grey: Option<u32>, pic: Pic, snd: Snd) -> Case {
        Case {
            id,
            media,
            grey,
            pic,
            snd,
            fault: None,
            skip: None,
        }
    }

    fn fault(mut self, word: &'static str) -> Case {
        self.fault = Some(word);
        self
    }
}

/// The test channel: 720x576 16:9 at 25 fps like CETV-4, slate and filler clips of their own.
fn write_channel(dir: &Path, cases: &[Case]) {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::create_dir_all(dir.join("weeks")).unwrap();
    make_clip(&media.join("slate.mp4"), &Spec::base(), SLATE_GREY);
    make_clip(&media.join("filler.mp4"), &Spec::base(), FILLER_GREY);
    std::fs::write(
        dir.join("channel.yaml"),
        r#"id: faults.test
name: Fault test channel
short_name: FAULTS
timezone: Asia/Shanghai
broadcast_day_start: "06:00"
video: { width: 720, height: 576, fps: "25", aspect: "16:9" }
air_hours: [{ from: "10:00", to: "12:00" }]
break: { duration: 10m, media: media/filler.mp4 }
slate: media/slate.mp4
filler: media/filler.mp4
output: { service_name: Faults, provider_name: Tests }
"#,
    )
    .unwrap();
    let mut week = String::from("week: 2020-W08\nstart: 2020-02-17\ndays:\n  mon:\n    pinned:\n");
    for (i, c) in cases.iter().enumerate() {
        let s = 10 * 3600 + i as i64 * SLOT / FPS;
        week += &format!(
            "      - {{ id: {}, at: \"{:02}:{:02}:{:02}\", title: {}, media: \"{}\", duration: {}s }}\n",
            c.id,
            s / 3600,
            s / 60 % 60,
            s % 60,
            c.id,
            c.media,
            SLOT / FPS
        );
    }
    std::fs::write(dir.join("weeks/2020-W08.yaml"), week).unwrap();
}

/// The local time `secs` seconds after START.
fn after_start(secs: i64) -> String {
    let s = 10 * 3600 + secs;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn as_run(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("faults.test-2020-02-17.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Whether this process runs as root (for whom chmod 000 denies nothing).
fn is_root() -> bool {
    stdout_of(Command::new("id").arg("-u"), "id").trim() == "0"
}

/// Root keeps its user id but loses the capabilities that bypass file permissions, so a
/// chmod 000 file is unreadable to it as to anyone else.
const NO_DAC_OVERRIDE: [&str; 2] = [
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
];

/// Make `file` unreadable for the renderer; None, or why that is not possible here.
fn deny(file: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o000)).unwrap();
    let mut probe = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(NO_DAC_OVERRIDE).arg("cat");
        c
    } else {
        Command::new("cat")
    };
    match probe.arg(file).output() {
        Ok(o) if !o.status.success() => None,
        Ok(_) => Some("the file stays readable even after chmod 000".into()),
        Err(e) => Some(format!("setpriv cannot run: {e}")),
    }
}

/// A clip made from `spec` as media/<id>.<ext>: the case (to adjust) and the file.
fn local_case(
    dir: &Path,
    id: &'static str,
    spec: Spec,
    grey: u32,
    pic: Pic,
    snd: Snd,
) -> (Case, PathBuf) {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let file = media.join(format!("{id}.{}", spec.ext));
    make_clip(&file, &spec, grey);
    let case = Case::new(
        id,
        format!("media/{id}.{}", spec.ext),
        spec.video.then_some(grey),
        pic,
        snd,
    );
    (case, file)
}

/// A clip served from its own local HTTP server answering `how`.
fn remote_case(dir: &Path, id: &'static str, grey: u32, how: Serve, pic: Pic, snd: Snd) -> Case {
    let remote = dir.join("remote");
    std::fs::create_dir_all(&remote).unwrap();
    let file = remote.join(format!("{id}.mp4"));
    make_clip(&file, &Spec::base(), grey);
    Case::new(id, serve(&file, how), Some(grey), pic, snd)
}

/// Luma (limited range, BT.601) of an RGB grey level: what a flat clip of it shows.
fn luma_of(grey: u32) -> f64 {
    16.0 + grey as f64 * 219.0 / 255.0
}

/// The clips of the suite: generated into `dir`/media (local) and `dir`/remote (served over
/// HTTP), each with its own grey level, in an order where no two slate slots touch.
fn fault_cases(dir: &Path) -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let n = std::cell::Cell::new(0);
    let next_grey = || {
        n.set(n.get() + 1);
        70 + 6 * n.get()
    };
    let clip = |id, spec, pic, snd| local_case(dir, id, spec, next_grey(), pic, snd);
    let base = Spec::base;
    // A clip that must air as it is, with no fault.
    let good = |id, spec| clip(id, spec, Pic::Clip, TONE).0;
    let at_rate = |rate| Spec { rate, ..base() };

    cases.push(good("fps30", at_rate("30")));
    cases.push(
        Case::new(
            "missing",
            "media/missing.mp4".into(),
            None,
            Pic::Slate,
            SILENCE,
        )
        .fault("No such file"),
    );
    cases.push(good("fps2997", at_rate("30000/1001")));
    let (mut c, file) = clip("denied", base(), Pic::Slate, SILENCE);
    c.skip = deny(&file);
    cases.push(c.fault("Permission denied"));
    cases.push(good("fps24", at_rate("24")));
    let (c, file) = clip("empty", base(), Pic::Slate, SILENCE);
    std::fs::write(&file, b"").unwrap();
    cases.push(c.fault("empty"));
    cases.push(good("fps50", at_rate("50")));
    // Cut in half: the first half plays, then slate.
    let (c, file) = clip(
        "truncated",
        base(),
        Pic::ClipThenSlate(FPS, SLOT - FPS),
        Snd::WithPicture,
    );
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    cases.push(c.fault("ended before its slot"));
    let a44k = Spec {
        audio: Some((44100, 2, SECS)),
        ..base()
    };
    cases.push(good("a44k", a44k));
    // A twentieth of the file overwritten with noise, two fifths in.
    let (c, file) = clip("garbage", base(), Pic::Clip, Snd::Damaged(FPS / 2));
    let mut bytes = std::fs::read(&file).unwrap();
    let (from, to) = (bytes.len() * 2 / 5, bytes.len() * 9 / 20);
    let mut x: u32 = 12345;
    for b in &mut bytes[from..to] {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = (x >> 16) as u8;
    }
    std::fs::write(&file, &bytes).unwrap();
    cases.push(c.fault("damaged"));
    let mono = Spec {
        audio: Some((48000, 1, SECS)),
        ..base()
    };
    cases.push(good("mono", mono));
    // MPEG-TS content under a name that says MP4: played by what it is.
    let wrongext = Spec {
        format: Some("mpegts"),
        ..base()
    };
    cases.push(good("wrongext", wrongext));
    let surround = Spec {
        audio: Some((48000, 6, SECS)),
        ..base()
    };
    cases.push(good("surround", surround));
    let videoonly = Spec {
        audio: None,
        ..base()
    };
    cases.push(
        clip("videoonly", videoonly, Pic::Clip, SILENCE)
            .0
            .fault("no sound"),
    );
    let ar43 = Spec {
        size: (640, 480),
        sar: "1",
        ..base()
    };
    cases.push(good("ar43", ar43));
    let audioonly = Spec {
        video: false,
        ext: "m4a",
        ..base()
    };
    cases.push(
        clip("audioonly", audioonly, Pic::Slate, TONE)
            .0
            .fault("no pictures"),
    );
    let hd = Spec {
        size: (1920, 1080),
        sar: "1",
        ..base()
    };
    cases.push(good("hd1080", hd));
    // Sound from 1 s to 2.5 s of the picture.
    let audioshort = Spec {
        audio: Some((48000, 2, 1.5)),
        audio_from: 1.0,
        ..base()
    };
    let c = clip(
        "audioshort",
        audioshort,
        Pic::Clip,
        Snd::Tone(FPS, FPS * 5 / 2),
    );
    cases.push(c.0.fault("sound ends"));
    let odd = Spec {
        size: (719, 405),
        sar: "1",
        pix_fmt: "yuv444p",
        ..base()
    };
    cases.push(good("odd719", odd));
    let longer = Spec {
        secs: SECS + 2.0,
        audio: Some((48000, 2, SECS + 2.0)),
        ..base()
    };
    cases.push(
        clip("longer", longer, Pic::Clip, TONE)
            .0
            .fault("past its slot"),
    );
    let interlaced = Spec {
        interlaced: true,
        ..base()
    };
    cases.push(good("interlaced", interlaced));
    let shorter = Spec {
        secs: SECS / 2.0,
        audio: Some((48000, 2, SECS / 2.0)),
        ..base()
    };
    let c = clip(
        "shorter",
        shorter,
        Pic::ClipThenSlate(SLOT / 2, SLOT / 2),
        Snd::Tone(0, SLOT / 2),
    );
    cases.push(c.0.fault("ended before its slot"));
    // Subtitles, a timecode (data) track and a second audio track besides the first two.
    let srt = dir.join("extra.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:03,000\nsubtitle\n\n").unwrap();
    let extras = Spec {
        extra_inputs: [
            "-i",
            srt.to_str().unwrap(),
            "-f",
            "lavfi",
            "-i",
            "sine=f=880:d=4",
        ]
        .map(String::from)
        .to_vec(),
        extra_args: [
            "-map",
            "2:s",
            "-map",
            "3:a",
            "-c:s",
            "mov_text",
            "-timecode",
            "10:00:00:00",
        ]
        .map(String::from)
        .to_vec(),
        ..base()
    };
    cases.push(good("extras", extras));

    // Remote sources, each from its own local server.
    let remote_clip = |id, how, pic, snd| remote_case(dir, id, next_grey(), how, pic, snd);
    cases.push(remote_clip("http404", Serve::NotFound, Pic::Slate, SILENCE).fault("Not Found"));
    cases.push(remote_clip("http", Serve::Whole, Pic::Clip, TONE));
    cases.push(remote_clip("httpsilent", Serve::Silent, Pic::Slate, SILENCE).fault("did not open"));
    cases.push(good("plain", base()));
    // 2 kB/s for a clip of about 20 kB/s: it cannot keep up.
    let slow = Serve::Slow(2000);
    cases.push(
        remote_clip(
            "httpslow",
            slow,
            Pic::ClipThenSlate(0, SLOT),
            Snd::WithPicture,
        )
        .fault("slower than real time"),
    );
    cases.push(good("plain2", base()));
    // Pictures for the first two seconds, then nothing and no error.
    let stall_frame = (STALL_AT * FPS as f64) as i64;
    let stall = Pic::ClipThenSlate(stall_frame - 10, stall_frame);
    cases.push(remote_clip("httpstall", Serve::Stall, stall, Snd::WithPicture).fault("stalled"));
    cases.push(good("plain3", base()));
    cases
}

/// The renderer's command line: as root, without the capabilities that bypass permissions.
fn airclass_cmd() -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(NO_DAC_OVERRIDE).arg(bin());
        c
    } else {
        Command::new(bin())
    }
}

/// ffmpeg's idet verdict over frames [from, to) of `file`'s top band (where the stripes
/// scroll): (interlaced, progressive) frame counts.
fn idet(file: &Path, from: i64, to: i64) -> (i64, i64) {
    let vf = format!(
        "select='between(n,{from},{})',crop=iw:ih/7:0:0,idet",
        to - 1
    );
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
    let line = err
        .lines()
        .find(|l| l.contains("Multi frame detection"))
        .unwrap_or_else(|| panic!("no idet result: {err}"));
    let num = |key: &str| -> i64 {
        line.split(key)
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (num("TFF:") + num("BFF:"), num("Progressive:"))
}

#[test]
fn every_media_fault_fills_its_slot_and_the_next_item_starts_on_its_frame() {
    let _g = heavy();
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases = fault_cases(dir);
    write_channel(dir, &cases);
    eprintln!(
        "generated {} clips in {:.1} s",
        cases.len(),
        t0.elapsed().as_secs_f64()
    );
    for c in &cases {
        if let Some(why) = &c.skip {
            eprintln!("NOT CHECKED: {}: {why}", c.id);
        }
    }
    let total = cases.len() as i64 * SLOT;
    let (out, asrun_dir) = (dir.join("faults.ts"), dir.join("asrun"));
    let rendered = Instant::now();
    let o = airclass_cmd()
        .args(["render", dir.to_str().unwrap(), "--date", "2020-02-17"])
        .args(["--from", START, "--to", &after_start(total / FPS)])
        .args(["--out", out.to_str().unwrap()])
        .args(["--as-run-dir", asrun_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "render failed: {}", text(&o));
    eprintln!(
        "render of {} s took {:.1} s: {}",
        total / FPS,
        rendered.elapsed().as_secs_f64(),
        text(&o).trim()
    );

    // Exactly the planned frames, every PTS step one frame, a clean transport stream.
    let pts = video_pts(&out);
    assert_eq!(pts.len() as i64, total, "video frames");
    assert!(
        pts.windows(2).all(|w| w[1] - w[0] == 3600),
        "every PTS step is one frame"
    );
    let rep = common::ts::check(&std::fs::read(&out).unwrap());
    eprintln!("transport stream check: {rep:?}");
    assert_eq!(rep.continuity_errors, 0);
    assert!(rep.max_pcr_gap_ms <= 40.0, "{rep:?}");
    assert!(
        rep.max_pat_gap_ms <= 500.0 && rep.max_pmt_gap_ms <= 500.0 && rep.max_sdt_gap_ms <= 500.0,
        "{rep:?}"
    );
    assert_eq!(rep.unit_starts[&256] as i64, total);

    // The picture of every frame: the centre's mean luma against the slot's clip or the slate.
    let slate = luma_of(SLATE_GREY);
    let measured = frame_lumas(&dir.join("media/slate.mp4"), "iw/2:ih/2:iw/4:ih/4")[0].1;
    assert!(
        (measured - slate).abs() < 1.5,
        "a clip's luma is what its grey level says: {measured} vs {slate}"
    );
    let lumas = frame_lumas(&out, "iw/2:ih/2:iw/4:ih/4");
    assert_eq!(lumas.len() as i64, total);
    let near = |l: f64, want: f64| (l - want).abs() <= 2.0;
    let mut problems = Vec::new();
    // Per case, the item-local frame where the slate took over (SLOT if it never did).
    let mut slate_from = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let slot = &lumas[i * SLOT as usize..(i + 1) * SLOT as usize];
        let clip = c.grey.map(luma_of);
        let is_clip = |l: f64| clip.is_some_and(|want| near(l, want));
        let cut = slot
            .iter()
            .position(|&(_, l)| near(l, slate))
            .unwrap_or(slot.len()) as i64;
        slate_from.push(cut);
        if c.skip.is_some() {
            continue;
        }
        let (lo, hi) = match c.pic {
            Pic::Clip => (SLOT, SLOT),
            Pic::Slate => (0, 0),
            Pic::ClipThenSlate(lo, hi) => (lo, hi),
        };
        if cut < lo || cut > hi {
            problems.push(format!(
                "{}: slate from item frame {cut}, expected in [{lo}, {hi}]",
                c.id
            ));
        }
        for (k, &(_, l)) in slot.iter().enumerate() {
            let k = k as i64;
            let ok = if k < cut { is_clip(l) } else { near(l, slate) };
            if !ok {
                problems.push(format!(
                    "{}: item frame {k} (output frame {}) has luma {l:.1}; clip {clip:?}, slate {slate:.1}, slate from {cut}",
                    c.id,
                    i as i64 * SLOT + k
                ));
                break;
            }
        }
    }

    // Conforming: 4:3 pillarboxed (black at the left edge), 16:9 sources fill the width.
    let edges = frame_lumas(&out, "iw/12:ih/2:0:ih/4");
    let at = |id: &str| cases.iter().position(|c| c.id == id).unwrap() as i64 * SLOT + SLOT / 2;
    let edge = |id: &str| edges[at(id) as usize].1;
    for (id, want) in [
        ("ar43", 16.0),
        (
            "hd1080",
            luma_of(cases[at("hd1080") as usize / SLOT as usize].grey.unwrap()),
        ),
        (
            "odd719",
            luma_of(cases[at("odd719") as usize / SLOT as usize].grey.unwrap()),
        ),
    ] {
        if !near(edge(id), want) {
            problems.push(format!(
                "{id}: left edge luma {:.1}, expected {want:.1}",
                edge(id)
            ));
        }
    }
    // Deinterlacing: the source's band is seen as interlaced, the aired one as progressive.
    let i = at("interlaced") - SLOT / 2;
    let src = idet(&dir.join("media/interlaced.mp4"), 0, SLOT);
    let aired = idet(&out, i, i + SLOT);
    eprintln!("idet (interlaced, progressive): source {src:?}, aired {aired:?}");
    assert!(src.0 > 10 * src.1, "the source is interlaced: {src:?}");
    if aired.0 * 10 > aired.1 {
        problems.push(format!(
            "interlaced: the aired picture is not deinterlaced: {aired:?}"
        ));
    }

    // The sound of every frame: tone or digital silence as the slot's plan says.
    let v0 = lumas[0].0;
    let levels = audio_levels(&out, 1920);
    let mut level = vec![None; total as usize];
    for (t, db) in levels {
        let n = ((t - v0) * FPS as f64).round() as i64;
        if (0..total).contains(&n) {
            level[n as usize] = Some(db);
        }
    }
    for (i, c) in cases.iter().enumerate() {
        if c.skip.is_some() {
            continue;
        }
        let (from, until, margin, mut allowed) = match c.snd {
            Snd::Tone(from, until) => (from, until, 3, 0),
            // A broken file's sound and pictures stop within a second of each other.
            Snd::WithPicture => (0, slate_from[i], FPS, 0),
            Snd::Damaged(gap) => (0, SLOT, 3, gap),
        };
        for k in 0..SLOT {
            let want_tone = (from..until).contains(&k);
            // Sound changes (at the slot's edges too) settle within a few AAC frames.
            let mut changes = [0, from, until, SLOT].into_iter().filter(|_| from < until);
            if !(3..SLOT - 3).contains(&k) || changes.any(|e| (k - e).abs() < margin) {
                continue;
            }
            let n = i as i64 * SLOT + k;
            let ok = match level[n as usize] {
                Some(db) if want_tone => db > -40.0,
                Some(db) => db < -80.0,
                None => false,
            };
            if !ok && allowed > 0 {
                allowed -= 1;
            } else if !ok {
                problems.push(format!(
                    "{}: item frame {k} (output {n}) sound {:?}, expected {}",
                    c.id,
                    level[n as usize],
                    if want_tone { "tone" } else { "silence" }
                ));
                break;
            }
        }
    }
    let audio_secs: f64 = ffprobe(&[
        "-select_streams",
        "a:0",
        "-show_entries",
        "packet=duration_time",
        "-of",
        "csv=p=0",
        out.to_str().unwrap(),
    ])
    .lines()
    .filter_map(|l| l.trim().trim_end_matches(',').parse::<f64>().ok())
    .sum();
    eprintln!("audio: {audio_secs:.3} s for {} s of video", total / FPS);
    assert!(
        (audio_secs - (total / FPS) as f64).abs() < 0.05,
        "audio runs {audio_secs} s for {} s of pictures",
        total / FPS
    );

    // The as-run log: every item started on its planned frame; a fault entry for each faulty
    // item at the frame the slate took over (where it did), none for the good ones.
    let log = as_run(&asrun_dir);
    for (i, c) in cases.iter().enumerate() {
        let id = format!("2020-02-17-{}", c.id);
        let planned = START_FRAME + i as i64 * SLOT;
        let start = log
            .iter()
            .find(|e| e["event"] == "start" && e["item"] == id.as_str())
            .unwrap_or_else(|| panic!("{}: no start entry", c.id));
        if start["actual_frame"] != planned || start["output_frame"] != i as i64 * SLOT {
            problems.push(format!("{}: started off plan: {start}", c.id));
        }
        let faults: Vec<&Value> = log
            .iter()
            .filter(|e| e["event"] == "fault" && e["item"] == id.as_str())
            .collect();
        eprintln!(
            "{:>10}: slate from {:>3}; faults: {:?}",
            c.id,
            slate_from[i],
            faults
                .iter()
                .map(|e| format!(
                    "{} {}",
                    e["actual_frame"].as_i64().unwrap() - planned,
                    e["detail"].as_str().unwrap_or("")
                ))
                .collect::<Vec<_>>()
        );
        if c.skip.is_some() {
            continue;
        }
        let says = |word: &str| {
            faults
                .iter()
                .any(|e| e["detail"].as_str().is_some_and(|d| d.contains(word)))
        };
        match c.fault {
            None if !faults.is_empty() => {
                problems.push(format!("{}: fault entries for a good item", c.id))
            }
            Some(word) if !says(word) => {
                problems.push(format!("{}: no fault entry that says `{word}`", c.id))
            }
            _ => {}
        }
        let cut = slate_from[i];
        if cut < SLOT
            && c.grey.is_some()
            && !faults
                .iter()
                .any(|e| e["actual_frame"].as_i64() == Some(planned + cut))
        {
            problems.push(format!(
                "{}: no fault entry at item frame {cut}, where the slate took over",
                c.id
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!("fault suite took {:.1} s", t0.elapsed().as_secs_f64());
}

/// Frames (from the file's start) where the picture freezes, by ffmpeg's freezedetect over the
/// scrolling band at the top: a picture repeated for at least 0.2 s.
fn freezes(file: &Path) -> Vec<i64> {
    let vf = "crop=iw:ih/7:0:0,freezedetect=n=-40dB:d=0.2,metadata=mode=print";
    let log = ffmpeg_log(&[
        "-i",
        file.to_str().unwrap(),
        "-an",
        "-vf",
        vf,
        "-f",
        "null",
        "-",
    ]);
    let v0 = frame_lumas(file, "16:16:0:0")[0].0;
    log.lines()
        .filter_map(|l| l.split("lavfi.freezedetect.freeze_start=").nth(1))
        .filter_map(|t| t.trim().parse::<f64>().ok())
        .map(|t| ((t - v0) * FPS as f64).round() as i64)
        .collect()
}

#[test]
fn on_air_a_stalled_source_is_replaced_by_slate_within_a_second() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let stall_frame = (STALL_AT * FPS as f64) as i64;
    let cases = vec![
        local_case(dir, "before", Spec::base(), 100, Pic::Clip, TONE).0,
        remote_case(
            dir,
            "httpstall",
            130,
            Serve::Stall,
            Pic::ClipThenSlate(stall_frame - 10, stall_frame + FPS),
            Snd::WithPicture,
        )
        .fault("stalled"),
        local_case(dir, "after", Spec::base(), 160, Pic::Clip, TONE).0,
    ];
    write_channel(dir, &cases);
    // In real time as if it were 10:00:00: the output starts 1.5 s into `before`, the stalling
    // item airs 10:00:04-08, then `after`.
    let (out, asrun_dir) = (dir.join("air.ts"), dir.join("asrun"));
    let secs = 10;
    let o = airclass(&[
        "air",
        dir.to_str().unwrap(),
        "--as-if",
        &format!("2020-02-17 {START}"),
        "--for",
        &secs.to_string(),
        "--output",
        &format!("file:{}", out.display()),
        "--as-run-dir",
        asrun_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "air failed: {}", text(&o));

    // Output timestamps kept advancing: every frame there, every step one frame.
    let pts = video_pts(&out);
    assert_eq!(pts.len() as i64, secs * FPS);
    assert!(pts.windows(2).all(|w| w[1] - w[0] == 3600));
    let rep = common::ts::check(&std::fs::read(&out).unwrap());
    assert_eq!(rep.continuity_errors, 0, "{rep:?}");

    let log = as_run(&asrun_dir);
    let entry = |event: &str, id: &str| {
        log.iter()
            .find(|e| e["event"] == event && e["item"] == format!("2020-02-17-{id}").as_str())
            .unwrap_or_else(|| panic!("no {event} entry for {id}: {log:?}"))
    };
    let start = entry("start", "httpstall");
    assert_eq!(start["planned_frame"], start["actual_frame"]);
    let s = start["output_frame"].as_i64().unwrap();
    let fault = entry("fault", "httpstall");
    assert!(
        fault["detail"].as_str().unwrap().contains("stalled"),
        "{fault}"
    );
    let fault_at = fault["output_frame"].as_i64().unwrap();

    // From the picture: where the stalling item froze (the data stopped), and where the slate
    // took over; the next item on its frame.
    let lumas = frame_lumas(&out, "iw/2:ih/2:iw/4:ih/4");
    let near = |n: i64, grey: u32| (lumas[n as usize].1 - luma_of(grey)).abs() <= 2.0;
    let slate_at = (s..s + SLOT)
        .find(|&n| near(n, SLATE_GREY))
        .expect("the slate took over");
    let frozen = freezes(&out)
        .into_iter()
        .find(|&n| (s..slate_at).contains(&n))
        .unwrap_or(slate_at);
    eprintln!(
        "stall on air: pictures froze at item frame {} (data stopped at {stall_frame}), slate from {} ({} frames later), fault logged at {}",
        frozen - s,
        slate_at - s,
        slate_at - frozen,
        fault_at - s
    );
    assert!(
        (s..slate_at).all(|n| near(n, 130)),
        "the clip until the slate"
    );
    assert!(
        (slate_at..s + SLOT).all(|n| near(n, SLATE_GREY)),
        "slate to the slot's end"
    );
    assert!(near(s + SLOT, 160), "the next item on its planned frame");
    assert_eq!(
        fault_at, slate_at,
        "the as-run log has the fault where the slate began"
    );
    assert!(
        (stall_frame - 10..=stall_frame).contains(&(frozen - s)),
        "the pictures stop where the data did"
    );
    assert!(
        slate_at - frozen <= FPS,
        "the watchdog took {} frames",
        slate_at - frozen
    );
}

#[test]
fn stopping_the_channel_works_while_a_source_never_answers() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases = vec![
        remote_case(dir, "silent", 100, Serve::Silent, Pic::Slate, SILENCE),
        local_case(dir, "after", Spec::base(), 130, Pic::Clip, TONE).0,
    ];
    write_channel(dir, &cases);
    let (out, asrun_dir) = (dir.join("air.ts"), dir.join("asrun"));
    // On air from 10:00:00 (joining the silent source 1.5 s in), with no end: stopped by SIGTERM
    // while the source's open is still hanging in the background.
    let mut air = Command::new(bin())
        .args(["air", dir.to_str().unwrap(), "--as-if"])
        .arg(format!("2020-02-17 {START}"))
        .args(["--output", &format!("file:{}", out.display())])
        .args(["--as-run-dir", asrun_dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let signalled = Instant::now();
    stdout_of(
        Command::new("kill").args(["-TERM", &air.id().to_string()]),
        "kill",
    );
    let status = loop {
        if let Some(s) = air.try_wait().unwrap() {
            break s;
        }
        if signalled.elapsed() > Duration::from_secs(10) {
            let _ = air.kill();
            panic!("the channel did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed().as_secs_f64();
    eprintln!("stopped {took:.2} s after SIGTERM");
    assert!(status.success(), "air failed: {status}");
    assert!(took < 1.0, "stopping took {took:.2} s");
    // What aired until then: slate for the silent source, and the log says why; the next item
    // if the engine (a second ahead of the clock) got to it.
    let pts = video_pts(&out);
    assert!(pts.len() as i64 >= FPS, "{} frames", pts.len());
    assert!(pts.windows(2).all(|w| w[1] - w[0] == 3600));
    let log = as_run(&asrun_dir);
    assert!(
        log.iter().any(|e| e["event"] == "fault"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("did not open in time"))),
        "{log:?}"
    );
    let next = log
        .iter()
        .find(|e| e["event"] == "start" && e["item"] == "2020-02-17-after")
        .map_or(i64::MAX, |e| e["output_frame"].as_i64().unwrap());
    let lumas = frame_lumas(&out, "iw/2:ih/2:iw/4:ih/4");
    for (n, &(_, l)) in lumas.iter().enumerate() {
        let grey = if (n as i64) < next { SLATE_GREY } else { 130 };
        assert!(
            (l - luma_of(grey)).abs() <= 2.0,
            "frame {n}: luma {l}, expected grey {grey}"
        );
    }
}
