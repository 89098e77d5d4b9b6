//! The single integration-test binary. Every test here talks to a real
//! Dovecot started on loopback by `scripts/test-stack.sh`; assertions poll
//! with deadlines instead of sleeping.

// Test helpers may fail loudly: a panic here is a failed test, not a user-facing crash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::disallowed_methods)]

mod common;

#[cfg(feature = "ai")]
mod ai_tier;
mod background;
mod backlog_window;
mod bootstrap;
mod browser;
mod browser_console;
mod browser_counts;
mod browser_layout;
mod browser_purge;
mod checks;
mod cli;
mod cli_users;
mod export_training;
mod fuzz;
mod golden;
mod imap_engine;
mod imap_failed_actions;
mod imap_faults;
mod imap_hostile;
mod imap_names;
mod imap_reach;
mod imap_recovery;
mod imap_servers;
mod imap_tls;
mod intel;
mod layering;
mod learning;
mod logwatch;
mod milter;
mod milter_clients;
mod oauth;
mod owner_link_mail;
mod pdf_worker;
mod purge;
mod readme_sync;
mod reports_accept;
mod scan_peers;
mod secrets_logs;
mod service;
mod soak;
mod web_accounts;
mod web_live;
mod web_quarantine;
