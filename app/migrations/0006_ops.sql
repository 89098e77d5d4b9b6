-- Operations: when each scheduled job last ran, and the one-click links
-- sent in quarantine digests.

-- Survives restarts, so a restart neither skips nor repeats a daily run.
CREATE TABLE schedule_state (
  job      TEXT PRIMARY KEY,             -- maintenance | digest:<account>
  last_run TEXT NOT NULL,
  report   TEXT                          -- JSON of the last run's report, for /health and /metrics after a restart
);

-- A digest link carries a random nonce and an HMAC over (nonce, message,
-- sha256, action, expiry); only the nonce's SHA-256 is stored, so a copy of
-- the database cannot be turned into working links. used_at makes it single-use.
CREATE TABLE digest_links (
  nonce_hash TEXT PRIMARY KEY,
  message    INTEGER NOT NULL REFERENCES messages (id),
  sha256     TEXT NOT NULL,
  action     TEXT NOT NULL,              -- release | delete
  recipient  TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  used_at    TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX digest_links_by_expiry ON digest_links (expires_at);
