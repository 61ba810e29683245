"""JSON as the server writes it: never NaN or Infinity.

Python's ``json`` writes a float infinity as a bare ``Infinity``, which is not JSON: browsers' and node's
``JSON.parse`` reject the whole document. Every number that comes in is checked at the edge (``payloads``);
these writers use ``allow_nan=False`` as well, so if one ever slips through the request that would carry it
fails loudly (a logged 500) instead of every later reader of the job failing quietly.
"""

from __future__ import annotations

import json
from typing import Any

from flask.json.provider import DefaultJSONProvider


def dumps(obj: Any, **kwargs: Any) -> str:
    kwargs["allow_nan"] = False
    return json.dumps(obj, **kwargs)


loads = json.loads


class FlaskJSON(DefaultJSONProvider):
    """Flask's ``jsonify`` and ``app.json``, with ``allow_nan=False``."""

    sort_keys = False  # a view's fields in the order views.py writes them

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        kwargs["allow_nan"] = False
        return super().dumps(obj, **kwargs)


class SocketIOJSON:
    """The ``json`` module Socket.IO encodes packets with (``SocketIO(json=...)``)."""

    dumps = staticmethod(dumps)
    loads = staticmethod(loads)
