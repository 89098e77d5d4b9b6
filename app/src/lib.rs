//! Postern: a self-hosted mailbox security gateway.
//!
//! Postern watches IMAP folders over IDLE, hands every new message to a
//! decision engine and acts on the verdict (move to quarantine, flag, hold)
//! without ever touching the user's own flags. Its state is keyed by
//! (account, mailbox, UIDVALIDITY, UID) so that across drops, restarts and
//! crashes a message is never missed, never acted on twice and never lost.
//!
//! Modules depend in one direction:
//! `clock`, `domain` → `config` → `store` | `imap` | `scan` → `intel` → `actions` →
//! `worker`, `manager` → `notify`, `digest_mail`, `housekeeping` → `runtime` → `web` → `main`.
//! Records several layers share (intents, operator ops, audit entries) live
//! in `domain`. `runtime` is a closed application layer: its parts are
//! private and `web` calls its verbs only (tests/layering.rs enforces both
//! this and which modules `web` may name).
#![forbid(unsafe_code)]

pub mod actions;
pub mod clock;
pub mod config;
pub mod digest_mail;
pub mod domain;
pub mod failpoint;
pub mod housekeeping;
pub mod imap;
pub mod intel;
pub mod logging;
pub mod logwatch;
pub mod manager;
pub mod milter;
pub mod notify;
pub mod oauth;
pub mod runtime;
pub mod scan;
pub mod secrets;
pub mod service;
pub mod simulate;
pub mod store;
pub mod web;
pub mod worker;
