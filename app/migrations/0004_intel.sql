-- Threat intelligence: operator indicators (IOCs), sightings, what each
-- message points at (for claw-back), reputation caches and scheduled
-- re-checks.

CREATE TABLE indicators (
  id             INTEGER PRIMARY KEY,
  kind           TEXT NOT NULL,           -- ip | cidr | domain | url | sha256 | email
  value          TEXT NOT NULL,           -- normalised
  source         TEXT NOT NULL,
  confidence     INTEGER NOT NULL,        -- 0..100
  severity       TEXT NOT NULL,           -- low | medium | high | critical
  expires_at     TEXT,                    -- RFC 3339; NULL = never
  false_positive INTEGER NOT NULL DEFAULT 0,
  note           TEXT,
  created_by     TEXT NOT NULL,
  created_at     TEXT NOT NULL,
  updated_at     TEXT NOT NULL,
  UNIQUE (kind, value, source)
);

-- Every match of an indicator (feed entry or IOC) against a message.
CREATE TABLE sightings (
  id        INTEGER PRIMARY KEY,
  indicator INTEGER REFERENCES indicators (id) ON DELETE SET NULL,
  source    TEXT NOT NULL,
  kind      TEXT NOT NULL,
  value     TEXT NOT NULL,
  message   INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  seen_at   TEXT NOT NULL,
  UNIQUE (message, source, kind, value)
);
CREATE INDEX sightings_by_indicator ON sightings (indicator);
CREATE INDEX sightings_by_value ON sightings (kind, value);

CREATE TABLE observables (
  message INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  kind    TEXT NOT NULL,
  value   TEXT NOT NULL,
  PRIMARY KEY (message, kind, value)
) WITHOUT ROWID;

CREATE TABLE rep_cache (
  service    TEXT NOT NULL,
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  expires_at INTEGER NOT NULL,            -- unix seconds
  PRIMARY KEY (service, key)
) WITHOUT ROWID;

-- Scheduled re-scans after delivery (+5 min, +12 h, +24 h by default).
CREATE TABLE rechecks (
  message INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  stage   TEXT NOT NULL,
  due_at  TEXT NOT NULL,
  state   TEXT NOT NULL DEFAULT 'pending', -- pending | queued
  PRIMARY KEY (message, stage)
);
CREATE INDEX rechecks_by_due ON rechecks (state, due_at);

-- Why Postern asked for an op itself (claw-back), for the audit row.
ALTER TABLE ops ADD COLUMN reason TEXT;
