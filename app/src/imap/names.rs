//! Mailbox names and strings on the wire: modified UTF-7 (RFC 3501
//! §5.1.3), quoting or literals for command arguments, and the personal
//! namespace (RFC 2342) that decides where new folders go.
//!
//! The encoder is written here because the one crate for it (`utf7-imap`)
//! panics on a malformed name from the server (`base64::decode().unwrap()`)
//! and treats DEL as printable; names from LIST are untrusted input.

use base64::Engine as _;
use base64::alphabet::Alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

/// RFC 3501's modified base64: `,` instead of `/`, no padding.
fn mbase64() -> Option<GeneralPurpose> {
    let alphabet = Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").ok()?;
    let config = GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false);
    Some(GeneralPurpose::new(&alphabet, config))
}

/// Encodes a mailbox name as modified UTF-7: printable ASCII stays, `&`
/// becomes `&-`, everything else is UTF-16BE in modified base64 between
/// `&` and `-`.
pub fn encode_mutf7(name: &str) -> String {
    let Some(b64) = mbase64() else {
        return name.to_string();
    };
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&b64.encode(bytes));
        out.push('-');
        run.clear();
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Decodes a modified UTF-7 name; `None` when it is not valid modified
/// UTF-7 (the caller then shows the name as the server sent it).
pub fn decode_mutf7(wire: &str) -> Option<String> {
    let b64 = mbase64()?;
    let mut out = String::with_capacity(wire.len());
    let mut rest = wire;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find('-')?;
        let chunk = &after[..end];
        if chunk.is_empty() {
            out.push('&');
        } else {
            let bytes = b64.decode(chunk).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes.chunks_exact(2).map(|p| u16::from_be_bytes([p[0], p[1]])).collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Quotes a string as an IMAP quoted string (`\` and `"` escaped).
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// How an argument can travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArgRules {
    /// UTF8=ACCEPT is enabled: quoted strings may carry UTF-8 (RFC 6855).
    pub(crate) utf8: bool,
    /// LITERAL+ (any size) or LITERAL- (up to 4096 bytes): non-synchronising
    /// literals can be written inline.
    pub(crate) literal_plus: bool,
    /// Only LITERAL- was offered.
    pub(crate) literal_minus: bool,
}

/// Why an argument cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// CR, LF and NUL can travel in no IMAP string form Postern sends.
    #[error("{0:?} contains a line break or NUL, which IMAP cannot carry")]
    Unsendable(String),
    /// 8-bit text needs a literal, and the server offers no LITERAL+.
    #[error("{0:?} is not ASCII and the server offers neither UTF8=ACCEPT nor LITERAL+")]
    NeedsLiteral(String),
}

/// Writes one command argument (astring): a quoted string when it can be
/// one, else a non-synchronising literal `{n+}`. Every argument Postern
/// builds by hand goes through here.
pub(crate) fn astring(s: &str, rules: ArgRules) -> Result<String, ArgError> {
    if s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(ArgError::Unsendable(s.to_string()));
    }
    if s.is_ascii() || rules.utf8 {
        return Ok(quote(s));
    }
    let fits = rules.literal_plus || (rules.literal_minus && s.len() <= 4096);
    if !fits {
        return Err(ArgError::NeedsLiteral(s.to_string()));
    }
    Ok(format!("{{{}+}}\r\n{s}", s.len()))
}

/// The first personal namespace: its prefix and hierarchy delimiter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace {
    /// Prefix such as `INBOX.` (wire form), empty for the root.
    pub prefix: String,
    /// Hierarchy delimiter, `None` for a flat namespace.
    pub delimiter: Option<char>,
}

/// Reads the personal namespace from a `* NAMESPACE` line (RFC 2342):
/// `* NAMESPACE (("INBOX." ".")) NIL NIL`. Literals and anything
/// unexpected yield `None`; the caller then assumes the root namespace.
pub fn parse_namespace(line: &str) -> Option<Option<Namespace>> {
    let rest = line.trim_end_matches(['\r', '\n']);
    let rest = rest.strip_prefix("* ")?;
    let (word, rest) = rest.split_once(' ')?;
    if !word.eq_ignore_ascii_case("NAMESPACE") {
        return None;
    }
    let rest = rest.trim_start();
    if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("NIL") {
        return Some(None);
    }
    let rest = rest.strip_prefix("((")?;
    let (prefix, rest) = quoted(rest)?;
    let rest = rest.strip_prefix(' ')?;
    let delimiter = if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("NIL") {
        None
    } else {
        let (d, _) = quoted(rest)?;
        let mut chars = d.chars();
        let c = chars.next()?;
        if chars.next().is_some() {
            return None;
        }
        Some(c)
    };
    Some(Some(Namespace { prefix, delimiter }))
}

/// One quoted string at the start of `s`, unescaped, and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            _ => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modified_utf7_round_trips_the_issue_names() {
        assert_eq!(encode_mutf7("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode_mutf7("Spam – Quarantäne"), "Spam &IBM- Quarant&AOQ-ne");
        assert_eq!(encode_mutf7("A&B"), "A&-B");
        assert_eq!(encode_mutf7("Отправленные"), "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-");
        assert_eq!(encode_mutf7("😀"), "&2D3eAA-");
        for n in ["Entwürfe", "Spam – Quarantäne", "A&B", "plain", "a\u{7f}b", "😀 x", "日本語/子"] {
            assert_eq!(decode_mutf7(&encode_mutf7(n)).as_deref(), Some(n), "{n}");
        }
    }

    #[test]
    fn malformed_modified_utf7_from_a_server_is_refused_not_a_panic() {
        for bad in ["&", "&AB@-", "&A-", "&2D0-", "x&APw", "&////-"] {
            assert_eq!(decode_mutf7(bad), None, "{bad}");
        }
        assert_eq!(decode_mutf7("INBOX.Entw&APw-rfe").as_deref(), Some("INBOX.Entwürfe"));
        assert_eq!(decode_mutf7("R&-D").as_deref(), Some("R&D"));
    }

    #[test]
    fn arguments_are_quoted_or_sent_as_literals() {
        let plain = ArgRules {
            utf8: false,
            literal_plus: false,
            literal_minus: false,
        };
        assert_eq!(astring(r#"My "Junk" \ Box"#, plain).unwrap(), r#""My \"Junk\" \\ Box""#);
        assert_eq!(astring("", plain).unwrap(), "\"\"");
        assert!(matches!(astring("a\r\nb", plain), Err(ArgError::Unsendable(_))));
        assert!(matches!(astring("<ä@x>", plain), Err(ArgError::NeedsLiteral(_))));
        let plus = ArgRules {
            literal_plus: true,
            ..plain
        };
        assert_eq!(astring("<ä@x>", plus).unwrap(), "{6+}\r\n<ä@x>");
        let utf8 = ArgRules { utf8: true, ..plain };
        assert_eq!(astring("Entwürfe", utf8).unwrap(), "\"Entwürfe\"");
    }

    #[test]
    fn namespace_lines_are_read() {
        let ns = |p: &str, d: Option<char>| {
            Some(Some(Namespace {
                prefix: p.into(),
                delimiter: d,
            }))
        };
        assert_eq!(
            parse_namespace("* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n"),
            ns("INBOX.", Some('.'))
        );
        assert_eq!(
            parse_namespace("* NAMESPACE ((\"\" \"/\")) NIL ((\"shared/\" \"/\"))"),
            ns("", Some('/'))
        );
        assert_eq!(parse_namespace("* NAMESPACE ((\"\" NIL)) NIL NIL"), ns("", None));
        assert_eq!(parse_namespace("* NAMESPACE NIL NIL NIL"), Some(None));
        assert_eq!(
            parse_namespace("* NAMESPACE ((\"a\\\"b.\" \".\" \"X-EXT\" (\"1\"))) NIL NIL"),
            ns("a\"b.", Some('.'))
        );
        for bad in [
            "* NAMESPACE (({3}",
            "* OK hi",
            "* NAMESPACE ((\"x",
            "* NAMESPACE ((\"x\" \"ab\")) NIL NIL",
            "",
        ] {
            assert_eq!(parse_namespace(bad), None, "{bad}");
        }
    }
}
