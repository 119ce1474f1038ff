-- deconflict schema, version 2: the shared record (RFC 9162 transparency log).
-- Portable SQL, like version 1: no BLOB (PostgreSQL has none) and no BYTEA (SQLite
-- has none). An entry is RFC 8785 canonical JSON, which is always valid UTF-8 with
-- every control character escaped, so TEXT holds its exact bytes on every engine
-- (and a person can read it); hashes are lowercase hex, signatures base64, as the
-- wire forms in deconflict.ledger.sth write them.

-- Entry idx is leaf idx of the tree; written in the transaction of the change it records.
CREATE TABLE ledger_entries (
    idx   BIGINT PRIMARY KEY,
    entry TEXT NOT NULL
);

-- Every perfect subtree completed so far: (level, idx) covers leaves
-- [idx * 2^level, (idx + 1) * 2^level); level 0 holds the leaf hashes. Any root or
-- proof is assembled from these (deconflict.ledger.rfc9162).
CREATE TABLE ledger_nodes (
    level INTEGER NOT NULL,
    idx   BIGINT NOT NULL,
    hash  TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);

-- Signed tree heads, one per tree size (a head is signed only when the log grew).
CREATE TABLE ledger_heads (
    size         BIGINT PRIMARY KEY,
    root         TEXT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    key_id       TEXT NOT NULL,
    signature    TEXT NOT NULL
);
