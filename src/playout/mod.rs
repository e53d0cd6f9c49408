//! The playout engine. It owns the output timeline: it counts output frames, walks the rundowns
//! frame by frame (across broadcast days), takes each frame from the item's decoder (or the
//! slate when there is none), stamps it and pushes it to the one output pipeline. Rendering to a
//! file and airing in real time run the same loop; only the pacing differs.

pub mod asrun;
pub mod control;
mod decoder;
pub mod output;

use crate::rundown::{self, Item, Rundown};
use crate::schedule::{Channel, Schedule};
use crate::time::{BroadcastDay, Frames};
use asrun::{AsRun, Event};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
pub use control::{Action, Control};
use decoder::{Decoder, Ended, samples_before};
use gstreamer as gst;
pub use output::{Pace, Sink};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What to play and how.
pub struct Run<'a> {
    /// The schedule to play, operator actions and the stop flag; the engine reports its status
    /// here.
    pub control: &'a Control,
    /// First on-air instant (schedule time); snapped to the frame that contains it.
    pub start: DateTime<Utc>,
    /// Number of frames to play; None plays until `stop` is set.
    pub frames: Option<Frames>,
    pub sinks: Vec<Sink>,
    pub pace: Pace,
    /// Schedule time minus wall-clock time (non-zero when airing a past week "as if now").
    pub shift: ChronoDuration,
    pub as_run_dir: &'a Path,
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
    /// The day's frame at which the item's own frame 0 aired: its planned start, or earlier when
    /// the operator skipped to it.
    origin: Frames,
    ended_logged: bool,
    silence_logged: bool,
}

impl OnAir {
    /// True while an item the operator skipped to is on air ahead of its planned start.
    fn early(&self) -> bool {
        self.origin < self.item.start
    }
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
    /// take (render, which then keeps the render stall limit).
    fn wait(self, deadline: Option<Instant>) -> Result<Decoder, String> {
        let limit = deadline.map_or(decoder::OPEN_TIMEOUT + decoder::STALL, |d| {
            d.saturating_duration_since(Instant::now())
        });
        let opened = self
            .rx
            .recv_timeout(limit)
            .unwrap_or_else(|_| Err("the media did not open in time".into()));
        match deadline {
            Some(_) => opened,
            None => opened.map(Decoder::rendering),
        }
    }
}

pub fn run(r: Run) -> Result<Summary, String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    let control = r.control;
    let mut sched = control.schedule();
    let mut generation = control.generation();
    let ch = sched.channel.clone();
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
    let mut rundown = rundown::build(&sched, day.date);
    warn_rundown(&rundown);
    (r.on_day)(&rundown);
    // A reloaded schedule's rundown, waiting for the on-air item to end.
    let mut pending: Option<Rundown> = None;

    let out = output::Output::new(&ch, &r.sinks, r.pace)?;
    let slate = slate_frame(&sched);
    let mut asrun = AsRun::new(r.as_run_dir, &ch.id);
    out.start(
        &ch,
        live.then(|| t0_wall.timestamp_nanos_opt().expect("in range") as u64),
    )?;
    control.update(|s| s.running = true);

    let mut summary = Summary::default();
    let mut on_air: Option<OnAir> = None;
    let mut preparing: Option<Opening> = None;
    let mut held = false;
    // The last unscheduled day an alert was raised for.
    let mut alerted = None;
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
               fault: Option<&'static str>,
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
            fault,
            detail,
        });
    };
    let fault = |asrun: &mut AsRun,
                 day: &BroadcastDay,
                 item: &Item,
                 f: Frames,
                 n: Frames,
                 kind: &'static str,
                 detail: String| {
        control.fault(control::Fault {
            at: day.instant(f).with_timezone(&tz).to_rfc3339(),
            item: item.id.clone(),
            kind,
            detail: detail.clone(),
        });
        log(
            asrun,
            Event::Fault,
            day,
            item,
            f,
            n,
            item.start,
            Some(kind),
            Some(detail),
        );
    };

    while r.frames.is_none_or(|total| n < total) && !control.stop.load(Ordering::SeqCst) {
        // In real time, how long this frame's media may be waited for: until half the lead is
        // used up, so the output never runs dry. A render waits as long as the watchdog allows.
        let deadline = live.then(|| {
            let due = t0_wall + ChronoDuration::nanoseconds(rate.nanos(n) as i64)
                - ChronoDuration::from_std(LEAD / 2).expect("small");
            Instant::now() + (due - Utc::now()).to_std().unwrap_or_default()
        });
        if control.generation() != generation {
            // A new schedule: today's rundown from it takes over at the next item boundary, and
            // the item there is prepared again in case it changed.
            generation = control.generation();
            sched = control.schedule();
            let next = rundown::build(&sched, rundown.day.date);
            pending = (next.items != rundown.items).then(|| {
                warn_rundown(&next);
                (r.on_day)(&next);
                next
            });
            if let (Some(p), Some(a)) = (&pending, &on_air) {
                preparing = prepare(&sched, p, a.item.end());
            }
        }
        if f >= rundown.day.frames() {
            let next = rundown.day.date.succ_opt().expect("date");
            rundown = rundown::build(&sched, next);
            pending = None;
            warn_rundown(&rundown);
            (r.on_day)(&rundown);
            f = 0;
        }
        if pending.is_some() && on_air.as_ref().is_none_or(|a| f >= a.item.end()) {
            rundown = pending.take().expect("pending");
        }
        let Some(mut index) = rundown.index_at(f) else {
            return Err(format!(
                "rundown of {} has a hole at frame {f}",
                rundown.day.date
            ));
        };
        let mut origin = None;
        for (action, who, answer) in control.take() {
            let by = match &action {
                Action::Note(_) => who.clone(),
                a => format!("{} by {who}", a.name()),
            };
            let reply = match action {
                Action::Skip => match &on_air {
                    Some(a) if a.day == rundown.day && a.index + 1 < rundown.items.len() => {
                        index = a.index + 1;
                        origin = Some(f);
                        Ok(format!("skipped to {}", rundown.items[index].id))
                    }
                    _ => Err("nothing follows the item on air today".to_string()),
                },
                Action::Hold => {
                    held = true;
                    Ok("holding on slate".to_string())
                }
                Action::Resume => {
                    held = false;
                    Ok("resumed".to_string())
                }
                Action::Note(text) => Ok(text),
            };
            if let Some(a) = &on_air {
                let detail = match &reply {
                    Ok(text) => format!("{by}: {text}"),
                    Err(e) => format!("{by} refused: {e}"),
                };
                log(
                    &mut asrun,
                    Event::Operator,
                    &a.day,
                    &a.item,
                    f,
                    n,
                    f,
                    None,
                    Some(detail),
                );
            }
            answer(reply);
        }
        // An item change: end the old one, put the new one on air, start preparing the next.
        // An item skipped to stays on air through the rest of the one it replaced.
        let change = origin.is_some()
            || on_air.as_ref().is_none_or(|a| {
                a.day != rundown.day || (a.index != index && !(a.early() && index < a.index))
            });
        if change {
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
                    fault(
                        &mut asrun,
                        &old.day,
                        &old.item,
                        old_f,
                        n,
                        "overrun",
                        format!(
                            "the media runs {} past its slot; cut on the planned frame",
                            crate::time::timecode(over, rate)
                        ),
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
                    origin.map(|_| "skipped by the operator".to_string()),
                );
            }
            let item = rundown.items[index].clone();
            let origin = origin.unwrap_or(item.start);
            let offset = f - origin;
            let key = (rundown.day.date, item.id.clone(), offset);
            let opening = match preparing.take() {
                Some(p) if p.key == key => p,
                _ => Opening::start(rundown.day.date, &item, offset, &ch),
            };
            let opened = opening.wait(deadline);
            let (ev, detail) = if offset > 0 {
                (Event::Join, Some(format!("joined {offset} frames in")))
            } else if origin < item.start {
                (
                    Event::Start,
                    Some(format!("{} frames early, skipped to", item.start - origin)),
                )
            } else {
                (Event::Start, None)
            };
            log(
                &mut asrun,
                ev,
                &rundown.day,
                &item,
                f,
                n,
                item.start,
                None,
                detail,
            );
            summary.items += 1;
            let decoder = match opened {
                Ok(d) => Some(d),
                Err(e) => {
                    summary.faults += 1;
                    fault(
                        &mut asrun,
                        &rundown.day,
                        &item,
                        f,
                        n,
                        "unavailable",
                        format!("slate: {}: {e}", item.media),
                    );
                    None
                }
            };
            // A day nobody scheduled airs filler: one alert for it, at its first item on air.
            if rundown.unscheduled && alerted != Some(rundown.day.date) {
                alerted = Some(rundown.day.date);
                summary.faults += 1;
                let why = rundown.warnings.join("; ");
                fault(&mut asrun, &rundown.day, &item, f, n, "no-schedule", why);
            }
            preparing = prepare(&sched, &rundown, item.end());
            on_air = Some(OnAir {
                day: rundown.day,
                index,
                item,
                decoder,
                origin,
                ended_logged: false,
                silence_logged: false,
            });
            control.update(|s| s.items_aired += 1);
            report(control, on_air.as_ref(), tz, held, f, n, 0);
        }
        let a = on_air.as_mut().expect("on air");
        let k = f - a.origin;
        let (pts, dur) = (
            rate.nanos(n) as u64,
            (rate.nanos(n + 1) - rate.nanos(n)) as u64,
        );
        let (picture, sound) = match a.decoder.as_mut() {
            Some(d) => {
                let v = d.video(k, deadline, |b| stamp_mut(b, pts, dur));
                let s = d.audio(k, deadline);
                (v, s)
            }
            None => (None, vec![0u8; decoder::frame_sound_bytes(k, rate)]),
        };
        let mut faults = Vec::new();
        let ended = a.decoder.as_ref().and_then(|d| d.ended().cloned());
        if let Some(why) = ended.filter(|_| picture.is_none() && !a.ended_logged) {
            a.ended_logged = true;
            let limit = a
                .decoder
                .as_ref()
                .map_or(decoder::STALL, Decoder::stall_limit)
                .as_millis();
            let (kind, detail) = match &why {
                Ended::Eos => (
                    "ended-early",
                    "media ended before its slot; slate to the slot's end".to_string(),
                ),
                Ended::NoVideo => (
                    "no-video",
                    "the media has no pictures; slate with its sound".to_string(),
                ),
                Ended::Error(e) => (
                    "decoder-error",
                    format!("decoder error: {e}; slate to the slot's end"),
                ),
                Ended::Stalled => (
                    "stalled",
                    format!("decoder stalled: no data for {limit} ms; slate to the slot's end"),
                ),
                Ended::Slow => (
                    "slow",
                    format!(
                        "the media arrives slower than real time ({limit} ms behind); slate to the slot's end"
                    ),
                ),
            };
            if why != Ended::Eos || a.item.end() - f > rate.timecode_base() {
                faults.push((kind, detail));
            }
        }
        if let Some(d) = a.decoder.as_mut() {
            // Sound missing for a second while the pictures go on.
            if let Some(s) = d.silent_from().filter(|&s| {
                picture.is_some() && !a.silence_logged && k - s >= rate.timecode_base()
            }) {
                a.silence_logged = true;
                faults.push((
                    "no-audio",
                    if d.has_audio() {
                        format!("the media's sound ends at item frame {s}; silence from there")
                    } else {
                        "the media has no sound; silence".to_string()
                    },
                ));
            }
            while let Some((ms, track)) = d.take_hole(k) {
                faults.push((
                    "damaged",
                    format!("damaged media: {ms} ms of {track} missing; filled"),
                ));
            }
        }
        for (kind, detail) in faults {
            summary.faults += 1;
            let item = a.item.clone();
            fault(&mut asrun, &rundown.day, &item, f, n, kind, detail);
        }
        let (picture, sound) = if held {
            (None, vec![0u8; sound.len()])
        } else {
            (picture, sound)
        };
        let vbuf = picture.unwrap_or_else(|| stamp(slate.clone(), pts, dur));
        let abuf = {
            let s0 = samples_before(n, rate);
            let mut b = gst::Buffer::from_mut_slice(sound);
            let pts = (s0 as u128 * 1_000_000_000 / output::AUDIO_RATE as u128) as u64;
            let end = (samples_before(n + 1, rate) as u128 * 1_000_000_000
                / output::AUDIO_RATE as u128) as u64;
            stamp_mut(b.get_mut().expect("new buffer"), pts, end - pts);
            b
        };
        let mut drift = 0;
        if live {
            let due = t0_wall + ChronoDuration::nanoseconds(rate.nanos(n) as i64)
                - ChronoDuration::from_std(LEAD).expect("small");
            let wait = due - Utc::now();
            match wait.to_std() {
                Ok(w) => std::thread::sleep(w),
                // Behind the clock: how many frames late this one is.
                Err(_) => drift = -rate.frames_floor(-wait.num_nanoseconds().unwrap_or(0) as i128),
            }
        }
        if out.video.push_buffer(vbuf).is_err() || out.audio.push_buffer(abuf).is_err() {
            result = Err(out
                .error()
                .unwrap_or_else(|| "the output pipeline stopped accepting data".into()));
            break;
        }
        if n % rate.timecode_base() == 0 {
            if let Some(e) = out.error() {
                result = Err(format!("output error: {e}"));
                break;
            }
            report(control, on_air.as_ref(), tz, held, f, n, drift);
            control.update(|s| s.count_bytes(out.bytes()));
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
            None,
            Some("engine stopped".into()).filter(|_| f < a.item.end()),
        );
    }
    summary.frames = n;
    control.update(|s| {
        s.running = false;
        s.on_air = None;
    });
    let finished = out.finish();
    result.and(finished).map(|_| summary)
}

/// Refresh the status the engine reports (at item changes and once a second).
fn report(
    control: &Control,
    a: Option<&OnAir>,
    tz: chrono_tz::Tz,
    held: bool,
    f: Frames,
    n: Frames,
    drift: Frames,
) {
    let on_air = a.map(|a| control::OnAir {
        date: a.day.date.to_string(),
        id: a.item.id.clone(),
        kind: kind_name(&a.item),
        title: a.item.title.clone(),
        media: a.item.media.clone(),
        start_frame: a.item.start,
        end_frame: a.item.end(),
        start: a.day.instant(a.item.start).with_timezone(&tz).to_rfc3339(),
        end: a.day.instant(a.item.end()).with_timezone(&tz).to_rfc3339(),
        offset: f - a.origin,
        early: a.early(),
        slate: a.decoder.is_none() || a.ended_logged,
    });
    control.update(|s| {
        s.on_air = on_air;
        s.held = held;
        s.output_frames = n;
        s.drift_frames = drift;
    });
}

/// Open the decoder for the item that starts at frame `at` of `rd` (or the next day's first
/// when `at` is the day's end) in the background.
fn prepare(sched: &Schedule, rd: &Rundown, at: Frames) -> Option<Opening> {
    let (date, item) = match rd.index_at(at) {
        Some(i) => (rd.day.date, rd.items[i].clone()),
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
        tracing::warn!("{w}");
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
        && let Some(b) = d.video(0, None, |_| {})
    {
        return b;
    }
    tracing::warn!(
        "slate media {} cannot be read; airing a plain dark frame as slate",
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
