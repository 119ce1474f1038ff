"""Errors of the log: a key, a signature or an export file that cannot be trusted.

Validation of wire values (a tree head's JSON, an entry's fields) raises
:class:`deconflict.errors.InvalidInput` instead, naming the field and the rule.
"""

from __future__ import annotations

from deconflict.errors import DeconflictError

__all__ = ["ExportFormatError", "LedgerError"]


class LedgerError(DeconflictError):
    """The signing key, a signature or a ledger file failed a check; the message says which."""


class ExportFormatError(LedgerError):
    """A line of an export file broke the format; ``line`` is 1-based."""

    def __init__(self, line: int, rule: str) -> None:
        self.line = line
        self.rule = rule
        super().__init__(f"line {line}: {rule}")
