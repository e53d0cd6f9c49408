//! The operator's side without media: validation with positions, the rundown, the JSON timetable.

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// A copy of the sample channel whose week file has `from` replaced by `to` (once); returns the
/// directory and the 1-based line the change is on.
fn broken(from: &str, to: &str) -> (tempfile::TempDir, usize) {
    let dir = tempfile::tempdir().unwrap();
    let src = sample();
    fs::copy(src.join("channel.yaml"), dir.path().join("channel.yaml")).unwrap();
    fs::create_dir(dir.path().join("weeks")).unwrap();
    let week = fs::read_to_string(src.join("weeks/2020-W08.yaml")).unwrap();
    let at = week
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not in the sample week"));
    let line = week[..at].matches('\n').count() + 1;
    let changed = week.replacen(from, to, 1);
    fs::write(dir.path().join("weeks/2020-W08.yaml"), changed).unwrap();
    (dir, line)
}

fn validate(dir: &Path) -> (bool, String) {
    let o = airclass(&["validate", dir.to_str().unwrap()]);
    (o.status.success(), text(&o))
}

#[test]
fn the_sample_channel_validates() {
    let (ok, out) = validate(&sample());
    assert!(ok, "{out}");
    assert!(out.contains("OK"), "{out}");
}

#[test]
fn broken_weeks_are_reported_at_file_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        // syntax: a tab used for indentation
        (
            "        - { id: g1-mon-math,",
            "\t- { id: g1-mon-math,",
            "YAML syntax",
        ),
        // unknown key
        (
            "{ id: g2-mon-math, subject:",
            "{ id: g2-mon-math, subjekt:",
            "unknown field `subjekt`",
        ),
        // wrong type
        (
            "{ id: g2-mon-chinese, subject: 语文, number: 1,",
            "{ id: g2-mon-chinese, subject: 语文, number: one,",
            "invalid type",
        ),
        // impossible time
        ("at: \"08:00\"", "at: \"25:00\"", "not a time of day"),
        // bad duration
        (
            "media: media/lessons/g2/mon-shuxue.mp4, duration: 20m",
            "media: media/lessons/g2/mon-shuxue.mp4, duration: 20 minutes",
            "not a duration",
        ),
        // duplicate id
        (
            "{ id: g2-mon-math,",
            "{ id: g2-mon-chinese,",
            "already used",
        ),
        // unknown grade
        ("      1:\n", "      13:\n", "unknown grade 13"),
        // pinned outside air hours
        (
            "at: \"08:00\"",
            "at: \"07:00\"",
            "outside the channel's air hours",
        ),
    ];
    for (from, to, expect) in cases {
        let (dir, line) = broken(from, to);
        let (ok, out) = validate(dir.path());
        assert!(!ok, "{from} -> {to} should fail");
        let file = dir.path().join("weeks/2020-W08.yaml");
        let prefix = format!("{}:{line}:", file.display());
        assert!(
            out.contains(&prefix),
            "{to}: expected an error at line {line}, got:\n{out}"
        );
        assert!(out.contains(expect), "{to}: expected `{expect}` in:\n{out}");
        // The column is a number, and the message says what to do after the position.
        let after = out.split(&prefix).nth(1).unwrap();
        let col: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        assert!(!col.is_empty() && col != "0", "no column in {out}");
    }
}

#[test]
fn overlapping_pinned_items_point_at_the_second_one() {
    let week_extra = "    pinned:\n      - { id: mon-opening, at: \"08:00\"";
    let (dir, line) = broken(
        week_extra,
        "    pinned:\n      - { id: mon-extra-pin, at: \"08:02\", title: 加播, strand: patriotic, media: media/strands/x.mp4, duration: 5m }\n      - { id: mon-opening, at: \"08:00\"",
    );
    let (ok, out) = validate(dir.path());
    assert!(!ok);
    // The inserted entry is on the line after `pinned:`.
    assert!(
        out.contains(&format!("2020-W08.yaml:{}:", line + 1)),
        "{out}"
    );
    assert!(out.contains("do not overlap"), "{out}");
}

#[test]
fn non_utf8_weeks_are_rejected_with_a_position() {
    let (dir, _) = broken("识字1", "识字1");
    let file = dir.path().join("weeks/2020-W08.yaml");
    let mut bytes = fs::read(&file).unwrap();
    let at = bytes.windows(5).position(|w| w == b"week:").unwrap();
    bytes.splice(at..at, [0xff, 0xfe, b'\n']);
    fs::write(&file, bytes).unwrap();
    let (ok, out) = validate(dir.path());
    assert!(!ok);
    assert!(out.contains("not valid UTF-8"), "{out}");
}

#[test]
fn the_rundown_covers_the_day_frame_exactly() {
    let r = rundown(&sample(), "2020-02-17");
    assert_eq!(r["channel"], "cetv4.example.cn");
    assert_eq!(r["date"], "2020-02-17");
    let day_start = chrono::DateTime::parse_from_rfc3339(r["start"].as_str().unwrap()).unwrap();
    assert_eq!(day_start.to_rfc3339(), "2020-02-17T06:00:00+08:00");
    let items = r["items"].as_array().unwrap();
    let mut next = 0;
    let mut grades = std::collections::BTreeSet::new();
    for it in items {
        let start = it["start_frame"].as_i64().unwrap();
        let dur = it["duration_frames"].as_i64().unwrap();
        assert_eq!(start, next, "gap or overlap before {}", it["id"]);
        assert!(dur > 0);
        // The RFC 3339 start is exactly day start + frames at 25 fps, with the +08:00 offset.
        let t = chrono::DateTime::parse_from_rfc3339(it["start"].as_str().unwrap()).unwrap();
        assert_eq!(
            (t - day_start).num_milliseconds(),
            start * 40,
            "{}",
            it["id"]
        );
        assert!(it["start"].as_str().unwrap().ends_with("+08:00"));
        for key in ["id", "kind", "title", "grade", "media"] {
            assert!(it.get(key).is_some(), "{key} missing");
        }
        if let Some(g) = it["grade"].as_u64() {
            grades.insert(g);
        }
        next = start + dur;
    }
    assert_eq!(
        next,
        24 * 3600 * 25,
        "the day must end at the next day's start"
    );
    assert_eq!(
        grades.into_iter().collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6, 9, 12]
    );
    // The pinned opening is exactly at 08:00.
    let opening = items
        .iter()
        .find(|i| i["id"] == "2020-02-17-mon-opening")
        .unwrap();
    assert_eq!(opening["start_frame"].as_i64().unwrap(), 2 * 3600 * 25);
    assert_eq!(opening["pinned"], true);
    let lessons = items.iter().filter(|i| i["kind"] == "lesson").count();
    assert!((12..=16).contains(&lessons), "{lessons} lessons");
}

#[test]
fn the_same_schedule_builds_the_same_bytes() {
    let args = [
        "build",
        sample().to_str().unwrap(),
        "--date",
        "2020-02-18",
        "--format",
        "json",
    ]
    .map(String::from);
    let [a, b] = [0, 1].map(|_| {
        std::process::Command::new(bin())
            .args(&args)
            .output()
            .unwrap()
    });
    assert!(a.status.success() && !a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn a_day_without_schedule_is_all_filler_with_a_warning() {
    let r = rundown(&sample(), "2020-03-02");
    let items = r["items"].as_array().unwrap();
    assert!(items.iter().all(|i| i["kind"] == "filler"));
    assert_eq!(
        items
            .iter()
            .map(|i| i["duration_frames"].as_i64().unwrap())
            .sum::<i64>(),
        24 * 3600 * 25
    );
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .contains("no weekly schedule")
    );
}

#[test]
fn the_table_shows_times_timecodes_and_titles() {
    let o = airclass(&["build", sample().to_str().unwrap(), "--date", "2020-02-17"]);
    assert!(o.status.success());
    let t = String::from_utf8(o.stdout).unwrap();
    assert!(t.contains("08:00:00  02:00:00:00  00:05:00:00"), "{t}");
    assert!(t.contains("一年级"), "{t}");
}

#[test]
fn publish_writes_the_timetable_from_the_rundowns() {
    let out = tempfile::tempdir().unwrap();
    let o = airclass(&[
        "publish",
        sample().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let base: PathBuf = out.path().join("cetv4.example.cn");
    let day: serde_json::Value =
        serde_json::from_slice(&fs::read(base.join("latest/days/2020-02-17.json")).unwrap())
            .unwrap();
    let rd = rundown(&sample(), "2020-02-17");
    // Every guide entry is a rundown item with the same id and times; breaks and filler folded.
    let entries = day["entries"].as_array().unwrap();
    for e in entries {
        let it = rd["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == e["id"])
            .expect("entry is a rundown item");
        assert_eq!(e["start"], it["start"]);
        assert_eq!(e["end"], it["end"]);
        assert_ne!(it["kind"], "filler");
        assert_ne!(it["kind"], "break");
    }
    assert_eq!(
        entries.len(),
        rd["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] != "filler" && i["kind"] != "break")
            .count()
    );
    // No temporary files or directories are left behind by the atomic writes.
    for f in fs::read_dir(base.join("versions")).unwrap() {
        assert!(!f.unwrap().file_name().to_string_lossy().starts_with('.'));
    }
}
