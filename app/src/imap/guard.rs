//! A size guard on IMAP literals (issue 18, item 2).
//!
//! async-imap sizes its read buffer by what a literal announcement `{n}`
//! claims, up to 512 MiB, before a single byte of the literal has arrived.
//! The guard watches the bytes coming from the server and refuses a literal
//! whose announced size would take one response past the configured message
//! limit, before the announcement's line end reaches the parser: nothing is
//! ever allocated by a claim above the limit.
//!
//! Telling a literal from text that merely ends in `{n}` (`* OK text {5}`) is
//! the parser's call, so the guard asks the same parser: it keeps the current
//! response with every literal's content elided (announced as `{0}`), and at
//! each line ending in `{n}` parses that copy. A parser that wants more input
//! after `{0}` is inside a literal; one that completes was reading text. The
//! guard and async-imap therefore always agree on where literals are, so a
//! server cannot hide an announcement inside what the guard took for a
//! literal, and a message body containing `{999999999}` is never mistaken
//! for an announcement.

use async_imap::imap_proto::Response;

/// Longest stretch of response text (literals excluded) the guard keeps to
/// consult the parser. Real responses are a few hundred bytes around their
/// literals; a longer one that ends in a literal announcement is refused
/// rather than guessed about.
const SHADOW_CAP: usize = 256 * 1024;

/// Bytes kept past the cap: `{`, 20 digits (u64), `}` and CRLF, with room.
const TAIL: usize = 32;

/// The server announced a literal that would take a response past the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralRefused {
    /// Bytes the response's literals would add up to (saturating).
    pub announced: u64,
    /// The configured limit.
    pub limit: u64,
}

impl std::fmt::Display for LiteralRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "server announced a {}-byte literal, over the {}-byte message limit; refused before reading it",
            self.announced, self.limit
        )
    }
}

impl std::error::Error for LiteralRefused {}

/// Per-connection state of the guard.
#[derive(Debug)]
pub(super) struct LiteralGuard {
    limit: u64,
    /// Literal content still to pass through unexamined.
    skip: u64,
    /// The current response, literal contents elided.
    shadow: Vec<u8>,
    /// The current response outgrew [`SHADOW_CAP`]; only `tail` is kept.
    overflow: bool,
    /// The last bytes seen after an overflow, enough to spot `{n}\r\n`.
    tail: Vec<u8>,
    /// Literal bytes of the current response so far.
    literals: u64,
}

impl LiteralGuard {
    /// A guard allowing at most `limit` literal bytes per response.
    pub(super) fn new(limit: u64) -> Self {
        Self {
            limit,
            skip: 0,
            shadow: Vec::new(),
            overflow: false,
            tail: Vec::new(),
            literals: 0,
        }
    }

    /// Examines bytes just read, in stream order. On refusal, returns how
    /// many leading bytes may still be handed on: all those before the line
    /// end that completes the offending announcement.
    pub(super) fn inspect(&mut self, data: &[u8]) -> Result<(), (usize, LiteralRefused)> {
        let mut i = 0;
        while i < data.len() {
            i += self.inspect_response(&data[i..]).map_err(|(keep, r)| (i + keep, r))?;
        }
        Ok(())
    }

    /// Whether the next byte starts a new response (no literal or partial
    /// line pending).
    pub(super) fn at_response_start(&self) -> bool {
        self.skip == 0 && self.shadow.is_empty() && !self.overflow
    }

    /// Like [`LiteralGuard::inspect`], but stops just after a line end that
    /// completes a response; returns how many bytes it examined.
    pub(super) fn inspect_response(&mut self, data: &[u8]) -> Result<usize, (usize, LiteralRefused)> {
        let mut i = 0;
        while i < data.len() {
            if self.skip > 0 {
                let n = self.skip.min((data.len() - i) as u64);
                self.skip -= n;
                i += n as usize;
                continue;
            }
            let b = data[i];
            if !self.overflow && self.shadow.len() < SHADOW_CAP {
                self.shadow.push(b);
            } else {
                if !self.overflow {
                    // Seed the tail so an announcement straddling the cap is seen whole.
                    self.overflow = true;
                    self.tail = self.shadow[self.shadow.len().saturating_sub(TAIL)..].to_vec();
                }
                // Trimmed in halves: amortised O(1) per byte on long lines.
                if self.tail.len() >= 2 * TAIL {
                    self.tail.drain(..TAIL);
                }
                self.tail.push(b);
            }
            i += 1;
            if b == b'\n' {
                self.line_end().map_err(|r| (i - 1, r))?;
                if self.at_response_start() {
                    break;
                }
            }
        }
        Ok(i)
    }

    /// A line ended: either the response is complete, or a literal follows.
    fn line_end(&mut self) -> Result<(), LiteralRefused> {
        let seen = if self.overflow { &self.tail } else { &self.shadow };
        let Some((brace, n)) = announcement(seen) else {
            self.reset();
            return Ok(());
        };
        if self.overflow {
            // Too long to consult the parser: never guess.
            return Err(LiteralRefused {
                announced: n,
                limit: self.limit,
            });
        }
        self.shadow.truncate(brace);
        self.shadow.extend_from_slice(b"{0}\r\n");
        // Complete: the braces were text (`* OK ... {5}`) and the response
        // ended. Incomplete: the parser wants the literal. An error means the
        // parser will fail on the real bytes too; counting it as a literal is
        // the cautious reading either way.
        let text = Response::parse(&self.shadow).is_ok();
        if text {
            self.reset();
            return Ok(());
        }
        let total = self.literals.saturating_add(n);
        if total > self.limit {
            return Err(LiteralRefused {
                announced: total,
                limit: self.limit,
            });
        }
        self.literals = total;
        self.skip = n;
        Ok(())
    }

    fn reset(&mut self) {
        self.shadow.clear();
        self.overflow = false;
        self.tail.clear();
        self.literals = 0;
    }
}

/// If `line` ends with `{digits}\r\n`, the offset of `{` and the number
/// (saturating: a number too long for u64 is simply too large).
fn announcement(line: &[u8]) -> Option<(usize, u64)> {
    let body = line.strip_suffix(b"}\r\n")?;
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let brace = body.len().checked_sub(digits + 1)?;
    if body.get(brace) != Some(&b'{') {
        return None;
    }
    let n = body[brace + 1..]
        .iter()
        .fold(0u64, |acc, d| acc.saturating_mul(10).saturating_add(u64::from(d - b'0')));
    Some((brace, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 1000;

    /// Feeds `data` in pieces of `step` bytes; returns the bytes handed on
    /// and the refusal, if any.
    fn feed(data: &[u8], step: usize) -> (Vec<u8>, Option<LiteralRefused>) {
        let mut g = LiteralGuard::new(LIMIT);
        let mut out = Vec::new();
        for piece in data.chunks(step.max(1)) {
            match g.inspect(piece) {
                Ok(()) => out.extend_from_slice(piece),
                Err((keep, r)) => {
                    out.extend_from_slice(&piece[..keep]);
                    return (out, Some(r));
                }
            }
        }
        (out, None)
    }

    fn every_split(data: &[u8]) -> Vec<(Vec<u8>, Option<LiteralRefused>)> {
        [1, 2, 3, 7, 64, data.len()].iter().map(|s| feed(data, *s)).collect()
    }

    #[test]
    fn literal_over_the_limit_is_refused_before_its_line_end() {
        let data = b"* OK hi\r\n* 1 FETCH (UID 1 BODY[] {500000000}\r\nxxxx";
        for (out, r) in every_split(data) {
            assert_eq!(
                r,
                Some(LiteralRefused {
                    announced: 500_000_000,
                    limit: LIMIT
                })
            );
            // The parser never sees the announcement completed.
            assert!(out.ends_with(b"{500000000}\r"), "{:?}", String::from_utf8_lossy(&out));
        }
    }

    #[test]
    fn literals_within_the_limit_pass_and_their_content_is_not_inspected() {
        // A message body that itself looks like a huge announcement.
        let body = b"line\r\n{999999999}\r\nmore";
        let mut data = format!("* 1 FETCH (UID 1 BODY[] {{{}}}\r\n", body.len()).into_bytes();
        data.extend_from_slice(body);
        data.extend_from_slice(b")\r\n* 2 FETCH (UID 2 BODY[] {3}\r\nabc)\r\na1 OK done\r\n");
        for (out, r) in every_split(&data) {
            assert_eq!(r, None);
            assert_eq!(out, data);
        }
    }

    #[test]
    fn literals_of_one_response_add_up() {
        let data = b"* 1 FETCH (UID 1 BODY[HEADER] {600}\r\n";
        let mut data = data.to_vec();
        data.extend(std::iter::repeat_n(b'h', 600));
        data.extend_from_slice(b" BODY[] {600}\r\n");
        let (_, r) = feed(&data, 100);
        assert_eq!(r.map(|r| r.announced), Some(1200));
        // Two responses of 600 each are fine.
        let mut two = b"* 1 FETCH (UID 1 BODY[] {600}\r\n".to_vec();
        two.extend(std::iter::repeat_n(b'x', 600));
        two.extend_from_slice(b")\r\n* 2 FETCH (UID 2 BODY[] {600}\r\n");
        two.extend(std::iter::repeat_n(b'y', 600));
        two.extend_from_slice(b")\r\n");
        assert_eq!(feed(&two, 64).1, None);
    }

    #[test]
    fn text_ending_in_braces_is_not_a_literal() {
        // Were `{40}` taken for a literal, the next 40 bytes (holding the
        // real announcement) would be skipped and the huge literal missed.
        let data = b"* OK greetings {40}\r\n* 1 FETCH (BODY[] {5000})\r\n";
        let data2 = b"* OK greetings {40}\r\n* 1 FETCH (BODY[] {5000}\r\n";
        assert_eq!(feed(data, 5).1, None, "no literal at all in the first");
        assert_eq!(feed(data2, 5).1.map(|r| r.announced), Some(5000));
    }

    #[test]
    fn a_literal_in_a_response_code_is_still_a_literal() {
        // BADCHARSET takes astrings, which may be literals.
        let data = b"* NO [BADCHARSET ({5000}\r\n";
        assert_eq!(feed(data, 3).1.map(|r| r.announced), Some(5000));
    }

    #[test]
    fn absurd_numbers_saturate_and_are_refused() {
        let data = b"* 1 FETCH (BODY[] {99999999999999999999999999}\r\n";
        assert_eq!(feed(data, 4).1.map(|r| r.announced), Some(u64::MAX));
    }

    #[test]
    fn an_overlong_response_ending_in_an_announcement_is_refused() {
        let mut data = b"* 1 FETCH (FLAGS (".to_vec();
        data.extend(std::iter::repeat_n(b'a', SHADOW_CAP + 10));
        data.extend_from_slice(b") BODY[] {5}\r\n");
        assert!(feed(&data, 4096).1.is_some());
        // An overlong line that simply ends is fine, and the guard resets.
        let mut ok = b"* SEARCH".to_vec();
        ok.extend(std::iter::repeat_n(b' ', SHADOW_CAP + 10));
        ok.extend_from_slice(b"\r\n* 1 FETCH (UID 1 BODY[] {3}\r\nabc)\r\n");
        assert_eq!(feed(&ok, 4096).1, None);
    }

    #[test]
    fn announcement_needs_digits_between_braces() {
        assert_eq!(announcement(b"x {12}\r\n"), Some((2, 12)));
        assert_eq!(announcement(b"{}\r\n"), None);
        assert_eq!(announcement(b"12}\r\n"), None);
        assert_eq!(announcement(b"x {12}\n"), None);
        assert_eq!(announcement(b"x {1a}\r\n"), None);
    }
}
