-- Scanner reports per message: every scanner's tags, details, duration and
-- error, plus the policy score, as JSON (schema: domain::ScannerReport).
ALTER TABLE messages ADD COLUMN score REAL;
ALTER TABLE messages ADD COLUMN scan_json TEXT;
