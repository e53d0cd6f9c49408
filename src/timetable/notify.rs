//! Telling subscribers (webhook URLs in channel.yaml) that a new version is out. It runs after the
//! version is on disk, so it can never hold publication back; each URL gets a bounded number of
//! tries with a timeout, and a failure is reported, not fatal.

use super::Feed;
use std::time::Duration;

const TRIES: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(5);

/// POST `{channel, version, published, changes, latest}` to every URL; returns one line per URL
/// saying how it went.
pub async fn webhooks(urls: &[String], feed: &Feed, latest_url: &str) -> Vec<String> {
    let body = serde_json::json!({
        "channel": feed.channel.id,
        "version": feed.version,
        "published": feed.published,
        "changes": feed.changes,
        "latest": latest_url,
    });
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .build()
    {
        Ok(c) => c,
        Err(e) => return vec![format!("webhooks: cannot make an HTTP client: {e}")],
    };
    let mut set = tokio::task::JoinSet::new();
    for (i, url) in urls.iter().cloned().enumerate() {
        let (client, body) = (client.clone(), body.clone());
        set.spawn(async move {
            let mut last = String::new();
            for attempt in 1..=TRIES {
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        return (i, format!("notified {url} ({})", r.status()));
                    }
                    Ok(r) => last = format!("HTTP {}", r.status()),
                    Err(e) => last = e.to_string(),
                }
                if attempt < TRIES {
                    tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt - 1))).await;
                }
            }
            (
                i,
                format!("WARNING: could not notify {url} after {TRIES} tries: {last}"),
            )
        });
    }
    let mut out: Vec<(usize, String)> = set.join_all().await;
    out.sort();
    out.into_iter().map(|(_, s)| s).collect()
}
