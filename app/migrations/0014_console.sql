-- Issue 22, item 2: end-user quarantine. A mailbox owner signs in to their
-- own account's quarantine with a one-time link sent to the account's
-- digest address, or by proving the IMAP password (never stored).

-- One-time sign-in links. Like digest links, only the SHA-256 of the nonce
-- is kept; the MAC over the row lives in the token.
CREATE TABLE owner_links (
  nonce_hash TEXT PRIMARY KEY,
  account    TEXT NOT NULL,
  recipient  TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  used_at    TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX owner_links_by_expiry ON owner_links (expires_at);

-- Owner sessions are apart from dashboard sessions: an owner is no
-- dashboard user and can never reach a dashboard route.
CREATE TABLE owner_sessions (
  token_hash TEXT PRIMARY KEY,
  account    TEXT NOT NULL,
  csrf       TEXT NOT NULL,
  via        TEXT NOT NULL,                -- link | imap
  created_at TEXT NOT NULL,
  last_seen  TEXT NOT NULL
);
CREATE INDEX owner_sessions_by_account ON owner_sessions (account);

-- A release an owner may not do alone (phishing, malware): it waits for an
-- analyst or admin.
CREATE TABLE release_requests (
  id           INTEGER PRIMARY KEY,
  message      INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  account      TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  reason       TEXT NOT NULL DEFAULT '',
  state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'denied')),
  decided_by   TEXT,
  decided_at   TEXT,
  created_at   TEXT NOT NULL
);
-- At most one open request per message.
CREATE UNIQUE INDEX release_requests_one_open ON release_requests (message) WHERE state = 'pending';

-- Issue 22, item 4: backfill progress per folder in messages, so the
-- dashboard, /health and /metrics show done/total and a rate. `remaining`
-- is what the server still lists in the window after the last chunk.
ALTER TABLE mailbox_state ADD COLUMN backfill_processed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailbox_state ADD COLUMN backfill_remaining INTEGER;
ALTER TABLE mailbox_state ADD COLUMN backfill_started_at TEXT;
