"""JSON request bodies: every route that takes one reads it with :func:`read` and parses it with
:func:`json_object`, so each refuses the same things the same way.

- A body over the route's limit gets 413 before any of it is read (its ``Content-Length`` says so); one sent
  without a length is read only up to the limit.
- A body that is not UTF-8 JSON, is nested deeper than :data:`strict_json.MAX_DEPTH` (Python's parser
  recursed once per level: 100 000 brackets were a RecursionError and a 500), or is not an object gets 400 with
  a sentence that ends with the route's usage.
"""

from __future__ import annotations

from typing import Any

from flask import request

from . import strict_json


class Refused(ValueError):
    """A request that cannot be done; ``status`` is the HTTP status that says why, ``extra`` goes in the
    answer."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.extra = status, extra


def read(limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes; :class:`Refused` (413) without reading it when its
    ``Content-Length`` says it is longer, or once more than ``limit`` bytes have come."""
    too_long = Refused(413, f"the request body is over {limit // 1024} KB; this request needs far less")
    if (request.content_length or 0) > limit:
        raise too_long
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise too_long
    return body


def json_object(body: bytes | None, usage: str, empty: dict[str, Any] | None = None) -> dict[str, Any]:
    """``body`` as a JSON object; ``empty`` for a body of nothing but white space when given, else
    :class:`Refused` (400) ending in ``usage``, as for anything that is not a JSON object."""
    if not body or not body.strip():
        if empty is not None:
            return empty
        raise Refused(400, f"the request has no body: {usage}")
    try:
        data = strict_json.loads(body)
    except strict_json.TooDeep as exc:
        raise Refused(400, f"{exc}: {usage}") from None
    except ValueError:  # not JSON, or not UTF-8
        raise Refused(400, f"the body is not JSON: {usage}") from None
    if not isinstance(data, dict):
        raise Refused(400, f"the body is JSON but not an object: {usage}")
    return data
