"""Frozen value objects. No I/O here."""

from deconflict.model.agreement import Agreement, KindRules
from deconflict.model.conflict import Conflict, ConflictState, Finding, Separation
from deconflict.model.filing import Filing, FilingRef, FilingType, State
from deconflict.model.message import SERVICE, Delivery, Event, Message, PartyStatus, Webhook
from deconflict.model.party import Party, Role
from deconflict.model.volume import Circle, Outline, Polygon, Volume4D

__all__ = [
    "SERVICE",
    "Agreement",
    "Circle",
    "Conflict",
    "Delivery",
    "Event",
    "ConflictState",
    "Filing",
    "FilingRef",
    "FilingType",
    "Finding",
    "KindRules",
    "Message",
    "Outline",
    "Party",
    "PartyStatus",
    "Polygon",
    "Role",
    "Separation",
    "State",
    "Volume4D",
    "Webhook",
]
