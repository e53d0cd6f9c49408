//! Publishing: the feed's renderings written to a directory that any static web server or CDN can
//! serve as it is. Each version is a directory that is written completely under a temporary name
//! and then renamed into place, so it appears whole or not at all and is never written again;
//! `latest` is a symbolic link swapped atomically to the newest version. Every file has gzip and
//! brotli variants beside it and a content hash in the version's `manifest.json` (for ETags).

use super::{Feed, html, ical, json, xmltv};
use crate::rundown;
use crate::schedule::Schedule;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The files of one version, by path relative to the version directory.
pub fn render(f: &Feed, history: &[serde_json::Value]) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        ("feed.json".to_string(), json::feed(f)),
        ("xmltv.xml".to_string(), xmltv::render(f)),
        ("index.html".to_string(), html::page(f)),
        ("versions.json".to_string(), {
            let mut b = serde_json::to_vec_pretty(history).expect("json");
            b.push(b'\n');
            b
        }),
    ];
    for d in &f.dates {
        files.push((format!("days/{d}.json"), json::day(f, d)));
    }
    for (w, dates) in f.weeks() {
        files.push((format!("weeks/{w}.json"), json::week(f, &w, &dates)));
    }
    for g in f.grades() {
        files.push((format!("grades/{g}.json"), json::grade(f, g)));
        files.push((format!("ical/grade-{g}.ics"), ical::render(f, g)));
        files.push((format!("widget/grade-{g}.html"), html::widget(f, g)));
    }
    files
}

/// A strong ETag from the content.
pub fn etag(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    format!(
        "\"{}\"",
        h.iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// What publishing a schedule did.
#[derive(Debug)]
pub struct Outcome {
    /// The new version and its directory, or None when nothing changed.
    pub published: Option<(Feed, PathBuf)>,
    /// The version `latest` points to now (0: none).
    pub latest: u32,
    /// Weeks that appeared for the first time after their lead-time deadline.
    pub late: Vec<String>,
}

/// Publish every loaded week of the schedule under `out/<channel>/` as the next version, unless
/// nothing changed since the latest one.
pub fn publish_schedule(s: &Schedule, out: &Path, now: DateTime<Utc>) -> std::io::Result<Outcome> {
    let ch = &s.channel;
    let rundowns: Vec<_> = s
        .weeks
        .iter()
        .flat_map(|w| (0..7).map(|i| rundown::build(s, w.start + chrono::Days::new(i))))
        .collect();
    let prev = latest(&out.join(&ch.id));
    let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let Some(feed) = Feed::next(prev.as_ref(), ch, &rundowns, &stamp) else {
        return Ok(Outcome {
            published: None,
            latest: prev.map_or(0, |p| p.version),
            late: Vec::new(),
        });
    };
    let late = s
        .weeks
        .iter()
        .filter(|w| {
            prev.as_ref()
                .is_none_or(|p| !p.dates.contains(&w.start.to_string()))
        })
        .filter_map(|w| {
            let due = ch.lead.deadline(w.start, ch.day_start);
            let deadline = crate::time::local_to_utc(due.date(), due.time(), ch.tz);
            (now > deadline).then(|| {
                format!(
                    "{} is published late: it was due by {} ({})",
                    w.name,
                    deadline.with_timezone(&ch.tz).to_rfc3339(),
                    ch.tz.name()
                )
            })
        })
        .collect();
    let dir = publish(out, &feed)?;
    Ok(Outcome {
        latest: feed.version,
        published: Some((feed, dir)),
        late,
    })
}

/// The newest published version under `base` (the channel's directory in the export).
pub fn latest(base: &Path) -> Option<Feed> {
    let bytes = fs::read(base.join("latest/feed.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A loud warning when a day goes on air unpublished, or different from what was published
/// under `out` (a `publish --out` directory); None when it airs as announced.
pub fn check_aired(out: &Path, r: &crate::rundown::Rundown) -> Option<String> {
    match latest(&out.join(&r.channel_id)) {
        None => Some(format!(
            "{} is airing but nothing is published under {}",
            r.day.date,
            out.display()
        )),
        Some(feed) => feed.differs_from(r),
    }
}

/// Write `feed` (built with [`Feed::next`] against [`latest`]) under `out/<channel>/` and make
/// it the latest; returns its version directory.
fn publish(out: &Path, feed: &Feed) -> std::io::Result<PathBuf> {
    let base = out.join(&feed.channel.id);
    let versions = base.join("versions");
    fs::create_dir_all(&versions)?;
    // Leftovers of a publish that was killed midway are never served; clear them.
    for e in fs::read_dir(&versions)?.flatten() {
        if e.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    let mut history: Vec<serde_json::Value> = fs::read(base.join("latest/versions.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    history.push(serde_json::json!({
        "version": feed.version,
        "published": feed.published,
        "path": format!("versions/{}/", feed.version),
        "changes": feed.changes,
    }));
    let tmp = versions.join(format!(".tmp-{}-{}", feed.version, std::process::id()));
    fs::create_dir_all(&tmp)?;
    let mut manifest = serde_json::Map::new();
    for (rel, bytes) in render(feed, &history) {
        let path = tmp.join(&rel);
        fs::create_dir_all(path.parent().expect("in tmp"))?;
        write_synced(&path, &bytes)?;
        write_synced(
            &path.with_file_name(format!("{}.gz", file_name(&path))),
            &gzip(&bytes),
        )?;
        write_synced(
            &path.with_file_name(format!("{}.br", file_name(&path))),
            &brotli(&bytes),
        )?;
        manifest.insert(rel, serde_json::Value::String(etag(&bytes)));
    }
    write_synced(
        &tmp.join("manifest.json"),
        &serde_json::to_vec_pretty(&manifest).expect("json"),
    )?;
    let dir = versions.join(feed.version.to_string());
    if dir.exists() {
        return Err(std::io::Error::other(format!(
            "{} exists already; a published version is never rewritten",
            dir.display()
        )));
    }
    fs::rename(&tmp, &dir)?;
    fs::File::open(&versions)?.sync_all()?;
    // Swap `latest` to the new version in one rename.
    let link_tmp = base.join(format!(".latest-{}", std::process::id()));
    let _ = fs::remove_file(&link_tmp);
    std::os::unix::fs::symlink(format!("versions/{}", feed.version), &link_tmp)?;
    fs::rename(&link_tmp, base.join("latest"))?;
    fs::File::open(&base)?.sync_all()?;
    Ok(dir)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(b).expect("in memory");
    e.finish().expect("in memory")
}

fn brotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
    w.write_all(b).expect("in memory");
    drop(w);
    out
}
