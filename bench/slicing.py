"""WER against slice length, with and without guard bands: how fine the server may cut before text suffers.

In this process, without a server: each of the corpus's long recordings is cut by the server's own splitter
with ``max_slice_s`` set to each length in turn, each slice is given what the server would send a worker for it
(``server.guard``: its pieces, with guard bands of ``guard_s`` on each side, or none), the slices are decoded
as a worker decodes them (``FasterWhisperEngine.transcribe_batch``, ``batch`` slices at a time, tiny.en int8,
2 threads), their words are mapped back and stitched as the server does (``transcript.shift_segments``,
``stitch.keep_words``, slices settled in a shuffled order, as results arrive), and the pooled WER is taken over
the recordings. The decode time of each setting is given too, as a ratio to the 28 s setting without guard
bands in the same run (a shared machine's timings mean nothing alone).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from server import guard, splitter, stitch, transcript
from server.audio import TARGET_RATE
from server.config import Settings
from server.records import SliceRecord
from tests.support import wer

from .width import Recording

LENGTHS = (6.0, 8.0, 10.0, 14.0, 20.0, 28.0)
GUARDS = (0.0, 6.0)
#: Settings (length, guard) measured again with each slice prompted with the text of the slice before it.
PROMPTED = ((8.0, 6.0), (28.0, 6.0))


@dataclass
class Point:
    max_slice_s: float
    guard_s: float
    prompt: bool = False  # each slice prompted with the text of the slice before it
    slices: int = 0
    mean_slice_s: float = 0.0
    decode_s: float = 0.0
    wer_all: float = 0.0
    wer_trusted: float = 0.0
    per_file: dict[str, float] = field(default_factory=dict)


@dataclass
class SlicingResult:
    recordings: list[str]
    total_s: float
    batch: int
    points: list[Point]


def plan(samples: np.ndarray, max_slice_s: float, opts: splitter.SplitOptions) -> list[list[guard.Piece]]:
    """The server's slices of a recording when cut at most ``max_slice_s`` long, as pieces in seconds."""
    cut = replace(opts, max_slice_s=max_slice_s, min_slice_s=min(opts.min_slice_s, max_slice_s / 2))
    rate = TARGET_RATE
    return [[(p.start / rate, p.end / rate) for p in s.pieces]
            for s in splitter.split_at_silence(samples, cut)]


def audio_of(samples: np.ndarray, pieces: tuple[guard.Piece, ...]) -> np.ndarray:
    rate = TARGET_RATE
    parts = [samples[round(a * rate):round(b * rate)] for a, b in pieces]
    return (np.concatenate(parts) if parts else np.zeros(0, np.int16)).astype(np.float32) / 32768.0


class _Prompted:
    """The worker's batch decoder, its first round prompted with a text (the previous slice's), as Whisper's
    own ``transcribe`` conditions each window on the text before it. For measuring only: the product does not
    prompt (the numbers say why)."""

    def __init__(self, engine):
        from client.engines.faster_whisper_batch import BatchTranscriber

        self.batch = BatchTranscriber(engine._model, lambda audio: list(engine.transcribe(audio)))

    def transcribe(self, audio: np.ndarray, span: tuple[float, float], prompt: str):
        batch = self.batch
        decode, first = batch._decode, [True]

        def prompted(model, audios, previous):
            if first[0]:
                first[0], previous = False, [batch.tokenizer.encode(" " + prompt.strip()) if prompt else []]
            return decode(model, audios, previous)
        batch._decode = prompted
        try:
            return batch.transcribe([audio], [span])[0]
        finally:
            batch._decode = decode


def transcribe(engine, recording_samples: np.ndarray, slices: list[list[guard.Piece]], guard_s: float,
               batch: int, order_seed: int, prompted: _Prompted | None = None) -> tuple[str, float]:
    """One recording's text, cut into ``slices`` and heard with guard bands of ``guard_s``; and the seconds
    spent decoding. With ``prompted``, each slice is decoded alone, in order, prompted with the text of the
    slice before it (the best case of a prompt "had without waiting": the previous slice always done)."""
    from client.decoding import segment_payload

    opts = guard.GuardOptions(guard_s=guard_s)
    sent = [guard.heard(slices, k, opts) for k in range(len(slices))]
    audios = [audio_of(recording_samples, h.pieces) for h in sent]
    records = [SliceRecord(index=k, start=pieces[0][0], end=pieces[-1][1], pieces=pieces)
               for k, pieces in enumerate(slices)]

    def settle(k: int, segments) -> None:
        shifted = transcript.shift_segments([segment_payload(s) for s in segments], sent[k].pieces)
        first = max(0, k - 2)
        settled = stitch.settle(records[first:k + 3], k - first, shifted)
        records[k].status, records[k].segments, records[k].heard = "done", settled.segments, settled.heard
        records[k].text = settled.text

    t0 = time.perf_counter()
    if prompted is not None:
        for k in range(len(slices)):
            settle(k, prompted.transcribe(audios[k], sent[k].span, records[k - 1].text if k else ""))
        return " ".join(r.text for r in records if r.text), time.perf_counter() - t0
    decoded = []
    for first in range(0, len(audios), batch):
        decoded += engine.transcribe_batch(audios[first:first + batch], [h.span for h in sent[first:first + batch]])
    seconds = time.perf_counter() - t0
    order = list(range(len(slices)))
    random.Random(order_seed).shuffle(order)  # results arrive in any order
    for k in order:
        settle(k, decoded[k])
    return " ".join(r.text for r in records if r.text), seconds


def run(recordings: list[Recording], lengths: tuple[float, ...] = LENGTHS, guards: tuple[float, ...] = GUARDS,
        prompted: tuple[tuple[float, float], ...] = PROMPTED, batch: int = 8,
        log: Callable[[str], None] = print) -> SlicingResult:
    """Every (length, guard) setting, and the ``prompted`` ones again with a text prompt."""
    from client.engines.faster_whisper_engine import FasterWhisperEngine
    from server.audio import PcmFile

    engine = FasterWhisperEngine(threads=2, slots=batch)
    opts = Settings().splitter
    samples = {r.name: PcmFile(r.path)[:] for r in recordings}
    settings = [(length, guard_s, False) for length in lengths for guard_s in guards]
    settings += [(length, guard_s, True) for length, guard_s in prompted]
    points = []
    for length, guard_s, prompt in settings:
        plans = {r.name: plan(samples[r.name], length, opts) for r in recordings}
        point = Point(length, guard_s, prompt)
        texts = {}
        for n, r in enumerate(recordings):
            texts[r.name], seconds = transcribe(engine, samples[r.name], plans[r.name], guard_s, batch, n,
                                                _Prompted(engine) if prompt else None)
            point.decode_s += seconds
            point.per_file[r.name] = round(wer(r.reference, texts[r.name]), 2)
        point.slices = sum(len(p) for p in plans.values())
        point.mean_slice_s = sum(guard.length(s) for p in plans.values() for s in p) / max(1, point.slices)
        point.wer_all = wer([r.reference for r in recordings], [texts[r.name] for r in recordings])
        trusted = [r for r in recordings if r.trusted]
        point.wer_trusted = wer([r.reference for r in trusted], [texts[r.name] for r in trusted])
        points.append(point)
        log(f"  max {length:g} s, guard {guard_s:g} s{', prompted' if prompt else ''}: {point.slices} slices of "
            f"{point.mean_slice_s:.1f} s on average, WER {point.wer_all:.2f} % (A/A-/B {point.wer_trusted:.2f} %), "
            f"decoding {point.decode_s:.1f} s")
    return SlicingResult([r.name for r in recordings], sum(r.seconds for r in recordings), batch, points)


def markdown(result: SlicingResult) -> str:
    base = next((p for p in result.points if p.max_slice_s == max(q.max_slice_s for q in result.points)
                 and p.guard_s == 0), result.points[0])
    lines = [f"The corpus's {len(result.recordings)} long recordings ({result.total_s:.0f} s), each cut by the "
             "server's splitter at most `max_slice_s` long, decoded as a worker decodes them "
             f"({result.batch} slices a batch, tiny.en int8, 2 threads), words stitched as the server does (a "
             "prompted setting decodes the slices one by one, in order, each prompted with the text of the slice "
             "before it); WER pooled over the recordings (all tiers; tiers A/A-/B in brackets). Decode time "
             "relative to the "
             f"{base.max_slice_s:g} s cut without guard bands, same run.", "",
             "| max_slice_s | guard_s | text prompt | slices | mean slice (s) | WER % (A/A-/B) | decode time × |",
             "|---:|---:|---|---:|---:|---:|---:|"]
    for p in result.points:
        lines.append(f"| {p.max_slice_s:g} | {p.guard_s:g} | {'the slice before' if p.prompt else '—'} | "
                     f"{p.slices} | {p.mean_slice_s:.1f} | "
                     f"{p.wer_all:.2f} ({p.wer_trusted:.2f}) | {p.decode_s / base.decode_s:.2f} |")
    return "\n".join(lines) + "\n"
