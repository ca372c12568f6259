"""User values in error messages, at a bounded cost.

A value a user supplied can be huge (a YAML alias chain expands to gigabytes, a CSV cell can be a
megabyte): formatting it whole would cost more than the mistake. Every message that quotes a user
value goes through ``show`` (a repr cut at every level) or ``shorten`` (plain text cut to a limit).
"""

from __future__ import annotations

import reprlib

_LIMIT = 60

_repr = reprlib.Repr()
_repr.maxlevel = 2
_repr.maxdict = 4
_repr.maxlist = 4
_repr.maxtuple = 4
_repr.maxset = 4
_repr.maxstring = _LIMIT
_repr.maxlong = 40
_repr.maxother = _LIMIT


def show(value: object) -> str:
    """``repr(value)``, cut so that its cost and length stay small whatever the value holds."""
    text = _repr.repr(value)
    return text if len(text) <= 2 * _LIMIT else text[: 2 * _LIMIT] + "..."


def shorten(text: object, limit: int = 2 * _LIMIT) -> str:
    """``str(text)`` cut to ``limit`` characters (with "..." when cut).

    An exception gives its message on one line (its type's name when it has none), never its
    repr: "Expected 6 fields in line 3", not "ParserError('Expected 6 fi...".
    """
    if isinstance(text, BaseException):
        value = " ".join(str(text).split()) or type(text).__name__
    else:
        value = text if isinstance(text, str) else _repr.repr(text)
    return value if len(value) <= limit else value[:limit] + "..."
