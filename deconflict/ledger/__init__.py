"""The shared record: RFC 9162 Merkle tree hashing and proofs (`rfc9162`), RFC 8785
canonical JSON for what gets hashed (`canonical`), and the log built on them."""
