"""Live mode with real processes: a server and a worker on 127.0.0.1 take live recordings from a
python-socketio client that does what the page does (real corpus PCM in 250 ms chunks), and from the page
itself in Debian's Chromium, whose fake microphone plays a corpus recording."""

from __future__ import annotations

import re
import time
import wave

import numpy as np
import pytest
import requests
import socketio
from playwright.sync_api import sync_playwright
from scipy.signal import resample_poly

from server import audio
from tests.support import Server, Worker, corpus_file, manifest, wait_for, wer, write_config
from tests.test_web import DONE, job_id_of, launch, open_page, seen, shot

RATE = 16000
HARVARD = "osr_us_000_0034_harvard_list72.wav"  # 35.5 s of read sentences with pauses between them
JFK = "jfk_inaugural_excerpt.wav"
ELAPSED = "Number(document.getElementById('elapsed').dataset.seconds)"
#: Press Stop from inside the page as soon as it has recorded `at` seconds (to the chunk, whatever the load).
STOP_AT = """async (at) => {
  const intake = window.scatterscribe.intake;
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      if (intake.frames / intake.rate >= at) { clearInterval(timer); resolve(); }
    }, 5);
  });
  document.getElementById('record').click();
}"""


#: Kept in the page while it records: every state of the tentative words (each word's element number and word,
#: open part and held), with how many slices the job had then and whether the held words stand in for slices
#: still out (their placeholders hidden, no final text of theirs shown); and any script error.
CAPTIONS_WATCH = """(() => {
  window.captions = { renders: [], errors: [] };
  window.addEventListener('error', (e) => captions.errors.push(String(e.message)));
  const t = document.getElementById('transcript');
  const wordsOf = (kind) => [...t.querySelectorAll(`.tentative[data-kind="${kind}"] .word`)]
    .map((w) => [Number(w.dataset.n), w.dataset.word]);
  new MutationObserver(() => {
    const open = wordsOf('open'), held = wordsOf('held');
    const key = JSON.stringify([open, held]);
    const last = captions.renders[captions.renders.length - 1];
    if (last && last.key === key) return;
    const openBlock = t.querySelector('.tentative[data-kind="open"]');
    const heldBlock = t.querySelector('.tentative[data-kind="held"]');
    const stands = (i) => t.querySelector(`#transcript-body .placeholder[data-slice="${i}"][hidden]`) &&
      !t.querySelector(`#transcript-body .seg[data-slice="${i}"]`);
    captions.renders.push({ key, open, held, at: performance.now(), openStart: openBlock && openBlock.dataset.start,
      slices: document.querySelectorAll('#slice-list li').length,
      heldStandsIn: !heldBlock ? null
        : (heldBlock.dataset.slices || '').split(' ').filter(Boolean).every((i) => Boolean(stands(i))) });
  }).observe(t, { childList: true, subtree: true, characterData: true });
})()"""


def load(name: str) -> np.ndarray:
    return audio.PcmFile(corpus_file(name))[:]


def chunks_of(samples: np.ndarray, rate: int = RATE) -> list[bytes]:
    size = rate // 4
    return [samples[i : i + size].tobytes() for i in range(0, len(samples), size)]


class FakePage:
    """A Socket.IO client that records live the way web/live.js does; it keeps the tentative text pushed to it."""

    def __init__(self, server: Server):
        self.server = server
        self.partials: list[dict] = []
        self.ended: list[dict] = []  # live_ended: the server ended a recording of this page's on its own
        self.sio = socketio.Client()
        self.sio.on("partial", self.partials.append)
        self.sio.on("live_ended", self.ended.append)
        self.sio.connect(server.url, transports=["websocket"], wait_timeout=10)

    def call(self, event: str, data: dict) -> dict:
        return self.sio.call(event, data, timeout=30)

    def start(self, rate: int = RATE, name: str = "live.wav") -> dict:
        answer = self.call("live_start", {"name": name, "sample_rate": rate})
        assert "job" in answer, answer
        return answer

    def send(self, live: dict, chunks: list[bytes], first: int = 0) -> dict:
        """Send chunks[first:] one after the other, each acknowledged before the next."""
        answer = {}
        for seq in range(first, len(chunks)):
            answer = self.call("live_chunk", {"job": live["job"], "key": live["key"], "seq": seq,
                                              "pcm": chunks[seq]})
            assert answer["ack"] == seq and "error" not in answer, answer
        return answer

    def stop(self, live: dict, last_seq: int) -> dict:
        return self.call("live_stop", {"job": live["job"], "key": live["key"], "last_seq": last_seq})

    def close(self) -> None:
        self.sio.disconnect()


def forget(server: Server, *job_ids: str) -> None:
    """Delete jobs made only to compare audio, so the worker is free for the next test."""
    for job_id in job_ids:
        requests.delete(f"{server.url}/api/jobs/{job_id}", timeout=30).raise_for_status()


#: The recording's length as the page shows it: its timer, the job card and its line among the past jobs.
LENGTHS = """(() => {
  const minutes = (text) => {
    const m = /(\\d+):(\\d\\d)/.exec(text || '');
    return m ? 60 * Number(m[1]) + Number(m[2]) : null;
  };
  const past = document.querySelector("#jobs a[aria-current='page'] ~ .meta");
  return { elapsed: Number(document.getElementById('elapsed').dataset.seconds),
           card: minutes(/^(\\d+:\\d\\d) of audio/.exec(document.getElementById('job-meta').textContent)?.[1]),
           past: minutes(past && past.textContent.split(' · ').find((part) => /^\\d+:\\d\\d$/.test(part))) };
})()"""


def stored_audio(server: Server, job_id: str) -> bytes:
    response = server.get(f"/api/jobs/{job_id}/audio.wav")
    assert response.ok, response.text
    return response.content


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One server and one real worker for the module."""
    server = Server(tmp_path_factory.mktemp("live"))
    worker = Worker(server, "live-worker")
    try:
        server.wait_workers(1)
        yield server
    finally:
        worker.stop()
        server.stop()


@pytest.fixture(scope="module")
def streamed(site):
    """HARVARD streamed live at 16 kHz: the first 20 s, a look at the job once the slices closed so far are
    transcribed, the rest, Stop. Gives the job id, that look, and the Stop answer."""
    page = FakePage(site)
    chunks = chunks_of(load(HARVARD))
    live = page.start()
    page.send(live, chunks[:80])
    closed = wait_for(lambda: len(site.job(live["job"])["slices"]) >= 1, 30, "a slice to close mid-recording")
    assert closed

    def transcribed():
        view = site.job(live["job"])
        return all(s["status"] == "done" for s in view["slices"]) and view
    mid = wait_for(transcribed, 120, "the closed slices to be transcribed")
    page.send(live, chunks, first=80)
    stop = page.stop(live, len(chunks) - 1)
    page.close()
    yield live["job"], mid, stop


def test_a_job_is_not_done_while_its_recording_may_grow(streamed):
    """Mid-recording, with every slice closed so far transcribed, the job says it is recording and is not
    done; Stop finishes the recording at once."""
    _, mid, stop = streamed
    assert mid["recording"] is True and mid["status"] == "running" and mid["source"] == "live"
    assert mid["progress"]["done"] == mid["progress"]["total"] >= 1 and mid["transcript"]
    assert stop == {"ack": len(chunks_of(load(HARVARD))) - 1, "finished": True}


def test_streamed_recording_is_stored_byte_identical_to_its_upload(site, streamed):
    """The audio.wav of a recording streamed live at 16 kHz is byte for byte the one its upload stores."""
    job_id, _, _ = streamed
    upload = site.submit(corpus_file(HARVARD))
    assert stored_audio(site, job_id) == stored_audio(site, upload)
    assert site.job(job_id)["duration"] == site.job(upload)["duration"]
    forget(site, upload)


def test_finished_live_job_reads_like_an_uploaded_one(site, streamed):
    """The live job ends done, not recording, with its text close to the reference, listed among past jobs and
    downloadable as .txt/.srt/.vtt/.json like any job."""
    job_id, _, _ = streamed
    job = site.wait_job(job_id)
    assert job["status"] == "done" and job["recording"] is False
    error = wer(manifest()[HARVARD]["reference"], job["transcript"])
    print(f"{HARVARD} streamed live: {len(job['slices'])} slices, WER {error:.1f} %")
    assert error <= 10.0
    assert any(j["id"] == job_id and j["source"] == "live" for j in site.get("/api/jobs").json()["jobs"])
    txt = site.get(f"/api/jobs/{job_id}/transcript.txt").text
    assert " ".join(txt.split()) == job["transcript"]  # the same words, in paragraphs
    assert site.get(f"/api/jobs/{job_id}/transcript.srt").text.count(" --> ") >= len(job["slices"])
    assert site.get(f"/api/jobs/{job_id}/transcript.vtt").text.startswith("WEBVTT")
    data = site.get(f"/api/jobs/{job_id}/transcript.json").json()
    assert [s["index"] for s in data["slices"]] == list(range(len(job["slices"])))


def test_streamed_48khz_recording_is_resampled_exactly_like_its_upload(site, tmp_path):
    """A 48 kHz recording streamed live in 250 ms chunks is stored as the same 16 kHz bytes as its upload."""
    pcm = np.clip(resample_poly(load(JFK).astype(np.float64), 3, 1), -32768, 32767).astype(np.int16)
    path = tmp_path / "jfk48k.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(pcm.tobytes())
    page = FakePage(site)
    live = page.start(rate=48000)
    chunks = chunks_of(pcm, 48000)
    page.send(live, chunks)
    assert page.stop(live, len(chunks) - 1)["finished"]
    page.close()
    upload = site.submit(path)
    assert stored_audio(site, live["job"]) == stored_audio(site, upload)
    assert site.job(live["job"])["stats"]["input"] == "48000 Hz mono 16-bit PCM"
    assert site.job(live["job"])["duration"] == site.job(upload)["duration"] == 11.0
    forget(site, live["job"], upload)


def test_a_dropped_connection_loses_nothing_when_the_page_resends(site):
    """Chunks sent without waiting, a gap, a connection cut: a new connection learns what the server has,
    resends the rest (old chunks again among them, ignored), a chunk far ahead is refused; the stored audio is
    still byte for byte the upload's."""
    chunks = chunks_of(load(JFK))
    first = FakePage(site)
    live = first.start()
    first.send(live, chunks[:20])
    for seq in [*range(20, 30), 31, 32, 33]:  # 30 is "lost"
        first.sio.emit("live_chunk", {"job": live["job"], "key": live["key"], "seq": seq, "pcm": chunks[seq]})
    first.sio.disconnect()
    second = FakePage(site)
    resumed = second.call("live_resume", {"job": live["job"], "key": live["key"]})
    assert 19 <= resumed["ack"] <= 29 and resumed["stopping"] is False, resumed
    ahead = second.call("live_chunk", {**live, "seq": resumed["ack"] + 100, "pcm": chunks[0]})
    assert ahead["ack"] == resumed["ack"] and "resend from chunk" in ahead["error"]
    again = second.call("live_chunk", {"job": live["job"], "key": live["key"], "seq": 5, "pcm": b"\0\0" * 9})
    assert again == {"ack": resumed["ack"]}, "a chunk already here is ignored, whatever it holds"
    # Chunks 31-33 of the old connection may reach the server after the resume (it handles each connection's
    # messages on its own): then they are held, and an acknowledgement jumps past them.
    seq = resumed["ack"] + 1
    while seq < len(chunks):
        answer = second.call("live_chunk", {"job": live["job"], "key": live["key"], "seq": seq, "pcm": chunks[seq]})
        assert "error" not in answer and seq <= answer["ack"] <= max(seq, 33), answer
        seq = answer["ack"] + 1
    assert second.stop(live, len(chunks) - 1)["finished"]
    second.close()
    upload = site.submit(corpus_file(JFK))
    assert stored_audio(site, live["job"]) == stored_audio(site, upload)
    forget(site, live["job"], upload)


def test_tentative_text_comes_while_speaking_and_goes_at_stop(site):
    """HARVARD's first 8 s streamed at the speed it is spoken, to a server with a real worker: before any slice
    closes, the page is pushed tentative text of the open part (its start and end within the audio sent) that
    reads like the start of what was said, and the job view carries the latest; after Stop it is null, and
    the final text is the slice's own."""
    page = FakePage(site)
    live = page.start()
    chunks = chunks_of(load(HARVARD))[:32]
    began = time.monotonic()
    for seq, chunk in enumerate(chunks):
        page.call("live_chunk", {**live, "seq": seq, "pcm": chunk})
        time.sleep(max(0.0, began + (seq + 1) * 0.25 - time.monotonic()))
    view = site.job(live["job"])
    assert view["slices"] == [] and view["recording"], "no slice has closed yet"
    shown = [p["partial"] for p in page.partials if p["job"] == live["job"] and p["partial"]]
    print("tentative texts pushed:", [p["text"] for p in shown])
    assert shown, "tentative text was pushed while speaking"
    assert all(0 <= p["start"] < p["end"] <= 8.0 for p in shown)
    said = "A gold ring will please most any girl. The long journey home took a year.".split()
    latest = shown[-1]["text"].split()
    assert wer(" ".join(said[: len(latest)]), " ".join(latest)) <= 25.0, "it reads as the start of what was said"
    assert view["partial"] is None or view["partial"]["text"] == shown[-1]["text"]
    assert page.stop(live, len(chunks) - 1)["finished"]
    assert site.job(live["job"])["partial"] is None
    done = site.wait_job(live["job"])
    assert done["partial"] is None and "partial" not in site.get(f"/api/jobs/{live['job']}/transcript.json").json()
    assert wer("A gold ring will please most any girl. The long journey home took a year.", done["transcript"]) <= 25
    page.close()
    forget(site, live["job"])


def test_live_requests_are_checked(site):
    """A wrong key, an unknown job, a malformed or oversized chunk and a bad sample rate are each refused
    with a message; the recording they aimed at is untouched."""
    page = FakePage(site)
    assert "sample rate" in page.call("live_start", {"name": "x", "sample_rate": 192000})["error"]
    assert "sample rate" in page.call("live_start", {"name": "x"})["error"]
    for engine in ("a b", 7, "x" * 200, "sleep;rm"):
        refused = page.call("live_start", {"name": "x", "sample_rate": RATE, "engine": engine})
        assert "job" not in refused and refused["error"], engine
    live = page.start()
    chunks = chunks_of(load(JFK))
    page.send(live, chunks[:4])
    wrong_key = page.call("live_chunk", {"job": live["job"], "key": "guess", "seq": 4, "pcm": chunks[4]})
    assert wrong_key["finished"] and "no such live recording" in wrong_key["error"]
    assert "no such" in page.call("live_chunk", {"job": "0123456789abcdef", "key": live["key"], "seq": 0,
                                                 "pcm": chunks[0]})["error"]
    assert "malformed" in page.call("live_chunk", ["not", "a", "dict"])["error"]
    for bad in ({"seq": "4", "pcm": chunks[4]}, {"seq": 4, "pcm": "text"}, {"seq": 4, "pcm": bytes(40_000)}):
        answer = page.call("live_chunk", {"job": live["job"], "key": live["key"], **bad})
        assert answer["ack"] == 3 and answer["error"] and "finished" not in answer
    assert page.stop(live, 3) == {"ack": 3, "finished": True}
    assert len(stored_audio(site, live["job"])) == 44 + 2 * 4 * 4000
    page.close()
    forget(site, live["job"])


# --- limits, timeouts and restarts (a server without workers, small limits) ---------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A server with a 2 s idle timeout, 2 live recordings at most and recordings of at most 15 s."""
    tmp = tmp_path_factory.mktemp("limited")
    config = write_config(tmp / "config.toml", server={"max_duration_min": 0.25},
                          live={"idle_timeout_s": 2.0, "max_sessions": 2})
    server = Server(tmp, config=config)
    yield server
    server.stop()


def test_too_many_live_recordings_at_once_are_refused(limited):
    """A third live recording while two run is refused with a message; once one ends, a new one may start."""
    page, other = FakePage(limited), FakePage(limited)  # one live recording per page connection
    one, two = page.start(), other.start()
    refused = FakePage(limited).call("live_start", {"name": "third", "sample_rate": RATE})
    assert "already takes 2 live recordings" in refused["error"] and "job" not in refused
    assert page.stop(one, -1)["finished"]
    three = page.start()
    assert other.stop(two, -1)["finished"] and page.stop(three, -1)["finished"]
    page.close()
    other.close()


def test_an_abandoned_live_job_is_closed_after_the_idle_timeout(limited):
    """A page that sends 3 s and vanishes: after idle_timeout_s the server ends the recording itself, with the
    audio it had, cut into slices queued for transcription."""
    page = FakePage(limited)
    live = page.start()
    page.send(live, chunks_of(load(HARVARD))[:12])
    page.close()
    job = wait_for(lambda: (j := limited.job(live["job"]))["recording"] is False and j, 30,
                   "the idle timeout")
    assert job["duration"] == 3.0 and job["slices"] and job["slices"][-1]["end"] <= 3.0
    assert job["status"] == "queued" and job["waiting_for_workers"], "its slices wait for a worker"
    assert "no word from its page" in limited.log()


def test_the_length_limit_ends_a_live_recording(limited):
    """Chunks past max_duration_min are refused with a message and the recording ends at the limit, its audio
    kept."""
    page = FakePage(limited)
    live = page.start()
    chunks = chunks_of(load(HARVARD))
    page.send(live, chunks[:60])
    last = page.call("live_chunk", {"job": live["job"], "key": live["key"], "seq": 60, "pcm": chunks[60]})
    assert last["finished"] and "limit of 0.25 min" in last["error"] and last["ack"] == 59
    page.close()
    job = limited.job(live["job"])
    assert job["recording"] is False and job["duration"] == 15.0


def test_a_live_job_left_open_by_a_killed_server_is_closed_on_restart(tmp_path):
    """SIGKILL the server mid-recording and start it again: the job is closed with every acknowledged sample,
    its rest cut into slices, and the page's resume is told the recording has ended."""
    server = Server(tmp_path)
    samples = load(HARVARD)[: 12 * RATE]
    page = FakePage(server)
    live = page.start()
    page.send(live, chunks_of(samples))
    server.kill()
    page.close()
    server.stop()
    again = Server(tmp_path, port=server.port)
    try:
        job = again.job(live["job"])
        assert job["recording"] is False and job["duration"] == 12.0 and job["slices"]
        assert stored_audio(again, live["job"]) == audio.wav_bytes(samples)
        assert job["stats"]["closed"] == "the server restarted while it was recording"
        page = FakePage(again)
        assert page.call("live_resume", {"job": live["job"], "key": live["key"]})["finished"]
        page.close()
    finally:
        again.stop()


# --- the page, in Chromium ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright():
    """One Playwright for the module's browsers (each test launches its own, with its own fake microphone)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def recorded(site, playwright):
    """HARVARD recorded live through the page (Chromium's fake microphone plays it): the first words awaited
    while recording, the socket cut for 2 s of recording and reconnected, Stop at the file's end."""
    length = float(manifest()[HARVARD]["seconds"])
    browser = launch(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={corpus_file(HARVARD)}")
    try:
        page = open_page(browser, site.url)
        page.evaluate(CAPTIONS_WATCH)
        page.get_by_role("button", name="Record").click()
        page.wait_for_selector("#record-panel[data-live='true']", timeout=30_000)
        badge = page.text_content("#job-status")
        page.wait_for_selector("#transcript .piece:not(.placeholder)", timeout=120_000)
        words = {"elapsed": page.evaluate(ELAPSED), "label": page.text_content("#record-label"),
                 "text": page.text_content("#transcript"),
                 "bar": page.evaluate("document.getElementById('job-progress').position"),
                 "progress": page.text_content("#job-progress-text")}
        shot(page, "live-01-words-while-recording")
        page.wait_for_function(f"{ELAPSED} >= 14", timeout=60_000)
        page.evaluate("window.scatterscribe.socket.disconnect()")
        cut_at = page.evaluate(ELAPSED)
        page.wait_for_function(f"{ELAPSED} >= {cut_at + 2}", timeout=30_000)
        held = page.evaluate("window.scatterscribe.intake.live.kept.size")
        page.evaluate("window.scatterscribe.socket.connect()")
        page.wait_for_selector("#connection[data-state='connected']", timeout=30_000)
        # Once the resent chunks are in: the length on the card and in the past jobs follows the timer.
        page.wait_for_function(f"{ELAPSED} >= {page.evaluate(ELAPSED) + 2}", timeout=30_000)
        lengths = []
        for _ in range(5):
            lengths.append(page.evaluate(LENGTHS))
            page.wait_for_timeout(1000)
        page.wait_for_function(f"{ELAPSED} >= {length - 2}", timeout=60_000)
        stats = page.evaluate("({...window.scatterscribe.intake.live.stats})")
        # Stop as the file ends: the fake microphone would start it again.
        page.evaluate(STOP_AT, length - 0.2)
        page.wait_for_function(DONE, timeout=180_000)
        shot(page, "live-02-done")
        done = page.evaluate("""({ message: document.getElementById('record-message').textContent,
            bar: document.getElementById('job-progress').position,
            lengths: """ + LENGTHS + """ })""")
        captions = page.evaluate("window.captions")
        captions["after"] = page.evaluate("document.querySelectorAll('#transcript .tentative .word').length")
        yield {"badge": badge, "words": words, "held": held, "stats": stats, "job": job_id_of(page),
               "captions": captions,
               "lengths": lengths, "done": done, "announced": seen(page)["announced"],
               "frames": page.evaluate("window.scatterscribe.intake.frames"),
               "rate": page.evaluate("window.scatterscribe.intake.rate"),
               "text": page.text_content("#transcript"), "stop_elapsed": page.evaluate(ELAPSED),
               "partial_after": site.job(job_id_of(page))["partial"]}
    finally:
        browser.close()


def test_words_appear_on_the_page_before_stop(recorded):
    """While the page still records (its button says Stop, the job says Recording), the text of a closed slice
    is already on the page."""
    words = recorded["words"]
    print(f"first words on the page after {words['elapsed']:.1f} s of recording: {words['text']!r}")
    assert recorded["badge"] == "Recording" and words["label"] == "Stop"
    assert words["elapsed"] < recorded["stop_elapsed"] - 5 and len(words["text"].split()) >= 3


def test_tentative_words_come_before_the_first_slice_closes(recorded):
    """Tentative words of the open part are on the page while no slice has closed yet, and they read as the
    start of what was said; nothing on the page raised an error."""
    renders = recorded["captions"]["renders"]
    first = next(r for r in renders if r["open"])
    assert first["slices"] == 0, "before the first slice closed"
    early = [[w for _, w in r["open"]] for r in renders if r["open"] and r["slices"] == 0]
    print(f"tentative words before the first slice closed ({len(early)} states):", early)
    said = "A gold ring will please most any girl. The long journey home took a year.".split()
    assert min(wer(" ".join(said[: len(words)]), " ".join(words)) for words in early) <= 34, \
        "they read as the start of what was said"
    assert not recorded["captions"]["errors"]


def test_words_stable_across_two_decodes_do_not_flicker(recorded):
    """From one state of the tentative words of the open part to the next, every word that is the same as before
    (case and punctuation aside), up to the first that changed, is the very element it was (nothing
    replaced, nothing redrawn)."""
    renders = recorded["captions"]["renders"]
    kept = 0
    for before, after in zip(renders, renders[1:], strict=False):
        if not before["open"] or before["openStart"] != after["openStart"]:
            continue  # a new open part (a slice closed): new words
        for (n_before, w_before), (n_after, w_after) in zip(before["open"], after["open"], strict=False):
            if re.sub(r"[^\w']", "", w_before.lower()) != re.sub(r"[^\w']", "", w_after.lower()):
                break
            assert n_before == n_after, (before["open"], after["open"])
            kept += 1
    assert kept > 0, "some words stayed from one decode to the next"


def test_the_final_text_replaces_the_tentative_words(recorded):
    """When a slice closes, its tentative words stay in its place only while it is still out (they stand in for
    its placeholder), and its own text replaces them; once the job is done no tentative word remains."""
    renders = recorded["captions"]["renders"]
    holding = [r for r in renders if r["held"]]
    assert holding, "tentative words stood in for a closed slice at least once"
    assert all(r["heldStandsIn"] for r in holding), "never beside the final text of their slice"
    assert recorded["captions"]["after"] == 0 and recorded["partial_after"] is None


def test_while_recording_the_page_shows_the_recordings_length_and_no_finished_bar(recorded):
    """While it records, the job card and the past-jobs line give the recording's length as the timer does
    (within the second the server takes to tell, and the second the display drops); the progress bar shows
    no amount (its slices so far are no measure of the whole) and its text says it is still recording."""
    print("timer, card and past jobs while recording:", recorded["lengths"])
    for sample in recorded["lengths"]:
        assert sample["card"] is not None and sample["past"] is not None, sample
        assert sample["elapsed"] - 2.5 <= sample["card"] <= sample["elapsed"] + 0.5, recorded["lengths"]
        assert sample["elapsed"] - 2.5 <= sample["past"] <= sample["elapsed"] + 0.5, recorded["lengths"]
    words = recorded["words"]
    assert words["bar"] == -1, "indeterminate while recording"
    assert re.match(r"\d+ slices? so far, \d+ done · still recording", words["progress"]), words["progress"]


def test_after_the_recording_the_page_says_its_transcript_is_ready(recorded):
    """Once the recording's job is done: the message under the button says its transcript is ready (no longer
    "being transcribed"), the bar is full, and the card, the past-jobs line and the timer agree on its length;
    "Recording started." was announced and not talked over by the job opening."""
    done = recorded["done"]
    assert done["message"].startswith("Recorded 0:3") and "its transcript is ready below" in done["message"]
    assert done["bar"] == 1.0
    length = float(manifest()[HARVARD]["seconds"])
    assert done["lengths"]["card"] == done["lengths"]["past"] == int(length), done
    assert any("Recording started." in text for text in recorded["announced"]), recorded["announced"]
    assert not any(text.startswith("Showing") for text in recorded["announced"]), recorded["announced"]


def test_live_transcript_on_the_page_is_close_to_the_reference(recorded):
    """The final text on the page, after Stop, is within 15 % WER of the recording's reference."""
    error = wer(manifest()[HARVARD]["reference"], recorded["text"])
    print(f"{HARVARD} recorded live in the page: WER {error:.1f} %")
    assert error <= 15.0, recorded["text"]


def test_stored_audio_is_as_long_as_the_played_file(site, recorded):
    """The stored recording lasts as long as the file the fake microphone played (within one chunk), and holds
    exactly the samples the page recorded."""
    job = site.job(recorded["job"])
    samples = (len(stored_audio(site, recorded["job"])) - 44) // 2
    assert recorded["rate"] == RATE
    assert abs(job["duration"] - float(manifest()[HARVARD]["seconds"])) <= 0.25
    assert samples == recorded["frames"] and job["duration"] == samples / RATE


def test_cutting_the_socket_mid_recording_loses_no_audio(site, recorded):
    """The page kept the chunks recorded while its socket was cut (2 s of them), sent them after reconnecting,
    and the server stored every recorded sample once."""
    assert recorded["held"] >= 6, "chunks recorded during the cut were kept in the page"
    assert recorded["stats"]["reconnects"] >= 1
    samples = (len(stored_audio(site, recorded["job"])) - 44) // 2
    assert samples == recorded["frames"]
    assert site.job(recorded["job"])["status"] == "done"


def test_a_recording_is_started_and_stopped_from_the_keyboard_alone(site, playwright):
    """Focus the Record button, press Enter: it records live and keeps the focus while the job opens below,
    so Space on the same button (now Stop) ends the recording; the focus is still there afterwards, and the
    recording is transcribed."""
    length = float(manifest()[JFK]["seconds"])
    active = "document.activeElement && document.activeElement.id"
    browser = launch(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={corpus_file(JFK)}")
    try:
        page = open_page(browser, site.url)
        page.locator("#record").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("#record-panel[data-live='true']", timeout=30_000)
        page.wait_for_selector("#job-status[data-status='recording']", timeout=15_000)
        page.wait_for_function(f"{ELAPSED} >= 3", timeout=30_000)
        assert page.evaluate(active) == "record" and page.text_content("#record-label") == "Stop"
        shot(page, "live-03-keyboard-recording")
        # The speech ends before the file does; stopping near its end keeps the loop's next start out.
        page.wait_for_function(f"{ELAPSED} >= {length - 0.5}", timeout=60_000)
        assert page.evaluate(active) == "record"
        page.keyboard.press("Space")
        page.wait_for_function("document.getElementById('record-label').textContent === 'Record'",
                               timeout=15_000)
        page.wait_for_function(DONE, timeout=180_000)
        assert page.evaluate(active) == "record"
        assert "its transcript is ready" in page.text_content("#record-message")
        error = wer(manifest()[JFK]["reference"], page.text_content("#transcript"))
        print(f"{JFK} recorded live from the keyboard: WER {error:.1f} %")
        assert error <= 20.0
        forget(site, job_id_of(page))
    finally:
        browser.close()


#: Where the recording bar, its parts and the newest words are on the screen.
PHONE_LAYOUT = """(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return { top: r.top, bottom: r.bottom,
    left: r.left, right: r.right }; };
  const words = [...document.querySelectorAll('#transcript .word, #transcript .piece:not([hidden])')];
  return { bar: box(document.getElementById('record-panel')), stop: box(document.getElementById('record')),
           elapsed: box(document.getElementById('elapsed')), meter: box(document.querySelector('.meter')),
           position: getComputedStyle(document.getElementById('record-panel')).position,
           label: document.getElementById('record-label').textContent,
           newest: words.length ? box(words[words.length - 1]) : null,
           tentative: document.querySelectorAll('#transcript .tentative .word').length,
           height: window.innerHeight, width: document.documentElement.clientWidth,
           scrollWidth: document.documentElement.scrollWidth };
})()"""


def test_a_phone_records_with_stop_time_and_meter_in_a_bar_at_the_bottom(site, playwright):
    """On a 390 px wide phone screen, while recording: a bar fixed at the bottom of the screen holds Stop, the
    time and the level meter, the page does not scroll sideways, and as words come the newest stays in view
    above the bar (the page scrolls by itself); a tap on Stop in the bar ends the recording."""
    browser = launch(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={corpus_file(JFK)}")
    try:
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      device_scale_factor=2)
        page = context.new_page()
        page.goto(site.url)
        page.wait_for_selector("#connection[data-state='connected']", timeout=15_000)
        page.evaluate(CAPTIONS_WATCH)
        page.tap("#record")
        page.wait_for_selector("#record-panel[data-live='true']", timeout=30_000)
        page.wait_for_selector("#transcript .word, #transcript .piece:not(.placeholder)", timeout=60_000)
        page.wait_for_timeout(500)  # the scroll that follows the words
        layout = page.evaluate(PHONE_LAYOUT)
        shot(page, "live-04-phone-recording")
        print("phone layout while recording:", layout)
        assert layout["position"] == "fixed" and layout["label"] == "Stop"
        assert layout["height"] - 1 <= layout["bar"]["bottom"] <= layout["height"] + 1, "at the bottom"
        for part in ("stop", "elapsed", "meter"):
            box = layout[part]
            assert layout["bar"]["top"] <= box["top"] < box["bottom"] <= layout["bar"]["bottom"], part
            assert 0 <= box["left"] < box["right"] <= layout["width"], part
        assert layout["scrollWidth"] <= layout["width"], "no sideways scrolling"
        newest = layout["newest"]
        assert newest and 0 <= newest["top"] and newest["bottom"] <= layout["bar"]["top"], "newest words in view"
        page.wait_for_function(f"{ELAPSED} >= {float(manifest()[JFK]['seconds']) - 0.5}", timeout=60_000)
        page.tap("#record")
        page.wait_for_function(DONE, timeout=180_000)
        after = page.evaluate(PHONE_LAYOUT)
        assert after["position"] != "fixed" and after["tentative"] == 0
        assert not page.evaluate("window.captions.errors")
        forget(site, job_id_of(page))
    finally:
        browser.close()


def test_with_no_worker_there_is_no_tentative_text_and_nothing_breaks(limited, playwright):
    """Recording live on a server with no worker: the job records, no tentative word appears and its view's
    partial stays null, the page raises no error, and Stop ends the recording, its slices waiting for a
    worker."""
    browser = launch(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={corpus_file(JFK)}")
    try:
        page = open_page(browser, limited.url)
        page.evaluate(CAPTIONS_WATCH)
        page.get_by_role("button", name="Record").click()
        page.wait_for_selector("#job-status[data-status='recording']", timeout=30_000)
        page.wait_for_function(f"{ELAPSED} >= 6", timeout=30_000)
        job_id = job_id_of(page)
        assert limited.job(job_id)["partial"] is None
        assert page.evaluate("document.querySelectorAll('#transcript .tentative .word').length") == 0
        page.get_by_role("button", name="Stop").click()
        page.wait_for_function("document.getElementById('record-label').textContent === 'Record'", timeout=15_000)
        job = wait_for(lambda: (j := limited.job(job_id))["recording"] is False and j, 15, "the recording to end")
        assert job["partial"] is None and job["slices"] and job["waiting_for_workers"]
        page.wait_for_selector("#waiting:not([hidden])", timeout=15_000)
        captions = page.evaluate("window.captions")
        assert not any(r["open"] or r["held"] for r in captions["renders"]) and not captions["errors"]
    finally:
        browser.close()


def test_deleting_a_job_while_it_is_recorded_ends_the_recording_at_once(site, playwright):
    """DELETE while a page records live: the page is told at once (`live_ended`, with the reason) and its next
    chunk is refused as finished, so nothing more is written; the real page in Chromium stops recording and says
    why."""
    page = FakePage(site)
    chunks = chunks_of(load(JFK))
    live = page.start()
    page.send(live, chunks[:8])
    forget(site, live["job"])
    wait_for(lambda: page.ended, 5, "the page to be told")
    assert page.ended == [{"job": live["job"], "error": "this job was deleted while it was being recorded"}]
    answer = page.call("live_chunk", {"job": live["job"], "key": live["key"], "seq": 8, "pcm": chunks[8]})
    assert answer["finished"] and "error" in answer
    again = page.start()  # its live slot is free again
    forget(site, again["job"])
    page.close()

    browser = launch(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={corpus_file(JFK)}")
    try:
        tab = open_page(browser, site.url)
        tab.get_by_role("button", name="Record").click()
        tab.wait_for_selector("#record-panel[data-live='true']", timeout=30_000)
        tab.wait_for_function(f"{ELAPSED} >= 2", timeout=30_000)
        forget(site, job_id_of(tab))
        tab.wait_for_function("document.getElementById('record-label').textContent === 'Record'", timeout=10_000)
        assert "deleted while it was being recorded" in tab.text_content("#record-message")
        shot(tab, "live-deleted-while-recording")
    finally:
        browser.close()
