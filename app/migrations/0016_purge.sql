-- Search and purge (issue 17, item 5). A job is one operator search over
-- every watched mailbox; its items are the matching UIDs found by IMAP
-- SEARCH (and the local observables index). Items are executed by each
-- account's runner, like intents and ops: one connection, durable rows.
CREATE TABLE purge_jobs (
  id          INTEGER PRIMARY KEY,
  criterion   TEXT NOT NULL,              -- sender | subject | message_id | url | sha256
  value       TEXT NOT NULL,
  actor       TEXT NOT NULL,
  state       TEXT NOT NULL,              -- counted | running | done
  counts      TEXT NOT NULL,              -- JSON: the dry run, one entry per mailbox searched
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

-- Not tied to messages(id): a purge may move mail Postern never scanned
-- (delivered before it watched the account). `message` links it when known.
CREATE TABLE purge_items (
  id          INTEGER PRIMARY KEY,
  job         INTEGER NOT NULL REFERENCES purge_jobs (id),
  account     TEXT NOT NULL,
  mailbox     TEXT NOT NULL,
  uidvalidity INTEGER NOT NULL,
  uid         INTEGER NOT NULL,
  message     INTEGER REFERENCES messages (id),
  state       TEXT NOT NULL,              -- matched | pending | moved | observed | gone | failed
  detail      TEXT,
  eml_path    TEXT,
  updated_at  TEXT NOT NULL,
  UNIQUE (job, account, mailbox, uidvalidity, uid)
);
CREATE INDEX purge_items_pending ON purge_items (account, state);
