//! Sample media made here, no downloads: a title card and a tone per scheduled file, in the
//! mixed formats a broadcaster receives (see the channel's `demo-media.yaml`).
//!
//! A full week is about 25 hours of media; encoding all of it would take most of an hour on two
//! cores. A title card does not change, so one closed GOP is encoded and then repeated with new
//! timestamps for the whole length, and likewise a block of AAC frames holding a whole number of
//! tone cycles. That is a valid stream at the stated frame rate and length, made at muxing speed.

use crate::schedule::{Channel, Schedule};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The odd formats some demo files get, from `demo-media.yaml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    #[serde(default)]
    pub formats: BTreeMap<String, Format>,
    /// Files left out on purpose, so the sample shows slate for missing media.
    #[serde(default)]
    pub missing: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Format {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<String>,
    /// `none` for a file without an audio track.
    pub audio: Option<String>,
    pub audio_rate: Option<u32>,
    pub audio_channels: Option<u32>,
}

/// One file to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub path: PathBuf,
    pub media: String,
    /// Lines of the title card.
    pub lines: Vec<String>,
    /// Length in nanoseconds.
    pub nanos: u64,
    pub width: u32,
    pub height: u32,
    pub fps: (u32, u32),
    pub audio: Option<(u32, u32)>,
    /// Card colour, 0xRRGGBB.
    pub color: u32,
    pub tone_hz: f64,
}

impl DemoConfig {
    pub fn load(dir: &Path) -> Result<DemoConfig, String> {
        let file = dir.join("demo-media.yaml");
        match std::fs::read_to_string(&file) {
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", file.display())),
            Err(_) => Ok(DemoConfig::default()),
        }
    }
}

/// Every file the schedule refers to, with what its card says, in air order of `dates` first
/// (so the media near the playhead is made first), then the rest of the schedule.
pub fn specs(sched: &Schedule, cfg: &DemoConfig, first: &[chrono::NaiveDate]) -> Vec<Spec> {
    let ch = &sched.channel;
    let secs = |frames: i64| ch.rate.nanos(frames) as u64;
    let mut out: Vec<Spec> = Vec::new();
    let mut add = |media: &str, lines: Vec<String>, nanos: u64, tone: f64| {
        if media.contains("://")
            || cfg.missing.contains(media)
            || out.iter().any(|s| s.media == media)
        {
            return;
        }
        out.push(spec(ch, cfg, media, lines, nanos, tone));
    };
    add(
        &ch.slate,
        vec![
            ch.short_name.clone(),
            "信号暂时中断 请稍候".into(),
            "Programme will resume shortly".into(),
        ],
        10_000_000_000,
        0.0,
    );
    add(
        &ch.filler,
        vec![
            ch.short_name.clone(),
            "停课不停学 同上一堂课".into(),
            ch.name.clone(),
        ],
        60_000_000_000,
        660.0,
    );
    add(
        &ch.break_media,
        vec![
            "眼保健操".into(),
            "闭上眼睛 跟着节拍 做一做".into(),
            "课间休息".into(),
        ],
        secs(ch.break_frames),
        523.25,
    );
    let mut dates: Vec<chrono::NaiveDate> = first.to_vec();
    for w in &sched.weeks {
        dates.extend(w.days.keys().filter(|d| !first.contains(d)));
    }
    for date in dates {
        for item in crate::rundown::build(sched, date).items {
            let head = match (item.grade, &item.subject, item.strand) {
                (Some(g), Some(s), _) => format!("{} · {}", g.label_zh(), s),
                (_, _, Some(st)) => st.label_zh().to_string(),
                _ => ch.short_name.clone(),
            };
            let foot = format!(
                "{}{} · {}",
                item.number
                    .map(|n| format!("第{n}课 · "))
                    .unwrap_or_default(),
                date.format("%Y年%m月%d日"),
                ch.short_name
            );
            let tone = 330.0 + 55.0 * item.grade.map_or(0, |g| g.0) as f64;
            add(
                &item.media,
                vec![head, item.title.clone(), foot],
                secs(item.duration),
                tone,
            );
        }
    }
    out
}

fn spec(
    ch: &Channel,
    cfg: &DemoConfig,
    media: &str,
    lines: Vec<String>,
    nanos: u64,
    tone_hz: f64,
) -> Spec {
    let f = cfg.formats.get(media).cloned().unwrap_or_default();
    let fps = f
        .fps
        .as_deref()
        .and_then(|s| {
            s.split_once('/')
                .map_or(s.parse().ok().map(|n| (n, 1)), |(a, b)| {
                    Some((a.parse().ok()?, b.parse().ok()?))
                })
        })
        .unwrap_or((ch.rate.num, ch.rate.den));
    let audio = if f.audio.as_deref() == Some("none") {
        None
    } else {
        Some((
            f.audio_rate.unwrap_or(48_000),
            f.audio_channels.unwrap_or(2),
        ))
    };
    // A colour per file from its name, so every cut is a visible change of picture.
    let h = media.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let hue = (h % 360) as f64;
    let color = hsv(hue, 0.55, 0.55);
    Spec {
        path: ch.media_path(media),
        media: media.to_string(),
        lines,
        nanos,
        width: f.width.unwrap_or(ch.width),
        height: f.height.unwrap_or(ch.height),
        fps,
        audio,
        color: if tone_hz == 0.0 { 0x303030 } else { color },
        tone_hz,
    }
}

fn hsv(h: f64, s: f64, v: f64) -> u32 {
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let to = |f: f64| (((f + v - c) * 255.0).round() as u32).min(255);
    (to(r) << 16) | (to(g) << 8) | to(b)
}

/// Make one file (written to a temporary name and renamed, so a file that exists is complete).
pub fn make(s: &Spec) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    // Ten seconds per GOP: the repeated I-frame is most of the file, and seeking stays cheap.
    let gop_len = (s.fps.0 / s.fps.1).max(1) as usize * 10;
    let (vcaps, gop) = encode_gop(s, gop_len)?;
    let audio = match s.audio {
        Some((rate, channels)) => Some(encode_tone_block(s.tone_hz, rate, channels)?),
        None => None,
    };
    let tmp = s.path.with_extension(format!(
        "partial.{}",
        s.path.extension().and_then(|e| e.to_str()).unwrap_or("mp4")
    ));
    if let Some(dir) = s.path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let ts = s.path.extension().is_some_and(|e| e == "ts");
    let mux = if ts { "mpegtsmux" } else { "mp4mux" };
    let mut desc = format!(
        "appsrc name=v format=time block=true max-bytes=4000000 ! h264parse ! {mux} name=m ! filesink location=\"{}\" ",
        tmp.display()
    );
    if audio.is_some() {
        desc.push_str("appsrc name=a format=time block=true max-bytes=1000000 ! aacparse ! m. ");
    }
    let pipeline = gst::parse::launch(&desc)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .expect("pipeline");
    let src = |n: &str| {
        pipeline
            .by_name(n)
            .map(|e| e.downcast::<gst_app::AppSrc>().expect("appsrc"))
    };
    let v = src("v").expect("video appsrc");
    v.set_caps(Some(&vcaps));
    let a = src("a");
    if let (Some(a), Some((caps, _, _))) = (&a, &audio) {
        a.set_caps(Some(caps));
    }
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;

    let total_ns = s.nanos;
    let frame_ns = |i: u64| i * 1_000_000_000 * s.fps.1 as u64 / s.fps.0 as u64;
    let frames = total_ns.div_ceil(1_000_000_000) * s.fps.0 as u64 / s.fps.1 as u64;
    let frames = (0..=frames).take_while(|&i| frame_ns(i) < total_ns).count() as u64;
    let (mut vi, mut ai) = (0u64, 0u64);
    loop {
        let vpts = (vi < frames).then(|| frame_ns(vi));
        let apts = audio.as_ref().and_then(|(_, _, rate)| {
            let p = ai * 1024 * 1_000_000_000 / *rate as u64;
            (p < total_ns).then_some(p)
        });
        match (vpts, apts) {
            (Some(vp), ap) if ap.is_none_or(|ap| vp <= ap) => {
                let mut b = gop[vi as usize % gop.len()].copy();
                let bm = b.get_mut().expect("copy");
                bm.set_pts(gst::ClockTime::from_nseconds(vp));
                bm.set_dts(gst::ClockTime::from_nseconds(vp));
                bm.set_duration(gst::ClockTime::from_nseconds(frame_ns(vi + 1) - vp));
                v.push_buffer(b).map_err(|e| format!("video: {e:?}"))?;
                vi += 1;
            }
            (_, Some(ap)) => {
                let (_, block, rate) = audio.as_ref().expect("audio");
                let mut b = block[ai as usize % block.len()].copy();
                let bm = b.get_mut().expect("copy");
                bm.set_pts(gst::ClockTime::from_nseconds(ap));
                bm.set_dts(gst::ClockTime::from_nseconds(ap));
                bm.set_duration(gst::ClockTime::from_nseconds(
                    1024 * 1_000_000_000 / *rate as u64,
                ));
                a.as_ref()
                    .expect("audio appsrc")
                    .push_buffer(b)
                    .map_err(|e| format!("audio: {e:?}"))?;
                ai += 1;
            }
            _ => break,
        }
    }
    let _ = v.end_of_stream();
    if let Some(a) = &a {
        let _ = a.end_of_stream();
    }
    let res = wait_eos(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    res?;
    std::fs::rename(&tmp, &s.path).map_err(|e| format!("{}: {e}", s.path.display()))
}

fn wait_eos(p: &gst::Pipeline) -> Result<(), String> {
    let bus = p.bus().expect("bus");
    match bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(600),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    ) {
        Some(m) => match m.view() {
            gst::MessageView::Error(e) => Err(format!("{} ({:?})", e.error(), e.debug())),
            _ => Ok(()),
        },
        None => Err("timed out".into()),
    }
}

/// Run a pipeline ending in `appsink name=out` to its end and collect what it produced.
fn collect(desc: &str) -> Result<(gst::Caps, Vec<gst::Buffer>), String> {
    let p = gst::parse::launch(desc)
        .map_err(|e| e.to_string())?
        .downcast::<gst::Pipeline>()
        .expect("pipeline");
    let sink = p
        .by_name("out")
        .expect("out")
        .downcast::<gst_app::AppSink>()
        .expect("appsink");
    p.set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let mut bufs = Vec::new();
    let mut caps = None;
    while let Ok(s) = sink.pull_sample() {
        caps = caps.or_else(|| s.caps_owned());
        if let Some(b) = s.buffer_owned() {
            bufs.push(b);
        }
    }
    let res = wait_eos(&p);
    let _ = p.set_state(gst::State::Null);
    res?;
    Ok((caps.ok_or("no output")?, bufs))
}

/// One closed GOP of the title card.
fn encode_gop(s: &Spec, gop: usize) -> Result<(gst::Caps, Vec<gst::Buffer>), String> {
    let markup: Vec<String> = s
        .lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let l = gst::glib::markup_escape_text(l);
            if i == 1 {
                format!("<span size=\"150%\" weight=\"bold\">{l}</span>")
            } else {
                l.to_string()
            }
        })
        .collect();
    let font = (s.height as f64 / 22.0).round() as u32;
    let par = if s.width == 720 && s.height == 576 {
        "64/45"
    } else {
        "1/1"
    };
    let desc = format!(
        "videotestsrc pattern=solid-color foreground-color={color} num-buffers={gop} \
         ! video/x-raw,format=I420,width={w},height={h},framerate={n}/{d},pixel-aspect-ratio={par} \
         ! textoverlay text=\"{text}\" font-desc=\"WenQuanYi Zen Hei {font}\" valignment=center halignment=center line-alignment=center \
             wrap-mode=wordchar shaded-background=false \
         ! x264enc speed-preset=ultrafast key-int-max={gop} bframes=0 pass=quant quantizer=26 option-string=scenecut=0 \
         ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! appsink name=out sync=false",
        color = 0xff00_0000u32 | s.color,
        w = s.width,
        h = s.height,
        n = s.fps.0,
        d = s.fps.1,
        text = markup.join("\n").replace('"', "\\\""),
    );
    let (caps, bufs) = collect(&desc)?;
    if bufs.len() != gop {
        return Err(format!("expected {gop} encoded frames, got {}", bufs.len()));
    }
    Ok((caps, bufs))
}

/// A block of AAC frames holding a whole number of tone cycles, taken after the encoder has
/// settled, so repeating it gives a continuous tone.
fn encode_tone_block(
    hz: f64,
    rate: u32,
    channels: u32,
) -> Result<(gst::Caps, Vec<gst::Buffer>, u32), String> {
    let frames = if rate.is_multiple_of(48_000) {
        375
    } else {
        441
    };
    let block_samples = frames as f64 * 1024.0;
    let cycles = (hz * block_samples / rate as f64).round();
    let freq = cycles * rate as f64 / block_samples;
    let desc = format!(
        "audiotestsrc freq={freq} volume=0.08 samplesperbuffer=1024 num-buffers={n} \
         ! audio/x-raw,format=S16LE,rate={rate},channels={channels} ! audioconvert ! avenc_aac bitrate=48000 ! aacparse \
         ! audio/mpeg,stream-format=raw ! appsink name=out sync=false",
        n = frames * 3,
    );
    let (caps, bufs) = collect(&desc)?;
    if bufs.len() < frames * 2 {
        return Err(format!(
            "expected {} AAC frames, got {}",
            frames * 2,
            bufs.len()
        ));
    }
    Ok((caps, bufs[frames..frames * 2].to_vec(), rate))
}

/// Make every missing file, `jobs` at a time; returns how many were made.
pub fn make_all(
    specs: &[Spec],
    jobs: usize,
    progress: &(dyn Fn(&Spec, Result<(), String>) + Sync),
) -> usize {
    let todo: Vec<&Spec> = specs.iter().filter(|s| !s.path.exists()).collect();
    super::parallel(&todo, jobs, |s| progress(s, make(s)));
    todo.len()
}
