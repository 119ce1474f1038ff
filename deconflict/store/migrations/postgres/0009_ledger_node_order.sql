-- As the portable file (see there), with a 64-bit key: INTEGER is 32 bits here.
CREATE TABLE ledger_nodes_by_pos (
    pos  BIGINT PRIMARY KEY,
    hash TEXT NOT NULL
);
INSERT INTO ledger_nodes_by_pos (pos, hash)
    SELECT ((idx + 1) << level) * 64 + level, hash FROM ledger_nodes;
DROP TABLE ledger_nodes;
ALTER TABLE ledger_nodes_by_pos RENAME TO ledger_nodes;
