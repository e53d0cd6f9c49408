//! The public HTML timetable (Chinese first, readable on a phone, filterable by grade, with
//! schema.org BroadcastEvent JSON-LD) and a small per-grade widget school websites can iframe.
//! Self-contained: no external scripts, styles or fonts.

use super::{Entry, Feed, Status};
use chrono::DateTime;

/// Text safe inside HTML elements and attribute values: the same escaping as XML (HTML5 knows
/// every entity it uses).
pub use super::xmltv::escape;

fn hm(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%H:%M").to_string())
        .unwrap_or_default()
}

fn weekday(date: &str) -> &'static str {
    use chrono::Datelike;
    const W: [&str; 7] = [
        "星期一",
        "星期二",
        "星期三",
        "星期四",
        "星期五",
        "星期六",
        "星期日",
    ];
    date.parse::<chrono::NaiveDate>()
        .map(|d| W[d.weekday().num_days_from_monday() as usize])
        .unwrap_or("")
}

fn what(e: &Entry) -> String {
    let mut parts: Vec<String> = [
        e.grade_label.as_deref(),
        e.subject.as_deref(),
        e.strand.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(String::from)
    .collect();
    if let Some(n) = e.number {
        parts.push(format!("第{n}课"));
    }
    if e.rerun_of.is_some() {
        parts.push("重播".into());
    }
    parts.join(" · ")
}

/// schema.org BroadcastEvent for every airing; `@id` is the airing's stable id as a fragment.
fn json_ld(f: &Feed) -> String {
    let events: Vec<serde_json::Value> = f
        .entries
        .iter()
        .map(|e| {
            serde_json::json!({
                "@type": "BroadcastEvent",
                "@id": format!("#{}", e.id),
                "name": e.title,
                "description": what(e),
                "startDate": e.start,
                "endDate": e.end,
                "eventStatus": if e.status == Status::Cancelled { "https://schema.org/EventCancelled" } else { "https://schema.org/EventScheduled" },
                "isAccessibleForFree": true,
                "inLanguage": "zh-CN",
                "publishedOn": { "@type": "BroadcastService", "name": f.channel.name, "alternateName": f.channel.short_name, "broadcastTimezone": f.channel.timezone },
                "workPerformed": { "@type": "CreativeWork", "name": e.title, "educationalLevel": e.grade_label, "about": e.subject.as_ref().or(e.strand.as_ref()) },
            })
        })
        .collect();
    let v = serde_json::json!({ "@context": "https://schema.org", "@graph": events });
    // Inside <script>, "<" must not start "</script>".
    serde_json::to_string(&v)
        .expect("json")
        .replace('<', "\\u003c")
}

const STYLE: &str = "[hidden]{display:none!important}body{font-family:system-ui,-apple-system,'PingFang SC','Noto Sans CJK SC','WenQuanYi Zen Hei',sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\
header{background:#9b1c1c;color:#fff;padding:12px 16px}h1{font-size:1.25rem;margin:0}header p{margin:4px 0 0;font-size:.85rem;opacity:.9}\
nav{display:flex;flex-wrap:wrap;gap:6px;padding:10px 16px;background:#fff;position:sticky;top:0;border-bottom:1px solid #ddd}\
nav button{border:1px solid #9b1c1c;background:#fff;color:#9b1c1c;border-radius:16px;padding:4px 12px;font-size:.9rem}\
nav button[aria-pressed=true]{background:#9b1c1c;color:#fff}main{padding:8px 16px;max-width:760px;margin:auto}\
h2{font-size:1.05rem;margin:18px 0 6px}ol{list-style:none;margin:0;padding:0}li{background:#fff;border-radius:8px;margin:6px 0;padding:8px 10px;display:flex;gap:10px}\
time{font-variant-numeric:tabular-nums;color:#9b1c1c;min-width:6.5em}.t{font-weight:600}.m{font-size:.85rem;color:#555}\
li.cancelled .t{text-decoration:line-through}li.cancelled .m::after{content:' · 已取消'}";

/// The full page: every day, every entry, with a grade filter.
pub fn page(f: &Feed) -> Vec<u8> {
    let ch = &f.channel;
    let mut h =
        String::from("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str(&format!(
        "<title>{} 课程表 · {} timetable</title>\n",
        escape(&ch.short_name),
        escape(&ch.short_name)
    ));
    h.push_str(&format!("<style>{STYLE}</style>\n<script type=\"application/ld+json\">{}</script>\n</head>\n<body>\n", json_ld(f)));
    h.push_str(&format!(
        "<header><h1>{} 课程表</h1><p>{} · 时间为{}时间 · 第{}版，发布于 {}</p></header>\n",
        escape(&ch.name),
        escape(&ch.short_name),
        escape(&ch.timezone),
        f.version,
        escape(&f.published)
    ));
    h.push_str("<nav aria-label=\"年级筛选 Grade filter\"><button data-grade=\"all\" aria-pressed=\"true\">全部 All</button>");
    for g in f.grades() {
        let label = f
            .entries
            .iter()
            .find(|e| e.grade == Some(g))
            .and_then(|e| e.grade_label.clone())
            .unwrap_or_default();
        h.push_str(&format!(
            "<button data-grade=\"{g}\" aria-pressed=\"false\">{}</button>",
            escape(&label)
        ));
    }
    h.push_str("</nav>\n<main>\n");
    for date in &f.dates {
        let day = f.day(date);
        if day.is_empty() {
            continue;
        }
        h.push_str(&format!(
            "<section data-date=\"{date}\"><h2>{date} {}</h2><ol>\n",
            weekday(date)
        ));
        for e in day {
            h.push_str(&format!(
                "<li id=\"{id}\" data-grade=\"{g}\" class=\"{cls}\"><time datetime=\"{start}\">{s}–{t}</time><div><div class=\"t\">{title}</div><div class=\"m\">{what}</div></div></li>\n",
                id = escape(&e.id),
                g = e.grade.map_or("all".to_string(), |g| g.to_string()),
                cls = if e.status == Status::Cancelled { "cancelled" } else { "scheduled" },
                start = escape(&e.start),
                s = hm(&e.start),
                t = hm(&e.end),
                title = escape(&e.title),
                what = escape(&what(e)),
            ));
        }
        h.push_str("</ol></section>\n");
    }
    h.push_str("</main>\n<script>\n");
    h.push_str(
        "document.querySelectorAll('nav button').forEach(function(b){b.addEventListener('click',function(){\
var g=b.dataset.grade;document.querySelectorAll('nav button').forEach(function(x){x.setAttribute('aria-pressed',x===b?'true':'false')});\
document.querySelectorAll('main li').forEach(function(li){li.hidden=!(g==='all'||li.dataset.grade===g||li.dataset.grade==='all')});\
document.querySelectorAll('main section').forEach(function(s){s.hidden=!s.querySelector('li:not([hidden])')});});});\n\
var q=new URLSearchParams(location.search).get('grade');if(q){var b=document.querySelector('nav button[data-grade=\"'+CSS.escape(q)+'\"]');if(b)b.click();}\n",
    );
    h.push_str("</script>\n</body>\n</html>\n");
    h.into_bytes()
}

/// A compact list of one grade's airings for an iframe on a school website.
pub fn widget(f: &Feed, grade: u8) -> Vec<u8> {
    let ch = &f.channel;
    let entries: Vec<&Entry> = f
        .entries
        .iter()
        .filter(|e| e.grade == Some(grade) && e.status == Status::Scheduled)
        .collect();
    let label = entries
        .first()
        .and_then(|e| e.grade_label.clone())
        .unwrap_or_default();
    let mut h = format!(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{} {}</title>\n<style>{STYLE}body{{background:#fff}}li{{border:1px solid #eee}}</style>\n</head>\n<body>\n<main><h2>{} · {} 空中课堂</h2><ol>\n",
        escape(&ch.short_name),
        escape(&label),
        escape(&ch.short_name),
        escape(&label)
    );
    for e in entries {
        h.push_str(&format!(
            "<li id=\"{}\"><time datetime=\"{}\">{} {}</time><div><div class=\"t\">{}</div><div class=\"m\">{}</div></div></li>\n",
            escape(&e.id),
            escape(&e.start),
            &e.date[5..],
            hm(&e.start),
            escape(&e.title),
            escape(&what(e))
        ));
    }
    h.push_str("</ol></main>\n</body>\n</html>\n");
    h.into_bytes()
}
