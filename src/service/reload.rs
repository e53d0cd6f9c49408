//! Hot reload: the channel directory is watched, and a change to a schedule file (after a quiet
//! spell, because editors save by writing a temporary file and renaming it) loads the whole
//! schedule again. A schedule that loads is handed to the engine, which lets it take effect at
//! the next item boundary; one that does not is rejected with its FILE:LINE:COL error and the
//! channel keeps the schedule it had. Either way the as-run log records it.

use super::{Reloaded, Service};
use crate::schedule::{Channel, Schedule};
use notify::{RecursiveMode, Watcher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Quiet time after the last change before reloading.
const DEBOUNCE: Duration = Duration::from_millis(400);

fn is_schedule_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// Start watching; the returned watcher must be kept alive.
pub fn watch(svc: Arc<Service>) -> Result<notify::RecommendedWatcher, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(e) = res
            && !e.kind.is_access()
            && e.paths.iter().any(|p| is_schedule_file(p))
        {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot watch {}: {e}", svc.channel_dir.display()))?;
    for dir in [svc.channel_dir.clone(), svc.channel_dir.join("weeks")] {
        if dir.is_dir() {
            w.watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        }
    }
    std::thread::spawn(move || {
        while rx.recv().is_ok() {
            while rx.recv_timeout(DEBOUNCE).is_ok() {}
            reload(&svc, "a schedule file changed");
        }
    });
    Ok(w)
}

/// Load the schedule again and swap it in, or keep the old one and say why.
pub fn reload(svc: &Service, why: &str) -> Reloaded {
    let at = chrono::Utc::now().to_rfc3339();
    let running = svc.control.schedule();
    let outcome = Schedule::load(&svc.channel_dir)
        .map_err(|e| e.to_string())
        .and_then(|s| match needs_restart(&running.channel, &s.channel) {
            Some(what) => Err(format!(
                "channel.yaml changes {what}, which the running output cannot take; \
                 restart the service to apply it"
            )),
            None => Ok(s),
        });
    let r = match outcome {
        Ok(s) => {
            let message = format!(
                "{why}: loaded {} week(s); changes take effect at the next item boundary",
                s.weeks.len()
            );
            // Announced before it can air: publish, then hand it to the engine.
            svc.publish(&s);
            svc.control.set_schedule(s);
            tracing::info!("schedule reloaded ({why})");
            Reloaded {
                at,
                ok: true,
                message,
            }
        }
        Err(e) => {
            tracing::error!("schedule reload rejected, keeping the running schedule: {e}");
            Reloaded {
                at,
                ok: false,
                message: e,
            }
        }
    };
    {
        let mut n = svc.reloads.lock().expect("reloads");
        if r.ok { n.0 += 1 } else { n.1 += 1 }
    }
    svc.control.note(
        if r.ok {
            format!("schedule reloaded: {}", r.message)
        } else {
            format!(
                "schedule reload rejected, running schedule kept: {}",
                r.message
            )
        },
        "reload",
    );
    *svc.reloaded.lock().expect("reloaded") = Some(r.clone());
    r
}

/// What a new channel.yaml changes that only a restart can apply (the output format, the zone
/// and day start that frame numbers count from), if anything.
fn needs_restart(old: &Channel, new: &Channel) -> Option<&'static str> {
    if (old.rate, old.width, old.height, old.aspect)
        != (new.rate, new.width, new.height, new.aspect)
    {
        Some("the video format")
    } else if old.output != new.output {
        Some("the output settings")
    } else if (old.tz, old.day_start) != (new.tz, new.day_start) {
        Some("the time zone or broadcast day start")
    } else if old.id != new.id {
        Some("the channel id")
    } else {
        None
    }
}
