//! Form and JSON input in one type: an HTML form sends every field as text,
//! while an API client sends what `GET` returned (a port as a number, the
//! folders as a list, a switch as a boolean). Both must be accepted, or the
//! API's own output cannot be sent back to it.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Loose {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<Loose>),
}

impl Loose {
    fn into_text(self) -> String {
        match self {
            Loose::Text(s) => s,
            Loose::Int(n) => n.to_string(),
            Loose::Float(n) => n.to_string(),
            Loose::Bool(b) => b.to_string(),
            Loose::List(items) => items.into_iter().map(Loose::into_text).collect::<Vec<_>>().join(","),
        }
    }
}

/// Text, a number, a boolean or a list of those (joined with commas), as
/// text; `null` is `None`.
pub(crate) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Loose>::deserialize(d)?.map(Loose::into_text))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::text")]
        v: Option<String>,
    }

    fn v(json: &str) -> Option<String> {
        serde_json::from_str::<T>(json).unwrap().v
    }

    #[test]
    fn issue_22_numbers_lists_and_booleans_read_as_the_form_would_send_them() {
        assert_eq!(v(r#"{"v": 993}"#).as_deref(), Some("993"));
        assert_eq!(v(r#"{"v": "993"}"#).as_deref(), Some("993"));
        assert_eq!(v(r#"{"v": ["INBOX", "Work"]}"#).as_deref(), Some("INBOX,Work"));
        assert_eq!(v(r#"{"v": true}"#).as_deref(), Some("true"));
        assert_eq!(v(r#"{"v": null}"#), None);
        assert_eq!(v("{}"), None);
        assert!(serde_json::from_str::<T>(r#"{"v": {"a": 1}}"#).is_err());
    }
}
