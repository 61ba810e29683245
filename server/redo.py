"""Transcribing a slice again, optionally by a named engine or model: what may be redone and who may take it.

A done or failed slice goes back to the queue with its tries reset; its old text, and its corrections with the
worker's original, stay as they are (in the transcript, every download and the API) until the new text replaces
them (``Store.finish_slice``). A slice with corrections is redone only when the request says the corrections may
go (``replace_corrections``): the page asks the person first. The engine and model asked for are kept with the
slice (``asked_engine``, ``asked_model``), so only matching workers take it, after a restart too.

A redo that no connected worker can take is refused (409, naming what was asked and who is connected) rather
than left waiting with the job back at "running". One that waits anyway (its worker went away) can be called
off (:func:`cancelled`); one whose new tries all fail (:func:`after_failure`) goes back to what the slice was:
a done slice keeps its text, with a note saying the new try failed. ``redo_of`` holds the status to go back to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import bodies
from .corrections import Refused
from .records import JobRecord, SliceRecord
from .scheduler import Requirement, Scheduler
from .states import OPEN_SLICE, SliceStatus

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


def check(s: SliceRecord, redo: Redo, scheduler: Scheduler, wanted: Requirement) -> None:
    """:class:`Refused` when slice ``s`` may not be transcribed again now by workers ``wanted`` accepts."""
    if s.status in OPEN_SLICE:
        where = "waiting for a worker" if s.status == SliceStatus.QUEUED else "on a worker"
        again = ": DELETE this URL to call that off" if s.redo_of else ""
        raise Refused(409, f"slice {s.index} is being transcribed already ({where}){again}")
    if not scheduler.can_serve(wanted, s.seconds):
        raise Refused(409, no_taker(s, wanted, scheduler))
    if s.edits and not redo.replace_corrections:
        n = len(s.edits)
        raise Refused(409, f"slice {s.index} has {n} correction{'s' if n > 1 else ''}: transcribing it again "
                               "replaces them with the new text. Send \"replace_corrections\": true to go on.",
                          corrected=True)


def _named(engine: str, model: str) -> str:
    return " ".join(part for part in (engine, model) if part)


def no_taker(s: SliceRecord, wanted: Requirement, scheduler: Scheduler) -> str:
    """Why no connected worker can take slice ``s`` again: what was asked, and who is connected."""
    connected = sorted({_named(w.info.engine, w.info.model) for w in scheduler.workers.values()})
    if not connected:
        return f"no worker is connected to transcribe slice {s.index} again: start one, then ask again"
    asked = _named(wanted.engine, wanted.model)
    if asked and not any(wanted.accepts(w.info.engine, w.info.model) for w in scheduler.workers.values()):
        return (f"no connected worker runs {asked} (connected: {', '.join(connected)}): start a worker with "
                f"that engine and model, or ask for one of those")
    return (f"no connected worker{' that runs ' + asked if asked else ''} takes a slice of {s.seconds:.1f} s "
            f"(connected: {', '.join(connected)}); ask again once one is")


def queued(s: SliceRecord, asked: Requirement) -> dict[str, object]:
    """The columns that send slice ``s`` to be transcribed again by workers ``asked`` accepts; its text,
    corrections and last error stay until the new text (or the end of the new try) comes."""
    return {"status": SliceStatus.QUEUED, "worker": "", "attempts": 0, "redo_of": s.status,
            "asked_engine": asked.engine, "asked_model": asked.model}


def cancelled(s: SliceRecord) -> dict[str, object]:
    """The columns that call off the new try of slice ``s``: back to what it was. :class:`Refused` (409) when
    it is not being transcribed again."""
    if not s.redo_of or s.status not in OPEN_SLICE:
        raise Refused(409, f"slice {s.index} is not being transcribed again (it is {s.status}): nothing to call "
                           "off")
    return {"status": s.redo_of, "worker": "", "redo_of": ""}


def after_failure(s: SliceRecord | None, reason: str, now: float) -> dict[str, object]:
    """The columns for a slice whose tries have all failed (``reason``): failed, unless it was done before it
    was sent again; then it stays done with the text it had, and its ``error`` says the new try failed."""
    if s is not None and s.redo_of == SliceStatus.DONE:
        return {"status": SliceStatus.DONE, "worker": "", "redo_of": "",
                "error": f"transcribing it again failed ({reason}); it keeps the text it had"}
    return {"status": SliceStatus.FAILED, "worker": "", "error": reason, "finished_at": now, "redo_of": ""}


def wanted(job: JobRecord, redo: Redo) -> Requirement:
    """Who may take a slice of ``job`` that ``redo`` sends again: the engine or model it names, else what the
    job asks."""
    return redo.asked if redo.asked.engine or redo.asked.model else Requirement(job.engine, job.model)


def slice_requirement(job: JobRecord, s: SliceRecord) -> Requirement:
    """Who may take slice ``s``: what its "transcribe again" asked for, else what the job asks."""
    if s.asked_engine or s.asked_model:
        return Requirement(s.asked_engine, s.asked_model)
    return Requirement(job.engine, job.model)
