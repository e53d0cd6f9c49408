//! `airclass run` as an operator meets it: a short test channel on air in real time, its week file
//! replaced by a corrected one and then by a broken one, the operator API with and without the
//! token, every action, metrics, the public feed, and the operator page driven in Chromium.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123456789abcdef";

/// The week: four 20 s programmes pinned from 08:00:00, each its own colour, and a fifth whose
/// media is missing.
fn week(p1_title: &str, p3: (&str, &str)) -> String {
    format!(
        "week: 2020-W08\nstart: 2020-02-17\ndays:\n  mon:\n    pinned:\n\
         \x20     - {{ id: p1, at: \"08:00:00\", title: {p1_title}, media: media/red.mp4, duration: 20s }}\n\
         \x20     - {{ id: p2, at: \"08:00:20\", title: 第二条, media: media/green.mp4, duration: 20s }}\n\
         \x20     - {{ id: p3, at: \"08:00:40\", title: {}, media: {}, duration: 20s }}\n\
         \x20     - {{ id: p4, at: \"08:01:00\", title: 第四条, media: media/white.mp4, duration: 20s }}\n\
         \x20     - {{ id: p5, at: \"08:01:20\", title: 第五条, media: media/missing.mp4, duration: 20s }}\n",
        p3.0, p3.1
    )
}

/// A channel directory with the week above and its media.
fn short_channel(dir: &Path) {
    std::fs::create_dir_all(dir.join("weeks")).unwrap();
    std::fs::write(
        dir.join("channel.yaml"),
        "id: test.example.cn\nname: 测试频道\nshort_name: TEST\ntimezone: Asia/Shanghai\n\
         broadcast_day_start: \"06:00\"\nvideo: { width: 720, height: 576, fps: \"25\", aspect: \"16:9\" }\n\
         air_hours: [{ from: \"08:00\", to: \"12:00\" }]\n\
         break: { duration: 10m, media: media/break.mp4 }\nslate: media/slate.mp4\nfiller: media/filler.mp4\n\
         output: { service_name: TEST, provider_name: airclass tests, program_number: 1, video_kbps: 1800, audio_kbps: 128, mux_kbps: 2400 }\n\
         subjects: [语文]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("weeks/2020-W08.yaml"),
        week("第一条", ("第三条", "media/blue.mp4")),
    )
    .unwrap();
    for (name, colour) in [
        ("red", "red"),
        ("green", "green"),
        ("blue", "blue"),
        ("yellow", "yellow"),
        ("white", "white"),
        ("slate", "gray"),
        ("filler", "black"),
        ("break", "purple"),
    ] {
        colour_clip(&dir.join(format!("media/{name}.mp4")), colour, 25);
    }
}

/// Replace a file the way editors save: write a temporary file beside it, then rename.
fn save(path: &Path, text: &str) {
    let tmp = path.with_file_name(".editor-save.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Service {
    child: Killed,
    operator: String,
    public: String,
    state: PathBuf,
}

impl Service {
    /// `airclass run` on `channel`, as if it were 08:00:01 on the test Monday, to a file; its
    /// log goes to STATE.log.
    fn start(channel: &Path, state: &Path, out: &Path, extra: &[&str]) -> Service {
        let (op, public) = (free_port(), free_port());
        let log = std::fs::File::create(state.with_extension("log")).unwrap();
        let child = Command::new(bin())
            .args([
                "run",
                channel.to_str().unwrap(),
                "--as-if",
                "2020-02-17 08:00:01",
            ])
            .args(["--output", &format!("file:{}", out.display())])
            .args(["--state", state.to_str().unwrap()])
            .args(["--operator", &format!("127.0.0.1:{op}")])
            .args(["--public", &format!("127.0.0.1:{public}")])
            .args(extra)
            .env("AIRCLASS_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let s = Service {
            child: Killed(child),
            operator: format!("http://127.0.0.1:{op}"),
            public: format!("http://127.0.0.1:{public}"),
            state: state.to_path_buf(),
        };
        s.wait_for("the engine on air", 20, |st| {
            st["engine"]["on_air"].is_object()
        });
        s
    }

    fn api(&self, method: &str, path: &str) -> (u16, Value) {
        let auth = format!("Bearer {TOKEN}");
        let (code, body) = http::request(
            method,
            &format!("{}{path}", self.operator),
            &[("Authorization", &auth)],
        );
        (
            code,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    fn status(&self) -> Value {
        let (code, v) = self.api("GET", "/api/status");
        assert_eq!(code, 200, "{v}");
        v
    }

    /// Poll the status until `ok` holds, for at most `secs` seconds.
    fn wait_for(&self, what: &str, secs: u64, ok: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = http::try_request(
                "GET",
                &format!("{}/api/status", self.operator),
                &[("Authorization", &format!("Bearer {TOKEN}"))],
            );
            if let Ok((200, body)) = got {
                let v: Value = serde_json::from_str(&body).unwrap();
                if ok(&v) {
                    return v;
                }
            }
            assert!(Instant::now() < until, "waited {secs} s for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait until the schedule clock passes `secs` seconds after 08:00 on the test Monday.
    fn wait_until(&self, secs: i64) {
        let at = chrono::DateTime::parse_from_rfc3339("2020-02-17T08:00:00+08:00").unwrap()
            + chrono::Duration::seconds(secs);
        self.wait_for(&format!("08:00 + {secs} s"), 60, |st| {
            chrono::DateTime::parse_from_rfc3339(st["schedule_now"].as_str().unwrap()).unwrap() > at
        });
    }

    /// SIGTERM, and insist on a clean exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.0.id().to_string()])
            .status();
        let status = self.child.0.wait().unwrap();
        assert!(status.success(), "airclass run exited with {status}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state.with_extension("log")).unwrap()
    }

    fn as_run(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state.join("as-run/test.example.cn-2020-02-17.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Frame of the broadcast day (from 06:00) at HH:MM:SS.
fn frame(hms: &str) -> i64 {
    let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    ((p[0] - 6) * 3600 + p[1] * 60 + p[2]) * 25
}

#[test]
fn run_reloads_schedules_at_the_next_boundary_and_obeys_the_operator() {
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let ch = tmp.path().join("channel");
    short_channel(&ch);
    let out = tmp.path().join("out.ts");
    let svc = Service::start(&ch, &tmp.path().join("state"), &out, &[]);

    // The API refuses requests without the right token; the page itself needs none.
    for (method, path, auth) in [
        ("GET", "/api/status", None),
        (
            "GET",
            "/api/status",
            Some("Bearer wrong-token-0123456789abcd"),
        ),
        ("POST", "/api/skip", None),
        ("POST", "/api/reload", Some(TOKEN)),
        ("GET", "/metrics", None),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let (code, _) = http::request(method, &format!("{}{path}", svc.operator), &headers);
        assert_eq!(code, 401, "{method} {path} with {auth:?}");
    }
    assert_eq!(
        http::request("GET", &format!("{}/", svc.operator), &[]).0,
        200
    );
    let st = svc.status();
    assert_eq!(
        st["engine"]["on_air"]["id"],
        "2020-02-17-p1",
        "{st}\n{}",
        svc.log()
    );

    // A corrected week while p1 is on air: p1 renamed (on air: takes effect at its end), p3
    // retitled with new media.
    let week_file = ch.join("weeks/2020-W08.yaml");
    save(
        &week_file,
        &week("第一条（更正）", ("第三条（更正）", "media/yellow.mp4")),
    );
    let st = svc.wait_for("the corrected week to load", 10, |st| {
        st["reload"]["ok"] == true
    });
    assert_eq!(
        st["engine"]["on_air"]["id"], "2020-02-17-p1",
        "the reload must land while p1 is on air for this test: {st}"
    );
    assert_eq!(
        st["engine"]["on_air"]["title"], "第一条",
        "on air stays as it was"
    );

    // Then a broken one, while p2 is on air: rejected with its position, schedule kept.
    svc.wait_until(21);
    let broken = week("第一条（更正）", ("第三条（更正）", "media/yellow.mp4")).replace(
        "duration: 20s }\n      - { id: p4",
        "duration: twenty }\n      - { id: p4",
    );
    save(&week_file, &broken);
    let st = svc.wait_for("the broken week to be rejected", 10, |st| {
        st["reload"]["ok"] == false
    });
    let message = st["reload"]["message"].as_str().unwrap();
    let line = broken.lines().nth(7).unwrap();
    let col = line[..line.find("twenty").unwrap()].chars().count() + 1;
    assert!(
        message.contains(&format!(
            "weeks/2020-W08.yaml:8:{col}: `twenty` is not a duration"
        )),
        "{message}"
    );

    // p3 airs as corrected.
    svc.wait_until(41);
    let st = svc.status();
    assert_eq!(st["engine"]["on_air"]["id"], "2020-02-17-p3");
    assert_eq!(st["engine"]["on_air"]["title"], "第三条（更正）");
    assert_eq!(st["engine"]["on_air"]["media"], "media/yellow.mp4");

    // The actions, each answered and logged.
    for (action, held) in [("hold", true), ("resume", false)] {
        let (code, v) = svc.api("POST", &format!("/api/{action}"));
        assert_eq!((code, &v["ok"]), (200, &Value::Bool(true)), "{action}: {v}");
        svc.wait_for(&format!("held = {held}"), 3, |st| {
            st["engine"]["held"] == held
        });
    }
    let (code, v) = svc.api("POST", "/api/skip");
    assert_eq!(code, 200, "{v}");
    let st = svc.wait_for("p4 on air early", 3, |st| {
        st["engine"]["on_air"]["id"] == "2020-02-17-p4"
    });
    assert_eq!(st["engine"]["on_air"]["early"], true);
    let (code, v) = svc.api("POST", "/api/reload");
    assert_eq!(code, 422, "reloading the broken file is refused: {v}");
    save(
        &week_file,
        &week("第一条（更正）", ("第三条（更正）", "media/yellow.mp4")),
    );
    svc.wait_for("the fixed week to load", 10, |st| {
        st["reload"]["ok"] == true
    });

    let (code, metrics) = http::request(
        "GET",
        &format!("{}/metrics", svc.operator),
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(code, 200);
    for line in [
        "airclass_on_air 1",
        "airclass_schedule_reloads_total{result=\"applied\"} 2",
        "airclass_schedule_reloads_total{result=\"rejected\"} 2",
        "airclass_faults_total{kind=\"unavailable\"} 0",
        "airclass_media_problems_ahead{severity=\"error\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}` in\n{metrics}"
        );
    }
    let items: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("airclass_items_aired_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(items, 4, "p1 (joined), p2, p3, p4");

    // The public feed was republished with the correction.
    let (code, feed) = http::request(
        "GET",
        &format!("{}/test.example.cn/latest/feed.json", svc.public),
        &[],
    );
    assert_eq!(code, 200);
    let feed: Value = serde_json::from_str(&feed).unwrap();
    assert!(feed["version"].as_u64().unwrap() >= 2);
    let p3 = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "2020-02-17-p3")
        .unwrap();
    assert_eq!(p3["title"], "第三条（更正）");

    let log = svc.as_run();
    let service_log = svc.log();
    svc.stop();
    assert!(
        service_log.contains("schedule reload rejected, keeping the running schedule")
            && service_log.contains(&format!("2020-W08.yaml:8:{col}")),
        "{service_log}"
    );

    // As-run: p1 ended exactly at its planned end under its old title; p2 and p3 started on
    // their planned frames, p3 with the corrected media; every action is there.
    let find = |event: &str, item: &str| {
        log.iter()
            .find(|e| e["event"] == event && e["item"] == format!("2020-02-17-{item}"))
            .unwrap_or_else(|| panic!("no {event} of {item} in {log:#?}"))
    };
    let p1_end = find("end", "p1");
    assert_eq!(p1_end["title"], "第一条");
    assert_eq!(p1_end["actual_frame"], frame("08:00:20"));
    assert_eq!(find("start", "p2")["actual_frame"], frame("08:00:20"));
    let p3_start = find("start", "p3");
    assert_eq!(p3_start["actual_frame"], frame("08:00:40"));
    assert_eq!(p3_start["media"], "media/yellow.mp4");
    let ops: Vec<&str> = log
        .iter()
        .filter(|e| e["event"] == "operator")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    for expected in [
        "schedule reloaded",
        "schedule reload rejected, running schedule kept",
        "hold by operator API: holding on slate",
        "resume by operator API: resumed",
        "skip by operator API: skipped to 2020-02-17-p4",
    ] {
        assert!(
            ops.iter().any(|d| d.contains(expected)),
            "no `{expected}` in {ops:#?}"
        );
    }

    // The output has no gap: every frame follows the last by exactly one frame's time, and the
    // corrected p3 (yellow, bright) is what aired in its slot.
    let pts = video_pts(&out);
    assert!(pts.len() > 25 * 40, "{} frames", pts.len());
    let steps: std::collections::BTreeSet<i64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(steps.into_iter().collect::<Vec<_>>(), vec![3600]);
    let p3_out = p3_start["output_frame"].as_i64().unwrap();
    let luma = mean_luma(&out, p3_out + 12);
    assert!(luma > 150.0, "yellow has a bright luma, found {luma}");
}

/// A minimal Chrome DevTools Protocol client over one WebSocket.
struct Browser {
    _child: Killed,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1280,1000",
                &format!("--remote-debugging-port={port}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium is installed");
        // Killed if the browser never offers a page (a panic below).
        let child = Killed(child);
        let until = Instant::now() + Duration::from_secs(20);
        let page = loop {
            if let Ok((_, body)) =
                http::try_request("GET", &format!("http://127.0.0.1:{port}/json/list"), &[])
            {
                let list: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                if let Some(p) = list
                    .as_array()
                    .and_then(|l| l.iter().find(|t| t["type"] == "page"))
                {
                    break p["webSocketDebuggerUrl"].as_str().unwrap().to_string();
                }
            }
            assert!(Instant::now() < until, "chromium did not offer a page");
            std::thread::sleep(Duration::from_millis(200));
        };
        let (ws, _) = tungstenite::connect(page).unwrap();
        Browser {
            _child: child,
            ws,
            id: 0,
            _profile: profile,
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let msg = serde_json::json!({"id": self.id, "method": method, "params": params});
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .unwrap();
        loop {
            let m = self.ws.read().unwrap();
            if let Ok(v) = serde_json::from_str::<Value>(m.to_text().unwrap_or(""))
                && v["id"] == self.id
            {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluate a JavaScript expression in the page and return its value.
    fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": js, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    fn wait(&mut self, what: &str, js: &str) -> Value {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.eval(js);
            if !v.is_null() && v != Value::Bool(false) && v != "" {
                return v;
            }
            assert!(Instant::now() < until, "waited 10 s for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A child process killed when this is dropped (when a test fails, too; one that has exited
/// already is left alone).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn chromium_shows_the_on_air_item_and_skip_moves_on_air_to_the_next() {
    use base64::Engine;
    let _g = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let ch = tmp.path().join("channel");
    short_channel(&ch);
    let svc = Service::start(
        &ch,
        &tmp.path().join("state"),
        &tmp.path().join("out.ts"),
        &["--log-json"],
    );
    let mut b = Browser::start();
    b.call(
        "Page.navigate",
        serde_json::json!({"url": format!("{}/#token={TOKEN}", svc.operator)}),
    );
    let shown = b.wait(
        "the on-air item on the page",
        "document.getElementById('on-air-title').dataset.id",
    );
    assert_eq!(shown, "2020-02-17-p1");
    assert_eq!(
        b.wait(
            "the title",
            "document.getElementById('on-air-title').textContent"
        ),
        "第一条"
    );
    b.wait(
        "the on-air row highlighted",
        "document.querySelector('tr.on-air')?.dataset.id === '2020-02-17-p1'",
    );
    let countdown = b.wait(
        "a countdown",
        "(t => /^\\d\\d:\\d\\d$/.test(t) && t)(document.getElementById('countdown').textContent)",
    );
    assert!(
        countdown.as_str().unwrap().starts_with("00:"),
        "countdown {countdown}"
    );
    b.wait(
        "the media problem ahead",
        "document.getElementById('media').textContent.includes('media/missing.mp4')",
    );
    // The token left the address bar.
    assert_eq!(b.eval("location.hash"), "");

    b.eval("document.querySelector('button[data-action=skip]').click()");
    let shown = b.wait(
        "p2 on air after the click",
        "(t => t === '2020-02-17-p2' && t)(document.getElementById('on-air-title').dataset.id)",
    );
    assert_eq!(shown, "2020-02-17-p2");
    assert_eq!(svc.status()["engine"]["on_air"]["id"], "2020-02-17-p2");
    b.wait(
        "the new row highlighted",
        "document.querySelector('tr.on-air')?.dataset.id === '2020-02-17-p2'",
    );
    let shot = b.call(
        "Page.captureScreenshot",
        serde_json::json!({"format": "png"}),
    );
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("operator-page.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!(
        "operator page screenshot: {} ({} bytes)",
        path.display(),
        png.len()
    );
    assert!(png.starts_with(b"\x89PNG"));
    drop(b);
    // --log-json: every log line is a JSON object with a level and a message.
    let log = svc.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["fields"]["message"].is_string())
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "published a new timetable version"),
        "{log}"
    );
    let skipped = svc.as_run().into_iter().any(|e| {
        e["event"] == "operator"
            && e["detail"]
                .as_str()
                .unwrap()
                .starts_with("skip by operator API")
    });
    svc.stop();
    assert!(skipped, "the click is in the as-run log");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/airclass.service"),
    )
    .unwrap();
    // verify checks that ExecStart's program exists: point it at the binary under test.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("airclass.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/airclass", bin())).unwrap();
    let o = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze is installed");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.trim().is_empty(), "{err}");
    // Every option ExecStart passes is one `airclass run` has.
    let help = text(&airclass(&["run", "--help"]));
    let exec = unit
        .split("ExecStart=")
        .nth(1)
        .unwrap()
        .split("\n#")
        .next()
        .unwrap();
    let flags: Vec<&str> = exec
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(flags.len() >= 5, "{exec}");
    for f in flags {
        assert!(help.contains(f), "`airclass run` has no {f}");
    }
}
