"""Job ids: the one place where an id from outside (a URL, a form, a Socket.IO payload) is checked.

A job id is 16 lowercase hex digits, made by :func:`new_job_id`. Routes take it through :class:`JobIdConverter`,
so a request whose id has any other form never reaches a handler (404 with a sentence); Socket.IO handlers call
:func:`is_job_id`. A path is built from an id only through :func:`server.paths.inside`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from werkzeug.routing import BaseConverter

JOB_ID_PATTERN = r"[0-9a-f]{16}"
_JOB_ID = re.compile(JOB_ID_PATTERN)


def new_job_id() -> str:
    return uuid.uuid4().hex[:16]


def is_job_id(value: Any) -> bool:
    """Whether ``value`` has the exact form of a job id (a str of 16 lowercase hex digits)."""
    return isinstance(value, str) and _JOB_ID.fullmatch(value) is not None


class JobIdConverter(BaseConverter):
    """``<job:job_id>`` in a route: matches only a well-formed job id."""

    regex = JOB_ID_PATTERN
