//! The operator listener: a page (no data in it, so it needs no token) and a JSON API behind a
//! bearer token: status, the day's rundown with the as-run log beside the plan, actions (skip,
//! hold, resume, reload) and Prometheus metrics. Actions go to the engine, which records each in
//! the as-run log with who asked.

use super::{Service, reload};
use crate::playout::{Action, asrun::AsRun};
use crate::rundown;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const PAGE: &str = include_str!("operator.html");

pub fn router(svc: Arc<Service>) -> Router {
    let api = Router::new()
        .route("/api/status", get(status))
        .route("/api/rundown", get(rundown_view))
        .route("/api/skip", post(|s| act(s, Action::Skip)))
        .route("/api/hold", post(|s| act(s, Action::Hold)))
        .route("/api/resume", post(|s| act(s, Action::Resume)))
        .route("/api/reload", post(reload_now))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(svc.clone(), auth));
    Router::new()
        .route(
            "/",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                        (header::CACHE_CONTROL, "no-store"),
                    ],
                    PAGE,
                )
            }),
        )
        .merge(api)
        .with_state(svc)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(4096))
}

/// Refuse anything without `Authorization: Bearer <token>` (compared in constant time).
async fn auth(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = svc.token.as_bytes();
    let same = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"error": "a valid token is required: Authorization: Bearer <token>"}),
            ),
        )
            .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    next.run(req).await
}

async fn status(State(svc): State<Arc<Service>>) -> axum::Json<Value> {
    let st = svc.control.status();
    let sched = svc.control.schedule();
    // The next items after the one on air, from the plan (the next day's too, near its end).
    let mut next = Vec::new();
    if let Some(a) = &st.on_air
        && let Ok(date) = a.date.parse::<chrono::NaiveDate>()
    {
        for (d, from) in [(Some(date), a.end_frame), (date.succ_opt(), 0)] {
            let Some(d) = d else { continue };
            let r = rundown::to_json(&rundown::build(&sched, d));
            next.extend(
                r["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|it| it["start_frame"].as_i64() >= Some(from))
                    .map(|it| {
                        let mut it = it.clone();
                        it["date"] = r["date"].clone();
                        it
                    }),
            );
        }
        next.truncate(5);
    }
    axum::Json(json!({
        "channel": {
            "id": sched.channel.id,
            "name": sched.channel.name,
            "timezone": sched.channel.tz.name(),
        },
        "schedule_now": svc.now().to_rfc3339(),
        "engine": st,
        "next": next,
        "reload": svc.reloaded.lock().expect("reloaded").clone(),
        "published": svc.published.lock().expect("published").clone(),
        "seconds_until_unpublished_day": svc.seconds_until_unpublished(),
        "media_problems": svc.media_problems.lock().expect("media").clone(),
    }))
}

#[derive(serde::Deserialize)]
struct DateQuery {
    date: Option<chrono::NaiveDate>,
}

/// The day's plan with what the as-run log says happened to each item beside it.
async fn rundown_view(
    State(svc): State<Arc<Service>>,
    Query(q): Query<DateQuery>,
) -> axum::Json<Value> {
    let sched = svc.control.schedule();
    let ch = &sched.channel;
    let date = q.date.unwrap_or_else(|| {
        crate::time::BroadcastDay::containing(svc.now(), ch.day_start, ch.tz, ch.rate).date
    });
    let r = rundown::build(&sched, date);
    let log: Vec<Value> =
        std::fs::read_to_string(AsRun::path(&svc.as_run_dir, &ch.id, &date.to_string()))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
    let mut v = rundown::to_json(&r);
    for it in v["items"].as_array_mut().into_iter().flatten() {
        it["as_run"] = log
            .iter()
            .filter(|e| e["item"] == it["id"])
            .cloned()
            .collect();
    }
    axum::Json(v)
}

/// Hand an action to the engine and answer with what it did.
async fn act(State(svc): State<Arc<Service>>, action: Action) -> Response {
    let rx = svc.control.send(action, "operator API");
    match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(Ok(message))) => axum::Json(json!({"ok": true, "message": message})).into_response(),
        Ok(Ok(Err(e))) => (
            StatusCode::CONFLICT,
            axum::Json(json!({"ok": false, "message": e})),
        )
            .into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ok": false, "message": "the engine is not running"})),
        )
            .into_response(),
    }
}

async fn reload_now(State(svc): State<Arc<Service>>) -> Response {
    let s = svc.clone();
    match tokio::task::spawn_blocking(move || reload::reload(&s, "reload asked by operator API"))
        .await
    {
        Ok(r) if r.ok => axum::Json(json!({"ok": true, "message": r.message})).into_response(),
        Ok(r) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"ok": false, "message": r.message})),
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn metrics(State(svc): State<Arc<Service>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        super::metrics::render(&svc),
    )
}
