//! The playout engine. It owns the output timeline: it counts output frames, walks the rundowns
//! frame by frame (across broadcast days), takes each frame from the item's decoder (or the
//! slate when there is none), stamps it and pushes it to the one output pipeline. Rendering to a
//! file and airing in real time run the same loop; only the pacing differs.

pub mod asrun;
mod decoder;
pub mod output;

use crate::rundown::{self, Item, Rundown};
use crate::schedule::{Channel, Schedule};
use crate::time::{BroadcastDay, Frames};
use asrun::{AsRun, Event};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use decoder::{Decoder, Ended, samples_before};
use gstreamer as gst;
pub use output::{Pace, Sink};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What to play and how.
pub struct Run<'a> {
    pub schedule: &'a Schedule,
    /// First on-air instant (schedule time); snapped to the frame that contains it.
    pub start: DateTime<Utc>,
    /// Number of frames to play; None plays until `stop` is set.
    pub frames: Option<Frames>,
    pub sinks: Vec<Sink>,
    pub pace: Pace,
    /// Schedule time minus wall-clock time (non-zero when airing a past week "as if now").
    pub shift: ChronoDuration,
    pub as_run_dir: &'a Path,
    pub stop: Arc<AtomicBool>,
    /// Called with each broadcast day's rundown as the engine takes it up (to check it against
    /// the published timetable, for instance).
    pub on_day: &'a dyn Fn(&Rundown),
}

/// What the run did, for the caller to report.
#[derive(Debug, Default)]
pub struct Summary {
    pub frames: Frames,
    pub items: usize,
    pub faults: usize,
}

/// Real time: how far ahead of the wall clock the engine prepares frames, and the delay from
/// starting to the first frame on air (time to open the first item and fill the encoder).
const LEAD: Duration = Duration::from_millis(1000);
const STARTUP: Duration = Duration::from_millis(1500);

/// The item on air and where it is.
struct OnAir {
    day: BroadcastDay,
    index: usize,
    item: Item,
    decoder: Option<Decoder>,
    ended_logged: bool,
    silence_logged: bool,
}

/// A decoder being opened in a background thread: for the item after the current one, or for
/// the one going on air. A source that takes long to answer never holds up the output; the
/// thread ends when the open succeeds or times out (the decoder is then dropped there).
struct Opening {
    key: (chrono::NaiveDate, String, Frames),
    rx: mpsc::Receiver<Result<Decoder, String>>,
}

impl Opening {
    fn start(date: chrono::NaiveDate, item: &Item, offset: Frames, ch: &Channel) -> Opening {
        let (tx, rx) = mpsc::channel();
        let (media, looping, ch) = (item.media.clone(), item.kind.loops(), ch.clone());
        std::thread::spawn(move || {
            let _ = tx.send(Decoder::open(&media, &ch, offset, looping));
        });
        Opening {
            key: (date, item.id.clone(), offset),
            rx,
        }
    }

    /// The decoder, waiting for it until `deadline` (real time) or as long as an open may
    /// take (render).
    fn wait(self, deadline: Option<Instant>) -> Result<Decoder, String> {
        let limit = deadline.map_or(decoder::OPEN_TIMEOUT + decoder::STALL, |d| {
            d.saturating_duration_since(Instant::now())
        });
        self.rx
            .recv_timeout(limit)
            .unwrap_or_else(|_| Err("the media did not open in time".into()))
    }
}

pub fn run(r: Run) -> Result<Summary, String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    let sched = r.schedule;
    let ch = &sched.channel;
    let rate = ch.rate;
    let live = r.pace == Pace::RealTime;

    // Where the output starts: in real time a little after now, so the first item can open.
    let first_instant = if live {
        r.start + ChronoDuration::from_std(STARTUP).expect("small")
    } else {
        r.start
    };
    let mut day = BroadcastDay::containing(first_instant, ch.day_start, ch.tz, rate);
    let mut f = day.frame_at(first_instant);
    if live && day.instant(f) < first_instant {
        f += 1;
    }
    if f >= day.frames() {
        day = BroadcastDay::new(
            day.date.succ_opt().expect("date"),
            ch.day_start,
            ch.tz,
            rate,
        );
        f = 0;
    }
    let t0_wall = day.instant(f) - r.shift;
    let mut rundown = rundown::build(sched, day.date);
    warn_rundown(&rundown);
    (r.on_day)(&rundown);

    let out = output::Output::new(ch, &r.sinks, r.pace)?;
    let slate = slate_frame(sched);
    let mut asrun = AsRun::new(r.as_run_dir, &ch.id);
    out.start(
        ch,
        live.then(|| t0_wall.timestamp_nanos_opt().expect("in range") as u64),
    )?;

    let mut summary = Summary::default();
    let mut on_air: Option<OnAir> = None;
    let mut preparing: Option<Opening> = None;
    let mut n: Frames = 0;
    let mut result = Ok(());
    let tz = ch.tz;
    let log = |asrun: &mut AsRun,
               ev: Event,
               day: &BroadcastDay,
               item: &Item,
               f: Frames,
               n: Frames,
               planned: Frames,
               detail: Option<String>| {
        asrun.log(&asrun::Entry {
            event: ev,
            logged: Utc::now().to_rfc3339(),
            air_time: day.instant(f).with_timezone(&tz).to_rfc3339(),
            date: day.date.to_string(),
            item: &item.id,
            kind: kind_name(item),
            title: &item.title,
            media: &item.media,
            planned_frame: planned,
            actual_frame: f,
            output_frame: n,
            detail,
        });
    };

    while r.frames.is_none_or(|total| n < total) && !r.stop.load(Ordering::SeqCst) {
        // In real time, how long this frame's media may be waited for: until half the lead is
        // used up, so the output never runs dry. A render waits as long as the watchdog allows.
        let deadline = live.then(|| {
            let due = t0_wall + ChronoDuration::nanoseconds(rate.nanos(n) as i64)
                - ChronoDuration::from_std(LEAD / 2).expect("small");
            Instant::now() + (due - Utc::now()).to_std().unwrap_or_default()
        });
        if f >= rundown.day.frames() {
            let next = rundown.day.date.succ_opt().expect("date");
            rundown = rundown::build(sched, next);
            warn_rundown(&rundown);
            (r.on_day)(&rundown);
            f = 0;
        }
        let Some(index) = rundown.index_at(f) else {
            return Err(format!(
                "rundown of {} has a hole at frame {f}",
                rundown.day.date
            ));
        };
        // An item change: end the old one, put the new one on air, start preparing the next.
        if on_air
            .as_ref()
            .is_none_or(|a| a.day != rundown.day || a.index != index)
        {
            if let Some(old) = on_air.take() {
                // f is 0 of a new day when the old item ended with its day.
                let old_f = if old.day == rundown.day {
                    f
                } else {
                    old.day.frames()
                };
                let overrun = old
                    .decoder
                    .as_ref()
                    .filter(|d| d.ended().is_none() && !old.item.kind.loops())
                    .and_then(|d| d.length())
                    .map(|len| len - old.item.duration)
                    .filter(|&over| over > rate.timecode_base());
                if let Some(over) = overrun {
                    summary.faults += 1;
                    log(
                        &mut asrun,
                        Event::Fault,
                        &old.day,
                        &old.item,
                        old_f,
                        n,
                        old.item.end(),
                        Some(format!(
                            "the media runs {} past its slot; cut on the planned frame",
                            crate::time::timecode(over, rate)
                        )),
                    );
                }
                // Tearing a pipeline down may wait on its source; never on air.
                if let Some(d) = old.decoder {
                    std::thread::spawn(move || drop(d));
                }
                log(
                    &mut asrun,
                    Event::End,
                    &old.day,
                    &old.item,
                    old_f,
                    n,
                    old.item.end(),
                    None,
                );
            }
            let item = rundown.items[index].clone();
            let offset = f - item.start;
            let key = (rundown.day.date, item.id.clone(), offset);
            let opening = match preparing.take() {
                Some(p) if p.key == key => p,
                _ => Opening::start(rundown.day.date, &item, offset, ch),
            };
            let opened = opening.wait(deadline);
            let ev = if offset > 0 {
                Event::Join
            } else {
                Event::Start
            };
            log(
                &mut asrun,
                ev,
                &rundown.day,
                &item,
                f,
                n,
                item.start,
                (offset > 0).then(|| format!("joined {offset} frames in")),
            );
            summary.items += 1;
            let decoder = match opened {
                Ok(d) => Some(d),
                Err(e) => {
                    summary.faults += 1;
                    log(
                        &mut asrun,
                        Event::Fault,
                        &rundown.day,
                        &item,
                        f,
                        n,
                        item.start,
                        Some(format!("slate: {}: {e}", item.media)),
                    );
                    None
                }
            };
            preparing = prepare_next(sched, &rundown, index);
            on_air = Some(OnAir {
                day: rundown.day,
                index,
                item,
                decoder,
                ended_logged: false,
                silence_logged: false,
            });
        }
        let a = on_air.as_mut().expect("on air");
        let k = f - a.item.start;
        let (picture, sound) = match a.decoder.as_mut() {
            Some(d) => {
                let v = d.video(k, deadline);
                let s = d.audio(k, deadline);
                (v, s)
            }
            None => (
                None,
                vec![0u8; (samples_before(k + 1, rate) - samples_before(k, rate)) as usize * 4],
            ),
        };
        let mut faults = Vec::new();
        let ended = a.decoder.as_ref().and_then(|d| d.ended().cloned());
        if let Some(why) = ended.filter(|_| picture.is_none() && !a.ended_logged) {
            a.ended_logged = true;
            let detail = match &why {
                Ended::Eos => "media ended before its slot; slate to the slot's end".to_string(),
                Ended::NoVideo => "the media has no pictures; slate with its sound".to_string(),
                Ended::Error(e) => format!("decoder error: {e}; slate to the slot's end"),
                Ended::Stalled => format!(
                    "decoder stalled: no data for {} ms; slate to the slot's end",
                    decoder::STALL.as_millis()
                ),
                Ended::Slow => format!(
                    "the media arrives slower than real time ({} ms behind); slate to the slot's end",
                    decoder::STALL.as_millis()
                ),
            };
            if why != Ended::Eos || a.item.duration - k > rate.timecode_base() {
                faults.push(detail);
            }
        }
        if let Some(d) = a.decoder.as_mut() {
            // Sound missing for a second while the pictures go on.
            if let Some(s) = d.silent_from().filter(|&s| {
                picture.is_some() && !a.silence_logged && k - s >= rate.timecode_base()
            }) {
                a.silence_logged = true;
                faults.push(if d.has_audio() {
                    format!("the media's sound ends at item frame {s}; silence from there")
                } else {
                    "the media has no sound; silence".to_string()
                });
            }
            while let Some((ms, track)) = d.take_hole(k) {
                faults.push(format!("damaged media: {ms} ms of {track} missing; filled"));
            }
        }
        for detail in faults {
            summary.faults += 1;
            log(
                &mut asrun,
                Event::Fault,
                &rundown.day,
                &a.item.clone(),
                f,
                n,
                a.item.start,
                Some(detail),
            );
        }
        let vbuf = stamp(
            picture.unwrap_or_else(|| slate.clone()),
            rate.nanos(n) as u64,
            (rate.nanos(n + 1) - rate.nanos(n)) as u64,
        );
        let abuf = {
            let s0 = samples_before(n, rate);
            let mut b = gst::Buffer::from_mut_slice(sound);
            let pts = (s0 as u128 * 1_000_000_000 / output::AUDIO_RATE as u128) as u64;
            let end = (samples_before(n + 1, rate) as u128 * 1_000_000_000
                / output::AUDIO_RATE as u128) as u64;
            stamp_mut(b.get_mut().expect("new buffer"), pts, end - pts);
            b
        };
        if live {
            let due = t0_wall + ChronoDuration::nanoseconds(rate.nanos(n) as i64)
                - ChronoDuration::from_std(LEAD).expect("small");
            let wait = due - Utc::now();
            if let Ok(w) = wait.to_std() {
                std::thread::sleep(w);
            }
        }
        if out.video.push_buffer(vbuf).is_err() || out.audio.push_buffer(abuf).is_err() {
            result = Err(out
                .error()
                .unwrap_or_else(|| "the output pipeline stopped accepting data".into()));
            break;
        }
        if n % 250 == 0
            && let Some(e) = out.error()
        {
            result = Err(format!("output error: {e}"));
            break;
        }
        n += 1;
        f += 1;
    }
    if let Some(a) = on_air.take() {
        log(
            &mut asrun,
            Event::End,
            &rundown.day,
            &a.item,
            f,
            n,
            a.item.end(),
            Some("engine stopped".into()).filter(|_| f < a.item.end()),
        );
    }
    summary.frames = n;
    let finished = out.finish();
    result.and(finished).map(|_| summary)
}

/// Open the decoder for the item after `index` (possibly the next day's first) in the background.
fn prepare_next(sched: &Schedule, rd: &Rundown, index: usize) -> Option<Opening> {
    let (date, item) = match rd.items.get(index + 1) {
        Some(it) => (rd.day.date, it.clone()),
        None => {
            let next = rd.day.date.succ_opt()?;
            (next, rundown::build(sched, next).items.first()?.clone())
        }
    };
    Some(Opening::start(date, &item, 0, &sched.channel))
}

fn kind_name(item: &Item) -> &'static str {
    match item.kind {
        rundown::ItemKind::Lesson => "lesson",
        rundown::ItemKind::Strand => "strand",
        rundown::ItemKind::Programme => "programme",
        rundown::ItemKind::Break => "break",
        rundown::ItemKind::Filler => "filler",
    }
}

fn warn_rundown(r: &Rundown) {
    for w in &r.warnings {
        eprintln!("WARNING: {w}");
    }
}

fn stamp(mut b: gst::Buffer, pts: u64, dur: u64) -> gst::Buffer {
    stamp_mut(b.make_mut(), pts, dur);
    b
}

fn stamp_mut(b: &mut gst::BufferRef, pts: u64, dur: u64) {
    b.set_pts(gst::ClockTime::from_nseconds(pts));
    b.set_dts(gst::ClockTime::from_nseconds(pts));
    b.set_duration(gst::ClockTime::from_nseconds(dur));
}

/// The picture aired when an item's media cannot be played: the first frame of the channel's
/// slate media, or a plain dark frame if even that cannot be read.
fn slate_frame(sched: &Schedule) -> gst::Buffer {
    let ch = &sched.channel;
    if let Ok(mut d) = Decoder::open(&ch.slate, ch, 0, false)
        && let Some(b) = d.video(0, None)
    {
        return b;
    }
    eprintln!(
        "WARNING: slate media {} cannot be read; airing a plain dark frame as slate",
        ch.slate
    );
    let (y, uv) = (
        (ch.width * ch.height) as usize,
        (ch.width * ch.height / 4) as usize,
    );
    let mut data = vec![32u8; y];
    data.extend(std::iter::repeat_n(128u8, 2 * uv));
    gst::Buffer::from_mut_slice(data)
}
