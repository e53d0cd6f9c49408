//! The channel's cache of remote media, and the one place that decides what plays for a media
//! string of the schedule: a local path, a remote URL's cached download, or the URL itself.
//!
//! Downloads land in `CHANNEL/media/cache/` under a name derived from the URL, and only complete
//! and verified (see [`super::fetch`]), so a file under that name is ready to air.

use crate::schedule::Channel;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Where a media string is played from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local file: a path from the schedule, or the cached download of a remote URL.
    File(PathBuf),
    /// A URI GStreamer opens itself: a remote URL not in the cache, or another scheme.
    Uri(String),
}

/// True for media that `media fetch` downloads: http and https URLs.
pub fn is_http(media: &str) -> bool {
    media.starts_with("http://") || media.starts_with("https://")
}

/// The channel's cache directory.
pub fn dir(ch: &Channel) -> PathBuf {
    ch.dir.join("media").join("cache")
}

/// The cached file of a URL: a hash of the whole URL (so distinct URLs never collide) and its
/// last path segment (so an operator can tell files apart).
pub fn path(ch: &Channel, url: &str) -> PathBuf {
    let hex = super::hex(&Sha256::digest(url.as_bytes())[..8]);
    let last = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let name: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    dir(ch).join(format!("{hex}-{name}"))
}

/// What to play for `media`: the cached file of a fetched URL, a local path, or the URI.
pub fn resolve(ch: &Channel, media: &str) -> Source {
    if is_http(media) {
        let p = path(ch, media);
        if p.is_file() {
            Source::File(p)
        } else {
            Source::Uri(media.to_string())
        }
    } else if media.contains("://") {
        Source::Uri(media.to_string())
    } else {
        Source::File(ch.media_path(media))
    }
}
