-- The log's nodes keyed in the order they are made: node (level, idx) completes when
-- leaf m - 1 is appended, m = (idx + 1) * 2^level, after the nodes below it, so
-- pos = m * 64 + level grows with every node appended (`SqlWriter.append_log`). Keyed
-- by (level, idx), each commit wrote the right edge of every level it reached (about
-- 8 pages a filing at 1M, measured); by pos, it writes one. SQLite: INTEGER PRIMARY
-- KEY is the table's own key (the PostgreSQL file has BIGINT).
CREATE TABLE ledger_nodes_by_pos (
    pos  INTEGER PRIMARY KEY,
    hash TEXT NOT NULL
);
INSERT INTO ledger_nodes_by_pos (pos, hash)
    SELECT ((idx + 1) << level) * 64 + level, hash FROM ledger_nodes;
DROP TABLE ledger_nodes;
ALTER TABLE ledger_nodes_by_pos RENAME TO ledger_nodes;
