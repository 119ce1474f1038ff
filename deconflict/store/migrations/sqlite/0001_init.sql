-- deconflict schema, version 1.
-- Portable SQL: the same statements run on PostgreSQL and CockroachDB (their own
-- migration folders may pick native types such as JSONB or BYTEA). Times are
-- BIGINT microseconds since the Unix epoch (UTC); H3 cells are BIGINT; documents
-- are compact JSON text; token hashes are lowercase hex.

CREATE TABLE parties (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    language      TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE
);

-- One row per filing: what its current version is, and what queries filter on.
CREATE TABLE filings (
    id            TEXT PRIMARY KEY,
    version       INTEGER NOT NULL,
    type          TEXT NOT NULL,
    owner         TEXT NOT NULL REFERENCES parties (id),
    kind          TEXT NOT NULL,
    state         TEXT NOT NULL,
    time_start_us BIGINT NOT NULL,
    time_end_us   BIGINT NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL
);
CREATE INDEX filings_by_owner ON filings (owner, id);

-- Every version ever stored; versions are immutable.
CREATE TABLE filing_versions (
    filing_id     TEXT NOT NULL REFERENCES filings (id),
    version       INTEGER NOT NULL,
    ovn           TEXT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    doc           TEXT NOT NULL,
    PRIMARY KEY (filing_id, version)
);

-- The space-time index of current versions: one row per (volume, cell).
CREATE TABLE volume_index (
    filing_id   TEXT NOT NULL REFERENCES filings (id),
    volume_no   INTEGER NOT NULL,
    cell        BIGINT NOT NULL,
    t_start_us  BIGINT NOT NULL,
    t_end_us    BIGINT NOT NULL,
    alt_lower_m DOUBLE PRECISION NOT NULL,
    alt_upper_m DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (filing_id, volume_no, cell)
);
-- A query scans, per cell, start times in [query start - longest duration, query
-- end]; the other columns make it an index-only scan.
CREATE INDEX volume_index_by_cell_time
    ON volume_index (cell, t_start_us, t_end_us, alt_lower_m, alt_upper_m, filing_id);

-- Small named integers the store keeps for itself (e.g. the longest indexed duration).
CREATE TABLE store_meta (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO store_meta (name, value) VALUES ('max_duration_us', 0);

CREATE TABLE conflicts (
    id             TEXT PRIMARY KEY,
    a_id           TEXT NOT NULL,
    a_version      INTEGER NOT NULL,
    a_owner        TEXT NOT NULL,
    b_id           TEXT NOT NULL,
    b_version      INTEGER NOT NULL,
    b_owner        TEXT NOT NULL,
    state          TEXT NOT NULL,
    detected_at_us BIGINT NOT NULL,
    closed_at_us   BIGINT,
    doc            TEXT NOT NULL,
    FOREIGN KEY (a_id, a_version) REFERENCES filing_versions (filing_id, version),
    FOREIGN KEY (b_id, b_version) REFERENCES filing_versions (filing_id, version)
);
CREATE INDEX conflicts_by_time ON conflicts (detected_at_us, id);
CREATE INDEX conflicts_by_a ON conflicts (a_id, state);
CREATE INDEX conflicts_by_b ON conflicts (b_id, state);
CREATE INDEX conflicts_by_a_owner ON conflicts (a_owner);
CREATE INDEX conflicts_by_b_owner ON conflicts (b_owner);
