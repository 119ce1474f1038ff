"""RFC 8785 JSON Canonicalization Scheme (JCS) for Python values. Pure: no I/O.

Two parties that hash or sign the same logical value must produce the same bytes:
members sorted by their names' UTF-16 code units, no whitespace, numbers written as
ECMAScript ``Number.prototype.toString`` writes them, strings escaped only where
RFC 8785 §3.2.2.2 requires it, and the result encoded as UTF-8.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from json.encoder import encode_basestring as _quoted  # C: escapes exactly as RFC 8785 §3.2.2.2
from typing import TypeAlias

__all__ = ["JSONValue", "MAX_SAFE_INTEGER", "canonicalize", "canonicalize_reference", "format_number"]

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
    text = "".join(parts)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate somewhere: name the string it is in
        _check_strings(value)
        raise  # pragma: no cover - _check_strings raised


def canonicalize_reference(value: JSONValue) -> bytes:
    """`canonicalize` written plainly, one rule at a time: the reference the fast
    writer is checked against (tests), and the writer for values whose member names
    need UTF-16 ordering (characters beyond U+FFFF)."""
    parts: list[str] = []
    _write_plain(value, parts)
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
    _check_string(text)
    parts.append('"')
    parts.append(text.translate(_STRING_TABLE))
    parts.append('"')


def _check_string(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"string {text!r} holds a lone surrogate at {exc.start}; JSON needs valid Unicode"
        ) from None


def _check_strings(value: JSONValue) -> None:
    """Raise the lone-surrogate ValueError for the first string (or name) holding one."""
    if isinstance(value, str):
        _check_string(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_string(key)
            _check_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_strings(item)


def _utf16_key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _beyond_bmp(names: list[str]) -> bool:
    """Whether code-point order and UTF-16 order may differ among `names`."""
    return any(max(name, default="\0") > "\uffff" for name in names)


def _float_text(x: float) -> str:
    """`format_number(x)` by way of repr, which already gives ECMAScript's form for
    every finite double written without an exponent, but for a trailing ".0"."""
    text = repr(x)
    if "e" in text or "n" in text:  # exponent form, inf, nan: the general rule
        return format_number(x)
    if text.endswith(".0"):
        return "0" if text in ("0.0", "-0.0") else text[:-2]
    return text


#: Member names written before, each quoted and escaped with its colon ('"name":'):
#: only names within U+FFFF, whose code-point order is their UTF-16 order. Bounded: a
#: name beyond the bound is escaped each time it is written.
_NAMES: dict[str, str] = {}
_NAMES_MAX = 4096
#: Objects' member names in the order they were made (a "shape", every name in
#: `_NAMES`) -> each name with its quoted text, sorted, the first opening the object
#: ('{"name":') and the others following a comma: most entries are made by a few
#: functions, so a few shapes are written over and over. Bounded like `_NAMES`.
_SHAPES: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}
_SHAPES_MAX = 4096
_SHAPE_NAMES_MAX = 64


def _write(value: object, parts: list[str]) -> None:
    """The fast writer: exact built-in types first; strings escaped by json's C
    escaper, which writes exactly RFC 8785's escapes (two-character forms for the
    quote, the backslash, \\b \\f \\n \\r \\t; \\u00xx in lower case for the other
    controls; everything else as it is), and checked once at the end (`canonicalize`
    encodes the whole text); an object whose member names were all written before in
    the order of its shape (`_SHAPES`) or sorted as they are (`_NAMES`), any other by
    `_write_members`. Same output and refusals as `_write_plain`, which is written
    without any of this."""
    kind = type(value)
    if kind is dict:
        shape: tuple[str, ...] = tuple(value)  # type: ignore[arg-type]
        order = _SHAPES.get(shape)
        if order is None:
            try:
                quoted = [_NAMES[name] for name in shape]
            except KeyError:
                _write_members(value, parts)  # type: ignore[arg-type]
                return
            ordered = sorted(zip(shape, quoted, strict=True))
            order = tuple((key, ("{" if i == 0 else ",") + name) for i, (key, name) in enumerate(ordered))
            if len(_SHAPES) < _SHAPES_MAX and len(shape) <= _SHAPE_NAMES_MAX:
                _SHAPES[shape] = order
        if not order:
            parts.append("{}")
            return
        for key, name in order:
            parts.append(name)
            item = value[key]  # type: ignore[index]
            kind = type(item)
            if kind is str:
                parts.append(_quoted(item))
            elif kind is int and -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                parts.append(str(item))
            elif kind is float:
                parts.append(_float_text(item))
            else:
                _write(item, parts)
        parts.append("}")
    elif kind is str:
        parts.append(_quoted(value))  # type: ignore[arg-type]
    elif kind is float:
        parts.append(_float_text(value))  # type: ignore[arg-type]
    elif kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:  # type: ignore[operator]
            parts.append(str(value))
        else:
            parts.append(format_number(value))  # type: ignore[arg-type]  # raises
    elif kind is list or kind is tuple:
        parts.append("[")
        first = True
        for item in value:  # type: ignore[attr-defined]
            if first:
                first = False
            else:
                parts.append(",")
            kind = type(item)
            if kind is float:  # coordinates: the bulk of most documents
                parts.append(_float_text(item))
            elif kind is list and len(item) == 2 and type(item[0]) is float and type(item[1]) is float:
                parts.append("[" + _float_text(item[0]) + "," + _float_text(item[1]) + "]")
            else:
                _write(item, parts)
        parts.append("]")
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    else:  # subclasses, other mappings and sequences: the plain writer knows them
        _write_plain(value, parts)  # type: ignore[arg-type]


def _write_members(value: dict[object, object], parts: list[str]) -> None:
    """An object with a member name not in `_NAMES`: names checked, sorted by code
    point unless one lies beyond U+FFFF (then by UTF-16 code units), and remembered."""
    names = list(value)
    for name in names:
        if type(name) is not str:
            raise TypeError(f"object member names must be str, got {type(name).__name__}")
    text: list[str] = names  # type: ignore[assignment]
    if "".join(text).isascii() or not _beyond_bmp(text):
        text.sort()  # code-point order: UTF-16 order for names within U+FFFF
    else:
        text.sort(key=_utf16_key)
    parts.append("{")
    first = True
    for name in text:
        if first:
            first = False
        else:
            parts.append(",")
        quoted = _quoted(name) + ":"
        if len(_NAMES) < _NAMES_MAX and max(name, default="\0") <= "\uffff":
            _NAMES[name] = quoted
        parts.append(quoted)
        _write(value[name], parts)
    parts.append("}")


def _write_plain(value: JSONValue, parts: list[str]) -> None:
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
            _write_plain(value[key], parts)
        parts.append("}")
    elif isinstance(value, list | tuple):
        parts.append("[")
        for i, item in enumerate(value):
            if i:
                parts.append(",")
            _write_plain(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not a JSON value")
