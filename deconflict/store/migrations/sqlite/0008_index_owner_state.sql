-- The neighbour search reads only `volume_index`: each row carries its filing's
-- owner, version and state (every new version of a filing, a state change included,
-- rewrites the filing's rows), so the search no longer looks each candidate up in
-- `filings` to filter out a party's own and ended filings. Rows stored before this
-- migration are filled in from `filings`.
ALTER TABLE volume_index ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE volume_index ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE volume_index ADD COLUMN state TEXT NOT NULL DEFAULT '';
UPDATE volume_index SET owner = f.owner, version = f.version, state = f.state
    FROM filings AS f WHERE f.id = volume_index.filing_id;
DROP INDEX volume_index_by_cell_time;
CREATE INDEX volume_index_by_cell_time
    ON volume_index (cell, t_start_us, t_end_us, alt_lower_m, alt_upper_m, state, owner, filing_id, version);
