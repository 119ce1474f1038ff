"""RFC 8785 (JCS) known answers and properties."""

from __future__ import annotations

import json
import math
import re
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deconflict.ledger import canonical
from deconflict.ledger.canonical import (
    MAX_SAFE_INTEGER,
    JSONValue,
    canonicalize,
    canonicalize_reference,
    format_number,
)

# RFC 8785 Appendix B: IEEE 754 bit pattern -> JSON text.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def _double(bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(bits))[0]
    return value


@pytest.mark.parametrize(("bits", "text"), APPENDIX_B)
def test_appendix_b_numbers(bits: str, text: str) -> None:
    assert format_number(_double(bits)) == text
    assert canonicalize([_double(bits)]) == f"[{text}]".encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_appendix_b_non_finite_are_refused(bits: str) -> None:
    with pytest.raises(ValueError, match="not allowed in JSON"):
        canonicalize({"x": _double(bits)})


def test_section_3_2_2_example() -> None:
    value = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    want = (
        '{"literals":[null,true,false],'
        '"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(value) == want.encode("utf-8")


def test_section_3_2_4_utf8_bytes() -> None:
    assert canonicalize({"\u20ac": "\u00f6"}) == b'{"\xe2\x82\xac":"\xc3\xb6"}'


def test_section_3_2_3_sorting_example() -> None:
    value: JSONValue = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    out = canonicalize(value).decode("utf-8")
    assert list(json.loads(out)) == [
        "\r",
        "1",
        "\u0080",
        "\u00f6",
        "\u20ac",
        "\U0001f600",  # surrogate pair D83D DE00 sorts before FB33 in UTF-16
        "\ufb33",
    ]
    assert out.startswith('{"\\r":"Carriage Return","1":"One","\u0080":"Control",')


def test_sorting_is_by_utf16_not_code_point() -> None:
    assert canonicalize({"\ufb33": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb33":1}'.encode()


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('"', '"\\""'),
        ("\\", '"\\\\"'),
        ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
        ("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"'),
        ("\x0b\x1e", '"\\u000b\\u001e"'),  # lowercase hex
        ("\x7f", '"\x7f"'),  # DEL is not a control character for JSON
        ("/", '"/"'),  # solidus is never escaped
        ("</script>", '"</script>"'),
        ("é€\U0001f600", '"é€\U0001f600"'),  # non-ASCII stays as UTF-8
        ("\u2028\u2029", '"\u2028\u2029"'),
    ],
)
def test_string_escapes(text: str, want: str) -> None:
    assert canonicalize(text) == want.encode("utf-8")


def test_literals_and_nesting() -> None:
    value: JSONValue = {"b": [1, {"z": None, "a": True}], "a": [], "c": {}, "d": False}
    assert canonicalize(value) == b'{"a":[],"b":[1,{"a":true,"z":null}],"c":{},"d":false}'
    assert canonicalize((1, 2)) == b"[1,2]"


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (0, "0"),
        (-0.0, "0"),
        (1.0, "1"),
        (-1, "-1"),
        (100.0, "100"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (1.25e-7, "1.25e-7"),
        (0.1, "0.1"),
        (123.456, "123.456"),
        (MAX_SAFE_INTEGER, "9007199254740992"),
        (-MAX_SAFE_INTEGER, "-9007199254740992"),
    ],
)
def test_number_forms(number: float, text: str) -> None:
    assert format_number(number) == text


def test_refusals() -> None:
    with pytest.raises(ValueError, match="beyond"):
        canonicalize(MAX_SAFE_INTEGER + 1)
    with pytest.raises(ValueError, match="not allowed"):
        canonicalize([math.nan])
    with pytest.raises(ValueError, match="not allowed"):
        canonicalize(-math.inf)
    with pytest.raises(ValueError, match="lone surrogate"):
        canonicalize("a\ud800")
    with pytest.raises(ValueError, match="lone surrogate"):
        canonicalize({"\udc00": 1})
    with pytest.raises(TypeError, match="member names must be str"):
        canonicalize({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="bytes is not a JSON value"):
        canonicalize(b"x")  # bytes is a Sequence to the type checker, not JSON
    with pytest.raises(TypeError, match="bool is not a number"):
        format_number(True)


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(finite)
def test_float_text_round_trips_and_matches_python_value(x: float) -> None:
    text = format_number(x)
    assert float(text) == x
    assert re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?(e[+-][1-9][0-9]*)?", text)
    if "e" in text:
        assert abs(x) >= 1e21 or abs(x) < 1e-6


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | finite
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_output_parses_to_the_same_value_and_is_a_fixed_point(value: JSONValue) -> None:
    out = canonicalize(value)
    parsed = json.loads(out, parse_int=float)  # JSON numbers are doubles (RFC 8785 §3.2.2.3)
    assert parsed == value  # 1 == 1.0 and -0.0 == 0, as in JSON
    assert canonicalize(parsed) == out


# names and strings that make the fast writer take every branch: astral characters
# (UTF-16 order differs from code-point order), controls, quotes, non-ASCII text
TRICKY = 'aZ0"\\\n\x01\x1f\x7f\u00e9\u05e9\ufb01\uffff\U0001f600\U00010000 '
tricky_text = st.text(st.sampled_from(TRICKY), max_size=4)
tricky_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | finite
    | st.sampled_from([0.0, -0.0, 1.0, -3.0, 1e16, 1e21, 1e-7, 123456789012.0, 5e-324])
    | tricky_text,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(tricky_text, inner, max_size=5)
    ),
    max_leaves=25,
)


@given(tricky_values)
def test_fast_writer_matches_the_plain_reference(value: JSONValue) -> None:
    assert canonicalize(value) == canonicalize_reference(value)


@pytest.mark.parametrize(
    "value",
    [
        MAX_SAFE_INTEGER + 1,
        [-MAX_SAFE_INTEGER - 1],
        {"a": math.nan},
        [math.inf],
        ["a\ud800"],
        {"\udc00": 1},
        {1: "x"},
        [b"x"],
        {"a": {"b": [1, {2: 3}]}},
    ],
)
def test_fast_writer_refuses_what_the_reference_refuses(value: object) -> None:
    with pytest.raises((ValueError, TypeError)) as fast:
        canonicalize(value)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError)) as plain:
        canonicalize_reference(value)  # type: ignore[arg-type]
    assert (type(fast.value), str(fast.value)) == (type(plain.value), str(plain.value))


def test_an_object_whose_names_were_written_before_is_written_the_same() -> None:
    """The second time, every name comes from the fast writer's cache of quoted names
    (`_NAMES`); names beyond U+FFFF are never cached, so UTF-16 order still holds."""
    value: JSONValue = {
        "b": 1,
        "a\n": [1.5, {"\u00e9": "x", "\U0001f600": 2, "\uffff": 3}],
        "z": {"b": True, "a": None, "c": [[1.0, 2.5], [3.25, -0.0]]},
    }
    first = canonicalize(value)
    assert canonicalize(value) == first == canonicalize_reference(value)
    assert "\U0001f600" not in canonical._NAMES
    with pytest.raises(TypeError, match="member names must be str"):
        canonicalize({"b": 1, 2: "x"})  # type: ignore[dict-item]  # "b" is cached, 2 is not a name


def test_objects_of_one_shape_are_written_from_its_cached_order() -> None:
    """The fast writer keeps each shape's sorted order (`_SHAPES`): another object of
    that shape, with other values, and the same names made in another order, come out
    as the reference writes them."""
    first: JSONValue = {"zq": 1, "aq": 'x\u0001"\\\x7f', "mq": [2.5, -0.0]}
    canonicalize(first)  # names now known
    assert canonicalize(first) == canonicalize_reference(first)
    assert ("zq", "aq", "mq") in canonical._SHAPES
    again: JSONValue = {"zq": "\t\u2067", "aq": None, "mq": {"zq": 1e21, "aq": []}}
    assert canonicalize(again) == canonicalize_reference(again)
    reordered: JSONValue = {"mq": [2.5, -0.0], "aq": 'x\u0001"\\\x7f', "zq": 1}
    want = b'{"aq":"x\\u0001\\"\\\\\x7f","mq":[2.5,0],"zq":1}'
    assert canonicalize(reordered) == canonicalize(first) == want
    assert canonicalize({}) == canonicalize_reference({}) == b"{}"
    with pytest.raises(ValueError, match="lone surrogate"):
        canonicalize({"zq": 1, "aq": "\ud800", "mq": 2})
