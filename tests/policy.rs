//! The scheduler's brain: the policy report on the sample weeks, semantic errors at their lines,
//! the committed JSON Schemas, and property tests of the builder over random weeks.

mod common;
use airclass::policy::DayReport;
use airclass::rundown::{self, ItemKind};
use airclass::schedule::{DayPlan, Entry, EntryKind, Grade, Pos, Schedule, Strand, Week};
use chrono::{Days, NaiveDate};
use common::*;
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

fn week_reports(monday: &str) -> (bool, Vec<DayReport>, Vec<serde_json::Value>) {
    let o = airclass(&[
        "build",
        sample().to_str().unwrap(),
        "--week",
        monday,
        "--report",
        "--format",
        "json",
    ]);
    let v: Vec<serde_json::Value> =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(&o)));
    let sched = Schedule::load(&sample()).unwrap();
    let start: NaiveDate = monday.parse().unwrap();
    let reports = (0..7)
        .map(|i| rundown::report(&sched, &rundown::build(&sched, start + Days::new(i))))
        .collect();
    (o.status.success(), reports, v)
}

#[test]
fn the_sample_week_passes_every_rule() {
    let (ok, reports, json) = week_reports("2020-02-17");
    assert!(ok, "build --report must exit 0 when every rule passes");
    assert_eq!(json.len(), 7);
    for r in &reports {
        for rule in &r.rules {
            assert!(rule.pass, "{} {}: {}", r.date, rule.rule, rule.detail);
        }
        assert!(r.primary_share_percent >= 60.0, "{}", r.date);
        for g in &r.grades {
            if let Some(max) = g.daily_max_minutes {
                assert!(g.lesson_minutes <= max);
            }
            assert!(g.longest_screen_minutes <= 30.0);
        }
    }
    // Grade 9 and grade 12 slots filled by their grade on every school day.
    for r in &reports[..5] {
        assert_eq!(r.exam_slots.len(), 2);
        assert!(
            r.exam_slots.iter().all(|s| s.filled),
            "{}: {:?}",
            r.date,
            r.exam_slots
        );
        assert!(r.not_placed.is_empty(), "{}: {:?}", r.date, r.not_placed);
    }
}

#[test]
fn the_dense_week_lists_exactly_what_did_not_fit_and_breaks_no_rule() {
    let (ok, reports, _) = week_reports("2020-02-24");
    assert!(ok);
    let sched = Schedule::load(&sample()).unwrap();
    let mut total_unplaced = 0;
    for r in &reports {
        assert!(r.passed(), "{}: {:?}", r.date, r.rules);
        let date: NaiveDate = r.date.parse().unwrap();
        let plan = sched.day(date).unwrap();
        let all: BTreeSet<String> = plan
            .lessons
            .values()
            .flatten()
            .chain(&plan.extras)
            .chain(&plan.pinned)
            .map(|e| e.id.clone())
            .collect();
        let rd = rundown::build(&sched, date);
        let placed: BTreeSet<String> = rd
            .items
            .iter()
            .filter(|i| i.rerun_of.is_none())
            .filter_map(|i| i.id.strip_prefix(&format!("{date}-")).map(String::from))
            .collect();
        let unplaced: BTreeSet<String> = r.not_placed.iter().map(|u| u.id.clone()).collect();
        assert!(placed.is_disjoint(&unplaced));
        let accounted: BTreeSet<String> = placed
            .intersection(&all)
            .cloned()
            .chain(unplaced.iter().cloned())
            .collect();
        assert_eq!(
            accounted, all,
            "{date}: every entry is either placed or listed"
        );
        assert!(r.not_placed.iter().all(|u| !u.reason.is_empty()));
        total_unplaced += unplaced.len();
    }
    assert!(total_unplaced > 0, "the dense week must not fit");
}

#[test]
fn twelve_broken_weeks_give_the_right_message_at_the_right_line() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/broken-weeks");
    let mut n = 0;
    for f in fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        let text = fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .unwrap()
            .strip_prefix("# expect: ")
            .expect("first line says what to expect");
        let (pos, msg) = expect.split_once(": ").unwrap();
        let ch = tempfile::tempdir().unwrap();
        fs::copy(
            sample().join("channel.yaml"),
            ch.path().join("channel.yaml"),
        )
        .unwrap();
        fs::create_dir_all(ch.path().join("weeks")).unwrap();
        fs::create_dir_all(ch.path().join("media")).unwrap();
        let week = ch.path().join("weeks/2020-W08.yaml");
        fs::write(&week, &text).unwrap();
        // The media-length case needs a real file: two seconds where the week says 20 minutes.
        let s = Command::new("gst-launch-1.0")
            .args([
                "-q",
                "videotestsrc",
                "num-buffers=50",
                "!",
                "x264enc",
                "!",
                "mp4mux",
                "!",
                "filesink",
            ])
            .arg(format!(
                "location={}",
                ch.path().join("media/a.mp4").display()
            ))
            .status()
            .unwrap();
        assert!(s.success());
        let o = airclass(&["validate", ch.path().to_str().unwrap(), "--probe"]);
        let out = text_of(&o);
        assert!(!o.status.success(), "{}: should fail", f.display());
        let want = format!("{}:{pos}: ", week.display());
        assert!(
            out.contains(&want),
            "{}: expected `{want}` in:\n{out}",
            f.display()
        );
        assert!(
            out.contains(msg),
            "{}: expected `{msg}` in:\n{out}",
            f.display()
        );
        n += 1;
    }
    assert_eq!(n, 12);
}

fn text_of(o: &std::process::Output) -> String {
    text(o)
}

#[test]
fn the_committed_json_schemas_match_the_code() {
    for which in ["channel", "week"] {
        let o = airclass(&["schema", which]);
        let generated: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("schema/{which}.schema.json"));
        let committed: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            generated, committed,
            "regenerate with `airclass schema {which} > schema/{which}.schema.json`"
        );
    }
    // The sample files point editors at them.
    let week = fs::read_to_string(sample().join("weeks/2020-W08.yaml")).unwrap();
    assert!(week.starts_with("# yaml-language-server: $schema=../../../schema/week.schema.json"));
}

// ---- property tests over random weeks ----

fn entry(
    id: String,
    kind: EntryKind,
    grade: Option<u8>,
    minutes: i64,
    at: Option<(u32, u32)>,
    strand: Option<Strand>,
) -> Entry {
    Entry {
        id,
        kind,
        title: "课".into(),
        subject: (kind == EntryKind::Lesson).then(|| "语文".into()),
        number: None,
        grade: grade.map(Grade),
        strand,
        media: "media/x.mp4".into(),
        sha256: None,
        duration: minutes * 60 * 25,
        at: at.map(|(h, m)| chrono::NaiveTime::from_hms_opt(h, m, 0).unwrap()),
        pos: Pos::default(),
        duration_pos: Pos::default(),
    }
}

prop_compose! {
    fn day_plan(day: usize)(
        lessons in proptest::collection::vec((1u8..=12, 0usize..4), 0..12),
        minutes in proptest::collection::vec(5i64..=30, 12),
        extras in 0usize..3,
        pin in proptest::option::of((8u32..17, 0u32..4)),
    ) -> DayPlan {
        let mut plan = DayPlan::default();
        for (i, (g, n)) in lessons.into_iter().enumerate() {
            let cap = if g <= 6 { 20 } else { 30 };
            for k in 0..n {
                let m = minutes[(i + k) % minutes.len()].min(cap);
                plan.lessons.entry(Grade(g)).or_default().push(entry(format!("d{day}-l{i}-{k}"), EntryKind::Lesson, Some(g), m, None, None));
            }
        }
        for k in 0..extras {
            plan.extras.push(entry(format!("d{day}-x{k}"), EntryKind::Strand, None, 10 + 5 * k as i64, None, Some(Strand::LifeSafety)));
        }
        if let Some((h, q)) = pin {
            // Pinned programmes avoid the exam slots and stay inside the air hours.
            if !(11..=14).contains(&h) {
                plan.pinned.push(entry(format!("d{day}-p"), EntryKind::Programme, None, 5, Some((h, q * 15)), None));
            }
        }
        plan
    }
}

prop_compose! {
    fn random_week()(days in proptest::collection::vec(proptest::option::of(day_plan(0)), 7)) -> Vec<Option<DayPlan>> { days }
}

fn schedule_with(days: Vec<Option<DayPlan>>) -> Schedule {
    let mut sched = Schedule::load(&sample()).unwrap();
    let start = NaiveDate::from_ymd_opt(2020, 3, 2).unwrap();
    let mut week = Week {
        file: "random.yaml".into(),
        name: "2020-W10".into(),
        start,
        days: Default::default(),
    };
    for (i, d) in days.into_iter().enumerate() {
        if let Some(mut plan) = d {
            // Ids unique across the week, as validation demands.
            for e in plan
                .lessons
                .values_mut()
                .flatten()
                .chain(plan.extras.iter_mut())
                .chain(plan.pinned.iter_mut())
            {
                e.id = format!("w{i}-{}", e.id);
            }
            week.days.insert(start + Days::new(i as u64), plan);
        }
    }
    sched.weeks = vec![week];
    sched
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_weeks_build_frame_exact_rundowns_within_the_rules(days in random_week()) {
        let sched = schedule_with(days);
        for i in 0..7 {
            let date = NaiveDate::from_ymd_opt(2020, 3, 2).unwrap() + Days::new(i);
            let rd = rundown::build(&sched, date);
            // No gaps, no overlaps, the whole day.
            let mut next = 0;
            for it in &rd.items {
                prop_assert_eq!(it.start, next);
                prop_assert!(it.duration > 0);
                next = it.end();
            }
            prop_assert_eq!(next, rd.day.frames());
            // Pinned entries exactly on time.
            if let Some(plan) = sched.day(date) {
                for p in &plan.pinned {
                    let it = rd.items.iter().find(|i| i.id == format!("{date}-{}", p.id)).expect("pinned placed");
                    let want = rd.day.frame_of_local(p.at.unwrap(), sched.channel.day_start, sched.channel.tz);
                    prop_assert_eq!(it.start, want);
                }
                // Every entry is placed or listed with a reason.
                let all = plan.lessons.values().flatten().chain(&plan.extras).chain(&plan.pinned).count();
                let placed = rd.items.iter().filter(|i| i.rerun_of.is_none() && !matches!(i.kind, ItemKind::Break | ItemKind::Filler)).count();
                prop_assert_eq!(placed + rd.unplaced.len(), all);
            }
            // Every policy rule holds (pinned strands are not required by these random days).
            let rep = rundown::report(&sched, &rd);
            // A rule the day cannot meet must come with the builder's reason.
            for r in rep.rules.iter().filter(|r| r.rule != "strands" && !r.pass) {
                let explained = rd.warnings.iter().any(|w| w.contains(&r.rule.replace('-', " ")));
                prop_assert!(explained, "{} {}: {} (warnings: {:?})\n{}", date, r.rule, r.detail, rd.warnings, rundown::to_table(&rd));
            }
            // Same input, same output.
            prop_assert_eq!(&rundown::build(&sched, date), &rd);
        }
    }
}
