-- Dashboard users beyond the environment's admin, each with a role.
-- The bcrypt hash is sealed with the store key like other secrets, so a
-- copy of the database does not hand out hashes to crack offline.
CREATE TABLE users (
  name          TEXT PRIMARY KEY,
  role          TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
  password_hash TEXT NOT NULL,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL
);

-- A session now names its user. Sessions from before users existed name
-- nobody, so they end here and their holder logs in again.
DELETE FROM sessions;
ALTER TABLE sessions ADD COLUMN user_name TEXT NOT NULL DEFAULT '';
CREATE INDEX sessions_by_user ON sessions (user_name);
