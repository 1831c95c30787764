"""JSON text read as orjson reads it, except that integers of any size stay exact.

orjson reads an integer beyond 64 bits as a float, without a word: an order
number of 30 digits in an event's properties became 1.2345678901234568e+29,
and a rule comparing it never matched. Every such integer has a run of 19
ASCII digits (and so may a string or a float's fraction): a text with one is
read by json instead, whose integers are exact. The run is looked for with
every ASCII digit made "1" and every other byte "0" (0.3 µs for an event of
200 bytes, against some 1 µs for orjson's parse). Event files, the service's
request bodies (`_service.bodies`) and the batch engine's texts are read by
:func:`loads`; the store's own texts, checked when they came in, use
:func:`may_hold_big_integer` with a plain json fallback (`_store.log`).

What json reads that orjson refuses is refused here too, so the two paths
accept the same texts: NaN and Infinity, a number too large for a double
(1e400), bytes that are not UTF-8, and nesting deeper than json's recursion.
Every refusal is a :class:`json.JSONDecodeError` (orjson's own error is one),
with its `msg` and `colno`.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

import orjson

_DIGITS: Final = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
_LONG_RUN: Final = b"1" * 19


def may_hold_big_integer(data: bytes) -> bool:
    """Whether `data` has a run of 19 ASCII digits, as any integer past 64 bits has."""
    return _LONG_RUN in data.translate(_DIGITS)


def loads(data: bytes | str) -> Any:
    """`data` as JSON, integers exact; a json.JSONDecodeError when it is not JSON."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not may_hold_big_integer(raw):
        return orjson.loads(data)
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise json.JSONDecodeError("not UTF-8 text", "", error.start) from None
    else:
        text = data

    def refused(constant: str) -> Any:
        raise json.JSONDecodeError(f"{constant} is not JSON", text, max(0, text.find(constant)))

    def finite(number: str) -> float:
        value = float(number)
        if not math.isfinite(value):
            where = max(0, text.find(number))
            raise json.JSONDecodeError("number is infinity when parsed as double", text, where)
        return value

    try:
        value = json.loads(text, parse_constant=refused, parse_float=finite)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None
    # json takes an escaped lone surrogate ("\ud800"), orjson does not: a
    # string with one is no Unicode text, refused whichever path reads it.
    if "\\u" in text:
        try:
            _SORTED.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            raise json.JSONDecodeError("a lone surrogate in a string", text, 0) from None
    return value


# The fallback of dumps_sorted: json's compact form, as orjson writes it.
_SORTED = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def dumps_sorted(value: Any) -> str:
    """`value` as JSON text with sorted keys; an integer past 64 bits, which
    orjson refuses (TypeError), written exactly by json."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        return _SORTED.encode(value)
