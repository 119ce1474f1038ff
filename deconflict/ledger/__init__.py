"""The shared record: RFC 9162 Merkle tree hashing and proofs (`rfc9162`), RFC 8785
canonical JSON for what gets hashed (`canonical`), the log's signing key (`keys`),
signed tree heads (`sth`), canonical log entries (`entries`), the export file
(`export`), and the offline verifier (`verify`), which shares only `rfc9162` with the
rest; and, from the decoded log alone, statistics (`stats`) and the state at a past
time (`replay`)."""
