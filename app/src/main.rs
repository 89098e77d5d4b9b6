//! The `postern` command line.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use postern::clock::{SharedClock, SystemClock};
use postern::config::Config;
use postern::runtime::{self, Runtime};
use postern::scan::Pipeline;
use postern::store::Store;
use postern::web;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// jemalloc with two arenas (app/Cargo.toml, .cargo/config.toml): glibc's
/// per-thread arenas kept a backlog's peak RSS at 200-300 MiB (issue 21).
#[cfg(all(target_os = "linux", not(target_env = "musl")))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "postern",
    version,
    about = "Mailbox security gateway: watches IMAP folders and quarantines threats"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Watch every configured account (the default).
    Run,
    /// Validate POSTERN_* variables and config.yaml, report every problem, and exit.
    CheckConfig,
    /// Read a password from stdin and print its bcrypt hash for POSTERN_ADMIN_PASSWORD_HASH.
    HashPassword,
    /// Print fresh secrets as env lines for postern.env.
    GenSecrets,
    /// Run the pipeline over a labelled corpus (DIR/ham, DIR/spam, DIR/phish, DIR/malware) and report precision and recall.
    Simulate {
        /// Corpus folder.
        dir: PathBuf,
        /// At most this many files per label.
        #[arg(long)]
        limit: Option<usize>,
        /// Messages scanned at once.
        #[arg(long, default_value_t = 4)]
        parallel: usize,
        /// Also write the per class × source counts, the score sweep and
        /// the time per message as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write one JSON line per message (verdict, score, every
        /// finding with its detail) to this file, to tune the policy on.
        #[arg(long)]
        dump: Option<PathBuf>,
    },
    /// Export what users taught (learned spam and ham) as a labelled folder
    /// tree, DIR/<label>/<account>/<sha256>.eml plus DIR/labels.csv, which
    /// `postern simulate DIR` and `models/train.py --feedback DIR` read.
    ExportTraining {
        /// A new or empty folder.
        dir: PathBuf,
    },
    /// Manage threat indicators (IOCs) in the database the daemon uses.
    Ioc {
        #[command(subcommand)]
        cmd: IocCommand,
    },
    /// Dashboard users and their roles (admin, analyst, viewer), in the
    /// database the daemon uses. The environment's admin is the user `admin`.
    User {
        #[command(subcommand)]
        cmd: UserCommand,
    },
    /// OAuth2 accounts (Microsoft 365, Gmail).
    Oauth {
        #[command(subcommand)]
        cmd: OauthCommand,
    },
    /// Run the full scanning pipeline on one .eml file, without IMAP. A file
    /// over POSTERN_MAX_MESSAGE_BYTES gets the daemon's decision for such
    /// mail (SIZE_OVER_LIMIT, not scanned) and is not read into memory.
    Scan {
        /// The message file.
        file: PathBuf,
        /// Show every scanner's result and every tag's score.
        #[arg(long)]
        explain: bool,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Internal: reads one PDF from stdin and writes what it holds as JSON.
    /// The daemon starts itself this way for each PDF attachment, so the
    /// parser runs under kernel limits in a process of its own.
    #[command(name = "pdf-worker", hide = true)]
    PdfWorker {
        /// Images it may still search for QR codes.
        images: usize,
    },
}

/// This binary, as the kernel knows it (still the running one after an
/// upgrade replaced the file), once it has shown it can run as a PDF
/// worker here; else PDFs are read in process, classic files only.
fn pdf_worker() -> Option<Arc<std::path::Path>> {
    let exe: Arc<std::path::Path> = Arc::from(std::path::Path::new("/proc/self/exe"));
    match postern::scan::pdf::probe_worker(&exe) {
        Ok(()) => Some(exe),
        Err(e) => {
            tracing::warn!(
                error = %e,
                "the PDF worker process cannot run here; PDFs are read in process, and encrypted or object-stream files are not read"
            );
            None
        }
    }
}

#[derive(Subcommand)]
enum OauthCommand {
    /// Sign in as the mailbox user of a `flow: device` account: prints a URL
    /// and a code to enter there, waits for the approval, and stores the
    /// refresh token (encrypted) in the database the daemon uses.
    Login {
        /// The account's name in config.yaml.
        account: String,
    },
    /// Fetch an access token for an account now, to check its OAuth2 setup.
    Test {
        /// The account's name in config.yaml.
        account: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from stdin (one line).
    Add {
        /// Login name: a-z, 0-9, '.', '_' and '-'.
        name: String,
        /// admin: everything; analyst: review, release and learn mail;
        /// viewer: read only.
        #[arg(long)]
        role: String,
    },
    /// List users and their roles.
    List,
    /// Set a user's password (read from stdin) and end their sessions.
    Passwd {
        /// Login name.
        name: String,
    },
    /// Remove a user and end their sessions.
    Remove {
        /// Login name.
        name: String,
    },
}

#[derive(Subcommand)]
enum IocCommand {
    /// Import indicators from a CSV file (header `type,value,source,confidence,severity,expires_at,false_positive,note`)
    /// or JSON lines (one object per line, same fields). Nothing is imported from a file with errors.
    Import {
        /// The file.
        file: PathBuf,
    },
    /// List indicators, newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Delete an indicator by id (its sightings stay).
    Delete {
        /// Indicator id.
        id: i64,
    },
}

/// The configuration from the environment, or its problems printed and
/// exit code 2 (the CLI's "bad configuration").
fn env_config() -> Result<Config, ExitCode> {
    Config::from_process_env().map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("postern: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Run) {
        Command::PdfWorker { images } => match postern::scan::pdf::serve_worker(images) {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                eprintln!("postern pdf-worker: {e}");
                Ok(ExitCode::from(3))
            }
        },
        Command::GenSecrets => {
            print!("{}", postern::secrets::gen_secrets());
            Ok(ExitCode::SUCCESS)
        }
        Command::HashPassword => match postern::secrets::hash_password(&read_password()?) {
            Ok(h) => {
                println!("POSTERN_ADMIN_PASSWORD_HASH='{h}'");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("postern: password refused: {e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Simulate {
            dir,
            limit,
            parallel,
            json,
            dump,
        } => {
            let Some(settings) = scan_settings() else {
                return Ok(ExitCode::from(2));
            };
            let postern::simulate::Corpus { files, mut skipped } =
                postern::simulate::corpus(&dir, limit).with_context(|| format!("reading {}", dir.display()))?;
            for s in &skipped {
                eprintln!("postern: skipped {}: {}", s.path.display(), s.reason);
            }
            anyhow::ensure!(
                !files.is_empty(),
                "no messages under {} (expected subfolders ham/, spam/, phish/, malware/)",
                dir.display()
            );
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let report = rt.block_on(async {
                let pipeline = scan_pipeline(&settings)?;
                let samples = postern::simulate::run(&pipeline, files, parallel, &mut skipped).await;
                let summary = postern::simulate::summary::summarize(&samples, skipped.len());
                if let Some(path) = &json {
                    std::fs::write(path, serde_json::to_vec_pretty(&summary)?).with_context(|| format!("writing {}", path.display()))?;
                }
                if let Some(path) = &dump {
                    let mut lines = String::new();
                    for s in &samples {
                        lines.push_str(&postern::simulate::dump_line(s).to_string());
                        lines.push('\n');
                    }
                    std::fs::write(path, lines).with_context(|| format!("writing {}", path.display()))?;
                }
                anyhow::Ok(postern::simulate::report_with(&samples, &skipped, &summary))
            })?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Scan { file, explain, json } => {
            let Some(settings) = scan_settings() else {
                return Ok(ExitCode::from(2));
            };
            let limit = settings.imap.max_message_bytes;
            let raw = read_capped(&file, limit).with_context(|| format!("reading {}", file.display()))?;
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let (pipeline, decision) = rt.block_on(async {
                let pipeline = scan_pipeline(&settings)?;
                let d = match raw {
                    Ok(raw) => pipeline.scan(raw).await,
                    Err(size) => {
                        eprintln!(
                            "postern: {} is {size} bytes, over POSTERN_MAX_MESSAGE_BYTES ({limit}); not scanned",
                            file.display()
                        );
                        postern::worker::oversize_decision(size, limit)
                    }
                };
                anyhow::Ok((pipeline, d))
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&decision)?);
            } else {
                print!(
                    "{}",
                    postern::scan::explain(&decision, pipeline.policy(), explain, pipeline.disabled())
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::ExportTraining { dir } => {
            let config = match env_config() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(export_training(&config.settings, &dir))
        }
        Command::Ioc { cmd } => {
            let config = match env_config() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(ioc(cmd, &config.settings))
        }
        Command::User { cmd } => {
            let config = match env_config() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(user(cmd, &config.settings))
        }
        Command::Oauth { cmd } => {
            let config = match env_config() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(oauth(cmd, &config))
        }
        Command::CheckConfig => match Config::from_process_env() {
            Ok(c)
                if !runtime::refused_outbound_urls(&c.settings).is_empty()
                    || !runtime::refused_oauth_urls(&c.settings, &c.accounts).is_empty() =>
            {
                for (var, why) in runtime::refused_outbound_urls(&c.settings)
                    .into_iter()
                    .chain(runtime::refused_oauth_urls(&c.settings, &c.accounts))
                {
                    eprintln!("{var}: refused by the SSRF guard: {why}");
                }
                Ok(ExitCode::from(2))
            }
            Ok(c) => {
                println!("configuration OK: {} account(s) from {}", c.accounts.len(), c.config_path.display());
                for w in c.warnings(&Config::process_vars()) {
                    eprintln!("warning: {w}");
                }
                for a in &c.accounts {
                    println!(
                        "  - {} {}@{}:{} ({:?}, {:?}) folders {:?}",
                        a.name, a.user, a.host, a.port, a.tls, a.mode, a.folders
                    );
                }
                let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
                Ok(rt.block_on(check_folders(&c.accounts)))
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Run => {
            let mut config = match env_config() {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            postern::logging::init(config.settings.log_format);
            config.settings.scan.pdf_worker = pdf_worker();
            // The admin-hash warning comes later, once the database can say
            // whether a hash was set on the settings page.
            let vars = Config::process_vars();
            for w in postern::config::unknown_vars(&vars)
                .into_iter()
                .chain(postern::config::same_mailbox(&config.accounts))
            {
                tracing::warn!(setting = %w.path, hint = %w.hint, "{}", w.message);
            }
            let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            rt.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `check-config` with a reachable server: a watched folder that does not
/// exist is warned about, and the folders Postern moves mail into must
/// exist or be creatable (an unreachable server is only noted; the
/// configuration itself may still be right).
async fn check_folders(accounts: &[postern::config::AccountConfig]) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for a in accounts {
        match postern::imap::check_folders(a, std::time::Duration::from_secs(10)).await {
            Ok(checks) => {
                for c in checks {
                    match c.outcome {
                        Ok((name, created)) => {
                            let what = if c.watched { "watched folder" } else { "folder" };
                            println!("    {}: {what} {} {}", a.name, name, if created { "created" } else { "exists" })
                        }
                        // A watched folder may be gone for a while (its
                        // owner deleted it): the service reports it on
                        // /health and goes on with the rest, so it warns
                        // here rather than stopping the unit's start.
                        Err(why) if c.watched => eprintln!("warning: {}: {why}", a.name),
                        Err(why) => {
                            eprintln!("{}: {why}", a.name);
                            code = ExitCode::from(2);
                        }
                    }
                }
            }
            Err(e) => println!("    {}: server not checked ({e})", a.name),
        }
    }
    code
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let s = Arc::new(config.settings.clone());
    let clock: SharedClock = Arc::new(SystemClock);
    std::fs::create_dir_all(&s.data_dir).with_context(|| format!("creating {}", s.data_dir.display()))?;
    let store = Store::open(&s.db_path, &s.db_key, clock.clone()).with_context(|| format!("opening {}", s.db_path.display()))?;
    store.sync_config_accounts(&config.accounts).await.context("storing accounts")?;
    let rt = Runtime::assemble(s.clone(), config.policy.clone(), store.clone(), clock)
        .await
        .context("building the scanning pipeline")?;
    let (live, manager) = (rt.live().clone(), rt.manager().clone());
    tracing::info!(scanners = ?live.current().scanners().iter().map(|x| x.id()).collect::<Vec<_>>(), "scanning pipeline ready");
    if s.admin_password_hash.is_none() && rt.admin_hash().await?.is_none() {
        tracing::warn!("no POSTERN_ADMIN_PASSWORD_HASH: the dashboard will refuse every login");
    }
    let shutdown = CancellationToken::new();
    rt.spawn_intel(shutdown.clone());
    rt.spawn_ops(shutdown.clone());
    rt.spawn_learning(shutdown.clone());
    rt.spawn_bootstrap(shutdown.clone());
    // Reported phishing: notify the operator, auto-confirm above the score.
    rt.spawn_reports(shutdown.clone());
    rt.spawn_logwatch(shutdown.clone()).await.context("starting log watch")?;
    let web = web::AppState::new(rt.clone(), s.web.clone(), shutdown.clone())?;
    // Bind before reporting ready, so a taken port fails the start visibly.
    let listener = tokio::net::TcpListener::bind(s.listen)
        .await
        .with_context(|| format!("binding the dashboard to {} (POSTERN_LISTEN)", s.listen))?;
    let bound = listener.local_addr().context("dashboard address")?;
    tracing::info!(url = %format!("http://{bound}/"), "dashboard listening");
    let server = tokio::spawn(web::serve_on(web, listener));
    if let Some(listen) = &s.milter.listen {
        let bound = postern::milter::bind(listen)
            .await
            .context("starting the milter (POSTERN_MILTER_LISTEN)")?;
        let milter = Arc::new(postern::milter::Milter {
            live: live.clone(),
            store: store.clone(),
            events: rt.events().clone(),
            settings: s.milter.clone(),
            max_message_bytes: s.imap.max_message_bytes,
            eml_dir: Some(s.eml_dir.clone()),
        });
        tracing::info!(listen = %listen, max_connections = s.milter.max_connections, "milter listening");
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = postern::milter::serve(bound, milter, stop).await {
                tracing::error!(error = %e, "the milter stopped");
            }
        });
    }
    let accounts = store.accounts().await.context("loading accounts")?;
    let n = accounts.len();
    tracing::info!(accounts = n, db = %s.db_path.display(), "postern starting");
    for a in accounts {
        manager.start_account(a).await;
    }
    postern::service::ready(&format!("watching {n} account(s); dashboard on http://{bound}/"));
    postern::service::spawn_watchdog(shutdown.clone());
    tokio::select! {
        _ = shutdown_signal() => {}
        r = server => {
            // The dashboard could not start (port taken?): stop rather than run blind.
            match r {
                Ok(Err(e)) => return Err(anyhow::anyhow!(e)).context("dashboard failed"),
                Ok(Ok(())) => {}
                Err(e) => return Err(anyhow::anyhow!(e.to_string())).context("dashboard task failed"),
            }
        }
    }
    tracing::info!("shutting down");
    postern::service::stopping();
    shutdown.cancel();
    manager.shutdown().await;
    Ok(())
}

/// The `oauth` subcommands. Tokens go to the daemon's database, where the
/// running daemon finds them at its next login attempt.
async fn oauth(cmd: OauthCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let s = &config.settings;
    let (OauthCommand::Login { account } | OauthCommand::Test { account }) = &cmd;
    let Some(acct) = config.accounts.iter().find(|a| &a.name == account) else {
        eprintln!("postern: no account {account:?} in {}", config.config_path.display());
        return Ok(ExitCode::from(2));
    };
    if acct.oauth2.is_none() {
        eprintln!("postern: account {account} has no oauth2 block; it logs in with a password");
        return Ok(ExitCode::from(2));
    }
    let clock: SharedClock = Arc::new(SystemClock);
    std::fs::create_dir_all(&s.data_dir).with_context(|| format!("creating {}", s.data_dir.display()))?;
    let store = Store::open(&s.db_path, &s.db_key, clock).with_context(|| format!("opening {}", s.db_path.display()))?;
    let policy = postern::intel::net::NetPolicy {
        allow_loopback_for_tests: s.intel.allow_loopback_for_tests,
    };
    let broker = postern::oauth::TokenBroker::new(store, policy);
    match cmd {
        OauthCommand::Login { .. } => {
            postern::oauth::device_login(&broker, acct, |d| {
                println!("To sign in {} for Postern, open", acct.user);
                println!("    {}", d.verification_uri_complete.as_deref().unwrap_or(&d.verification_uri));
                println!("and enter the code {} (valid for {} minutes).", d.user_code, d.expires_in / 60);
                println!("Waiting for the sign-in...");
            })
            .await?;
            println!("signed in: the refresh token for {account} is stored; the daemon uses it at its next login");
        }
        OauthCommand::Test { .. } => {
            broker.access_token(acct).await?;
            println!("token endpoint OK: an access token for {} was issued and stored", acct.user);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `export-training`: the labelled tree of user feedback.
async fn export_training(s: &postern::config::Settings, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open(&s.db_path, &s.db_key, clock).with_context(|| format!("opening {}", s.db_path.display()))?;
    match runtime::export_training(&store, dir).await {
        Ok(r) => {
            for (label, n) in &r.written {
                println!("{label}: {n} message(s)");
            }
            if !r.missing.is_empty() {
                println!("{} label(s) left out: their stored copy is gone (retention)", r.missing.len());
            }
            println!("written to {}; run `postern simulate {}` to measure", dir.display(), dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ runtime::ExportError::NotEmpty(_)) => {
            eprintln!("postern: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

/// The `ioc` subcommands. A running daemon picks changes up within a minute
/// (it watches the table) and re-checks recent mail against new indicators.
async fn ioc(cmd: IocCommand, s: &postern::config::Settings) -> anyhow::Result<ExitCode> {
    let clock: SharedClock = Arc::new(SystemClock);
    std::fs::create_dir_all(&s.data_dir).with_context(|| format!("creating {}", s.data_dir.display()))?;
    let store = Store::open(&s.db_path, &s.db_key, clock).with_context(|| format!("opening {}", s.db_path.display()))?;
    let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    match cmd {
        IocCommand::Import { file } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            match postern::intel::ioc::parse_import(&text) {
                Ok(items) => {
                    let n = items.len();
                    store.add_indicators(items, &actor).await?;
                    println!("imported {n} indicator(s) from {}", file.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    eprintln!("postern: {} problem(s) in {}; nothing imported:", errors.len(), file.display());
                    for e in errors {
                        eprintln!("  {e}");
                    }
                    Ok(ExitCode::from(2))
                }
            }
        }
        IocCommand::List { limit } => {
            for i in store.list_indicators(limit, 0).await? {
                let fp = if i.ind.false_positive { " FALSE-POSITIVE" } else { "" };
                let exp = i.ind.expires_at.as_deref().map(|e| format!(" expires {e}")).unwrap_or_default();
                println!(
                    "#{} {} {} [{} {} {}]{exp}{fp} sightings={}",
                    i.id, i.ind.kind, i.ind.value, i.ind.source, i.ind.confidence, i.ind.severity, i.sightings
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        IocCommand::Delete { id } => {
            if store.delete_indicator(id, &actor).await? {
                println!("deleted indicator #{id}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("postern: no indicator #{id}");
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// One line from stdin, without its line ending.
fn read_password() -> std::io::Result<String> {
    if std::io::stdin().is_terminal() {
        eprintln!("password (input is echoed; pipe it in to avoid that):");
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The `user` subcommands. A change takes effect on the user's next
/// request to a running daemon: roles are read with each session.
async fn user(cmd: UserCommand, s: &postern::config::Settings) -> anyhow::Result<ExitCode> {
    let clock: SharedClock = Arc::new(SystemClock);
    std::fs::create_dir_all(&s.data_dir).with_context(|| format!("creating {}", s.data_dir.display()))?;
    let store = Store::open(&s.db_path, &s.db_key, clock).with_context(|| format!("opening {}", s.db_path.display()))?;
    let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let refuse = |why: String| {
        eprintln!("postern: {why}");
        Ok(ExitCode::from(2))
    };
    let hashed = || -> anyhow::Result<Result<String, String>> {
        Ok(postern::secrets::hash_password(&read_password()?).map_err(|e| format!("password refused: {e}")))
    };
    match cmd {
        UserCommand::Add { name, role } => {
            let role = match role
                .parse::<runtime::Role>()
                .and_then(|r| runtime::check_user_name(&name).map(|()| r))
            {
                Ok(r) => r,
                Err(e) => return refuse(e.to_string()),
            };
            let hash = match hashed()? {
                Ok(h) => h,
                Err(e) => return refuse(e),
            };
            if !store.add_user(&name, role.as_str(), &hash, &actor).await? {
                return refuse(format!("user {name:?} exists; use `postern user passwd {name}`"));
            }
            println!("added {name} as {role}");
        }
        UserCommand::List => {
            if s.admin_password_hash.is_some() {
                println!("{}\tadmin\t(environment: POSTERN_ADMIN_PASSWORD_HASH)", runtime::BUILTIN_ADMIN);
            }
            for u in store.users().await? {
                println!("{}\t{}\tadded {}", u.name, u.role, u.created_at);
            }
        }
        UserCommand::Passwd { name } => {
            if name == runtime::BUILTIN_ADMIN {
                return refuse(format!(
                    "{name:?} is the environment's admin: set POSTERN_ADMIN_PASSWORD_HASH (`postern hash-password`) or change it on the dashboard's settings page"
                ));
            }
            let hash = match hashed()? {
                Ok(h) => h,
                Err(e) => return refuse(e),
            };
            if !store.set_user_password(&name, &hash, &actor, None).await? {
                return refuse(format!("no user {name:?}"));
            }
            println!("password of {name} changed; their sessions ended");
        }
        UserCommand::Remove { name } => {
            if !store.remove_user(&name, &actor).await? {
                return refuse(format!("no user {name:?}"));
            }
            println!("removed {name}; their sessions ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads `file` unless it is over `limit` bytes (`POSTERN_MAX_MESSAGE_BYTES`,
/// the daemon's fetch limit): then `Err(size)`, read no further than the
/// limit, so a 200 MB file is never held in memory (issue 18).
fn read_capped(file: &std::path::Path, limit: u32) -> std::io::Result<Result<Vec<u8>, u64>> {
    use std::io::Read;
    let f = std::fs::File::open(file)?;
    let declared = f.metadata()?.len();
    if declared > u64::from(limit) {
        return Ok(Err(declared));
    }
    // The size can change or lie (a pipe, a growing file): read one byte
    // past the limit at most.
    let mut raw = Vec::with_capacity(declared as usize);
    f.take(u64::from(limit) + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > u64::from(limit) {
        return Ok(Err(raw.len() as u64));
    }
    Ok(Ok(raw))
}

/// Settings for the commands that scan without IMAP; problems are printed.
fn scan_settings() -> Option<postern::config::Settings> {
    match postern::config::Settings::from_env_for_scan() {
        Ok(mut s) => {
            postern::logging::init(s.log_format);
            s.scan.pdf_worker = pdf_worker();
            Some(s)
        }
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

fn scan_pipeline(s: &postern::config::Settings) -> anyhow::Result<Pipeline> {
    Ok(runtime::build_pipeline(&s.scan, &Default::default(), runtime::load_policy(s)?)?)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
