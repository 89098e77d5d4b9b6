-- Learning from what users do with their mail (issue 17).

-- One row per user action seen on a folder: a message the user moved into
-- Junk (spam) or out of Junk/Quarantine back to a watched folder (ham). The
-- key (account, mailbox, uidvalidity, uid) makes a replayed FETCH harmless.
CREATE TABLE feedback (
  id          INTEGER PRIMARY KEY,
  account     TEXT NOT NULL,
  mailbox     TEXT NOT NULL,                -- where the user put it
  uidvalidity INTEGER NOT NULL,
  uid         INTEGER NOT NULL,
  sha256      TEXT NOT NULL,
  message_id  TEXT,
  class       TEXT NOT NULL,                -- spam | ham
  source      TEXT NOT NULL,                -- what the user did, e.g. 'moved into Junk'
  message     INTEGER,                      -- the matching messages row, if Postern scanned it
  created_at  TEXT NOT NULL,
  UNIQUE (account, mailbox, uidvalidity, uid)
);
CREATE INDEX feedback_by_sha ON feedback (account, sha256, class);

-- One lesson for Rspamd per (message content, class): the same message is
-- never learned twice, whoever filed it, across restarts and UIDVALIDITY
-- changes. Pending rows are taken by the learning task.
CREATE TABLE learned (
  sha256      TEXT NOT NULL,
  class       TEXT NOT NULL,                -- spam | ham
  eml_path    TEXT NOT NULL,                -- the copy that is sent to Rspamd
  state       TEXT NOT NULL,                -- pending | learned | skipped (Rspamd declined) | failed
  attempts    INTEGER NOT NULL DEFAULT 0,
  next_at     TEXT NOT NULL,                -- earliest next attempt
  detail      TEXT,
  account     TEXT NOT NULL,                -- the first reporter
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  PRIMARY KEY (sha256, class)
);
CREATE INDEX learned_by_state ON learned (state, next_at);

-- Postern-moved and returned-from checks look a message up by account and
-- hash across all of the account's folders.
CREATE INDEX messages_by_account_sha ON messages (account, sha256);
