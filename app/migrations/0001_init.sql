-- Postern schema v1. Never edit once released; add a new numbered file.

CREATE TABLE accounts (
  name          TEXT PRIMARY KEY,
  host          TEXT NOT NULL,
  port          INTEGER NOT NULL,
  tls           TEXT NOT NULL,
  user          TEXT NOT NULL,
  pass_enc      TEXT NOT NULL,             -- AES-256-GCM, see store/crypto.rs
  settings_json TEXT NOT NULL,             -- folders, quarantine/hold folder, mode, start_at, TLS options
  source        TEXT NOT NULL DEFAULT 'config',
  enabled       INTEGER NOT NULL DEFAULT 1,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
);

-- One row per watched (account, mailbox): the sync cursor.
CREATE TABLE mailbox_state (
  account            TEXT NOT NULL,
  mailbox            TEXT NOT NULL,
  uidvalidity        INTEGER NOT NULL,
  last_uid           INTEGER NOT NULL,     -- every UID <= this has a decision recorded
  highest_modseq     INTEGER,
  watch_since        TEXT NOT NULL,        -- first time Postern watched this mailbox
  backfill_since     TEXT,                 -- backfill window start (RFC 3501 date), NULL = none
  backfill_until_uid INTEGER,              -- backfill covers UIDs <= this
  backfill_done_uid  INTEGER,              -- resumable cursor
  updated_at         TEXT NOT NULL,
  PRIMARY KEY (account, mailbox)
);

CREATE TABLE messages (
  id               INTEGER PRIMARY KEY,
  account          TEXT NOT NULL,
  mailbox          TEXT NOT NULL,
  uidvalidity      INTEGER NOT NULL,
  uid              INTEGER NOT NULL,
  message_id       TEXT,
  sha256           TEXT NOT NULL,
  size             INTEGER NOT NULL,
  from_addr        TEXT,
  subject          TEXT,
  internal_date    TEXT,
  status           TEXT NOT NULL,          -- decided | done | known | stale
  verdict          TEXT,
  tags             TEXT,
  reason           TEXT,
  observe_only     INTEGER NOT NULL DEFAULT 0,
  eml_path         TEXT,
  location_mailbox TEXT,
  location_uid     INTEGER,
  first_seen       TEXT NOT NULL,
  updated_at       TEXT NOT NULL,
  UNIQUE (account, mailbox, uidvalidity, uid)
);
CREATE INDEX messages_by_sha ON messages (account, mailbox, sha256);
CREATE INDEX messages_by_mid ON messages (account, mailbox, message_id);

-- Durable intent: written in the same transaction as the decision, executed
-- afterwards, so a crash in between resumes it exactly once. UNIQUE(message)
-- makes a second automatic action on the same message impossible.
CREATE TABLE intents (
  id         INTEGER PRIMARY KEY,
  message    INTEGER NOT NULL UNIQUE REFERENCES messages (id),
  account    TEXT NOT NULL,
  action     TEXT NOT NULL,               -- JSON of domain::Action
  state      TEXT NOT NULL,               -- pending | done | gone | stale | refused
  attempts   INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX intents_by_state ON intents (account, state);

CREATE TABLE audit (
  id          INTEGER PRIMARY KEY,
  ts          TEXT NOT NULL,
  actor       TEXT NOT NULL,              -- postern | admin:<name>
  account     TEXT,
  mailbox     TEXT,
  uidvalidity INTEGER,
  uid         INTEGER,
  message     INTEGER,
  event       TEXT NOT NULL,
  detail      TEXT NOT NULL
);
CREATE INDEX audit_by_ts ON audit (ts);
CREATE INDEX audit_by_message ON audit (message);
