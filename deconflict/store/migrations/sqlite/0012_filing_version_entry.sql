-- Each filing version keeps the index of the log entry that recorded it, so that a
-- client can go straight to that entry (and its inclusion proof) instead of reading the
-- whole log to find it. Versions stored before this migration have none (NULL).
-- Portable: the same file runs on PostgreSQL.
ALTER TABLE filing_versions ADD COLUMN log_idx BIGINT;
