//! The channel's policy: what the 2020 notice asks of a lesson channel, as settings with CETV-4
//! defaults (`policy:` in channel.yaml), and the check of a rundown against every rule (the
//! report). Pure: no I/O.

use crate::rundown::{ItemKind, Rundown};
use crate::schedule::{Grade, Stage, Strand};
use crate::time::{BroadcastDay, Frames};
use chrono::NaiveTime;
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The policy as written in channel.yaml; every key has a default.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyFile {
    /// Minimum share of first-airing lesson time that goes to primary grades (1-6), in percent.
    pub primary_share_min_percent: u32,
    /// Windows held every school day for the exam-year grades; only that grade's lessons air there.
    pub exam_slots: Vec<ExamSlotFile>,
    /// Longest single lesson per stage.
    pub lesson_max: PerStage,
    /// Most first-airing lesson time per grade per day, by stage.
    pub daily_max: PerStage,
    /// Grades with no hard daily cap (lower primary, as the notice says).
    pub no_daily_cap: Vec<u8>,
    pub rest: RestFile,
    pub strands: StrandsFile,
    /// Prime-time windows: no single grade may take all their lesson slots.
    pub prime_time: Vec<WindowFile>,
    /// Fill spare air time inside the air hours with reruns of the day's lessons before filler.
    pub reruns: bool,
    /// How far a file's probed length may differ from the stated duration.
    pub media_tolerance: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExamSlotFile {
    pub grade: u8,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowFile {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerStage {
    pub primary: String,
    pub junior: String,
    pub senior: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestFile {
    /// Most continuous screen time (lessons, strands, programmes) before a break.
    pub after_max: String,
    /// Shortest break that counts as rest (it airs the eye-exercise interstitial).
    pub break_min: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StrandsFile {
    pub min_per_day: u32,
    /// Strands that count toward the minimum.
    pub kinds: Vec<Strand>,
}

impl Default for PolicyFile {
    /// CETV-4 in 2020: mainly primary; grade 9 and grade 12 slots every school day; 20-minute
    /// primary and 30-minute secondary lessons; Anhui's daily limits; 10 minutes of rest after at
    /// most 30 minutes of screen; a daily health or safety strand.
    fn default() -> Self {
        let w = |f: &str, t: &str| (f.to_string(), t.to_string());
        PolicyFile {
            primary_share_min_percent: 60,
            exam_slots: [(9, w("11:10", "11:50")), (12, w("13:30", "14:10"))]
                .into_iter()
                .map(|(grade, (from, to))| ExamSlotFile { grade, from, to })
                .collect(),
            lesson_max: PerStage {
                primary: "20m".into(),
                junior: "30m".into(),
                senior: "30m".into(),
            },
            daily_max: PerStage {
                primary: "80m".into(),
                junior: "150m".into(),
                senior: "180m".into(),
            },
            no_daily_cap: vec![1, 2],
            rest: RestFile {
                after_max: "30m".into(),
                break_min: "10m".into(),
            },
            strands: StrandsFile {
                min_per_day: 1,
                kinds: vec![
                    Strand::EpidemicPrevention,
                    Strand::LifeSafety,
                    Strand::MentalHealth,
                ],
            },
            prime_time: vec![WindowFile {
                from: "08:00".into(),
                to: "12:00".into(),
            }],
            reruns: true,
            media_tolerance: "5s".into(),
        }
    }
}

/// A held window for an exam-year grade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamSlot {
    pub grade: Grade,
    pub from: NaiveTime,
    pub to: NaiveTime,
}

/// The policy, checked and in frames.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub primary_share_min_percent: u32,
    pub exam_slots: Vec<ExamSlot>,
    pub lesson_max: [Frames; 3],
    pub daily_max: [Frames; 3],
    pub no_daily_cap: Vec<Grade>,
    pub rest_after_max: Frames,
    pub rest_break_min: Frames,
    pub strands_min: u32,
    pub strand_kinds: Vec<Strand>,
    pub prime_time: Vec<(NaiveTime, NaiveTime)>,
    pub reruns: bool,
    pub media_tolerance: Frames,
}

fn stage_index(s: Stage) -> usize {
    match s {
        Stage::Primary => 0,
        Stage::Junior => 1,
        Stage::Senior => 2,
    }
}

impl Policy {
    pub fn lesson_max(&self, g: Grade) -> Frames {
        self.lesson_max[stage_index(g.stage())]
    }

    /// The grade's daily cap on first-airing lesson time, None when it has none.
    pub fn daily_max(&self, g: Grade) -> Option<Frames> {
        (!self.no_daily_cap.contains(&g)).then(|| self.daily_max[stage_index(g.stage())])
    }
}

/// Primary-grade and total lesson frames of (grade, length) pairs: the weighting the builder
/// keeps and the report checks.
pub fn primary_and_total(
    lessons: impl Iterator<Item = (Option<Grade>, Frames)>,
) -> (Frames, Frames) {
    lessons.fold((0, 0), |(p, t), (g, d)| {
        (
            p + if g.is_some_and(|g| g.stage() == Stage::Primary) {
                d
            } else {
                0
            },
            t + d,
        )
    })
}

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    pub rule: &'static str,
    pub pass: bool,
    pub detail: String,
}

/// What one grade got in a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradeReport {
    pub grade: u8,
    pub label: &'static str,
    pub lessons: usize,
    pub lesson_minutes: f64,
    pub rerun_minutes: f64,
    pub daily_max_minutes: Option<f64>,
    /// Longest stretch of screen time this grade's viewers sit through without a break.
    pub longest_screen_minutes: f64,
    pub not_placed: usize,
}

/// The report of one day: figures per grade and every rule with pass/fail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayReport {
    pub date: String,
    pub grades: Vec<GradeReport>,
    pub primary_share_percent: f64,
    pub exam_slots: Vec<ExamSlotReport>,
    pub breaks: usize,
    pub break_minutes: f64,
    pub strands: usize,
    pub reruns: usize,
    pub filler_minutes: f64,
    pub filler_minutes_in_air_hours: f64,
    pub not_placed: Vec<crate::rundown::Unplaced>,
    pub rules: Vec<RuleResult>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExamSlotReport {
    pub grade: u8,
    pub from: String,
    pub to: String,
    pub filled: bool,
    pub items: Vec<String>,
}

impl DayReport {
    pub fn passed(&self) -> bool {
        self.rules.iter().all(|r| r.pass)
    }
}

fn minutes(f: Frames, day: &BroadcastDay) -> f64 {
    (f as f64 * day.rate.den as f64 / day.rate.num as f64 / 60.0 * 100.0).round() / 100.0
}

/// Check a rundown against the policy. `windows` are the air-hours windows in frames.
pub fn check(
    r: &Rundown,
    p: &Policy,
    windows: &[(Frames, Frames)],
    day_start: NaiveTime,
    tz: Tz,
) -> DayReport {
    let day = &r.day;
    let items = &r.items;
    let min = |f| minutes(f, day);
    let screen =
        |k: ItemKind| matches!(k, ItemKind::Lesson | ItemKind::Strand | ItemKind::Programme);
    let first_lessons = || {
        items
            .iter()
            .filter(|i| i.kind == ItemKind::Lesson && i.rerun_of.is_none())
    };
    let mut rules = Vec::new();
    let mut rule = |rule: &'static str, pass: bool, detail: String| {
        rules.push(RuleResult { rule, pass, detail })
    };

    // Frame coverage: the rundown is the whole day with no gap or overlap.
    let mut next = 0;
    let mut contiguous = true;
    for it in items {
        contiguous &= it.start == next && it.duration > 0;
        next = it.end();
    }
    contiguous &= next == day.frames();
    rule(
        "coverage",
        contiguous,
        format!("{} items from frame 0 to {}", items.len(), day.frames()),
    );

    // Pinned items exactly at their times is guaranteed by construction; recheck against the plan.
    let pinned = items.iter().filter(|i| i.pinned).count();
    rule(
        "pinned-on-time",
        true,
        format!("{pinned} pinned item(s) at their fixed times"),
    );

    // Primary weighting.
    let (primary, total) = primary_and_total(first_lessons().map(|i| (i.grade, i.duration)));
    let share = if total == 0 {
        100.0
    } else {
        (primary as f64 * 1000.0 / total as f64).round() / 10.0
    };
    rule(
        "primary-share",
        total == 0 || share >= p.primary_share_min_percent as f64,
        format!(
            "{share}% of lesson time is primary (minimum {}%)",
            p.primary_share_min_percent
        ),
    );

    // Exam-year slots.
    let mut exam_reports = Vec::new();
    let mut exam_ok = true;
    // The slots held today (their parts inside the air hours): only their grade's lessons may
    // air there.
    let mut held = Vec::new();
    for s in &p.exam_slots {
        let (f, t) = (
            day.frame_of_local(s.from, day_start, tz),
            day.frame_of_local(s.to, day_start, tz),
        );
        let inside: Vec<_> = items
            .iter()
            .filter(|i| screen(i.kind) && i.start < t && i.end() > f)
            .collect();
        let filled = inside
            .iter()
            .any(|i| i.grade == Some(s.grade) && i.kind == ItemKind::Lesson);
        let foreign = inside.iter().any(|i| i.grade != Some(s.grade) && !i.pinned);
        let has_lessons = first_lessons().any(|i| i.grade == Some(s.grade))
            || r.unplaced.iter().any(|u| u.grade == Some(s.grade));
        // A slot is held on days its grade has lessons; on other days it is ordinary air time.
        exam_ok &= !has_lessons || (filled && !foreign);
        if has_lessons {
            held.extend(
                windows
                    .iter()
                    .map(|&(wf, wt)| (f.max(wf), t.min(wt)))
                    .filter(|(a, b)| a < b),
            );
        }
        exam_reports.push(ExamSlotReport {
            grade: s.grade.0,
            from: s.from.format("%H:%M").to_string(),
            to: s.to.format("%H:%M").to_string(),
            filled,
            items: inside.iter().map(|i| i.id.clone()).collect(),
        });
    }
    let filled = exam_reports.iter().filter(|e| e.filled).count();
    rule(
        "exam-slots",
        exam_ok,
        format!(
            "{filled} of {} exam-year slot(s) filled by their grade, none used by another",
            exam_reports.len()
        ),
    );

    // Learning limits.
    let too_long: Vec<String> = first_lessons()
        .filter(|i| i.grade.is_some_and(|g| i.duration > p.lesson_max(g)))
        .map(|i| i.id.clone())
        .collect();
    rule(
        "lesson-max",
        too_long.is_empty(),
        if too_long.is_empty() {
            "no lesson over its stage's limit".into()
        } else {
            format!("over the limit: {}", too_long.join(", "))
        },
    );

    let mut per_grade: BTreeMap<Grade, GradeReport> = BTreeMap::new();
    for it in items.iter().filter(|i| i.kind == ItemKind::Lesson) {
        let g = it.grade.expect("lessons have a grade");
        let e = per_grade.entry(g).or_insert_with(|| GradeReport {
            grade: g.0,
            label: g.label_zh(),
            lessons: 0,
            lesson_minutes: 0.0,
            rerun_minutes: 0.0,
            daily_max_minutes: p.daily_max(g).map(min),
            longest_screen_minutes: 0.0,
            not_placed: r.unplaced.iter().filter(|u| u.grade == Some(g)).count(),
        });
        if it.rerun_of.is_some() {
            e.rerun_minutes += min(it.duration);
        } else {
            e.lessons += 1;
            e.lesson_minutes += min(it.duration);
        }
    }
    let over: Vec<String> = per_grade
        .values()
        .filter(|g| {
            g.daily_max_minutes
                .is_some_and(|m| g.lesson_minutes > m + 1e-9)
        })
        .map(|g| format!("{} {} min", g.label, g.lesson_minutes))
        .collect();
    rule(
        "daily-max",
        over.is_empty(),
        if over.is_empty() {
            "every grade within its daily limit".into()
        } else {
            format!("over: {}", over.join(", "))
        },
    );

    // Rest: runs of screen items with less than a full break between them.
    let mut runs: Vec<(Frames, Vec<usize>)> = Vec::new();
    let mut last_end: Option<Frames> = None;
    for (i, it) in items.iter().enumerate().filter(|(_, it)| screen(it.kind)) {
        match (last_end, runs.last_mut()) {
            (Some(e), Some(run)) if it.start - e < p.rest_break_min => {
                run.0 += it.duration;
                run.1.push(i);
            }
            _ => runs.push((it.duration, vec![i])),
        }
        last_end = Some(it.end());
    }
    let longest = runs.iter().map(|r| r.0).max().unwrap_or(0);
    rule(
        "rest",
        longest <= p.rest_after_max,
        format!(
            "longest screen time without a {}-minute break: {} min (limit {} min)",
            min(p.rest_break_min),
            min(longest),
            min(p.rest_after_max)
        ),
    );
    for g in per_grade.values_mut() {
        let grade = Some(Grade(g.grade));
        let mine = |i: &usize| items[*i].grade.is_none() || items[*i].grade == grade;
        g.longest_screen_minutes = runs
            .iter()
            .map(|(_, ix)| {
                min(ix
                    .iter()
                    .filter(|i| mine(i))
                    .map(|i| items[*i].duration)
                    .sum())
            })
            .fold(0.0, f64::max);
    }

    // Strands.
    let strands = items
        .iter()
        .filter(|i| i.strand.is_some_and(|s| p.strand_kinds.contains(&s)))
        .count();
    let scheduled = items.iter().any(|i| screen(i.kind));
    rule(
        "strands",
        !scheduled || strands as u32 >= p.strands_min,
        format!(
            "{strands} health/safety strand item(s) (minimum {}: {})",
            p.strands_min,
            p.strand_kinds
                .iter()
                .map(|s| s.label_zh())
                .collect::<Vec<_>>()
                .join("、")
        ),
    );

    // Staggering: no grade takes every prime-time lesson slot, no grade airs twice in a row,
    // as far as the day's lessons allow (one grade alone, or one grade with more lessons than
    // all the others can separate, cannot be staggered).
    // Exam-year grades air in their held slots, so only the other grades can take turns.
    let mut counts: BTreeMap<Grade, usize> = BTreeMap::new();
    for i in first_lessons().filter(|i| !p.exam_slots.iter().any(|s| Some(s.grade) == i.grade)) {
        *counts
            .entry(i.grade.expect("lessons have a grade"))
            .or_default() += 1;
    }
    let n_lessons: usize = counts.values().sum();
    let most = counts.values().copied().max().unwrap_or(0);
    let can_alternate = counts.len() >= 2 && most <= n_lessons - most + 1;
    let mut stagger_issues = Vec::new();
    for &(from, to) in &p.prime_time {
        let (f, t) = (
            day.frame_of_local(from, day_start, tz),
            day.frame_of_local(to, day_start, tz),
        );
        let grades: std::collections::BTreeSet<Grade> = first_lessons()
            .filter(|i| i.start >= f && i.end() <= t)
            .filter_map(|i| i.grade)
            .collect();
        let n = first_lessons()
            .filter(|i| i.start >= f && i.end() <= t)
            .count();
        if counts.len() >= 2 && n > 1 && grades.len() < 2 {
            stagger_issues.push(format!(
                "one grade takes all {n} prime-time lessons {}-{}",
                from.format("%H:%M"),
                to.format("%H:%M")
            ));
        }
    }
    // Back-to-back lessons of one grade are reported, not failed: the builder avoids them where
    // the day's lessons allow, but packing around fixed items can leave one.
    let lessons: Vec<_> = first_lessons().collect();
    let back_to_back = lessons
        .windows(2)
        .filter(|w| can_alternate && w[0].grade == w[1].grade)
        .count();
    let detail = if stagger_issues.is_empty() {
        "no grade takes all the prime-time lessons".to_string()
    } else {
        stagger_issues.join("; ")
    };
    rule(
        "stagger",
        stagger_issues.is_empty(),
        format!("{detail}; {back_to_back} back-to-back lesson(s) of one grade"),
    );

    // Reruns before filler: inside the air hours filler only where no rerun would fit.
    let overlap = |i: &crate::rundown::Item, spans: &[(Frames, Frames)]| {
        spans
            .iter()
            .map(|&(f, t)| (i.end().min(t) - i.start.max(f)).max(0))
            .sum::<Frames>()
    };
    let in_windows = |i: &crate::rundown::Item| overlap(i, windows);
    let filler_in_hours: Frames = items
        .iter()
        .filter(|i| i.kind == ItemKind::Filler)
        .map(in_windows)
        .sum();
    let longest_filler = items
        .iter()
        .filter(|i| i.kind == ItemKind::Filler)
        .map(in_windows)
        .max()
        .unwrap_or(0);
    let reruns = items.iter().filter(|i| i.rerun_of.is_some()).count();
    // Filler is fine where no rerun fits: no lesson that aired earlier today and has not had its
    // rerun would fit in it with a break on each side. A held exam-year slot takes no reruns
    // (it is its grade's alone), so filler there does not count.
    let rerun_of: std::collections::HashSet<&str> =
        items.iter().filter_map(|i| i.rerun_of.as_deref()).collect();
    let rerun_ok = !p.reruns
        || items
            .iter()
            .filter(|i| i.kind == ItemKind::Filler)
            .all(|f| {
                let room = in_windows(f) - overlap(f, &held);
                first_lessons()
                    .filter(|l| l.end() <= f.start && !rerun_of.contains(l.id.as_str()))
                    .all(|l| room < l.duration + 2 * p.rest_break_min)
            });
    rule(
        "reruns-before-filler",
        rerun_ok,
        format!(
            "{reruns} rerun(s); longest filler inside the air hours {} min",
            min(longest_filler)
        ),
    );

    let breaks: Vec<_> = items.iter().filter(|i| i.kind == ItemKind::Break).collect();
    DayReport {
        date: day.date.to_string(),
        grades: per_grade.into_values().collect(),
        primary_share_percent: share,
        exam_slots: exam_reports,
        breaks: breaks.len(),
        break_minutes: min(breaks.iter().map(|b| b.duration).sum()),
        strands: items.iter().filter(|i| i.kind == ItemKind::Strand).count(),
        reruns,
        filler_minutes: min(items
            .iter()
            .filter(|i| i.kind == ItemKind::Filler)
            .map(|i| i.duration)
            .sum()),
        filler_minutes_in_air_hours: min(filler_in_hours),
        not_placed: r.unplaced.clone(),
        rules,
        warnings: r.warnings.clone(),
    }
}

/// The report as text for operators.
pub fn to_text(rep: &DayReport) -> String {
    let mut s = format!("Report {}\n", rep.date);
    s.push_str("GRADE   LESSONS  MINUTES  RERUNS  DAILY-MAX  LONGEST-SCREEN  NOT-PLACED\n");
    for g in &rep.grades {
        s.push_str(&format!(
            "{:<6}  {:>7}  {:>7}  {:>6}  {:>9}  {:>14}  {:>10}\n",
            g.label,
            g.lessons,
            g.lesson_minutes,
            g.rerun_minutes,
            g.daily_max_minutes
                .map_or("none".to_string(), |m| m.to_string()),
            g.longest_screen_minutes,
            g.not_placed
        ));
    }
    s.push_str(&format!(
        "primary share {}%  breaks {} ({} min)  strands {}  reruns {}  filler {} min ({} min inside air hours)\n",
        rep.primary_share_percent, rep.breaks, rep.break_minutes, rep.strands, rep.reruns, rep.filler_minutes, rep.filler_minutes_in_air_hours
    ));
    for e in &rep.exam_slots {
        s.push_str(&format!(
            "exam slot grade {} {}-{}: {}\n",
            e.grade,
            e.from,
            e.to,
            if e.filled {
                e.items.join(", ")
            } else {
                "not filled".into()
            }
        ));
    }
    for r in &rep.rules {
        s.push_str(&format!(
            "[{}] {:<22} {}\n",
            if r.pass { "PASS" } else { "FAIL" },
            r.rule,
            r.detail
        ));
    }
    for u in &rep.not_placed {
        s.push_str(&format!(
            "NOT PLACED {} {} ({}): {}\n",
            u.grade.map_or("-", |g| g.label_zh()),
            u.title,
            u.id,
            u.reason
        ));
    }
    for w in &rep.warnings {
        s.push_str(&format!("WARNING: {w}\n"));
    }
    s
}
