//! The rundown: the frame-exact list of items of one broadcast day, start to end, no gaps.
//! It is the single source of truth: playout plays it and every public feed is a rendering of it.
//! Building is pure: same schedule and date in, same rundown out.

use crate::schedule::{Channel, DayPlan, Entry, EntryKind, Grade, Schedule, Strand};
use crate::time::{BroadcastDay, Frames, timecode};
use chrono::{DateTime, Datelike, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::VecDeque;

/// What an item is: it decides how playout fills it and how the guide shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemKind {
    Lesson,
    Strand,
    Programme,
    /// Rest between lessons, with the eye-exercise interstitial.
    Break,
    /// Pads the day so that the next fixed item starts on time; its media loops.
    Filler,
}

impl ItemKind {
    /// Items whose media is repeated to fill the slot instead of ending in slate.
    pub fn loops(self) -> bool {
        matches!(self, ItemKind::Break | ItemKind::Filler)
    }
}

/// One item of a rundown. Positions are frames from the broadcast day's start; [start, end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Stable identity of this airing; guide entries share it.
    pub id: String,
    pub kind: ItemKind,
    pub title: String,
    pub grade: Option<Grade>,
    pub subject: Option<String>,
    pub strand: Option<Strand>,
    pub number: Option<u32>,
    pub media: String,
    pub start: Frames,
    pub duration: Frames,
    /// True for items the operator pinned to a fixed time.
    pub pinned: bool,
}

impl Item {
    pub fn end(&self) -> Frames {
        self.start + self.duration
    }
}

/// A schedule entry that could not be placed, and why (so the operator can send it elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unplaced {
    pub id: String,
    pub grade: Option<Grade>,
    pub title: String,
    pub reason: String,
}

/// The rundown of one broadcast day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rundown {
    pub channel_id: String,
    pub day: BroadcastDay,
    pub tz: Tz,
    pub items: Vec<Item>,
    pub unplaced: Vec<Unplaced>,
    pub warnings: Vec<String>,
}

impl Rundown {
    /// The index of the item on air at frame `f` of this day.
    pub fn index_at(&self, f: Frames) -> Option<usize> {
        let i = self.items.partition_point(|it| it.end() <= f);
        (i < self.items.len() && self.items[i].start <= f).then_some(i)
    }

    /// Local wall-clock time at which frame `f` starts.
    pub fn local_time(&self, f: Frames) -> DateTime<Tz> {
        self.day.instant(f).with_timezone(&self.tz)
    }
}

/// Build the rundown of `date`. A date no week covers, or an empty day, becomes an all-filler day
/// with a warning: the channel stays on air.
pub fn build(schedule: &Schedule, date: NaiveDate) -> Rundown {
    let ch = &schedule.channel;
    let day = BroadcastDay::new(date, ch.day_start, ch.tz, ch.rate);
    let mut b = Builder {
        ch,
        day,
        items: Vec::new(),
        unplaced: Vec::new(),
        warnings: Vec::new(),
        breaks: 0,
    };
    match schedule.day(date) {
        Some(plan)
            if !(plan.lessons.is_empty() && plan.extras.is_empty() && plan.pinned.is_empty()) =>
        {
            b.place(plan)
        }
        Some(_) => b.warnings.push(format!(
            "{date} has no entries in its week file; the channel airs filler all day"
        )),
        None => b.warnings.push(format!(
            "no weekly schedule covers {date}; the channel airs filler all day"
        )),
    }
    b.fill_gaps();
    Rundown {
        channel_id: ch.id.clone(),
        day,
        tz: ch.tz,
        items: b.items,
        unplaced: b.unplaced,
        warnings: b.warnings,
    }
}

struct Builder<'a> {
    ch: &'a Channel,
    day: BroadcastDay,
    items: Vec<Item>,
    unplaced: Vec<Unplaced>,
    warnings: Vec<String>,
    breaks: usize,
}

impl Builder<'_> {
    fn item(&self, e: &Entry, start: Frames) -> Item {
        Item {
            id: format!("{}-{}", self.day.date, e.id),
            kind: match e.kind {
                EntryKind::Lesson => ItemKind::Lesson,
                EntryKind::Strand => ItemKind::Strand,
                EntryKind::Programme => ItemKind::Programme,
            },
            title: e.title.clone(),
            grade: e.grade,
            subject: e.subject.clone(),
            strand: e.strand,
            number: e.number,
            media: e.media.clone(),
            start,
            duration: e.duration,
            pinned: e.at.is_some(),
        }
    }

    /// Pinned entries at their times; lessons and extras in order through the air-hours windows,
    /// grades taking turns (the first grade rotates by weekday so no grade always airs first),
    /// a break after each lesson when another follows.
    fn place(&mut self, plan: &DayPlan) {
        let (ch, day) = (self.ch, self.day);
        let mut pinned: Vec<Item> = plan
            .pinned
            .iter()
            .map(|e| {
                self.item(
                    e,
                    day.frame_of_local(e.at.expect("pinned"), ch.day_start, ch.tz),
                )
            })
            .collect();
        pinned.sort_by_key(|i| i.start);
        let mut queue: VecDeque<&Entry> =
            turn_order(plan, day.date.weekday().num_days_from_monday() as usize).into();
        let windows: Vec<(Frames, Frames)> = ch
            .air_hours
            .iter()
            .map(|&(f, t)| {
                (
                    day.frame_of_local(f, ch.day_start, ch.tz),
                    day.frame_of_local(t, ch.day_start, ch.tz),
                )
            })
            .collect();
        for (w_start, w_end) in windows {
            let mut cursor = w_start;
            while let Some(e) = queue.front() {
                let next_pin = pinned.iter().find(|p| p.end() > cursor && p.start < w_end);
                let limit = next_pin.map_or(w_end, |p| p.start.max(cursor));
                if cursor + e.duration <= limit {
                    let e = queue.pop_front().expect("front exists");
                    self.items.push(self.item(e, cursor));
                    cursor += e.duration;
                    if !queue.is_empty() && cursor + ch.break_frames <= limit && ch.break_frames > 0
                    {
                        self.push_break(cursor);
                        cursor += ch.break_frames;
                    }
                } else if let Some(p) = next_pin {
                    cursor = cursor.max(p.end());
                } else {
                    break;
                }
            }
        }
        for e in queue {
            self.unplaced.push(Unplaced {
                id: e.id.clone(),
                grade: e.grade,
                title: e.title.clone(),
                reason: "no room left in the air hours after the entries before it".into(),
            });
        }
        self.items.extend(pinned);
        self.items.sort_by_key(|i| i.start);
    }

    fn push_break(&mut self, start: Frames) {
        self.breaks += 1;
        self.items.push(Item {
            id: format!("{}-break-{}", self.day.date, self.breaks),
            kind: ItemKind::Break,
            title: "眼保健操 · 课间休息".into(),
            grade: None,
            subject: None,
            strand: None,
            number: None,
            media: self.ch.break_media.clone(),
            start,
            duration: self.ch.break_frames,
            pinned: false,
        });
    }

    /// Filler in every gap so the day runs from frame 0 to its last frame without a hole.
    fn fill_gaps(&mut self) {
        let mut out = Vec::with_capacity(self.items.len() * 2 + 1);
        let mut cursor = 0;
        let filler = |start: Frames, end: Frames| Item {
            id: format!("{}-filler-{}", self.day.date, start),
            kind: ItemKind::Filler,
            title: format!("{} 频道宣传", self.ch.short_name),
            grade: None,
            subject: None,
            strand: None,
            number: None,
            media: self.ch.filler.clone(),
            start,
            duration: end - start,
            pinned: false,
        };
        for it in self.items.drain(..) {
            if it.start > cursor {
                out.push(filler(cursor, it.start));
            }
            cursor = it.end();
            out.push(it);
        }
        if cursor < self.day.frames() {
            out.push(filler(cursor, self.day.frames()));
        }
        self.items = out;
    }
}

/// Lessons in turns: round r holds each grade's r-th lesson, grades in order starting from a
/// weekday-rotated grade; extras spread evenly between the turns.
fn turn_order(plan: &DayPlan, rotate: usize) -> Vec<&Entry> {
    let mut grades: Vec<&Vec<Entry>> = plan.lessons.values().collect();
    if !grades.is_empty() {
        let k = rotate % grades.len();
        grades.rotate_left(k);
    }
    let rounds = grades.iter().map(|l| l.len()).max().unwrap_or(0);
    let lessons: Vec<&Entry> = (0..rounds)
        .flat_map(|r| grades.iter().filter_map(move |l| l.get(r)))
        .collect();
    // Extra k goes after lesson ((k + 1) * lessons / (extras + 1)): evenly spread through the day.
    let slot = |k: usize| (k + 1) * lessons.len() / (plan.extras.len() + 1);
    let mut out = Vec::with_capacity(lessons.len() + plan.extras.len());
    for i in 0..=lessons.len() {
        if i > 0 {
            out.push(lessons[i - 1]);
        }
        out.extend(
            plan.extras
                .iter()
                .enumerate()
                .filter(|(k, _)| slot(*k) == i)
                .map(|(_, e)| e),
        );
    }
    out
}

/// The rundown as JSON for tools: `channel`, `date`, `items` with RFC 3339 local times.
pub fn to_json(r: &Rundown) -> serde_json::Value {
    let items: Vec<serde_json::Value> = r
        .items
        .iter()
        .map(|it| {
            serde_json::json!({
                "id": it.id,
                "kind": it.kind,
                "title": it.title,
                "grade": it.grade.map(|g| g.0),
                "subject": it.subject,
                "strand": it.strand,
                "number": it.number,
                "start": r.local_time(it.start).to_rfc3339(),
                "end": r.local_time(it.end()).to_rfc3339(),
                "start_frame": it.start,
                "duration_frames": it.duration,
                "timecode": timecode(it.start, r.day.rate),
                "pinned": it.pinned,
                "media": it.media,
            })
        })
        .collect();
    serde_json::json!({
        "channel": r.channel_id,
        "date": r.day.date.to_string(),
        "fps": r.day.rate.to_string(),
        "start": r.local_time(0).to_rfc3339(),
        "end": r.local_time(r.day.frames()).to_rfc3339(),
        "frames": r.day.frames(),
        "items": items,
        "unplaced": r.unplaced,
        "warnings": r.warnings,
    })
}

/// The rundown as a table for operators.
pub fn to_table(r: &Rundown) -> String {
    let mut s = format!(
        "{} {}  ({} items, {} fps)\n",
        r.channel_id,
        r.day.date,
        r.items.len(),
        r.day.rate
    );
    s.push_str("START  TIMECODE     DURATION     KIND       GRADE   SUBJECT   TITLE / MEDIA\n");
    for it in &r.items {
        let subject = it
            .subject
            .as_deref()
            .or(it.strand.map(|x| x.label_zh()))
            .unwrap_or("");
        s.push_str(&format!(
            "{}  {}  {}  {:<9}  {:<6}  {}  {}  [{}]\n",
            r.local_time(it.start).format("%H:%M"),
            timecode(it.start, r.day.rate),
            timecode(it.duration, r.day.rate),
            format!("{:?}", it.kind).to_lowercase(),
            pad(it.grade.map_or("", |g| g.label_zh()), 6),
            pad(subject, 8),
            it.title,
            it.media
        ));
    }
    for u in &r.unplaced {
        s.push_str(&format!(
            "NOT PLACED: {} ({}) {}: {}\n",
            u.id,
            u.grade.map_or("-", |g| g.label_zh()),
            u.title,
            u.reason
        ));
    }
    for w in &r.warnings {
        s.push_str(&format!("WARNING: {w}\n"));
    }
    s
}

/// Pad to a display width where CJK characters count as two columns.
fn pad(s: &str, width: usize) -> String {
    let w: usize = s
        .chars()
        .map(|c| if c as u32 >= 0x1100 { 2 } else { 1 })
        .sum();
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}
