//! One parse per message, shared by everyone who reads it (issue 21): the
//! worker takes the envelope (Message-ID, From, Subject) for the store and
//! its lookups from the same [`ScanInput`] the scanners read and the
//! observables come from, and the raw bytes stay one reference-counted
//! buffer from the IMAP fetch to the EML copy.

use super::{Envelope, ScanInput};
use std::sync::Arc;

/// A message parsed once, ready to be decided on.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The raw bytes, the same buffer the fetch produced.
    pub raw: Arc<Vec<u8>>,
    /// Envelope facts for the store and the lookups.
    pub envelope: Envelope,
    /// The full parse, when the decider made one (the pipeline does; test
    /// doubles that only look at raw bytes do not).
    pub input: Option<Arc<ScanInput>>,
}

impl Prepared {
    /// Only the headers read: for deciders that parse nothing themselves.
    pub fn headers_only(raw: Arc<Vec<u8>>) -> Prepared {
        Prepared {
            envelope: super::envelope(&raw),
            raw,
            input: None,
        }
    }

    /// From a full parse. The envelope is read from it; only when the
    /// parse gave up (unparseable, or abandoned past its budget) are the
    /// headers read on their own, so the store still gets its facts.
    pub fn from_input(input: ScanInput) -> Prepared {
        let raw = input.raw.clone();
        let parsed = !input.unparseable && input.limits.time.is_empty();
        let envelope = if parsed {
            Envelope {
                message_id: input
                    .message_id
                    .as_deref()
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                from: input.from_addr.clone().filter(|s| !s.is_empty()),
                subject: input
                    .subject
                    .as_deref()
                    .map(|s| s.chars().take(super::headers::MAX_SUBJECT_CHARS).collect()),
                dates: input.dates.clone(),
            }
        } else {
            super::envelope(&raw)
        };
        Prepared {
            raw,
            envelope,
            input: Some(Arc::new(input)),
        }
    }
}

/// Counts parses per message in tests, so a test can prove a message was
/// parsed once (issue 21) without timing anything. Keyed by the message's
/// bytes, so tests running in parallel do not see each other's parses.
#[cfg(test)]
pub(crate) mod count {
    use std::collections::HashMap;
    use std::sync::Mutex;

    static PARSES: Mutex<Option<HashMap<Vec<u8>, usize>>> = Mutex::new(None);

    /// One parse (full or headers-only) of `raw`.
    pub(crate) fn parsed(raw: &[u8]) {
        if let Ok(mut g) = PARSES.lock() {
            *g.get_or_insert_with(HashMap::new).entry(raw.to_vec()).or_default() += 1;
        }
    }

    /// Parses of `raw` so far.
    pub(crate) fn parses(raw: &[u8]) -> usize {
        PARSES
            .lock()
            .ok()
            .and_then(|g| g.as_ref().and_then(|m| m.get(raw).copied()))
            .unwrap_or(0)
    }
}
