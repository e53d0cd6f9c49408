//! One short-lived decode pipeline per item: any file GStreamer reads, conformed to the channel
//! format (size with letter/pillarbox by display aspect, frame rate, 48 kHz stereo) and handed
//! to the engine frame by frame. Timestamps from the file only place frames and samples; the
//! engine owns the output timeline.
//!
//! It also watches its media for the faults the engine must report: no data for a while
//! (stall), data slower than real time, holes in the decoded pictures or sound (damaged data
//! the decoders concealed), missing tracks.

use super::output::{AUDIO_CHANNELS, AUDIO_FORMAT, AUDIO_RATE, AUDIO_SAMPLE_BYTES};
use crate::media::cache::Source;
use crate::schedule::Channel;
use crate::time::{FrameRate, Frames};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a decoder may produce nothing, or lag behind real time, before it is given up: on
/// air, and when rendering. A render has no deadline to keep, and on a busy machine a healthy
/// decoder can be starved of the CPU for a second; giving it up would put slate in the output.
pub const STALL: Duration = Duration::from_secs(1);
pub const RENDER_STALL: Duration = Duration::from_secs(5);
/// How long opening (preroll and seek) may take; also the I/O timeout of network sources.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// A gap in the decoded pictures or sound longer than this is reported as damaged media.
const HOLE: u64 = 100_000_000;
const BYTES_PER_SAMPLE: usize = AUDIO_SAMPLE_BYTES * AUDIO_CHANNELS as usize;
/// Decoded audio kept ahead of the pictures: topped up to two seconds once below one.
const AUDIO_AHEAD_BYTES: usize = 2 * AUDIO_RATE as usize * BYTES_PER_SAMPLE;
/// Decoded pictures taken from the appsink at a time (its capacity). Taking them in batches,
/// and topping the sound up in batches, wakes the decoder's threads once per batch instead of
/// once per frame: a wake-up of a thread on another core is what the engine spent most on.
const VIDEO_BATCH: usize = 8;

/// Why a decoder stopped giving pictures before its item ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The media's pictures ended: normal for media shorter than its slot.
    Eos,
    /// The media has no pictures at all (audio only).
    NoVideo,
    /// The decoder reported an error mid-item (a truncated or corrupt file).
    Error(String),
    /// No data for longer than the stall limit.
    Stalled,
    /// Data comes, but the media fell behind real time by more than the stall limit.
    Slow,
}

/// Decoded pictures or sound missing in the middle of the media: (running time where the
/// gap starts, its length, which track), all in nanoseconds.
type Holes = Arc<Mutex<Vec<(u64, u64, &'static str)>>>;

pub struct Decoder {
    pipeline: gst::Pipeline,
    video: gst_app::AppSink,
    audio: gst_app::AppSink,
    has_video: Arc<AtomicBool>,
    has_audio: Arc<AtomicBool>,
    rate: FrameRate,
    looping: bool,
    /// Item-local frame at the decoder's running time 0: the join offset, or where a loop restarted.
    first: Frames,
    /// Decoded pictures taken from the appsink and not yet aired, in order.
    ready: VecDeque<(Frames, gst::Buffer)>,
    last: Option<gst::Buffer>,
    ended: Option<Ended>,
    audio_eos: bool,
    /// Decoded audio not yet aired: interleaved samples in the output's format, starting at
    /// sample `audio_start`.
    fifo: VecDeque<u8>,
    audio_start: i64,
    /// Item-local frame from which the media has no more sound (no track, or it ended).
    silent_from: Option<Frames>,
    /// The media's length, when it says.
    length: Option<Frames>,
    holes: Holes,
    /// Watchdog: since when we have been waiting without getting any data; the wall-clock
    /// time and item-local frame of the first request (real-time pace counts from there);
    /// the newest item-local frame the media has delivered.
    waiting_since: Option<Instant>,
    clock: Option<(Instant, Frames)>,
    /// The stall limit in force ([`STALL`] or [`RENDER_STALL`]).
    stall: Duration,
    newest: Frames,
}

/// Samples of 48 kHz audio before item-local frame `k` (exact for any frame rate).
pub fn samples_before(k: Frames, rate: FrameRate) -> i64 {
    ((k as i128 * AUDIO_RATE as i128 * rate.den as i128) / rate.num as i128) as i64
}

/// Bytes of sound (in the output's format) that item-local frame `k` carries; all zero is silence.
pub fn frame_sound_bytes(k: Frames, rate: FrameRate) -> usize {
    (samples_before(k + 1, rate) - samples_before(k, rate)) as usize * BYTES_PER_SAMPLE
}

impl Decoder {
    /// Open `media` (a path or a URI; a fetched URL plays from the cache), positioned at
    /// item-local frame `offset`. A looping item starts at `offset` modulo the media's length.
    pub fn open(
        media: &str,
        ch: &Channel,
        offset: Frames,
        looping: bool,
    ) -> Result<Decoder, String> {
        let deadline = Instant::now() + OPEN_TIMEOUT;
        let uri = match crate::media::cache::resolve(ch, media) {
            Source::Uri(uri) => uri,
            Source::File(p) => {
                // Opening it here says plainly why a file cannot be read (missing, permissions).
                crate::media::probe::readable(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                crate::media::probe::file_uri(&p)?
            }
        };
        let (par_n, par_d) = ch.pixel_aspect();
        let vdesc = format!(
            "videoconvert ! deinterlace mode=auto \
             ! videoscale name=scale add-borders=true \
             ! capsfilter caps=video/x-raw,format=I420,width={},height={},pixel-aspect-ratio={par_n}/{par_d} \
             ! appsink name=sink sync=false max-buffers={VIDEO_BATCH} drop=false enable-last-sample=false",
            ch.width, ch.height
        );
        let adesc = format!(
            "audioconvert ! audioresample \
             ! capsfilter caps=audio/x-raw,format={AUDIO_FORMAT},layout=interleaved,rate={AUDIO_RATE},channels={AUDIO_CHANNELS} \
             ! appsink name=sink sync=false max-buffers=200 drop=false enable-last-sample=false"
        );
        let branch = |d: &str| gst::parse::bin_from_description(d, true).map_err(|e| e.to_string());
        let (vbin, abin) = (branch(&vdesc)?, branch(&adesc)?);
        let sink = |b: &gst::Bin| {
            b.by_name("sink")
                .expect("sink")
                .downcast::<gst_app::AppSink>()
                .expect("appsink")
        };
        let (video, audio) = (sink(&vbin), sink(&abin));
        let scale = vbin.by_name("scale").expect("videoscale");
        one_per_frame(&scale.static_pad("sink").expect("sink pad"), ch.rate);

        let pipeline = gst::Pipeline::new();
        let src = gst::ElementFactory::make("uridecodebin")
            .property("uri", &uri)
            .build()
            .map_err(|e| e.to_string())?;
        pipeline.add(&src).map_err(|e| e.to_string())?;
        // Network sources (souphttpsrc) get the open timeout for each blocking read too.
        src.connect("source-setup", false, |args| {
            if let Ok(source) = args[1].get::<gst::Element>()
                && source.find_property("timeout").is_some()
            {
                source.set_property("timeout", OPEN_TIMEOUT.as_secs() as u32);
            }
            None
        });
        // One thread per video decoder: libav's frame threads took half again the CPU time for
        // the same pictures (20-min 720p H.264: 20.1 s against 13.1 s), and the encoder keeps
        // the other cores busy.
        src.connect("deep-element-added", false, |args| {
            if let Ok(element) = args[2].get::<gst::Element>()
                && element
                    .factory()
                    .is_some_and(|f| f.name().starts_with("avdec_"))
                && element.find_property("max-threads").is_some()
            {
                element.set_property("max-threads", 1i32);
                // Pictures are copied out of libav's frames either way (libav keeps a decoded
                // reference frame mapped, so a directly rendered one was copied into freshly
                // allocated memory on every frame); without direct rendering the copy goes into
                // a buffer from the negotiated pool, reused frame after frame.
                element.set_property("direct-rendering", false);
            }
            None
        });
        let holes = Holes::default();
        let (has_video, has_audio) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        {
            let (pipe, hv, ha) = (pipeline.downgrade(), has_video.clone(), has_audio.clone());
            let holes = holes.clone();
            // Link the first video and the first audio stream; extra streams (subtitles, data,
            // second audio) are left unlinked and ignored.
            src.connect_pad_added(move |_, pad| {
                let Some(pipe) = pipe.upgrade() else { return };
                let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
                let name = caps
                    .structure(0)
                    .map(|s| s.name().to_string())
                    .unwrap_or_default();
                let (bin, flag, track) = if name.starts_with("video/") {
                    (&vbin, &hv, "pictures")
                } else if name.starts_with("audio/") {
                    (&abin, &ha, "sound")
                } else {
                    return;
                };
                if flag.swap(true, Ordering::SeqCst) {
                    return;
                }
                let _ = pipe.add(bin);
                let _ = bin.sync_state_with_parent();
                if let Some(sinkpad) = bin.static_pad("sink") {
                    watch_holes(&sinkpad, holes.clone(), track);
                    let _ = pad.link(&sinkpad);
                }
            });
        }
        let mut d = Decoder {
            pipeline,
            video,
            audio,
            has_video,
            has_audio,
            rate: ch.rate,
            looping,
            first: offset,
            ready: VecDeque::new(),
            last: None,
            ended: None,
            audio_eos: false,
            fifo: VecDeque::new(),
            audio_start: samples_before(offset, ch.rate),
            silent_from: None,
            length: None,
            holes,
            waiting_since: None,
            clock: None,
            stall: STALL,
            newest: offset - 1,
        };
        d.pipeline
            .set_state(gst::State::Paused)
            .map_err(|_| format!("{uri}: cannot be opened"))?;
        d.wait_async(deadline)?;
        d.length = d
            .pipeline
            .query_duration::<gst::ClockTime>()
            .map(|t| ch.rate.frames_floor(t.nseconds() as i128))
            .filter(|&len| len > 0);
        let mut seek_frames = offset;
        if looping && let Some(len) = d.length {
            seek_frames = offset % len;
        }
        if seek_frames > 0 {
            let pos = gst::ClockTime::from_nseconds(ch.rate.nanos(seek_frames) as u64);
            d.pipeline
                .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, pos)
                .map_err(|_| format!("{uri}: cannot seek to {pos}"))?;
            d.wait_async(deadline)?;
        }
        d.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| format!("{uri}: cannot be played"))?;
        Ok(d)
    }

    /// Wait until the pipeline has prerolled, or fail with the pipeline's error.
    fn wait_async(&self, deadline: Instant) -> Result<(), String> {
        let bus = self.pipeline.bus().expect("bus");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "the media did not open within {} s",
                    OPEN_TIMEOUT.as_secs()
                ));
            }
            let msg = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(left.as_millis() as u64),
                &[gst::MessageType::AsyncDone, gst::MessageType::Error],
            );
            match msg.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::AsyncDone(_)) => return Ok(()),
                Some(gst::MessageView::Error(e)) => return Err(e.error().to_string()),
                _ => {}
            }
        }
    }

    /// Use the render stall limit instead of the on-air one.
    pub fn rendering(mut self) -> Decoder {
        self.stall = RENDER_STALL;
        self
    }

    pub fn stall_limit(&self) -> Duration {
        self.stall
    }

    /// Why the pictures ended early, if they did.
    pub fn ended(&self) -> Option<&Ended> {
        self.ended.as_ref()
    }

    pub fn has_audio(&self) -> bool {
        self.has_audio.load(Ordering::SeqCst)
    }

    /// The item-local frame from which the media has had no sound, if it has run out.
    pub fn silent_from(&self) -> Option<Frames> {
        self.silent_from
    }

    /// The media's length in frames, when it says.
    pub fn length(&self) -> Option<Frames> {
        self.length
    }

    /// A hole in the decoded media that starts at or before item-local frame `k` (it is found
    /// while decoding ahead, and reported when it airs): its length in ms and the track.
    pub fn take_hole(&mut self, k: Frames) -> Option<(u64, &'static str)> {
        let (first, rate) = (self.first, self.rate);
        let mut holes = self.holes.lock().expect("holes");
        let i = holes
            .iter()
            .position(|&(at, _, _)| first + rate.frames_nearest(at as i128) <= k)?;
        let (_, gap, track) = holes.remove(i);
        Some((gap / 1_000_000, track))
    }

    /// The picture for item-local frame `k` (called with k, k+1, ...), or None once the media has
    /// no more pictures for this item (see `ended`). A frame missing in the media repeats the
    /// previous one; so does a frame not ready by `deadline` (None if there is no previous one).
    ///
    /// `stamp` puts the output timestamps on the picture. It runs here, before the decoder keeps
    /// a reference for repeats: stamping a shared buffer would copy it, and a pool's buffer whose
    /// memory is shared with a copy is thrown away instead of reused, so every picture would
    /// need freshly allocated (and page-faulted) memory.
    pub fn video(
        &mut self,
        k: Frames,
        deadline: Option<Instant>,
        stamp: impl Fn(&mut gst::BufferRef),
    ) -> Option<gst::Buffer> {
        let stamped = |mut b: gst::Buffer| {
            stamp(b.make_mut());
            b
        };
        if !self.has_video.load(Ordering::SeqCst) {
            self.ended.get_or_insert(Ended::NoVideo);
        }
        self.clock.get_or_insert((Instant::now(), k));
        loop {
            while let Some((idx, buf)) = self.ready.pop_front() {
                if idx == k {
                    // The appsink keeps the last picture it gave until it gives the next one;
                    // stamping a picture it still holds would copy it, so take the next first,
                    // waiting for it up to a frame (a decoder that scales is often only one
                    // picture ahead), but not past the deadline.
                    if self.ready.is_empty() && !buf.is_writable() {
                        let mut wait = Duration::from_nanos(self.rate.nanos(1) as u64);
                        if let Some(d) = deadline {
                            wait = wait.min(d.saturating_duration_since(Instant::now()));
                        }
                        if let Some(s) = self
                            .video
                            .try_pull_sample(gst::ClockTime::from_nseconds(wait.as_nanos() as u64))
                        {
                            self.take_pictures(s, idx);
                        }
                    }
                    let buf = stamped(buf);
                    self.last = Some(buf.clone());
                    return Some(buf);
                }
                if idx > k {
                    let hold = self.last.clone().unwrap_or_else(|| buf.clone());
                    self.ready.push_front((idx, buf));
                    return Some(stamped(hold));
                }
            }
            if self.ended.is_some() {
                return None;
            }
            if let Some(err) = self.bus_error() {
                self.ended = Some(Ended::Error(err));
                return None;
            }
            match self
                .video
                .try_pull_sample(gst::ClockTime::from_mseconds(20))
            {
                Some(s) => self.take_pictures(s, k - 1),
                None if self.video.is_eos() => {
                    if self.looping && self.restart(k) {
                        continue;
                    }
                    self.ended = Some(Ended::Eos);
                }
                None => {
                    if let Some(why) = self.watchdog(self.newest) {
                        self.ended = Some(why);
                    } else if deadline.is_some_and(|d| Instant::now() >= d) {
                        return self.last.clone().map(stamped);
                    }
                }
            }
            self.drain_audio();
        }
    }

    /// Queue the picture in `first` and what else is decoded, up to a batch, so the decoder is
    /// woken once per batch; `before` is the frame of the picture before `first` (a picture
    /// without a timestamp follows it).
    fn take_pictures(&mut self, first: gst::Sample, before: Frames) {
        self.waiting_since = None;
        let mut next = Some(first);
        while let Some(s) = next {
            let idx = self
                .local_frame(&s)
                .unwrap_or_else(|| self.ready.back().map_or(before, |&(i, _)| i) + 1);
            self.newest = self.newest.max(idx);
            if let Some(buf) = s.buffer_owned() {
                self.ready.push_back((idx, buf));
            }
            next = (self.ready.len() < VIDEO_BATCH)
                .then(|| self.video.try_pull_sample(gst::ClockTime::ZERO))
                .flatten();
        }
    }

    /// The 48 kHz stereo samples (interleaved, in the output's format) for item-local frame `k`;
    /// silence where the media has none, once the pictures have failed, and for what is not
    /// ready by `deadline`.
    pub fn audio(&mut self, k: Frames, deadline: Option<Instant>) -> Vec<u8> {
        let (s0, s1) = (
            samples_before(k, self.rate),
            samples_before(k + 1, self.rate),
        );
        self.clock.get_or_insert((Instant::now(), k));
        let failed = |e: &Option<Ended>| {
            matches!(
                e,
                Some(Ended::Error(_)) | Some(Ended::Stalled) | Some(Ended::Slow)
            )
        };
        while self.has_audio() && !self.audio_eos && self.fifo_end() < s1 && !failed(&self.ended) {
            match self
                .audio
                .try_pull_sample(gst::ClockTime::from_mseconds(20))
            {
                Some(s) => {
                    self.waiting_since = None;
                    self.push_audio(&s);
                }
                None if self.audio.is_eos() => self.audio_eos = true,
                None => {
                    // Progress in frames: the last whole frame the sound covers.
                    let covered = (self.fifo_end() * self.rate.num as i64)
                        / (AUDIO_RATE as i64 * self.rate.den as i64)
                        - 1;
                    if let Some(why) = self.watchdog(covered) {
                        self.ended.get_or_insert(why);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                }
            }
        }
        if failed(&self.ended) {
            self.fifo.clear();
        }
        // Drop what lies before this frame, then take exactly this frame's samples.
        let stale =
            ((s0 - self.audio_start).max(0) as usize * BYTES_PER_SAMPLE).min(self.fifo.len());
        self.fifo.drain(..stale);
        self.audio_start = self.audio_start.max(s0);
        let want = frame_sound_bytes(k, self.rate);
        let lead = ((self.audio_start - s0) as usize * BYTES_PER_SAMPLE).min(want);
        let mut out = vec![0u8; want];
        let take = (want - lead).min(self.fifo.len());
        if take == 0 && (self.audio_eos || !self.has_audio()) {
            self.silent_from.get_or_insert(k);
        }
        let (a, b) = self.fifo.as_slices();
        let from_a = take.min(a.len());
        out[lead..lead + from_a].copy_from_slice(&a[..from_a]);
        out[lead + from_a..lead + take].copy_from_slice(&b[..take - from_a]);
        self.fifo.drain(..take);
        self.audio_start = s1.max(self.audio_start);
        out
    }

    /// The stall watchdog, called while waiting for data: Stalled when nothing at all has come
    /// for the stall limit; Slow when the media's progress (`covered`, the newest item-local
    /// frame it has delivered) lags the real-time pace counted from the first request by more
    /// than the limit.
    fn watchdog(&mut self, covered: Frames) -> Option<Ended> {
        let now = Instant::now();
        let since = *self.waiting_since.get_or_insert(now);
        if now - since > self.stall {
            return Some(Ended::Stalled);
        }
        let (t0, k0) = self.clock?;
        let due = t0 + Duration::from_nanos(self.rate.nanos(covered + 1 - k0).max(0) as u64);
        (now > due + self.stall).then_some(Ended::Slow)
    }

    fn fifo_end(&self) -> i64 {
        self.audio_start + (self.fifo.len() / BYTES_PER_SAMPLE) as i64
    }

    /// Move decoded audio into the FIFO while waiting for pictures, so a demuxer that needs to
    /// push audio is never blocked by us, but only up to a few seconds ahead: beyond that the
    /// decoder must wait, or it would decode a whole file's audio into memory. It is topped up
    /// only once it falls below half, so the audio decoder runs in batches.
    fn drain_audio(&mut self) {
        if self.fifo.len() >= AUDIO_AHEAD_BYTES / 2 {
            return;
        }
        while self.fifo.len() < AUDIO_AHEAD_BYTES {
            match self.audio.try_pull_sample(gst::ClockTime::ZERO) {
                Some(s) => self.push_audio(&s),
                None => break,
            }
        }
    }

    /// Put decoded audio at its place on the item's sample timeline: silence fills a gap, an
    /// overlap with what is already queued is dropped.
    fn push_audio(&mut self, s: &gst::Sample) {
        let Some(buf) = s.buffer() else { return };
        let Ok(map) = buf.map_readable() else { return };
        let pos = match running_time(s) {
            Some(rt) => {
                samples_before(self.first, self.rate)
                    + ((rt as i128 * AUDIO_RATE as i128 + 500_000_000) / 1_000_000_000) as i64
            }
            None => self.fifo_end(),
        };
        let end = self.fifo_end();
        let mut data: &[u8] = &map;
        if pos > end {
            self.fifo.extend(std::iter::repeat_n(
                0u8,
                (pos - end) as usize * BYTES_PER_SAMPLE,
            ));
        } else if pos < end {
            let skip = ((end - pos) as usize * BYTES_PER_SAMPLE).min(data.len());
            data = &data[skip..];
        }
        self.fifo.extend(data);
    }

    /// The item-local frame a decoded picture belongs to, from its running time.
    fn local_frame(&self, s: &gst::Sample) -> Option<Frames> {
        let rt = running_time(s)?;
        Some(self.first + self.rate.frames_nearest(rt as i128))
    }

    /// Start a looping item's media again from its beginning at item-local frame `k`.
    fn restart(&mut self, k: Frames) -> bool {
        let ok = self
            .pipeline
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::ClockTime::ZERO,
            )
            .is_ok();
        if ok {
            self.first = k;
            self.audio_eos = false;
            self.silent_from = None;
            self.audio_start = self.audio_start.max(samples_before(k, self.rate));
            self.fifo.clear();
        }
        ok
    }

    fn bus_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        let m = bus.pop_filtered(&[gst::MessageType::Error])?;
        match m.view() {
            gst::MessageView::Error(e) => Some(e.error().to_string()),
            _ => None,
        }
    }
}

/// Record gaps between consecutive decoded buffers on `pad` (a branch's input) in `holes`;
/// a flush (seek, loop restart) starts afresh.
fn watch_holes(pad: &gst::Pad, holes: Holes, track: &'static str) {
    by_running_time(pad, move |end: &mut Option<u64>, rt, b| {
        if let Some(prev) = *end
            && rt > prev + HOLE
        {
            holes.lock().expect("holes").push((prev, rt - prev, track));
        }
        let stop = rt + b.duration().map_or(0, |d| d.nseconds());
        *end = Some(end.map_or(stop, |e| e.max(stop)));
        true
    });
}

/// Pass on only the first picture of each channel frame (by [`FrameRate::frames_nearest`], as
/// the engine places them): media with more pictures a second than the channel (30 fps, or 50i
/// deinterlaced to 50) has the extra ones dropped before scaling. This and the engine repeating
/// a missing frame are the frame-rate conversion. (GStreamer's videorate does the same, but it
/// keeps a reference to each picture and sends a copy sharing its memory, and a buffer pool
/// throws such buffers away instead of reusing them: every picture then needed fresh memory.)
fn one_per_frame(pad: &gst::Pad, rate: FrameRate) {
    by_running_time(pad, move |last: &mut Option<Frames>, rt, _| {
        let frame = rate.frames_nearest(rt as i128);
        let first = *last != Some(frame);
        *last = Some(frame);
        first
    });
}

/// A probe on `pad` that calls `each(state, running time, buffer)` for every buffer with a
/// running time and drops the buffer when it returns false; a flush (seek, loop restart)
/// resets the state.
fn by_running_time<S: Default + Send + 'static>(
    pad: &gst::Pad,
    each: impl Fn(&mut S, u64, &gst::BufferRef) -> bool + Send + Sync + 'static,
) {
    let state = Mutex::new(S::default());
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_FLUSH,
        move |pad, info| {
            let mut state = state.lock().expect("pad probe");
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    let seg = pad.sticky_event::<gst::event::Segment>(0);
                    let rt = b.pts().and_then(|pts| {
                        seg.as_ref()?
                            .segment()
                            .downcast_ref::<gst::ClockTime>()?
                            .to_running_time(pts)
                    });
                    if let Some(rt) = rt
                        && !each(&mut state, rt.nseconds(), b)
                    {
                        // Taken and handled here: GStreamer 1.22 warns about a NULL unref
                        // when the bindings drop a buffer for a probe returning Drop.
                        drop(info.take_buffer());
                        return gst::PadProbeReturn::Handled;
                    }
                }
                Some(gst::PadProbeData::Event(_)) => *state = S::default(),
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// Running time of a sample's buffer: time since the decoder's start (or its last seek).
fn running_time(s: &gst::Sample) -> Option<u64> {
    let pts = s.buffer()?.pts()?;
    let seg = s.segment()?.downcast_ref::<gst::ClockTime>()?;
    seg.to_running_time(pts).map(|t| t.nseconds())
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
