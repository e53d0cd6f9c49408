//! iCalendar (RFC 5545), one calendar per grade: a VTIMEZONE for the channel's zone, one VEVENT
//! per airing with a UID from its identity, DTSTAMP from its last change (so unchanged output is
//! byte-identical), SEQUENCE raised when its time moves, cancelled airings kept, CRLF line ends,
//! lines folded at 75 octets without splitting a UTF-8 character, TEXT escaped.

use super::{Feed, Status};
use chrono::{DateTime, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// Escape a TEXT value: backslash, semicolon, comma and newlines.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// One content line, folded: at most 75 octets per physical line, never inside a character.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
    out
}

fn local(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.format("%Y%m%dT%H%M%S").to_string())
        .unwrap_or_default()
}

fn utc(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default()
}

fn offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    format!("{sign}{:02}{:02}", a / 3600, a / 60 % 60)
}

/// VTIMEZONE for `tz` with every offset change between `from` and `to` (one STANDARD block for
/// a zone without changes, such as Asia/Shanghai).
pub fn vtimezone(tz: Tz, from: NaiveDate, to: NaiveDate) -> String {
    let off = |t: DateTime<Utc>| t.with_timezone(&tz).offset().fix().local_minus_utc();
    let start = Utc.from_utc_datetime(&from.and_hms_opt(0, 0, 0).expect("midnight"));
    let end = Utc.from_utc_datetime(&to.and_hms_opt(0, 0, 0).expect("midnight"));
    let mut s = format!("BEGIN:VTIMEZONE\r\nTZID:{}\r\n", tz.name());
    let mut blocks = Vec::new();
    let mut t = start;
    let mut cur = off(t);
    while t < end {
        let next = t + Duration::hours(1);
        if off(next) != cur {
            // Narrow the change to the minute.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::minutes(1) {
                let mid = lo + (hi - lo) / 2;
                if off(mid) == cur { lo = mid } else { hi = mid }
            }
            let new = off(hi);
            let kind = if new > cur { "DAYLIGHT" } else { "STANDARD" };
            let local_start = (hi + Duration::seconds(cur as i64)).naive_utc();
            let name = hi.with_timezone(&tz).format("%Z").to_string();
            blocks.push(format!(
                "BEGIN:{kind}\r\nDTSTART:{}\r\nTZOFFSETFROM:{}\r\nTZOFFSETTO:{}\r\nTZNAME:{name}\r\nEND:{kind}\r\n",
                local_start.format("%Y%m%dT%H%M%S"),
                offset(cur),
                offset(new)
            ));
            cur = new;
        }
        t = next;
    }
    if blocks.is_empty() {
        let name = start.with_timezone(&tz).format("%Z").to_string();
        blocks.push(format!(
            "BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:{o}\r\nTZOFFSETTO:{o}\r\nTZNAME:{name}\r\nEND:STANDARD\r\n",
            o = offset(cur)
        ));
    }
    s.extend(blocks);
    s.push_str("END:VTIMEZONE\r\n");
    s
}

/// The calendar of one grade: its lessons and reruns, plus the strands and programmes for all.
pub fn render(f: &Feed, grade: u8) -> Vec<u8> {
    let ch = &f.channel;
    let tz: Tz = ch.timezone.parse().unwrap_or(chrono_tz::UTC);
    let entries: Vec<_> = f
        .entries
        .iter()
        .filter(|e| e.grade == Some(grade) || e.grade.is_none())
        .collect();
    let label = entries
        .iter()
        .find_map(|e| e.grade_label.clone())
        .unwrap_or_else(|| format!("{grade}"));
    let mut s = String::new();
    for l in [
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".into(),
        "PRODID:-//airclass//timetable//ZH".into(),
        "CALSCALE:GREGORIAN".into(),
        "METHOD:PUBLISH".into(),
        format!(
            "X-WR-CALNAME:{}",
            escape(&format!("{} {label}", ch.short_name))
        ),
        format!("X-WR-TIMEZONE:{}", ch.timezone),
    ] {
        s.push_str(&fold(&l));
    }
    let dates: Vec<NaiveDate> = f.dates.iter().filter_map(|d| d.parse().ok()).collect();
    if let (Some(a), Some(b)) = (dates.first(), dates.last()) {
        s.push_str(&vtimezone(
            tz,
            *a - chrono::Days::new(1),
            *b + chrono::Days::new(2),
        ));
    }
    for e in entries {
        let mut cats: Vec<String> = [
            e.grade_label.as_deref(),
            e.subject.as_deref(),
            e.strand.as_deref(),
        ]
        .into_iter()
        .flatten()
        .map(escape)
        .collect();
        cats.retain(|c| !c.is_empty());
        let mut lines = vec![
            "BEGIN:VEVENT".to_string(),
            format!("UID:{}@{}", e.id, ch.id),
            format!("DTSTAMP:{}", utc(&e.changed)),
            format!("DTSTART;TZID={}:{}", ch.timezone, local(&e.start)),
            format!("DTEND;TZID={}:{}", ch.timezone, local(&e.end)),
            format!("SUMMARY:{}", escape(&e.title)),
        ];
        if !cats.is_empty() {
            lines.push(format!("CATEGORIES:{}", cats.join(",")));
        }
        let mut desc = format!(
            "{} · {}",
            ch.name,
            [
                e.grade_label.as_deref(),
                e.subject.as_deref(),
                e.strand.as_deref()
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ")
        );
        if let Some(n) = e.number {
            desc.push_str(&format!(" · 第{n}课"));
        }
        if e.rerun_of.is_some() {
            desc.push_str(" · 重播");
        }
        lines.push(format!("DESCRIPTION:{}", escape(&desc)));
        lines.push(format!("SEQUENCE:{}", e.sequence));
        lines.push(format!(
            "STATUS:{}",
            if e.status == Status::Cancelled {
                "CANCELLED"
            } else {
                "CONFIRMED"
            }
        ));
        lines.push("TRANSP:TRANSPARENT".into());
        lines.push("END:VEVENT".into());
        for l in lines {
            s.push_str(&fold(&l));
        }
    }
    s.push_str(&fold("END:VCALENDAR"));
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_never_splits_a_character_and_keeps_75_octets() {
        let line = format!("SUMMARY:{}", "汉字".repeat(60));
        let folded = fold(&line);
        for l in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{} octets", l.len());
        }
        // Unfolding gives the line back exactly.
        assert_eq!(folded.trim_end_matches("\r\n").replace("\r\n ", ""), line);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a;b,c\\d\ne\u{7}"), "a\\;b\\,c\\\\d\\ne");
    }

    #[test]
    fn a_zone_with_daylight_saving_gets_its_changes() {
        let v = vtimezone(
            "Europe/London".parse().unwrap(),
            NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
        );
        assert!(v.contains("BEGIN:DAYLIGHT\r\nDTSTART:20250330T010000\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0100"), "{v}");
        assert!(v.contains("BEGIN:STANDARD\r\nDTSTART:20251026T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0000"), "{v}");
        let s = vtimezone(
            "Asia/Shanghai".parse().unwrap(),
            NaiveDate::from_ymd_opt(2020, 2, 1).unwrap(),
            NaiveDate::from_ymd_opt(2020, 3, 1).unwrap(),
        );
        assert!(s.contains("TZOFFSETFROM:+0800\r\nTZOFFSETTO:+0800"), "{s}");
    }
}
