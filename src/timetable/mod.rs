//! The public timetable: what viewers, websites and calendars see, rendered from the same rundowns
//! that air. Breaks and filler are folded away (viewers look for lessons), and each guide entry
//! keeps its rundown item's id so the guide and the air share one identity. Pure: no I/O here;
//! [`publish`] writes the renderings to disk.

pub mod publish;

use crate::rundown::{ItemKind, Rundown};
use serde::Serialize;

/// One guide entry: a lesson, strand or programme as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: String,
    pub kind: ItemKind,
    pub title: String,
    pub grade: Option<u8>,
    pub grade_label: Option<&'static str>,
    pub subject: Option<String>,
    pub strand: Option<&'static str>,
    pub number: Option<u32>,
    /// RFC 3339 local time with offset.
    pub start: String,
    pub end: String,
}

/// The guide for one broadcast day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    pub channel: String,
    pub date: String,
    pub timezone: String,
    pub entries: Vec<Entry>,
}

/// The guide entries of a rundown, in air order.
pub fn day(r: &Rundown) -> Day {
    let entries = r
        .items
        .iter()
        .filter(|it| !matches!(it.kind, ItemKind::Break | ItemKind::Filler))
        .map(|it| Entry {
            id: it.id.clone(),
            kind: it.kind,
            title: it.title.clone(),
            grade: it.grade.map(|g| g.0),
            grade_label: it.grade.map(|g| g.label_zh()),
            subject: it.subject.clone(),
            strand: it.strand.map(|s| s.label_zh()),
            number: it.number,
            start: r.local_time(it.start).to_rfc3339(),
            end: r.local_time(it.end()).to_rfc3339(),
        })
        .collect();
    Day {
        channel: r.channel_id.clone(),
        date: r.day.date.to_string(),
        timezone: r.tz.name().to_string(),
        entries,
    }
}
