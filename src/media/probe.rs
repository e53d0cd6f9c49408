//! Probing media ahead of air with GStreamer's Discoverer: what a file holds and how long it is.

use crate::schedule::{Schedule, SourceError};
use crate::time::timecode;
use gstreamer as gst;
use gstreamer_pbutils as pbutils;
use std::path::Path;

/// The length of a media file in nanoseconds.
pub fn duration(path: &Path) -> Result<u64, String> {
    gst::init().map_err(|e| e.to_string())?;
    let abs = std::path::absolute(path).map_err(|e| e.to_string())?;
    let uri = gst::glib::filename_to_uri(&abs, None).map_err(|e| e.to_string())?;
    let d =
        pbutils::Discoverer::new(gst::ClockTime::from_seconds(10)).map_err(|e| e.to_string())?;
    let info = d.discover_uri(&uri).map_err(|e| e.to_string())?;
    info.duration()
        .map(|t| t.nseconds())
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
            let entries = plan
                .lessons
                .values()
                .flatten()
                .chain(&plan.extras)
                .chain(&plan.pinned);
            for e in entries {
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
