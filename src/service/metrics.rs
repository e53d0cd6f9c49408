//! The Prometheus exposition (text format 0.0.4) of the engine's status and the service's state.

use super::Service;
use std::fmt::Write;

/// One metric: its help line, type and samples (label set, value).
fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP airclass_{name} {help}");
    let _ = writeln!(out, "# TYPE airclass_{name} {kind}");
    for (labels, v) in samples {
        let _ = writeln!(out, "airclass_{name}{labels} {v}");
    }
}

pub fn render(svc: &Service) -> String {
    let st = svc.control.status();
    let (reloads_ok, reloads_rejected) = *svc.reloads.lock().expect("reloads");
    let published = svc.published.lock().expect("published").version;
    let one = |v: f64| vec![(String::new(), v)];
    let mut out = String::new();
    metric(
        &mut out,
        "on_air",
        "gauge",
        "1 while the engine is sending output.",
        &one(f64::from(u8::from(st.running))),
    );
    metric(
        &mut out,
        "held",
        "gauge",
        "1 while an operator holds the output on slate.",
        &one(f64::from(u8::from(st.held))),
    );
    metric(
        &mut out,
        "items_aired_total",
        "counter",
        "Items put on air since the service started.",
        &one(st.items_aired as f64),
    );
    let faults: Vec<(String, f64)> = crate::playout::control::FAULT_KINDS
        .iter()
        .map(|k| {
            (
                format!("{{kind=\"{k}\"}}"),
                *st.faults_by_kind.get(k).unwrap_or(&0) as f64,
            )
        })
        .collect();
    metric(
        &mut out,
        "faults_total",
        "counter",
        "Faults by kind; each filled its slot with slate.",
        &faults,
    );
    metric(
        &mut out,
        "output_frames_total",
        "counter",
        "Video frames sent to the output.",
        &one(st.output_frames as f64),
    );
    metric(
        &mut out,
        "output_bytes_total",
        "counter",
        "Bytes of transport stream produced.",
        &one(st.output_bytes as f64),
    );
    metric(
        &mut out,
        "output_bitrate_bits_per_second",
        "gauge",
        "Transport stream bitrate over the last second.",
        &one(st.output_bitrate as f64),
    );
    metric(
        &mut out,
        "drift_frames",
        "gauge",
        "Frames the output is ahead (+) or behind (-) the clock.",
        &one(st.drift_frames as f64),
    );
    metric(
        &mut out,
        "seconds_until_unpublished_day",
        "gauge",
        "Seconds until the first broadcast day that is not published.",
        &one(svc.seconds_until_unpublished() as f64),
    );
    metric(
        &mut out,
        "published_version",
        "gauge",
        "The timetable version published as latest.",
        &one(f64::from(published)),
    );
    let problems = svc.media_problems.lock().expect("media").clone();
    let by_severity: Vec<(String, f64)> = [
        (crate::media::check::Severity::Error, "error"),
        (crate::media::check::Severity::Warning, "warning"),
        (crate::media::check::Severity::Info, "info"),
    ]
    .iter()
    .map(|(sev, name)| {
        let n = problems.iter().filter(|p| p.severity == *sev).count();
        (format!("{{severity=\"{name}\"}}"), n as f64)
    })
    .collect();
    metric(
        &mut out,
        "media_problems_ahead",
        "gauge",
        "Problems the media check found in the next days' items.",
        &by_severity,
    );
    metric(
        &mut out,
        "schedule_reloads_total",
        "counter",
        "Schedule reloads, applied or rejected.",
        &[
            ("{result=\"applied\"}".into(), reloads_ok as f64),
            ("{result=\"rejected\"}".into(), reloads_rejected as f64),
        ],
    );
    out
}
