//! Builds a 20-week term of CETV-4 rundowns (the sample week repeated with new dates) and reports
//! the time per week and the scaling from 1 to 20 weeks. Run: `cargo bench --bench build_term`.

use airclass::rundown;
use airclass::schedule::{Schedule, Week};
use chrono::Days;
use std::path::Path;
use std::time::Instant;

fn term(weeks: usize) -> Schedule {
    let mut s = Schedule::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schedules/cetv4"))
        .expect("sample loads");
    let base: Week = s
        .weeks
        .iter()
        .find(|w| w.name == "2020-W08")
        .expect("sample week")
        .clone();
    s.weeks = (0..weeks)
        .map(|i| {
            let shift = Days::new(7 * i as u64);
            Week {
                name: format!("term-{i}"),
                start: base.start + shift,
                days: base
                    .days
                    .iter()
                    .map(|(d, p)| (*d + shift, p.clone()))
                    .collect(),
                ..base.clone()
            }
        })
        .collect();
    s
}

/// Seconds to build (and check against the policy) every day of the schedule, best of `runs`.
fn time_build(s: &Schedule, runs: usize) -> (f64, usize) {
    let days: Vec<_> = s
        .weeks
        .iter()
        .flat_map(|w| (0..7).map(move |i| w.start + Days::new(i)))
        .collect();
    let mut best = f64::MAX;
    let mut items = 0;
    for _ in 0..runs {
        let t = Instant::now();
        items = 0;
        for &d in &days {
            let r = rundown::build(s, d);
            let rep = rundown::report(s, &r);
            assert!(rep.passed(), "{d}: {:?}", rep.rules);
            items += r.items.len();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best, items)
}

fn main() {
    println!(
        "{:>6} {:>10} {:>12} {:>14} {:>8}",
        "weeks", "items", "total ms", "ms per week", "ratio"
    );
    let (one, _) = time_build(&term(1), 20);
    for n in [1, 2, 5, 10, 20] {
        let (secs, items) = time_build(&term(n), 10);
        // ratio: this many weeks against n times one week; 1.0 is perfectly linear.
        println!(
            "{n:>6} {items:>10} {:>12.2} {:>14.3} {:>8.2}",
            secs * 1e3,
            secs * 1e3 / n as f64,
            secs / (one * n as f64)
        );
    }
}
