-- Incidents (issue 20): one record per attacker that ties the mail server's
-- auth attacks to the mail side. An incident opens on the first log-watch
-- attack from an address; later attacks from that address or from the same
-- ASN, mail from that address (and suspicious mail from the sender domains
-- that mail used), IOC hits and claw-backs of that mail join it as timeline
-- items until it is closed. Status changes are items too (with their
-- actor), beside the audit rows.

CREATE TABLE incidents (
  id         INTEGER PRIMARY KEY,
  title      TEXT NOT NULL,
  status     TEXT NOT NULL DEFAULT 'open',  -- open | acknowledged | closed
  ip         TEXT NOT NULL,                 -- the attacking address that opened it
  asn        INTEGER,
  as_org     TEXT,
  country    TEXT,
  first_at   INTEGER NOT NULL,              -- unix seconds of the first item
  last_at    INTEGER NOT NULL,              -- unix seconds of the latest item
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX incidents_by_ip ON incidents (ip, status);
CREATE INDEX incidents_by_asn ON incidents (asn, status);
CREATE INDEX incidents_by_last ON incidents (last_at);

CREATE TABLE incident_items (
  id       INTEGER PRIMARY KEY,
  incident INTEGER NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
  at       INTEGER NOT NULL,                -- unix seconds
  kind     TEXT NOT NULL,                   -- attack | mail | ioc_hit | clawback | status
  ref      INTEGER,                         -- logwatch_alerts.id | messages.id | ops.id; NULL for status
  link     TEXT NOT NULL,                   -- why it belongs here, e.g. "same address 203.0.113.9"
  actor    TEXT,                            -- who changed the status
  detail   TEXT NOT NULL,
  UNIQUE (incident, kind, ref)
);
CREATE INDEX incident_items_by_ref ON incident_items (kind, ref);
CREATE INDEX incident_items_by_incident ON incident_items (incident, at);

-- An attack looks up the mail already stored from its address, and
-- stored mail the attacks from its address.
CREATE INDEX observables_by_value ON observables (kind, value);
CREATE INDEX logwatch_alerts_by_ip ON logwatch_alerts (ip);
