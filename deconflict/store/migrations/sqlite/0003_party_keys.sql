-- deconflict schema, version 3: party signatures (issue 5, part 4).
-- Portable SQL, like the versions before it. A party registers Ed25519 public keys
-- (base64 of the 32 raw bytes, key id = RFC 7638 JWK thumbprint); a key is revoked,
-- never deleted, so every signature in the shared record stays checkable.

CREATE TABLE party_keys (
    key_id        TEXT PRIMARY KEY,
    party_id      TEXT NOT NULL REFERENCES parties (id),
    algorithm     TEXT NOT NULL,
    public_key    TEXT NOT NULL,
    required      INTEGER NOT NULL,
    added_at_us   BIGINT NOT NULL,
    revoked_at_us BIGINT
);
CREATE INDEX party_keys_by_party ON party_keys (party_id, added_at_us);

-- Every request signature accepted, so that a signed request is never accepted twice
-- (a replay is refused: the signature, base64, is the key).
CREATE TABLE request_signatures (
    signature TEXT PRIMARY KEY,
    key_id    TEXT NOT NULL REFERENCES party_keys (key_id),
    at_us     BIGINT NOT NULL
);
