"""Parties: the operators (and observers, and admins) known to the service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # manages the party registry; files nothing
    OPERATOR = "operator"  # files intents and constraints
    OBSERVER = "observer"  # sees filings and conflicts; files nothing


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    name: str
    language: str
    role: Role
    created_at: datetime

    @property
    def may_file(self) -> bool:
        return self.role is Role.OPERATOR
