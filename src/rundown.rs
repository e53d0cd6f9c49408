//! The rundown: the frame-exact list of items of one broadcast day, start to end, no gaps.
//! It is the single source of truth: playout plays it and every public feed is a rendering of it.
//! Building is pure: same schedule and date in, same rundown out.

use crate::schedule::{Channel, DayPlan, Entry, EntryKind, Grade, Schedule, Stage, Strand};
use crate::time::{BroadcastDay, Frames, timecode};
use chrono::{DateTime, Datelike, NaiveDate};
use chrono_tz::Tz;
use serde::Serialize;

/// What an item is: it decides how playout fills it and how the guide shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    /// For a rerun: the id of the first airing.
    pub rerun_of: Option<String>,
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
    /// No week file plans this day (or its plan is empty): it airs filler all day, and the
    /// engine raises one alert for it.
    pub unscheduled: bool,
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
        screen: Vec::new(),
        unplaced: Vec::new(),
        warnings: Vec::new(),
    };
    // No week file plans this day, or its plan is empty: filler all day, with a warning.
    let unscheduled = match schedule.day(date) {
        Some(plan)
            if !(plan.lessons.is_empty() && plan.extras.is_empty() && plan.pinned.is_empty()) =>
        {
            b.place(plan, date.pred_opt().and_then(|d| schedule.day(d)));
            None
        }
        Some(_) => Some(format!("{date} has no entries in its week file")),
        None => Some(format!("no weekly schedule covers {date}")),
    };
    if let Some(why) = &unscheduled {
        b.warnings
            .push(format!("{why}; the channel airs filler all day"));
    }
    let items = b.decorate();
    Rundown {
        channel_id: ch.id.clone(),
        day,
        tz: ch.tz,
        items,
        unplaced: b.unplaced,
        warnings: b.warnings,
        unscheduled: unscheduled.is_some(),
    }
}

/// The policy report of a built rundown.
pub fn report(schedule: &Schedule, r: &Rundown) -> crate::policy::DayReport {
    let ch = &schedule.channel;
    crate::policy::check(r, &ch.policy, &windows(ch, &r.day), ch.day_start, ch.tz)
}

/// The air-hours windows of a day, in frames.
pub fn windows(ch: &Channel, day: &BroadcastDay) -> Vec<(Frames, Frames)> {
    ch.air_hours
        .iter()
        .map(|&(f, t)| {
            (
                day.frame_of_local(f, ch.day_start, ch.tz),
                day.frame_of_local(t, ch.day_start, ch.tz),
            )
        })
        .collect()
}

/// An entry waiting to be placed.
#[derive(Clone, Copy)]
struct Queued<'e> {
    entry: &'e Entry,
    /// For a rerun: the date of the airing it repeats.
    rerun_of: Option<NaiveDate>,
    /// It may not start before this frame (a rerun follows its first airing).
    not_before: Frames,
}

impl<'e> Queued<'e> {
    fn first(entry: &'e Entry) -> Self {
        Queued {
            entry,
            rerun_of: None,
            not_before: 0,
        }
    }
}

struct Builder<'a> {
    ch: &'a Channel,
    day: BroadcastDay,
    /// Lessons, strands and programmes placed so far, kept sorted by start.
    screen: Vec<Item>,
    unplaced: Vec<Unplaced>,
    warnings: Vec<String>,
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
            rerun_of: None,
        }
    }

    /// Pinned entries at their times; each exam-year grade's lessons in its held slot; the other
    /// lessons and extras in turns (grades rotating by weekday) through the free air time, each
    /// where the rest rule allows; secondary lessons dropped if primary would fall below its
    /// share; reruns in what is left.
    fn place(&mut self, plan: &DayPlan, yesterday: Option<&DayPlan>) {
        let (ch, day) = (self.ch, self.day);
        let pol = &ch.policy;
        for e in &plan.pinned {
            let it = self.item(
                e,
                day.frame_of_local(e.at.expect("pinned"), ch.day_start, ch.tz),
            );
            self.insert(it);
        }
        let mut held: Vec<(Frames, Frames)> = Vec::new();
        let mut exam_entries: Vec<&Entry> = Vec::new();
        // A slot is held on days its grade has lessons (school days), and free air time otherwise.
        for slot in pol
            .exam_slots
            .iter()
            .filter(|s| plan.lessons.contains_key(&s.grade))
        {
            let span = (
                day.frame_of_local(slot.from, ch.day_start, ch.tz),
                day.frame_of_local(slot.to, ch.day_start, ch.tz),
            );
            held.push(span);
            let mut queue: Vec<Queued> = plan
                .lessons
                .get(&slot.grade)
                .into_iter()
                .flatten()
                .map(Queued::first)
                .collect();
            self.fill(span, &mut queue);
            exam_entries.extend(
                plan.lessons
                    .get(&slot.grade)
                    .into_iter()
                    .flatten()
                    .filter(|e| !queue.iter().any(|q| q.entry.id == e.id)),
            );
        }
        let mut queue: Vec<Queued> =
            turn_order(plan, day.date.weekday().num_days_from_monday() as usize)
                .into_iter()
                .filter(|e| !exam_entries.iter().any(|x| x.id == e.id))
                .map(Queued::first)
                .collect();
        self.drop_for_primary_share(&mut queue, &exam_entries);
        for span in self.free_spans(&held) {
            self.fill(span, &mut queue);
        }
        for q in queue {
            self.unplaced.push(self.why_not(q.entry));
        }
        self.keep_primary_share(&exam_entries);
        if pol.reruns {
            // Today's lessons in the order they aired (each after its first airing), then
            // yesterday's in their turn order.
            let mut queue: Vec<Queued> = self
                .screen
                .iter()
                .filter(|i| i.kind == ItemKind::Lesson)
                .filter_map(|i| {
                    let e = plan
                        .lessons
                        .values()
                        .flatten()
                        .find(|e| format!("{}-{}", day.date, e.id) == i.id)?;
                    Some(Queued {
                        entry: e,
                        rerun_of: Some(day.date),
                        not_before: i.end(),
                    })
                })
                .collect();
            if let (Some(prev), Some(yplan)) = (day.date.pred_opt(), yesterday) {
                let order = turn_order(yplan, prev.weekday().num_days_from_monday() as usize);
                queue.extend(
                    order
                        .into_iter()
                        .filter(|e| e.kind == EntryKind::Lesson)
                        .map(|e| Queued {
                            entry: e,
                            rerun_of: Some(prev),
                            not_before: 0,
                        }),
                );
            }
            for span in self.free_spans(&held) {
                self.fill(span, &mut queue);
            }
        }
    }

    /// The parts of the air-hours windows not held for exam grades.
    fn free_spans(&self, held: &[(Frames, Frames)]) -> Vec<(Frames, Frames)> {
        let mut spans = windows(self.ch, &self.day);
        for &(hf, ht) in held {
            spans = spans
                .into_iter()
                .flat_map(|(f, t)| {
                    if ht <= f || hf >= t {
                        vec![(f, t)]
                    } else {
                        [(f, hf), (ht, t)]
                            .into_iter()
                            .filter(|(a, b)| b > a)
                            .collect()
                    }
                })
                .collect();
        }
        spans
    }

    /// Place entries from `queue` (first that fits, in order) inside `span`, each at the earliest
    /// start after the cursor that keeps the rest rule and the daily caps. Placed entries leave
    /// the queue. An entry queued with a date is a rerun of its airing on that date.
    fn fill(&mut self, span: (Frames, Frames), queue: &mut Vec<Queued>) {
        let mut cursor = span.0;
        loop {
            // First airings: the first entry that fits, preferring one whose grade did not just
            // have a lesson. Reruns: whichever can start earliest.
            let last_grade = self
                .screen
                .iter()
                .rev()
                .find(|i| i.start < cursor && i.kind == ItemKind::Lesson)
                .and_then(|i| i.grade);
            let fits = |(qi, q): (usize, &Queued)| {
                let e = q.entry;
                if q.rerun_of.is_none() && e.kind == EntryKind::Lesson && !self.within_daily_cap(e)
                {
                    return None;
                }
                self.earliest(cursor.max(q.not_before), span.1, e.duration)
                    .map(|t| (qi, t))
            };
            let found = if queue.first().is_some_and(|q| q.rerun_of.is_some()) {
                queue
                    .iter()
                    .enumerate()
                    .filter_map(fits)
                    .min_by_key(|&(qi, t)| (t, qi))
            } else {
                queue
                    .iter()
                    .enumerate()
                    .filter(|(_, q)| q.entry.grade.is_none() || q.entry.grade != last_grade)
                    .find_map(fits)
                    .or_else(|| queue.iter().enumerate().find_map(fits))
            };
            let Some((qi, t)) = found else { break };
            let q = queue.remove(qi);
            let mut it = self.item(q.entry, t);
            if let Some(origin) = q.rerun_of {
                it.rerun_of = Some(format!("{origin}-{}", q.entry.id));
                it.id = format!("{}-rerun", it.id);
                it.title = format!("{}（重播）", it.title);
            }
            cursor = it.end();
            self.insert(it);
        }
    }

    /// Before placing: leave out the last secondary lessons (outside the exam slots) while the
    /// day's lessons would give primary grades less than their share.
    fn drop_for_primary_share<'e>(
        &mut self,
        queue: &mut Vec<Queued<'e>>,
        exam_entries: &[&'e Entry],
    ) {
        let min = self.ch.policy.primary_share_min_percent as i64;
        loop {
            let (primary, total) = crate::policy::primary_and_total(
                queue
                    .iter()
                    .map(|q| q.entry)
                    .chain(exam_entries.iter().copied())
                    .filter(|e| e.kind == EntryKind::Lesson)
                    .map(|e| (e.grade, e.duration)),
            );
            if total == 0 || primary * 100 >= min * total {
                return;
            }
            let Some(pos) = queue.iter().rposition(|q| {
                q.entry.kind == EntryKind::Lesson
                    && q.entry.grade.is_some_and(|g| g.stage() != Stage::Primary)
            }) else {
                return;
            };
            let e = queue.remove(pos).entry;
            self.unplaced.push(Unplaced {
                id: e.id.clone(),
                grade: e.grade,
                title: e.title.clone(),
                reason: format!("airing it would take primary grades below {min}% of lesson time"),
            });
        }
    }

    /// The earliest start in [from, until - len] where an item of `len` frames overlaps nothing
    /// and keeps every run of screen time within the rest limit.
    fn earliest(&self, from: Frames, until: Frames, len: Frames) -> Option<Frames> {
        let pol = &self.ch.policy;
        let mut t = from;
        while t + len <= until {
            let after = self.screen.partition_point(|i| i.start < t + len);
            let before = self.screen[..after].iter().rposition(|i| i.start < t);
            if let Some(b) = before
                && self.screen[b].end() > t
            {
                t = self.screen[b].end();
                continue;
            }
            let first_inside = before.map_or(0, |b| b + 1);
            if first_inside < after {
                t = self.screen[first_inside].end();
                continue;
            }
            // Screen time joined to this item on both sides (gaps shorter than a full break).
            let mut run = len;
            let mut edge = t;
            for i in self.screen[..before.map_or(0, |b| b + 1)].iter().rev() {
                if edge - i.end() >= pol.rest_break_min {
                    break;
                }
                run += i.duration;
                edge = i.start;
            }
            let mut edge = t + len;
            for i in &self.screen[after..] {
                if i.start - edge >= pol.rest_break_min {
                    break;
                }
                run += i.duration;
                edge = i.end();
            }
            if run <= pol.rest_after_max {
                return Some(t);
            }
            // Too long a run: try again after a full break following the previous item.
            let prev_end = before.map(|b| self.screen[b].end()).unwrap_or(t);
            let next_t = (prev_end + pol.rest_break_min).max(t + 1);
            t = if next_t > t { next_t } else { t + 1 };
        }
        None
    }

    fn within_daily_cap(&self, e: &Entry) -> bool {
        let Some(g) = e.grade else { return true };
        let Some(cap) = self.ch.policy.daily_max(g) else {
            return true;
        };
        let used: Frames = self
            .screen
            .iter()
            .filter(|i| i.grade == Some(g) && i.kind == ItemKind::Lesson && i.rerun_of.is_none())
            .map(|i| i.duration)
            .sum();
        used + e.duration <= cap
    }

    fn why_not(&self, e: &Entry) -> Unplaced {
        let reason = match (e.kind, e.grade) {
            (EntryKind::Lesson, Some(g)) if !self.within_daily_cap(e) => format!(
                "{}'s daily limit of {} min would be exceeded; send it to the online platform or another day",
                g.label_zh(),
                self.ch.policy.daily_max(g).unwrap_or(0) / (60 * self.ch.rate.timecode_base())
            ),
            _ => "no room left in the air hours (with the rest breaks the policy requires)".into(),
        };
        Unplaced {
            id: e.id.clone(),
            grade: e.grade,
            title: e.title.clone(),
            reason,
        }
    }

    /// Drop the latest secondary lessons outside the exam slots while primary is under its share.
    fn keep_primary_share(&mut self, exam_entries: &[&Entry]) {
        let min = self.ch.policy.primary_share_min_percent as i64;
        loop {
            let (primary, total) = crate::policy::primary_and_total(
                self.screen
                    .iter()
                    .filter(|i| i.kind == ItemKind::Lesson)
                    .map(|i| (i.grade, i.duration)),
            );
            if total == 0 || primary * 100 >= min * total {
                return;
            }
            let exam_ids: Vec<String> = exam_entries
                .iter()
                .map(|e| format!("{}-{}", self.day.date, e.id))
                .collect();
            let Some(pos) = self.screen.iter().rposition(|i| {
                i.kind == ItemKind::Lesson
                    && i.grade.is_some_and(|g| g.stage() != Stage::Primary)
                    && !i.pinned
                    && !exam_ids.contains(&i.id)
            }) else {
                self.warnings.push(format!(
                    "primary share is {}%, below the minimum {min}%, and only exam-year or pinned lessons are left to drop; schedule more primary lessons",
                    primary * 100 / total
                ));
                return;
            };
            let it = self.screen.remove(pos);
            self.unplaced.push(Unplaced {
                id: it
                    .id
                    .trim_start_matches(&format!("{}-", self.day.date))
                    .to_string(),
                grade: it.grade,
                title: it.title,
                reason: format!("airing it would take primary grades below {min}% of lesson time"),
            });
        }
    }

    fn insert(&mut self, it: Item) {
        let at = self.screen.partition_point(|i| i.start <= it.start);
        self.screen.insert(at, it);
    }

    /// The whole day: a break (eye exercises) in each gap after screen time that is long enough
    /// for one, filler in every other gap, so the day runs from frame 0 to its end.
    fn decorate(&mut self) -> Vec<Item> {
        let brk = self.ch.break_frames;
        let mut out = Vec::with_capacity(self.screen.len() * 3 + 1);
        let mut cursor = 0;
        let mut breaks = 0;
        let screen = std::mem::take(&mut self.screen);
        let n = screen.len();
        for (i, it) in screen.into_iter().enumerate() {
            let gap_end = it.start;
            self.gap(
                &mut out,
                cursor,
                gap_end,
                i > 0 && brk > 0 && gap_end - cursor >= brk,
                &mut breaks,
            );
            cursor = it.end();
            out.push(it);
            if i + 1 == n {
                let end = self.day.frames();
                let in_hours = windows(self.ch, &self.day)
                    .iter()
                    .any(|&(_, t)| t >= cursor + brk);
                self.gap(
                    &mut out,
                    cursor,
                    end,
                    brk > 0 && in_hours && end - cursor >= brk,
                    &mut breaks,
                );
                cursor = end;
            }
        }
        if cursor < self.day.frames() {
            self.gap(&mut out, cursor, self.day.frames(), false, &mut breaks);
        }
        out
    }

    fn gap(
        &self,
        out: &mut Vec<Item>,
        from: Frames,
        to: Frames,
        with_break: bool,
        breaks: &mut usize,
    ) {
        if to <= from {
            return;
        }
        let mut from = from;
        if with_break {
            *breaks += 1;
            out.push(Item {
                id: format!("{}-break-{}", self.day.date, breaks),
                kind: ItemKind::Break,
                title: "眼保健操 · 课间休息".into(),
                grade: None,
                subject: None,
                strand: None,
                number: None,
                media: self.ch.break_media.clone(),
                start: from,
                duration: self.ch.break_frames,
                pinned: false,
                rerun_of: None,
            });
            from += self.ch.break_frames;
        }
        if to > from {
            out.push(Item {
                id: format!("{}-filler-{}", self.day.date, from),
                kind: ItemKind::Filler,
                title: format!("{} 频道宣传", self.ch.short_name),
                grade: None,
                subject: None,
                strand: None,
                number: None,
                media: self.ch.filler.clone(),
                start: from,
                duration: to - from,
                pinned: false,
                rerun_of: None,
            });
        }
    }
}

/// Lessons in turns: each turn goes to the grade with the most lessons left that did not have
/// the previous turn (ties to the earliest grade in an order rotated by weekday, so no grade
/// always airs first); each grade's lessons keep their teaching order. Extras are spread evenly.
fn turn_order(plan: &DayPlan, rotate: usize) -> Vec<&Entry> {
    let mut grades: Vec<&Vec<Entry>> = plan.lessons.values().collect();
    if !grades.is_empty() {
        let k = rotate % grades.len();
        grades.rotate_left(k);
    }
    let mut next = vec![0usize; grades.len()];
    let mut last: Option<usize> = None;
    let mut lessons: Vec<&Entry> = Vec::new();
    loop {
        let left = |g: usize| grades[g].len() - next[g];
        let pick = (0..grades.len())
            .filter(|&g| left(g) > 0 && Some(g) != last)
            .max_by_key(|&g| (left(g), std::cmp::Reverse(g)));
        let Some(g) = pick.or_else(|| last.filter(|&g| left(g) > 0)) else {
            break;
        };
        lessons.push(&grades[g][next[g]]);
        next[g] += 1;
        last = Some(g);
    }
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
                "rerun_of": it.rerun_of,
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
        "{} {}  ({} items, {} fps; TIMECODE counts from the broadcast day's start at {})\n",
        r.channel_id,
        r.day.date,
        r.items.len(),
        r.day.rate,
        r.local_time(0).format("%H:%M")
    );
    s.push_str("START     TIMECODE     DURATION     KIND       GRADE   SUBJECT   TITLE / MEDIA\n");
    for it in &r.items {
        let subject = it
            .subject
            .as_deref()
            .or(it.strand.map(|x| x.label_zh()))
            .unwrap_or("");
        s.push_str(&format!(
            "{}  {}  {}  {:<9}  {:<6}  {}  {}  [{}]\n",
            r.local_time(it.start).format("%H:%M:%S"),
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
