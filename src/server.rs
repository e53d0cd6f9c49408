//! `airclass serve`: the published export over HTTP, read-only, with what a CDN in front expects:
//! the right Content-Type and charset, strong ETags from the content and 304s, long-lived
//! immutable caching for versioned files and short caching for `latest`, precompressed brotli and
//! gzip chosen by Accept-Encoding with `Vary`, CORS for any origin without credentials, HEAD.
//! Files are read once and kept in memory; nothing is rendered per request. Connections are
//! hyper's HTTP/1.1 with a bound on every request head (16 KiB, 10 s, also while a kept-alive
//! connection idles), so slow or idle clients cannot pile up; the operator API uses the same.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// One file as served: its bytes, precompressed variants and strong ETag.
struct Cached {
    body: axum::body::Bytes,
    gzip: Option<axum::body::Bytes>,
    br: Option<axum::body::Bytes>,
    etag: HeaderValue,
}

struct State {
    root: PathBuf,
    /// Keyed by the file's real path: a version's files never change, and `latest` resolves to
    /// a different real path when it moves, so entries never go stale. Bounded: past
    /// `MAX_CACHED` entries (old versions being read) it starts afresh.
    cache: RwLock<HashMap<PathBuf, Arc<Cached>>>,
    /// Request path -> what it serves: resolving costs several system calls, so it is redone at
    /// most once a second (a new `latest` is seen within a second of publishing).
    routes: RwLock<HashMap<String, Route>>,
    /// Parsed feeds by their ETag, for now/next.
    feeds: RwLock<HashMap<HeaderValue, Arc<crate::timetable::Feed>>>,
}

/// What a request path serves, as resolved at `at`.
#[derive(Clone)]
struct Route {
    file: Arc<Cached>,
    content_type: &'static str,
    /// Under `versions/`: never changes.
    immutable: bool,
    at: Instant,
}

const MAX_CACHED: usize = 512;

/// A client has this long to send a request's head, also between requests on a kept-alive
/// connection; a head may be at most `MAX_HEAD` bytes.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 16 * 1024;

/// The router serving `root` (the `publish --out` directory).
fn router(root: &Path) -> Router {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let state = Arc::new(State {
        root,
        cache: RwLock::new(HashMap::new()),
        routes: RwLock::new(HashMap::new()),
        feeds: RwLock::new(HashMap::new()),
    });
    Router::new()
        .fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
            let state = state.clone();
            async move { handle(&state, method, uri, headers) }
        })
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1024))
}

/// `airclass serve`: serve `root` on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(root: &Path, addr: std::net::SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "serving {} on http://{}",
        root.display(),
        listener.local_addr()?
    );
    serve_on(listener, root, async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} }
    })
    .await;
    Ok(())
}

/// Serve the export at `root` on `listener` until `shutdown` completes.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    root: &Path,
    shutdown: impl std::future::Future<Output = ()>,
) {
    serve_app(listener, router(root), shutdown).await
}

/// Serve `app` on `listener` over HTTP/1.1 (as CDN origins and operators' tools speak it), with
/// every request head bounded in size and time, until `shutdown` completes; then let the
/// requests in progress finish, for at most 5 s.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let service = hyper_util::service::TowerToHyperService::new(app);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD);
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Responses are whole files written at once: send them without waiting on Nagle.
        let _ = tcp.set_nodelay(true);
        let io = hyper_util::rt::TokioIo::new(tcp);
        let conn = graceful.watch(http.serve_connection(io, service.clone()));
        tokio::spawn(conn);
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json; charset=utf-8",
        Some("xml") => "application/xml; charset=utf-8",
        Some("ics") => "text/calendar; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    cors(r.headers_mut());
    r
}

fn cors(h: &mut HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

fn handle(state: &State, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method == Method::OPTIONS {
        let mut r = plain(StatusCode::NO_CONTENT, "");
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("If-None-Match"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        return r;
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "read-only: GET and HEAD only\n",
        );
        r.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        return r;
    }
    let raw = uri.path();
    if raw.len() > 1024 {
        return plain(StatusCode::URI_TOO_LONG, "path too long\n");
    }
    if let Some(channel) = raw
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix("/now.json"))
    {
        // `?at=RFC3339` asks what is on at another moment (a past week, a preview).
        let at = uri
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("at=")))
            .and_then(percent_decode)
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(&v).ok())
            .map_or_else(chrono::Utc::now, |t| t.with_timezone(&chrono::Utc));
        return now_next(state, channel, &method, at);
    }
    let Some(Route {
        file,
        content_type,
        immutable,
        ..
    }) = route(state, raw)
    else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let mut r = Response::new(Body::empty());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ETAG, file.etag.clone());
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if immutable {
            "public, max-age=31536000, immutable"
        } else {
            "public, max-age=60, must-revalidate"
        }),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    cors(h);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == file.etag)
        });
    if matches {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return r;
    }
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let accepts = |name: &str| {
        accept.split(',').any(|p| {
            let mut it = p.split(';');
            it.next().is_some_and(|n| n.trim() == name) && !it.any(|q| q.trim() == "q=0")
        })
    };
    let body = match (&file.br, &file.gzip) {
        (Some(br), _) if accepts("br") => {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
            br.clone()
        }
        (_, Some(gz)) if accepts("gzip") => {
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            gz.clone()
        }
        _ => file.body.clone(),
    };
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if method == Method::GET {
        *r.body_mut() = Body::from(body);
    }
    r
}

/// `/CHANNEL/now.json[?at=RFC3339]`: the airing on now and the next three, from the latest
/// published version.
/// The only answer computed per request (it depends on the clock); it is cached for 10 s.
fn now_next(
    state: &State,
    channel: &str,
    method: &Method,
    at: chrono::DateTime<chrono::Utc>,
) -> Response {
    let Some(latest) = route(state, &format!("/{channel}/latest/feed.json")) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let etag = &latest.file.etag;
    let cached = state.feeds.read().expect("lock").get(etag).cloned();
    let feed = match cached {
        Some(f) => f,
        None => {
            let Ok(f) = serde_json::from_slice::<crate::timetable::Feed>(&latest.file.body) else {
                return plain(StatusCode::NOT_FOUND, "not found\n");
            };
            let f = Arc::new(f);
            let mut feeds = state.feeds.write().expect("lock");
            if feeds.len() >= MAX_CACHED {
                feeds.clear();
            }
            feeds.insert(etag.clone(), f.clone());
            f
        }
    };
    let body = crate::timetable::json::now_next(&feed, at);
    let mut r = Response::new(if *method == Method::GET {
        Body::from(body.clone())
    } else {
        Body::empty()
    });
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=10"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    cors(h);
    r
}

/// What a request path serves (a directory means its index.html), inside the root, or None.
fn route(state: &State, raw: &str) -> Option<Route> {
    if let Some(r) = state.routes.read().expect("lock").get(raw)
        && r.at.elapsed() < Duration::from_secs(1)
    {
        return Some(r.clone());
    }
    let rel = safe_path(raw)?;
    let mut path = state.root.join(&rel);
    if path.is_dir() {
        path = path.join("index.html");
    }
    let real = path
        .canonicalize()
        .ok()
        .filter(|r| r.starts_with(&state.root) && r.is_file())?;
    let r = Route {
        file: load(state, &real)?,
        content_type: content_type(&real),
        immutable: rel.components().any(|c| c.as_os_str() == "versions"),
        at: Instant::now(),
    };
    let mut map = state.routes.write().expect("lock");
    if map.len() > 10_000 {
        map.clear();
    }
    map.insert(raw.to_string(), r.clone());
    Some(r)
}

/// A request path as a relative path with no `..`, or None.
fn safe_path(raw: &str) -> Option<PathBuf> {
    let decoded = percent_decode(raw)?;
    let p = Path::new(decoded.trim_start_matches('/'));
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| p.to_path_buf())
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.contains('\0'))
}

fn load(state: &State, real: &Path) -> Option<Arc<Cached>> {
    if let Some(c) = state.cache.read().expect("cache lock").get(real) {
        return Some(c.clone());
    }
    let body = std::fs::read(real).ok()?;
    let sibling = |ext: &str| {
        std::fs::read(format!("{}.{ext}", real.display()))
            .ok()
            .map(axum::body::Bytes::from)
    };
    let etag = HeaderValue::from_str(&crate::timetable::publish::etag(&body)).ok()?;
    let c = Arc::new(Cached {
        gzip: sibling("gz"),
        br: sibling("br"),
        body: body.into(),
        etag,
    });
    let mut cache = state.cache.write().expect("cache lock");
    if cache.len() >= MAX_CACHED {
        // The routes hold files too: let go of both, so memory stays bounded.
        cache.clear();
        state.routes.write().expect("lock").clear();
    }
    cache.insert(real.to_path_buf(), c.clone());
    Some(c)
}
