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
/// Every tag the AI scanner can emit.
pub const TAGS: &[&str] = &[TAG_SCORES, TAG_PHISH, TAG_SPAM, TAG_DGA];

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
}

impl Default for Thresholds {
    fn default() -> Self {
        serde_json::from_str(include_str!("../../../../models/thresholds.json")).unwrap_or(Thresholds {
            phish: 0.9,
            spam: 0.9,
            dga: 0.9,
        })
    }
}

/// Popular domains the DGA model never judges (the Moz top 500, MIT).
pub const GREYLIST: &str = include_str!("../../../../models/dga_greylist.txt");
