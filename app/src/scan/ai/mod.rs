//! The AI tier: a 3-class mail text model (ham, spam, phishing) and a DGA
//! domain model, trained by `models/train.py` and run with ONNX Runtime
//! (`--features ai`). Feature extraction and the tags live here in every
//! build, so the golden vectors and the policy table are checked either way.

pub mod features;
#[cfg(feature = "ai")]
pub mod onnx;

/// The mail model says phishing.
pub const TAG_PHISH: &str = "AI_PHISH";
/// The mail model says spam.
pub const TAG_SPAM: &str = "AI_SPAM";
/// A sender or URL domain looks machine-generated. One signal among others,
/// never enough for quarantine on its own.
pub const TAG_DGA: &str = "AI_DGA";
/// Every message: the model scores (informational).
pub const TAG_SCORES: &str = "AI_SCORES";
/// The mail model leans spam, below AI_SPAM's threshold: weighed with other
/// evidence (rules/policy.toml), never enough on its own.
pub const TAG_SPAM_LIKELY: &str = "AI_SPAM_LIKELY";
/// The mail model is all but sure the message is not ham, yet splits its
/// belief between spam and phishing so that neither class's own threshold
/// is reached (P(ham) below `Thresholds::unwanted`), and leans spam.
pub const TAG_UNWANTED: &str = "AI_UNWANTED";
/// As [`TAG_UNWANTED`], leaning phishing (P(phish) at least P(spam)): a
/// threat, not bulk mail, so it is weighed as phishing.
pub const TAG_UNWANTED_PHISH: &str = "AI_UNWANTED_PHISH";
/// The mail model leans against ham (P(ham) below
/// `Thresholds::unwanted_likely`) and no other band fired: a point that
/// only tips other evidence, such as offline Rspamd's "add header".
pub const TAG_UNWANTED_LIKELY: &str = "AI_UNWANTED_LIKELY";
/// [`TAG_PHISH`] or [`TAG_UNWANTED_PHISH`] on a message that leads
/// nowhere but its sender's own domain (`scanners::contained`): the text
/// reads like phishing, but the message offers nothing to be phished
/// with, so it warns rather than quarantines.
pub const TAG_PHISH_OWN_LINKS: &str = "AI_PHISH_OWN_LINKS";
/// Every tag the AI scanner can emit.
pub const TAGS: &[&str] = &[
    TAG_SCORES,
    TAG_PHISH,
    TAG_PHISH_OWN_LINKS,
    TAG_SPAM,
    TAG_UNWANTED,
    TAG_UNWANTED_PHISH,
    TAG_SPAM_LIKELY,
    TAG_UNWANTED_LIKELY,
    TAG_DGA,
];

/// The lower spam band's cut (P(spam) >= 0.8), chosen on TRAIN with the
/// model's out-of-fold probabilities: see AI_SPAM_LIKELY in
/// rules/policy.toml for what it caught and cost. Not in
/// models/thresholds.json, which training rewrites.
const LIKELY: f64 = 0.8;

fn likely() -> f64 {
    LIKELY
}

/// AI_UNWANTED's cut on P(ham), chosen on TRAIN with the model's
/// out-of-fold probabilities: see AI_UNWANTED in rules/policy.toml. Not in
/// models/thresholds.json, which training rewrites.
const UNWANTED: f64 = 0.05;

fn unwanted() -> f64 {
    UNWANTED
}

/// AI_UNWANTED_LIKELY's cut on P(ham), chosen on TRAIN like the others:
/// see AI_UNWANTED_LIKELY in rules/policy.toml.
const UNWANTED_LIKELY: f64 = 0.22;

fn unwanted_likely() -> f64 {
    UNWANTED_LIKELY
}

/// Thresholds chosen by training (models/thresholds.json), out of fold on the
/// TRAIN split: above the 99.9th (phish) and 99.5th (spam) percentile of
/// every ham source, old and modern (models/README.md).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
pub struct Thresholds {
    /// P(phish) at or above which AI_PHISH fires.
    pub phish: f64,
    /// P(spam) at or above which AI_SPAM fires.
    pub spam: f64,
    /// P(dga) at or above which AI_DGA fires.
    pub dga: f64,
    /// P(spam) at or above which AI_SPAM_LIKELY fires (below `spam`).
    #[serde(default = "likely")]
    pub spam_likely: f64,
    /// P(ham) below which AI_UNWANTED fires (when neither strong band does).
    #[serde(default = "unwanted")]
    pub unwanted: f64,
    /// P(ham) below which AI_UNWANTED_LIKELY fires (when no band above does).
    #[serde(default = "unwanted_likely")]
    pub unwanted_likely: f64,
}

/// The mail model's tag for P(ham), P(phish) and P(spam): phishing before
/// spam, as a message is one or the other, then "not ham" (by the class it
/// leans to), then the lower spam band, then the weakest "leans against
/// ham"; at most one tag, the one that scores most.
pub fn mail_tag(ham: f64, phish: f64, spam: f64, t: &Thresholds) -> Option<(&'static str, String)> {
    if phish >= t.phish {
        Some((TAG_PHISH, format!("P(phish)={phish:.3} >= {}", t.phish)))
    } else if spam >= t.spam {
        Some((TAG_SPAM, format!("P(spam)={spam:.3} >= {}", t.spam)))
    } else if ham < t.unwanted {
        let tag = if phish >= spam { TAG_UNWANTED_PHISH } else { TAG_UNWANTED };
        Some((tag, format!("P(ham)={ham:.4} < {} (spam {spam:.3}, phish {phish:.3})", t.unwanted)))
    } else if spam >= t.spam_likely {
        Some((TAG_SPAM_LIKELY, format!("P(spam)={spam:.3} >= {}", t.spam_likely)))
    } else if ham < t.unwanted_likely {
        Some((TAG_UNWANTED_LIKELY, format!("P(ham)={ham:.3} < {}", t.unwanted_likely)))
    } else {
        None
    }
}

/// The mail model's tags that say phishing (and may give way to
/// [`TAG_PHISH_OWN_LINKS`]).
pub fn is_phishing(tag: &str) -> bool {
    tag == TAG_PHISH || tag == TAG_UNWANTED_PHISH
}

/// The phishing tags given way to [`TAG_PHISH_OWN_LINKS`] when the message
/// only leads to `own` (its sender's registrable domain).
pub fn contained_tag(tag: (&'static str, String), own: Option<&str>) -> (&'static str, String) {
    match (tag, own) {
        ((t, detail), Some(own)) if is_phishing(t) => (TAG_PHISH_OWN_LINKS, format!("{t}: {detail}, but every link stays on {own}")),
        (tag, _) => tag,
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        serde_json::from_str(include_str!("../../../../models/thresholds.json")).unwrap_or(Thresholds {
            phish: 0.9,
            spam: 0.9,
            dga: 0.9,
            spam_likely: LIKELY,
            unwanted: UNWANTED,
            unwanted_likely: UNWANTED_LIKELY,
        })
    }
}

/// Popular domains the DGA model never judges (the Moz top 500, MIT).
pub const GREYLIST: &str = include_str!("../../../../models/dga_greylist.txt");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_phishing_tags_give_way_when_the_mail_leads_home() {
        let own = Some("example.com");
        let t = |tag: &'static str, own| contained_tag((tag, "d".to_string()), own).0;
        assert_eq!(t(TAG_PHISH, own), TAG_PHISH_OWN_LINKS);
        assert_eq!(t(TAG_UNWANTED_PHISH, own), TAG_PHISH_OWN_LINKS);
        assert_eq!(t(TAG_PHISH, None), TAG_PHISH);
        for other in [TAG_SPAM, TAG_UNWANTED, TAG_SPAM_LIKELY, TAG_UNWANTED_LIKELY] {
            assert_eq!(t(other, own), other, "spam is spam wherever it links");
        }
        let (_, detail) = contained_tag((TAG_PHISH, "P(phish)=0.990 >= 0.96".into()), own);
        assert_eq!(detail, "AI_PHISH: P(phish)=0.990 >= 0.96, but every link stays on example.com");
    }

    /// P(ham) is what softmax leaves: the three add up to one.
    fn tag(phish: f64, spam: f64) -> Option<&'static str> {
        mail_tag(1.0 - phish - spam, phish, spam, &Thresholds::default()).map(|(t, _)| t)
    }

    #[test]
    fn the_shipped_thresholds_keep_the_lower_spam_band_below_the_strong_one() {
        let t = Thresholds::default();
        assert_eq!(t.spam_likely, LIKELY, "models/thresholds.json leaves it out");
        assert!(t.spam_likely < t.spam, "{t:?}");
    }

    #[test]
    fn one_tag_per_message_strong_band_first() {
        assert_eq!(tag(0.99, 0.0), Some(TAG_PHISH));
        assert_eq!(tag(0.0, 0.99), Some(TAG_SPAM));
        assert_eq!(tag(0.99, 0.85), Some(TAG_PHISH), "a strong phishing call beats a likely spam");
        assert_eq!(tag(0.1, 0.83), Some(TAG_SPAM_LIKELY));
        let (_, detail) = mail_tag(0.05, 0.1, 0.85, &Thresholds::default()).expect("a tag");
        assert_eq!(detail, "P(spam)=0.850 >= 0.8");
    }

    #[test]
    fn mail_that_is_surely_not_ham_but_neither_class_alone_is_unwanted() {
        // TRAIN out-of-fold: phish split 0.55 phish / 0.44 spam, P(ham)
        // 0.01: unwanted, leaning phishing.
        assert_eq!(tag(0.55, 0.44), Some(TAG_UNWANTED_PHISH));
        assert_eq!(tag(0.44, 0.55), Some(TAG_UNWANTED));
        assert_eq!(tag(0.49, 0.49), Some(TAG_UNWANTED_PHISH), "a tie is the threat");
        // It outranks the lower spam band (it scores more), not the strong ones.
        assert_eq!(tag(0.1, 0.89), Some(TAG_UNWANTED));
        assert_eq!(tag(0.98, 0.019), Some(TAG_PHISH));
        assert_eq!(tag(0.05, 0.945), Some(TAG_SPAM));
        let (_, detail) = mail_tag(0.01, 0.55, 0.44, &Thresholds::default()).expect("a tag");
        assert_eq!(detail, "P(ham)=0.0100 < 0.05 (spam 0.440, phish 0.550)");
    }

    #[test]
    fn mail_the_model_leans_against_gets_the_weakest_band_last() {
        assert_eq!(tag(0.5, 0.35), Some(TAG_UNWANTED_LIKELY));
        assert_eq!(tag(0.3, 0.6), Some(TAG_UNWANTED_LIKELY));
        // Every stronger band wins.
        assert_eq!(tag(0.1, 0.83), Some(TAG_SPAM_LIKELY));
        assert_eq!(tag(0.6, 0.395), Some(TAG_UNWANTED_PHISH));
        let (_, detail) = mail_tag(0.15, 0.5, 0.35, &Thresholds::default()).expect("a tag");
        assert_eq!(detail, "P(ham)=0.150 < 0.22");
    }

    #[test]
    fn the_shipped_unwanted_cut_is_low() {
        // Above a few percent it would mark mail the model merely doubts
        // (TRAIN newsletters from P(ham) 0.07 up; rules/policy.toml).
        let t = Thresholds::default();
        assert_eq!(t.unwanted, UNWANTED, "models/thresholds.json leaves it out");
        assert!(t.unwanted <= 0.05, "{t:?}");
        assert!(t.unwanted < t.unwanted_likely && t.unwanted_likely < 0.5, "{t:?}");
    }

    #[test]
    fn mail_the_model_reads_as_ham_gets_no_tag() {
        // A newsletter the model is unsure about (TRAIN out-of-fold median
        // for newsletters-unspy: P(ham) 0.54; no lower phishing band, see
        // rules/policy.toml) stays untagged, as does ordinary list mail.
        assert_eq!(tag(0.45, 0.01), None);
        assert_eq!(tag(0.001, 0.002), None);
        assert_eq!(tag(0.0, 0.74), None);
        // Doubt between classes with real ham mass is no tag either.
        assert_eq!(tag(0.4, 0.35), None);
    }
}
