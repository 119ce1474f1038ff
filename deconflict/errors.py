"""Domain errors. Every layer raises these; only `api/` turns them into HTTP problems.

Each carries enough to name the field and the rule (validation) or the exact
entities involved (conflicts, stale versions), never storage error text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One broken rule: `field` is a path such as ``volumes[0].altitude_lower_m``."""

    field: str
    rule: str

    def prefixed(self, prefix: str) -> FieldError:
        if not prefix:
            return self
        if not self.field:
            return FieldError(prefix, self.rule)
        sep = "" if self.field.startswith("[") else "."
        return FieldError(f"{prefix}{sep}{self.field}", self.rule)


class DeconflictError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidInput(DeconflictError):
    """Input broke one or more rules; nothing was stored."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(f"{e.field}: {e.rule}" for e in self.errors))

    @classmethod
    def one(cls, field: str, rule: str) -> InvalidInput:
        return cls([FieldError(field, rule)])

    def prefixed(self, prefix: str) -> InvalidInput:
        return InvalidInput([e.prefixed(prefix) for e in self.errors])


class AgreementError(DeconflictError):
    """The agreement file broke a rule; `key` names the TOML key."""

    def __init__(self, key: str, rule: str) -> None:
        self.key = key
        self.rule = rule
        super().__init__(f"agreement: {key}: {rule}")


class Unauthorized(DeconflictError):
    """No credentials, or credentials that match no party."""


class SignatureRejected(DeconflictError):
    """A write's party signature (RFC 9421) is missing where the party requires one, or
    does not check out; `field` names the header or parameter, `rule` what is wrong."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")


class Forbidden(DeconflictError):
    """The caller is known but may not do this."""


class NotFound(DeconflictError):
    def __init__(self, what: str, ident: str) -> None:
        self.what = what
        self.ident = ident
        super().__init__(f"{what} {ident!r} not found")


class AlreadyExists(DeconflictError):
    def __init__(self, what: str, ident: str) -> None:
        self.what = what
        self.ident = ident
        super().__init__(f"{what} {ident!r} already exists")


class StaleVersion(DeconflictError):
    """An update named a version token that is no longer current."""

    def __init__(self, filing_id: str, given: str, current: str) -> None:
        self.filing_id = filing_id
        self.given = given
        self.current = current
        super().__init__(f"filing {filing_id!r}: version {given!r} is not current ({current!r} is)")


class InvalidTransition(DeconflictError):
    def __init__(self, filing_id: str, from_state: str, to_state: str) -> None:
        self.filing_id = filing_id
        self.from_state = from_state
        self.to_state = to_state
        super().__init__(f"filing {filing_id!r}: cannot go from {from_state} to {to_state}")


class MissingKey(DeconflictError):
    """A filing conflicts with versions its key does not list (ASTM F3548-21 'key').

    `missing` holds one mapping per version the submitter has not shown it has seen.
    """

    def __init__(self, missing: Sequence[dict[str, Any]]) -> None:
        self.missing = tuple(missing)
        super().__init__(f"key is missing {len(self.missing)} conflicting version(s)")


class ConflictRefused(DeconflictError):
    """The agreement says `block` and the filing conflicts with filings of equal or
    higher priority. `conflicts` are the findings (wire-ready mappings)."""

    def __init__(self, conflicts: Sequence[dict[str, Any]]) -> None:
        self.conflicts = tuple(conflicts)
        super().__init__(f"filing conflicts with {len(self.conflicts)} filing(s) and the agreement blocks it")


class StoreUnavailable(DeconflictError):
    """The storage itself failed (I/O, locked past the busy timeout, corrupt or too
    new a database, closed); nothing of the failed write was committed."""


class WriteContention(StoreUnavailable):
    """A write collided with a concurrent one (a serialisation failure or deadlock on
    a server database) and was rolled back; running it again may well succeed."""


class PartyDown(DeconflictError):
    """The caller is marked Down (ASTM F3548-21 USS availability) and may not file,
    keep or withdraw an accepted or activated filing until it is marked up again."""

    def __init__(self, party_id: str) -> None:
        self.party_id = party_id
        super().__init__(
            f"party {party_id!r} is marked Down: it may not file, keep or withdraw an accepted or "
            "activated filing until its availability is set to Normal"
        )


class LateNotice(DeconflictError):
    """Notice shorter than the agreed minimum, and the agreement says `reject`."""

    def __init__(self, kind: str, notice_s: float, min_notice_s: float) -> None:
        self.kind = kind
        self.notice_s = notice_s
        self.min_notice_s = min_notice_s
        super().__init__(
            f"notice of {notice_s:.0f} s is shorter than the {min_notice_s:.0f} s agreed for {kind}"
        )
