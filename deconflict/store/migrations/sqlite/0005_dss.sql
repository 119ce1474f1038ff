-- deconflict schema, version 5: what the ASTM F3548-21 DSS interface keeps beside
-- filings. Portable SQL like the others: booleans are INTEGER 0/1, times BIGINT µs.

-- Areas a party is notified about. `implicit` ones were made for one filing.
CREATE TABLE dss_subscriptions (
    id                 TEXT PRIMARY KEY,
    owner              TEXT NOT NULL REFERENCES parties (id),
    uss_base_url       TEXT NOT NULL,
    notify_intents     INTEGER NOT NULL,
    notify_constraints INTEGER NOT NULL,
    implicit           INTEGER NOT NULL,
    version            INTEGER NOT NULL,
    notification_index INTEGER NOT NULL,
    time_start_us      BIGINT NOT NULL,
    time_end_us        BIGINT NOT NULL,
    alt_lower_m        DOUBLE PRECISION NOT NULL,
    alt_upper_m        DOUBLE PRECISION NOT NULL,
    created_at_us      BIGINT NOT NULL,
    updated_at_us      BIGINT NOT NULL,
    doc                TEXT NOT NULL
);
CREATE INDEX dss_subscriptions_by_owner ON dss_subscriptions (owner, id);

-- The space index of subscriptions: the H3 cells (deconflict.geometry.cells) their
-- volumes touch. Times and altitudes are on the subscription row.
CREATE TABLE dss_subscription_cells (
    subscription_id TEXT NOT NULL REFERENCES dss_subscriptions (id),
    cell            BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, cell)
);
CREATE INDEX dss_subscription_cells_by_cell ON dss_subscription_cells (cell, subscription_id);

-- Per filing made or changed through the DSS interface: where its details are served
-- and which subscription keeps its manager informed.
CREATE TABLE dss_references (
    filing_id       TEXT PRIMARY KEY REFERENCES filings (id),
    uss_base_url    TEXT NOT NULL,
    subscription_id TEXT NOT NULL
);
CREATE INDEX dss_references_by_subscription ON dss_references (subscription_id);

-- Availability per party, as set by availability arbitration; absent means Unknown.
CREATE TABLE party_availability (
    party_id      TEXT PRIMARY KEY REFERENCES parties (id),
    availability  TEXT NOT NULL,
    version       INTEGER NOT NULL,
    updated_at_us BIGINT NOT NULL
);
