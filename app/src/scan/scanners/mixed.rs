//! Words that mix the Latin alphabet with look-alike letters of another
//! (Cyrillic, Greek, Armenian, Cherokee) in the Subject or the sender's
//! display name. "Actiоn Requiгed" with a Cyrillic о and г reads as English
//! to the eye and as no known word to a filter: a lure dodging the checks
//! that read words. Text in those scripts writes each word in one alphabet,
//! so ham does not do this; Han or Kana run together with Latin
//! ("iPhone手机") is not counted.

use crate::scan::{Finding, ScanInput};
use unicode_script::{Script, UnicodeScript};

/// A word of the Subject or display name mixes Latin with look-alikes.
pub const TAG_MIXED_SCRIPT: &str = "MIXED_SCRIPT_WORD";

/// The scripts whose letters pass for one another.
fn lookalike_script(c: char) -> Option<Script> {
    match c.script() {
        s @ (Script::Latin | Script::Cyrillic | Script::Greek | Script::Armenian | Script::Cherokee) => Some(s),
        _ => None,
    }
}

/// The first word of `text` written in more than one of those scripts.
pub fn mixed_word(text: &str) -> Option<&str> {
    text.split(|c: char| !c.is_alphabetic()).find(|w| {
        let mut first = None;
        w.chars().filter_map(lookalike_script).any(|s| *first.get_or_insert(s) != s)
    })
}

pub(super) fn check(input: &ScanInput) -> Option<Finding> {
    let fields = [("Subject", input.subject.as_deref()), ("display name", input.from_name.as_deref())];
    fields.into_iter().find_map(|(field, text)| {
        let word = mixed_word(text?)?;
        Some(Finding::new(
            TAG_MIXED_SCRIPT,
            format!("the {field} word \"{word}\" mixes Latin with look-alike letters of another alphabet"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin_words_with_cyrillic_or_greek_letters_are_mixed() {
        assert_eq!(mixed_word("Actiоn Requiгed: unusual activity"), Some("Actiоn"));
        assert_eq!(mixed_word("Your MetaМask wallet"), Some("MetaМask"));
        assert_eq!(mixed_word("Yοur account"), Some("Yοur"), "Greek omicron");
    }

    #[test]
    fn words_in_one_alphabet_each_are_not() {
        for ok in [
            "Ваш заказ отправлен",
            "Η παραγγελία σας στάλθηκε",
            "Ihre Bestellung wurde versandt: Größe 39",
            "iPhone手机 订单已发货",
            "ご注文ありがとうございます Amazon",
            "Meeting re: Δ-report, 5 µg",
            "Заказ №123 from Example Shop",
        ] {
            assert_eq!(mixed_word(ok), None, "{ok}");
        }
    }
}
