//! A fuzzy hash of a message's readable body (issue 17, campaigns): TLSH
//! through the `tlsh2` crate. Two copies of one phishing text sent to many
//! mailboxes differ in names, links and tracking tokens; their TLSH digests
//! stay close, so campaign clustering can join them where no URL or
//! attachment is shared exactly.

use super::input::ScanInput;

/// Body bytes hashed at most: enough for any phishing text, and it bounds
/// the work on a huge body.
pub const MAX_FUZZY_BYTES: usize = 256 * 1024;

/// The TLSH digest (`T1…`, upper-case hex) of the message's readable text:
/// the plain-text body, else the visible text of its HTML. Whitespace is
/// collapsed and letters lower-cased, so re-wrapping or a changed case does
/// not move the digest. `None` when there is too little text for TLSH (it
/// needs 50 bytes with some variety).
pub fn body_tlsh(input: &ScanInput) -> Option<String> {
    let text: std::borrow::Cow<'_, str> = if input.text.trim().is_empty() {
        // Markup is the sender's template, not the message: two different
        // newsletters share it, so only the text of the (bounded) trees counts.
        input.html_text.join(" ").into()
    } else {
        input.text.as_str().into()
    };
    let mut norm = String::with_capacity(text.len().min(MAX_FUZZY_BYTES));
    for word in text.split_whitespace() {
        if norm.len() + word.len() + 1 > MAX_FUZZY_BYTES {
            break;
        }
        if !norm.is_empty() {
            norm.push(' ');
        }
        // Most words are ASCII: lower-cased in place, with no String each
        // (issue 21); the rest as `str` does it (final sigma included).
        if word.is_ascii() {
            let at = norm.len();
            norm.push_str(word);
            norm[at..].make_ascii_lowercase();
        } else {
            norm.push_str(&word.to_lowercase());
        }
    }
    let t = tlsh2::TlshDefaultBuilder::build_from(norm.as_bytes())?;
    String::from_utf8(t.hash().to_vec()).ok()
}

/// TLSH distance between two stored digests (any case); `None` when either
/// is not a digest. 0 is identical; below about 30 is the same text with
/// small edits (TLSH's authors' guidance).
pub fn distance(a: &str, b: &str) -> Option<i32> {
    let parse = |s: &str| s.to_ascii_uppercase().parse::<tlsh2::TlshDefault>().ok();
    Some(parse(a)?.diff(&parse(b)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &str) -> ScanInput {
        ScanInput {
            text: text.into(),
            ..Default::default()
        }
    }

    const PHISH: &str = "Dear customer, your mailbox storage is full and incoming messages are being held. \
        Verify your account within 24 hours at the link below or your mailbox will be suspended. \
        Thank you for your cooperation, the IT Help Desk team.";

    #[test]
    fn the_same_text_with_small_edits_is_close_and_another_text_is_far() {
        let a = body_tlsh(&input(PHISH)).unwrap();
        let edited = PHISH.replace("Dear customer", "Dear Alice").replace("24 hours", "48 hours");
        let b = body_tlsh(&input(&edited.to_uppercase())).unwrap();
        let other = body_tlsh(&input(
            "Our autumn collection has arrived: wool coats, linen shirts and leather boots. \
             Members get free shipping on every order this week, and our stores stay open late on Thursday.",
        ))
        .unwrap();
        assert!(distance(&a, &b).unwrap() < 30, "{}", distance(&a, &b).unwrap());
        assert!(distance(&a, &other).unwrap() > 100, "{}", distance(&a, &other).unwrap());
        assert_eq!(distance(&a, &a.to_ascii_lowercase()), Some(0), "stored digests are lower-cased");
    }

    #[test]
    fn html_counts_only_its_visible_text_and_tiny_bodies_have_no_digest() {
        let raw = format!(
            "From: a@example.com\r\nSubject: s\r\nContent-Type: text/html\r\n\r\n\
             <html><body><table><tr><td><p>{PHISH}</p></td></tr></table></body></html>\r\n"
        );
        let html = ScanInput::parse(raw.into_bytes(), &crate::scan::InputOptions::default());
        assert!(html.text.trim().is_empty(), "an HTML-only message has no plain text");
        assert_eq!(body_tlsh(&html), body_tlsh(&input(PHISH)));
        assert_eq!(body_tlsh(&input("hi")), None);
        assert_eq!(distance("nonsense", "T1"), None);
    }

    #[test]
    fn issue_21_digests_are_those_of_the_whole_text_lower_cased() {
        // Stored digests must not move: ASCII words are lower-cased in
        // place, others by `str::to_lowercase` (Greek final sigma, dotted İ).
        let text = format!("{PHISH} ΟΔΥΣΣΕΥΣ Λογαριασμός ΚΛΕΙΣΤΟΣ İSTANBUL Straße ÉTÉ\tMiXeD\n  CASE");
        let norm = text.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ");
        let expected = tlsh2::TlshDefaultBuilder::build_from(norm.as_bytes()).map(|t| String::from_utf8(t.hash().to_vec()).unwrap());
        assert!(expected.is_some());
        assert_eq!(body_tlsh(&input(&text)), expected);
    }
}
