//! XMLTV for EPG aggregators: one channel, every scheduled programme, in the DTD's child order,
//! times as `YYYYMMDDhhmmss +hhmm`, UTF-8 without BOM, no empty elements, no characters XML 1.0
//! forbids.

use super::{Feed, Status};
use chrono::DateTime;

/// Text safe for XML (and HTML): markup characters escaped, forbidden control characters dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `20200217080500 +0800` from an RFC 3339 time.
pub fn time(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y%m%d%H%M%S %z").to_string())
        .unwrap_or_default()
}

pub fn render(f: &Feed) -> Vec<u8> {
    let ch = &f.channel;
    let mut x = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE tv SYSTEM \"xmltv.dtd\">\n",
    );
    x.push_str("<tv source-info-name=\"airclass\" generator-info-name=\"airclass\">\n");
    x.push_str(&format!(
        "  <channel id=\"{}\">\n    <display-name lang=\"zh\">{}</display-name>\n    <display-name lang=\"en\">{}</display-name>\n  </channel>\n",
        escape(&ch.id),
        escape(&ch.name),
        escape(&ch.short_name)
    ));
    for e in f.entries.iter().filter(|e| e.status == Status::Scheduled) {
        x.push_str(&format!(
            "  <programme start=\"{}\" stop=\"{}\" channel=\"{}\">\n",
            time(&e.start),
            time(&e.end),
            escape(&ch.id)
        ));
        x.push_str(&format!(
            "    <title lang=\"zh\">{}</title>\n",
            escape(&e.title)
        ));
        let sub: Vec<&str> = [
            e.grade_label.as_deref(),
            e.subject.as_deref(),
            e.strand.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !sub.is_empty() {
            x.push_str(&format!(
                "    <sub-title lang=\"zh\">{}</sub-title>\n",
                escape(&sub.join(" · "))
            ));
        }
        for c in sub.iter().filter(|c| !c.trim().is_empty()) {
            x.push_str(&format!(
                "    <category lang=\"zh\">{}</category>\n",
                escape(c)
            ));
        }
        x.push_str("    <category lang=\"en\">Education</category>\n");
        if let Some(n) = e.number {
            x.push_str(&format!(
                "    <episode-num system=\"onscreen\">第{n}课</episode-num>\n"
            ));
        }
        if let Some(orig) = &e.rerun_of {
            match f.entries.iter().find(|o| &o.id == orig) {
                Some(o) => x.push_str(&format!(
                    "    <previously-shown start=\"{}\" channel=\"{}\" />\n",
                    time(&o.start),
                    escape(&ch.id)
                )),
                None => x.push_str("    <previously-shown />\n"),
            }
        }
        x.push_str("  </programme>\n");
    }
    x.push_str("</tv>\n");
    x.into_bytes()
}
