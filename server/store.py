"""Jobs and slices on disk: one SQLite file under the data folder (embedded, nothing to start).

Every public method is one transaction: it either happens whole or not at all, so a server killed at any point
comes back with a consistent picture. The scheduler's leases are *not* stored: they die with the connections
they belong to, and a restarted server puts every unfinished slice back in the queue.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Iterable

from . import strict_json
from .records import JobRecord, SliceRecord, VoiceRecord
from .states import JobStatus, SliceStatus

#: What the store raises when a write cannot be made (SQLite errors; OSError for a full disk).
STORE_ERRORS = (sqlite3.Error, OSError)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL,
    duration REAL NOT NULL DEFAULT 0,
    engine TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    finished_at REAL,
    stats TEXT NOT NULL DEFAULT '{}',
    recording INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS slices (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    pieces TEXT NOT NULL,
    status TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    segments TEXT NOT NULL DEFAULT '[]',
    worker TEXT NOT NULL DEFAULT '',
    engine TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    elapsed REAL,
    finished_at REAL,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs(created_at);
"""

#: The voices a ``--diarize`` worker sent with each slice (``speaker_jobs.py``): one row per done slice, keyed by
#: where the slice starts in the recording (a slice's number changes when waiting slices are cut again; where it
#: starts does not). ``model`` is '' when the worker sent none (``error`` says why, if it said); ``spans`` are
#: the voices' ``[start, end]`` on the recording's timeline, ``vectors`` their float32 vectors, row after row.
VOICES_SCHEMA = """
CREATE TABLE IF NOT EXISTS voices (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    slice_start REAL NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    spans TEXT NOT NULL DEFAULT '[]',
    vectors BLOB NOT NULL DEFAULT x'',
    dim INTEGER NOT NULL DEFAULT 0,
    worker_s REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, slice_start)
);
"""


class SearchTooLong(RuntimeError):
    """A search of past jobs ran past its time limit (``Store.search``)."""


_JSON_COLUMNS = {"pieces", "segments", "stats", "edits", "speakers", "heard"}
_JOB_COLUMNS = [f.name for f in fields(JobRecord) if f.name != "slices"]
_SLICE_COLUMNS = ["idx" if f.name == "index" else f.name for f in fields(SliceRecord)]
#: A slice without what is large (``Store.job_outline``).
_OUTLINE_COLUMNS = [c for c in _SLICE_COLUMNS if c not in ("segments", "heard", "edits")]


def _clamp(value: Any, low: float, high: float) -> Any:
    """A stored segment time, put inside its slice when it is not a finite number there."""
    if not isinstance(value, (int, float)) or value != value:
        return low
    return min(high, max(low, value))


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float inside it dropped (from dicts) or made None (in lists)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items() if not (isinstance(v, float) and not math.isfinite(v))}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _encode(column: str, value: Any) -> Any:
    return strict_json.dumps(value) if column in _JSON_COLUMNS else value


def _decode(column: str, value: Any) -> Any:
    if column == "recording":
        return bool(value)
    return json.loads(value) if column in _JSON_COLUMNS else value


def _holds(text: str | None, folded: str) -> bool:
    """SQL ``holds(column, ?)``: ``column`` holds ``folded`` (already case-folded) in any case."""
    return text is not None and folded in text.casefold()


class Store:
    """SQLite-backed jobs and slices. One connection guarded by one lock: safe from greenlets and threads."""

    def __init__(self, path: Path | str):
        self.path = str(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.create_function("holds", 2, _holds, deterministic=True)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash loses no committed transaction
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a database written by an older version up to this schema (columns added since)."""
        columns = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
        if "recording" not in columns:
            self._db.execute("ALTER TABLE jobs ADD COLUMN recording INTEGER NOT NULL DEFAULT 0")
        if "speakers" not in columns:  # speaker labels (server/speaker_jobs.py)
            self._db.execute("ALTER TABLE jobs ADD COLUMN speakers TEXT NOT NULL DEFAULT '{}'")
        self._db.executescript(VOICES_SCHEMA)
        slice_columns = {row["name"] for row in self._db.execute("PRAGMA table_info(slices)")}
        for name, kind in [("edits", "TEXT NOT NULL DEFAULT '{}'"), ("asked_engine", "TEXT NOT NULL DEFAULT ''"),
                           ("asked_model", "TEXT NOT NULL DEFAULT ''"), ("heard", "TEXT NOT NULL DEFAULT '[]'"),
                           ("redo_of", "TEXT NOT NULL DEFAULT ''")]:
            if name not in slice_columns:  # corrections, "transcribe again" (corrections.py, redo.py), stitch.py
                self._db.execute(f"ALTER TABLE slices ADD COLUMN {name} {kind}")
        self._scrub_non_finite()

    def _scrub_non_finite(self) -> None:
        """Versions before workers' numbers were checked stored what a worker sent: an ``Infinity`` (not JSON:
        it made the job unreadable to browsers) or a negative time. Make such values what they should have
        been: an unknown ``elapsed``, segment times inside their slice, non-finite stats dropped."""
        with self._tx() as db:
            db.execute("UPDATE slices SET elapsed = NULL WHERE elapsed < 0 OR elapsed > 1e300")
            suspect = "LIKE '%Infinity%' OR {0} LIKE '%NaN%'"
            for row in db.execute(f"SELECT job_id, idx, start, end, segments FROM slices "
                                  f"WHERE segments {suspect.format('segments')}").fetchall():
                segments = [{**seg, **{k: _clamp(seg.get(k), row["start"], row["end"]) for k in ("start", "end")}}
                            for seg in json.loads(row["segments"]) if isinstance(seg, dict)]
                db.execute("UPDATE slices SET segments = ? WHERE job_id = ? AND idx = ?",
                           [strict_json.dumps(_finite(segments)), row["job_id"], row["idx"]])
            for row in db.execute(f"SELECT id, stats FROM jobs WHERE stats {suspect.format('stats')}").fetchall():
                db.execute("UPDATE jobs SET stats = ? WHERE id = ?",
                           [strict_json.dumps(_finite(json.loads(row["stats"]))), row["id"]])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self):
        return _Transaction(self._db, self._lock)

    # --- writing ---------------------------------------------------------------------------------------------

    def create_job(self, job: JobRecord) -> None:
        """Insert a job and its slices, atomically."""
        with self._tx() as db:
            values = [_encode(c, getattr(job, c)) for c in _JOB_COLUMNS]
            db.execute(f"INSERT INTO jobs ({','.join(_JOB_COLUMNS)}) VALUES ({','.join('?' * len(values))})",
                       values)
            self._insert_slices(db, job.id, job.slices)

    def add_slices(self, job_id: str, slices: Iterable[SliceRecord]) -> None:
        """Append slices to an existing job (a live recording grows), atomically."""
        with self._tx() as db:
            self._insert_slices(db, job_id, slices)

    def replace_slices(self, job_id: str, slices: Iterable[SliceRecord]) -> None:
        """Replace all of a job's slices (its waiting ones were cut again; indices renumbered), atomically."""
        with self._tx() as db:
            db.execute("DELETE FROM slices WHERE job_id = ?", [job_id])
            self._insert_slices(db, job_id, slices)

    @staticmethod
    def _insert_slices(db: sqlite3.Connection, job_id: str, slices: Iterable[SliceRecord]) -> None:
        rows = []
        for s in slices:
            record = asdict(s)
            record["idx"] = record.pop("index")
            rows.append([job_id] + [_encode(c, record[c]) for c in _SLICE_COLUMNS])
        db.executemany(f"INSERT INTO slices (job_id,{','.join(_SLICE_COLUMNS)}) "
                       f"VALUES (?,{','.join('?' * len(_SLICE_COLUMNS))})", rows)

    def update_job(self, job_id: str, **values: Any) -> None:
        """Set some columns of a job, atomically."""
        self._update("jobs", "id = ?", [job_id], values, _JOB_COLUMNS)

    def update_slice(self, job_id: str, index: int, **values: Any) -> None:
        """Set some columns of a slice, atomically."""
        self._update("slices", "job_id = ? AND idx = ?", [job_id, index], values, _SLICE_COLUMNS)

    def slices_between(self, job_id: str, first: int, end: int) -> list[SliceRecord]:
        """The job's slices numbered ``first`` to ``end - 1`` that exist, in order: a slice's neighbours,
        without reading the whole job. One read."""
        with self._tx() as db:
            return [self._slice(row) for row in
                    db.execute("SELECT * FROM slices WHERE job_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
                               [job_id, first, end])]

    def pieces_between(self, job_id: str, first: int, end: int) -> list[list[tuple[float, float]]]:
        """The pieces of the job's slices numbered ``first`` to ``end - 1`` that exist, in order (what a guard
        band is cut from), reading nothing else. One read."""
        with self._tx() as db:
            return [[tuple(p) for p in _decode("pieces", row["pieces"])] for row in
                    db.execute("SELECT pieces FROM slices WHERE job_id = ? AND idx >= ? AND idx < ? ORDER BY idx",
                               [job_id, first, end])]

    def finish_slice(self, job_id: str, index: int, **values: Any) -> bool:
        """Mark a slice done with its text, unless it is done already (first result wins). The new text
        replaces the slice's old one (it was transcribed again) with its corrections, if any. Atomic; returns
        whether this call was the one that finished it."""
        values = {"edits": {}, "redo_of": "", **values, "status": SliceStatus.DONE}
        columns = ", ".join(f"{c} = ?" for c in values)
        with self._tx() as db:
            cursor = db.execute(f"UPDATE slices SET {columns} WHERE job_id = ? AND idx = ? AND status != 'done'",
                                [_encode(c, v) for c, v in values.items()] + [job_id, index])
            return cursor.rowcount == 1

    def _update(self, table: str, where: str, args: list, values: dict[str, Any], allowed: list[str]) -> None:
        unknown = set(values) - set(allowed)
        if unknown:
            raise ValueError(f"unknown {table} columns: {sorted(unknown)}")
        if not values:
            return
        columns = ", ".join(f"{c} = ?" for c in values)
        with self._tx() as db:
            db.execute(f"UPDATE {table} SET {columns} WHERE {where}",
                       [_encode(c, v) for c, v in values.items()] + args)

    def put_voices(self, job_id: str, voice: VoiceRecord) -> None:
        """Store (or replace: the slice was transcribed again) a slice's voices, atomically."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO voices (job_id, slice_start, model, error, spans, vectors, dim, "
                       "worker_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [job_id, voice.slice_start, voice.model, voice.error, strict_json.dumps(voice.spans),
                        voice.vectors, voice.dim, voice.worker_s])

    def voices(self, job_id: str) -> list[VoiceRecord]:
        """Every slice's voices of a job, in recording order (one consistent snapshot)."""
        with self._tx() as db:
            rows = db.execute("SELECT * FROM voices WHERE job_id = ? ORDER BY slice_start", [job_id]).fetchall()
        return [VoiceRecord(r["slice_start"], r["model"], r["error"], [tuple(p) for p in json.loads(r["spans"])],
                            bytes(r["vectors"]), r["dim"], r["worker_s"]) for r in rows]

    def delete_job(self, job_id: str) -> bool:
        """Remove a job and its slices, atomically; False if there was no such job."""
        with self._tx() as db:
            return db.execute("DELETE FROM jobs WHERE id = ?", [job_id]).rowcount == 1

    # --- reading ---------------------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> JobRecord | None:
        """A job with its slices in order (one consistent snapshot)."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", [job_id]).fetchone()
            if row is None:
                return None
            job = self._job(row)
            job.slices = [self._slice(r) for r in
                          db.execute("SELECT * FROM slices WHERE job_id = ? ORDER BY idx", [job_id])]
            return job

    def job_counts(self, job_id: str) -> tuple[JobRecord, dict[SliceStatus, int]] | None:
        """A job without its slices, and how many of its slices are in each status: what a hand-out or a result
        needs to know of the job, read without reading its slices (one read; a long job has thousands)."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", [job_id]).fetchone()
            if row is None:
                return None
            counts = {SliceStatus(r["status"]): r["n"] for r in db.execute(
                "SELECT status, COUNT(*) AS n FROM slices WHERE job_id = ? GROUP BY status", [job_id])}
            return self._job(row), counts

    def job_outline(self, job_id: str) -> JobRecord | None:
        """A job with its slices in order, but without the slices' segments, heard words and edits (left empty):
        what working out the job's status needs, read without decoding every word of a long job."""
        with self._tx() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", [job_id]).fetchone()
            if row is None:
                return None
            job = self._job(row)
            job.slices = [self._slice(r, _OUTLINE_COLUMNS) for r in db.execute(
                f"SELECT {', '.join(_OUTLINE_COLUMNS)} FROM slices WHERE job_id = ? ORDER BY idx", [job_id])]
            return job

    def list_jobs(self, limit: int = 50, query: str = "") -> list[tuple[JobRecord, dict[str, int]]]:
        """The newest jobs (without their slices) and how many of their slices are in each status; with
        ``query``, only those whose name or text holds it (any case)."""
        with self._tx() as db:
            return self._list(db, limit, query)

    def first_texts(self, job_ids: list[str]) -> dict[str, str]:
        """Each job's first transcribed slice (done, or being transcribed again after it was) that holds text: its
        text, by job id (jobs without one are left out)."""
        with self._tx() as db:
            return self._first_texts(db, job_ids)

    def search(self, query: str, limit: int = 50, max_s: float = 10.0) \
            -> tuple[list[tuple[JobRecord, dict[str, int]]], dict[str, str]]:
        """:meth:`list_jobs` with ``query`` and :meth:`first_texts` of what it finds, read on a connection of
        its own (one consistent snapshot, WAL lets it read beside the writer) and without the store's lock: a
        LIKE scan over every slice's text may take long, and nothing else waits for it. Safe from any thread.
        Raises :class:`SearchTooLong` after ``max_s`` seconds."""
        deadline = time.monotonic() + max_s
        db = sqlite3.connect(Path(self.path).resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False)
        try:
            db.row_factory = sqlite3.Row
            db.create_function("holds", 2, _holds, deterministic=True)
            db.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
            db.execute("BEGIN")
            jobs = self._list(db, limit, query)
            return jobs, self._first_texts(db, [job.id for job, _ in jobs])
        except sqlite3.OperationalError as exc:
            if time.monotonic() > deadline:
                raise SearchTooLong(f"the search took over {max_s:g} s and was stopped") from exc
            raise
        finally:
            db.close()

    def _list(self, db: sqlite3.Connection, limit: int, query: str) -> list[tuple[JobRecord, dict[str, int]]]:
        if query:  # holds(): Unicode case folding (SQLite's LIKE folds only ASCII: "ÉTÉ" missed "été")
            rows = db.execute(
                "SELECT * FROM jobs WHERE holds(name, ?1) OR id IN (SELECT job_id FROM slices "
                "WHERE holds(text, ?1)) ORDER BY created_at DESC LIMIT ?2", [query.casefold(), limit]).fetchall()
        else:
            rows = db.execute("SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", [limit]).fetchall()
        counts: dict[str, dict[str, int]] = {}
        ids = [r["id"] for r in rows]
        if ids:
            for r in db.execute(f"SELECT job_id, status, COUNT(*) AS n FROM slices WHERE job_id IN "
                                f"({','.join('?' * len(ids))}) GROUP BY job_id, status", ids):
                counts.setdefault(r["job_id"], {})[r["status"]] = r["n"]
        return [(self._job(r), counts.get(r["id"], {})) for r in rows]

    @staticmethod
    def _first_texts(db: sqlite3.Connection, job_ids: list[str]) -> dict[str, str]:
        if not job_ids:
            return {}
        rows = db.execute(
            f"SELECT s.job_id, s.text FROM slices s WHERE s.job_id IN ({','.join('?' * len(job_ids))}) "
            "AND s.idx = (SELECT MIN(idx) FROM slices WHERE job_id = s.job_id AND text != '' AND "
            "(status = 'done' OR (redo_of = 'done' AND status IN ('queued', 'leased'))))", job_ids)
        return {r["job_id"]: r["text"] for r in rows}

    def unfinished_jobs(self) -> list[JobRecord]:
        """Jobs that were still queued or running (with their slices), oldest first: what a restart resumes."""
        with self._tx() as db:
            ids = [r["id"] for r in db.execute(
                "SELECT id FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at")]
        return [job for job in map(self.get_job, ids) if job is not None]

    def recording_jobs(self) -> list[JobRecord]:
        """Jobs whose live recording was never closed (the server stopped while it was being made)."""
        with self._tx() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM jobs WHERE recording = 1 ORDER BY created_at")]
        return [job for job in map(self.get_job, ids) if job is not None]

    @staticmethod
    def _job(row: sqlite3.Row) -> JobRecord:
        job = JobRecord(**{c: _decode(c, row[c]) for c in _JOB_COLUMNS})
        job.status = JobStatus(job.status)
        return job

    @staticmethod
    def _slice(row: sqlite3.Row, columns: list[str] = _SLICE_COLUMNS) -> SliceRecord:
        """A slice from its row: all its columns, or those a job outline reads (``_OUTLINE_COLUMNS``)."""
        values = {c: _decode(c, row[c]) for c in columns}
        values["index"] = values.pop("idx")
        values["pieces"] = [tuple(p) for p in values["pieces"]]
        values["status"] = SliceStatus(values["status"])
        return SliceRecord(**values)


class _Transaction:
    """``with`` block holding the store's lock around BEGIN … COMMIT (ROLLBACK on error)."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock):
        self.db, self.lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        self.db.execute("BEGIN")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                try:
                    self.db.execute("COMMIT")
                except sqlite3.Error:
                    # A COMMIT that fails (a full disk) leaves the transaction open, and every later BEGIN of
                    # this connection would fail: roll it back so the store works again once space returns.
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise
            elif self.db.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL does)
                self.db.execute("ROLLBACK")
        finally:
            self.lock.release()
