"""JSON as the server writes it (never NaN or Infinity) and reads it (never nested deeper than MAX_DEPTH).

Python's ``json`` writes a float infinity as a bare ``Infinity``, which is not JSON: browsers' and node's
``JSON.parse`` reject the whole document. Every number that comes in is checked at the edge (``payloads``);
these writers use ``allow_nan=False`` as well, so if one ever slips through the request that would carry it
fails loudly (a logged 500) instead of every later reader of the job failing quietly.

Python's parser recurses once per level of nesting: ``[[[[…`` 100 000 deep is a RecursionError, which no
handler expects (a 500 with a traceback from a route, an engine.io traceback per Socket.IO packet). Nothing the
server takes is nested more than a few levels, so :func:`loads` refuses deeper JSON with :class:`TooDeep` (a
ValueError, as malformed JSON is) before parsing it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import numpy as np
from flask.json.provider import DefaultJSONProvider

log = logging.getLogger("scatterscribe")

#: Deepest nesting of arrays and objects taken (a worker's result is 4 levels deep, a Socket.IO packet adds 1).
MAX_DEPTH = 32
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # a JSON string: its brackets are text
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_CHUNK = 1 << 20


class TooDeep(ValueError):
    """JSON nested deeper than :data:`MAX_DEPTH`."""

    def __init__(self):
        super().__init__(f"the JSON is nested more than {MAX_DEPTH} levels deep; nothing this server takes is")


def depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest (brackets inside strings do not count), in
    time linear in its length (regular expressions and numpy: no Python loop over a hostile 16 MB packet)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return MAX_DEPTH  # cannot be deeper: the common case costs two counts
    brackets = np.frombuffer(_NOT_BRACKET.sub("", _STRING.sub("", text)).encode("ascii"), dtype=np.uint8)
    level = deepest = 0
    for start in range(0, len(brackets), _CHUNK):  # a chunk at a time: 8 bytes a bracket, not of the whole text
        chunk = brackets[start:start + _CHUNK]
        levels = np.cumsum(np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1)) + level
        deepest, level = max(deepest, int(levels.max())), int(levels[-1])
    return deepest


def dumps(obj: Any, **kwargs: Any) -> str:
    kwargs["allow_nan"] = False
    return json.dumps(obj, **kwargs)


def loads(text: str | bytes) -> Any:
    """``json.loads``, refusing JSON nested deeper than :data:`MAX_DEPTH` (:class:`TooDeep`); bytes must be
    UTF-8 (UnicodeDecodeError, a ValueError, otherwise)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8")
    if depth(text) > MAX_DEPTH:
        raise TooDeep()
    try:
        return json.loads(text)
    except RecursionError:  # cannot happen below MAX_DEPTH; kept so a parser change cannot bring the 500 back
        raise TooDeep() from None


class FlaskJSON(DefaultJSONProvider):
    """Flask's ``jsonify`` and ``app.json``, with ``allow_nan=False``."""

    sort_keys = False  # a view's fields in the order views.py writes them

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs["allow_nan"] = False
        return super().dumps(obj, **kwargs)


#: The event a Socket.IO packet that could not be read becomes (:meth:`SocketIOJSON.loads`); the namespaces
#: answer it with :data:`UNREADABLE` (``events._OnePayload.on_unreadable``).
UNREADABLE_EVENT = "unreadable"
UNREADABLE = {"too_deep": f"the message is nested more than {MAX_DEPTH} levels deep; nothing this server takes "
                          "is: it was not read",
              "not_json": "the message is not JSON: it was not read"}


class SocketIOJSON:
    """The ``json`` module Socket.IO encodes and decodes packets with (``SocketIO(json=...)``).

    A packet whose JSON cannot be read (malformed, or nested too deeply) would raise inside engine.io, which
    logs a traceback per packet and answers nothing: one client could flood the log. It becomes the event
    :data:`UNREADABLE_EVENT` instead, keeping the packet's id, so the sender's acknowledgement says why."""

    dumps = staticmethod(dumps)

    @staticmethod
    def loads(text: str) -> Any:
        try:
            return loads(text)
        except TooDeep:
            reason = "too_deep"
        except ValueError:
            reason = "not_json"
        log.debug("refused a Socket.IO message: %s", UNREADABLE[reason])
        return [UNREADABLE_EVENT, reason]
