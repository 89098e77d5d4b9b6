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
    /// delivered it, which a sender cannot put above.
    pub received: Option<i64>,
    /// Every Date and X-Envelope-Date header: what the sender wrote (GNU
    /// imap4d builds INTERNALDATE from these).
    pub claimed: Vec<i64>,
}

/// Headers kept in [`Dates::claimed`].
const MAX_CLAIMED: usize = 8;

/// The dates of a parsed message's headers.
pub(crate) fn dates(msg: &mail_parser::Message<'_>) -> Dates {
    let mut claimed: Vec<i64> = msg
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Date") || n.eq_ignore_ascii_case("X-Envelope-Date"))
        .filter_map(|(_, v)| mail_parser::DateTime::parse_rfc822(v.trim()))
        .map(|d| d.to_timestamp())
        .take(MAX_CLAIMED)
        .collect();
    claimed.sort_unstable();
    claimed.dedup();
    Dates {
        received: msg.received_all().next().and_then(|r| r.date()).map(|d| d.to_timestamp()),
        claimed,
    }
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
        assert_eq!(dated.dates.received, Some(1_795_424_400), "the topmost Received, not the last");
        assert_eq!(dated.dates.claimed, [946_684_800, 1_795_338_000], "every Date, not only the last");
        for junk in [&b""[..], b"\xff\xfe\x00garbage", b"From:\r\n\r\n", b"::::\n\n\n"] {
            let _ = envelope(junk);
        }
    }
}
