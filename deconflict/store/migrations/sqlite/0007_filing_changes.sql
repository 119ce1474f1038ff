-- Where each filing's current version sits in the order of writes: the size of the
-- log when that version was stored. A new filing is checked against a read snapshot
-- before the write lock, then inside it only against the filings stored since that
-- snapshot (`Reader.filings_changed_since`), so the serialised part of a filing is
-- small. Filings stored before this migration count as stored at the log's start.
ALTER TABLE filings ADD COLUMN log_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX filings_by_log_seq ON filings (log_seq);
