-- deconflict schema, version 6: the tactical picture's alerts. Tracks themselves are
-- not stored (the live picture is in memory); an alert is, from opened to closed.
-- Portable SQL like the others: times BIGINT µs, figures as a JSON document in TEXT.

-- kind: 'conflict' (two tracks, a and b) or 'unannounced' (track a, with no intent,
-- inside reservation `filing`).
CREATE TABLE tactical_alerts (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    track_a        TEXT NOT NULL,
    party_a        TEXT NOT NULL,
    track_b        TEXT,
    party_b        TEXT,
    filing         TEXT,
    opened_at_us   BIGINT NOT NULL,
    updated_at_us  BIGINT NOT NULL,
    closed_at_us   BIGINT,
    doc            TEXT NOT NULL
);
CREATE INDEX tactical_alerts_open ON tactical_alerts (closed_at_us, opened_at_us);
