-- Dashboard: sessions, settings overrides, allow/block lists and operator
-- actions on quarantined mail.

-- The cookie carries a random token; only its SHA-256 is stored, so a copy
-- of the database cannot be replayed as a login.
CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY,
  csrf       TEXT NOT NULL,
  ip         TEXT,
  created_at TEXT NOT NULL,
  last_seen  TEXT NOT NULL
);

-- Settings changed in the dashboard; they override the environment.
-- Secret values (API keys, passwords) are sealed with the store key.
CREATE TABLE settings (
  key        TEXT PRIMARY KEY,
  value      TEXT NOT NULL,
  secret     INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT NOT NULL
);

CREATE TABLE list_entries (
  id         INTEGER PRIMARY KEY,
  kind       TEXT NOT NULL,              -- allow | block
  pattern    TEXT NOT NULL,
  reason     TEXT NOT NULL,
  actor      TEXT NOT NULL,
  created_at TEXT NOT NULL,
  UNIQUE (kind, pattern)
);

-- Operator-requested IMAP actions. Like intents they are durable and run
-- by the account's runner on its one connection.
CREATE TABLE ops (
  id         INTEGER PRIMARY KEY,
  message    INTEGER NOT NULL REFERENCES messages (id),
  account    TEXT NOT NULL,
  kind       TEXT NOT NULL,              -- release | delete
  actor      TEXT NOT NULL,
  state      TEXT NOT NULL,              -- pending | done | gone | refused
  detail     TEXT,
  attempts   INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX ops_by_state ON ops (account, state);
CREATE INDEX ops_by_message ON ops (message);

-- 1 while the message sits in the quarantine or hold folder because of us.
ALTER TABLE messages ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
-- What the operator did last: released | deleted.
ALTER TABLE messages ADD COLUMN disposition TEXT;
UPDATE messages SET quarantined = 1
  WHERE status = 'done' AND location_mailbox IS NOT NULL AND verdict IN ('quarantine', 'delete');

CREATE INDEX messages_by_quarantine ON messages (quarantined, id);
CREATE INDEX messages_by_verdict ON messages (verdict, id);
CREATE INDEX messages_by_account ON messages (account, id);
CREATE INDEX messages_by_first_seen ON messages (first_seen);
CREATE INDEX audit_by_event ON audit (event, id);
