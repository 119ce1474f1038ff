"""RFC 8785 JSON Canonicalization Scheme (JCS) for Python values. Pure: no I/O.

Two parties that hash or sign the same logical value must produce the same bytes:
members sorted by their names' UTF-16 code units, no whitespace, numbers written as
ECMAScript ``Number.prototype.toString`` writes them, strings escaped only where
RFC 8785 §3.2.2.2 requires it, and the result encoded as UTF-8.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeAlias

__all__ = ["JSONValue", "MAX_SAFE_INTEGER", "canonicalize", "format_number"]

JSONValue: TypeAlias = Mapping[str, "JSONValue"] | Sequence["JSONValue"] | str | int | float | bool | None

MAX_SAFE_INTEGER = 2**53
"""Largest integer magnitude accepted: every integer up to it is an exact IEEE 754 double."""

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_STRING_TABLE = {i: f"\\u{i:04x}" for i in range(0x20)}
_STRING_TABLE.update({ord(k): v for k, v in _ESCAPES.items()})


def canonicalize(value: JSONValue) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``.

    Accepts dict (str keys), list/tuple, str, int, float, bool and None. Raises
    ValueError for NaN, infinities, integers beyond +/-2**53, and strings holding lone
    surrogates; TypeError for any other type or a non-string key.
    """
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts).encode("utf-8")


def format_number(value: float | int) -> str:
    """The ECMAScript ``Number.prototype.toString`` form of a finite double."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a number")
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(
                f"integer {value} is beyond +/-2**53 and has no exact JSON number; send it as a string"
            )
        return str(value)
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not allowed in JSON (RFC 8785 §3.2.2.3)")
    if value == 0:
        return "0"  # also -0.0
    sign = "-" if value < 0 else ""
    digits, n = _shortest_digits(abs(value))
    k = len(digits)
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * -n + digits
    else:
        exp = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        body = f"{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp)}"
    return sign + body


def _shortest_digits(x: float) -> tuple[str, int]:
    """Digits ``s`` and exponent ``n`` with x == 0.s * 10**n, ``s`` shortest round-trip.

    Python's repr gives the shortest string that round-trips, nearest to the value
    on ties, which is what ECMAScript's Number::toString requires.
    """
    text = repr(x)
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, frac = mantissa.partition(".")
    raw = whole + frac
    stripped = raw.lstrip("0")
    leading = len(raw) - len(stripped)
    digits = stripped.rstrip("0")
    return digits, len(whole) - leading + exponent


def _write_string(text: str, parts: list[str]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"string {text!r} holds a lone surrogate at {exc.start}; JSON needs valid Unicode"
        ) from None
    parts.append('"')
    parts.append(text.translate(_STRING_TABLE))
    parts.append('"')


def _utf16_key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _write(value: JSONValue, parts: list[str]) -> None:
    if value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int | float):
        parts.append(format_number(value))
    elif isinstance(value, str):
        _write_string(value, parts)
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"object member names must be str, got {type(key).__name__}")
        parts.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                parts.append(",")
            _write_string(key, parts)
            parts.append(":")
            _write(value[key], parts)
        parts.append("}")
    elif isinstance(value, list | tuple):
        parts.append("[")
        for i, item in enumerate(value):
            if i:
                parts.append(",")
            _write(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")
