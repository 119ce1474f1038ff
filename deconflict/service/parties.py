"""Party registry use cases: create parties, issue and check credentials."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from deconflict.clock import Clock
from deconflict.errors import Forbidden, InvalidInput, Unauthorized
from deconflict.ledger.entries import Kind
from deconflict.model import Agreement, Party, Role
from deconflict.model.agreement import ID_PATTERN
from deconflict.service.ledger import Ledger, Receipt, party_body
from deconflict.store.base import Store, Writer, retrying

_ID = re.compile(ID_PATTERN)
_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
TOKEN_PREFIX = "dcf_"


def hash_token(token: str) -> bytes:
    """Tokens are 256-bit random strings, so one SHA-256 is the right hash (no KDF needed)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class PartyCreated:
    party: Party
    token: str
    """The API token, shown once and stored hashed."""
    receipt: Receipt
    """Where the `party_added` entry sits in the log."""


class Parties:
    def __init__(
        self, store: Store, agreement: Agreement, clock: Clock, ledger: Ledger | None = None
    ) -> None:
        self.store = store
        self.agreement = agreement
        self.clock = clock
        self.ledger = ledger if ledger is not None else Ledger.ephemeral(store, clock)

    def add(
        self,
        party_id: str,
        *,
        role: Role = Role.OPERATOR,
        name: str | None = None,
        language: str | None = None,
        caller: Party | None = None,
    ) -> tuple[Party, str]:
        """Create a party; returns it and its API token (see `create`)."""
        created = self.create(party_id, role=role, name=name, language=language, caller=caller)
        return created.party, created.token

    def create(
        self,
        party_id: str,
        *,
        role: Role = Role.OPERATOR,
        name: str | None = None,
        language: str | None = None,
        caller: Party | None = None,
    ) -> PartyCreated:
        """Create a party, with its API token (shown once, stored hashed) and the receipt
        of the `party_added` entry recorded with it.

        `caller` is None for the local CLI (which has the data directory) and must be
        an admin otherwise. An operator must be a signatory of the agreement.
        """
        if caller is not None and caller.role is not Role.ADMIN:
            raise Forbidden("only an admin manages parties")
        if not isinstance(party_id, str) or not _ID.match(party_id):
            raise InvalidInput.one(
                "id", "must be 1-63 characters of a-z, 0-9, '_' or '-', starting alphanumeric"
            )
        signed = self.agreement.party(party_id)
        if role is Role.OPERATOR and signed is None:
            raise InvalidInput.one(
                "id",
                f"operator {party_id!r} is not a party to the agreement "
                f"(its parties: {', '.join(p.id for p in self.agreement.parties)})",
            )
        name = name if name is not None else (signed.name if signed else party_id)
        language = language if language is not None else (signed.language if signed else "en")
        if not name.strip() or len(name) > 200:
            raise InvalidInput.one("name", "must be 1-200 characters")
        if not _LANG.match(language):
            raise InvalidInput.one("language", "must be a BCP 47 language tag such as 'en' or 'ar'")
        party = Party(party_id, name, language, role, self.clock.now())
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        entry = self.ledger.entry(Kind.PARTY_ADDED, party_body(party), party.created_at)

        def write(w: Writer) -> Receipt:
            w.add_party(party, hash_token(token))
            return self.ledger.append(w, [entry])[0]

        return PartyCreated(party, token, retrying(self.store, write))

    def rotate(self, party_id: str, *, caller: Party | None = None) -> str:
        if caller is not None and caller.role is not Role.ADMIN:
            raise Forbidden("only an admin manages parties")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock.now()

        def write(w: Writer) -> None:
            w.set_party_token(party_id, hash_token(token))
            self.ledger.record(w, Kind.PARTY_TOKEN_ROTATED, {"id": party_id}, now)

        retrying(self.store, write)
        return token

    def get(self, party_id: str) -> Party | None:
        with self.store.read() as r:
            return r.get_party(party_id)

    def all(self) -> list[Party]:
        with self.store.read() as r:
            return r.list_parties()

    def authenticate(self, token: str | None) -> Party:
        if not token:
            raise Unauthorized("a bearer token is required")
        with self.store.read() as r:
            party = r.party_for_token(hash_token(token))
        if party is None:
            raise Unauthorized("the token matches no party")
        return party
