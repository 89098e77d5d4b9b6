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
    /// The Date header, as seconds since the epoch.
    pub date: Option<i64>,
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
        date: msg.date().map(|d| d.to_timestamp()),
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
        assert_eq!(e.date, None);
        let dated = envelope(b"Date: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\nx");
        assert_eq!(dated.date, Some(1_795_338_000));
        for junk in [&b""[..], b"\xff\xfe\x00garbage", b"From:\r\n\r\n", b"::::\n\n\n"] {
            let _ = envelope(junk);
        }
    }
}
