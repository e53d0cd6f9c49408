//! The as-run log: what actually aired, when, and every fault; compliance evidence.
//! JSON lines, one file per broadcast day, each line appended with a single write and synced,
//! so a crash loses at most the line being written and never rewrites earlier ones.

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// An item went on air from its first frame.
    Start,
    /// An item went on air part-way through (service start or restart): join in progress.
    Join,
    /// An item left the air.
    End,
    /// Something went wrong; the slot was filled with slate or filler.
    Fault,
    /// An operator action or a schedule reload, with who did it and what came of it.
    Operator,
}

/// One line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct Entry<'a> {
    pub event: Event,
    /// Wall-clock time the line was written (UTC).
    pub logged: String,
    /// The on-air instant this event refers to (RFC 3339, channel zone).
    pub air_time: String,
    pub date: String,
    pub item: &'a str,
    pub kind: &'a str,
    pub title: &'a str,
    pub media: &'a str,
    /// Frame of the broadcast day the plan put this event at, and the frame it happened at.
    pub planned_frame: i64,
    pub actual_frame: i64,
    /// Output frame count since the engine started.
    pub output_frame: i64,
    /// The fault's kind (one of `control::FAULT_KINDS`), on `fault` lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct AsRun {
    dir: PathBuf,
    channel: String,
    open: Option<(String, File)>,
}

impl AsRun {
    pub fn new(dir: &Path, channel: &str) -> AsRun {
        AsRun {
            dir: dir.to_path_buf(),
            channel: channel.to_string(),
            open: None,
        }
    }

    /// The file that holds a broadcast day's log.
    pub fn path(dir: &Path, channel: &str, date: &str) -> PathBuf {
        dir.join(format!("{channel}-{date}.jsonl"))
    }

    /// Append one entry. A failure to log is reported but never stops the output.
    pub fn log(&mut self, e: &Entry) {
        if let Err(err) = self.append(e) {
            tracing::error!("as-run: cannot write to {}: {err}", self.dir.display());
        }
    }

    fn append(&mut self, e: &Entry) -> std::io::Result<()> {
        if self.open.as_ref().is_none_or(|(d, _)| *d != e.date) {
            std::fs::create_dir_all(&self.dir)?;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(Self::path(&self.dir, &self.channel, &e.date))?;
            self.open = Some((e.date.clone(), f));
        }
        let (_, f) = self.open.as_mut().expect("opened");
        let mut line = serde_json::to_vec(e).expect("serializable");
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_data()
    }
}
