"""The splitter on real recordings from the corpus, and on made-up signals where the answer is known."""

import numpy as np
import pytest

from server.audio import PcmFile
from server.splitter import (
    SplitOptions,
    analyse,
    frame_levels_db,
    plan_from_analysis,
    speech_regions,
    split_at_silence,
    split_for_parallelism,
)
from tests.support import corpus_file, manifest

RATE = 16000
OPTS = SplitOptions()


def load(name: str) -> np.ndarray:
    return PcmFile(corpus_file(name))[:]


def corpus_names():
    return sorted(manifest())


def joined(names, gap_s=0.6) -> np.ndarray:
    gap = np.zeros(int(gap_s * RATE), np.int16)
    return np.concatenate([part for name in names for part in (load(name), gap)])


def cut_points(slices):
    for s in slices:
        for p in s.pieces:
            yield p.start
            yield p.end


def check_invariants(samples, slices, opts):
    previous_end = 0
    for s in slices:
        assert s.length <= opts.max_slice_s * RATE + 1, "slice longer than max_slice_s"
        for p in s.pieces:
            assert previous_end <= p.start < p.end <= len(samples), "pieces out of order, overlapping or outside"
            previous_end = p.end


@pytest.mark.parametrize("name", corpus_names())
def test_cuts_fall_in_pauses_on_real_speech(name):
    """As the server cuts a recording (for 1, 4 and 16 idle slots): every slice and piece boundary inside the
    recording lies in a stretch quieter than the recording's adaptive threshold, the 40 ms on each side of it
    included (no cut inside or at the edge of a word); slices respect the maximum; no frame of speech is left
    out of every slice."""
    samples = load(name)
    analysis = analyse(samples, OPTS)
    levels, threshold, frame = analysis.levels_db, analysis.threshold_db, analysis.frame_len
    n = len(levels)
    regions = speech_regions(levels, threshold, OPTS)
    for slots in (1, 4, 16):
        slices = split_for_parallelism(analysis, OPTS, slots)
        check_invariants(samples, slices, OPTS)
        for cut in cut_points(slices):
            f = cut // frame
            if f < 2 or f > n - 2:  # the recording's own start or end, not a cut
                continue
            around = levels[f - 2:f + 2]
            assert (around < threshold).all(), \
                f"{name}, {slots} slots: cut at {cut / RATE:.2f} s is not inside a pause: {around - threshold} dB"
        covered = np.zeros(n, bool)
        for s in slices:
            for p in s.pieces:
                covered[p.start // frame: -(-p.end // frame)] = True
        for first, end in regions:
            assert covered[first:end].all(), f"{name}: speech at {first * frame / RATE:.2f} s left out"


def test_consecutive_speech_is_packed_close_to_the_maximum():
    """32 consecutive LJ Speech sentences (about 4 minutes): slices are few and nearly full."""
    names = [n for n in corpus_names() if n.startswith("ljspeech_")]
    samples = joined(names)
    slices = split_at_silence(samples, OPTS)
    sent = sum(s.length for s in slices) / RATE
    assert len(slices) <= int(np.ceil(sent / (OPTS.max_slice_s * OPTS.min_fill))) + 1
    assert all(s.length / RATE >= OPTS.min_fill * OPTS.max_slice_s for s in slices[:-1])


def test_long_pauses_are_not_sent_to_workers():
    """A 20 s pause between two recordings is left out of the slices (only the pads remain)."""
    a, b = load("jfk_inaugural_excerpt.wav"), load("ls_dev-clean_1272-141231-0002.wav")
    samples = np.concatenate([a, np.zeros(20 * RATE, np.int16), b])
    slices = split_at_silence(samples, OPTS)
    sent = sum(s.length for s in slices)
    assert sent < len(a) + len(b) + RATE  # the pause cost at most a second of pads
    for s in slices:
        for p in s.pieces:
            inside_gap = max(0, min(p.end, len(a) + 20 * RATE) - max(p.start, len(a)))
            assert inside_gap <= 2 * OPTS.pad_ms * RATE // 1000 + 320


def test_threshold_adapts_to_a_noisy_recording():
    """With steady noise at about -32 dBFS (a fixed -40 dBFS threshold would call everything speech), the
    splitter still finds the pauses and cuts in them."""
    rng = np.random.default_rng(1)
    clean = joined(["ls_dev-clean_1272-141231-0002.wav", "ls_dev-clean_2412-153948-0000.wav",
                    "jfk_inaugural_excerpt.wav"], gap_s=1.0).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 800, len(clean)), -32768, 32767).astype(np.int16)
    levels = frame_levels_db(noisy, 320)
    assert np.percentile(levels, 5) > -40, "the noise floor should sit above a fixed -40 dBFS threshold"
    opts = SplitOptions(max_slice_s=10.0)
    analysis = analyse(noisy, opts)
    assert analysis.threshold_db > -40
    slices = plan_from_analysis(analysis, opts)
    assert len(slices) >= 3
    for cut in cut_points(slices):
        f = cut // analysis.frame_len
        assert min(analysis.levels_db[max(0, f - 1):f + 1]) < analysis.threshold_db


def test_speech_longer_than_the_maximum_is_cut_at_its_quietest_point():
    """A stretch with no pause at all is cut inside, at the quietest 100 ms, and each part fits."""
    t = np.arange(30 * RATE) / RATE
    syllables = 1 - 0.6 * np.abs(np.cos(2 * np.pi * 2.5 * t))  # speech-like dynamics: 5 syllables a second
    loudness = (0.45 + 0.15 * np.sin(2 * np.pi * t / 7.0)) * syllables  # dips every 7 s, never a pause
    rng = np.random.default_rng(2)
    samples = (rng.normal(0, 1, len(t)) * loudness * 8000).astype(np.int16)
    opts = SplitOptions(max_slice_s=10.0)
    analysis = analyse(samples, opts)
    assert len(speech_regions(analysis.levels_db, analysis.threshold_db, opts)) == 1, "no pause to cut in"
    slices = plan_from_analysis(analysis, opts)
    assert len(slices) >= 3
    check_invariants(samples, slices, opts)
    for s in slices[:-1]:
        cut_s = s.end / RATE
        phase = (cut_s % 7.0) / 7.0  # quietest where sin = -1, i.e. phase 0.75
        assert abs(phase - 0.75) < 0.05, f"cut at {cut_s:.2f} s is not at a dip"


@pytest.mark.parametrize("samples", [np.zeros(0, np.int16), np.zeros(100, np.int16),
                                     np.zeros(10 * RATE, np.int16),
                                     (np.random.default_rng(3).normal(0, 3, 5 * RATE)).astype(np.int16)],
                         ids=["empty", "shorter-than-a-frame", "digital-silence", "faint-hiss"])
def test_no_speech_gives_no_slices(samples):
    """Empty input, silence and faint hiss produce no slices at all."""
    assert split_at_silence(samples, OPTS) == []


@pytest.mark.parametrize("level_db", [-30, -40, -50, -60])
@pytest.mark.parametrize("kind", ["white", "hum"])
def test_steady_noise_without_speech_gives_no_slices(level_db, kind):
    """Steady white noise or a 50 Hz hum, at any level, has no speech dynamics: no slices (before, its
    threshold sat at its own floor and the whole recording went to a worker as speech)."""
    n = 30 * RATE
    if kind == "white":
        x = np.random.default_rng(-level_db).normal(0, 1, n)
    else:
        x = np.sin(2 * np.pi * 50 * np.arange(n) / RATE) * np.sqrt(2)
    x = x * 32768 * 10 ** (level_db / 20)
    samples = np.clip(x, -32768, 32767).astype(np.int16)
    assert abs(np.percentile(frame_levels_db(samples, 320), 50) - level_db) < 1.5
    assert split_at_silence(samples, OPTS) == []


@pytest.mark.parametrize("noise_db", [-50, -40])
def test_a_few_words_over_steady_noise_are_still_speech(noise_db):
    """Real speech lasting a few percent of a noisy recording (too short to move the speech percentile) is
    still found and sent, and the noise around it is not."""
    rng = np.random.default_rng(7)
    words = load("jfk_inaugural_excerpt.wav")[: 2 * RATE].astype(np.float64)  # "And so, my fellow..."
    noise = rng.normal(0, 32768 * 10 ** (noise_db / 20), 60 * RATE)
    noise[30 * RATE: 32 * RATE] += words
    samples = np.clip(noise, -32768, 32767).astype(np.int16)
    slices = split_at_silence(samples, OPTS)
    assert len(slices) == 1
    assert 29 * RATE <= slices[0].start and slices[0].end <= 33 * RATE
    assert slices[0].length < 4 * RATE


def test_idle_workers_get_finer_slices_only_while_that_helps():
    """With more idle slots than slices the recording is cut finer, never into more slices than slots, the
    longest slice shrinks as slots grow, and the maximum never goes below twice min_slice_s."""
    samples = load("bush_radio_address_2008-11-01.wav")
    analysis = analyse(samples, OPTS)
    base = plan_from_analysis(analysis, OPTS)
    longest = []
    for slots in (1, len(base), 8, 16, 64):
        slices = split_for_parallelism(analysis, OPTS, slots)
        check_invariants(samples, slices, OPTS)
        assert len(slices) <= max(slots, len(base))
        if slots <= len(base):
            assert slices == base
        longest.append(max(s.length for s in slices) / RATE)
    assert longest == sorted(longest, reverse=True) and longest[-1] < longest[0] / 2
    assert longest[-1] >= 2 * OPTS.min_slice_s - 0.5


def test_options_are_checked():
    """Nonsense options are refused when made, not discovered mid-job."""
    with pytest.raises(ValueError):
        SplitOptions(max_slice_s=5, min_slice_s=4)
    with pytest.raises(ValueError):
        SplitOptions(min_silence_ms=5)


def test_busy_rounds_are_filled_by_cutting_finer():
    """With fewer idle slots than slices the recording is cut so the slices fill whole rounds of the slots:
    never more rounds than the normal plan needs, the longest slice no longer than before, the cuts still in
    pauses."""
    samples = np.concatenate([load(name) for name in ("bush_radio_address_2008-11-01.wav",
                                                      "librivox_shakespeare_sonnet_001.wav")])
    analysis = analyse(samples, OPTS)
    base = plan_from_analysis(analysis, OPTS)
    for slots in (2, 3, 4):
        slices = split_for_parallelism(analysis, OPTS, slots)
        check_invariants(samples, slices, OPTS)
        rounds = -(-len(base) // slots)
        assert len(base) <= len(slices) <= rounds * slots
        assert max(s.length for s in slices) <= max(s.length for s in base)
        if len(base) % slots:  # a part-empty round was filled
            assert max(s.length for s in slices) < max(s.length for s in base)
