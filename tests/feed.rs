//! The public timetable: every format checked by an independent tool (Debian's XMLTV validator,
//! Python's icalendar parser, headless Chromium), versions and change lists, escaping, and the
//! HTTP server's caching headers.

mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CH: &str = "cetv4.example.cn";

/// A copy of the sample channel (without media) whose Monday can be edited.
fn channel_copy(edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(
        sample().join("channel.yaml"),
        dir.path().join("channel.yaml"),
    )
    .unwrap();
    fs::create_dir(dir.path().join("weeks")).unwrap();
    let week = fs::read_to_string(sample().join("weeks/2020-W08.yaml")).unwrap();
    fs::write(dir.path().join("weeks/2020-W08.yaml"), edit(week)).unwrap();
    dir
}

fn publish(channel: &Path, out: &Path) -> String {
    let o = airclass(&[
        "publish",
        channel.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

fn latest(out: &Path) -> PathBuf {
    out.join(CH).join("latest")
}

fn feed(out: &Path) -> Value {
    serde_json::from_slice(&fs::read(latest(out).join("feed.json")).unwrap()).unwrap()
}

/// Parse a calendar with Python's icalendar: (uid, summary, dtstart iso, sequence, status) rows.
fn ical_events(path: &Path) -> Vec<Value> {
    let script = r#"
import json, sys, icalendar
cal = icalendar.Calendar.from_ical(open(sys.argv[1], 'rb').read())
tzids = [str(c.get('TZID')) for c in cal.walk('VTIMEZONE')]
out = []
for e in cal.walk('VEVENT'):
    s = e.decoded('DTSTART')
    out.append({'uid': str(e.get('UID')), 'summary': str(e.get('SUMMARY')), 'start': s.isoformat(),
                'tzid': e.get('DTSTART').params.get('TZID'), 'sequence': int(e.get('SEQUENCE')),
                'status': str(e.get('STATUS')), 'tzids': tzids})
print(json.dumps(out, ensure_ascii=False))
"#;
    let out = stdout_of(
        Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .arg(path),
        &format!("python3 icalendar on {}", path.display()),
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn xmltv_passes_the_validator_and_the_checks_it_misses() {
    let out = tempfile::tempdir().unwrap();
    publish(&sample(), out.path());
    let xml = latest(out.path()).join("xmltv.xml");
    let o = Command::new("tv_validate_file")
        .args(["--dtd-file", "/usr/share/xmltv/xmltv.dtd"])
        .arg(&xml)
        .output()
        .expect("xmltv-util");
    assert!(
        o.status.success(),
        "tv_validate_file: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = fs::read_to_string(&xml).unwrap();
    assert!(!text.starts_with('\u{feff}'), "no byte-order mark");
    let mut last_stop = String::new();
    let mut n = 0;
    for line in text
        .lines()
        .filter(|l| l.trim_start().starts_with("<programme "))
    {
        let attr = |name: &str| {
            line.split(&format!("{name}=\""))
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string()
        };
        let (start, stop) = (attr("start"), attr("stop"));
        assert!(
            start.ends_with(" +0800") && stop.ends_with(" +0800"),
            "offset on every time: {line}"
        );
        assert!(stop > start, "stop after start: {line}");
        assert!(
            start >= last_stop,
            "ordered, no overlap: {start} after {last_stop}"
        );
        last_stop = stop;
        n += 1;
    }
    let scheduled = feed(out.path())["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "scheduled")
        .count();
    assert_eq!(n, scheduled, "one programme per scheduled airing");
    assert!(text.contains("<previously-shown"), "reruns are marked");
}

#[test]
fn icalendar_per_grade_parses_with_one_event_per_airing() {
    let out = tempfile::tempdir().unwrap();
    publish(&sample(), out.path());
    let f = feed(out.path());
    let entries = f["entries"].as_array().unwrap();
    for g in [1u64, 6, 9, 12] {
        let path = latest(out.path()).join(format!("ical/grade-{g}.ics"));
        let bytes = fs::read(&path).unwrap();
        assert!(
            bytes.windows(2).filter(|w| w == b"\r\n").count() > 10,
            "CRLF line ends"
        );
        for line in bytes.split(|&b| b == b'\n') {
            assert!(line.len() <= 76, "folded at 75 octets (+CR)");
        }
        let events = ical_events(&path);
        let want = entries
            .iter()
            .filter(|e| e["grade"] == g || e["grade"].is_null())
            .count();
        assert_eq!(events.len(), want, "grade {g}");
        let uids: std::collections::BTreeSet<&str> =
            events.iter().map(|e| e["uid"].as_str().unwrap()).collect();
        assert_eq!(uids.len(), events.len(), "one UID per airing");
        for e in &events {
            assert_eq!(e["tzid"], "Asia/Shanghai");
            assert!(
                e["tzids"]
                    .as_array()
                    .unwrap()
                    .contains(&Value::from("Asia/Shanghai")),
                "VTIMEZONE for the TZID"
            );
            assert!(e["start"].as_str().unwrap().ends_with("+08:00"), "{e}");
            let id = e["uid"]
                .as_str()
                .unwrap()
                .strip_suffix(&format!("@{CH}"))
                .unwrap();
            let entry = entries
                .iter()
                .find(|x| x["id"] == id)
                .expect("UID is the airing's id");
            assert_eq!(
                entry["start"].as_str().unwrap(),
                e["start"].as_str().unwrap()
            );
        }
    }
}

#[test]
fn a_second_publish_after_an_edit_is_version_2_with_the_right_changes() {
    let out = tempfile::tempdir().unwrap();
    let ch = channel_copy(|w| w);
    publish(ch.path(), out.path());
    let again = publish(ch.path(), out.path());
    assert!(again.contains("unchanged"), "{again}");
    let v1_ical = fs::read(latest(out.path()).join("ical/grade-1.ics")).unwrap();

    // Move Monday's opening five minutes, drop Friday's extra, rename a Tuesday lesson.
    let week = fs::read_to_string(ch.path().join("weeks/2020-W08.yaml")).unwrap();
    let fri_extra = week
        .lines()
        .find(|l| l.contains("id: fri-") && l.contains("strand:") && !l.contains("at:"))
        .unwrap()
        .to_string();
    let edited = week
        .replacen("at: \"08:00\"", "at: \"08:05\"", 1)
        .replace(&format!("{fri_extra}\n"), "");
    fs::write(ch.path().join("weeks/2020-W08.yaml"), edited).unwrap();
    let msg = publish(ch.path(), out.path());
    assert!(msg.contains("published version 2"), "{msg}");
    let f = feed(out.path());
    assert_eq!(f["version"], 2);
    let changes = &f["changes"];
    let has = |k: &str, id: &str| changes[k].as_array().unwrap().iter().any(|x| x == id);
    assert!(has("moved", "2020-02-17-mon-opening"), "{changes}");
    let fri_id = fri_extra
        .split("id: ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    assert!(
        has("cancelled", &format!("2020-02-21-{fri_id}")),
        "{changes}"
    );
    // Only the two edited days changed.
    for k in ["added", "moved", "updated", "cancelled"] {
        for id in changes[k].as_array().unwrap() {
            let id = id.as_str().unwrap();
            assert!(
                id.starts_with("2020-02-17") || id.starts_with("2020-02-21"),
                "{k}: {id}"
            );
        }
    }

    // Calendars: the moved airing's SEQUENCE is raised; the cancelled one is kept, cancelled.
    let events = ical_events(&latest(out.path()).join("ical/grade-1.ics"));
    let opening = events
        .iter()
        .find(|e| e["uid"] == format!("2020-02-17-mon-opening@{CH}"))
        .unwrap();
    assert_eq!(opening["sequence"], 1);
    let cancelled = events
        .iter()
        .find(|e| e["uid"] == format!("2020-02-21-{fri_id}@{CH}"))
        .unwrap();
    assert_eq!(cancelled["status"], "CANCELLED");
    // Version 1 is still there, unchanged.
    let v1 = out.path().join(CH).join("versions/1");
    assert_eq!(fs::read(v1.join("ical/grade-1.ics")).unwrap(), v1_ical);
    let history: Value =
        serde_json::from_slice(&fs::read(latest(out.path()).join("versions.json")).unwrap())
            .unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2);
}

#[test]
fn identities_are_stable_across_rebuilds() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    publish(&sample(), a.path());
    publish(&sample(), b.path());
    let uids = |out: &Path| {
        ical_events(&latest(out).join("ical/grade-3.ics"))
            .into_iter()
            .map(|e| e["uid"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(uids(a.path()), uids(b.path()));
    // Apart from the publish time, the two builds are the same bytes.
    let strip = |out: &Path| {
        let mut f = feed(out);
        f["published"] = Value::Null;
        for e in f["entries"].as_array_mut().unwrap() {
            e["changed"] = Value::Null;
        }
        f
    };
    assert_eq!(strip(a.path()), strip(b.path()));
}

#[test]
fn hard_titles_come_through_every_format() {
    let title = "A&B <b>\"x\"</b> 'y'; z, w \\ 汉字 ñ العربية 😀 \u{7}end";
    // A JSON string is a valid YAML double-quoted scalar: the operator's file carries it exactly.
    let yaml_title = serde_json::to_string(title).unwrap();
    let ch = channel_copy(|w| {
        w.replacen(
            "title: 识字1《春夏秋冬》",
            &format!("title: {yaml_title}"),
            1,
        )
    });
    let out = tempfile::tempdir().unwrap();
    publish(ch.path(), out.path());
    let id = "2020-02-17-g1-mon-chinese";
    let f = feed(out.path());
    let e = f["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap();
    assert_eq!(e["title"], title, "JSON carries the title exactly");
    let without_control: String = title.chars().filter(|c| !c.is_control()).collect();
    // XML: parsed by Python's XML parser; only the control character XML forbids is gone.
    let xml = latest(out.path()).join("xmltv.xml");
    let o = Command::new("/usr/bin/python3")
        .args(["-c", "import sys,xml.etree.ElementTree as T; print([p.find('title').text for p in T.parse(sys.argv[1]).getroot().iter('programme') if 'A&B' in p.find('title').text][0], end='')"])
        .arg(&xml)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8(o.stdout).unwrap(), without_control);
    // iCalendar: the parsed summary is the title.
    let events = ical_events(&latest(out.path()).join("ical/grade-1.ics"));
    let ev = events
        .iter()
        .find(|e| e["uid"] == format!("{id}@{CH}"))
        .unwrap();
    assert_eq!(ev["summary"], without_control.as_str());
    // HTML: escaped, never markup.
    let html = fs::read_to_string(latest(out.path()).join("index.html")).unwrap();
    assert!(
        html.contains("A&amp;B &lt;b&gt;&quot;x&quot;&lt;/b&gt; &apos;y&apos;; z, w"),
        "escaped in the page"
    );
    assert!(!html.contains("<b>\"x\"</b>"), "no markup injection");
    assert!(
        !html.contains("</b> 'y'"),
        "no raw markup in the JSON-LD either"
    );
}

struct Server(Child, u16);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(dir: &Path) -> Server {
    let port = 20000 + (std::process::id() % 5000) as u16 + (rand_port_offset() % 100);
    // Held by the guard at once, so the process is killed and waited for whatever happens.
    let server = Server(
        Command::new(bin())
            .args([
                "serve",
                dir.to_str().unwrap(),
                "--bind",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
        port,
    );
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("serve did not start");
}

fn rand_port_offset() -> u16 {
    static N: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    N.fetch_add(7, std::sync::atomic::Ordering::SeqCst)
}

/// (status, headers lower-cased, body) with curl, an independent HTTP client.
fn http(args: &[&str]) -> (u16, String, Vec<u8>) {
    // -I prints the headers itself; otherwise -D - puts them before the body.
    let dump: &[&str] = if args.contains(&"-I") {
        &[]
    } else {
        &["-D", "-"]
    };
    let o = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(dump)
        .args(args)
        .output()
        .expect("curl");
    let raw = o.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, raw[split..].to_vec())
}

#[test]
fn serve_gives_cdn_friendly_headers() {
    let out = tempfile::tempdir().unwrap();
    publish(&sample(), out.path());
    let s = serve(out.path());
    let url = |p: &str| format!("http://127.0.0.1:{}/{CH}/{p}", s.1);
    let (st, h, body) = http(&[&url("latest/days/2020-02-17.json")]);
    assert_eq!(st, 200);
    assert!(
        h.contains("content-type: application/json; charset=utf-8"),
        "{h}"
    );
    assert!(
        h.contains("access-control-allow-origin: *") && !h.contains("allow-credentials"),
        "{h}"
    );
    assert!(h.contains("vary: accept-encoding"), "{h}");
    assert!(h.contains("cache-control: public, max-age=60"), "{h}");
    let etag = h
        .lines()
        .find(|l| l.starts_with("etag:"))
        .unwrap()
        .trim_start_matches("etag:")
        .trim()
        .to_string();
    assert_eq!(
        body,
        fs::read(latest(out.path()).join("days/2020-02-17.json")).unwrap()
    );
    let (st, _, body) = http(&[
        "-H",
        &format!("If-None-Match: {etag}"),
        &url("latest/days/2020-02-17.json"),
    ]);
    assert_eq!((st, body.len()), (304, 0));
    let (st, h, _) = http(&["-H", "Accept-Encoding: br", &url("versions/1/xmltv.xml")]);
    assert_eq!(st, 200);
    assert!(
        h.contains("content-encoding: br")
            && h.contains("immutable")
            && h.contains("max-age=31536000"),
        "{h}"
    );
    assert!(
        h.contains("content-type: application/xml; charset=utf-8"),
        "{h}"
    );
    let (_, h, _) = http(&[
        "-H",
        "Accept-Encoding: gzip",
        &url("latest/ical/grade-1.ics"),
    ]);
    assert!(
        h.contains("content-encoding: gzip") && h.contains("text/calendar; charset=utf-8"),
        "{h}"
    );
    let (st, h, body) = http(&["-I", &url("latest/index.html")]);
    assert!(
        st == 200 && body.is_empty() && h.contains("text/html; charset=utf-8"),
        "{h}"
    );
    assert_eq!(http(&["-X", "POST", &url("latest/feed.json")]).0, 405);
    assert_eq!(
        http(&[
            "--path-as-is",
            &format!("http://127.0.0.1:{}/{CH}/../../etc/passwd", s.1)
        ])
        .0,
        404
    );
    assert_eq!(http(&[&url("latest/nothing.json")]).0, 404);
    // Now/next at a moment of the sample week (the plus sign percent-encoded in the query).
    let (st, h, body) = http(&[&url("now.json?at=2020-02-17T08:10:00%2B08:00")]);
    assert_eq!(st, 200, "{h}");
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["now"]["id"], "2020-02-17-g1-mon-chinese", "{v}");
    assert_eq!(v["next"].as_array().unwrap().len(), 3);
    assert!(v["next"][0]["start"].as_str().unwrap() > v["now"]["start"].as_str().unwrap());
    // The week file holds exactly that week's days.
    let (_, _, body) = http(&[&url("latest/weeks/2020-W08.json")]);
    let w: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(w["dates"].as_array().unwrap().len(), 7);
    assert!(
        w["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["date"].as_str().unwrap() <= "2020-02-23")
    );
}

#[test]
fn serve_bounds_request_heads_in_size_and_time() {
    use std::io::{Read, Write};
    let out = tempfile::tempdir().unwrap();
    publish(&sample(), out.path());
    let s = serve(out.path());
    // A head larger than 16 KiB is refused.
    let big = "x".repeat(20_000);
    let (st, _, _) = http(&[
        "-H",
        &format!("X-Big: {big}"),
        &format!("http://127.0.0.1:{}/{CH}/latest/feed.json", s.1),
    ]);
    assert_eq!(st, 431);
    // A client that starts a request and never finishes it (slowloris) is cut off after 10 s,
    // and so is one that keeps an idle connection open after its request.
    let started = std::time::Instant::now();
    let mut slow = TcpStream::connect(("127.0.0.1", s.1)).unwrap();
    slow.write_all(b"GET /cetv4.example.cn/latest/feed.json HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut idle = TcpStream::connect(("127.0.0.1", s.1)).unwrap();
    idle.write_all(b"GET /cetv4.example.cn/latest/versions.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    for c in [&mut slow, &mut idle] {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let took = started.elapsed().as_secs_f64();
    assert!((9.0..15.0).contains(&took), "cut off after {took:.1} s");
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "no answer to half a request"
    );
    let mut answer = Vec::new();
    let _ = idle.read_to_end(&mut answer);
    let took = started.elapsed().as_secs_f64();
    assert!(took < 15.0, "idle connection closed after {took:.1} s");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn a_publish_killed_midway_leaves_the_previous_version_served() {
    let out = tempfile::tempdir().unwrap();
    let ch = channel_copy(|w| w);
    publish(ch.path(), out.path());
    let week_path = ch.path().join("weeks/2020-W08.yaml");
    let week = fs::read_to_string(&week_path).unwrap();
    for (i, delay_ms) in [0u64, 2, 5, 10, 20, 40, 80].into_iter().enumerate() {
        // A real change each time, so each publish writes a new version.
        fs::write(
            &week_path,
            week.replacen("at: \"08:00\"", &format!("at: \"08:{:02}\"", i + 1), 1),
        )
        .unwrap();
        let mut child = Command::new(bin())
            .args([
                "publish",
                ch.path().to_str().unwrap(),
                "--out",
                out.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status();
        let _ = child.wait();
        // Whatever happened, latest is a complete version: every file its manifest lists is there.
        let f = feed(out.path());
        let manifest: Value =
            serde_json::from_slice(&fs::read(latest(out.path()).join("manifest.json")).unwrap())
                .unwrap();
        for (rel, _) in manifest.as_object().unwrap() {
            assert!(
                latest(out.path()).join(rel).is_file(),
                "version {} misses {rel}",
                f["version"]
            );
        }
    }
    // And a publish after the kills works and moves on.
    fs::write(
        &week_path,
        week.replacen("at: \"08:00\"", "at: \"08:30\"", 1),
    )
    .unwrap();
    assert!(publish(ch.path(), out.path()).contains("published version"));
}

#[test]
fn chromium_renders_the_page_filters_by_grade_and_finds_the_json_ld() {
    let out = tempfile::tempdir().unwrap();
    publish(&sample(), out.path());
    let s = serve(out.path());
    let profile = tempfile::tempdir().unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let chromium = |extra: &[&str], url: &str| {
        stdout_of(
            Command::new("chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                ])
                .args([
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    "--virtual-time-budget=3000",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .args(extra)
                .arg(url),
            "chromium",
        )
    };
    let url = format!("http://127.0.0.1:{}/{CH}/latest/index.html?grade=3", s.1);
    let dom = chromium(&["--dump-dom"], &url);
    // The filter ran in the browser: grade 3 pressed, other grades' lessons hidden, grade 3's shown.
    assert!(
        dom.contains("data-grade=\"3\" aria-pressed=\"true\""),
        "grade 3 selected"
    );
    let lis: Vec<&str> = dom.split("<li ").skip(1).collect();
    assert!(!lis.is_empty());
    for li in &lis {
        let grade = li
            .split("data-grade=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let hidden = li.split('>').next().unwrap().contains("hidden");
        assert_eq!(
            hidden,
            !(grade == "3" || grade == "all"),
            "li for grade {grade}: hidden={hidden}"
        );
    }
    // JSON-LD: one BroadcastEvent per airing, each with a stable @id that is an element id.
    let ld = dom
        .split("<script type=\"application/ld+json\">")
        .nth(1)
        .unwrap()
        .split("</script>")
        .next()
        .unwrap();
    let v: Value = serde_json::from_str(ld).unwrap();
    let graph = v["@graph"].as_array().unwrap();
    assert_eq!(
        graph.len(),
        feed(out.path())["entries"].as_array().unwrap().len()
    );
    for ev in graph {
        assert_eq!(ev["@type"], "BroadcastEvent");
        let id = ev["@id"].as_str().unwrap().trim_start_matches('#');
        assert!(dom.contains(&format!("id=\"{id}\"")), "{id}");
    }
    // What a reader sees: print the filtered page and read its text back.
    let pdf = shots.join("timetable-grade-3.pdf");
    chromium(
        &[
            "--no-pdf-header-footer",
            &format!("--print-to-pdf={}", pdf.display()),
        ],
        &url,
    );
    let o = Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils)");
    let seen = String::from_utf8_lossy(&o.stdout).replace(char::is_whitespace, "");
    assert!(seen.contains("位置与方向"), "grade 3's lesson is visible");
    assert!(
        !seen.contains("春夏秋冬") && !seen.contains("二次函数"),
        "other grades' lessons are not shown"
    );
    let shot = shots.join("timetable-grade-3.png");
    chromium(
        &[
            "--window-size=412,900",
            &format!("--screenshot={}", shot.display()),
        ],
        &url,
    );
    assert!(
        fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot was taken: {}",
        shot.display()
    );
    let widget = chromium(
        &["--dump-dom"],
        &format!("http://127.0.0.1:{}/{CH}/latest/widget/grade-9.html", s.1),
    );
    assert!(
        widget.contains("初三") && !widget.contains("一年级"),
        "the widget shows only its grade"
    );
}

#[test]
fn publishing_reports_lateness_and_notifies_webhooks_with_retries() {
    // A subscriber that fails the first POST and accepts the second.
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let port = {
        let bodies = bodies.clone();
        http::serve(move |req| {
            let mut b = bodies.lock().unwrap();
            b.push(String::from_utf8_lossy(&req.body).to_string());
            http::Reply::status(if b.len() == 1 { 500 } else { 200 })
        })
    };
    let ch = channel_copy(|w| w);
    let mut channel = fs::read_to_string(ch.path().join("channel.yaml")).unwrap();
    channel.push_str(&format!(
        "publication:\n  lead: wednesday-before\n  webhooks: [\"http://127.0.0.1:{port}/hook\"]\n"
    ));
    fs::write(ch.path().join("channel.yaml"), channel).unwrap();
    let out = tempfile::tempdir().unwrap();
    let msg = publish(ch.path(), out.path());
    assert!(
        msg.contains("published late"),
        "a 2020 week published now is late: {msg}"
    );
    assert!(
        msg.contains(&format!("notified http://127.0.0.1:{port}/hook")),
        "{msg}"
    );
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "one failed POST, then one retry");
    let v: Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["channel"], CH);
    assert!(v["changes"]["added"].as_array().unwrap().len() > 100);

    // A week far ahead is not late.
    let future = channel_copy(|w| {
        w.replace("week: 2020-W08", "week: 2030-W10")
            .replace("start: 2020-02-17", "start: 2030-03-04")
    });
    fs::rename(
        future.path().join("weeks/2020-W08.yaml"),
        future.path().join("weeks/2030-W10.yaml"),
    )
    .unwrap();
    let msg = publish(future.path(), tempfile::tempdir().unwrap().path());
    assert!(!msg.contains("published late"), "{msg}");
}

#[test]
fn air_warns_loudly_about_a_day_that_is_unpublished_or_differs() {
    let out = tempfile::tempdir().unwrap();
    let ch = channel_copy(|w| w);
    let air = |published: &Path| {
        let o = airclass(&[
            "air",
            ch.path().to_str().unwrap(),
            "--output",
            &format!("file:{}", out.path().join("a.ts").display()),
            "--as-if",
            "2020-02-17 08:04:00",
            "--for",
            "1",
            "--as-run-dir",
            out.path().join("asrun").to_str().unwrap(),
            "--published",
            published.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let feed_dir = out.path().join("feed");
    assert!(air(&feed_dir).contains("!!! WARNING: 2020-02-17 is airing but nothing is published"));
    publish(ch.path(), &feed_dir);
    assert!(
        !air(&feed_dir).contains("!!! WARNING"),
        "published and unchanged: no warning"
    );
    let week = fs::read_to_string(ch.path().join("weeks/2020-W08.yaml")).unwrap();
    fs::write(
        ch.path().join("weeks/2020-W08.yaml"),
        week.replacen("at: \"08:00\"", "at: \"08:10\"", 1),
    )
    .unwrap();
    assert!(air(&feed_dir).contains("airs differently from published version 1"));
}
