"""Transcribing a slice again, optionally by a named engine or model: what may be redone and who may take it.

A done or failed slice goes back to the queue with its tries reset; its old text stays stored (and shown, marked
as being redone) until the new text replaces it. A slice with corrections is redone only when the request says
the corrections may go (``replace_corrections``): the page asks the person first. The engine and model asked for
are kept with the slice (``asked_engine``, ``asked_model``), so only matching workers take it, after a restart
too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import bodies
from .corrections import Refused
from .scheduler import Requirement
from .store import JobRecord, SliceRecord

USAGE = ('send nothing, or JSON {"engine": "sphinx", "model": "", "replace_corrections": false} (every field '
         'optional)')


@dataclass(frozen=True)
class Redo:
    """What a "transcribe again" asks: the workers that may take it, and whether corrections may be lost."""

    asked: Requirement = Requirement()
    replace_corrections: bool = False


def parse(body: bytes | None) -> Redo:
    """A request body (empty, or a JSON object) → a :class:`Redo`; :class:`Refused` (400) otherwise."""
    data = bodies.json_object(body, USAGE, empty={})
    unknown = sorted(set(data) - {"engine", "model", "replace_corrections"})
    if unknown:
        raise Refused(400, f"unknown field(s) {', '.join(map(repr, unknown))}: {USAGE}")
    try:
        asked = requirement(data.get("engine"), data.get("model"))
    except ValueError as exc:
        raise Refused(400, f"{exc}: {USAGE}") from None
    replace = data.get("replace_corrections", False)
    if not isinstance(replace, bool):
        raise Refused(400, "'replace_corrections' is true or false")
    return Redo(asked, replace)


#: What an engine or model name may be (the worker's own names: faster-whisper, tiny.en, openai/whisper-…).
NAME = re.compile(r"[\w.\-/]{0,128}")


def requirement(engine: object, model: object) -> Requirement:
    """The engine and model a job or a redo asks for (each a name of :data:`NAME`, or "" / None for any);
    ValueError naming the field otherwise. ``0``, ``false`` or ``[]`` are not "any": they are refused."""
    names = {}
    for field, value in (("engine", engine), ("model", model)):
        value = "" if value is None else value
        if not isinstance(value, str):
            raise ValueError(f"'{field}' must be a string (or left out for any {field})")
        value = value.strip()
        if not NAME.fullmatch(value):
            raise ValueError(f"'{field}' may hold only letters, digits, '.', '-', '_' and '/', at most 128 of them")
        names[field] = value
    return Requirement(names["engine"], names["model"])


def check(s: SliceRecord, redo: Redo) -> None:
    """:class:`Refused` when slice ``s`` may not be transcribed again now."""
    if s.status in ("queued", "leased"):
        where = "waiting for a worker" if s.status == "queued" else "on a worker"
        raise Refused(409, f"slice {s.index} is being transcribed already ({where})")
    if s.edits and not redo.replace_corrections:
        n = len(s.edits)
        raise Refused(409, f"slice {s.index} has {n} correction{'s' if n > 1 else ''}: transcribing it again "
                               "replaces them with the new text. Send \"replace_corrections\": true to go on.",
                          corrected=True)


def slice_requirement(job: JobRecord, s: SliceRecord) -> Requirement:
    """Who may take slice ``s``: what its "transcribe again" asked for, else what the job asks."""
    if s.asked_engine or s.asked_model:
        return Requirement(s.asked_engine, s.asked_model)
    return Requirement(job.engine, job.model)
