"""Speaker labels (``python -m bench speakers``): on conversations built from the corpus, how many words get the
right speaker, whether the right number of speakers is found, and what the labels cost the workers and the
server.

Conversations (``bench/conversations.py``): turns of 2–20 s taken from one voice's recordings at their own
pauses, alternating between two voices or drawn among three, with pauses of 0.4–1.2 s; two stereo calls (one
voice per channel, each faint on the other's) labelled by channel; and noisy ones (white noise 20 dB below the
speech, under all of it), reported beside the issue's targets, not in them. Everything goes through a real server and
two real ``--diarize`` workers (one thread and four slots each, tiny.en), so slices of one conversation are
embedded by different workers and the server must make their labels agree.

Scoring: a word's true speaker is the voice whose turn holds its middle; labels are mapped to voices one to one,
the mapping that gets most words right; a word without a label counts as wrong. Costs, from the job's stats:
the workers' time making voices (``voices_worker_s``, each slice's ``voice_s``) over their time transcribing
(``transcribe_s``: each batch once), both measured in the same worker processes during the same run, and the
server's time clustering and labelling (``speakers_s``) per minute of audio. The same/different-speaker
similarities of the voices the workers sent are read from the server's database afterwards: they are what
``server/speakers.py``'s threshold was set from.

Clustering cost (no workers, made-up voices, :func:`clustering_cost`): the server's clustering on its largest
input (``LabelOptions.max_voices`` voices) of three kinds: voices all unlike each other (every one is a group of
its own that must be merged away), voices of three people buried in noise (same-person pairs about 0.3 alike),
and voices of three clear people; the median time of a few runs, the speakers found and the share of voices
right. It reruns at every relabelling while a job runs, so it must stay well under a second or two.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench import conversations
from bench.conversations import Conversation
from server.speakers import LabelOptions
from server.store import Store
from tests.support import Server, Worker, wait_for

#: Targets from issue 17.
MIN_RIGHT_TWO = 0.95
MIN_RIGHT_THREE = 0.85
MAX_WORKER_SHARE = 0.15


@dataclass(frozen=True)
class Mix:
    name: str
    voices: tuple[str, ...]
    seconds: float
    seed: int
    stereo: bool = False
    noise_snr_db: float | None = None  # white noise under the whole conversation, this far below the speech


FULL = (Mix("two: LJ + radio address", ("lj", "bush"), 180, 1),
        Mix("two: sonnets + MFA (two rooms)", ("sonnets", "mfa"), 110, 3),
        Mix("two: LJ + Harvard (two women)", ("lj", "harvard"), 70, 5),
        Mix("three: LJ + radio address + Harvard", ("lj", "bush", "harvard"), 150, 2),
        Mix("three: sonnets + radio address + LJ", ("sonnets", "bush", "lj"), 180, 7),
        Mix("stereo: LJ + radio address", ("lj", "bush"), 120, 1, stereo=True),
        Mix("noisy two: LJ + radio address (20 dB SNR)", ("lj", "bush"), 120, 1, noise_snr_db=20),
        Mix("noisy three: LJ + radio address + Harvard (20 dB SNR)", ("lj", "bush", "harvard"), 150, 2,
            noise_snr_db=20))
QUICK = (Mix("two: LJ + radio address", ("lj", "bush"), 30, 1),
         Mix("noisy two: LJ + radio address (20 dB SNR)", ("lj", "bush"), 30, 1, noise_snr_db=20))


@dataclass
class MixResult:
    name: str
    seconds: float
    voices: int  # people in it
    found: int  # speakers the server labelled
    method: str
    words: int
    right: float  # share of words with the right speaker
    transcribe_s: float
    voices_worker_s: float
    speakers_s: float
    workers: list[str] = field(default_factory=list)  # who did its slices
    noisy: bool = False  # a noisy conversation: reported, not held to the targets


@dataclass
class ClusterCost:
    """The server's clustering of one set of made-up voices (:func:`clustering_cost`)."""

    name: str
    voices: int
    people: int | None  # None: every voice unlike every other, no right answer
    found: int
    right: float | None  # share of voices whose group maps to their person (one to one, best mapping)
    median_s: float


@dataclass
class SpeakersResult:
    mixes: list[MixResult]
    same: list[float]  # percentiles 5/25/50/75/95 of same-person voice similarities
    different: list[float]
    threshold: float
    #: Decoding a stereo upload with its channel levels kept, over decoding it without (median of runs taken
    #: in turns, in this process), and the seconds the levels add per minute of audio.
    channel_ratio: float = 0.0
    channel_s_per_min: float = 0.0
    cost: list[ClusterCost] = field(default_factory=list)


def made_up_voices(people: list[int], spread: float, rng: np.random.Generator, dim: int = 256) -> np.ndarray:
    """Unit vectors around one random direction per person, each pushed ``spread`` off it in a random direction
    (0.45: same-person pairs about 0.8 alike, as clear real voices are; 1.5: about 0.3, voices lost in noise)."""
    centres = rng.standard_normal((max(people) + 1, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((len(people), dim))
    noise *= spread / np.linalg.norm(noise, axis=1, keepdims=True)
    x = centres[people] + noise
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustering_cost(runs: int = 3, seed: int = 0) -> list[ClusterCost]:
    """Time ``speakers.cluster`` on ``max_voices`` made-up voices of each kind (see the module's docstring)."""
    from scipy.optimize import linear_sum_assignment

    from server import speakers

    n = LabelOptions().max_voices
    rng = np.random.default_rng(seed)
    sets = [("all unlike each other (1 s each)", list(range(n)), 0.0, 1.0, None),
            ("three people in noise (1.5 s each)", list(rng.integers(0, 3, n)), 1.5, 1.5, 3),
            ("three clear people (1.5 s each)", list(rng.integers(0, 3, n)), 0.45, 1.5, 3)]
    out = []
    for name, people, spread, seconds, count in sets:
        vectors = made_up_voices(people, spread, rng)
        times, labels = [], np.zeros(0, dtype=int)
        for _ in range(runs):
            t0 = time.perf_counter()
            labels = speakers.cluster(vectors, np.full(n, seconds))
            times.append(time.perf_counter() - t0)
        right = None
        if count:
            table = np.zeros((labels.max() + 1, count))
            np.add.at(table, (labels, np.asarray(people)), 1)
            rows, cols = linear_sum_assignment(-table)
            right = float(table[rows, cols].sum() / n)
        out.append(ClusterCost(name, n, count, len(set(labels.tolist())), right, float(np.median(times))))
    return out


def channel_cost(path: Path, tmp: Path, runs: int = 5) -> tuple[float, float]:
    """What keeping a stereo upload's channel levels adds to decoding it (``audio.convert_to_pcm16`` with and
    without the hook, in turns): the ratio of the medians, and the seconds added per minute of audio."""
    from server import audio, channels

    times: dict[bool, list[float]] = {False: [], True: []}
    for n in range(2 * runs):
        keep = bool(n % 2) ^ bool((n // 2) % 2)  # alternate, and alternate which goes first
        t0 = time.perf_counter()
        converted = audio.convert_to_pcm16(path, tmp / "decoded.wav",
                                           channel_levels=channels.ChannelLevels() if keep else None)
        times[keep].append(time.perf_counter() - t0)
    without, with_levels = float(np.median(times[False])), float(np.median(times[True]))
    return with_levels / without, 60 * (with_levels - without) / converted.duration_s


def build_mixes(out: Path, mixes: tuple[Mix, ...], with_call: bool = True) -> list[Conversation]:
    built = [conversations.build(f"mix-{n}", m.voices, out, m.seconds, seed=m.seed, stereo=m.stereo,
                                 noise_snr_db=m.noise_snr_db) for n, m in enumerate(mixes)]
    named = [Conversation(m.name, c.path, c.seconds, c.turns, c.channels) for m, c in zip(mixes, built, strict=True)]
    if with_call:
        call = conversations.stereo_call(out)
        named.append(Conversation("stereo: the corpus's stereo-diarization file + LJ", call.path, call.seconds,
                                  call.turns, 2))
    return named


def run(tmp: Path, quick: bool = False, log: Callable[..., Any] = print) -> SpeakersResult:
    cost = clustering_cost(runs=1 if quick else 3)
    for c in cost:
        log(f"  clustering {c.voices} voices, {c.name}: {c.median_s:.2f} s, found {c.found}")
    chosen = QUICK if quick else FULL
    noisy = {m.name for m in chosen if m.noise_snr_db is not None}
    mixes = build_mixes(tmp / "mixes", chosen)
    server = Server(tmp)
    workers = [Worker(server, name, "--diarize", "--slots", "4") for name in ("alpha", "beta")]
    jobs: list[tuple[Conversation, str]] = []
    results = []
    try:
        server.wait_workers(2, timeout=300)
        for conv in mixes:
            t0 = time.perf_counter()
            job_id = server.submit(conv.path)
            server.wait_job(job_id, timeout=1800)
            view = wait_for(lambda j=job_id: (v := server.job(j))["speakers"]["final"] and v, 120,
                            "final speaker labels")
            jobs.append((conv, job_id))
            segments = server.get(f"/api/jobs/{job_id}/transcript.json").json()["segments"]
            words = [(w["start"], w["end"], w["speaker_id"]) for s in segments for w in s["words"]]
            right, _ = conversations.words_right(conv.turns, words)
            stats = view["stats"]
            results.append(MixResult(conv.name, conv.seconds, len(conv.voices), len(view["speakers"]["list"]),
                                     view["speakers"]["method"], len(words), right,
                                     float(stats.get("transcribe_s", 0.0)), float(stats.get("voices_worker_s", 0.0)),
                                     float(stats.get("speakers_s", 0.0)),
                                     sorted({s["worker"] for s in view["slices"]}), conv.name in noisy))
            log(f"  {conv.name}: {conv.seconds:.0f} s, {len(conv.voices)} voices, found "
                f"{results[-1].found} ({results[-1].method}), {100 * right:.1f} % of {len(words)} words right "
                f"({time.perf_counter() - t0:.0f} s)")
    finally:
        for w in workers:
            w.stop()
        server.stop()
    same, different = similarities(Store(server.data_dir / "scatterscribe.db"), jobs)
    stereo = max((c for c in mixes if c.channels == 2), key=lambda c: c.seconds)
    ratio, per_min = channel_cost(stereo.path, tmp, runs=1 if quick else 5)
    return SpeakersResult(results, same, different, LabelOptions().same_speaker_similarity, ratio, per_min, cost)


def similarities(store: Store, jobs: list[tuple[Conversation, str]]) -> tuple[list[float], list[float]]:
    """Percentiles (5, 25, 50, 75, 95) of the cosine similarity of pairs of voices the workers sent, within
    each conversation: pairs of one person, and pairs of two."""
    same, different = [], []
    for conv, job_id in jobs:
        spans, vectors = [], []
        for row in store.voices(job_id):
            if row.dim:
                spans += row.spans
                vectors.append(np.frombuffer(row.vectors, dtype=np.float32).reshape(len(row.spans), row.dim))
        if not vectors:
            continue
        x = np.vstack(vectors).astype(np.float64)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        who = np.array([conversations.true_voice(conv.turns, s, e) for s, e in spans])
        sims = x @ x.T
        upper = np.triu_indices(len(x), 1)
        pairs_same = who[upper[0]] == who[upper[1]]
        same += sims[upper][pairs_same].tolist()
        different += sims[upper][~pairs_same].tolist()
    pct = [5, 25, 50, 75, 95]
    return ([round(float(v), 3) for v in np.percentile(same, pct)] if same else [],
            [round(float(v), 3) for v in np.percentile(different, pct)] if different else [])


def markdown(result: SpeakersResult) -> str:
    lines = ["Two `--diarize` workers (1 thread, 4 slots each, tiny.en) and one server on this machine; each "
             "conversation uploaded once. *Right*: words whose speaker is right (labels mapped to voices one to "
             "one); *voices / transcription*: the workers' time making voices over their time transcribing, same "
             "processes, same run; *server*: clustering and labelling, seconds per minute of audio.", "",
             "| conversation | audio (s) | voices | found | by | words | right | voices / transcription "
             "| server (s/min) | workers |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---|"]
    for m in result.mixes:
        share = m.voices_worker_s / m.transcribe_s if m.transcribe_s else 0.0
        lines.append(f"| {m.name} | {m.seconds:.0f} | {m.voices} | {m.found} | {m.method} | {m.words} | "
                     f"{100 * m.right:.1f} % | {100 * share:.1f} % | {60 * m.speakers_s / m.seconds:.3f} | "
                     f"{', '.join(m.workers)} |")
    two = [m for m in result.mixes if m.voices == 2 and not m.noisy]
    three = [m for m in result.mixes if m.voices == 3 and not m.noisy]
    voiced = [m for m in result.mixes if m.method == "voice"]
    worker_share = (sum(m.voices_worker_s for m in result.mixes) / sum(m.transcribe_s for m in result.mixes)
                    if any(m.transcribe_s for m in result.mixes) else 0.0)
    lines += ["", "Targets (issue 17):", ""]
    if two:
        low = min(m.right for m in two)
        lines.append(f"- two speakers: at least {100 * MIN_RIGHT_TWO:.0f} % of words right: lowest "
                     f"{100 * low:.1f} %: {_mark(low >= MIN_RIGHT_TWO)}")
    if three:
        low = min(m.right for m in three)
        lines.append(f"- three speakers: at least {100 * MIN_RIGHT_THREE:.0f} % of words right: lowest "
                     f"{100 * low:.1f} %: {_mark(low >= MIN_RIGHT_THREE)}")
    counts = all(m.found == m.voices for m in result.mixes if not m.noisy)
    lines.append(f"- the right number of speakers in every conversation: {_mark(counts)}")
    lines.append(f"- workers' extra time at most {100 * MAX_WORKER_SHARE:.0f} % of their transcription time: "
                 f"{100 * worker_share:.1f} % over all conversations: {_mark(worker_share <= MAX_WORKER_SHARE)}")
    if voiced:
        per_min = 60 * sum(m.speakers_s for m in voiced) / sum(m.seconds for m in voiced)
        lines.append(f"- server time for the labels (voice method): {per_min:.3f} s per minute of audio")
    lines.append(f"- server time for a stereo upload's channel levels: decoding takes {result.channel_ratio:.2f}x as "
                 f"long with them ({result.channel_s_per_min:.3f} s more per minute of audio; median of runs "
                 "taken in turns)")
    noisy = [m for m in result.mixes if m.noisy]
    if noisy:
        lines.append("- noisy conversations (not held to the targets): " + "; ".join(
            f"{m.name}: {m.found} of {m.voices} speakers found, {100 * m.right:.1f} % of words right" for m in noisy))
    if result.cost:
        lines += ["", "Clustering cost on the server (made-up voices, no workers; median of runs in this process; it "
                  "runs again at every relabelling while a job runs):", "",
                  "| voices | kind | found | right | time (s) |", "|---:|---|---:|---:|---:|"]
        lines += [f"| {c.voices} | {c.name} | {c.found} | "
                  f"{'—' if c.right is None else f'{100 * c.right:.1f} %'} | {c.median_s:.2f} |" for c in result.cost]
    lines += ["", f"Similarity of the voices the workers sent (cosine; percentiles 5 / 25 / 50 / 75 / 95), against "
              f"the {result.threshold} the server merges groups at:", "",
              "| pairs | p5 | p25 | p50 | p75 | p95 |", "|---|---:|---:|---:|---:|---:|",
              "| one person | " + " | ".join(f"{v:.2f}" for v in result.same) + " |",
              "| two people | " + " | ".join(f"{v:.2f}" for v in result.different) + " |", ""]
    return "\n".join(lines)


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"
