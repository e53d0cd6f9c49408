//! Probing media ahead of air with GStreamer's Discoverer: what a file holds and how long it is.

use crate::schedule::{Schedule, SourceError};
use crate::time::timecode;
use gstreamer as gst;
use gstreamer_pbutils as pbutils;
use std::path::Path;

/// What a media file holds, as far as the engine cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// Length in nanoseconds, when the container says.
    pub nanos: Option<u64>,
    /// The first video stream (the one the engine plays).
    pub video: Option<Video>,
    /// The first audio stream.
    pub audio: Option<Audio>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Video {
    pub width: u32,
    pub height: u32,
    /// Frames per second as a fraction.
    pub fps: (i32, i32),
    /// Pixel aspect ratio.
    pub par: (i32, i32),
    pub interlaced: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audio {
    pub rate: u32,
    pub channels: u32,
}

/// Whether a local file can be played at all: it exists, opens for reading and is not empty.
/// `NotFound` tells a missing file from an unreadable one.
pub fn readable(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the file is empty",
        ));
    }
    Ok(())
}

/// The `file://` URI GStreamer opens for a local path.
pub fn file_uri(path: &Path) -> Result<String, String> {
    let abs = std::path::absolute(path).map_err(|e| e.to_string())?;
    gst::glib::filename_to_uri(&abs, None)
        .map(|u| u.to_string())
        .map_err(|e| e.to_string())
}

/// Probe a local file with the Discoverer (at most `PROBE_TIMEOUT`). An error means GStreamer
/// cannot make sense of it: no known container, garbage, or a file it cannot read.
pub fn probe(path: &Path) -> Result<Info, String> {
    gst::init().map_err(|e| e.to_string())?;
    let uri = file_uri(path)?;
    let d = pbutils::Discoverer::new(PROBE_TIMEOUT).map_err(|e| e.to_string())?;
    let info = d.discover_uri(&uri).map_err(|e| e.to_string())?;
    let frac = |f: gst::Fraction| (f.numer(), f.denom());
    Ok(Info {
        nanos: info.duration().map(|t| t.nseconds()),
        video: info.video_streams().first().map(|v| Video {
            width: v.width(),
            height: v.height(),
            fps: frac(v.framerate()),
            par: frac(v.par()),
            interlaced: v.is_interlaced(),
        }),
        audio: info.audio_streams().first().map(|a| Audio {
            rate: a.sample_rate(),
            channels: a.channels(),
        }),
    })
}

const PROBE_TIMEOUT: gst::ClockTime = gst::ClockTime::from_seconds(10);

/// The length of a media file in nanoseconds.
pub fn duration(path: &Path) -> Result<u64, String> {
    probe(path)?
        .nanos
        .ok_or_else(|| "the length cannot be determined".into())
}

/// Compare every scheduled file's probed length with the duration the week states. Returns the
/// mismatches as positioned errors and the files that could not be probed as warnings.
pub fn check_durations(sched: &Schedule) -> (Vec<SourceError>, Vec<String>) {
    let ch = &sched.channel;
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for w in &sched.weeks {
        for plan in w.days.values() {
            for e in plan.entries() {
                if e.media.contains("://") || !seen.insert((e.media.clone(), e.duration)) {
                    continue;
                }
                let path = ch.media_path(&e.media);
                match duration(&path) {
                    Ok(ns) => {
                        let got = ch.rate.frames_floor(ns as i128);
                        if (got - e.duration).abs() > ch.policy.media_tolerance {
                            errors.push(SourceError {
                                file: w.file.clone(),
                                pos: e.duration_pos,
                                message: format!(
                                    "`{}` is {} long but the schedule says {} (tolerance {}); correct the duration or the file",
                                    e.media,
                                    timecode(got, ch.rate),
                                    timecode(e.duration, ch.rate),
                                    timecode(ch.policy.media_tolerance, ch.rate)
                                ),
                            });
                        }
                    }
                    Err(err) => warnings.push(format!(
                        "{}:{}:{}: `{}` cannot be probed: {err}",
                        w.file.display(),
                        e.pos.line,
                        e.pos.col,
                        e.media
                    )),
                }
            }
        }
    }
    (errors, warnings)
}
