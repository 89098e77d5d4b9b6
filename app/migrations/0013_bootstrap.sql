-- Issue 17, items 2 and 5: the first-run bootstrap and search-and-purge.

-- One bootstrap per account: the mail already there, learned once
-- (Junk as spam, old read mail as ham). Observe-only.
CREATE TABLE bootstrap (
  account        TEXT PRIMARY KEY,
  state          TEXT NOT NULL,              -- learning | done
  ham_days       INTEGER NOT NULL,
  total          INTEGER NOT NULL,           -- messages listed at the start
  done           INTEGER NOT NULL DEFAULT 0, -- of those, handled (queued, known or skipped)
  queued         INTEGER NOT NULL DEFAULT 0, -- new lessons queued for Rspamd
  started_at     TEXT NOT NULL,
  resumed_at     TEXT NOT NULL,              -- this process's start, for the rate
  done_at_resume INTEGER NOT NULL DEFAULT 0,
  updated_at     TEXT NOT NULL,
  finished_at    TEXT,
  detail         TEXT
);

-- The listed messages, so a restart (even a SIGKILL) resumes where it
-- stopped: an item and its lesson are written in one transaction.
CREATE TABLE bootstrap_items (
  account     TEXT NOT NULL,
  mailbox     TEXT NOT NULL,
  uidvalidity INTEGER NOT NULL,
  uid         INTEGER NOT NULL,
  class       TEXT NOT NULL,                 -- spam | ham
  state       TEXT NOT NULL DEFAULT 'pending', -- pending | queued | known | skipped
  sha256      TEXT,
  detail      TEXT,
  PRIMARY KEY (account, mailbox, uidvalidity, uid)
);
CREATE INDEX bootstrap_items_by_state ON bootstrap_items (account, state, mailbox, uid);
