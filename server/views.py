"""What the API and the pages are shown: jobs and workers as plain JSON-ready dicts.

Pure functions of the stored job and the scheduler's state; the coordinator calls them under its lock.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from . import paragraphs, redo, speakers, transcript
from .records import JobRecord, SliceRecord
from .scheduler import Requirement, Scheduler, WorkerState
from .states import OPEN_SLICE, SliceStatus


def job_view(job: JobRecord, scheduler: Scheduler, partial: dict[str, Any] | None = None) -> dict[str, Any]:
    """A job in full: status, progress, transcript so far, every slice, whether it waits for workers, and its
    speakers (every segment and word carries its ``speaker`` once they are known). ``partial`` is a live
    recording's tentative text of its open part (``{start, end, text}``, never stored)."""
    job = replace(job, slices=[replace(s, segments=speakers.labelled_segments(s.segments, job.speakers))
                               if s.segments else s for s in job.slices])
    done = sum(s.status == SliceStatus.DONE for s in job.slices)
    failed = sum(s.status == SliceStatus.FAILED for s in job.slices)
    open_slices = [s for s in job.slices if s.status in OPEN_SLICE]
    requirement = Requirement(job.engine, job.model)
    servable = all(scheduler.can_serve(redo.slice_requirement(job, s), s.seconds) for s in open_slices)
    return {
        "id": job.id, "name": job.name, "source": job.source, "status": job.status,
        "recording": job.recording, "created_at": job.created_at, "finished_at": job.finished_at,
        "duration": round(job.duration, 3),
        "engine": job.engine, "model": job.model, "note": job.note, "error": job.error, "stats": job.stats,
        "transcript": transcript.join_text(job.slices),
        "partial": partial,
        "progress": {"done": done, "failed": failed, "total": len(job.slices)},
        "eta_s": eta_s(job.id, open_slices, requirement, scheduler),
        "waiting_for_workers": bool(open_slices) and not servable,
        "slices": [{"index": s.index, "start": round(s.start, 3), "end": round(s.end, 3),
                    "pieces": [[round(a, 3), round(b, 3)] for a, b in s.pieces], "status": s.status,
                    "text": s.text, "worker": s.worker, "engine": s.engine, "model": s.model,
                    "attempts": s.attempts, "error": s.error, "elapsed": s.elapsed, "finished_at": s.finished_at,
                    "segments": s.segments, "edits": s.edits, "asked_engine": s.asked_engine,
                    "asked_model": s.asked_model, "redo_of": s.redo_of}
                   for s in job.slices],
        "paragraphs": paragraph_view(job.slices),
        "speakers": speakers.view(job.speakers),
    }


def paragraph_view(slices: list[SliceRecord]) -> list[dict[str, Any]]:
    """The transcript's paragraphs (:mod:`paragraphs`), as the page draws them: each with its start time, its
    speaker once speakers are known, and its items as ``[slice index, segment number]`` pairs, where -1 stands
    for the whole slice (one still out, with its last text if it is being transcribed again; a failed one; one
    whose text came without times)."""
    items, refs = [], []
    for s in sorted(slices, key=lambda s: s.index):
        if s.status == SliceStatus.DONE and s.segments:
            for n, seg in enumerate(s.segments):
                items.append(seg)
                refs.append([s.index, n])
        elif s.status != SliceStatus.DONE or s.text.strip():
            items.append({"start": s.start, "end": s.end, "text": s.text if s.transcribed else ""})
            refs.append([s.index, -1])
    out = []
    for para in paragraphs.group(items):
        who = paragraphs.first_speaker(items, para) or {}
        out.append({"start": round(float(items[para[0]]["start"]), 3), "speaker": who.get("speaker"),
                    "speaker_id": who.get("speaker_id"), "items": [refs[i] for i in para]})
    return out


def eta_s(job_id: str, open_slices: list[SliceRecord], requirement: Requirement,
          scheduler: Scheduler) -> float | None:
    """Seconds until the job should finish: its open audio, plus the audio of other jobs' slices queued ahead
    of its own (the queue is served oldest first), over the measured speed of the connected workers that may
    serve it; None before any of them has measured one."""
    if not open_slices:
        return 0.0
    total = sum((w.speed or 0.0) * w.info.slots for w in scheduler.workers.values()
                if requirement.accepts(w.info.engine, w.info.model))
    if total <= 0:
        return None
    ahead = 0.0
    for key in scheduler.queue:
        if key.job_id == job_id:
            break
        ahead += scheduler.tasks[key].seconds
    else:  # none of its slices waits in the queue (all are out): nothing queued is ahead of it
        ahead = 0.0
    return round((ahead + sum(s.seconds for s in open_slices)) / total, 1)


#: How many words of its transcript a past job shows.
FIRST_WORDS = 14


def job_summary(job: JobRecord, counts: dict[str, int], first_text: str = "") -> dict[str, Any]:
    """A line of the recent-jobs list; ``counts`` is its slices per status, ``first_text`` the text of its
    first slice that has some (its first words are shown)."""
    words = first_text.split()
    first_words = " ".join(words[:FIRST_WORDS]) + ("…" if len(words) > FIRST_WORDS else "")
    return {"id": job.id, "name": job.name, "source": job.source, "status": job.status,
            "recording": job.recording, "created_at": job.created_at, "duration": round(job.duration, 3),
            "progress": {"done": counts.get("done", 0), "failed": counts.get("failed", 0),
                         "total": sum(counts.values())},
            "first_words": first_words}


def worker_view(worker_id: str, state: WorkerState, now: float) -> dict[str, Any]:
    info = state.info
    return {"id": worker_id, "name": info.name, "engine": info.engine, "model": info.model, "slots": info.slots,
            "busy": len(state.leases), "max_slice_s": info.max_slice_s, "slices_done": state.slices_done,
            "diarize": info.diarize,
            "speed": round(state.speed, 2) if state.speed else None,
            "connected_s": round(now - state.connected_at, 1)}


def workers_view(scheduler: Scheduler, now: float) -> list[dict[str, Any]]:
    """The connected workers, by name."""
    return [worker_view(wid, state, now)
            for wid, state in sorted(scheduler.workers.items(), key=lambda kv: kv[1].info.name)]
