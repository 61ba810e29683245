"""Live mode's pure rules (server/live.py), its growing WAV file and its bookkeeping (server/live_jobs.py on a
real coordinator and store, no sockets): audio and time are passed in, nothing sleeps. The same with real
processes and the page: tests/test_live_e2e.py."""

from __future__ import annotations

import sqlite3
import wave

import numpy as np
import pytest
from scipy.signal import resample_poly

from server import audio
from server.config import ServerSettings, Settings
from server.coordinator import Coordinator
from server.live import ChunkError, LiveOptions, LiveSession, LiveSplitter, Sequencer
from server.live_jobs import LiveJobs
from server.payloads import live_chunk, live_stop
from server.splitter import SplitOptions, analyse, speech_regions
from server.store import Store
from tests.support import corpus_file, manifest

RATE = 16000
OPTS = SplitOptions()
LIVE = LiveOptions()
CHUNK = RATE // 4  # the page's 250 ms


def load(name: str) -> np.ndarray:
    return audio.PcmFile(corpus_file(name))[:]


def signal(*parts: tuple[str, float], seed: int = 0) -> np.ndarray:
    """Made-up audio: ("speech", seconds) is noise at about -20 dBFS, ("quiet", seconds) about -70 dBFS."""
    rng = np.random.default_rng(seed)
    level = {"speech": 3000.0, "quiet": 10.0}
    return np.concatenate([rng.normal(0, level[kind], int(seconds * RATE)) for kind, seconds in parts]
                          ).astype(np.int16)


def play(samples: np.ndarray, live: LiveOptions = LIVE, rate: int = RATE):
    """Feed ``samples`` to a session in 250 ms chunks, then Stop. Returns [(slice, audio seconds when it
    closed — None for those closed by Stop — threshold then)] and the session."""
    session = LiveSession(rate, OPTS, live, max_duration_s=3600, now=0.0)
    closed = []
    size = rate // 4
    for seq, first in enumerate(range(0, len(samples), size)):
        update = session.chunk(seq, samples[first : first + size].tobytes(), now=0.0)
        closed += [(s, (first + size) / rate, session.splitter.threshold_db) for s in update.slices]
    update = session.stop(seq, now=0.0)
    assert update.finished
    closed += [(s, None, session.splitter.threshold_db) for s in update.slices]
    return closed, session


# --- order --------------------------------------------------------------------------------------------------


def test_sequencer_gives_each_chunk_once_in_order():
    """Chunks come out in sequence order exactly once: duplicates are ignored, early ones wait for the gap to
    fill, and one beyond the window is refused without changing anything."""
    seq = Sequencer(window=4)
    assert seq.accept(0, b"a") == [b"a"] and seq.acked == 0
    assert seq.accept(0, b"a") == []
    assert seq.accept(2, b"c") == [] and seq.accept(3, b"d") == [] and seq.acked == 0
    assert seq.accept(2, b"c") == []
    with pytest.raises(ChunkError, match="resend from chunk 1"):
        seq.accept(5, b"f")
    assert seq.accept(1, b"b") == [b"b", b"c", b"d"] and seq.acked == 3
    assert seq.accept(4, b"e") == [b"e"] and seq.accept(1, b"b") == [] and seq.acked == 4


# --- sample rate --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_streamed_resampling_is_the_upload_conversion(rate, tmp_path):
    """Real speech at another rate, resampled chunk by chunk (irregular sizes), gives exactly the samples the
    upload path writes for the whole file."""
    speech = load("jfk_inaugural_excerpt.wav").astype(np.float64)
    pcm = np.clip(resample_poly(speech, rate, RATE), -32768, 32767).astype(np.int16)
    src = tmp_path / "in.wav"
    with wave.open(str(src), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    audio.convert_to_pcm16(src, tmp_path / "out.wav")
    uploaded = audio.PcmFile(tmp_path / "out.wav")[:]
    sizes = np.random.default_rng(rate).integers(1, rate // 2, size=len(pcm) // 50)
    resampler, parts, first = audio.Resampler(rate), [], 0
    for size in sizes:
        parts.append(resampler.feed(pcm[first : first + size].astype(np.float32) / 32768.0))
        first += size
    parts += [resampler.feed(pcm[first:].astype(np.float32) / 32768.0), resampler.finish()]
    parts = [audio.float_to_pcm16(p) for p in parts]
    assert np.array_equal(np.concatenate(parts), uploaded)


def test_growing_file_is_the_bytes_an_upload_stores(tmp_path):
    """A PcmWriter appended to piece by piece holds the bytes Python's wave module writes for the same
    samples, and after a crash mid-append it is cut back to what its header states."""
    samples = load("timit_LDC93S1_sample.wav")
    path = tmp_path / "live.wav"
    grown = audio.PcmWriter(path, exclusive=True)
    for first in range(0, len(samples), 1234):
        grown.append(samples[first : first + 1234])
    grown.close()
    assert path.read_bytes() == audio.wav_bytes(samples)
    with open(path, "ab") as f:  # a write the header never heard of
        f.write(b"\x01\x02\x03")
    assert audio.PcmWriter.repair(path) == len(samples) and path.read_bytes() == audio.wav_bytes(samples)


# --- where slices end ---------------------------------------------------------------------------------------


def test_a_pause_after_enough_speech_closes_the_slice_as_soon_as_it_is_long_enough():
    """Speech with a 0.3 s breath (shorter than pause_s) stays one slice; the 2 s pause after 8.5 s of speech
    closes it once 0.6 s of the pause has arrived, with pad_ms of silence after the speech."""
    samples = signal(("quiet", 0.5), ("speech", 4.0), ("quiet", 0.3), ("speech", 4.2), ("quiet", 2.0),
                     ("speech", 1.0), ("quiet", 3.0))
    closed, _ = play(samples)
    first, at, _ = closed[0]
    assert at == 9.75  # the first 250 ms chunk that completes 0.6 s of pause (9.0 → 9.6 s)
    assert (first.start, first.end) == (0.3 * RATE, 9.2 * RATE) and len(first.pieces) == 1


def test_a_long_pause_closes_a_short_slice():
    """One second of speech is closed once the pause after it reaches long_pause_s, not later."""
    samples = signal(("quiet", 1.0), ("speech", 1.0), ("quiet", 4.0))
    closed, _ = play(samples)
    (only, at, _), = closed
    assert at == 4.0 and (only.start, only.end) == (0.8 * RATE, 2.2 * RATE)


def test_speech_without_a_pause_is_cut_only_at_the_maximum_length():
    """A minute of speech with no pause is cut only when the open slice, with a pad of silence on each side,
    no longer fits in max_slice_s; every slice fits, and together they hold all of it."""
    samples = signal(("speech", 60.0))
    closed, _ = play(samples)
    assert len(closed) == 3 and closed[-1][1] is None
    previous_end = 0
    for s, at, _ in closed:
        assert s.length <= OPTS.max_slice_s * RATE
        assert s.start == previous_end  # nothing dropped: it is all speech
        if at is not None:
            full = OPTS.max_slice_s - 2 * OPTS.pad_ms / 1000
            assert at - s.start / RATE > full, "closed before it was full"
        previous_end = s.end
    assert previous_end == len(samples)


def test_threshold_starts_fixed_then_adapts_to_the_recording():
    """Before warmup_s of audio the threshold is start_threshold_db; after it, it sits between this
    recording's noise floor and its speech level."""
    splitter = LiveSplitter(OPTS, LIVE)
    samples = signal(("quiet", 1.0), ("speech", 2.0), ("quiet", 1.0))
    splitter.feed(samples[: RATE])
    assert splitter.threshold() == LIVE.start_threshold_db
    splitter.feed(samples[RATE:])
    assert -70 < splitter.threshold() < -25 and splitter.threshold() != LIVE.start_threshold_db


@pytest.mark.parametrize("name", sorted(n for n, r in manifest().items() if float(r["seconds"]) > 20))
def test_live_cuts_on_real_speech_fall_in_pauses_and_keep_the_speech(name):
    """On the corpus's long recordings played in 250 ms chunks: slices are in order and never overlap, fit in
    max_slice_s, every cut made while recording lies next to a frame quieter than the threshold of that
    moment, and at least 95 % of the frames the upload splitter calls speech are in some slice."""
    samples = load(name)
    closed, session = play(samples)
    levels = session.splitter.levels_db
    covered = np.zeros(len(levels), bool)
    previous_end = 0
    for s, at, threshold in closed:
        assert s.length <= OPTS.max_slice_s * RATE + 1 and s.start >= previous_end
        previous_end = s.end
        for p in s.pieces:
            covered[p.start // 320 : p.end // 320] = True
        if at is not None:
            f = s.end // 320
            assert min(levels[f - 1], levels[f]) < threshold, f"cut at {s.end / RATE:.2f} s inside speech"
    assert any(at is not None for _, at, _ in closed), "no slice closed while recording"
    upload = analyse(samples, OPTS)
    speech = np.zeros(len(levels), bool)
    for a, b in speech_regions(upload.levels_db, upload.threshold_db, OPTS):
        speech[a:b] = True
    assert (speech & covered).sum() >= 0.95 * speech.sum()


# --- one session --------------------------------------------------------------------------------------------


def test_session_refuses_bad_chunks_and_changes_nothing():
    """A bad sample rate, seq, empty/odd/oversized PCM or a chunk after the last one is refused with a
    message, and the acknowledged position stays where it was."""
    with pytest.raises(ChunkError, match="sample rate"):
        LiveSession(96000, OPTS, LIVE, 60, 0.0)
    with pytest.raises(ChunkError, match="sample rate"):
        LiveSession("16000", OPTS, LIVE, 60, 0.0)
    session = LiveSession(RATE, OPTS, LIVE, 60, 0.0)
    session.chunk(0, bytes(CHUNK * 2), 0.0)
    for seq, pcm, words in [(-1, b"\0\0", "seq"), (True, b"\0\0", "seq"), ("1", b"\0\0", "seq"),
                            (1.0, b"\0\0", "seq"), (1, b"", "even"), (1, b"\0\0\0", "even"),
                            (1, "text", "even"),
                            (1, bytes(2 * RATE + 2), "at most 1 s"), (10**12, b"\0\0", "seq")]:
        with pytest.raises(ChunkError, match=words):
            session.chunk(seq, pcm, 0.0)
        assert session.ack == 0
    session.stop(1, 0.0)
    with pytest.raises(ChunkError, match="after the last one"):
        session.chunk(2, b"\0\0", 0.0)


def test_stop_waits_for_missing_chunks_then_closes_the_last_slice():
    """Stop after chunk 3 with chunk 2 missing finishes nothing; the missing chunk's arrival finishes the
    session and closes the last slice, covering the whole recording."""
    samples = signal(("quiet", 0.2), ("speech", 0.8))
    chunks = [samples[i : i + CHUNK].tobytes() for i in range(0, len(samples), CHUNK)]
    session = LiveSession(RATE, OPTS, LIVE, 60, 0.0)
    for seq in (0, 1, 3):
        assert not session.chunk(seq, chunks[seq], 0.0).finished
    update = session.stop(3, 0.0)
    assert not update.finished and update.ack == 1
    update = session.chunk(2, chunks[2], 0.0)
    assert update.finished and update.ack == 3 and len(update.slices) == 1
    assert update.slices[0].end == len(samples) and session.duration_s == 1.0


def test_a_silent_page_is_closed_after_the_idle_timeout_with_what_it_sent():
    """With no request for idle_timeout_s the session finishes on its own with the audio it has; a request
    before that keeps it open."""
    live = LiveOptions(idle_timeout_s=30.0)
    session = LiveSession(RATE, OPTS, live, 60, now=100.0)
    session.chunk(0, signal(("speech", 0.25)).tobytes(), now=100.0)
    assert session.expire(now=129.0) is None
    session.chunk(1, signal(("speech", 0.25)).tobytes(), now=129.0)
    assert session.expire(now=158.0) is None
    update = session.expire(now=159.5)
    assert update.finished and update.slices and session.duration_s == 0.5


def test_the_length_limit_ends_the_recording_with_what_came_before_it():
    """A chunk that would pass max_duration ends the session with an error saying so; the audio before it is
    kept and its slices closed."""
    session = LiveSession(RATE, OPTS, LIVE, max_duration_s=1.0, now=0.0)
    part = signal(("speech", 0.25)).tobytes()
    for seq in range(4):
        assert not session.chunk(seq, part, 0.0).finished
    update = session.chunk(4, part, 0.0)
    assert update.finished and "limit of 0.01667 min" in update.error
    assert update.ack == 3 and session.duration_s == 1.0 and update.slices


def test_an_old_database_gains_the_recording_column(tmp_path):
    """A database written before live mode is migrated on open: old jobs read as not recording, and new ones
    can be."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""CREATE TABLE jobs (id TEXT PRIMARY KEY, name TEXT NOT NULL, source TEXT NOT NULL,
        created_at REAL NOT NULL, status TEXT NOT NULL, duration REAL NOT NULL DEFAULT 0,
        engine TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '', finished_at REAL, stats TEXT NOT NULL DEFAULT '{}');
        INSERT INTO jobs (id, name, source, created_at, status)
            VALUES ('old', 'a.wav', 'upload', 1.0, 'done');""")
    db.commit()
    db.close()
    store = Store(path)
    assert store.get_job("old").recording is False
    store.update_job("old", recording=True)
    assert [j.id for j in store.recording_jobs()] == ["old"]


# --- live jobs on a coordinator (a real store in a temporary folder, no sockets; the clock passed in) -------


def live_jobs(tmp_path, live: LiveOptions = LIVE):
    """LiveJobs on a real coordinator and store; every push it makes is kept in the returned list."""
    pushed = []
    settings = Settings(server=ServerSettings(data_dir=str(tmp_path)), live=live)
    coord = Coordinator(settings, Store(tmp_path / "jobs.db"),
                        lambda event, data, **_: pushed.append((event, data)))
    clock = {"now": 0.0}
    return LiveJobs(coord, live, clock=lambda: clock["now"]), clock, pushed


def test_a_live_jobs_length_follows_its_audio_at_most_once_a_second(tmp_path):
    """Between slices the stored length of a live job catches up with its audio once a second, not once per
    chunk, and each time the job and the jobs list go to the pages with that length; Stop stores the rest."""
    jobs, clock, pushed = live_jobs(tmp_path)
    started = jobs.start("growing.wav", RATE)
    job_id, key = started["job"], started["key"]
    quiet = signal(("quiet", 0.25)).tobytes()  # no speech: no slice closes, only the length grows
    seen = []
    for seq in range(16):  # 4 s of audio, a chunk every 250 ms
        clock["now"] = seq * 0.25
        del pushed[:]
        assert jobs.chunk(live_chunk({"job": job_id, "key": key, "seq": seq, "pcm": quiet})) == {"ack": seq}
        lists = [data for event, data in pushed if event == "jobs"]
        views = [data for event, data in pushed if event == "job"]
        if lists:
            assert [j["duration"] for j in lists[0] if j["id"] == job_id] == [(seq + 1) / 4]
            assert views and views[-1]["duration"] == (seq + 1) / 4 and views[-1]["recording"]
            seen.append(seq)
        else:
            assert not views
    assert seen == [0, 4, 8, 12], "once a second, from the first chunk"
    assert jobs.coordinator.job_view(job_id)["duration"] == 3.25
    clock["now"] = 4.0
    assert jobs.stop(live_stop({"job": job_id, "key": key, "last_seq": 15}))["finished"]
    view = jobs.coordinator.job_view(job_id)
    assert view["duration"] == 4.0 and not view["recording"]


def test_live_mode_can_be_turned_off(tmp_path):
    """With max_sessions = 0 a live recording is refused with a message saying the page sends it at Stop;
    a negative number is a configuration error."""
    jobs, _, _ = live_jobs(tmp_path, LiveOptions(max_sessions=0))
    refused = jobs.start("x.wav", RATE)
    assert "job" not in refused and "live mode is off" in refused["error"]
    with pytest.raises(ValueError, match="max_sessions"):
        LiveOptions(max_sessions=-1)
