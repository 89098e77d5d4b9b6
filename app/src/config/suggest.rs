//! "Did you mean" for names an operator typed: unknown `config.yaml` keys
//! and `POSTERN_*` variables that Postern does not read. A typo such as
//! `POSTERN_TRHESHOLD_FLAG` would otherwise be ignored silently and the
//! default used, which is the worst way to find out.

/// The closest of `known` to `typed`, if it is close enough to be a typo:
/// one edit (a swapped, dropped or extra letter, as in `hots`), or a
/// normalised Damerau-Levenshtein similarity of at least 0.8 for longer
/// names. An unrelated name gets no guess.
pub fn closest<'a>(typed: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    known
        .into_iter()
        .filter_map(|k| {
            let k_low = k.to_ascii_lowercase();
            let edits = strsim::damerau_levenshtein(&typed, &k_low);
            let score = strsim::normalized_damerau_levenshtein(&typed, &k_low);
            (edits == 1 && k_low.len() >= 3 || score >= 0.8).then_some((score, k))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// The hint for an unknown key: "did you mean `x`?" when one is close,
/// else the list of allowed keys.
pub fn unknown_key_hint(typed: &str, allowed: &[&str]) -> String {
    match closest(typed, allowed.iter().copied()) {
        Some(k) => format!("did you mean `{k}`? (allowed keys: {})", allowed.join(", ")),
        None => format!("allowed keys: {}", allowed.join(", ")),
    }
}

/// A serde error as a problem message: serde already starts most of its
/// messages with "invalid value:", "invalid type:" or "invalid length:",
/// so those are kept as they are and only the others get the prefix (a
/// problem never reads "invalid value: invalid value:").
pub fn invalid_value(serde_message: &str) -> String {
    if serde_message.starts_with("invalid ") {
        serde_message.to_string()
    } else {
        format!("invalid value: {serde_message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_gets_the_name_it_was_meant_to_be() {
        let known = ["POSTERN_THRESHOLD_FLAG", "POSTERN_THRESHOLD_QUARANTINE", "POSTERN_LISTEN"];
        assert_eq!(closest("POSTERN_TRHESHOLD_FLAG", known), Some("POSTERN_THRESHOLD_FLAG"));
        assert_eq!(closest("POSTERN_LISTN", known), Some("POSTERN_LISTEN"));
        // Something unrelated gets no guess rather than a wrong one.
        assert_eq!(closest("POSTERN_WHATEVER_ELSE_ENTIRELY", known), None);
    }

    #[test]
    fn unknown_key_hint_names_the_close_key_and_still_lists_all() {
        let h = unknown_key_hint("hots", &["host", "port", "user"]);
        assert!(h.starts_with("did you mean `host`?"), "{h}");
        assert!(h.contains("port"), "{h}");
        assert_eq!(unknown_key_hint("zzzzzz", &["host", "port"]), "allowed keys: host, port");
    }

    #[test]
    fn invalid_value_is_never_doubled() {
        assert_eq!(
            invalid_value("invalid value: string \"x\", expected u16"),
            "invalid value: string \"x\", expected u16"
        );
        assert_eq!(
            invalid_value("invalid type: map, expected a string"),
            "invalid type: map, expected a string"
        );
        assert_eq!(invalid_value("unknown variant `x`"), "invalid value: unknown variant `x`");
    }
}
