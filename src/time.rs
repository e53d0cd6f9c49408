//! Time inside airclass: integer frames, timecodes, durations and the broadcast day.
//!
//! A position is a count of frames from the start of a broadcast day, and that start is one UTC
//! instant. Local wall-clock time only appears at the edges (YAML in, feeds out) through an IANA
//! zone, so daylight-saving days are simply 23 or 25 hours long. No floating-point seconds.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A count of frames (a position or a length) at the channel's frame rate.
pub type Frames = i64;

/// A frame rate as an exact fraction (25/1 for PAL, 30000/1001 for NTSC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

/// `n / d` rounded up (towards positive infinity), for `d > 0`.
fn div_ceil(n: i128, d: i128) -> Frames {
    (n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0)) as Frames
}

impl FrameRate {
    pub const PAL: FrameRate = FrameRate { num: 25, den: 1 };

    /// Frames in `nanos` nanoseconds, rounded down: the frame that contains that instant.
    pub fn frames_floor(&self, nanos: i128) -> Frames {
        (nanos * self.num as i128).div_euclid(self.den as i128 * 1_000_000_000) as Frames
    }

    /// Frames in `nanos` nanoseconds, rounded up: the first frame starting at or after it.
    pub fn frames_ceil(&self, nanos: i128) -> Frames {
        div_ceil(nanos * self.num as i128, self.den as i128 * 1_000_000_000)
    }

    /// The frame whose start is nearest to `nanos`: where a picture of other media falls on the
    /// channel's timeline. A tie (a picture exactly between two frames, like every other field of
    /// 50i media deinterlaced to 50 pictures a second) goes to the earlier frame, so the picture
    /// that starts exactly on a frame is the one that frame shows.
    pub fn frames_nearest(&self, nanos: i128) -> Frames {
        let second = self.den as i128 * 1_000_000_000;
        div_ceil(2 * nanos * self.num as i128 - second, 2 * second)
    }

    /// The start of frame `f`, in nanoseconds from frame 0 (exact for 25 fps, rounded for NTSC).
    pub fn nanos(&self, f: Frames) -> i128 {
        (f as i128 * self.den as i128 * 1_000_000_000).div_euclid(self.num as i128)
    }

    /// Whole frames per second, for timecodes (30 for 30000/1001).
    pub fn timecode_base(&self) -> i64 {
        (self.num as i64 + self.den as i64 - 1) / self.den as i64
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

/// `HH:MM:SS:FF` for a frame count (non-drop-frame).
pub fn timecode(frames: Frames, rate: FrameRate) -> String {
    let base = rate.timecode_base();
    let (ff, secs) = (frames.rem_euclid(base), frames.div_euclid(base));
    format!(
        "{:02}:{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ff
    )
}

/// A length as operators write it in YAML: `20m`, `1h30m`, `19m42s`, `90s`, or a timecode
/// `HH:MM:SS:FF` when it must be frame-exact. Returns frames at `rate`.
pub fn parse_duration(text: &str, rate: FrameRate) -> Result<Frames, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "`{text}` is not a duration: write minutes and seconds like `20m`, `19m42s`, `1h30m`, or a timecode `00:19:42:05`"
        )
    };
    if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() != 4 {
            return Err(bad());
        }
        let n: Vec<i64> = parts
            .iter()
            .map(|p| p.parse::<i64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        if n.iter().any(|&v| v < 0) || n[1] >= 60 || n[2] >= 60 || n[3] >= rate.timecode_base() {
            return Err(bad());
        }
        let secs = n[0] * 3600 + n[1] * 60 + n[2];
        return Ok(rate.frames_floor(secs as i128 * 1_000_000_000) + n[3]);
    }
    let mut total_secs: i64 = 0;
    let mut num = String::new();
    let mut seen_unit = false;
    for c in t.chars() {
        match c {
            '0'..='9' => num.push(c),
            'h' | 'm' | 's' => {
                let v: i64 = num.parse().map_err(|_| bad())?;
                num.clear();
                seen_unit = true;
                total_secs += v * match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
            }
            _ => return Err(bad()),
        }
    }
    if !num.is_empty() || !seen_unit {
        return Err(bad());
    }
    Ok(rate.frames_floor(total_secs as i128 * 1_000_000_000))
}

/// A wall-clock time of day as written in YAML (`08:00` or `08:00:30`).
pub fn parse_time_of_day(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text.trim(), "%H:%M:%S"))
        .map_err(|_| format!("`{text}` is not a time of day: write it as HH:MM, e.g. `08:00`"))
}

/// One broadcast day of a channel: from the configured start time on `date` to the same local time
/// on the next date, as UTC instants. In a zone with daylight saving it may be 23 or 25 hours long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BroadcastDay {
    pub date: NaiveDate,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub rate: FrameRate,
}

impl BroadcastDay {
    pub fn new(date: NaiveDate, day_start: NaiveTime, tz: Tz, rate: FrameRate) -> BroadcastDay {
        let start = local_to_utc(date, day_start, tz);
        let end = local_to_utc(date.succ_opt().expect("date in range"), day_start, tz);
        BroadcastDay {
            date,
            start,
            end,
            rate,
        }
    }

    /// The broadcast day that contains the instant `t`.
    pub fn containing(
        t: DateTime<Utc>,
        day_start: NaiveTime,
        tz: Tz,
        rate: FrameRate,
    ) -> BroadcastDay {
        let local = t.with_timezone(&tz);
        let mut date = local.date_naive();
        if local.time() < day_start {
            date = date.pred_opt().expect("date in range");
        }
        let day = BroadcastDay::new(date, day_start, tz, rate);
        // Around a DST change the local-date guess can be one off: step to the day that holds t.
        if t < day.start {
            BroadcastDay::new(date.pred_opt().expect("date in range"), day_start, tz, rate)
        } else if t >= day.end {
            BroadcastDay::new(date.succ_opt().expect("date in range"), day_start, tz, rate)
        } else {
            day
        }
    }

    /// Length of the day in frames; frame `frames()` is frame 0 of the next day.
    pub fn frames(&self) -> Frames {
        self.rate
            .frames_floor(self.nanos_between(self.start, self.end))
    }

    /// The UTC instant at which frame `f` of this day starts.
    pub fn instant(&self, f: Frames) -> DateTime<Utc> {
        self.start + Duration::nanoseconds(self.rate.nanos(f) as i64)
    }

    /// The frame that is on air at instant `t` (may be outside 0..frames()).
    pub fn frame_at(&self, t: DateTime<Utc>) -> Frames {
        self.rate.frames_floor(self.nanos_between(self.start, t))
    }

    /// The first frame that starts at or after the local wall-clock `time` belonging to this
    /// broadcast day (a time earlier than the day's start means the early hours of the next date).
    pub fn frame_of_local(&self, time: NaiveTime, day_start: NaiveTime, tz: Tz) -> Frames {
        let date = if time >= day_start {
            self.date
        } else {
            self.date.succ_opt().expect("date in range")
        };
        self.rate
            .frames_ceil(self.nanos_between(self.start, local_to_utc(date, time, tz)))
    }

    fn nanos_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i128 {
        let d = b - a;
        d.num_seconds() as i128 * 1_000_000_000 + d.subsec_nanos() as i128
    }
}

/// A local date and time in `tz` as a UTC instant. A time skipped by a DST change maps to the
/// instant the clocks jumped to; an ambiguous one to its first occurrence.
pub fn local_to_utc(date: NaiveDate, time: NaiveTime, tz: Tz) -> DateTime<Utc> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        LocalResult::None => {
            // In a spring-forward gap: walk forward minute by minute to the first valid time.
            let mut n = naive;
            loop {
                n += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&n).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_fall_on_the_nearest_frame() {
        let pal = FrameRate::PAL;
        let ms = |m: i128| m * 1_000_000;
        // 50 pictures a second: the one between two frames goes to the earlier one.
        let at: Vec<_> = [0, 20, 40, 60, 80]
            .map(|m| pal.frames_nearest(ms(m)))
            .into();
        assert_eq!(at, [0, 0, 1, 1, 2]);
        // Timestamps a nanosecond off a frame start still land on it.
        assert_eq!(pal.frames_nearest(ms(40) - 1), 1);
        assert_eq!(pal.frames_nearest(ms(40) + 1), 1);
        assert_eq!(pal.frames_nearest(ms(20) + 1), 1);
        // 30 fps onto 25: 0, 33.3, 66.7, 100, 133.3 ms.
        let ntsc = FrameRate { num: 30, den: 1 };
        let at: Vec<_> = (0..6).map(|i| pal.frames_nearest(ntsc.nanos(i))).collect();
        assert_eq!(at, [0, 1, 2, 2, 3, 4]);
    }

    #[test]
    fn durations_parse_to_frames() {
        let r = FrameRate::PAL;
        assert_eq!(parse_duration("20m", r).unwrap(), 30_000);
        assert_eq!(parse_duration("1h30m", r).unwrap(), 135_000);
        assert_eq!(parse_duration("19m42s", r).unwrap(), (19 * 60 + 42) * 25);
        assert_eq!(
            parse_duration("00:19:42:05", r).unwrap(),
            (19 * 60 + 42) * 25 + 5
        );
        assert!(parse_duration("20", r).is_err());
        assert!(parse_duration("00:00:00:25", r).is_err());
        assert!(parse_duration("twenty", r).is_err());
    }

    #[test]
    fn timecodes_format() {
        assert_eq!(timecode(30_000 + 7, FrameRate::PAL), "00:20:00:07");
    }

    #[test]
    fn broadcast_day_in_shanghai_is_24h_of_frames() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let six = NaiveTime::from_hms_opt(6, 0, 0).unwrap();
        let d = BroadcastDay::new(
            NaiveDate::from_ymd_opt(2020, 2, 17).unwrap(),
            six,
            tz,
            FrameRate::PAL,
        );
        assert_eq!(d.start.to_rfc3339(), "2020-02-16T22:00:00+00:00");
        assert_eq!(d.frames(), 24 * 3600 * 25);
        let eight = NaiveTime::from_hms_opt(8, 0, 0).unwrap();
        assert_eq!(d.frame_of_local(eight, six, tz), 2 * 3600 * 25);
        let two_am = NaiveTime::from_hms_opt(2, 0, 0).unwrap();
        assert_eq!(d.frame_of_local(two_am, six, tz), 20 * 3600 * 25);
        assert_eq!(
            BroadcastDay::containing(d.instant(5), six, tz, FrameRate::PAL),
            d
        );
    }

    #[test]
    fn daylight_saving_days_are_23_and_25_hours() {
        let tz: Tz = "Europe/London".parse().unwrap();
        let six = NaiveTime::from_hms_opt(6, 0, 0).unwrap();
        let spring = BroadcastDay::new(
            NaiveDate::from_ymd_opt(2025, 3, 29).unwrap(),
            six,
            tz,
            FrameRate::PAL,
        );
        assert_eq!(spring.frames(), 23 * 3600 * 25);
        let autumn = BroadcastDay::new(
            NaiveDate::from_ymd_opt(2025, 10, 25).unwrap(),
            six,
            tz,
            FrameRate::PAL,
        );
        assert_eq!(autumn.frames(), 25 * 3600 * 25);
    }
}
