//! `airclass run`: the channel as one long-running service. The playout engine runs on its own
//! thread; beside it, on a small tokio runtime, the public feed (the same server as `serve`), the
//! operator API and page on a separate listener, and a publisher that keeps the published
//! timetable in step with the schedule. A watcher reloads weekly schedules as they change.
//! Everything steers the engine only through its [`Control`]: swap the schedule, queue an action.

mod metrics;
mod operator;
mod reload;

use crate::media::{check, fetch};
use crate::playout::{self, Control, Pace, Sink};
use crate::schedule::Schedule;
use crate::time::{BroadcastDay, Frames};
use crate::timetable::{self, publish};
use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to run the channel.
pub struct Options {
    /// The channel directory (channel.yaml, weeks/).
    pub channel: PathBuf,
    /// Where the service keeps what it writes: `feed/` (the published export), `as-run/`.
    pub state: PathBuf,
    pub sinks: Vec<Sink>,
    /// Schedule time minus wall-clock time (see `air --shift`).
    pub shift: ChronoDuration,
    /// Stop after this many frames (None: until SIGTERM).
    pub frames: Option<Frames>,
    pub public: SocketAddr,
    pub operator: SocketAddr,
    /// The operator API's bearer token.
    pub token: String,
}

/// The outcome of the last reload, as the status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Reloaded {
    pub at: String,
    pub ok: bool,
    /// What was loaded, or the error with its FILE:LINE:COL.
    pub message: String,
}

/// The state of publication, as the status shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Published {
    /// The version `latest` points to (0: nothing published yet).
    pub version: u32,
    pub at: Option<String>,
    pub error: Option<String>,
    /// Broadcast days the latest version covers.
    #[serde(skip)]
    pub dates: BTreeSet<NaiveDate>,
}

/// What the service shares between its parts.
pub struct Service {
    pub control: Arc<Control>,
    pub channel_dir: PathBuf,
    pub feed_dir: PathBuf,
    pub as_run_dir: PathBuf,
    pub shift: ChronoDuration,
    token: String,
    pub reloaded: Mutex<Option<Reloaded>>,
    pub reloads: Mutex<(u64, u64)>,
    pub published: Mutex<Published>,
    /// What the last ahead-of-air media check found.
    pub media_problems: Mutex<Vec<check::Problem>>,
    /// The runtime the servers run on; webhooks are sent from it.
    rt: tokio::runtime::Handle,
}

impl Service {
    /// Schedule time now (wall clock plus the shift).
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.shift
    }

    /// Publish `s` if it changed since the latest version, and tell the subscribers; never
    /// fails the service.
    fn publish(&self, s: &Schedule) {
        let result = publish::publish_schedule(s, &self.feed_dir, Utc::now());
        let mut p = self.published.lock().expect("published");
        match result {
            Ok(o) => {
                o.late.iter().for_each(|w| tracing::warn!("{w}"));
                p.version = o.latest;
                p.error = None;
                if let Some((feed, _)) = o.published {
                    tracing::info!(
                        version = feed.version,
                        added = feed.changes.added.len(),
                        moved = feed.changes.moved.len(),
                        updated = feed.changes.updated.len(),
                        cancelled = feed.changes.cancelled.len(),
                        "published a new timetable version"
                    );
                    p.at = Some(feed.published.clone());
                    p.dates = feed.dates.iter().filter_map(|d| d.parse().ok()).collect();
                    if !s.channel.webhooks.is_empty() {
                        let (urls, latest) = (
                            s.channel.webhooks.clone(),
                            format!("{}/latest/", s.channel.id),
                        );
                        self.rt.spawn(async move {
                            for line in timetable::notify::webhooks(&urls, &feed, &latest).await {
                                tracing::info!("{line}");
                            }
                        });
                    }
                    return;
                }
                if p.dates.is_empty()
                    && let Some(feed) = publish::latest(&self.feed_dir.join(&s.channel.id))
                {
                    p.at = Some(feed.published.clone());
                    p.dates = feed.dates.iter().filter_map(|d| d.parse().ok()).collect();
                }
            }
            Err(e) => {
                tracing::error!("cannot publish to {}: {e}", self.feed_dir.display());
                p.error = Some(e.to_string());
            }
        }
    }

    /// Seconds from now until the start of the first broadcast day, from today on, that is not
    /// published: how long before the channel airs an unannounced day.
    pub fn seconds_until_unpublished(&self) -> i64 {
        let s = self.control.schedule();
        let ch = &s.channel;
        let now = self.now();
        let dates = self.published.lock().expect("published").dates.clone();
        let mut day = BroadcastDay::containing(now, ch.day_start, ch.tz, ch.rate).date;
        while dates.contains(&day) {
            day = day.succ_opt().expect("date");
        }
        let start = BroadcastDay::new(day, ch.day_start, ch.tz, ch.rate).start;
        (start - now).num_seconds().max(0)
    }
}

/// How many broadcast days ahead media is fetched and checked, and how often when the schedule
/// does not change.
const MEDIA_DAYS: u32 = 3;
const MEDIA_EVERY: Duration = Duration::from_secs(300);

/// How often the publisher retries.
const PUBLISH_EVERY: Duration = Duration::from_secs(60);

/// Run the channel until `stop` is set (SIGTERM) or `frames` have aired.
pub fn run(o: Options, stop: Arc<std::sync::atomic::AtomicBool>) -> Result<(), String> {
    let schedule = Schedule::load(&o.channel).map_err(|e| e.to_string())?;
    let control = Control::new(schedule, stop.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let svc = Arc::new(Service {
        control: control.clone(),
        channel_dir: o.channel.clone(),
        feed_dir: o.state.join("feed"),
        as_run_dir: o.state.join("as-run"),
        shift: o.shift,
        token: o.token,
        reloaded: Mutex::new(None),
        reloads: Mutex::new((0, 0)),
        published: Mutex::new(Published::default()),
        media_problems: Mutex::new(Vec::new()),
        rt: rt.handle().clone(),
    });
    svc.publish(&control.schedule());

    let bind = |addr: SocketAddr, what: &str| {
        rt.block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| format!("{what} listener {addr}: {e}"))
    };
    let public = bind(o.public, "public feed")?;
    let operator = bind(o.operator, "operator")?;
    tracing::info!(
        "public feed on http://{}/{}/latest/",
        o.public,
        control.schedule().channel.id
    );
    tracing::info!("operator page and API on http://{}/", o.operator);
    let stopped = {
        let stop = stop.clone();
        move || {
            let stop = stop.clone();
            async move {
                while !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    {
        let feed = svc.feed_dir.clone();
        let stopped = stopped();
        rt.spawn(async move { crate::server::serve_on(public, &feed, stopped).await });
    }
    rt.spawn(crate::server::serve_app(
        operator,
        operator::router(svc.clone()),
        stopped(),
    ));
    rt.spawn(publisher(svc.clone()));
    let _watcher = reload::watch(svc.clone())?;
    {
        let svc = svc.clone();
        std::thread::spawn(move || media_ahead(&svc));
    }

    let on_day = |r: &crate::rundown::Rundown| {
        if let Some(w) = publish::check_aired(&svc.feed_dir, r) {
            tracing::warn!("{w}");
        }
    };
    let result = playout::run(playout::Run {
        control: &control,
        start: Utc::now() + o.shift,
        frames: o.frames,
        sinks: o.sinks,
        pace: Pace::RealTime,
        shift: o.shift,
        as_run_dir: &svc.as_run_dir,
        on_day: &on_day,
    });
    stop.store(true, Ordering::SeqCst);
    rt.shutdown_timeout(Duration::from_secs(5));
    let sum = result?;
    tracing::info!(
        frames = sum.frames,
        items = sum.items,
        faults = sum.faults,
        "off air"
    );
    Ok(())
}

/// Publish again every minute, so that a publish that failed (a full disk) is retried; an
/// unchanged schedule makes no new version.
async fn publisher(svc: Arc<Service>) {
    loop {
        tokio::time::sleep(PUBLISH_EVERY).await;
        let s = svc.clone();
        let _ = tokio::task::spawn_blocking(move || s.publish(&s.control.schedule())).await;
    }
}

/// Ahead of air, continuously: fetch the remote media of the next days into the cache, then check
/// every item due (exists, decodes, length, format), again after each reload and every few
/// minutes, so problems show on the status before they reach air.
fn media_ahead(svc: &Service) {
    while !svc.control.stop.load(Ordering::SeqCst) {
        let generation = svc.control.generation();
        let s = svc.control.schedule();
        let ch = &s.channel;
        let today = BroadcastDay::containing(svc.now(), ch.day_start, ch.tz, ch.rate).date;
        for (url, r) in fetch::fetch(&s, today, MEDIA_DAYS, &LogProgress) {
            if let Err(e) = r {
                tracing::warn!("cannot fetch {url}: {e}");
            }
        }
        let problems = check::check(&s, today, MEDIA_DAYS);
        let errors: Vec<&check::Problem> = problems
            .iter()
            .filter(|p| p.severity == check::Severity::Error)
            .collect();
        if let Some(first) = errors.first() {
            tracing::warn!(
                "media check: {} problem(s) in the next {MEDIA_DAYS} days would air slate; the \
                 first: {} {} {}: {} (all of them: the operator page, /api/status)",
                errors.len(),
                first.at,
                first.item,
                first.media,
                first.message
            );
        }
        *svc.media_problems.lock().expect("media") = problems;
        let since = std::time::Instant::now();
        while since.elapsed() < MEDIA_EVERY
            && svc.control.generation() == generation
            && !svc.control.stop.load(Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Downloads reported in the service's log (no progress bars in a service).
struct LogProgress;

impl fetch::Progress for LogProgress {
    fn start(&self, url: &str, done: u64, total: Option<u64>) {
        tracing::info!(url, done, total, "fetching media");
    }
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, url: &str, r: &Result<fetch::Fetched, String>) {
        if r.is_ok() {
            tracing::info!(url, "media fetched");
        }
    }
}
