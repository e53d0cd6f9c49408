//! The one persistent output pipeline: raw video and audio pushed by the engine are encoded
//! (H.264 + AAC), multiplexed into a constant-bitrate MPEG-TS with PAT/PMT/SDT and regular PCR,
//! and sent to every output (UDP, file). It lives for the whole run; items never touch it.

use crate::schedule::Channel;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::PathBuf;

/// Where the transport stream goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Udp {
        host: String,
        port: u16,
    },
    /// An SRT URI as GStreamer's srtsink takes it: `srt://HOST:PORT?mode=caller|listener`.
    Srt(String),
    File(PathBuf),
}

impl std::str::FromStr for Sink {
    type Err = String;
    /// `udp://HOST:PORT`, `srt://HOST:PORT[?mode=caller|listener]`, `file:PATH` or a plain path
    /// ending in `.ts`.
    fn from_str(s: &str) -> Result<Sink, String> {
        if let Some(rest) = s.strip_prefix("srt://") {
            let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
            let port = addr.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
            if port.parse::<u16>().is_err() {
                return Err(format!(
                    "`{s}`: write srt://HOST:PORT (HOST may be empty for a listener)"
                ));
            }
            for kv in query.split('&').filter(|kv| kv.starts_with("mode=")) {
                if !["mode=caller", "mode=listener", "mode=rendezvous"].contains(&kv) {
                    return Err(format!(
                        "`{s}`: mode is caller (the default), listener or rendezvous"
                    ));
                }
            }
            return Ok(Sink::Srt(s.to_string()));
        }
        if let Some(rest) = s.strip_prefix("udp://") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("`{s}`: write udp://HOST:PORT"))?;
            let port = port
                .parse()
                .map_err(|_| format!("`{s}`: `{port}` is not a port number"))?;
            Ok(Sink::Udp {
                host: host.trim_matches(['[', ']']).to_string(),
                port,
            })
        } else if let Some(path) = s.strip_prefix("file:") {
            Ok(Sink::File(PathBuf::from(path)))
        } else if s.ends_with(".ts") {
            Ok(Sink::File(PathBuf::from(s)))
        } else {
            Err(format!(
                "`{s}` is not an output; use udp://HOST:PORT, srt://HOST:PORT or file:PATH.ts"
            ))
        }
    }
}

/// How the output runs: paced by the clock for air, as fast as possible for rendering to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    RealTime,
    AsFastAsPossible,
}

/// Transport-stream layout: fixed PIDs so downstream equipment can be configured once (the
/// muxer puts the PMT on PID 0x20, which it does not let us change).
pub const VIDEO_PID: u32 = 256;
pub const AUDIO_PID: u32 = 257;
/// Audio is always conformed to this before it reaches the output: interleaved 32-bit float,
/// the AAC encoder's own sample type, so decoded sound is converted once and never dithered to
/// 16 bits on the way.
pub const AUDIO_RATE: u32 = 48_000;
pub const AUDIO_CHANNELS: u32 = 2;
pub const AUDIO_FORMAT: &str = "F32LE";
/// Bytes of one sample of one channel in [`AUDIO_FORMAT`] (silence is all zero bytes).
pub const AUDIO_SAMPLE_BYTES: usize = 4;

/// A network output and what its sender thread needs.
enum Network {
    Udp(std::net::UdpSocket),
    Srt(String),
}

pub struct Output {
    pub pipeline: gst::Pipeline,
    pub video: gst_app::AppSrc,
    pub audio: gst_app::AppSrc,
    mux: gst::Element,
    /// Network outputs, handed to their sender threads when the pipeline starts.
    senders: std::sync::Mutex<Vec<(gst_app::AppSink, Network)>>,
    rate: u64,
    /// Bytes of transport stream the muxer has produced (for the status and metrics).
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Output {
    pub fn new(ch: &Channel, sinks: &[Sink], pace: Pace) -> Result<Output, String> {
        let (par_n, par_d) = ch.pixel_aspect();
        let o = &ch.output;
        let live = pace == Pace::RealTime;
        let gop = ch.rate.timecode_base() * 2;
        let mut desc = format!(
            "appsrc name=v format=time is-live=false block=true max-bytes=0 max-time={ahead} \
               caps=video/x-raw,format=I420,width={w},height={h},framerate={fn_}/{fd},pixel-aspect-ratio={par_n}/{par_d},interlace-mode=progressive \
             ! x264enc name=venc bitrate={vk} speed-preset=veryfast tune=zerolatency key-int-max={gop} bframes=0 \
                 vbv-buf-capacity=1000 threads=2 option-string=nal-hrd=cbr:force-cfr=1 \
             ! video/x-h264,profile=main ! h264parse config-interval=-1 \
             ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=3000000000 ! mux.sink_{vpid} \
             appsrc name=a format=time is-live=false block=true max-bytes=0 max-time={ahead} \
               caps=audio/x-raw,format={af},layout=interleaved,rate={ar},channels={ac},channel-mask=(bitmask)0x3 \
             ! audioconvert ! avenc_aac bitrate={ab} ! aacparse \
             ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=3000000000 ! mux.sink_{apid} \
             mpegtsmux name=mux alignment=7 bitrate={mb} pcr-interval=1800 pat-interval=9000 pmt-interval=9000 si-interval=9000 \
               prog-map=\"program_map,sink_{vpid}=(int){prog},sink_{apid}=(int){prog}\" \
             ! tee name=t ",
            w = ch.width,
            h = ch.height,
            fn_ = ch.rate.num,
            fd = ch.rate.den,
            vk = o.video_kbps,
            ab = o.audio_kbps * 1000,
            mb = o.mux_kbps as u64 * 1000,
            ar = AUDIO_RATE,
            af = AUDIO_FORMAT,
            ac = AUDIO_CHANNELS,
            vpid = VIDEO_PID,
            prog = o.program_number,
            apid = AUDIO_PID,
            // The encoders run on the appsrcs' own threads, which also buffer the engine's
            // output. Real time: the engine paces itself, so they hold its lead (0: no limit);
            // rendering: backpressure after one second.
            ahead = if live { 0 } else { 1_000_000_000 },
        );
        for (i, s) in sinks.iter().enumerate() {
            match s {
                // Handed to a sender thread of their own (see `udp` and `srt`), released by the
                // clock in real time (early by the UDP pacer's prebuffer, so datagrams still
                // leave on time). The appsink drops rather than blocks, so a stuck network
                // output never holds up the others.
                Sink::Udp { .. } | Sink::Srt(_) => desc.push_str(&format!(
                    "t. ! queue name=q{i} max-size-buffers=0 max-size-bytes=0 max-size-time=2000000000 leaky=downstream \
                     ! appsink name=net{i} sync={live} ts-offset=-{pre} async=false max-buffers=4000 drop=true enable-last-sample=false ",
                    pre = udp::PREBUFFER.as_nanos()
                )),
                // A file written beside other outputs gets a thread of its own, so a slow disk
                // never holds them up; alone, the muxer's thread writes it.
                Sink::File(path) => desc.push_str(&format!(
                    "t. ! {} filesink location=\"{}\" sync=false async=false ",
                    if sinks.len() > 1 {
                        format!("queue name=q{i} max-size-buffers=0 max-size-bytes=0 max-size-time=2000000000 !")
                    } else {
                        String::new()
                    },
                    path.display().to_string().replace('"', "\\\"")
                )),
            }
        }
        if sinks.is_empty() {
            desc.push_str("t. ! fakesink sync=false async=false ");
        }
        let pipeline = gst::parse::launch(&desc)
            .map_err(|e| format!("cannot build the output pipeline: {e}"))?
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
        let mux = pipeline.by_name("mux").expect("mux");
        let bytes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = bytes.clone();
        mux.static_pad("src").expect("mux src").add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, info| {
                let size = match &info.data {
                    Some(gst::PadProbeData::Buffer(b)) => b.size(),
                    Some(gst::PadProbeData::BufferList(l)) => l.calculate_size(),
                    _ => 0,
                };
                counter.fetch_add(size as u64, std::sync::atomic::Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            },
        );
        let get = |n: &str| {
            pipeline
                .by_name(n)
                .expect("appsrc")
                .downcast::<gst_app::AppSrc>()
                .expect("appsrc")
        };
        let (video, audio) = (get("v"), get("a"));
        let mut senders = Vec::new();
        for (i, sink) in sinks.iter().enumerate() {
            let appsink = || {
                pipeline
                    .by_name(&format!("net{i}"))
                    .expect("network appsink")
                    .downcast::<gst_app::AppSink>()
                    .expect("appsink")
            };
            if let Sink::Srt(uri) = sink {
                senders.push((appsink(), Network::Srt(uri.clone())));
            }
            if let Sink::Udp { host, port } = sink {
                let socket = std::net::UdpSocket::bind(if host.contains(':') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                })
                .and_then(|s| s.connect((host.as_str(), *port)).map(|_| s))
                .map_err(|e| format!("udp://{host}:{port}: {e}"))?;
                senders.push((appsink(), Network::Udp(socket)));
            }
        }
        Ok(Output {
            pipeline,
            video,
            audio,
            mux,
            senders: std::sync::Mutex::new(senders),
            rate: ch.output.mux_kbps as u64 * 1000,
            bytes,
        })
    }

    /// Bytes of transport stream produced so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Start the pipeline. In real time `base_utc_ns` is the UTC instant (ns since the epoch) of
    /// the output's first frame: running time is then UTC minus that, so sinks send each packet
    /// at its planned wall-clock moment.
    pub fn start(&self, ch: &Channel, base_utc_ns: Option<u64>) -> Result<(), String> {
        if let Some(base) = base_utc_ns {
            let clock = gst::SystemClock::obtain();
            clock.set_property("clock-type", gst::ClockType::Realtime);
            self.pipeline.use_clock(Some(&clock));
            self.pipeline.set_start_time(gst::ClockTime::NONE);
            self.pipeline
                .set_base_time(gst::ClockTime::from_nseconds(base));
        }
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("cannot start the output pipeline: {e}"))?;
        sdt::send(
            &self.mux,
            ch.output.program_number,
            &ch.output.service_name,
            &ch.output.provider_name,
        );
        // The senders start now: before PLAYING an appsink reports end of stream.
        for (sink, net) in self.senders.lock().expect("network outputs").drain(..) {
            let rate = self.rate;
            std::thread::spawn(move || match net {
                Network::Udp(socket) => udp::pace(sink, socket, rate),
                Network::Srt(uri) => srt::send(sink, &uri, rate),
            });
        }
        Ok(())
    }

    /// Finish: end of stream on both inputs, wait until every sink has written it, stop.
    pub fn finish(&self) -> Result<(), String> {
        let _ = self.video.end_of_stream();
        let _ = self.audio.end_of_stream();
        let bus = self.pipeline.bus().expect("bus");
        let result = match bus.timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) {
            Some(m) => match m.view() {
                gst::MessageView::Error(e) => {
                    Err(format!("output error: {} ({:?})", e.error(), e.debug()))
                }
                _ => Ok(()),
            },
            None => Err("the output did not finish within 60 s".into()),
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }

    /// The first error the output pipeline has posted, if any (a full disk, an encoder failure).
    pub fn error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        while let Some(m) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning])
        {
            match m.view() {
                gst::MessageView::Error(e) => {
                    return Some(format!("{} ({:?})", e.error(), e.debug()));
                }
                gst::MessageView::Warning(w) => tracing::warn!("output: {}", w.error()),
                _ => {}
            }
        }
        None
    }
}

/// The SDT names the service for receivers. mpegtsmux writes no SDT of its own, so one is built
/// with libgstmpegts and handed to the muxer, which repeats it every `si-interval`.
mod sdt {
    use gstreamer as gst;
    use gstreamer::glib;
    use gstreamer::glib::translate::ToGlibPtr;
    use std::ffi::{CString, c_char, c_int, c_void};

    #[repr(C)]
    struct SdtService {
        service_id: u16,
        eit_schedule_flag: glib::ffi::gboolean,
        eit_present_following_flag: glib::ffi::gboolean,
        running_status: c_int,
        free_ca_mode: glib::ffi::gboolean,
        descriptors: *mut glib::ffi::GPtrArray,
    }

    #[repr(C)]
    struct Sdt {
        original_network_id: u16,
        actual_ts: glib::ffi::gboolean,
        transport_stream_id: u16,
        services: *mut glib::ffi::GPtrArray,
    }

    const DVB_SERVICE_DIGITAL_TELEVISION: c_int = 1;
    const RUNNING_STATUS_RUNNING: c_int = 4;

    #[link(name = "gstmpegts-1.0")]
    unsafe extern "C" {
        fn gst_mpegts_initialize();
        fn gst_mpegts_sdt_new() -> *mut Sdt;
        fn gst_mpegts_sdt_service_new() -> *mut SdtService;
        fn gst_mpegts_descriptor_from_dvb_service(
            kind: c_int,
            name: *const c_char,
            provider: *const c_char,
        ) -> *mut c_void;
        fn gst_mpegts_section_from_sdt(sdt: *mut Sdt) -> *mut c_void;
        fn gst_mpegts_section_send_event(
            section: *mut c_void,
            element: *mut gst::ffi::GstElement,
        ) -> glib::ffi::gboolean;
    }

    pub fn send(mux: &gst::Element, program: u16, name: &str, provider: &str) {
        let (name, provider) = (
            CString::new(name.replace('\0', "")).unwrap_or_default(),
            CString::new(provider.replace('\0', "")).unwrap_or_default(),
        );
        // SAFETY: plain libgstmpegts calls; the arrays own what is added to them and the section
        // takes ownership of the SDT. The section is handed to the muxer, which keeps its own ref.
        unsafe {
            gst_mpegts_initialize();
            let svc = gst_mpegts_sdt_service_new();
            (*svc).service_id = program;
            (*svc).running_status = RUNNING_STATUS_RUNNING;
            let desc = gst_mpegts_descriptor_from_dvb_service(
                DVB_SERVICE_DIGITAL_TELEVISION,
                name.as_ptr(),
                provider.as_ptr(),
            );
            glib::ffi::g_ptr_array_add((*svc).descriptors, desc);
            let sdt = gst_mpegts_sdt_new();
            (*sdt).original_network_id = 1;
            (*sdt).transport_stream_id = 1;
            (*sdt).actual_ts = glib::ffi::GTRUE;
            glib::ffi::g_ptr_array_add((*sdt).services, svc as *mut c_void);
            let section = gst_mpegts_section_from_sdt(sdt);
            gst_mpegts_section_send_event(section, mux.to_glib_none().0);
            gst::ffi::gst_mini_object_unref(section as *mut gst::ffi::GstMiniObject);
        }
    }
}

/// UDP output paced at the constant multiplex rate: 1316-byte datagrams (7 TS packets) sent at
/// even intervals, however burstily the muxer hands them over. A short prebuffer absorbs that
/// jitter; a growing backlog is sent faster so the output stays on time. It runs on its own
/// thread and a slow or failing send never holds up the pipeline or other outputs (the appsink
/// drops its oldest buffers if this thread falls far behind).
mod udp {
    use gstreamer as gst;
    use gstreamer_app as gst_app;
    use std::collections::VecDeque;
    use std::time::{Duration, Instant};

    const DATAGRAM: usize = 1316;
    /// Held before sending starts; the appsink releases buffers this much early to make up for it.
    pub const PREBUFFER: Duration = Duration::from_millis(200);
    const MAX_BACKLOG: Duration = Duration::from_millis(800);

    pub fn pace(sink: gst_app::AppSink, socket: std::net::UdpSocket, bits_per_second: u64) {
        let interval =
            Duration::from_nanos(DATAGRAM as u64 * 8 * 1_000_000_000 / bits_per_second.max(1));
        let backlog = |d: Duration| (d.as_nanos() / interval.as_nanos()) as usize;
        let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
        let mut pending: Vec<u8> = Vec::new();
        let mut next: Option<Instant> = None;
        let mut eos = false;
        loop {
            let wait = next.map_or(Duration::from_millis(50), |t| {
                t.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(50))
            });
            if eos {
                // The end: keep pacing what is left, then stop.
                if queue.is_empty() {
                    return;
                }
                next.get_or_insert_with(Instant::now);
                std::thread::sleep(wait);
            } else {
                match sink.try_pull_sample(gst::ClockTime::from_nseconds(wait.as_nanos() as u64)) {
                    Some(sample) => {
                        if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                            pending.extend_from_slice(&map);
                            while pending.len() >= DATAGRAM {
                                queue.push_back(pending.drain(..DATAGRAM).collect());
                            }
                        }
                    }
                    None if sink.is_eos() => eos = true,
                    None => {}
                }
            }
            // Start once the prebuffer is full; restart the same way after running dry.
            if next.is_none() {
                if queue.len() < backlog(PREBUFFER).max(1) && !eos {
                    continue;
                }
                next = Some(Instant::now());
            }
            let now = Instant::now();
            if queue.len() > backlog(MAX_BACKLOG) {
                next = Some(now);
            }
            while let Some(t) = next {
                if t > Instant::now() {
                    break;
                }
                let Some(d) = queue.pop_front() else {
                    next = None;
                    break;
                };
                let _ = socket.send(&d);
                next = Some(t + interval);
            }
        }
    }
}

/// SRT output. Each runs its own small pipeline (appsrc ! srtsink) fed from the main one, so an
/// SRT failure (no listener to call, a receiver that stalls or goes away) stays there: its
/// appsrc drops the oldest data instead of blocking, and a failed connection is retried every
/// second while the other outputs carry on.
mod srt {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    use gstreamer_app as gst_app;
    use std::time::{Duration, Instant};

    const RETRY: Duration = Duration::from_secs(1);

    struct Link {
        pipeline: gst::Pipeline,
        src: gst_app::AppSrc,
    }

    impl Link {
        fn open(uri: &str, bits_per_second: u64) -> Result<Link, String> {
            let desc = format!(
                "appsrc name=src is-live=true format=bytes block=false leaky-type=downstream max-bytes={buffer} \
                 ! srtsink uri=\"{uri}\" wait-for-connection=false sync=false async=false latency=200",
                // Two seconds of stream.
                buffer = bits_per_second / 4,
                uri = uri.replace('"', ""),
            );
            let pipeline = gst::parse::launch(&desc)
                .map_err(|e| e.to_string())?
                .downcast::<gst::Pipeline>()
                .expect("a pipeline");
            let src = pipeline
                .by_name("src")
                .expect("appsrc")
                .downcast::<gst_app::AppSrc>()
                .expect("appsrc");
            pipeline.set_state(gst::State::Playing).map_err(|e| {
                let _ = pipeline.set_state(gst::State::Null);
                e.to_string()
            })?;
            Ok(Link { pipeline, src })
        }

        fn error(&self) -> Option<String> {
            let m = self
                .pipeline
                .bus()?
                .pop_filtered(&[gst::MessageType::Error])?;
            match m.view() {
                gst::MessageView::Error(e) => Some(e.error().to_string()),
                _ => None,
            }
        }
    }

    impl Drop for Link {
        fn drop(&mut self) {
            let _ = self.pipeline.set_state(gst::State::Null);
        }
    }

    pub fn send(sink: gst_app::AppSink, uri: &str, bits_per_second: u64) {
        let mut link: Option<Link> = None;
        let mut retry_at = Instant::now();
        let mut down = false;
        loop {
            let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
                if sink.is_eos() {
                    if let Some(l) = &link {
                        let _ = l.src.end_of_stream();
                    }
                    return;
                }
                continue;
            };
            if link.is_none() && Instant::now() >= retry_at {
                match Link::open(uri, bits_per_second) {
                    Ok(l) => {
                        if down {
                            tracing::info!("SRT output {uri} is back");
                        }
                        down = false;
                        link = Some(l);
                    }
                    Err(e) => {
                        if !down {
                            tracing::warn!("SRT output {uri}: {e}; retrying every second");
                        }
                        down = true;
                        retry_at = Instant::now() + RETRY;
                    }
                }
            }
            if let Some(l) = &link {
                if let Some(e) = l.error() {
                    tracing::warn!("SRT output {uri}: {e}; reconnecting");
                    down = true;
                    link = None;
                    retry_at = Instant::now() + RETRY;
                    continue;
                }
                if let Some(b) = sample.buffer_owned() {
                    // The link sends as it receives: the main pipeline's clock already paced it.
                    let mut b = b;
                    let m = b.make_mut();
                    m.set_pts(gst::ClockTime::NONE);
                    m.set_dts(gst::ClockTime::NONE);
                    let _ = l.src.push_buffer(b);
                }
            }
        }
    }
}
