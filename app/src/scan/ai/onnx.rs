//! ONNX Runtime, loaded at run time from a `libonnxruntime.so` (ort's
//! `load-dynamic`): nothing is downloaded at build time, and a missing or
//! unsuitable library disables the AI scanner instead of stopping Postern.

use super::features::{DGA_DIM, MAIL_DIM, dga_dense, mail_dense};
use ort::environment::Environment;
use ort::session::Session;
use ort::value::TensorRef;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Oldest ONNX Runtime the `api-31` build can use.
const MIN_VERSION: (u32, u32) = (1, 30);

/// ONNX Runtime allows one environment per process; pipelines rebuilt at
/// run time share it.
static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Where to find the runtime: the setting, else `ORT_DYLIB_PATH`.
pub fn runtime_path(setting: Option<&Path>) -> Option<PathBuf> {
    setting
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
}

/// `libonnxruntime.so.1.31.1` → (1, 31); follows symlinks first.
fn version_of(path: &Path) -> Option<(u32, u32)> {
    let real = std::fs::canonicalize(path).ok()?;
    let name = real.file_name()?.to_string_lossy().into_owned();
    let v = name.split(".so.").nth(1)?;
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

/// ort panics on a missing library or one older than its API level, so
/// both are checked before it sees the path.
fn check_library(lib: &Path) -> Result<(), String> {
    if !lib.is_file() {
        return Err(format!("ONNX Runtime library {} does not exist", lib.display()));
    }
    match version_of(lib) {
        Some(v) if v < MIN_VERSION => Err(format!(
            "{} is ONNX Runtime {}.{}; {}.{} or newer is needed",
            lib.display(),
            v.0,
            v.1,
            MIN_VERSION.0,
            MIN_VERSION.1
        )),
        Some(_) => Ok(()),
        None => Err(format!(
            "cannot tell the ONNX Runtime version of {} (expected a name like libonnxruntime.so.1.31.1)",
            lib.display()
        )),
    }
}

fn environment(lib: &Path) -> Result<&'static Environment, String> {
    let r = ENV.get_or_init(|| {
        check_library(lib)?;
        let lib = lib.to_path_buf();
        std::panic::catch_unwind(move || {
            ort::init_from(&lib)
                .map_err(|e| format!("cannot load {}: {e}", lib.display()))?
                .with_name("postern")
                .build()
                .map_err(|e| format!("ONNX Runtime environment: {e}"))
        })
        .unwrap_or_else(|_| Err("ONNX Runtime failed while loading".to_string()))
    });
    r.as_ref().map_err(Clone::clone)
}

fn session(env: &Environment, model: &Path) -> Result<Session, String> {
    if !model.is_file() {
        return Err(format!("model {} does not exist", model.display()));
    }
    let mut b = Session::builder(env).map_err(|e| e.to_string())?;
    b = b.with_intra_threads(1).map_err(|e| e.to_string())?;
    b.commit_from_file(model).map_err(|e| format!("loading {}: {e}", model.display()))
}

/// Both models, ready to score.
pub struct Models {
    mail: Mutex<Session>,
    dga: Mutex<Session>,
}

/// P(ham), P(spam), P(phish).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MailScores {
    /// Legitimate.
    pub ham: f64,
    /// Unsolicited bulk mail.
    pub spam: f64,
    /// Phishing.
    pub phish: f64,
}

impl Models {
    /// Loads `mail.onnx` and `dga.onnx` from `dir` with the runtime at `lib`.
    pub fn load(lib: &Path, dir: &Path) -> Result<Models, String> {
        let env = environment(lib)?;
        Ok(Models {
            mail: Mutex::new(session(env, &dir.join("mail.onnx"))?),
            dga: Mutex::new(session(env, &dir.join("dga.onnx"))?),
        })
    }

    fn probabilities(session: &Mutex<Session>, input: &[f32], dim: usize) -> Result<Vec<f32>, String> {
        let tensor = TensorRef::from_array_view(([1usize, dim], input)).map_err(|e| e.to_string())?;
        let mut s = session.lock().map_err(|_| "model lock poisoned".to_string())?;
        let out = s.run(ort::inputs![tensor]).map_err(|e| e.to_string())?;
        let probs = out.get("probabilities").ok_or("model has no probabilities output")?;
        let (_, p) = probs.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        Ok(p.to_vec())
    }

    /// Scores a message's feature indices.
    pub fn mail(&self, indices: &[u32]) -> Result<MailScores, String> {
        let p = Self::probabilities(&self.mail, &mail_dense(indices), MAIL_DIM)?;
        match p.as_slice() {
            [ham, spam, phish] => Ok(MailScores {
                ham: f64::from(*ham),
                spam: f64::from(*spam),
                phish: f64::from(*phish),
            }),
            other => Err(format!("mail model returned {} probabilities, expected 3", other.len())),
        }
    }

    /// P(generated) for a domain label's features.
    pub fn dga(&self, features: &[(u32, f64)]) -> Result<f64, String> {
        let p = Self::probabilities(&self.dga, &dga_dense(features), DGA_DIM)?;
        p.get(1)
            .map(|x| f64::from(*x))
            .ok_or_else(|| "dga model returned no class-1 probability".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI and `make test` provide the library (scripts/onnxruntime.sh).
    fn lib() -> PathBuf {
        runtime_path(std::env::var_os("POSTERN_AI_RUNTIME").map(PathBuf::from).as_deref())
            .expect("set POSTERN_AI_RUNTIME to libonnxruntime.so (scripts/onnxruntime.sh fetches it)")
    }

    #[test]
    fn golden_scores_match_python() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let m = Models::load(&lib(), &dir).unwrap();
        let g = crate::scan::ai::features::tests::golden();
        for case in &g.mail {
            let s = m.mail(&case.indices).unwrap();
            for (name, got) in [("ham", s.ham), ("spam", s.spam), ("phish", s.phish)] {
                let want = case.scores[name];
                assert!((got - want).abs() < 1e-4, "{:?} {name}: rust {got} python {want}", case.subject);
            }
        }
        for case in &g.dga {
            let got = m.dga(&case.features).unwrap();
            assert!((got - case.score).abs() < 1e-4, "{}: rust {got} python {}", case.label, case.score);
        }
    }

    /// The fifth model's point (models/README.md): customer mail in other
    /// languages from a small sender is not read as a threat for not being
    /// English (the fourth quarantined each of these), while a lure in the
    /// same language still is. Checks written for this, never trained on.
    #[test]
    fn customer_mail_in_other_languages_is_not_a_threat_to_the_shipped_model() {
        use crate::scan::ai::{Thresholds, features::mail_indices, mail_tag};
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        let m = Models::load(&lib(), &dir).unwrap();
        let t = Thresholds::default();
        let tag = |subject: &str, body: &str| {
            let s = m.mail(&mail_indices(subject, body)).unwrap();
            mail_tag(s.ham, s.phish, s.spam, &t).map(|(tag, _)| tag)
        };
        let threats = ["AI_PHISH", "AI_UNWANTED_PHISH", "AI_SPAM", "AI_UNWANTED"];
        for (subject, body) in [
            (
                "Ihre Bestellung 100234 wurde versandt",
                "Hallo Anna, vielen Dank für Ihre Bestellung bei Bergsport Huber. Ihr Paket ist heute an DHL übergeben \
                 worden. Sie können Ihre Sendung in Ihrem Kundenkonto verfolgen. Bestellte Artikel: 1 x Wanderschuh \
                 Alpin GTX, Größe 39. Versand: 4,90 EUR. Bei Fragen erreichen Sie uns per E-Mail oder telefonisch. \
                 Viele Grüße, Ihr Team von Bergsport Huber",
            ),
            (
                "Confirmation de votre commande n° 58213",
                "Bonjour Claire, nous avons bien reçu votre commande du 3 décembre : Le Petit Prince, L'Étranger. \
                 Frais de port offerts. Votre commande sera expédiée sous 48 heures ; vous pouvez suivre son état dans \
                 votre espace client. Merci de votre confiance, l'équipe de La Petite Librairie",
            ),
            (
                "Recordatorio de su cita",
                "Estimada Sra. García, le recordamos su cita el martes 9 de diciembre a las 10:30 con la Dra. Martínez. \
                 Si no puede asistir, por favor avísenos con 24 horas de antelación llamando a la clínica. \
                 Un saludo, Clínica Dental Sonrisa",
            ),
        ] {
            let got = tag(subject, body);
            assert!(got.is_none_or(|g| !threats.contains(&g)), "{subject}: {got:?}");
        }
        let lure = tag(
            "Ihr Konto wurde vorübergehend gesperrt",
            "Sehr geehrter Kunde, aufgrund ungewöhnlicher Aktivitäten wurde Ihr Online-Banking vorübergehend gesperrt. \
             Um eine dauerhafte Sperrung zu vermeiden, bestätigen Sie bitte innerhalb von 24 Stunden Ihre Identität. \
             Nach Ablauf der Frist wird Ihr Konto endgültig gesperrt. Mit freundlichen Grüßen, Ihre Sparkasse",
        );
        assert_eq!(lure, Some("AI_PHISH"));
    }

    #[test]
    fn unusable_libraries_are_refused_before_ort_sees_them() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            check_library(&dir.path().join("libonnxruntime.so.1.31.1"))
                .unwrap_err()
                .contains("does not exist")
        );
        let old = dir.path().join("libonnxruntime.so.1.20.0");
        std::fs::write(&old, b"not really").unwrap();
        assert!(check_library(&old).unwrap_err().contains("1.30 or newer"));
        let odd = dir.path().join("onnxruntime.so");
        std::fs::write(&odd, b"x").unwrap();
        assert!(check_library(&odd).unwrap_err().contains("cannot tell"));
    }
}
