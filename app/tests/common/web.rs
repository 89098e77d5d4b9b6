//! Postern with its dashboard, in-process, and a logged-in HTTP client.

use super::harness::{KEY, policy, tuning};
use postern::clock::{SharedClock, SystemClock};
use postern::config::{AccountConfig, Settings};
use postern::runtime::Runtime;
use postern::store::Store;
use postern::web::AppState;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub const ADMIN_PASSWORD: &str = "test admin passphrase";

pub struct WebPostern {
    pub base: String,
    pub rt: Runtime,
    pub shutdown: CancellationToken,
    pub dir: tempfile::TempDir,
}

/// Which scanners run.
pub enum Scanners {
    /// Built-in heuristics and lists only (no network peers).
    Local,
    /// Plus the test stack's Rspamd (with controller) and clamd.
    Stack,
    /// Local plus the AI tier (models/, runtime from POSTERN_AI_RUNTIME).
    #[cfg(feature = "ai")]
    LocalAi,
}

impl WebPostern {
    pub async fn start(accounts: Vec<AccountConfig>, scanners: Scanners) -> WebPostern {
        Self::start_with(accounts, scanners, |_| {}).await
    }

    /// Like `start`, with the settings adjusted first.
    pub async fn start_with(accounts: Vec<AccountConfig>, scanners: Scanners, tweak: impl FnOnce(&mut Settings)) -> WebPostern {
        Self::start_clocked(accounts, scanners, Arc::new(SystemClock), tweak).await
    }

    /// Like `start_with`, on the given clock (schedules, retention, expiry).
    pub async fn start_clocked(
        accounts: Vec<AccountConfig>,
        scanners: Scanners,
        clock: SharedClock,
        tweak: impl FnOnce(&mut Settings),
    ) -> WebPostern {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "postern=info".into()))
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::for_data_dir(dir.path().to_path_buf(), KEY);
        s.admin_password_hash = Some(bcrypt::hash(ADMIN_PASSWORD, 4).unwrap());
        s.web.insecure_cookies = true;
        s.imap = tuning();
        #[cfg(feature = "ai")]
        if let Scanners::LocalAi = scanners {
            s.scan.ai.runtime = Some(
                std::env::var("POSTERN_AI_RUNTIME")
                    .expect("POSTERN_AI_RUNTIME (scripts/onnxruntime.sh)")
                    .into(),
            );
            s.scan.ai.models = Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"));
        }
        if let Scanners::Stack = scanners {
            let d = super::stack::shared();
            s.scan.rspamd_url = d.rspamd_url.clone();
            s.scan.clamd_addr = d.clamd_addr.clone();
            let (url, pass) = d.rspamd_controller.clone().expect("rspamd controller in the stack");
            s.scan.rspamd_controller_url = Some(url);
            s.scan.rspamd_password = Some(pass);
        }
        // Following shortened links would leave loopback; tests that want it opt in.
        s.intel.unshorten = false;
        tweak(&mut s);
        let store = Store::open(&s.db_path, &s.db_key, clock.clone()).unwrap();
        store.sync_config_accounts(&accounts).await.unwrap();
        let rt = Runtime::assemble(Arc::new(s.clone()), policy(), store.clone(), clock)
            .await
            .unwrap();
        let manager = rt.manager().clone();
        let shutdown = CancellationToken::new();
        let state = AppState::new(rt.clone(), s.web.clone(), shutdown.clone()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(postern::web::serve_on(state, listener));
        // Notices flow from the event bus; the schedule is driven by the
        // tests themselves (`ops_tick`) on their clock.
        rt.spawn_notifier(shutdown.clone());
        for a in store.accounts().await.unwrap() {
            manager.start_account(a).await;
        }
        WebPostern { base, rt, shutdown, dir }
    }

    /// Waits until the INBOX listener is in IDLE (mail appended from now on
    /// is new mail, not a catch-up).
    pub async fn wait_idling(&self) {
        super::eventually(std::time::Duration::from_secs(30), "listener idling", || async {
            self.rt
                .manager()
                .status()
                .iter()
                .any(|s| s.mailbox == "INBOX" && format!("{:?}", s.state) == "Idling")
                .then_some(())
        })
        .await;
    }

    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.rt.manager().shutdown().await;
    }
}

/// A logged-in admin speaking the JSON API.
pub struct Admin {
    pub base: String,
    pub cookie: String,
    pub csrf: String,
    http: reqwest::Client,
}

pub fn cookie_of(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

pub fn between<'a>(s: &'a str, start: &str) -> &'a str {
    let i = s.find(start).unwrap_or_else(|| panic!("{start} not found")) + start.len();
    s[i..].split('"').next().unwrap()
}

impl Admin {
    pub async fn login(base: &str) -> Admin {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(format!("{base}/login")).send().await.unwrap();
        let login_cookie = cookie_of(&page, "postern_login");
        let html = page.text().await.unwrap();
        let token = between(&html, "name=\"_csrf\" value=\"").to_string();
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("_csrf", &token)
            .append_pair("password", ADMIN_PASSWORD)
            .finish();
        let r = http
            .post(format!("{base}/login"))
            .header("cookie", login_cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "login failed");
        let cookie = cookie_of(&r, "postern_session");
        let home = http
            .get(format!("{base}/"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = between(&home, "name=\"csrf-token\" content=\"").to_string();
        Admin {
            base: base.to_string(),
            cookie,
            csrf,
            http,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// A page as HTML.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn post(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(reqwest::Method::POST, path, serde_json::json!({})).await
    }
}
