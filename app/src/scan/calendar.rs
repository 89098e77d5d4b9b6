//! Calendar invitations (`text/calendar`, `.ics`): calendar clients show an
//! event's description, location and attachments with live links, so a
//! phishing invitation can carry its link there while the mail body says
//! nothing (issue 14). RFC 5545 folds lines longer than 75 octets, which
//! splits a URL across lines, and escapes commas and semicolons in text; the
//! file is unfolded and unescaped with the `icalendar` crate before its URLs
//! are looked for, the same way as in any other text.

use std::collections::BTreeSet;

/// Bytes of one calendar read; an invitation is a few KiB.
pub const MAX_BYTES: usize = 256 * 1024;
/// Calendars read per message.
pub const MAX_FILES: usize = 4;
/// Links kept per message from its calendars.
pub const MAX_LINKS: usize = 200;

/// Whether a part is a calendar: declared one, or named like one.
pub fn is_calendar(declared: &str, name: Option<&str>) -> bool {
    const TYPES: &[&str] = &["text/calendar", "application/ics", "text/x-vcalendar"];
    const EXTS: &[&str] = &["ics", "ical", "icalendar", "ifb", "vcs"];
    let named = name
        .and_then(|n| n.rsplit_once('.'))
        .is_some_and(|(_, ext)| EXTS.iter().any(|e| ext.trim().eq_ignore_ascii_case(e)));
    named || TYPES.iter().any(|t| declared.eq_ignore_ascii_case(t))
}

/// What one calendar holds that the checks weigh.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CalendarScan {
    /// Its URLs, normalised (at most [`MAX_LINKS`]).
    pub links: BTreeSet<String>,
    /// Why it was not read whole.
    pub limit: Option<String>,
}

/// The URLs of a calendar file, within [`MAX_BYTES`].
pub fn read(data: &[u8]) -> CalendarScan {
    let mut out = CalendarScan::default();
    let mut end = data.len().min(MAX_BYTES);
    if end < data.len() {
        out.limit = Some(format!("calendar over {MAX_BYTES} bytes; only the start was read"));
        // Cut where a line ends, so no URL is read half.
        if let Some(nl) = data[..end].iter().rposition(|&b| b == b'\n') {
            end = nl;
        }
    }
    let text = String::from_utf8_lossy(&data[..end]);
    let unfolded = icalendar::parser::unfold(&text);
    let unescaped = icalendar::parser::ParseString::from(unfolded).unescape_text();
    super::urls::from_text(unescaped.as_str(), &mut out.links);
    while out.links.len() > MAX_LINKS {
        out.links.pop_last();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An invitation as calendar clients write it: CRLF, folded at 75
    /// octets, commas escaped.
    const INVITE: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Fixture//EN\r\nMETHOD:REQUEST\r\n\
BEGIN:VEVENT\r\nUID:1@fixture.test\r\nDTSTART:20261201T090000Z\r\nSUMMARY:Payroll review\r\n\
DESCRIPTION:Hello\\, please review and sign the payroll update before the m\r\n eeting: https://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi.ip\r\n fs.dweb.link/sign.html?id=77\\, thank you.\r\n\
LOCATION:https://meet.example.org/j/123\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    #[test]
    fn folded_and_escaped_links_are_read_whole() {
        let scan = read(INVITE.as_bytes());
        let links: Vec<&str> = scan.links.iter().map(String::as_str).collect();
        assert_eq!(
            links,
            vec![
                "https://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi.ipfs.dweb.link/sign.html?id=77",
                "https://meet.example.org/j/123",
            ]
        );
        assert_eq!(scan.limit, None);
        // Folded with LF only, or a tab, reads the same.
        assert_eq!(read(INVITE.replace("\r\n", "\n").as_bytes()).links, scan.links);
        assert_eq!(read(INVITE.replace("\r\n ", "\r\n\t").as_bytes()).links, scan.links);
    }

    #[test]
    fn calendars_are_told_by_type_or_name() {
        assert!(is_calendar("text/calendar", None));
        assert!(is_calendar("TEXT/CALENDAR", Some("invite.txt")));
        assert!(is_calendar("application/octet-stream", Some("Appointment.ICS")));
        assert!(is_calendar("application/ics", None));
        assert!(!is_calendar("text/plain", Some("notes.txt")));
        assert!(!is_calendar("application/octet-stream", Some("ics")));
    }

    #[test]
    fn junk_and_oversized_calendars_are_bounded_not_errors() {
        assert!(read(b"\xff\xfe not a calendar \x00").links.is_empty());
        assert!(read(b"BEGIN:").links.is_empty());
        let many: String = (0..3 * MAX_LINKS).map(|i| format!("URL:https://l{i}.example/\r\n")).collect();
        assert_eq!(read(many.as_bytes()).links.len(), MAX_LINKS);
        let big = format!(
            "{INVITE}{}",
            "X-PAD:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".repeat(5000)
        );
        let scan = read(big.as_bytes());
        assert!(scan.limit.is_some());
        assert_eq!(scan.links.len(), 2, "the start is still read");
    }
}
