//! The few header facts the IMAP engine records for every message, read once
//! with mail-parser (never a hand-written header parser).

use mail_parser::MessageParser;

/// Header facts of one message. Every field is optional: malformed mail is
/// recorded, never rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// First From address, lowercased.
    pub from: Option<String>,
    /// Subject.
    pub subject: Option<String>,
    /// When the message says it was received and written.
    pub dates: Dates,
}

/// When a message says it was received and written, as seconds since the
/// epoch: what its INTERNALDATE is judged against (the worker's
/// `predates_watch`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dates {
    /// The topmost Received header's date: the stamp of the server that
    /// delivered it.
    pub received: Stamp,
    /// Every Date and X-Envelope-Date header: what the sender wrote (GNU
    /// imap4d builds INTERNALDATE from these).
    pub claimed: Vec<i64>,
}

/// The topmost Received header's date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stamp {
    /// No Received header: a client appended the message.
    #[default]
    Absent,
    /// A Received header whose date cannot be read.
    Unreadable,
    /// Seconds since the epoch.
    At(i64),
}

/// Dates kept in [`Dates::claimed`]; more are a sender's noise.
const MAX_CLAIMED: usize = 64;

/// The dates of a parsed message's headers, read from the raw values.
///
/// The Received date is what follows the header's *last* `;`, as RFC 5322
/// puts it: text before it can be a sender's (Postfix's `for <rcpt>`,
/// Dovecot's `envelope-from`), and a `;` in it must not start the date.
pub(crate) fn dates(msg: &mail_parser::Message<'_>) -> Dates {
    let mut claimed = Vec::new();
    let mut received = None;
    for (name, value) in msg.headers_raw() {
        if name.eq_ignore_ascii_case("Received") && received.is_none() {
            let stamp = value.rsplit_once(';').and_then(|(_, d)| any_date(d));
            received = Some(stamp.map_or(Stamp::Unreadable, Stamp::At));
        } else if (name.eq_ignore_ascii_case("Date") || name.eq_ignore_ascii_case("X-Envelope-Date"))
            && let Some(d) = any_date(value)
        {
            claimed.push(d);
        }
    }
    claimed.sort_unstable();
    claimed.dedup();
    claimed.truncate(MAX_CLAIMED);
    Dates {
        received: received.unwrap_or_default(),
        claimed,
    }
}

/// An RFC 5322 date, or the `ctime` form mbox tools write
/// (`Mon Jan  1 00:00:00 2001`, UTC), as seconds since the epoch.
fn any_date(value: &str) -> Option<i64> {
    let v = value.trim();
    if let Some(d) = mail_parser::DateTime::parse_rfc822(v) {
        return Some(d.to_timestamp());
    }
    let squeezed = v.split_whitespace().collect::<Vec<_>>().join(" ");
    chrono::NaiveDateTime::parse_from_str(&squeezed, "%a %b %d %H:%M:%S %Y")
        .ok()
        .map(|d| d.and_utc().timestamp())
}

/// Characters of the Subject kept for the store.
pub(crate) const MAX_SUBJECT_CHARS: usize = 500;

/// Reads the envelope facts from raw bytes.
pub fn envelope(raw: &[u8]) -> Envelope {
    #[cfg(test)]
    super::prepared::count::parsed(raw);
    let Some(msg) = MessageParser::new().parse_headers(raw) else {
        return Envelope::default();
    };
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty());
    Envelope {
        message_id: msg.message_id().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
        from,
        subject: msg.subject().map(|s| s.chars().take(MAX_SUBJECT_CHARS).collect()),
        dates: dates(&msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ids_and_survives_garbage() {
        let e = envelope(b"From: \"Eve\" <EVE@Evil.Example>\r\nMessage-ID: <abc@x>\r\nSubject: hi\r\n\r\nbody");
        assert_eq!(e.from.as_deref(), Some("eve@evil.example"));
        assert_eq!(e.message_id.as_deref(), Some("abc@x"));
        assert_eq!(e.subject.as_deref(), Some("hi"));
        assert_eq!(e.dates, Dates::default());
        let dated = envelope(
            b"Received: from b by mx; Mon, 23 Nov 2026 09:00:00 +0000\r\nReceived: from a by b; Sat, 1 Jan 2000 00:00:00 +0000\r\n\
              Date: Sat, 1 Jan 2000 00:00:00 +0000\r\nX-Envelope-Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n\
              Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\nx",
        );
        assert_eq!(dated.dates.received, Stamp::At(1_795_424_400), "the topmost Received, not the last");
        assert_eq!(dated.dates.claimed, [946_684_800, 1_795_338_000], "every Date, not only the last");
        // A `;` a sender put in the recipient of the server's own line.
        let tricked = envelope(
            b"Received: from a by mx with ESMTP id X\r\n\tfor <\"v;Sat, 1 Jan 2000 00:00:00 +0000\"@d.test>; Mon, 23 Nov 2026 09:00:00 +0000 (UTC)\r\n\r\nx",
        );
        assert_eq!(tricked.dates.received, Stamp::At(1_795_424_400), "the date after the last `;`");
        let unreadable = envelope(b"Received: from a by mx; not a date\r\nReceived: from b by a; Sat, 1 Jan 2000 00:00:00 +0000\r\n\r\nx");
        assert_eq!(unreadable.dates.received, Stamp::Unreadable, "never a lower header instead");
        let mbox = envelope(b"X-Envelope-Date: Sat Jan  1 00:00:00 2000\r\n\r\nx");
        assert_eq!(
            mbox.dates,
            Dates {
                received: Stamp::Absent,
                claimed: vec![946_684_800]
            }
        );
        for junk in [&b""[..], b"\xff\xfe\x00garbage", b"From:\r\n\r\n", b"::::\n\n\n"] {
            let _ = envelope(junk);
        }
    }
}
