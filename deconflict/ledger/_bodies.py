"""Typed reads of entry bodies for the log's readers (stats, replay).

A body is whatever JSON the service wrote for its kind (see
:mod:`deconflict.service.ledger`); a field missing or of the wrong type is reported as
:class:`InvalidInput` naming the entry's index and the field, e.g. ``entries[7].body.owner``.
"""

from __future__ import annotations

from collections.abc import Mapping

from deconflict.errors import InvalidInput
from deconflict.ledger.canonical import JSONValue

__all__ = ["field_bool", "field_map", "field_num", "field_str"]


def _get(index: int, body: Mapping[str, JSONValue], name: str) -> JSONValue:
    if name not in body:
        raise InvalidInput.one(f"entries[{index}].body.{name}", "is required")
    return body[name]


def field_str(index: int, body: Mapping[str, JSONValue], name: str) -> str:
    value = _get(index, body, name)
    if not isinstance(value, str):
        raise InvalidInput.one(f"entries[{index}].body.{name}", "must be a string")
    return value


def field_num(index: int, body: Mapping[str, JSONValue], name: str) -> float:
    value = _get(index, body, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput.one(f"entries[{index}].body.{name}", "must be a number")
    return float(value)


def field_bool(index: int, body: Mapping[str, JSONValue], name: str) -> bool:
    value = _get(index, body, name)
    if not isinstance(value, bool):
        raise InvalidInput.one(f"entries[{index}].body.{name}", "must be true or false")
    return value


def field_map(index: int, body: Mapping[str, JSONValue], name: str) -> Mapping[str, JSONValue]:
    value = _get(index, body, name)
    if not isinstance(value, dict):
        raise InvalidInput.one(f"entries[{index}].body.{name}", "must be a JSON object")
    return value
