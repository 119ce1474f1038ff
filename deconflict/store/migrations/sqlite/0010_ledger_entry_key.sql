-- SQLite: the log's entries keyed by the table's own integer key. Declared BIGINT
-- PRIMARY KEY (version 2), each entry was written twice, to the table and to a
-- separate index on idx; INTEGER PRIMARY KEY makes idx the row's key itself (one
-- B-tree, appended at its end). PostgreSQL's file for this number changes nothing:
-- its BIGINT key is already the table's one index.
CREATE TABLE ledger_entries_by_idx (
    idx   INTEGER PRIMARY KEY,
    entry TEXT NOT NULL
);
INSERT INTO ledger_entries_by_idx (idx, entry) SELECT idx, entry FROM ledger_entries ORDER BY idx;
DROP TABLE ledger_entries;
ALTER TABLE ledger_entries_by_idx RENAME TO ledger_entries;
