//! Feature extraction for the AI tier, identical to `models/features.py`
//! (the models were trained on exactly these vectors). `models/golden.json`
//! pins both sides: input → indices (→ scores, with `--features ai`).

/// Buckets of the mail text model.
pub const MAIL_DIM: usize = 1 << 18;
/// Buckets of the domain model.
pub const DGA_DIM: usize = 1 << 16;
const MAX_TOKENS: usize = 3000;
const MAX_TEXT_CHARS: usize = 20_000;

/// 32-bit FNV-1a.
pub fn fnv1a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811C_9DC5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Lowercased runs of letters, 2..=24 characters; digits and punctuation
/// separate tokens, so dates and numbers never become features. Links
/// written out in the text are skipped ([`url_end`]).
pub fn tokens(text: &str) -> Vec<String> {
    tokens_up_to(text, MAX_TOKENS)
}

/// The first `max` of [`tokens`]: enough to tell a stub from a message
/// without reading all of it.
pub fn tokens_up_to(text: &str, max: usize) -> Vec<String> {
    let head: String = text.chars().take(MAX_TEXT_CHARS).collect();
    let chars: Vec<char> = head.to_lowercase().chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut len = 0usize;
    let flush = |cur: &mut String, len: &mut usize, out: &mut Vec<String>| {
        if (2..=24).contains(len) && out.len() < max {
            out.push(std::mem::take(cur));
        }
        cur.clear();
        *len = 0;
    };
    let mut i = 0;
    while i < chars.len() {
        let ch = chars[i];
        if len == 0 && (ch == 'h' || ch == 'w') {
            let j = url_end(&chars, i);
            if j > i {
                i = j;
                continue;
            }
        }
        if ch.is_alphabetic() {
            cur.push(ch);
            len += 1;
        } else if len > 0 {
            flush(&mut cur, &mut len, &mut out);
            if out.len() >= max {
                return out;
            }
        }
        i += 1;
    }
    if len > 0 {
        flush(&mut cur, &mut len, &mut out);
    }
    out
}

/// Where a link written out in the text, starting at `i`, ends (`i` when
/// none starts there): at the first character outside printable ASCII or
/// a delimiter. A link's host and path are tracking codes, hashes and a
/// sender's own names, noise from which a text model learns who sent its
/// corpus instead of what the mail says; the link checks read links.
fn url_end(chars: &[char], i: usize) -> usize {
    const PREFIXES: [&str; 3] = ["http://", "https://", "www."];
    if i > 0 && (chars[i - 1].is_alphabetic() || chars[i - 1].is_ascii_digit()) {
        return i;
    }
    let rest = &chars[i..];
    let starts = PREFIXES
        .iter()
        .any(|p| p.chars().count() <= rest.len() && p.chars().zip(rest).all(|(a, b)| a == *b));
    if !starts {
        return i;
    }
    let mut j = i;
    while j < chars.len() && matches!(chars[j], '!'..='~') && !"<>\"'()[]{}|\\^`".contains(chars[j]) {
        j += 1;
    }
    j
}

/// Sorted, distinct feature indices of a message's subject and body text.
pub fn mail_indices(subject: &str, body: &str) -> Vec<u32> {
    let toks = tokens(&format!("{subject}\n{body}"));
    let mut feats = Vec::with_capacity(toks.len() * 2);
    for (i, t) in toks.iter().enumerate() {
        feats.push(fnv1a(format!("w{t}").as_bytes()) % MAIL_DIM as u32);
        if i > 0 {
            feats.push(fnv1a(format!("b{}_{t}", toks[i - 1]).as_bytes()) % MAIL_DIM as u32);
        }
    }
    feats.sort_unstable();
    feats.dedup();
    feats
}

/// The dense, L2-normalised input vector for the mail model.
pub fn mail_dense(indices: &[u32]) -> Vec<f32> {
    let mut v = vec![0f32; MAIL_DIM];
    if !indices.is_empty() {
        let x = 1.0 / (indices.len() as f64).sqrt();
        for i in indices {
            v[*i as usize] = x as f32;
        }
    }
    v
}

/// Character 2-, 3- and 4-grams of `^label$`, counted and L2-normalised.
pub fn dga_features(label: &str) -> Vec<(u32, f64)> {
    let chars: Vec<char> = format!("^{}$", label.to_lowercase()).chars().collect();
    let mut counts: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
    for n in 2..=4 {
        for w in chars.windows(n) {
            let gram: String = w.iter().collect();
            *counts.entry(fnv1a(format!("n{gram}").as_bytes()) % DGA_DIM as u32).or_default() += 1;
        }
    }
    let norm = counts.values().map(|c| f64::from(*c * *c)).sum::<f64>().sqrt().max(1.0);
    counts.into_iter().map(|(i, c)| (i, f64::from(c) / norm)).collect()
}

/// The dense input vector for the domain model.
pub fn dga_dense(features: &[(u32, f64)]) -> Vec<f32> {
    let mut v = vec![0f32; DGA_DIM];
    for (i, x) in features {
        v[*i as usize] = *x as f32;
    }
    v
}

/// The label the domain model judges: the registrable domain without its
/// public suffix (`example` for `mail.example.co.uk`).
pub fn registrable_label(domain: &str) -> Option<String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let reg = psl::domain_str(&d)?;
    let suffix = psl::suffix_str(reg)?;
    let label = reg.strip_suffix(suffix)?.trim_end_matches('.');
    (!label.is_empty() && !label.contains('.')).then(|| label.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    pub(crate) struct Golden {
        pub(crate) mail: Vec<GoldenMail>,
        pub(crate) dga: Vec<GoldenDga>,
    }

    #[derive(serde::Deserialize)]
    pub(crate) struct GoldenMail {
        pub(crate) subject: String,
        pub(crate) body: String,
        pub(crate) indices: Vec<u32>,
        #[allow(dead_code)]
        pub(crate) scores: std::collections::BTreeMap<String, f64>,
    }

    #[derive(serde::Deserialize)]
    pub(crate) struct GoldenDga {
        pub(crate) label: String,
        pub(crate) features: Vec<(u32, f64)>,
        #[allow(dead_code)]
        pub(crate) score: f64,
    }

    pub(crate) fn golden() -> Golden {
        serde_json::from_str(include_str!("../../../../models/golden.json")).unwrap()
    }

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a(b""), 0x811C_9DC5);
        assert_eq!(fnv1a(b"a"), 0xE40C_292C);
        assert_eq!(fnv1a(b"foobar"), 0xBF9C_F968);
    }

    #[test]
    fn tokens_skip_digits_and_short_runs() {
        assert_eq!(tokens("Pay $500 NOW, re: invoice#2026-11"), vec!["pay", "now", "re", "invoice"]);
        assert_eq!(tokens("Grüße ΑΘΉΝΑ"), vec!["grüße", "αθήνα"]);
    }

    #[test]
    fn tokens_skip_links_written_out() {
        assert_eq!(
            tokens("Visit https://x.com/a?b=c1d2 now, or WWW.Foo.com/x (see http://y.z) xhttps://a.b end"),
            vec!["visit", "now", "or", "see", "xhttps", "end"]
        );
        assert_eq!(tokens("hello https://"), vec!["hello"]);
        assert_eq!(tokens("5https://c.d wwwhat http:/no"), vec!["https", "wwwhat", "http", "no"]);
        assert_eq!(tokens_up_to("one two three four", 2), vec!["one", "two"]);
    }

    #[test]
    fn golden_vectors_match_python() {
        let g = golden();
        assert!(!g.mail.is_empty() && !g.dga.is_empty());
        for m in &g.mail {
            assert_eq!(mail_indices(&m.subject, &m.body), m.indices, "mail indices for {:?}", m.subject);
        }
        for d in &g.dga {
            let got = dga_features(&d.label);
            assert_eq!(got.len(), d.features.len(), "{}", d.label);
            for ((gi, gv), (wi, wv)) in got.iter().zip(&d.features) {
                assert_eq!(gi, wi, "{}", d.label);
                assert!((gv - wv).abs() < 1e-6, "{}: {gv} vs {wv}", d.label);
            }
        }
    }

    #[test]
    fn registrable_labels() {
        assert_eq!(registrable_label("mail.example.co.uk").as_deref(), Some("example"));
        assert_eq!(registrable_label("xjw8sdkf.com").as_deref(), Some("xjw8sdkf"));
        assert_eq!(registrable_label("com"), None);
    }
}
