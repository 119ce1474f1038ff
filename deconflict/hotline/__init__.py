"""The hotline, pure parts: the message catalogue, typed fields, rendering in every
party's language, and the rules (allowed replies, read-back comparison, deadlines)."""
