-- In-line mode (issue 19): one row per milter decision, with the SMTP
-- envelope the MTA reported. Each also has a `messages` row (account
-- 'milter', uid = this id) so the dashboard, audit, metrics and
-- notifications treat it like an IMAP decision. When the delivered copy
-- later shows up in a watched mailbox it is found here by Message-ID and
-- body hash and not scanned again.
CREATE TABLE milter_decisions (
  id          INTEGER PRIMARY KEY,
  message     INTEGER REFERENCES messages (id),
  source      TEXT NOT NULL DEFAULT 'milter',
  ts          TEXT NOT NULL,
  queue_id    TEXT,
  client_ip   TEXT,
  helo        TEXT,
  mail_from   TEXT,
  rcpt_json   TEXT NOT NULL,               -- JSON array of RCPT TO addresses
  message_id  TEXT,
  body_sha256 TEXT NOT NULL,               -- SHA-256 of the body, line endings removed
  verdict     TEXT NOT NULL,
  reply       TEXT NOT NULL                -- reject | tempfail | hold | headers | accept
);
CREATE INDEX milter_by_body ON milter_decisions (body_sha256);
