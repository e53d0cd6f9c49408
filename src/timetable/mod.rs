//! The public timetable: what viewers, websites and calendars see, rendered from the same rundowns
//! that air. Breaks and filler are folded away (viewers look for lessons), and each guide entry
//! keeps its rundown item's id so the guide and the air share one identity.
//!
//! A [`Feed`] is one published version. [`Feed::next`] carries each entry's history forward from
//! the previous version (when it last changed, how often its time moved, cancellations), so the
//! calendars keep stable UIDs, raise SEQUENCE when a time moves and keep cancelled airings.
//! Everything here is pure; [`publish`] writes the renderings to disk.

pub mod html;
pub mod ical;
pub mod notify;
pub mod publish;
pub mod xmltv;

use crate::rundown::{ItemKind, Rundown};
use crate::schedule::Channel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether an airing is still on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Scheduled,
    Cancelled,
}

/// One guide entry: a lesson, strand or programme airing as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The rundown item's id: stable across rebuilds, one per airing.
    pub id: String,
    pub date: String,
    pub kind: ItemKind,
    pub title: String,
    pub grade: Option<u8>,
    pub grade_label: Option<String>,
    pub subject: Option<String>,
    pub strand: Option<String>,
    pub number: Option<u32>,
    /// For a rerun, the id of the first airing.
    pub rerun_of: Option<String>,
    /// RFC 3339 local times with offset.
    pub start: String,
    pub end: String,
    pub status: Status,
    /// How many times this airing's time has changed since it was first published.
    pub sequence: u32,
    /// When this entry last changed (UTC, RFC 3339): the publish time of that version.
    pub changed: String,
}

impl Entry {
    fn same_content(&self, o: &Entry) -> bool {
        let strip = |e: &Entry| Entry {
            sequence: 0,
            changed: String::new(),
            ..e.clone()
        };
        strip(self) == strip(o)
    }
}

/// The channel as the feed describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub id: String,
    pub name: String,
    pub short_name: String,
    pub timezone: String,
}

/// What a version changed against the one before it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    pub added: Vec<String>,
    /// Entries whose start or end moved.
    pub moved: Vec<String>,
    /// Entries whose title or other details changed at the same time.
    pub updated: Vec<String>,
    pub cancelled: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.moved.is_empty()
            && self.updated.is_empty()
            && self.cancelled.is_empty()
    }
}

/// One published version of the timetable: every entry of every published day, in air order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feed {
    pub channel: ChannelInfo,
    pub version: u32,
    /// When this version was published (UTC, RFC 3339).
    pub published: String,
    pub changes: Changes,
    /// Broadcast days covered, as dates.
    pub dates: Vec<String>,
    pub entries: Vec<Entry>,
}

/// The guide entries of a rundown, in air order (breaks and filler folded away).
pub fn entries(r: &Rundown, now: &str) -> Vec<Entry> {
    r.items
        .iter()
        .filter(|it| !matches!(it.kind, ItemKind::Break | ItemKind::Filler))
        .map(|it| Entry {
            id: it.id.clone(),
            date: r.day.date.to_string(),
            kind: it.kind,
            title: it.title.clone(),
            grade: it.grade.map(|g| g.0),
            grade_label: it.grade.map(|g| g.label_zh().to_string()),
            subject: it.subject.clone(),
            strand: it.strand.map(|s| s.label_zh().to_string()),
            number: it.number,
            rerun_of: it.rerun_of.clone(),
            start: r.local_time(it.start).to_rfc3339(),
            end: r.local_time(it.end()).to_rfc3339(),
            status: Status::Scheduled,
            sequence: 0,
            changed: now.to_string(),
        })
        .collect()
}

impl Feed {
    /// The version that follows `prev` (or the first one) for these rundowns, published at `now`.
    /// Entries keep their history; entries that disappeared stay, cancelled. Returns None when
    /// nothing changed, so an unchanged schedule publishes no new version.
    pub fn next(
        prev: Option<&Feed>,
        ch: &Channel,
        rundowns: &[Rundown],
        now: &str,
    ) -> Option<Feed> {
        let mut fresh: Vec<Entry> = rundowns.iter().flat_map(|r| entries(r, now)).collect();
        let mut dates: Vec<String> = rundowns.iter().map(|r| r.day.date.to_string()).collect();
        let mut changes = Changes::default();
        let old: BTreeMap<&str, &Entry> = prev
            .map(|p| p.entries.iter().map(|e| (e.id.as_str(), e)).collect())
            .unwrap_or_default();
        for e in &mut fresh {
            match old.get(e.id.as_str()) {
                None => changes.added.push(e.id.clone()),
                Some(o) if o.same_content(e) => {
                    e.sequence = o.sequence;
                    e.changed = o.changed.clone();
                }
                Some(o) => {
                    let moved = o.start != e.start || o.end != e.end || o.status != e.status;
                    e.sequence = o.sequence + u32::from(moved);
                    if moved {
                        changes.moved.push(e.id.clone())
                    } else {
                        changes.updated.push(e.id.clone())
                    }
                }
            }
        }
        if let Some(p) = prev {
            let ids: std::collections::HashSet<String> =
                fresh.iter().map(|e| e.id.clone()).collect();
            for o in p.entries.iter().filter(|o| !ids.contains(&o.id)) {
                let mut c = o.clone();
                if c.status != Status::Cancelled {
                    c.status = Status::Cancelled;
                    c.sequence += 1;
                    c.changed = now.to_string();
                    changes.cancelled.push(c.id.clone());
                }
                fresh.push(c);
            }
            dates.extend(p.dates.iter().cloned());
            if changes.is_empty() {
                return None;
            }
        }
        dates.sort();
        dates.dedup();
        fresh.sort_by(|a, b| a.start.cmp(&b.start).then(a.id.cmp(&b.id)));
        Some(Feed {
            channel: ChannelInfo {
                id: ch.id.clone(),
                name: ch.name.clone(),
                short_name: ch.short_name.clone(),
                timezone: ch.tz.name().to_string(),
            },
            version: prev.map_or(1, |p| p.version + 1),
            published: now.to_string(),
            changes,
            dates,
            entries: fresh,
        })
    }

    /// Entries of one broadcast day.
    pub fn day(&self, date: &str) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.date == date).collect()
    }

    /// ISO weeks covered (`2020-W08`), each with its dates.
    pub fn weeks(&self) -> BTreeMap<String, Vec<String>> {
        let mut w: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for d in &self.dates {
            if let Ok(date) = d.parse::<chrono::NaiveDate>() {
                let iso = chrono::Datelike::iso_week(&date);
                w.entry(format!("{}-W{:02}", iso.year(), iso.week()))
                    .or_default()
                    .push(d.clone());
            }
        }
        w
    }

    /// What is on air at `now` (RFC 3339 comparison on instants) and what follows.
    pub fn now_next(&self, now: chrono::DateTime<chrono::Utc>) -> (Option<&Entry>, Vec<&Entry>) {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .ok()
        };
        let on: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.status == Status::Scheduled)
            .collect();
        let current = on
            .iter()
            .find(|e| at(&e.start).is_some_and(|s| s <= now) && at(&e.end).is_some_and(|t| now < t))
            .copied();
        let next = on
            .iter()
            .filter(|e| at(&e.start).is_some_and(|s| s > now))
            .take(3)
            .copied()
            .collect();
        (current, next)
    }

    /// How the airing of a rundown differs from this published version: None when it airs as
    /// published, else a sentence for the operator.
    pub fn differs_from(&self, r: &Rundown) -> Option<String> {
        let date = r.day.date.to_string();
        if !self.dates.contains(&date) {
            return Some(format!(
                "{date} is airing but was never published (latest version {})",
                self.version
            ));
        }
        let key = |e: &Entry| {
            (
                e.id.clone(),
                e.start.clone(),
                e.end.clone(),
                e.title.clone(),
            )
        };
        let published: Vec<_> = self
            .day(&date)
            .into_iter()
            .filter(|e| e.status == Status::Scheduled)
            .map(key)
            .collect();
        let airing: Vec<_> = entries(r, "").iter().map(key).collect();
        let differ = published.iter().filter(|p| !airing.contains(p)).count()
            + airing.iter().filter(|a| !published.contains(a)).count();
        (differ > 0).then(|| format!("{date} airs differently from published version {}: {differ} entries differ; publish again", self.version))
    }

    /// Grades that have entries, in order.
    pub fn grades(&self) -> Vec<u8> {
        let mut g: Vec<u8> = self.entries.iter().filter_map(|e| e.grade).collect();
        g.sort();
        g.dedup();
        g
    }
}

/// JSON renderings for websites: the whole feed, one day, one grade.
pub mod json {
    use super::{Entry, Feed};

    pub fn feed(f: &Feed) -> Vec<u8> {
        bytes(&serde_json::to_value(f).expect("serializable"))
    }

    pub fn day(f: &Feed, date: &str) -> Vec<u8> {
        bytes(
            &serde_json::json!({ "channel": f.channel, "version": f.version, "date": date, "entries": f.day(date) }),
        )
    }

    pub fn week(f: &Feed, week: &str, dates: &[String]) -> Vec<u8> {
        let entries: Vec<&Entry> = f
            .entries
            .iter()
            .filter(|e| dates.contains(&e.date))
            .collect();
        bytes(
            &serde_json::json!({ "channel": f.channel, "version": f.version, "week": week, "dates": dates, "entries": entries }),
        )
    }

    /// What is on air and what follows, for "now/next" boxes on websites.
    pub fn now_next(f: &Feed, now: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
        let (current, next) = f.now_next(now);
        bytes(
            &serde_json::json!({ "channel": f.channel, "version": f.version, "at": now.to_rfc3339(), "now": current, "next": next }),
        )
    }

    pub fn grade(f: &Feed, grade: u8) -> Vec<u8> {
        let entries: Vec<&Entry> = f
            .entries
            .iter()
            .filter(|e| e.grade == Some(grade) || e.grade.is_none())
            .collect();
        bytes(
            &serde_json::json!({ "channel": f.channel, "version": f.version, "grade": grade, "entries": entries }),
        )
    }

    fn bytes(v: &serde_json::Value) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(v).expect("serializable");
        b.push(b'\n');
        b
    }
}
