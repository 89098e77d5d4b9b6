-- Log watch: where each mail-server log was read up to, the
-- authentication events read from it, and the alerts (attacks) with the
-- indicator each one is a sighting of.

CREATE TABLE logwatch_offsets (
  source     TEXT PRIMARY KEY,            -- the configured path
  inode      INTEGER NOT NULL,
  offset     INTEGER NOT NULL,            -- bytes, at a line boundary
  head_len   INTEGER NOT NULL,
  head_hash  TEXT NOT NULL,               -- SHA-256 of the first head_len bytes
  updated_at TEXT NOT NULL
);

CREATE TABLE logwatch_events (
  id       INTEGER PRIMARY KEY,
  at       INTEGER NOT NULL,              -- unix seconds
  source   TEXT NOT NULL,
  service  TEXT NOT NULL,                 -- smtp | imap | pop3 | other
  outcome  TEXT NOT NULL,                 -- failed | succeeded | probe | rejected
  ip       TEXT NOT NULL,
  username TEXT,
  attempts INTEGER NOT NULL
);
CREATE INDEX logwatch_events_by_at ON logwatch_events (at);
CREATE INDEX logwatch_events_by_ip ON logwatch_events (ip, at);

-- Every alert is a sighting of the indicators it names.
CREATE TABLE logwatch_alerts (
  id        INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,
  kind      TEXT NOT NULL,                -- brute_force | spray_users | … | compromise_suspicion
  ip        TEXT,                         -- one row per attacking address
  network   TEXT,
  username  TEXT,
  count     INTEGER NOT NULL,
  country   TEXT,
  asn       INTEGER,
  as_org    TEXT,
  rdns      TEXT,
  indicator INTEGER REFERENCES indicators (id) ON DELETE SET NULL,
  detail    TEXT NOT NULL
);
CREATE INDEX logwatch_alerts_by_at ON logwatch_alerts (at);
CREATE INDEX logwatch_alerts_by_indicator ON logwatch_alerts (indicator);

-- Where reading the systemd journal stopped (journalctl's cursor).
CREATE TABLE logwatch_journal (
  source     TEXT PRIMARY KEY,
  cursor     TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
