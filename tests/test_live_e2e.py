"""Live mode with real processes: a server and a worker on 127.0.0.1 take live recordings from a
python-socketio client that does what the page does (real corpus PCM in 250 ms chunks), and from the page
itself in Debian's Chromium, whose fake microphone plays a corpus recording."""

from __future__ import annotations

import re
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


def load(name: str) -> np.ndarray:
    return np.asarray(audio.open_pcm16(corpus_file(name)))


def chunks_of(samples: np.ndarray, rate: int = RATE) -> list[bytes]:
    size = rate // 4
    return [samples[i : i + size].tobytes() for i in range(0, len(samples), size)]


class FakePage:
    """A Socket.IO client that records live the way web/live.js does."""

    def __init__(self, server: Server):
        self.server = server
        self.sio = socketio.Client()
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
    second.send(live, chunks, first=resumed["ack"] + 1)
    assert second.stop(live, len(chunks) - 1)["finished"]
    second.close()
    upload = site.submit(corpus_file(JFK))
    assert stored_audio(site, live["job"]) == stored_audio(site, upload)
    forget(site, live["job"], upload)


def test_live_requests_are_checked(site):
    """A wrong key, an unknown job, a malformed or oversized chunk and a bad sample rate are each refused
    with a message; the recording they aimed at is untouched."""
    page = FakePage(site)
    assert "sample rate" in page.call("live_start", {"name": "x", "sample_rate": 192000})["error"]
    assert "sample rate" in page.call("live_start", {"name": "x"})["error"]
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
        yield {"badge": badge, "words": words, "held": held, "stats": stats, "job": job_id_of(page),
               "lengths": lengths, "done": done, "announced": seen(page)["announced"],
               "frames": page.evaluate("window.scatterscribe.intake.frames"),
               "rate": page.evaluate("window.scatterscribe.intake.rate"),
               "text": page.text_content("#transcript"), "stop_elapsed": page.evaluate(ELAPSED)}
    finally:
        browser.close()


def test_words_appear_on_the_page_before_stop(recorded):
    """While the page still records (its button says Stop, the job says Recording), the text of a closed slice
    is already on the page."""
    words = recorded["words"]
    print(f"first words on the page after {words['elapsed']:.1f} s of recording: {words['text']!r}")
    assert recorded["badge"] == "Recording" and words["label"] == "Stop"
    assert words["elapsed"] < recorded["stop_elapsed"] - 5 and len(words["text"].split()) >= 3


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
