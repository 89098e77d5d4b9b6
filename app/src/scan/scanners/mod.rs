//! The scanners, one file each, and the one table that builds the enabled
//! set from configuration.

pub(crate) mod active;
#[cfg(feature = "ai")]
pub mod ai;
pub mod attachments;
pub mod brands;
pub mod clamav;
pub mod consistent;
pub mod contained;
pub mod crypto;
pub(crate) mod hidden;
pub mod html;
mod links;
pub mod lists;
pub mod lures;
pub mod mixed;
pub mod rspamd;
pub mod rspamd_map;
mod smuggle;
pub mod spoof;
pub mod structure;
pub mod yara;

use super::{FailureMode, Scanner};
use crate::config::{PolicyConfig, ScanSettings};
use std::sync::Arc;

/// A scanner that is not running, and why (shown on the health page).
pub type Disabled = (String, String);

/// The enabled scanners, and the ones left out.
pub type Built = (Vec<Arc<dyn Scanner>>, Vec<Disabled>);

/// The built-in scanners that need no network and no rules folder: the
/// start of every pipeline, and what tests, fuzzing and benchmarks scan with.
pub fn local(lists: &PolicyConfig, protected_domains: &[String]) -> Vec<Arc<dyn Scanner>> {
    vec![
        Arc::new(structure::StructureScanner),
        Arc::new(lists::ListScanner::new(lists.clone())),
        Arc::new(attachments::AttachmentScanner),
        Arc::new(html::HtmlScanner),
        Arc::new(spoof::SpoofScanner::new(
            spoof::DEFAULT_PROTECTED.lines().chain(protected_domains.iter().map(String::as_str)),
        )),
    ]
}

/// Builds every enabled scanner. Network scanners are enabled only when
/// their endpoint is configured; each one's fail mode comes from settings.
/// Scanners left out are returned with the reason.
pub fn build(s: &ScanSettings, lists: &PolicyConfig) -> Result<Built, super::ScanError> {
    let mut disabled: Vec<Disabled> = Vec::new();
    let mut off = |id: &str, why: &str| {
        tracing::warn!(scanner = id, "{why}; that scanner is disabled");
        disabled.push((id.to_string(), why.to_string()));
    };
    let mode = |critical: bool| if critical { FailureMode::Closed } else { FailureMode::Open };
    let mut v = local(lists, &s.protected_domains);
    if let Some(url) = &s.rspamd_url {
        v.push(Arc::new(rspamd::RspamdScanner::new(
            url,
            s.rspamd_timeout,
            mode(s.rspamd_critical),
        )?));
    } else {
        off("rspamd", "not configured (POSTERN_RSPAMD_URL)");
    }
    if let Some(addr) = &s.clamd_addr {
        v.push(Arc::new(clamav::ClamavScanner::new(
            addr,
            s.clamd_timeout,
            mode(s.clamd_critical),
            s.clamd_stream_max,
        )));
    } else {
        off("clamav", "not configured (POSTERN_CLAMD_ADDR)");
    }
    if let Some(dir) = &s.yara_dir {
        let y = Arc::new(yara::YaraScanner::load(dir, s.yara_timeout, mode(s.yara_critical))?);
        tracing::info!(dir = %dir.display(), rules = y.health().rules, "YARA rules loaded");
        y.watch(s.yara_reload);
        v.push(y);
    } else {
        off("yara", "no rules folder (POSTERN_YARA_DIR)");
    }
    #[cfg(feature = "ai")]
    match load_ai(s) {
        Ok(a) => v.push(a),
        Err(why) => off("ai", &why),
    }
    Ok((v, disabled))
}

/// The AI tier, when its runtime and models are present.
#[cfg(feature = "ai")]
fn load_ai(s: &ScanSettings) -> Result<Arc<dyn Scanner>, String> {
    let lib = crate::scan::ai::onnx::runtime_path(s.ai.runtime.as_deref())
        .ok_or("no ONNX Runtime library (POSTERN_AI_RUNTIME or ORT_DYLIB_PATH)")?;
    let models = s.ai.models.clone().ok_or("no models folder (POSTERN_AI_MODELS)")?;
    let d = crate::scan::ai::Thresholds::default();
    let th = crate::scan::ai::Thresholds {
        phish: s.ai.phish_threshold.unwrap_or(d.phish),
        spam: s.ai.spam_threshold.unwrap_or(d.spam),
        dga: s.ai.dga_threshold.unwrap_or(d.dga),
        ..d
    };
    let a = ai::AiScanner::load(&lib, &models, th, &s.protected_domains, crate::scan::registry::AI.timeout)?;
    tracing::info!(runtime = %lib.display(), models = %models.display(), ?th, "AI tier loaded");
    Ok(Arc::new(a))
}
