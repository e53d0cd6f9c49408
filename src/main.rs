//! The `airclass` command line: a thin shell over the library.

use airclass::media::{self, demo};
use airclass::playout::{self, Pace, Sink};
use airclass::schedule::Schedule;
use airclass::time::{BroadcastDay, parse_time_of_day};
use airclass::{policy, rundown, timetable};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(Parser)]
#[command(
    name = "airclass",
    version,
    about = "Playout scheduler for an education TV channel"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check a channel directory (channel.yaml and weeks/*.yaml); errors are FILE:LINE:COL.
    Validate {
        channel: PathBuf,
        /// Also probe every media file and compare its length with the stated duration.
        #[arg(long)]
        probe: bool,
    },
    /// Print the frame-exact rundown of a broadcast day, or the policy report of a day or week.
    Build {
        channel: PathBuf,
        /// The broadcast day.
        #[arg(long, required_unless_present = "week")]
        date: Option<NaiveDate>,
        /// A whole week (report only), by its Monday or any day in it.
        #[arg(long, conflicts_with = "date")]
        week: Option<NaiveDate>,
        /// Print the policy report (every rule with pass/fail) instead of the rundown; exits 1 if
        /// a rule fails.
        #[arg(long)]
        report: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Print the JSON Schema of `channel` or `week` files.
    Schema {
        #[arg(value_parser = ["channel", "week"])]
        which: String,
    },
    /// Write the public timetable (JSON) of every loaded week to a directory.
    Publish {
        channel: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve a published export over HTTP (read-only), as a CDN origin would.
    Serve {
        /// The directory given to `publish --out`.
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: std::net::SocketAddr,
    },
    /// Media tools.
    Media {
        #[command(subcommand)]
        cmd: MediaCmd,
    },
    /// Render a window of a day to an MPEG-TS file, faster than real time.
    Render {
        channel: PathBuf,
        #[arg(long)]
        date: NaiveDate,
        /// Local start time, HH:MM[:SS].
        #[arg(long)]
        from: String,
        /// Local end time; earlier than --from means the next morning.
        #[arg(long)]
        to: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "as-run")]
        as_run_dir: PathBuf,
    },
    /// Play out in real time, locked to the clock, joining the item on air now.
    Air {
        channel: PathBuf,
        #[command(flatten)]
        on_air: OnAirArgs,
        #[arg(long, default_value = "as-run")]
        as_run_dir: PathBuf,
        /// The `publish --out` directory: warn loudly when a day airs unpublished or differs.
        #[arg(long)]
        published: Option<PathBuf>,
    },
    /// Run the channel as a service: playout, the public feed, the operator page and API,
    /// publication ahead of air and hot reload of schedule files, until SIGTERM.
    Run {
        channel: PathBuf,
        #[command(flatten)]
        on_air: OnAirArgs,
        /// Where the service writes: feed/ (the published export), as-run/.
        #[arg(long, default_value = "state")]
        state: PathBuf,
        /// The public feed's listener.
        #[arg(long, default_value = "127.0.0.1:8080")]
        public: std::net::SocketAddr,
        /// The operator page and API's listener (keep it private).
        #[arg(long, default_value = "127.0.0.1:8081")]
        operator: std::net::SocketAddr,
        /// A file holding the operator token (else $AIRCLASS_TOKEN; else one is generated in
        /// STATE/operator-token).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Log lines as JSON objects (for a log collector) instead of text.
        #[arg(long)]
        log_json: bool,
    },
}

/// Where and how `air` and `run` go on air.
#[derive(clap::Args)]
struct OnAirArgs {
    /// udp://HOST:PORT, srt://HOST:PORT[?mode=listener] or file:PATH.ts; repeat for several.
    #[arg(long = "output", required = true)]
    outputs: Vec<String>,
    /// Air as if the local time now were this ("2020-02-17 08:00"): for past sample weeks.
    #[arg(long)]
    as_if: Option<String>,
    /// Schedule time = wall-clock time + SECONDS: a fixed mapping that a restart keeps, so
    /// it rejoins where the shifted clock says (as --as-if does not).
    #[arg(long, allow_hyphen_values = true, conflicts_with = "as_if")]
    shift: Option<i64>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long = "for")]
    seconds: Option<u64>,
}

impl OnAirArgs {
    /// The outputs, the schedule-time shift and the number of frames to air.
    fn resolve(
        &self,
        ch: &airclass::schedule::Channel,
    ) -> Result<(Vec<Sink>, chrono::Duration, Option<i64>), String> {
        let sinks: Vec<Sink> = self
            .outputs
            .iter()
            .map(|o| o.parse())
            .collect::<Result<_, _>>()?;
        let shift = match &self.as_if {
            Some(t) => {
                let naive = NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M")
                    .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
                    .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S"))
                    .map_err(|_| {
                        format!(
                            "--as-if `{t}`: write a local date and time like \"2020-02-17 08:00\""
                        )
                    })?;
                airclass::time::local_to_utc(naive.date(), naive.time(), ch.tz) - Utc::now()
            }
            None => chrono::Duration::seconds(self.shift.unwrap_or(0)),
        };
        let frames = self
            .seconds
            .map(|secs| ch.rate.frames_floor(secs as i128 * 1_000_000_000));
        for o in &sinks {
            match o {
                Sink::Udp { host, port } => {
                    println!("on air to udp://{host}:{port}  (watch: ffplay udp://{host}:{port})")
                }
                Sink::Srt(uri) => println!("on air to {uri}  (watch: ffplay \"{uri}\")"),
                Sink::File(p) => println!("on air to {}", p.display()),
            }
        }
        Ok((sinks, shift, frames))
    }
}

#[derive(Subcommand)]
enum MediaCmd {
    /// Generate the sample media the schedule refers to (skips files that exist).
    Demo {
        channel: PathBuf,
        /// Make this day's media first.
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Only make this day's media (and the channel's slate, filler and break).
        #[arg(long)]
        only: bool,
        #[arg(long, default_value_t = 2)]
        jobs: usize,
    },
    /// Probe every media due in the next broadcast days (exists, decodes, length against its
    /// slot, format, remote URLs answer); exits 1 if a problem would put slate on air.
    Check {
        channel: PathBuf,
        /// The first broadcast day (default: the one on air now in the channel's time zone).
        #[arg(long)]
        from: Option<NaiveDate>,
        #[arg(long, default_value_t = 3)]
        days: u32,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Download the remote (http/https) media due in the next broadcast days into
    /// CHANNEL/media/cache/, resuming interrupted downloads and verifying size and sha256.
    Fetch {
        channel: PathBuf,
        /// The first broadcast day (default: the one on air now in the channel's time zone).
        #[arg(long)]
        from: Option<NaiveDate>,
        #[arg(long, default_value_t = 3)]
        days: u32,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_logs(matches!(cli.cmd, Cmd::Run { log_json: true, .. }));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates its own malloc arena; with a decode pipeline per item
/// (and GStreamer's threads coming and going) that made memory swing by hundreds of MB. Two
/// arenas keep it flat. Blocks of 256 KB and more (each decoder's picture pools, allocated when
/// an item opens and freed when it closes) always get their own mapping, returned when freed:
/// glibc would otherwise raise that threshold past a picture's size after the first free and
/// carve them from the heap, which fragments over thousands of items. Set here so it holds
/// however the binary is started.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator settings; called once, before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// A flag that Ctrl-C or SIGTERM sets, so the engine can finish the output cleanly.
fn stop_on_signals() -> Result<Arc<AtomicBool>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| e.to_string())?;
    }
    Ok(stop)
}

/// The broadcast day on air now in the channel's time zone.
fn today(s: &Schedule) -> NaiveDate {
    let ch = &s.channel;
    BroadcastDay::containing(Utc::now(), ch.day_start, ch.tz, ch.rate).date
}

fn load(dir: &Path) -> Result<Schedule, String> {
    Schedule::load(dir).map_err(|e| e.to_string())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Cmd::Validate { channel, probe } => {
            let s = load(&channel)?;
            if probe {
                let (errors, warnings) = airclass::media::probe::check_durations(&s);
                warnings.iter().for_each(|w| eprintln!("warning: {w}"));
                if !errors.is_empty() {
                    return Err(airclass::schedule::SourceErrors(errors).to_string());
                }
            }
            let entries: usize = s
                .weeks
                .iter()
                .flat_map(|w| w.days.values())
                .map(|d| {
                    d.lessons.values().map(Vec::len).sum::<usize>()
                        + d.extras.len()
                        + d.pinned.len()
                })
                .sum();
            println!(
                "{}: OK ({} week(s), {} entries)",
                channel.display(),
                s.weeks.len(),
                entries
            );
            Ok(())
        }
        Cmd::Build {
            channel,
            date,
            week,
            report,
            format,
        } => {
            let s = load(&channel)?;
            let dates: Vec<NaiveDate> = match (date, week) {
                (Some(d), _) => vec![d],
                (None, Some(w)) => {
                    let monday = w - chrono::Days::new(w.weekday().num_days_from_monday() as u64);
                    (0..7).map(|i| monday + chrono::Days::new(i)).collect()
                }
                (None, None) => unreachable!("clap requires one"),
            };
            if !report {
                if dates.len() > 1 {
                    return Err("--week needs --report; print rundowns one --date at a time".into());
                }
                let r = rundown::build(&s, dates[0]);
                match format {
                    Format::Table => print!("{}", rundown::to_table(&r)),
                    Format::Json => println!(
                        "{}",
                        serde_json::to_string_pretty(&rundown::to_json(&r)).expect("json")
                    ),
                }
                return Ok(());
            }
            let reports: Vec<_> = dates
                .iter()
                .map(|&d| rundown::report(&s, &rundown::build(&s, d)))
                .collect();
            match format {
                Format::Table => reports
                    .iter()
                    .for_each(|r| println!("{}", policy::to_text(r))),
                Format::Json => {
                    let v = if reports.len() == 1 {
                        serde_json::to_value(&reports[0])
                    } else {
                        serde_json::to_value(&reports)
                    };
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&v.expect("json")).expect("json")
                    );
                }
            }
            let failed: Vec<String> = reports
                .iter()
                .flat_map(|r| {
                    r.rules
                        .iter()
                        .filter(|x| !x.pass)
                        .map(move |x| format!("{} {}", r.date, x.rule))
                })
                .collect();
            if failed.is_empty() {
                Ok(())
            } else {
                Err(format!("rules failed: {}", failed.join(", ")))
            }
        }
        Cmd::Schema { which } => {
            let v = airclass::schedule::json_schema(&which).ok_or("unknown schema")?;
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
            Ok(())
        }
        Cmd::Publish { channel, out } => {
            let s = load(&channel)?;
            let ch = &s.channel;
            let o = timetable::publish::publish_schedule(&s, &out, Utc::now())
                .map_err(|e| format!("{}: {e}", out.display()))?;
            o.late.iter().for_each(|w| eprintln!("WARNING: {w}"));
            let latest_link = out.join(&ch.id).join("latest");
            let Some((feed, dir)) = o.published else {
                println!(
                    "unchanged: version {} under {} is current",
                    o.latest,
                    latest_link.display()
                );
                return Ok(());
            };
            let c = &feed.changes;
            println!(
                "published version {} ({} added, {} moved, {} updated, {} cancelled) at {}; latest -> {}",
                o.latest,
                c.added.len(),
                c.moved.len(),
                c.updated.len(),
                c.cancelled.len(),
                dir.display(),
                latest_link.display()
            );
            if !ch.webhooks.is_empty() {
                let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
                let latest_url = format!("{}/latest/", ch.id);
                for line in rt.block_on(timetable::notify::webhooks(
                    &ch.webhooks,
                    &feed,
                    &latest_url,
                )) {
                    println!("{line}");
                }
            }
            Ok(())
        }
        Cmd::Serve { dir, bind } => {
            let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            rt.block_on(airclass::server::serve(&dir, bind))
                .map_err(|e| format!("serve {}: {e}", bind))
        }
        Cmd::Media {
            cmd:
                MediaCmd::Demo {
                    channel,
                    date,
                    only,
                    jobs,
                },
        } => {
            let s = load(&channel)?;
            let cfg = demo::DemoConfig::load(&channel)?;
            let first: Vec<NaiveDate> = date.into_iter().collect();
            let mut specs = demo::specs(&s, &cfg, &first);
            if only && let Some(d) = date {
                let keep: Vec<String> = rundown::build(&s, d)
                    .items
                    .into_iter()
                    .map(|i| i.media)
                    .collect();
                let ch = &s.channel;
                specs.retain(|sp| {
                    keep.contains(&sp.media)
                        || [&ch.slate, &ch.filler, &ch.break_media].contains(&&sp.media)
                });
            }
            let started = std::time::Instant::now();
            let failed = std::sync::atomic::AtomicUsize::new(0);
            let made = demo::make_all(&specs, jobs, &|sp, res| match res {
                Ok(()) => println!("made {}", sp.media),
                Err(e) => {
                    failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    eprintln!("FAILED {}: {e}", sp.media);
                }
            });
            println!(
                "{made} file(s) made, {} already there, in {:.1} s",
                specs.len() - made,
                started.elapsed().as_secs_f64()
            );
            match failed.into_inner() {
                0 => Ok(()),
                n => Err(format!("{n} file(s) could not be made")),
            }
        }
        Cmd::Media {
            cmd:
                MediaCmd::Check {
                    channel,
                    from,
                    days,
                    format,
                },
        } => {
            let s = load(&channel)?;
            let from = from.unwrap_or_else(|| today(&s));
            let problems = media::check::check(&s, from, days);
            match format {
                Format::Table => print!("{}", media::check::to_table(&problems)),
                Format::Json => {
                    println!("{}", serde_json::to_string_pretty(&problems).expect("json"))
                }
            }
            let errors = problems
                .iter()
                .filter(|p| p.severity == media::check::Severity::Error)
                .count();
            match errors {
                0 => Ok(()),
                n => Err(format!("{n} media error(s) ahead of air")),
            }
        }
        Cmd::Media {
            cmd:
                MediaCmd::Fetch {
                    channel,
                    from,
                    days,
                },
        } => {
            let s = load(&channel)?;
            let from = from.unwrap_or_else(|| today(&s));
            let results = media::fetch::fetch(&s, from, days, &media::fetch::Bars::new());
            let mut failed = 0;
            for (url, r) in &results {
                match r {
                    Ok(media::fetch::Fetched::Cached(p)) => {
                        println!("cached {url} -> {}", p.display())
                    }
                    Ok(media::fetch::Fetched::Downloaded {
                        path,
                        bytes,
                        resumed_at,
                        sha256,
                        verified,
                    }) => println!(
                        "fetched {url} -> {} ({bytes} bytes{}; sha256 {sha256} {})",
                        path.display(),
                        match resumed_at {
                            0 => String::new(),
                            n => format!(", resumed at byte {n}"),
                        },
                        if *verified {
                            "verified"
                        } else {
                            "not in the schedule: add it to verify"
                        }
                    ),
                    Err(e) => {
                        failed += 1;
                        eprintln!("FAILED {url}: {e}");
                    }
                }
            }
            println!(
                "{} remote media due in {days} day(s) from {from}, {failed} failed",
                results.len()
            );
            match failed {
                0 => Ok(()),
                n => Err(format!("{n} download(s) failed")),
            }
        }
        Cmd::Render {
            channel,
            date,
            from,
            to,
            out,
            as_run_dir,
        } => {
            let s = load(&channel)?;
            let ch = &s.channel;
            let (from, to) = (parse_time_of_day(&from)?, parse_time_of_day(&to)?);
            let day = BroadcastDay::new(date, ch.day_start, ch.tz, ch.rate);
            let start = day.frame_of_local(from, ch.day_start, ch.tz);
            let mut end = day.frame_of_local(to, ch.day_start, ch.tz);
            if end == start {
                return Err("--from and --to are the same time; give a window, e.g. --from 08:00 --to 08:30".into());
            }
            if end < start {
                // The window runs into the next broadcast day.
                let next =
                    BroadcastDay::new(date.succ_opt().expect("date"), ch.day_start, ch.tz, ch.rate);
                end = day.frames() + next.frame_of_local(to, ch.day_start, ch.tz);
            }
            let started = std::time::Instant::now();
            let rate = ch.rate;
            let control = playout::Control::new(s, stop_on_signals()?);
            let sum = playout::run(playout::Run {
                control: &control,
                start: day.instant(start),
                frames: Some(end - start),
                sinks: vec![Sink::File(out.clone())],
                pace: Pace::AsFastAsPossible,
                shift: chrono::Duration::zero(),
                as_run_dir: &as_run_dir,
                on_day: &|_| {},
            })?;
            let secs = started.elapsed().as_secs_f64();
            let aired = sum.frames as f64 * rate.den as f64 / rate.num as f64;
            println!(
                "rendered {} frames ({} items, {} faults) to {} in {secs:.1} s ({:.1}x real time)",
                sum.frames,
                sum.items,
                sum.faults,
                out.display(),
                aired / secs
            );
            Ok(())
        }
        Cmd::Air {
            channel,
            on_air,
            as_run_dir,
            published,
        } => {
            let s = load(&channel)?;
            let (sinks, shift, frames) = on_air.resolve(&s.channel)?;
            let check = |r: &rundown::Rundown| {
                if let Some(w) = published
                    .as_deref()
                    .and_then(|dir| timetable::publish::check_aired(dir, r))
                {
                    eprintln!("\n!!! WARNING: {w} !!!\n");
                }
            };
            let control = playout::Control::new(s, stop_on_signals()?);
            let sum = playout::run(playout::Run {
                control: &control,
                start: Utc::now() + shift,
                frames,
                sinks,
                pace: Pace::RealTime,
                shift,
                as_run_dir: &as_run_dir,
                on_day: &check,
            })?;
            println!(
                "off air after {} frames ({} items, {} faults)",
                sum.frames, sum.items, sum.faults
            );
            Ok(())
        }
        Cmd::Run {
            channel,
            on_air,
            state,
            public,
            operator,
            token_file,
            log_json: _,
        } => {
            let s = load(&channel)?;
            let (sinks, shift, frames) = on_air.resolve(&s.channel)?;
            let token = operator_token(token_file.as_deref(), &state)?;
            airclass::service::run(
                airclass::service::Options {
                    channel,
                    state,
                    sinks,
                    shift,
                    frames,
                    public,
                    operator,
                    token,
                },
                stop_on_signals()?,
            )
        }
    }
}

/// Logs on stderr through `tracing`: text for people, or JSON lines for a collector.
/// `RUST_LOG` narrows or widens them (default: info).
fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}

/// The operator token: from a file, else $AIRCLASS_TOKEN, else generated once into
/// STATE/operator-token (mode 0600). Never taken from the command line, where `ps` shows it.
fn operator_token(file: Option<&Path>, state: &Path) -> Result<String, String> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("token file {}: {e}", p.display()))
    };
    let token = match (file, std::env::var("AIRCLASS_TOKEN")) {
        (Some(p), _) => read(p)?,
        (None, Ok(t)) => t.trim().to_string(),
        (None, Err(_)) => {
            let p = state.join("operator-token");
            if !p.exists() {
                use std::io::{Read, Write};
                use std::os::unix::fs::OpenOptionsExt;
                let mut bytes = [0u8; 24];
                std::fs::File::open("/dev/urandom")
                    .and_then(|mut f| f.read_exact(&mut bytes))
                    .map_err(|e| format!("cannot make a token: {e}"))?;
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                std::fs::create_dir_all(state).map_err(|e| format!("{}: {e}", state.display()))?;
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p)
                    .and_then(|mut f| f.write_all(hex.as_bytes()))
                    .map_err(|e| format!("{}: {e}", p.display()))?;
                tracing::info!("generated an operator token in {}", p.display());
            }
            read(&p)?
        }
    };
    if token.len() < 16 {
        return Err("the operator token must be at least 16 characters".into());
    }
    Ok(token)
}
