//! Ahead-of-air media check: every distinct media due in the next broadcast days is probed once
//! (exists and readable, decodes, length against each slot, what the engine will conform, remote
//! URLs answering) and what would go wrong on air comes back as [`Problem`]s in air order.

use super::cache::{self, Source};
use super::probe::{self, Info};
use super::{Airing, Due};
use crate::schedule::{Channel, Schedule};
use crate::time::timecode;
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

/// What is wrong (or will be changed) with a media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The file does not exist.
    Missing,
    /// It exists but cannot be read, or is empty.
    Unreadable,
    /// GStreamer cannot make sense of it (or cannot tell its length).
    Undecodable,
    /// Shorter than its slot beyond the channel's media tolerance: slate fills the rest.
    Short,
    /// Longer than its slot beyond the tolerance: cut at the slot's end.
    Long,
    /// No video stream: slate shows instead of a picture.
    NoVideo,
    /// No audio stream: silence airs.
    NoAudio,
    /// A format the engine converts (frame rate, size, aspect, interlace, audio rate/channels).
    Conformed,
    /// A remote URL that does not answer, or answers with an error status.
    Unreachable,
    /// A remote URL that answers but is not in the cache: it would stream at air time.
    NotFetched,
    /// A URI scheme that cannot be checked ahead of air.
    Unchecked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Airs as planned, changed by the engine.
    Info,
    /// Airs, but not as the operator would want.
    Warning,
    /// Slate (or a wrong length) would reach air.
    Error,
}

/// One problem of one media, at the first airing it affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The broadcast day of that airing.
    pub date: NaiveDate,
    /// The rundown item (`slate` for the channel's slate).
    pub item: String,
    /// Its local start time.
    pub at: DateTime<FixedOffset>,
    pub media: String,
    pub kind: Kind,
    pub severity: Severity,
    pub message: String,
    /// How many airings in the checked window use this media.
    pub airings: usize,
}

/// Media probed at once: local probing is light, and remote checks mostly wait.
const JOBS: usize = 4;

/// Check the media of `days` broadcast days from `from`. Blocking (probes files, asks servers):
/// call it from a plain thread or `spawn_blocking`, not from async code.
pub fn check(schedule: &Schedule, from: NaiveDate, days: u32) -> Vec<Problem> {
    let ch = &schedule.channel;
    let due = super::due(schedule, from, days);
    let mut problems: Vec<Problem> = super::parallel(&due, JOBS, |d| examine(ch, d))
        .into_iter()
        .flatten()
        .collect();
    // Air order; at one airing the worst first.
    problems.sort_by(|a, b| {
        (a.at, &a.item, b.severity, a.kind).cmp(&(b.at, &b.item, a.severity, b.kind))
    });
    problems
}

/// The problems of one media.
fn examine(ch: &Channel, due: &Due) -> Vec<Problem> {
    let first = &due.airings[0];
    let instead = if due.media == ch.slate {
        "a plain dark frame would air as slate"
    } else {
        "slate would air"
    };
    let problem = |airing: &Airing, kind: Kind, severity: Severity, message: String| Problem {
        date: airing.date,
        item: airing.item.clone(),
        at: airing.at,
        media: due.media.clone(),
        kind,
        severity,
        message,
        airings: due.airings.len(),
    };
    let path = match cache::resolve(ch, &due.media) {
        Source::File(p) => p,
        Source::Uri(uri) if cache::is_http(&uri) => {
            let (kind, severity, message) = match super::fetch::head(&uri) {
                Ok(h) if h.status >= 400 => (
                    Kind::Unreachable,
                    Severity::Error,
                    format!("the server answers HTTP {}; {instead}", h.status),
                ),
                Ok(h) => (
                    Kind::NotFetched,
                    Severity::Warning,
                    format!(
                        "the server answers HTTP {}{}, but it is not in the cache, so it would stream at air time unchecked; run `airclass media fetch`",
                        h.status,
                        h.length
                            .map(|n| format!(" ({n} bytes)"))
                            .unwrap_or_default()
                    ),
                ),
                Err(e) => (
                    Kind::Unreachable,
                    Severity::Error,
                    format!("{e}; {instead}"),
                ),
            };
            return vec![problem(first, kind, severity, message)];
        }
        Source::Uri(uri) => {
            return vec![problem(
                first,
                Kind::Unchecked,
                Severity::Warning,
                format!("`{uri}` is a URI that cannot be checked ahead of air"),
            )];
        }
    };
    if let Err(e) = probe::readable(&path) {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => Kind::Missing,
            _ => Kind::Unreadable,
        };
        return vec![problem(
            first,
            kind,
            Severity::Error,
            format!("{}: {e}; {instead}", path.display()),
        )];
    }
    let info = match probe::probe(&path) {
        Ok(info) => info,
        Err(e) => {
            return vec![problem(
                first,
                Kind::Undecodable,
                Severity::Error,
                format!("{} cannot be decoded ({e}); {instead}", path.display()),
            )];
        }
    };
    let mut out = Vec::new();
    if info.video.is_none() {
        out.push(problem(
            first,
            Kind::NoVideo,
            Severity::Warning,
            "no video stream: the slate picture shows instead".into(),
        ));
    }
    if info.audio.is_none() {
        out.push(problem(
            first,
            Kind::NoAudio,
            Severity::Warning,
            "no audio stream: silence airs".into(),
        ));
    }
    let changes = conforming(ch, &info);
    if !changes.is_empty() {
        out.push(problem(
            first,
            Kind::Conformed,
            Severity::Info,
            format!("conformed on air: {}", changes.join(", ")),
        ));
    }
    out.extend(
        length(ch, due, &info)
            .into_iter()
            .map(|(a, kind, severity, msg)| problem(a, kind, severity, msg)),
    );
    out
}

/// The media's length against its slots: a problem at the first airing that is too long or too
/// short (looping media fill any slot).
fn length<'a>(
    ch: &Channel,
    due: &'a Due,
    info: &Info,
) -> Vec<(&'a Airing, Kind, Severity, String)> {
    let fixed: Vec<&Airing> = due.airings.iter().filter(|a| !a.loops).collect();
    let Some(first) = fixed.first() else {
        return Vec::new();
    };
    let Some(nanos) = info.nanos else {
        return vec![(
            first,
            Kind::Undecodable,
            Severity::Warning,
            "the length cannot be determined; it may end early (slate) or be cut".into(),
        )];
    };
    let got = ch.rate.frames_floor(nanos as i128);
    let tol = ch.policy.media_tolerance;
    let tc = |f| timecode(f, ch.rate);
    let mut out = Vec::new();
    if let Some(a) = fixed.iter().find(|a| got < a.slot - tol) {
        out.push((
            *a,
            Kind::Short,
            Severity::Error,
            format!(
                "{} long for a {} slot (tolerance {}): slate fills the last {}",
                tc(got),
                tc(a.slot),
                tc(tol),
                tc(a.slot - got)
            ),
        ));
    }
    if let Some(a) = fixed.iter().find(|a| got > a.slot + tol) {
        out.push((
            *a,
            Kind::Long,
            Severity::Warning,
            format!(
                "{} long for a {} slot (tolerance {}): the last {} is cut",
                tc(got),
                tc(a.slot),
                tc(tol),
                tc(got - a.slot)
            ),
        ));
    }
    out
}

/// What the engine changes to fit the media to the channel's format.
fn conforming(ch: &Channel, info: &Info) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = info.video {
        if (v.width, v.height) != (ch.width, ch.height) {
            // Display aspect of the media against the channel's: which borders scaling adds.
            let (pn, pd) = (v.par.0.max(1) as u64, v.par.1.max(1) as u64);
            let media = v.width as u64 * pn * ch.aspect.1 as u64;
            let channel = v.height as u64 * pd * ch.aspect.0 as u64;
            let borders = match media.cmp(&channel) {
                std::cmp::Ordering::Greater => " with letterbox",
                std::cmp::Ordering::Less => " with pillarbox",
                std::cmp::Ordering::Equal => "",
            };
            out.push(format!(
                "{}x{} scaled to {}x{}{borders}",
                v.width, v.height, ch.width, ch.height
            ));
        }
        // 25/1 and 50/2 are one rate: compare cross-multiplied.
        if v.fps.0 as i64 * ch.rate.den as i64 != ch.rate.num as i64 * v.fps.1 as i64 {
            out.push(format!(
                "{}/{} fps converted to {}/{}",
                v.fps.0, v.fps.1, ch.rate.num, ch.rate.den
            ));
        }
        if v.interlaced {
            out.push("interlaced, deinterlaced".into());
        }
    }
    if let Some(a) = info.audio {
        use crate::playout::output::{AUDIO_CHANNELS, AUDIO_RATE};
        if a.rate != AUDIO_RATE {
            out.push(format!("{} Hz audio resampled to {AUDIO_RATE} Hz", a.rate));
        }
        if a.channels != AUDIO_CHANNELS {
            out.push(format!(
                "{} audio channel(s) mixed to {AUDIO_CHANNELS}",
                a.channels
            ));
        }
    }
    out
}

/// The problems as a table for operators, with a count by severity at the end.
pub fn to_table(problems: &[Problem]) -> String {
    let mut s = String::new();
    for p in problems {
        s.push_str(&format!(
            "{}  {:<7}  {:<11}  {}  {}\n    {}{}\n",
            p.at.format("%Y-%m-%d %H:%M:%S"),
            label(p.severity),
            label(p.kind),
            p.item,
            p.media,
            p.message,
            match p.airings {
                1 => String::new(),
                n => format!(" ({n} airings)"),
            }
        ));
    }
    let count = |sev| problems.iter().filter(|p| p.severity == sev).count();
    s.push_str(&format!(
        "{} problem(s): {} error(s), {} warning(s), {} info\n",
        problems.len(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    ));
    s
}

/// The name serde gives a unit variant (`not-fetched`), so the table and JSON say the same.
fn label(v: impl Serialize) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}
