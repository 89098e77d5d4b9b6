//! YARA-X over the raw message, every decoded attachment and every HTML
//! body. Rules are compiled from a folder (`*.yar`, `*.yara`, one namespace
//! per file) and hot-reloaded: a changed folder is recompiled off the scan
//! path and swapped in atomically; a set that fails to compile leaves the
//! old one active and is reported in the log and on health.

use crate::domain::Finding;
use crate::scan::{FailureMode, ScanError, ScanInput, Scanner};
use futures::future::BoxFuture;
use std::borrow::Cow;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

/// A rule with `severity = "high"` (or "critical") matched.
pub const TAG_HIGH: &str = "YARA_MATCH_HIGH";
/// A rule with `severity = "medium"` (or no severity) matched.
pub const TAG_MEDIUM: &str = "YARA_MATCH_MEDIUM";
/// A rule with `severity = "low"` matched.
pub const TAG_LOW: &str = "YARA_MATCH_LOW";
/// Every tag this scanner can emit.
pub const TAGS: &[&str] = &[TAG_HIGH, TAG_MEDIUM, TAG_LOW];

type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

type ScannerOf<'r> = yara_x::Scanner<'r>;

self_cell::self_cell!(
    /// A YARA-X scanner together with the rule set it borrows.
    struct CachedScanner {
        owner: Arc<yara_x::Rules>,
        #[not_covariant]
        dependent: ScannerOf,
    }
);

thread_local! {
    /// This thread's scanner for the active rule set. Building one sets up
    /// a WebAssembly instance, which cost more than scanning a typical
    /// message (issue 21); a reload is noticed by pointer and replaces it.
    static SCANNER: RefCell<Option<CachedScanner>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's scanner for `rules`.
fn with_scanner<T>(rules: &Arc<yara_x::Rules>, f: impl FnOnce(&mut yara_x::Scanner<'_>) -> T) -> T {
    SCANNER.with(|slot| {
        let mut slot = slot.borrow_mut();
        let mut cached = match slot.take() {
            Some(c) if Arc::ptr_eq(c.borrow_owner(), rules) => c,
            _ => CachedScanner::new(rules.clone(), |r| {
                let mut s = yara_x::Scanner::new(r);
                // Every rule only asks whether a pattern occurs: stop at
                // the first match of each.
                s.fast_scan(true);
                s
            }),
        };
        let out = cached.with_dependent_mut(|_, s| f(s));
        *slot = Some(cached);
        out
    })
}

/// Health of the loaded rule set.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct YaraHealth {
    /// Rules in the active set.
    pub rules: usize,
    /// Files the active set came from.
    pub files: usize,
    /// Why the last reload was refused, if it was.
    pub last_error: Option<String>,
    /// Successful reloads since start.
    pub reloads: u64,
}

/// YARA-X scanner.
pub struct YaraScanner {
    dir: PathBuf,
    rules: RwLock<Arc<yara_x::Rules>>,
    state: Mutex<(Fingerprint, YaraHealth)>,
    timeout: Duration,
    mode: FailureMode,
}

impl std::fmt::Debug for YaraScanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraScanner").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn rule_files(dir: &Path) -> std::io::Result<Fingerprint> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "yar" || x == "yara") {
            let m = std::fs::metadata(&p)?;
            v.push((p, m.modified().ok(), m.len()));
        }
    }
    v.sort();
    Ok(v)
}

/// Compiles every rule file; any error fails the whole set.
fn compile(files: &Fingerprint) -> Result<yara_x::Rules, String> {
    let mut c = yara_x::Compiler::new();
    for (path, _, _) in files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let ns = path
            .file_stem()
            .map(|s| s.to_string_lossy().replace(|ch: char| !ch.is_ascii_alphanumeric(), "_"))
            .unwrap_or_default();
        c.new_namespace(&ns);
        let origin = path.display().to_string();
        c.add_source(yara_x::SourceCode::from(text.as_str()).with_origin(origin))
            .map_err(|e| e.to_string())?;
    }
    Ok(c.build())
}

impl YaraScanner {
    /// Compiles the folder; fails if the initial set does not compile.
    pub fn load(dir: &Path, timeout: Duration, mode: FailureMode) -> Result<Self, ScanError> {
        let files = rule_files(dir).map_err(|e| ScanError::scanner("yara", format!("{}: {e}", dir.display())))?;
        let rules = compile(&files).map_err(|e| ScanError::scanner("yara", e))?;
        let health = YaraHealth {
            rules: rules.iter().len(),
            files: files.len(),
            last_error: None,
            reloads: 0,
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            rules: RwLock::new(Arc::new(rules)),
            state: Mutex::new((files, health)),
            timeout,
            mode,
        })
    }

    /// Recompiles if the folder changed. Returns true when a new set was swapped in.
    pub fn reload_if_changed(&self) -> bool {
        let files = match rule_files(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                self.note_error(format!("{}: {e}", self.dir.display()));
                return false;
            }
        };
        let unchanged = self.state.lock().map(|s| s.0 == files).unwrap_or(true);
        if unchanged {
            return false;
        }
        match compile(&files) {
            Ok(rules) => {
                let n = rules.iter().len();
                if let Ok(mut r) = self.rules.write() {
                    *r = Arc::new(rules);
                }
                if let Ok(mut s) = self.state.lock() {
                    s.1 = YaraHealth {
                        rules: n,
                        files: files.len(),
                        last_error: None,
                        reloads: s.1.reloads + 1,
                    };
                    s.0 = files;
                }
                tracing::info!(rules = n, dir = %self.dir.display(), "YARA rules reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, dir = %self.dir.display(), "YARA rules failed to compile; keeping the previous set");
                // Remember the broken fingerprint so it is not recompiled every tick.
                if let Ok(mut s) = self.state.lock() {
                    s.0 = files;
                }
                self.note_error(e);
                false
            }
        }
    }

    fn note_error(&self, e: String) {
        if let Ok(mut s) = self.state.lock() {
            s.1.last_error = Some(e);
        }
    }

    /// Current health.
    pub fn health(&self) -> YaraHealth {
        self.state.lock().map(|s| s.1.clone()).unwrap_or_default()
    }

    /// Polls the folder every `every` until the scanner is dropped.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        rt.spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(me) = weak.upgrade() else { break };
                // Compiling is CPU work: keep it off the async workers.
                let _ = tokio::task::spawn_blocking(move || me.reload_if_changed()).await;
            }
        });
    }

    fn scan_with<'t>(
        scanner: &mut yara_x::Scanner<'_>,
        targets: impl Iterator<Item = (Cow<'t, str>, &'t [u8])>,
        timeout: Duration,
    ) -> Result<Vec<Finding>, ScanError> {
        scanner.set_timeout(timeout);
        let mut out: Vec<Finding> = Vec::new();
        for (label, data) in targets {
            let results = scanner.scan(data).map_err(|e| ScanError::scanner("yara", e))?;
            for r in results.matching_rules() {
                let severity = r
                    .metadata()
                    .find(|(k, _)| *k == "severity")
                    .and_then(|(_, v)| match v {
                        yara_x::MetaValue::String(s) => Some(s.to_ascii_lowercase()),
                        _ => None,
                    })
                    .unwrap_or_else(|| "medium".into());
                let tag = match severity.as_str() {
                    "high" | "critical" => TAG_HIGH,
                    "low" | "info" => TAG_LOW,
                    _ => TAG_MEDIUM,
                };
                let detail = format!("{}:{} in {label}", r.namespace(), r.identifier());
                if !out.iter().any(|f| f.detail.as_deref() == Some(detail.as_str())) {
                    out.push(Finding::new(tag, detail));
                }
            }
        }
        Ok(out)
    }
}

impl Scanner for YaraScanner {
    fn id(&self) -> &'static str {
        crate::scan::registry::YARA.id
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn failure_mode(&self) -> FailureMode {
        self.mode
    }
    fn cpu_bound(&self) -> bool {
        true
    }
    fn tags(&self) -> &'static [&'static str] {
        TAGS
    }
    fn health(&self) -> BoxFuture<'_, Result<String, ScanError>> {
        let h = self.health();
        Box::pin(async move {
            let line = format!("{} rules from {} files, {} reloads", h.rules, h.files, h.reloads);
            match h.last_error {
                // The old rule set keeps scanning; the operator must still know.
                Some(e) => Err(ScanError::scanner("yara", format!("{line}; last reload refused: {e}"))),
                None => Ok(line),
            }
        })
    }
    fn scan<'a>(&'a self, input: &'a ScanInput) -> BoxFuture<'a, Result<Vec<Finding>, ScanError>> {
        Box::pin(async move {
            let rules = self
                .rules
                .read()
                .map(|r| r.clone())
                .map_err(|_| ScanError::scanner("yara", "rule lock poisoned"))?;
            // The pipeline runs this on its blocking pool (`cpu_bound`), so
            // the message's own buffers are scanned in place, not copied.
            let message = std::iter::once((Cow::Borrowed("message"), input.raw.as_slice()));
            let attachments = input
                .attachments
                .iter()
                .take(64)
                .map(|a| (Cow::Borrowed(a.name.as_deref().unwrap_or("attachment")), a.data.as_slice()));
            let html = input
                .html
                .iter()
                .enumerate()
                .take(16)
                .map(|(i, h)| (Cow::Owned(format!("html body {}", i + 1)), h.as_bytes()));
            let targets = message.chain(attachments).chain(html);
            with_scanner(&rules, |scanner| Self::scan_with(scanner, targets, self.timeout))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::InputOptions;

    fn scan(s: &YaraScanner, raw: &str) -> Vec<String> {
        let input = ScanInput::parse(raw.as_bytes().to_vec(), &InputOptions::default());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(s.scan(&input)).unwrap().into_iter().map(|f| f.tag).collect()
    }

    #[test]
    fn shipped_rules_compile_and_match_the_marker() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/yara");
        let s = YaraScanner::load(&dir, Duration::from_secs(5), FailureMode::Closed).unwrap();
        assert!(s.health().rules >= 4, "{:?}", s.health());
        assert_eq!(scan(&s, "Subject: t\r\n\r\nPOSTERN-YARA-TEST-MARKER-7f3a\r\n"), vec![TAG_LOW]);
        assert!(scan(&s, "Subject: t\r\n\r\nhello\r\n").is_empty());
    }

    #[test]
    fn hot_reload_swaps_and_broken_rules_keep_the_old_set() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.yar"), "rule A { strings: $a = \"alpha-marker\" condition: $a }").unwrap();
        let s = YaraScanner::load(d.path(), Duration::from_secs(5), FailureMode::Closed).unwrap();
        assert_eq!(scan(&s, "\r\n\r\nalpha-marker"), vec![TAG_MEDIUM]);
        std::fs::write(
            d.path().join("b.yar"),
            "rule B { meta: severity = \"high\" strings: $b = \"beta-marker\" condition: $b }",
        )
        .unwrap();
        assert!(s.reload_if_changed());
        // Same thread, so this also proves the thread's cached scanner is
        // replaced when the rule set is.
        assert_eq!(scan(&s, "\r\n\r\nbeta-marker"), vec![TAG_HIGH]);
        std::fs::write(d.path().join("c.yar"), "rule C { condition: this is not yara }").unwrap();
        assert!(!s.reload_if_changed());
        assert!(s.health().last_error.is_some(), "compile error on health");
        assert_eq!(scan(&s, "\r\n\r\nbeta-marker"), vec![TAG_HIGH], "old set still active");
        assert!(!s.reload_if_changed(), "a broken set is not recompiled every tick");
    }
}
