//! Steering a running engine from outside (the operator API, the schedule watcher): the schedule
//! it plays, which is swapped whole on reload; operator commands, which the engine carries out
//! between frames and records in the as-run log; and the status it reports back.
//! Everything here is shared memory; the engine only ever takes short locks once per frame.

use crate::schedule::Schedule;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// What an operator (or the service) asks the engine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Put the next item on air now, from its first frame; it still ends at its planned end, so
    /// the rest of the day keeps the published times.
    Skip,
    /// Air slate and silence instead of the programme until `Resume`; items change underneath
    /// by the clock, so resuming returns to whatever the clock says is on air.
    Hold,
    Resume,
    /// Only record a line in the as-run log (a reload, for instance).
    Note(String),
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Skip => "skip",
            Action::Hold => "hold",
            Action::Resume => "resume",
            Action::Note(_) => "note",
        }
    }
}

/// The engine's answer to an action: what it did, or why it could not.
pub type Reply = Result<String, String>;

struct Command {
    action: Action,
    who: String,
    reply: Option<tokio::sync::oneshot::Sender<Reply>>,
}

/// The item on air, as the status reports it.
#[derive(Debug, Clone, Serialize)]
pub struct OnAir {
    pub date: String,
    pub id: String,
    pub kind: &'static str,
    pub title: String,
    pub media: String,
    /// Planned first and end frame in the broadcast day, and the same as RFC 3339 instants.
    pub start_frame: i64,
    pub end_frame: i64,
    pub start: String,
    pub end: String,
    /// Frames into the item (its own first frame is 0).
    pub offset: i64,
    /// True when the operator skipped to it ahead of its planned start.
    pub early: bool,
    /// The item's media could not be opened, ended early or stalled: slate is on air.
    pub slate: bool,
}

/// A fault as the status lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub at: String,
    pub item: String,
    pub kind: &'static str,
    pub detail: String,
}

/// What the engine reports about itself, refreshed at every item change and every second.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub running: bool,
    pub on_air: Option<OnAir>,
    pub held: bool,
    /// Frames sent to the output since the engine started.
    pub output_frames: i64,
    /// Frames ahead (+) or behind (-) of where the clock says the output should be; 0 or 1 in
    /// steady state. Always 0 when rendering faster than real time.
    pub drift_frames: i64,
    pub items_aired: u64,
    pub faults_by_kind: BTreeMap<&'static str, u64>,
    /// The most recent faults, newest last.
    pub faults: VecDeque<Fault>,
    /// Bytes of transport stream the output has produced, and the bitrate over the last second.
    pub output_bytes: u64,
    pub output_bitrate: u64,
    #[serde(skip)]
    bytes_at: Option<(std::time::Instant, u64)>,
}

impl Status {
    /// Record the output's byte count, and the bitrate since the last record.
    pub(crate) fn count_bytes(&mut self, bytes: u64) {
        let now = std::time::Instant::now();
        if let Some((at, before)) = self.bytes_at {
            let secs = now.duration_since(at).as_secs_f64();
            if secs > 0.0 {
                self.output_bitrate = ((bytes - before) as f64 * 8.0 / secs) as u64;
            }
        }
        self.bytes_at = Some((now, bytes));
        self.output_bytes = bytes;
    }
}

/// The kinds of fault the engine reports (the status counts them; metrics list every one).
pub const FAULT_KINDS: &[&str] = &[
    "unavailable",
    "ended-early",
    "no-video",
    "no-audio",
    "decoder-error",
    "stalled",
    "slow",
    "damaged",
    "overrun",
    "no-schedule",
];

/// How many recent faults the status keeps.
const RECENT_FAULTS: usize = 50;

/// The shared handle between the engine and whoever steers it.
pub struct Control {
    schedule: RwLock<Arc<Schedule>>,
    generation: AtomicU64,
    commands: Mutex<Vec<Command>>,
    status: RwLock<Status>,
    /// Set by signals or the service to stop the engine at the next frame.
    pub stop: Arc<AtomicBool>,
}

impl Control {
    pub fn new(schedule: Schedule, stop: Arc<AtomicBool>) -> Arc<Control> {
        Arc::new(Control {
            schedule: RwLock::new(Arc::new(schedule)),
            generation: AtomicU64::new(0),
            commands: Mutex::new(Vec::new()),
            status: RwLock::new(Status::default()),
            stop,
        })
    }

    pub fn schedule(&self) -> Arc<Schedule> {
        self.schedule.read().expect("schedule lock").clone()
    }

    /// Replace the schedule. The engine picks it up at its next frame and lets the change take
    /// effect at the next item boundary.
    pub fn set_schedule(&self, s: Schedule) {
        *self.schedule.write().expect("schedule lock") = Arc::new(s);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Queue an action; the returned receiver gets the engine's reply (within a frame while it
    /// runs).
    pub fn send(&self, action: Action, who: &str) -> tokio::sync::oneshot::Receiver<Reply> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.commands.lock().expect("commands").push(Command {
            action,
            who: who.to_string(),
            reply: Some(tx),
        });
        rx
    }

    /// Record a note in the as-run log, without waiting for it.
    pub fn note(&self, text: String, who: &str) {
        self.commands.lock().expect("commands").push(Command {
            action: Action::Note(text),
            who: who.to_string(),
            reply: None,
        });
    }

    /// The engine takes the queued actions, each with a function to answer it.
    pub(crate) fn take(&self) -> Vec<(Action, String, impl FnOnce(Reply) + use<>)> {
        let cmds = std::mem::take(&mut *self.commands.lock().expect("commands"));
        cmds.into_iter()
            .map(|c| {
                let reply = c.reply;
                (c.action, c.who, move |r: Reply| {
                    if let Some(tx) = reply {
                        let _ = tx.send(r);
                    }
                })
            })
            .collect()
    }

    pub fn status(&self) -> Status {
        self.status.read().expect("status lock").clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.write().expect("status lock"));
    }

    pub(crate) fn fault(&self, fault: Fault) {
        self.update(|s| {
            *s.faults_by_kind.entry(fault.kind).or_default() += 1;
            s.faults.push_back(fault);
            while s.faults.len() > RECENT_FAULTS {
                s.faults.pop_front();
            }
        });
    }
}
