//! Fetching remote media ahead of air into the channel's cache ([`super::cache`]).
//!
//! A download goes to `NAME.part` beside its final name; an interrupted one is resumed with an
//! HTTP Range request from the part's size. Once the size matches what the server announced
//! (Content-Length, or the total of Content-Range) and the SHA-256 matches the schedule's
//! `sha256` (when the entry gives one), the part is synced and renamed into place, so a file
//! under the final name is always complete and verified. A checksum mismatch discards the part.

use super::cache;
use crate::schedule::Schedule;
use chrono::NaiveDate;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// A server that does not connect within this is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A download that receives nothing for this long is stalled; the part is kept for a resume.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The whole of one check request (HEAD, or a one-byte GET).
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// Downloads at once.
const JOBS: usize = 2;

/// The outcome of fetching one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Already in the cache (only complete, verified downloads are).
    Cached(PathBuf),
    Downloaded {
        path: PathBuf,
        bytes: u64,
        /// Bytes that were already there from an interrupted attempt (0 for a fresh download).
        resumed_at: u64,
        /// SHA-256 of the file (lower-case hex).
        sha256: String,
        /// True when the schedule gave a checksum and it matched.
        verified: bool,
    },
}

/// Told how downloads go, from the download threads.
pub trait Progress: Sync {
    /// A download starts, or resumes with `done` bytes already there, toward `total` bytes.
    fn start(&self, url: &str, done: u64, total: Option<u64>);
    fn advance(&self, url: &str, done: u64);
    fn finish(&self, url: &str, result: &Result<Fetched, String>);
}

/// Progress on stderr: a bar per download on a terminal, one line per download start
/// otherwise (logs and pipes get no control characters).
pub struct Bars {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Bars {
        Bars {
            multi: std::io::stderr().is_terminal().then(MultiProgress::new),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

impl Progress for Bars {
    fn start(&self, url: &str, done: u64, total: Option<u64>) {
        let Some(multi) = &self.multi else {
            let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
            match done {
                0 => eprintln!(
                    "fetching {url}{}",
                    total.map(|t| format!(" ({t} bytes)")).unwrap_or_default()
                ),
                n => eprintln!("resuming {url} at byte {n}{of}"),
            }
            return;
        };
        let bar = multi.add(total.map_or_else(ProgressBar::no_length, ProgressBar::new));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
        bar.set_position(done);
        self.bars.lock().expect("bars").insert(url.to_string(), bar);
    }

    fn advance(&self, url: &str, done: u64) {
        if let Some(bar) = self.bars.lock().expect("bars").get(url) {
            bar.set_position(done);
        }
    }

    fn finish(&self, url: &str, _: &Result<Fetched, String>) {
        if let Some(bar) = self.bars.lock().expect("bars").remove(url) {
            bar.finish_and_clear();
        }
    }
}

/// Fetch every http(s) media due in `days` broadcast days from `from` that is not yet cached,
/// checking each against the schedule's `sha256` when it has one. Blocking: call it from a plain
/// thread or `spawn_blocking`.
pub fn fetch(
    schedule: &Schedule,
    from: NaiveDate,
    days: u32,
    progress: &dyn Progress,
) -> Vec<(String, Result<Fetched, String>)> {
    let ch = &schedule.channel;
    let urls: Vec<String> = super::due(schedule, from, days)
        .into_iter()
        .map(|d| d.media)
        .filter(|m| cache::is_http(m))
        .collect();
    let results = super::parallel(&urls, JOBS, |url| {
        fetch_url(url, &cache::path(ch, url), schedule.sha256(url), progress)
    });
    urls.into_iter().zip(results).collect()
}

/// Download `url` to `dest` (resuming `dest.part` if an earlier attempt left one), verifying
/// size and, when given, the SHA-256. Blocking.
pub fn fetch_url(
    url: &str,
    dest: &Path,
    sha256: Option<&str>,
    progress: &dyn Progress,
) -> Result<Fetched, String> {
    if dest.is_file() {
        return Ok(Fetched::Cached(dest.to_path_buf()));
    }
    let result = block_on(download(url, dest, sha256, progress));
    progress.finish(url, &result);
    result
}

/// The partial download beside `dest`.
fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

async fn download(
    url: &str,
    dest: &Path,
    sha256: Option<&str>,
    progress: &dyn Progress,
) -> Result<Fetched, String> {
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let part = part_path(dest);
    let client = client(None)?;
    let mut have = std::fs::metadata(&part).map_or(0, |m| m.len());
    let mut resp = get(&client, url, have).await?;
    if resp.status().as_u16() == 416 && have > 0 {
        // The part is no prefix the server can continue (the file changed): start over.
        have = 0;
        resp = get(&client, url, 0).await?;
    }
    let total = match resp.status().as_u16() {
        206 => {
            let (start, total) = content_range(&resp)
                .ok_or_else(|| "a partial answer without a usable Content-Range".to_string())?;
            if start != have {
                return Err(format!(
                    "asked to resume at byte {have}, the server sent from byte {start}"
                ));
            }
            total
        }
        200 => {
            // The server ignored the range (or none was asked): the whole file comes again.
            have = 0;
            header_u64(&resp, CONTENT_LENGTH)
        }
        s => return Err(format!("the server answers HTTP {s}")),
    };
    let resumed_at = have;
    let mut file = if have > 0 {
        std::fs::OpenOptions::new().append(true).open(&part)
    } else {
        std::fs::File::create(&part)
    }
    .map_err(|e| io(&part, e))?;
    progress.start(url, have, total);
    let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
    let mut done = have;
    loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => {
                file.write_all(&bytes).map_err(|e| io(&part, e))?;
                done += bytes.len() as u64;
                progress.advance(url, done);
            }
            Ok(None) => break,
            Err(e) => {
                let _ = file.sync_all();
                return Err(format!(
                    "interrupted after {done}{of} bytes ({}); run again to resume",
                    describe(&e)
                ));
            }
        }
    }
    file.sync_all().map_err(|e| io(&part, e))?;
    if total.is_some_and(|t| t != done) {
        return Err(format!(
            "incomplete: {done}{of} bytes arrived; run again to resume"
        ));
    }
    let got = sha256_of(&part).map_err(|e| io(&part, e))?;
    if let Some(want) = sha256
        && want != got
    {
        let _ = std::fs::remove_file(&part);
        return Err(format!(
            "checksum mismatch: the schedule says sha256 {want} but the download is {got}; it was discarded"
        ));
    }
    std::fs::rename(&part, dest).map_err(|e| io(dest, e))?;
    // The rename is durable only once the directory is synced.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))?;
    Ok(Fetched::Downloaded {
        path: dest.to_path_buf(),
        bytes: done,
        resumed_at,
        sha256: got,
        verified: sha256.is_some(),
    })
}

/// GET `url`, from byte `from` on.
async fn get(client: &reqwest::Client, url: &str, from: u64) -> Result<reqwest::Response, String> {
    let mut req = client.get(url);
    if from > 0 {
        req = req.header(RANGE, format!("bytes={from}-"));
    }
    req.send().await.map_err(|e| describe(&e))
}

/// What a server says about a URL, for the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// The file's size, if the server says.
    pub length: Option<u64>,
}

/// Ask the server about `url` without downloading it: HEAD, or a one-byte GET for servers that
/// do not allow HEAD. Bounded by `CHECK_TIMEOUT`. Blocking.
pub fn head(url: &str) -> Result<Head, String> {
    block_on(async {
        let client = client(Some(CHECK_TIMEOUT))?;
        let mut r = client.head(url).send().await.map_err(|e| describe(&e))?;
        if matches!(r.status().as_u16(), 405 | 501) {
            r = client
                .get(url)
                .header(RANGE, "bytes=0-0")
                .send()
                .await
                .map_err(|e| describe(&e))?;
        }
        let length = match r.status().as_u16() {
            206 => content_range(&r).and_then(|(_, total)| total),
            _ => header_u64(&r, CONTENT_LENGTH),
        };
        Ok(Head {
            status: r.status().as_u16(),
            length,
        })
    })
}

fn client(total: Option<Duration>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT);
    if let Some(t) = total {
        b = b.timeout(t);
    }
    b.build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

/// Run one async job on a runtime of its own (the callers are plain threads).
fn block_on<T>(f: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start an async runtime: {e}"))?
        .block_on(f)
}

/// A header as a number (reqwest's `content_length` is the body's, which is 0 for HEAD).
fn header_u64(r: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<u64> {
    r.headers().get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `Content-Range: bytes START-END/TOTAL` as (START, TOTAL); TOTAL is `*` when unknown.
fn content_range(r: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let v = r.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()))
}

/// An error with its causes ("error sending request" alone says little).
fn describe(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// SHA-256 of a file, as lower-case hex.
fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut h)?;
    Ok(super::hex(&h.finalize()))
}
