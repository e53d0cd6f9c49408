//! The operator's input: the channel configuration (`channel.yaml`) and weekly schedules
//! (`weeks/YYYY-Www.yaml`). Loading turns YAML into a checked model; every error names the file,
//! line and column and says what to do. No I/O happens here except reading those files.

mod positions;

pub use positions::{Pos, Positions};

use crate::policy::{ExamSlot, Policy, PolicyFile};
use crate::time::{BroadcastDay, FrameRate, Frames, parse_duration, parse_time_of_day};
use chrono::{Datelike, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

/// An error in an input file, printed as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub file: PathBuf,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.pos.line,
            self.pos.col,
            self.message
        )
    }
}

/// All the errors found in a channel directory (loading goes on past the first one).
#[derive(Debug, Clone, thiserror::Error)]
pub struct SourceErrors(pub Vec<SourceError>);

impl fmt::Display for SourceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The school stage of a grade; limits and weighting differ by stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    Primary,
    Junior,
    Senior,
}

/// A school grade, 1 to 12 (7-9 junior secondary, 10-12 senior secondary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Grade(pub u8);

impl Grade {
    pub fn stage(self) -> Stage {
        match self.0 {
            1..=6 => Stage::Primary,
            7..=9 => Stage::Junior,
            _ => Stage::Senior,
        }
    }

    /// The grade's name as Chinese viewers read it (一年级 ... 高三).
    pub fn label_zh(self) -> &'static str {
        const NAMES: [&str; 12] = [
            "一年级",
            "二年级",
            "三年级",
            "四年级",
            "五年级",
            "六年级",
            "初一",
            "初二",
            "初三",
            "高一",
            "高二",
            "高三",
        ];
        NAMES[(self.0 as usize).clamp(1, 12) - 1]
    }
}

/// The extra strands the notice asks to combine with curriculum lessons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strand {
    EpidemicPrevention,
    LifeSafety,
    MentalHealth,
    Patriotic,
    Classics,
    Art,
    Reading,
    Exercise,
}

impl Strand {
    pub fn label_zh(self) -> &'static str {
        match self {
            Strand::EpidemicPrevention => "疫情防控",
            Strand::LifeSafety => "生命与安全教育",
            Strand::MentalHealth => "心理健康",
            Strand::Patriotic => "爱国主义教育",
            Strand::Classics => "经典诵读",
            Strand::Art => "艺术欣赏",
            Strand::Reading => "阅读",
            Strand::Exercise => "体育锻炼",
        }
    }
}

/// Output settings for the transport stream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Service name carried in the SDT, as receivers display it.
    pub service_name: String,
    /// Provider name carried in the SDT.
    pub provider_name: String,
    #[serde(default = "default_program_number")]
    pub program_number: u16,
    #[serde(default = "default_video_kbps")]
    pub video_kbps: u32,
    #[serde(default = "default_audio_kbps")]
    pub audio_kbps: u32,
    /// Constant transport-stream rate; must leave room above video + audio for tables and PCR.
    #[serde(default = "default_mux_kbps")]
    pub mux_kbps: u32,
}

fn default_program_number() -> u16 {
    1
}
fn default_video_kbps() -> u32 {
    1800
}
fn default_audio_kbps() -> u32 {
    128
}
fn default_mux_kbps() -> u32 {
    2400
}

/// The channel configuration, checked.
#[derive(Debug, Clone)]
pub struct Channel {
    pub dir: PathBuf,
    /// XMLTV-style id with a dot, e.g. `cetv4.example.cn`.
    pub id: String,
    pub name: String,
    pub short_name: String,
    pub tz: Tz,
    pub rate: FrameRate,
    pub width: u32,
    pub height: u32,
    /// Display aspect ratio, e.g. (16, 9).
    pub aspect: (u32, u32),
    pub day_start: NaiveTime,
    /// Local windows in which lessons air; outside them the channel airs filler.
    pub air_hours: Vec<(NaiveTime, NaiveTime)>,
    /// Rest between lessons: its length and the eye-exercise interstitial it plays.
    pub break_frames: Frames,
    pub break_media: String,
    pub slate: String,
    pub filler: String,
    pub output: Output,
    /// Subjects lessons may have; empty allows any.
    pub subjects: Vec<String>,
    pub policy: Policy,
    pub lead: Lead,
    pub webhooks: Vec<String>,
}

impl Channel {
    /// A path from the schedule (relative to the channel directory) as a file path.
    pub fn media_path(&self, media: &str) -> PathBuf {
        let p = Path::new(media);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// Pixel aspect ratio that gives the display aspect at the channel's frame size (64/45 for
    /// 720x576 at 16:9).
    pub fn pixel_aspect(&self) -> (u32, u32) {
        let (n, d) = (self.aspect.0 * self.height, self.aspect.1 * self.width);
        let g = gcd(n, d);
        (n / g, d / g)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChannelFile {
    id: String,
    name: String,
    short_name: String,
    timezone: String,
    broadcast_day_start: String,
    video: VideoFile,
    air_hours: Vec<WindowFile>,
    #[serde(rename = "break")]
    break_: BreakFile,
    slate: String,
    filler: String,
    output: Output,
    #[serde(default)]
    subjects: Vec<String>,
    #[serde(default)]
    policy: PolicyFile,
    #[serde(default)]
    publication: PublicationFile,
}

/// When the timetable must be public, and who to tell when a version is published.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PublicationFile {
    /// `wednesday-before` (the week by the end of the Wednesday before it) or a number of days
    /// before each broadcast day, like `5d`.
    #[serde(default = "default_lead")]
    lead: String,
    /// URLs that get a POST with the version and its change list after each publish.
    #[serde(default)]
    webhooks: Vec<String>,
}

impl Default for PublicationFile {
    fn default() -> Self {
        PublicationFile {
            lead: default_lead(),
            webhooks: Vec::new(),
        }
    }
}

fn default_lead() -> String {
    "wednesday-before".into()
}

/// How far ahead of air the timetable must be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lead {
    /// The whole week by the end of the Wednesday before its Monday.
    WednesdayBefore,
    /// Each day this many days before it airs.
    Days(u32),
}

impl Lead {
    /// The latest local date-time by which `date` must have been published.
    pub fn deadline(self, date: NaiveDate, day_start: NaiveTime) -> chrono::NaiveDateTime {
        match self {
            Lead::WednesdayBefore => {
                let monday = date - chrono::Days::new(date.weekday().num_days_from_monday() as u64);
                (monday - chrono::Days::new(4)).and_time(NaiveTime::MIN)
            }
            Lead::Days(n) => (date - chrono::Days::new(n as u64)).and_time(day_start),
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct VideoFile {
    width: u32,
    height: u32,
    fps: String,
    aspect: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WindowFile {
    from: String,
    to: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BreakFile {
    duration: String,
    media: String,
}

/// One entry the operator wrote: a lesson (under a grade), an extra strand item, or a pinned item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    id: String,
    title: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    number: Option<u32>,
    #[serde(default)]
    grade: Option<u8>,
    #[serde(default)]
    strand: Option<Strand>,
    media: String,
    duration: String,
    #[serde(default)]
    at: Option<String>,
    /// SHA-256 of the media file (64 hex digits): `media fetch` verifies downloads against it.
    #[serde(default)]
    sha256: Option<String>,
}

#[derive(Deserialize, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DayFile {
    #[serde(default)]
    grades: BTreeMap<u8, Vec<EntryFile>>,
    #[serde(default)]
    extras: Vec<EntryFile>,
    #[serde(default)]
    pinned: Vec<EntryFile>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct WeekFile {
    week: String,
    start: NaiveDate,
    days: BTreeMap<WeekdayKey, DayFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum WeekdayKey {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl WeekdayKey {
    fn name(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self as usize]
    }
}

/// What an entry is, which decides how it is placed and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    Lesson,
    Strand,
    Programme,
}

/// A checked entry of a weekly schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub kind: EntryKind,
    pub title: String,
    pub subject: Option<String>,
    pub number: Option<u32>,
    pub grade: Option<Grade>,
    pub strand: Option<Strand>,
    pub media: String,
    /// The media's SHA-256 (lower-case hex), when the operator gives one.
    pub sha256: Option<String>,
    pub duration: Frames,
    /// Set for pinned entries: the local time they must start at.
    pub at: Option<NaiveTime>,
    /// Where the operator wrote it, and its duration.
    pub pos: Pos,
    pub duration_pos: Pos,
}

/// One day of a weekly schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayPlan {
    /// Each grade's lessons, in the order they are to be taught.
    pub lessons: BTreeMap<Grade, Vec<Entry>>,
    pub extras: Vec<Entry>,
    pub pinned: Vec<Entry>,
}

impl DayPlan {
    /// Every entry of the day: lessons, extras, pinned.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lessons
            .values()
            .flatten()
            .chain(&self.extras)
            .chain(&self.pinned)
    }
}

/// A checked weekly schedule.
#[derive(Debug, Clone)]
pub struct Week {
    pub file: PathBuf,
    /// ISO week name, e.g. `2020-W08`.
    pub name: String,
    /// The Monday the week starts on.
    pub start: NaiveDate,
    pub days: BTreeMap<NaiveDate, DayPlan>,
}

/// A channel and all its weekly schedules.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub channel: Channel,
    pub weeks: Vec<Week>,
}

impl Schedule {
    /// Load `DIR/channel.yaml` and every `DIR/weeks/*.yaml`, collecting every error found.
    pub fn load(dir: &Path) -> Result<Schedule, SourceErrors> {
        let channel = load_channel(dir).map_err(SourceErrors)?;
        let mut errors = Vec::new();
        let mut weeks = Vec::new();
        let weeks_dir = dir.join("weeks");
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&weeks_dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect(),
            Err(_) => Vec::new(),
        };
        files.sort();
        for file in files {
            match load_week(&file, &channel) {
                Ok(w) => weeks.push(w),
                Err(mut e) => errors.append(&mut e),
            }
        }
        check_weeks_disjoint(&weeks, &mut errors);
        check_checksums_agree(&weeks, &mut errors);
        if errors.is_empty() {
            Ok(Schedule { channel, weeks })
        } else {
            Err(SourceErrors(errors))
        }
    }

    /// The plan for a date, if some week covers it.
    pub fn day(&self, date: NaiveDate) -> Option<&DayPlan> {
        self.weeks.iter().find_map(|w| w.days.get(&date))
    }

    /// The SHA-256 an entry gives for `media`, if any (loading makes sure entries agree).
    pub fn sha256(&self, media: &str) -> Option<&str> {
        self.weeks
            .iter()
            .flat_map(|w| w.days.values())
            .flat_map(DayPlan::entries)
            .find(|e| e.media == media && e.sha256.is_some())
            .and_then(|e| e.sha256.as_deref())
    }
}

fn read_text(file: &Path) -> Result<String, SourceError> {
    let err = |message: String| SourceError {
        file: file.to_path_buf(),
        pos: Pos { line: 1, col: 1 },
        message,
    };
    let bytes = std::fs::read(file).map_err(|e| {
        err(format!(
            "cannot read the file ({e}); check that it exists and is readable"
        ))
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let text =
            String::from_utf8_lossy(&e.as_bytes()[..e.utf8_error().valid_up_to()]).into_owned();
        let line = text.matches('\n').count() + 1;
        let col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        SourceError {
            file: file.to_path_buf(),
            pos: Pos { line, col },
            message: "the file is not valid UTF-8; save it as UTF-8 (without a byte-order mark)"
                .into(),
        }
    })
}

/// Deserialize with serde_yaml, turning its error into a positioned one with advice.
fn parse<T: for<'de> Deserialize<'de>>(file: &Path, text: &str) -> Result<T, SourceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_yaml::from_str(text).map_err(|e| {
        let pos = e.location().map_or(Pos { line: 1, col: 1 }, |l| Pos {
            line: l.line(),
            col: l.column(),
        });
        let raw = e.to_string();
        // serde_yaml appends " at line L column C"; the position is already in front.
        let msg = raw.split(" at line ").next().unwrap_or(&raw).to_string();
        let advice = if msg.contains("unknown field") {
            "; check the spelling of the key (the JSON Schema in schema/ lists the allowed keys)"
        } else if msg.contains("missing field") {
            "; add the missing key"
        } else if msg.contains("unknown variant") {
            "; use one of the listed values"
        } else if msg.contains("invalid type") || msg.contains("invalid value") {
            "; correct the value"
        } else if msg.contains("duplicate") {
            "; remove or rename the duplicate key"
        } else {
            "; fix the YAML syntax here (check indentation, colons and quotes)"
        };
        SourceError {
            file: file.to_path_buf(),
            pos,
            message: format!("{msg}{advice}"),
        }
    })
}

fn load_channel(dir: &Path) -> Result<Channel, Vec<SourceError>> {
    let file = dir.join("channel.yaml");
    let text = read_text(&file).map_err(|e| vec![e])?;
    let raw: ChannelFile = parse(&file, &text).map_err(|e| vec![e])?;
    let pos = Positions::index(&text);
    let mut errors = Vec::new();
    let mut err = |path: &str, message: String| {
        errors.push(SourceError {
            file: file.clone(),
            pos: pos.at(path),
            message,
        })
    };

    let tz: Tz = raw.timezone.parse().unwrap_or_else(|_| {
        err(
            "timezone",
            format!(
                "unknown time zone `{}`; use an IANA zone name such as `Asia/Shanghai`",
                raw.timezone
            ),
        );
        chrono_tz::UTC
    });
    let rate = parse_rate(&raw.video.fps).unwrap_or_else(|m| {
        err("video.fps", m);
        FrameRate::PAL
    });
    let aspect = parse_aspect(&raw.video.aspect).unwrap_or_else(|m| {
        err("video.aspect", m);
        (16, 9)
    });
    if raw.video.width == 0
        || raw.video.height == 0
        || raw.video.width % 2 == 1
        || raw.video.height % 2 == 1
    {
        err(
            "video",
            "frame width and height must be even and non-zero, e.g. 720x576".into(),
        );
    }
    let mut time = |path: &str, t: &str| {
        parse_time_of_day(t).unwrap_or_else(|m| {
            err(path, m);
            NaiveTime::MIN
        })
    };
    let day_start = time("broadcast_day_start", &raw.broadcast_day_start);
    let mut air_hours = Vec::new();
    for (i, w) in raw.air_hours.iter().enumerate() {
        let from = time(&format!("air_hours[{i}].from"), &w.from);
        let to = time(&format!("air_hours[{i}].to"), &w.to);
        air_hours.push((from, to));
    }
    let break_frames = parse_duration(&raw.break_.duration, rate).unwrap_or_else(|m| {
        err("break.duration", m);
        0
    });
    // Windows are compared in broadcast-day order (a time before the day start is late night).
    let order = |t: NaiveTime| (t < day_start, t);
    for (i, &(from, to)) in air_hours.iter().enumerate() {
        if order(to) <= order(from) {
            err(
                &format!("air_hours[{i}].to"),
                "an air-hours window must end after it starts (within one broadcast day)".into(),
            );
        }
        if i > 0 && order(from) < order(air_hours[i - 1].1) {
            err(
                &format!("air_hours[{i}].from"),
                "air-hours windows must be in order and must not overlap".into(),
            );
        }
    }
    if !raw.id.contains('.')
        || raw
            .id
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
    {
        err("id", "the channel id must look like a domain name, e.g. `cetv4.example.cn` (XMLTV needs the dot)".into());
    }
    if raw.output.mux_kbps < raw.output.video_kbps + raw.output.audio_kbps + 200 {
        err("output.mux_kbps", "the transport-stream rate must exceed video + audio by at least 200 kbps for tables, PCR and packet overhead".into());
    }
    let policy = convert_policy(&raw.policy, rate, &mut |path, m| {
        errors.push(SourceError {
            file: file.clone(),
            pos: pos.at(path),
            message: m,
        })
    });
    let lead = match raw.publication.lead.as_str() {
        "wednesday-before" => Lead::WednesdayBefore,
        l => match l.strip_suffix('d').and_then(|n| n.parse().ok()) {
            Some(n) => Lead::Days(n),
            None => {
                errors.push(SourceError {
                    file: file.clone(),
                    pos: pos.at("publication.lead"),
                    message: format!("`{l}` is not a lead time; write `wednesday-before` or a number of days like `5d`"),
                });
                Lead::WednesdayBefore
            }
        },
    };
    for (i, u) in raw.publication.webhooks.iter().enumerate() {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            errors.push(SourceError {
                file: file.clone(),
                pos: pos.at(&format!("publication.webhooks[{i}]")),
                message: format!("`{u}` is not an http(s) URL"),
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Channel {
        dir: dir.to_path_buf(),
        id: raw.id,
        name: raw.name,
        short_name: raw.short_name,
        tz,
        rate,
        width: raw.video.width,
        height: raw.video.height,
        aspect,
        day_start,
        air_hours,
        break_frames,
        break_media: raw.break_.media,
        slate: raw.slate,
        filler: raw.filler,
        output: raw.output,
        subjects: raw.subjects,
        policy,
        lead,
        webhooks: raw.publication.webhooks,
    })
}

/// The policy in frames and times; `bad(path, message)` reports a problem at `policy.<path>`.
fn convert_policy(p: &PolicyFile, rate: FrameRate, bad: &mut dyn FnMut(&str, String)) -> Policy {
    let mut dur = |path: &str, text: &str| {
        parse_duration(text, rate).unwrap_or_else(|m| {
            bad(&format!("policy.{path}"), m);
            0
        })
    };
    let lesson_max = [
        dur("lesson_max.primary", &p.lesson_max.primary),
        dur("lesson_max.junior", &p.lesson_max.junior),
        dur("lesson_max.senior", &p.lesson_max.senior),
    ];
    let daily_max = [
        dur("daily_max.primary", &p.daily_max.primary),
        dur("daily_max.junior", &p.daily_max.junior),
        dur("daily_max.senior", &p.daily_max.senior),
    ];
    let rest_after_max = dur("rest.after_max", &p.rest.after_max);
    let rest_break_min = dur("rest.break_min", &p.rest.break_min);
    let media_tolerance = dur("media_tolerance", &p.media_tolerance);
    let mut time = |path: String, text: &str| {
        parse_time_of_day(text).unwrap_or_else(|m| {
            bad(&path, m);
            NaiveTime::MIN
        })
    };
    let exam_slots = p
        .exam_slots
        .iter()
        .enumerate()
        .map(|(i, s)| ExamSlot {
            grade: Grade(s.grade),
            from: time(format!("policy.exam_slots[{i}].from"), &s.from),
            to: time(format!("policy.exam_slots[{i}].to"), &s.to),
        })
        .collect::<Vec<_>>();
    let prime_time = p
        .prime_time
        .iter()
        .enumerate()
        .map(|(i, w)| {
            (
                time(format!("policy.prime_time[{i}].from"), &w.from),
                time(format!("policy.prime_time[{i}].to"), &w.to),
            )
        })
        .collect();
    for (i, s) in p.exam_slots.iter().enumerate() {
        if !(1..=12).contains(&s.grade) {
            bad(
                &format!("policy.exam_slots[{i}].grade"),
                format!("unknown grade {}; grades are 1 to 12", s.grade),
            );
        }
    }
    if p.primary_share_min_percent > 100 {
        bad(
            "policy.primary_share_min_percent",
            "a share is at most 100 (percent)".into(),
        );
    }
    if rest_break_min == 0 || rest_after_max == 0 {
        bad(
            "policy.rest",
            "rest.after_max and rest.break_min must both be more than zero".into(),
        );
    }
    Policy {
        primary_share_min_percent: p.primary_share_min_percent,
        exam_slots,
        lesson_max,
        daily_max,
        no_daily_cap: p.no_daily_cap.iter().map(|&g| Grade(g)).collect(),
        rest_after_max,
        rest_break_min,
        strands_min: p.strands.min_per_day,
        strand_kinds: p.strands.kinds.clone(),
        prime_time,
        reruns: p.reruns,
        media_tolerance,
    }
}

fn parse_rate(s: &str) -> Result<FrameRate, String> {
    let bad = || format!("`{s}` is not a frame rate; write `25`, `30` or `30000/1001`");
    let (n, d) = s.split_once('/').unwrap_or((s, "1"));
    let (num, den) = (
        n.trim().parse::<u32>().map_err(|_| bad())?,
        d.trim().parse::<u32>().map_err(|_| bad())?,
    );
    if num == 0 || den == 0 || num / den > 120 {
        return Err(bad());
    }
    Ok(FrameRate { num, den })
}

fn parse_aspect(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not an aspect ratio; write `16:9` or `4:3`");
    let (a, b) = s.split_once(':').ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse::<u32>().map_err(|_| bad())?,
        b.trim().parse::<u32>().map_err(|_| bad())?,
    );
    if a == 0 || b == 0 {
        return Err(bad());
    }
    Ok((a, b))
}

fn load_week(file: &Path, channel: &Channel) -> Result<Week, Vec<SourceError>> {
    let text = read_text(file).map_err(|e| vec![e])?;
    let raw: WeekFile = parse(file, &text).map_err(|e| vec![e])?;
    let pos = Positions::index(&text);
    let mut errors = Vec::new();
    let at = |path: &str, message: String| SourceError {
        file: file.to_path_buf(),
        pos: pos.at(path),
        message,
    };

    if raw.start.weekday() != Weekday::Mon {
        errors.push(at(
            "start",
            format!(
                "{} is a {}; a week starts on a Monday",
                raw.start,
                raw.start.weekday()
            ),
        ));
    }
    let iso = raw.start.iso_week();
    let expected = format!("{}-W{:02}", iso.year(), iso.week());
    if raw.week != expected {
        errors.push(at(
            "week",
            format!("the week `{}` does not match its start date {} (ISO week {expected}); correct one of them", raw.week, raw.start),
        ));
    }
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if stem != raw.week {
        errors.push(at(
            "week",
            format!("the file is named `{stem}` but holds week `{}`; name week files after their week, e.g. `{}.yaml`", raw.week, raw.week),
        ));
    }

    let mut seen: HashMap<String, String> = HashMap::new();
    let mut days = BTreeMap::new();
    for (key, day) in &raw.days {
        let date = raw.start + chrono::Days::new(*key as u64);
        let base = format!("days.{}", key.name());
        let mut plan = DayPlan::default();
        let mut sections: Vec<(String, &EntryFile, EntryKind, Option<u8>)> = Vec::new();
        for (g, list) in &day.grades {
            if !(1..=12).contains(g) {
                errors.push(SourceError {
                    file: file.to_path_buf(),
                    pos: pos.key_at(&format!("{base}.grades.{g}")),
                    message: format!("unknown grade {g}; grades are 1 to 12 (7-9 junior secondary, 10-12 senior secondary)"),
                });
                continue;
            }
            for (i, e) in list.iter().enumerate() {
                sections.push((
                    format!("{base}.grades.{g}[{i}]"),
                    e,
                    EntryKind::Lesson,
                    Some(*g),
                ));
            }
        }
        for (i, e) in day.extras.iter().enumerate() {
            sections.push((format!("{base}.extras[{i}]"), e, EntryKind::Strand, e.grade));
        }
        for (i, e) in day.pinned.iter().enumerate() {
            sections.push((
                format!("{base}.pinned[{i}]"),
                e,
                EntryKind::Programme,
                e.grade,
            ));
        }
        for (path, e, kind, grade) in sections {
            if let Some(entry) =
                check_entry(&path, e, kind, grade, channel, &mut seen, &mut |f, m| {
                    errors.push(at(&format!("{path}.{f}"), m))
                })
            {
                let entry = Entry {
                    pos: pos.at(&path),
                    duration_pos: pos.at(&format!("{path}.duration")),
                    ..entry
                };
                match (kind, entry.grade) {
                    (EntryKind::Lesson, Some(g)) => plan.lessons.entry(g).or_default().push(entry),
                    (EntryKind::Strand, _) => plan.extras.push(entry),
                    _ => plan.pinned.push(entry),
                }
            }
        }
        check_pinned(date, &base, &plan, channel, &mut |path, m| {
            errors.push(at(path, m))
        });
        days.insert(date, plan);
    }
    if errors.is_empty() {
        Ok(Week {
            file: file.to_path_buf(),
            name: raw.week,
            start: raw.start,
            days,
        })
    } else {
        errors.sort_by_key(|e| (e.pos.line, e.pos.col));
        Err(errors)
    }
}

/// Check one entry's fields; `bad(field, message)` reports a problem at that field.
fn check_entry(
    path: &str,
    e: &EntryFile,
    section: EntryKind,
    grade: Option<u8>,
    channel: &Channel,
    seen: &mut HashMap<String, String>,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Entry> {
    if e.id.is_empty()
        || !e
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bad(
            "id",
            format!(
                "the id `{}` must be lower-case ASCII letters, digits and `-` (it becomes part of public URLs and calendar UIDs)",
                e.id
            ),
        );
    } else if let Some(first) = seen.insert(e.id.clone(), path.to_string()) {
        bad(
            "id",
            format!(
                "the id `{}` is already used at {first}; every entry of a week needs its own id",
                e.id
            ),
        );
    }
    if section == EntryKind::Lesson && e.grade.is_some_and(|g| Some(g) != grade) {
        bad("grade", "a lesson listed under a grade takes that grade; remove `grade` here or move the lesson".into());
    }
    let grade = match grade {
        Some(g) if (1..=12).contains(&g) => Some(Grade(g)),
        Some(g) => {
            bad(
                "grade",
                format!(
                    "unknown grade {g}; grades are 1 to 12 (7-9 junior secondary, 10-12 senior secondary)"
                ),
            );
            None
        }
        None => None,
    };
    if e.title.trim().is_empty() {
        bad(
            "title",
            "the title is empty; give the title viewers will see in the timetable".into(),
        );
    }
    if section == EntryKind::Strand && e.strand.is_none() {
        bad(
            "strand",
            "an extra needs a `strand` (e.g. epidemic-prevention, life-safety, mental-health)"
                .into(),
        );
    }
    if section == EntryKind::Lesson && e.subject.is_none() {
        bad(
            "subject",
            "a lesson needs a `subject` (e.g. 语文, 数学)".into(),
        );
    }
    if let Some(subject) = &e.subject
        && !channel.subjects.is_empty()
        && !channel.subjects.contains(subject)
    {
        bad(
            "subject",
            format!(
                "unknown subject `{subject}`; use one of {} (the `subjects` list in channel.yaml)",
                channel.subjects.join(", ")
            ),
        );
    }
    let duration = match parse_duration(&e.duration, channel.rate) {
        Ok(0) => {
            bad(
                "duration",
                "the duration is zero; give the length of the media".into(),
            );
            None
        }
        Ok(f) => Some(f),
        Err(m) => {
            bad("duration", m);
            None
        }
    };
    if let (Some(d), Some(g)) = (duration, grade)
        && (section == EntryKind::Lesson || e.subject.is_some())
        && d > channel.policy.lesson_max(g)
    {
        let limit = channel.policy.lesson_max(g);
        bad(
            "duration",
            format!(
                "this {} lesson is {} long, over the {:?} limit of {}; split it or shorten it",
                g.label_zh(),
                crate::time::timecode(d, channel.rate),
                g.stage(),
                crate::time::timecode(limit, channel.rate)
            ),
        );
    }
    let sha256 = e.sha256.as_ref().map(|h| h.to_ascii_lowercase());
    if let Some(h) = &sha256
        && !(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        bad(
            "sha256",
            format!("`{h}` is not a SHA-256; give the 64 hex digits `sha256sum FILE` prints"),
        );
    }
    let at = match (&e.at, section) {
        (Some(t), EntryKind::Programme) => parse_time_of_day(t).map_err(|m| bad("at", m)).ok(),
        (None, EntryKind::Programme) => {
            bad(
                "at",
                "a pinned entry needs `at`, the local time it starts (HH:MM)".into(),
            );
            None
        }
        (Some(_), _) => {
            bad("at", "only entries under `pinned` have a fixed time; move this entry to `pinned` or remove `at`".into());
            None
        }
        (None, _) => None,
    };
    // A pinned entry for a grade with a subject is a lesson at a fixed time; with a strand, a strand.
    let kind = match section {
        EntryKind::Programme if e.strand.is_some() => EntryKind::Strand,
        EntryKind::Programme if grade.is_some() && e.subject.is_some() => EntryKind::Lesson,
        k => k,
    };
    Some(Entry {
        id: e.id.clone(),
        kind,
        title: e.title.clone(),
        subject: e.subject.clone(),
        number: e.number,
        grade,
        strand: e.strand,
        media: e.media.clone(),
        sha256,
        duration: duration?,
        at: if section == EntryKind::Programme {
            Some(at?)
        } else {
            None
        },
        pos: Pos::default(),
        duration_pos: Pos::default(),
    })
}

/// Pinned entries must lie inside the air hours and must not overlap one another.
fn check_pinned(
    date: NaiveDate,
    base: &str,
    plan: &DayPlan,
    channel: &Channel,
    bad: &mut dyn FnMut(&str, String),
) {
    let day = BroadcastDay::new(date, channel.day_start, channel.tz, channel.rate);
    let window_frames: Vec<(Frames, Frames)> = channel
        .air_hours
        .iter()
        .map(|&(f, t)| {
            (
                day.frame_of_local(f, channel.day_start, channel.tz),
                day.frame_of_local(t, channel.day_start, channel.tz),
            )
        })
        .collect();
    let mut spans: Vec<(Frames, Frames, usize)> = Vec::new();
    for (i, e) in plan.pinned.iter().enumerate() {
        let Some(at) = e.at else { continue };
        let start = day.frame_of_local(at, channel.day_start, channel.tz);
        let end = start + e.duration;
        if !window_frames.iter().any(|&(f, t)| start >= f && end <= t) {
            bad(
                &format!("{base}.pinned[{i}].at"),
                format!(
                    "`{}` at {} for {} lies outside the channel's air hours ({}); move it inside them or change air_hours in channel.yaml",
                    e.id,
                    at.format("%H:%M"),
                    crate::time::timecode(e.duration, channel.rate),
                    channel
                        .air_hours
                        .iter()
                        .map(|(f, t)| format!("{}-{}", f.format("%H:%M"), t.format("%H:%M")))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        spans.push((start, end, i));
    }
    spans.sort();
    for w in spans.windows(2) {
        let ((_, a_end, a), (b_start, _, b)) = (w[0], w[1]);
        if b_start < a_end {
            bad(
                &format!("{base}.pinned[{b}].at"),
                format!(
                    "`{}` starts before `{}` (pinned at {}) ends; move one of them so the two do not overlap",
                    plan.pinned[b].id,
                    plan.pinned[a].id,
                    plan.pinned[a]
                        .at
                        .map(|t| t.format("%H:%M").to_string())
                        .unwrap_or_default()
                ),
            );
        }
    }
}

/// JSON Schemas of the two input files, for editors with a YAML language server (committed
/// under `schema/`; a test keeps them equal to these).
pub fn json_schema(which: &str) -> Option<serde_json::Value> {
    let schema = match which {
        "channel" => schemars::schema_for!(ChannelFile),
        "week" => schemars::schema_for!(WeekFile),
        _ => return None,
    };
    Some(serde_json::to_value(schema).expect("schema is JSON"))
}

/// Entries that name the same media must not give it different checksums.
fn check_checksums_agree(weeks: &[Week], errors: &mut Vec<SourceError>) {
    let mut first: HashMap<&str, (&str, &Path, Pos)> = HashMap::new();
    for w in weeks {
        for e in w.days.values().flat_map(DayPlan::entries) {
            let Some(sha) = e.sha256.as_deref() else {
                continue;
            };
            match first.get(e.media.as_str()) {
                Some((other, file, pos)) if *other != sha => errors.push(SourceError {
                    file: w.file.clone(),
                    pos: e.pos,
                    message: format!(
                        "`{}` has sha256 {sha} here but {other} at {}:{}:{}; one file has one checksum",
                        e.media,
                        file.display(),
                        pos.line,
                        pos.col
                    ),
                }),
                Some(_) => {}
                None => {
                    first.insert(&e.media, (sha, &w.file, e.pos));
                }
            }
        }
    }
}

/// Two files must not describe the same week.
fn check_weeks_disjoint(weeks: &[Week], errors: &mut Vec<SourceError>) {
    for (i, w) in weeks.iter().enumerate() {
        if let Some(first) = weeks[..i].iter().find(|o| o.start == w.start) {
            errors.push(SourceError {
                file: w.file.clone(),
                pos: Pos { line: 1, col: 1 },
                message: format!(
                    "week {} is also described by {}; keep one file per week",
                    w.name,
                    first.file.display()
                ),
            });
        }
    }
}
