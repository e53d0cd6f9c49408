//! A transport-stream checker for the tests, after the TR 101 290 first- and second-priority
//! checks that matter here: continuity counters on every PID, PCR repetition, PAT/PMT/SDT
//! repetition, and the constancy of the multiplex bitrate (measured against the PCR clock).

use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Report {
    pub packets: usize,
    pub continuity_errors: usize,
    pub pcr_count: usize,
    pub max_pcr_gap_ms: f64,
    pub max_pat_gap_ms: f64,
    pub max_pmt_gap_ms: f64,
    pub max_sdt_gap_ms: f64,
    /// Whole-stream bitrate from the first to the last PCR.
    pub bitrate: f64,
    /// Largest deviation of any one-second window from the whole-stream bitrate, relative.
    pub max_bitrate_deviation: f64,
    /// Payload unit starts per PID (a PES packet per video frame on the video PID).
    pub unit_starts: HashMap<u16, usize>,
    pub pmt_pid: Option<u16>,
}

pub fn check(ts: &[u8]) -> Report {
    assert!(
        ts.len().is_multiple_of(188) && !ts.is_empty(),
        "a whole number of 188-byte packets"
    );
    let mut r = Report::default();
    let mut cc: HashMap<u16, u8> = HashMap::new();
    // (packet index, PCR in 27 MHz ticks)
    let mut pcrs: Vec<(usize, u64)> = Vec::new();
    let mut table_starts: HashMap<u16, Vec<usize>> = HashMap::new();
    for (i, p) in ts.chunks_exact(188).enumerate() {
        assert_eq!(p[0], 0x47, "sync byte at packet {i}");
        r.packets += 1;
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        let counter = p[3] & 0x0f;
        if pid == 0x1fff {
            continue;
        }
        let mut discontinuity = false;
        if afc & 2 != 0 && p[4] > 0 {
            let flags = p[5];
            discontinuity = flags & 0x80 != 0;
            if flags & 0x10 != 0 {
                let b = &p[6..12];
                let base = (u64::from(b[0]) << 25)
                    | (u64::from(b[1]) << 17)
                    | (u64::from(b[2]) << 9)
                    | (u64::from(b[3]) << 1)
                    | (u64::from(b[4]) >> 7);
                let ext = (u64::from(b[4] & 1) << 8) | u64::from(b[5]);
                pcrs.push((i, base * 300 + ext));
            }
        }
        if afc & 1 != 0 {
            if let Some(&prev) = cc.get(&pid)
                && !discontinuity
                && counter != (prev + 1) & 0x0f
                && counter != prev
            {
                r.continuity_errors += 1;
            }
            cc.insert(pid, counter);
            if pusi {
                *r.unit_starts.entry(pid).or_default() += 1;
                table_starts.entry(pid).or_default().push(i);
                // The PAT names the PMT's PID.
                if pid == 0 && r.pmt_pid.is_none() {
                    let off = if afc & 2 != 0 { 5 + p[4] as usize } else { 4 };
                    let sec = &p[off + 1 + p[off] as usize..];
                    let prog = &sec[8..12];
                    r.pmt_pid = Some((u16::from(prog[2] & 0x1f) << 8) | u16::from(prog[3]));
                }
            }
        }
    }
    r.pcr_count = pcrs.len();
    assert!(pcrs.len() > 2, "PCRs present");
    let (first, last) = (pcrs[0], pcrs[pcrs.len() - 1]);
    let secs = (last.1 - first.1) as f64 / 27e6;
    r.bitrate = ((last.0 - first.0) * 188 * 8) as f64 / secs;
    r.max_pcr_gap_ms = pcrs
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) as f64 / 27e3)
        .fold(0.0, f64::max);
    // One-second windows between PCRs.
    let mut start = 0;
    for j in 1..pcrs.len() {
        let dt = (pcrs[j].1 - pcrs[start].1) as f64 / 27e6;
        if dt >= 1.0 {
            let rate = ((pcrs[j].0 - pcrs[start].0) * 188 * 8) as f64 / dt;
            r.max_bitrate_deviation = r
                .max_bitrate_deviation
                .max((rate - r.bitrate).abs() / r.bitrate);
            start = j;
        }
    }
    let ms_per_packet = 188.0 * 8.0 / r.bitrate * 1e3;
    let gap = |pid: Option<u16>| {
        let Some(starts) = pid.and_then(|p| table_starts.get(&p)) else {
            return f64::INFINITY;
        };
        let mut g = starts
            .windows(2)
            .map(|w| (w[1] - w[0]) as f64 * ms_per_packet)
            .fold(0.0, f64::max);
        // The first table must come early too.
        g = g.max(starts[0] as f64 * ms_per_packet);
        g
    };
    r.max_pat_gap_ms = gap(Some(0));
    r.max_pmt_gap_ms = gap(r.pmt_pid);
    r.max_sdt_gap_ms = gap(Some(0x11));
    r
}
