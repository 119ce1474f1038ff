-- deconflict schema, version 4: the hotline. Portable SQL like versions 1 and 2:
-- times BIGINT microseconds since the Unix epoch (UTC), documents compact JSON TEXT.

-- One row per message; `doc` holds its recipients, typed fields and (read-backs) mismatches.
CREATE TABLE hotline_messages (
    id         TEXT PRIMARY KEY,
    code       TEXT NOT NULL,
    sender     TEXT NOT NULL,
    sent_at_us BIGINT NOT NULL,
    refers_to  TEXT,
    doc        TEXT NOT NULL
);
CREATE INDEX hotline_messages_by_sender ON hotline_messages (sender, sent_at_us);

-- One row per (message, recipient): the two layers of acknowledgement, the deadlines,
-- retries and escalation. next_due_us: when something next falls due (NULL: nothing).
CREATE TABLE hotline_deliveries (
    message_id             TEXT NOT NULL REFERENCES hotline_messages (id),
    recipient              TEXT NOT NULL REFERENCES parties (id),
    sent_at_us             BIGINT NOT NULL,
    delivery_due_us        BIGINT NOT NULL,
    reply_due_us           BIGINT,
    attempts               INTEGER NOT NULL,
    delivered_at_us        BIGINT,
    delivery_overdue_at_us BIGINT,
    replied_at_us          BIGINT,
    reply                  TEXT,
    reply_overdue_at_us    BIGINT,
    escalation_level       INTEGER NOT NULL,
    next_due_us            BIGINT,
    PRIMARY KEY (message_id, recipient)
);
CREATE INDEX hotline_deliveries_by_recipient ON hotline_deliveries (recipient, sent_at_us);
CREATE INDEX hotline_deliveries_by_due ON hotline_deliveries (next_due_us);

-- Each party's stream: events numbered 1, 2, 3... per party, written in the transaction
-- of the change they announce; a reconnecting client asks for those after its last seq.
CREATE TABLE hotline_events (
    party TEXT NOT NULL REFERENCES parties (id),
    seq   BIGINT NOT NULL,
    at_us BIGINT NOT NULL,
    type  TEXT NOT NULL,
    doc   TEXT NOT NULL,
    PRIMARY KEY (party, seq)
);

-- Heartbeats: a party is monitored from its first beat; down_since_us set while DOWN.
CREATE TABLE hotline_status (
    party             TEXT PRIMARY KEY REFERENCES parties (id),
    last_heartbeat_us BIGINT NOT NULL,
    down_since_us     BIGINT
);

-- Optional webhooks, one per party: the party's events are POSTed to `url` in order,
-- signed with HMAC-SHA256 under `secret` (kept as text: the HMAC needs it); after a
-- failure the next attempt waits (next_attempt_us), with growing delays.
CREATE TABLE hotline_webhooks (
    party           TEXT PRIMARY KEY REFERENCES parties (id),
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    delivered_seq   BIGINT NOT NULL,
    failures        INTEGER NOT NULL,
    next_attempt_us BIGINT NOT NULL
);
