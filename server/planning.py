"""How a recording becomes slices for the workers connected now: decoding an upload, choosing how fine to cut
(``cutting``), and the slice records a plan is stored as. CPU work here runs off the event loop (the caller's
``run_blocking``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from . import audio, channels, media, splitter
from .guard import GuardOptions
from .records import SliceRecord
from .scheduler import Requirement, WorkerInfo


@dataclass
class Prepared:
    """What :func:`prepare_audio` learnt from an upload."""

    converted: audio.Converted
    slices: list[splitter.Slice]
    threshold_db: float
    decode_s: float
    split_s: float
    channel_turns: list[list[float]] | None = None  # who speaks when, when the channels hold different people


def prepare_audio(upload: Path, dst: Path, opts: splitter.SplitOptions, max_duration_s: float,
                  idle_slots: int) -> Prepared:
    """Decode an upload to 16 kHz mono and plan its slices; a multichannel upload's levels per channel are kept
    beside its audio and say whether its channels hold different people (``channels``). CPU work: the caller
    runs it off the event loop."""
    t0 = time.perf_counter()
    levels = channels.ChannelLevels()
    converted = media.convert_upload(upload, dst, max_duration_s=max_duration_s, channel_levels=levels)
    levels.save(dst.parent)
    levels_db = levels.levels_db() if converted.source.channels > 1 else None
    turns = channels.channel_turns(levels_db) if channels.separated(levels_db) else None
    t1 = time.perf_counter()
    analysis = splitter.analyse(audio.PcmFile(dst), opts)
    loudest_db = float(analysis.levels_db.max()) if len(analysis.levels_db) else splitter.FLOOR_DB
    if loudest_db < opts.min_speech_db:  # nothing there at all: say so now rather than queue a job of nothing
        raise audio.AudioError(f"the recording is silent: its loudest moment is {loudest_db:.0f} dBFS, below the "
                               f"{opts.min_speech_db:.0f} dBFS where speech begins (was the microphone muted?)")
    slices = splitter.split_for_parallelism(analysis, opts, idle_slots)
    return Prepared(converted, slices, analysis.threshold_db, t1 - t0, time.perf_counter() - t1, turns)


def fit_to_workers(opts: splitter.SplitOptions, longest_s: float | None) -> splitter.SplitOptions:
    """Splitter settings for a new job: no slice longer than the longest one a connected worker that may serve
    the job takes (``longest_s``; None when none is connected), so a job served only by engines with a short
    limit, such as Google's, gets slices they accept."""
    if longest_s is None or longest_s >= opts.max_slice_s:
        return opts
    return replace(opts, max_slice_s=longest_s, min_slice_s=min(opts.min_slice_s, longest_s / 2))


def cutting(opts: splitter.SplitOptions, guard: GuardOptions, workers: Iterable[WorkerInfo],
            requirement: Requirement) -> splitter.SplitOptions:
    """The splitter settings for a new job: slices are cut finer down to ``min_slice_s`` only when every
    connected worker that may take them hears them with guard bands (its engine times words), else down to
    ``min_slice_alone_s``."""
    guarded = guard.guard_s > 0 and all(w.words for w in workers if requirement.accepts(w.engine, w.model))
    alone = min(max(opts.min_slice_s, opts.min_slice_alone_s), opts.max_slice_s / 2)
    return opts if guarded else replace(opts, min_slice_s=alone)


def slice_records(slices: list[splitter.Slice], rate: int = audio.TARGET_RATE,
                  first: int = 0) -> list[SliceRecord]:
    return [SliceRecord(index=i, start=s.start / rate, end=s.end / rate,
                        pieces=[(p.start / rate, p.end / rate) for p in s.pieces])
            for i, s in enumerate(slices, start=first)]
