//! Two known server responses that break the IMAP grammar, put right before
//! async-imap parses them (its parser fails the whole connection on them).
//!
//! GNU Mailutils imap4d answers EXPUNGE with `* 3 EXPUNGED` and reports
//! flags as `* 3 FETCH FLAGS (\Seen)`, without the parentheses around the
//! attribute list. Before this, either ended the connection in the middle of
//! an action: a move whose EXPUNGE had gone through was retried and found
//! "already there", and a delete cut off that way could not tell that its own
//! EXPUNGE had removed the message.
//!
//! Only a whole untagged line at the start of a response is rewritten, and
//! only into the one standard response it stands for; the literal guard
//! decides where responses start, so nothing inside a literal (a message
//! body) is ever touched. Both forms are invalid IMAP, so no standard
//! server's response changes.

use super::guard::{LiteralGuard, LiteralRefused};

/// A held line longer than this is handed on as it is: neither quirk is
/// anywhere near it (flag lists are short; keywords are atoms).
const HOLD_CAP: usize = 1024;

/// The server's bytes in, the bytes async-imap may parse out: each quirk put
/// right, and every output byte through the literal guard.
#[derive(Debug)]
pub(super) struct ResponseReader {
    guard: LiteralGuard,
    /// An untagged line held back until it is known whether it is a quirk.
    hold: Vec<u8>,
    holding: bool,
}

impl ResponseReader {
    pub(super) fn new(max_literal: u64) -> Self {
        Self {
            guard: LiteralGuard::new(max_literal),
            hold: Vec::new(),
            holding: false,
        }
    }

    /// Reads `raw` (server bytes in stream order) and appends what may be
    /// parsed to `out`. On a refused literal, `out` has everything before
    /// the announcement's line end, and nothing more may be read.
    pub(super) fn push(&mut self, raw: &[u8], out: &mut Vec<u8>) -> Result<(), LiteralRefused> {
        let mut i = 0;
        while i < raw.len() {
            if self.holding {
                let rest = &raw[i..];
                let end = rest.iter().position(|b| *b == b'\n').map(|p| p + 1);
                let take = end.unwrap_or(rest.len());
                self.hold.extend_from_slice(&rest[..take]);
                i += take;
                if end.is_some() {
                    self.release(true, out)?;
                } else if !could_be_quirk(&self.hold) {
                    self.release(false, out)?;
                }
                continue;
            }
            if self.guard.at_response_start() && raw[i] == b'*' {
                self.holding = true;
                continue;
            }
            let n = self.guard.inspect_response(&raw[i..]).map_err(|(keep, r)| {
                out.extend_from_slice(&raw[i..i + keep]);
                r
            })?;
            out.extend_from_slice(&raw[i..i + n]);
            i += n;
        }
        Ok(())
    }

    /// The server closed the connection: a partly held line is handed on as
    /// it is, for the parser to judge.
    pub(super) fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), LiteralRefused> {
        if self.holding {
            self.release(false, out)?;
        }
        Ok(())
    }

    fn release(&mut self, whole: bool, out: &mut Vec<u8>) -> Result<(), LiteralRefused> {
        self.holding = false;
        let line = std::mem::take(&mut self.hold);
        let fixed = if whole { fix_line(&line) } else { None };
        let bytes = fixed.as_deref().unwrap_or(&line);
        self.guard.inspect(bytes).map_err(|(keep, r)| {
            out.extend_from_slice(&bytes[..keep]);
            r
        })?;
        out.extend_from_slice(bytes);
        Ok(())
    }
}

/// `* ` and the message number, then what follows it.
fn after_number(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"* ")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    rest[digits..].strip_prefix(b" ")
}

/// Whether a line still being read (no line end yet) may turn out to be one
/// of the quirks; as soon as it cannot, it is handed on.
fn could_be_quirk(held: &[u8]) -> bool {
    if held.len() > HOLD_CAP {
        return false;
    }
    let prefix_of = |whole: &[u8], part: &[u8]| whole.starts_with(part) || part.starts_with(whole);
    // `* ` and digits, possibly not all of them read yet.
    let star = b"* ";
    if held.len() <= star.len() {
        return star.starts_with(held);
    }
    let Some(rest) = held.strip_prefix(star) else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == rest.len() {
        return true;
    }
    let Some(tail) = after_number(held) else {
        return false;
    };
    prefix_of(b"EXPUNGED\r", tail) || prefix_of(b"FETCH FLAGS (", tail)
}

/// The standard response a whole quirk line stands for, or `None` when the
/// line is not one.
fn fix_line(line: &[u8]) -> Option<Vec<u8>> {
    let (body, eol): (&[u8], &[u8]) = match line.strip_suffix(b"\r\n") {
        Some(b) => (b, b"\r\n"),
        None => (line.strip_suffix(b"\n")?, b"\n"),
    };
    let rest = after_number(body)?;
    let number = &body[..body.len() - rest.len()];
    let fixed: Vec<u8> = if rest == b"EXPUNGED" {
        [number, b"EXPUNGE", eol].concat()
    } else {
        let flags = rest.strip_prefix(b"FETCH ")?;
        let list = flags.strip_prefix(b"FLAGS (")?.strip_suffix(b")")?;
        // One flat list of flags: no nesting, no literal, no quoting.
        if list.iter().any(|b| matches!(b, b'(' | b')' | b'{' | b'"' | b'\r' | b'\n')) {
            return None;
        }
        [number, b"FETCH (", flags, b")", eol].concat()
    };
    Some(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_imap::imap_proto::{AttributeValue, Response};

    fn run(data: &[u8], step: usize) -> (Vec<u8>, Option<LiteralRefused>) {
        let mut r = ResponseReader::new(1000);
        let mut out = Vec::new();
        for piece in data.chunks(step.max(1)) {
            if let Err(e) = r.push(piece, &mut out) {
                return (out, Some(e));
            }
        }
        r.finish(&mut out).unwrap();
        (out, None)
    }

    fn every_split(data: &[u8]) -> Vec<Vec<u8>> {
        [1, 2, 3, 5, 11, data.len()]
            .iter()
            .map(|s| {
                let (out, refused) = run(data, *s);
                assert_eq!(refused, None);
                out
            })
            .collect()
    }

    #[test]
    fn imap4d_expunged_becomes_expunge_and_parses() {
        let data = b"* 2 EXPUNGED\r\n* 6 EXISTS\r\na7 OK EXPUNGE Completed\r\n";
        for out in every_split(data) {
            assert_eq!(out, b"* 2 EXPUNGE\r\n* 6 EXISTS\r\na7 OK EXPUNGE Completed\r\n");
            let (_, parsed) = Response::parse(&out).unwrap();
            assert_eq!(parsed, Response::Expunge(2));
        }
    }

    #[test]
    fn imap4d_bare_fetch_flags_gets_its_parentheses_and_parses() {
        let data = b"* 3 FETCH FLAGS (\\Flagged \\Seen)\r\n";
        for out in every_split(data) {
            assert_eq!(out, b"* 3 FETCH (FLAGS (\\Flagged \\Seen))\r\n");
            let (_, parsed) = Response::parse(&out).unwrap();
            let Response::Fetch(3, attrs) = parsed else { panic!("{parsed:?}") };
            assert!(matches!(&attrs[0], AttributeValue::Flags(f) if f.len() == 2));
        }
        assert_eq!(fix_line(b"* 3 FETCH FLAGS ()\r\n").unwrap(), b"* 3 FETCH (FLAGS ())\r\n");
    }

    #[test]
    fn standard_responses_pass_unchanged() {
        let data: &[u8] = b"* OK IMAP4rev1\r\n* 2 EXPUNGE\r\n* 1 FETCH (FLAGS (\\Seen) UID 4)\r\n\
            * 4 FETCH (UID 9 BODY[] {5}\r\nhello)\r\n+ idling\r\n* 3 EXISTS\r\na1 OK [EXPUNGEISSUED] x\r\n";
        for out in every_split(data) {
            assert_eq!(out, data);
        }
    }

    #[test]
    fn a_quirk_inside_a_literal_is_message_text_and_untouched() {
        let body = b"* 2 EXPUNGED\r\n* 3 FETCH FLAGS (\\Seen)\r\n";
        let mut data = format!("* 1 FETCH (UID 1 BODY[] {{{}}}\r\n", body.len()).into_bytes();
        data.extend_from_slice(body);
        data.extend_from_slice(b")\r\n* 4 EXPUNGED\r\n");
        for out in every_split(&data) {
            let mut want = data[..data.len() - b"* 4 EXPUNGED\r\n".len()].to_vec();
            want.extend_from_slice(b"* 4 EXPUNGE\r\n");
            assert_eq!(out, want);
        }
    }

    #[test]
    fn near_misses_are_left_alone() {
        for line in [
            &b"* 2 EXPUNGED now\r\n"[..],
            b"a1 2 EXPUNGED\r\n",
            b"* x EXPUNGED\r\n",
            b"* 3 FETCH FLAGS (\\Seen) UID 4\r\n",
            b"* 3 FETCH FLAGS ((x))\r\n",
            b"* 3 FETCH FLAGS (x {5}\r\n",
        ] {
            assert_eq!(fix_line(line), None, "{}", String::from_utf8_lossy(line));
        }
        // A long untagged line is handed on without waiting for its end.
        let mut r = ResponseReader::new(1000);
        let mut out = Vec::new();
        r.push(b"* SEARCH 1 2 3", &mut out).unwrap();
        assert_eq!(out, b"* SEARCH 1 2 3");
        let mut out = Vec::new();
        let mut r = ResponseReader::new(1000);
        r.push(b"* 12 EXPUN", &mut out).unwrap();
        assert!(out.is_empty(), "held while it may be the quirk");
        r.finish(&mut out).unwrap();
        assert_eq!(out, b"* 12 EXPUN", "a cut-off line is handed on as it is");
    }

    /// Random streams of responses, quirks and literals (whose contents
    /// look like quirks too), cut at random: the output is always the
    /// expected rewrite, whatever the cuts.
    #[test]
    fn random_streams_rewrite_the_same_at_any_cut() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let lines: [(&[u8], &[u8]); 6] = [
            (b"* 3 EXPUNGED\r\n", b"* 3 EXPUNGE\r\n"),
            (b"* 12 FETCH FLAGS (\\Seen $x)\r\n", b"* 12 FETCH (FLAGS (\\Seen $x))\r\n"),
            (b"* 4 EXISTS\r\n", b"* 4 EXISTS\r\n"),
            (b"* OK [UIDNEXT 9] x {3}\r\n", b"* OK [UIDNEXT 9] x {3}\r\n"),
            (b"+ idling\r\n", b"+ idling\r\n"),
            (b"a9 OK done\r\n", b"a9 OK done\r\n"),
        ];
        for _ in 0..300 {
            let (mut input, mut want) = (Vec::new(), Vec::new());
            for _ in 0..next(12) + 1 {
                if next(4) == 0 {
                    let mut body = Vec::new();
                    for _ in 0..next(4) {
                        body.extend_from_slice(lines[next(lines.len())].0);
                    }
                    body.extend(std::iter::repeat_n(b'x', next(40)));
                    let head = format!("* {} FETCH (UID 7 BODY[] {{{}}}\r\n", next(9) + 1, body.len());
                    for out in [&mut input, &mut want] {
                        out.extend_from_slice(head.as_bytes());
                        out.extend_from_slice(&body);
                        out.extend_from_slice(b")\r\n");
                    }
                } else {
                    let (raw, fixed) = lines[next(lines.len())];
                    input.extend_from_slice(raw);
                    want.extend_from_slice(fixed);
                }
            }
            let mut r = ResponseReader::new(1 << 20);
            let mut out = Vec::new();
            let mut i = 0;
            while i < input.len() {
                let n = (next(17) + 1).min(input.len() - i);
                r.push(&input[i..i + n], &mut out).unwrap();
                i += n;
            }
            r.finish(&mut out).unwrap();
            assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&want));
        }
    }

    #[test]
    fn the_literal_guard_still_refuses_behind_the_reader() {
        let data = b"* OK hi\r\n* 1 FETCH (UID 1 BODY[] {500000000}\r\nxxxx";
        for step in [1, 4, data.len()] {
            let (out, refused) = run(data, step);
            assert_eq!(refused.map(|r| r.announced), Some(500_000_000));
            assert!(out.ends_with(b"{500000000}\r"), "{}", String::from_utf8_lossy(&out));
        }
    }
}
