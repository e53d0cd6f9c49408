//! Writing the public timetable to a directory any static web server or CDN can serve.
//! Every file is written atomically (temporary file, fsync, rename), so a reader or a crash never
//! sees half a file.

use super::Day;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write `bytes` to `path` atomically: a reader sees the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

/// Publish a week of day guides under `out/<channel>/`: one file per day and one for the week.
/// Returns the files written.
pub fn week(out: &Path, week_name: &str, days: &[Day]) -> std::io::Result<Vec<PathBuf>> {
    let Some(first) = days.first() else {
        return Ok(Vec::new());
    };
    let base = out.join(&first.channel);
    let mut written = Vec::new();
    for d in days {
        let p = base.join("days").join(format!("{}.json", d.date));
        write_atomic(&p, &to_json(d))?;
        written.push(p);
    }
    let p = base.join("weeks").join(format!("{week_name}.json"));
    let week = serde_json::json!({ "channel": first.channel, "week": week_name, "timezone": first.timezone, "days": days });
    write_atomic(&p, &serde_json::to_vec_pretty(&week).expect("serializable"))?;
    written.push(p);
    Ok(written)
}

fn to_json(d: &Day) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(d).expect("serializable");
    v.push(b'\n');
    v
}
