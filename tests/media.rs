//! Ahead-of-air media check and fetch on a test channel seeded with bad media and a real local
//! HTTP origin: every problem found (and none for good media), downloads resumed after an
//! interruption and verified against the schedule's sha256.

mod common;
use common::http::{self, Reply, Request};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const DATE: &str = "2020-02-17";

/// A channel like the sample one whose Monday holds one-minute lessons: good, short (a
/// ten-second file), undecodable (garbage named .mp4), missing, and three remote ones on
/// `port`: `gone` (404), `remote` and `tampered` (both declared with the good file's sha256);
/// with `silent`, also `stalled` on a server that accepts and never answers.
fn test_channel(port: u16, silent: Option<u16>, sha256: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::copy(sample().join("channel.yaml"), d.join("channel.yaml")).unwrap();
    fs::create_dir_all(d.join("weeks")).unwrap();
    fs::create_dir_all(d.join("media")).unwrap();
    let lesson = |id: &str, subject: &str, media: &str, extra: &str| {
        format!(
            "        - {{ id: {id}, subject: {subject}, title: {id}, media: \"{media}\", duration: 1m{extra} }}\n"
        )
    };
    let url = |name: &str| format!("http://127.0.0.1:{port}/{name}.mp4");
    let sum = format!(", sha256: {sha256}");
    let stalled = silent
        .map(|p| {
            lesson(
                "stalled",
                "数学",
                &format!("http://127.0.0.1:{p}/stalled.mp4"),
                "",
            )
        })
        .unwrap_or_default();
    let week = format!(
        "week: 2020-W08\nstart: {DATE}\ndays:\n  mon:\n    grades:\n      1:\n{}{}{}{stalled}      2:\n{}{}{}{}",
        lesson("good", "语文", "media/good.mp4", ""),
        lesson("short", "数学", "media/short.mp4", ""),
        lesson("garbage", "语文", "media/garbage.mp4", ""),
        lesson("missing", "数学", "media/missing.mp4", ""),
        lesson("gone", "语文", &url("gone"), ""),
        lesson("remote", "数学", &url("remote"), &sum),
        lesson("tampered", "语文", &url("tampered"), &sum),
    );
    fs::write(d.join("weeks/2020-W08.yaml"), week).unwrap();
    // Not a video: bytes that only pretend by their name.
    let garbage: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(d.join("media/garbage.mp4"), garbage).unwrap();
    fs::write(
        d.join("demo-media.yaml"),
        "missing: [media/missing.mp4, media/short.mp4]\n",
    )
    .unwrap();
    let o = airclass(&["media", "demo", d.to_str().unwrap()]);
    assert!(o.status.success(), "media demo: {}", text(&o));
    // A valid file, but the ten-second slate where a minute is planned.
    fs::copy(
        d.join("media/interstitials/slate.mp4"),
        d.join("media/short.mp4"),
    )
    .unwrap();
    dir
}

/// The good lesson's bytes, made once by `media demo` in a channel of its own, and its sha256.
fn good_bytes() -> (Vec<u8>, String) {
    static GOOD: std::sync::OnceLock<(Vec<u8>, String)> = std::sync::OnceLock::new();
    GOOD.get_or_init(|| {
        let ch = test_channel(9, None, &"0".repeat(64));
        let bytes = fs::read(ch.path().join("media/good.mp4")).unwrap();
        let sum = stdout_of(
            Command::new("sha256sum").arg(ch.path().join("media/good.mp4")),
            "sha256sum",
        );
        (bytes, sum.split_whitespace().next().unwrap().to_string())
    })
    .clone()
}

/// An origin serving `remote` and `tampered` (the good bytes with one byte changed) with Range
/// support, 404 for anything else; `cut` makes the first GET of `remote` stop after that many
/// body bytes. Every request is logged. Setting the flag takes the origin offline (404 for all).
fn origin(good: Vec<u8>, cut: Option<usize>) -> (u16, Arc<Mutex<Vec<Request>>>, Arc<AtomicBool>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let offline = Arc::new(AtomicBool::new(false));
    let (seen, off) = (log.clone(), offline.clone());
    let mut tampered = good.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0xff;
    let port = http::serve(move |req| {
        let mut log = seen.lock().unwrap();
        log.push(req.clone());
        let first_get = req.method == "GET"
            && log
                .iter()
                .filter(|r| r.method == "GET" && r.path == req.path)
                .count()
                == 1;
        if off.load(Ordering::SeqCst) {
            return Reply::status(404);
        }
        match req.path.as_str() {
            "/remote.mp4" => Reply {
                cut: cut.filter(|_| first_get),
                ..Reply::file(req, &good)
            },
            "/tampered.mp4" => Reply::file(req, &tampered),
            _ => Reply::status(404),
        }
    });
    (port, log, offline)
}

fn check(dir: &Path) -> (bool, Vec<Value>) {
    let o = airclass(&[
        "media",
        "check",
        dir.to_str().unwrap(),
        "--from",
        DATE,
        "--days",
        "1",
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    (o.status.success(), v.as_array().unwrap().clone())
}

fn fetch(dir: &Path) -> (bool, String) {
    let o = airclass(&[
        "media",
        "fetch",
        dir.to_str().unwrap(),
        "--from",
        DATE,
        "--days",
        "1",
    ]);
    (o.status.success(), text(&o))
}

/// (media, kind) of every problem.
fn kinds(problems: &[Value]) -> BTreeSet<(String, String)> {
    problems
        .iter()
        .map(|p| {
            (
                p["media"].as_str().unwrap().to_string(),
                p["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn media_check_finds_every_seeded_problem_and_none_for_good_media() {
    let (good, sum) = good_bytes();
    let (port, log, _) = origin(good, None);
    // Connections complete in the kernel's backlog; nobody ever reads or answers them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let ch = test_channel(port, Some(silent_port), &sum);
    let started = std::time::Instant::now();
    let (ok, problems) = check(ch.path());
    let took = started.elapsed();
    assert!(!ok, "errors ahead of air make the check fail");
    let url = |name: &str| format!("http://127.0.0.1:{port}/{name}.mp4");
    let expected: BTreeSet<(String, String)> = [
        ("media/short.mp4".to_string(), "short"),
        ("media/garbage.mp4".to_string(), "undecodable"),
        ("media/missing.mp4".to_string(), "missing"),
        (url("gone"), "unreachable"),
        (
            format!("http://127.0.0.1:{silent_port}/stalled.mp4"),
            "unreachable",
        ),
        (url("remote"), "not-fetched"),
        (url("tampered"), "not-fetched"),
    ]
    .into_iter()
    .map(|(m, k)| (m, k.to_string()))
    .collect();
    assert_eq!(kinds(&problems), expected, "{problems:#?}");
    let severity = |name: &str| {
        problems
            .iter()
            .find(|p| p["media"].as_str().unwrap().ends_with(name))
            .map(|p| p["severity"].as_str().unwrap().to_string())
            .unwrap()
    };
    for bad in [
        "short.mp4",
        "garbage.mp4",
        "missing.mp4",
        "gone.mp4",
        "stalled.mp4",
    ] {
        assert_eq!(severity(bad), "error", "{bad}");
    }
    assert_eq!(severity("remote.mp4"), "warning");
    let gone = problems.iter().find(|p| p["media"] == url("gone")).unwrap();
    assert!(gone["message"].as_str().unwrap().contains("404"), "{gone}");
    assert!(
        log.lock()
            .unwrap()
            .iter()
            .any(|r| r.method == "HEAD" && r.path == "/gone.mp4"),
        "the origin was asked about the 404 URL"
    );
    // A server that never answers costs a bounded wait (10 s per request), not a hung check.
    let stalled = problems
        .iter()
        .find(|p| p["media"].as_str().unwrap().ends_with("stalled.mp4"))
        .unwrap();
    assert!(
        stalled["message"].as_str().unwrap().contains("timed out"),
        "{stalled}"
    );
    assert!(took.as_secs() < 30, "check took {took:?}");

    // The short file's length, as ffprobe measures it, and the minute it was planned for.
    let secs: f64 = ffprobe(&[
        "-show_entries",
        "format=duration",
        "-of",
        "csv=p=0",
        ch.path().join("media/short.mp4").to_str().unwrap(),
    ])
    .trim()
    .parse()
    .unwrap();
    let short = problems.iter().find(|p| p["kind"] == "short").unwrap();
    let msg = short["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "00:00:{:02}:00 long for a 00:01:00:00 slot",
            secs.round()
        )),
        "{msg} (ffprobe: {secs} s)"
    );

    // Each problem sits at the first airing of its media in the day's rundown, in air order.
    let rd = rundown(ch.path(), DATE);
    let items = rd["items"].as_array().unwrap();
    for p in &problems {
        let first = items
            .iter()
            .find(|i| i["media"] == p["media"])
            .unwrap_or_else(|| panic!("{} not in the rundown", p["media"]));
        assert_eq!(p["item"], first["id"]);
        assert_eq!(p["at"], first["start"], "{p}");
        assert_eq!(p["date"], DATE);
        let airings = items.iter().filter(|i| i["media"] == p["media"]).count();
        assert_eq!(p["airings"], airings, "{p}");
    }
    let times: Vec<&str> = problems.iter().map(|p| p["at"].as_str().unwrap()).collect();
    assert!(times.is_sorted(), "{times:?}");

    // The table says the same for operators.
    let o = airclass(&[
        "media",
        "check",
        ch.path().to_str().unwrap(),
        "--from",
        DATE,
        "--days",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("7 problem(s): 5 error(s), 2 warning(s), 0 info"),
        "{}",
        text(&o)
    );
}

#[test]
fn media_fetch_resumes_an_interrupted_download_and_verifies_its_checksum() {
    let (good, sum) = good_bytes();
    let half = good.len() / 2;
    let (port, log, offline) = origin(good.clone(), Some(half));
    let ch = test_channel(port, None, &sum);
    let cache = ch.path().join("media/cache");
    let cached = |name: &str| {
        fs::read_dir(&cache)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| n.contains(name))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };

    // First attempt: the origin drops `remote` halfway; the part is kept.
    let (ok, out) = fetch(ch.path());
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "remote.mp4: interrupted after {half} of {} bytes",
            good.len()
        )),
        "{out}"
    );
    assert!(
        out.contains("gone.mp4: the server answers HTTP 404"),
        "{out}"
    );
    assert!(out.contains("tampered.mp4: checksum mismatch"), "{out}");
    let parts = cached("remote.mp4");
    assert_eq!(parts.len(), 1, "{parts:?}");
    assert!(parts[0].ends_with(".part"), "{parts:?}");
    let part_len = fs::metadata(cache.join(&parts[0])).unwrap().len();
    assert_eq!(part_len as usize, half);
    assert!(
        cached("tampered.mp4").is_empty(),
        "a mismatching download leaves nothing behind"
    );

    // Second attempt resumes from the part's size and completes.
    let (_, out) = fetch(ch.path());
    let ranges: Vec<Option<u64>> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/remote.mp4")
        .map(Request::range_start)
        .collect();
    assert_eq!(ranges, vec![None, Some(part_len)], "{out}");
    assert!(
        out.contains(&format!("resumed at byte {half}; sha256 {sum} verified")),
        "{out}"
    );
    let done = cached("remote.mp4");
    assert_eq!(done.len(), 1, "no part left: {done:?}");
    assert!(!done[0].ends_with(".part"));
    let file = cache.join(&done[0]);
    assert!(fs::read(&file).unwrap() == good, "byte-identical");
    let sha = stdout_of(Command::new("sha256sum").arg(&file), "sha256sum");
    assert_eq!(sha.split_whitespace().next().unwrap(), sum);
    assert!(cached("tampered.mp4").is_empty());

    // Now the check probes the cached file: nothing wrong with `remote` any more.
    let (_, problems) = check(ch.path());
    let k = kinds(&problems);
    let url = |name: &str| format!("http://127.0.0.1:{port}/{name}.mp4");
    assert!(!k.iter().any(|(m, _)| *m == url("remote")), "{k:?}");
    assert!(
        k.contains(&(url("tampered"), "not-fetched".into())),
        "{k:?}"
    );

    // A third run finds it cached and asks the origin nothing about it.
    let before = log.lock().unwrap().len();
    let (_, out) = fetch(ch.path());
    assert!(
        out.contains(&format!("cached http://127.0.0.1:{port}/remote.mp4")),
        "{out}"
    );
    assert!(
        !log.lock().unwrap()[before..]
            .iter()
            .any(|r| r.path == "/remote.mp4"),
        "{out}"
    );

    // On air the engine plays the cached file: with the origin gone, the lesson airs without a
    // fault in the as-run log.
    offline.store(true, Ordering::SeqCst);
    let rd = rundown(ch.path(), DATE);
    let item = rd["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["media"] == url("remote"))
        .unwrap();
    let hms = |t: &Value| t.as_str().unwrap()[11..19].to_string();
    let out = ch.path().join("remote.ts");
    let asrun = ch.path().join("as-run");
    let o = airclass(&[
        "render",
        ch.path().to_str().unwrap(),
        "--date",
        DATE,
        "--from",
        &hms(&item["start"]),
        "--to",
        &hms(&item["end"]),
        "--out",
        out.to_str().unwrap(),
        "--as-run-dir",
        asrun.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let log: Vec<Value> = fs::read_to_string(asrun.join(format!("cetv4.example.cn-{DATE}.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        log.iter().any(|e| e["item"] == item["id"]),
        "the item aired: {log:?}"
    );
    assert!(
        !log.iter().any(|e| e["event"] == "fault"),
        "no fault: {log:?}"
    );
}

#[test]
fn media_check_on_the_sample_day_agrees_with_ffprobe_about_every_file() {
    let _g = heavy();
    sample_media();
    let dir = sample();
    let (ok, problems) = check(&dir);
    assert!(
        !ok,
        "the sample day leaves one lesson's media out on purpose"
    );
    // What ffprobe says each file of the day holds, against the channel's 720x576, 25 fps,
    // 48 kHz stereo.
    let rd = rundown(&dir, DATE);
    let mut expected = BTreeSet::new();
    let media: BTreeSet<&str> = rd["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["media"].as_str().unwrap())
        .collect();
    for m in media {
        let name = m.to_string();
        let path = dir.join(m);
        if !path.exists() {
            expected.insert((name, "missing".to_string()));
            continue;
        }
        let v: Value = serde_json::from_str(&ffprobe(&[
            "-show_entries",
            "stream=codec_type,width,height,r_frame_rate,sample_rate,channels",
            "-of",
            "json",
            path.to_str().unwrap(),
        ]))
        .unwrap();
        let streams = v["streams"].as_array().unwrap();
        let of = |t: &str| streams.iter().find(|s| s["codec_type"] == t);
        let video = of("video").expect("every sample file has video");
        let mut conformed =
            video["width"] != 720 || video["height"] != 576 || video["r_frame_rate"] != "25/1";
        match of("audio") {
            None => {
                expected.insert((name.clone(), "no-audio".to_string()));
            }
            Some(a) => conformed |= a["sample_rate"] != "48000" || a["channels"] != 2,
        }
        if conformed {
            expected.insert((name, "conformed".to_string()));
        }
    }
    assert!(
        expected.len() >= 4,
        "the sample has odd formats: {expected:?}"
    );
    assert_eq!(kinds(&problems), expected, "{problems:#?}");
}
