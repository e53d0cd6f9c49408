//! Media around the engine: probing files, checking what is due ahead of air, fetching remote
//! media into the channel's cache, and making the sample channel's demo media.

pub mod cache;
pub mod check;
pub mod demo;
pub mod fetch;
pub mod probe;

use crate::schedule::Schedule;
use crate::time::Frames;
use chrono::{DateTime, FixedOffset, NaiveDate};

/// One airing of a media: where it sits in a rundown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Airing {
    pub date: NaiveDate,
    /// The rundown item's id (`slate` for the channel's slate, which airs whenever media fails).
    pub item: String,
    /// Local start time.
    pub at: DateTime<FixedOffset>,
    pub slot: Frames,
    /// Break and filler media repeat to fill their slot, so their length does not matter.
    pub loops: bool,
}

/// A distinct media string due in a window, with all its airings in air order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub media: String,
    pub airings: Vec<Airing>,
}

/// Every distinct media of the rundowns of `days` broadcast days from `from`, plus the slate,
/// ordered by first airing.
pub fn due(schedule: &Schedule, from: NaiveDate, days: u32) -> Vec<Due> {
    let ch = &schedule.channel;
    let mut out: Vec<Due> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    let mut add = |media: &str, airing: Airing| match index.get(media) {
        Some(&i) => out[i].airings.push(airing),
        None => {
            index.insert(media.to_string(), out.len());
            out.push(Due {
                media: media.to_string(),
                airings: vec![airing],
            });
        }
    };
    for date in from.iter_days().take(days as usize) {
        let r = crate::rundown::build(schedule, date);
        if date == from {
            let at = r.local_time(0).fixed_offset();
            add(
                &ch.slate,
                Airing {
                    date,
                    item: "slate".into(),
                    at,
                    slot: 0,
                    loops: true,
                },
            );
        }
        for it in &r.items {
            add(
                &it.media,
                Airing {
                    date,
                    item: it.id.clone(),
                    at: r.local_time(it.start).fixed_offset(),
                    slot: it.duration,
                    loops: it.kind.loops(),
                },
            );
        }
    }
    out
}

/// Run `f` on every item with at most `jobs` threads at once; results in input order.
pub(crate) fn parallel<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().expect("results").push((i, r));
                }
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Bytes as lower-case hex (checksums, cache names).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
