//! The scanners, one file each, and the one table that builds the enabled
//! set from configuration.

pub mod attachments;
pub mod clamav;
pub mod html;
pub mod lists;
pub mod rspamd;
pub mod spoof;
pub mod structure;
pub mod yara;

use super::{FailureMode, Scanner};
use crate::config::{PolicyConfig, ScanSettings};
use std::sync::Arc;

/// Builds every enabled scanner. Network scanners are enabled only when
/// their endpoint is configured; each one's fail mode comes from settings.
pub fn build(s: &ScanSettings, lists: &PolicyConfig) -> Result<Vec<Arc<dyn Scanner>>, super::ScanError> {
    let mode = |critical: bool| if critical { FailureMode::Closed } else { FailureMode::Open };
    let mut v: Vec<Arc<dyn Scanner>> = vec![
        Arc::new(structure::StructureScanner),
        Arc::new(lists::ListScanner::new(lists.clone())),
        Arc::new(attachments::AttachmentScanner),
        Arc::new(html::HtmlScanner),
        Arc::new(spoof::SpoofScanner::new(
            spoof::DEFAULT_PROTECTED
                .lines()
                .chain(s.protected_domains.iter().map(String::as_str)),
        )),
    ];
    if let Some(url) = &s.rspamd_url {
        v.push(Arc::new(rspamd::RspamdScanner::new(
            url,
            s.rspamd_timeout,
            mode(s.rspamd_critical),
        )?));
    } else {
        tracing::warn!("Rspamd is not configured (POSTERN_RSPAMD_URL); that scanner is disabled");
    }
    if let Some(addr) = &s.clamd_addr {
        v.push(Arc::new(clamav::ClamavScanner::new(
            addr,
            s.clamd_timeout,
            mode(s.clamd_critical),
            s.clamd_stream_max,
        )));
    } else {
        tracing::warn!("ClamAV is not configured (POSTERN_CLAMD_ADDR); that scanner is disabled");
    }
    if let Some(dir) = &s.yara_dir {
        let y = Arc::new(yara::YaraScanner::load(dir, s.yara_timeout, mode(s.yara_critical))?);
        tracing::info!(dir = %dir.display(), rules = y.health().rules, "YARA rules loaded");
        y.watch(s.yara_reload);
        v.push(y);
    } else {
        tracing::warn!("no YARA rules folder (POSTERN_YARA_DIR); that scanner is disabled");
    }
    Ok(v)
}
