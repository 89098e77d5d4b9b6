-- Every dashboard page shows how much mail is in quarantine. Counting the
-- index on each request costs milliseconds at 100k messages and holds the
-- one connection meanwhile; triggers keep the number instead.

CREATE TABLE counters (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO counters (name, value) VALUES ('quarantined', (SELECT COUNT(*) FROM messages WHERE quarantined = 1));

CREATE TRIGGER counters_quarantined_insert AFTER INSERT ON messages WHEN NEW.quarantined = 1
BEGIN
  UPDATE counters SET value = value + 1 WHERE name = 'quarantined';
END;

CREATE TRIGGER counters_quarantined_update AFTER UPDATE OF quarantined ON messages WHEN OLD.quarantined != NEW.quarantined
BEGIN
  UPDATE counters SET value = value + NEW.quarantined - OLD.quarantined WHERE name = 'quarantined';
END;

CREATE TRIGGER counters_quarantined_delete AFTER DELETE ON messages WHEN OLD.quarantined = 1
BEGIN
  UPDATE counters SET value = value - 1 WHERE name = 'quarantined';
END;
