-- Reported phishing (issue 17, item 3): one row per message a user drops
-- into the report folder. The key (account, mailbox, uidvalidity, uid)
-- makes a replayed FETCH harmless; the same content reported again by the
-- same user in the same folder is one report (see store::reports).
CREATE TABLE reports (
  id          INTEGER PRIMARY KEY,
  account     TEXT NOT NULL,                -- the reporter's account
  mailbox     TEXT NOT NULL,                -- the report folder
  uidvalidity INTEGER NOT NULL,
  uid         INTEGER NOT NULL,
  sha256      TEXT NOT NULL,
  message_id  TEXT,
  from_addr   TEXT,
  subject     TEXT,
  reporter    TEXT NOT NULL,                -- user:<account>
  verdict     TEXT NOT NULL,                -- the re-scan with every engine
  score       REAL NOT NULL,
  tags        TEXT NOT NULL,
  scan_json   TEXT NOT NULL,                -- the whole decision, observables included
  eml_path    TEXT NOT NULL,                -- the copy IOCs and learning read
  state       TEXT NOT NULL,                -- new | open | confirmed | rejected
  decided_by  TEXT,
  decided_at  TEXT,
  detail      TEXT,                         -- what confirming or rejecting did
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  UNIQUE (account, mailbox, uidvalidity, uid)
);
CREATE INDEX reports_by_state ON reports (state, id);
CREATE INDEX reports_by_sha ON reports (account, mailbox, sha256);

