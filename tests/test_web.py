"""The page in a real browser: Debian's Chromium, driven by Playwright, against a real server and a real
worker transcribing real recordings. Each test saves a screenshot of what it saw to
test-artifacts/screenshots/.

Live mode is off on this module's server ([live] max_sessions = 0), so a recording takes the page's other
path: encoded as a WAV in the page and uploaded at Stop. Live mode in the page: tests/test_live_e2e.py."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from server.sniff import sniff
from tests.media_files import ENCODINGS, encode_wav
from tests.support import ROOT, Server, Worker, corpus_file, launch_chromium, manifest, wer, write_config

UPLOADED = "osr_us_000_0034_harvard_list72.wav"  # 35 s of read sentences with pauses: two slices
RECORDED = "jfk_inaugural_excerpt.wav"  # 11 s, one clear sentence; the fake microphone plays it in a loop
#: The fake microphone: Chromium plays RECORDED, from its start, as soon as the page opens the microphone.
FAKE_MIC = ["--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={corpus_file(RECORDED)}"]
WORKER = "page-worker"
SHOTS = ROOT / "test-artifacts" / "screenshots"
DONE = "document.getElementById('job-status').textContent === 'Done'"
#: Installed in every page before its own scripts: keeps what passes too quickly to be caught by polling
#: (the upload bar's furthest point, every progress text, every announcement as the next task reads it).
WATCH = """
window.seen = { upload: 0, uploadTexts: [], progressTexts: [], announced: [] };
document.addEventListener('DOMContentLoaded', () => {
  const $ = (id) => document.getElementById(id);
  const watch = (id, fn) => new MutationObserver(fn).observe($(id),
    { attributes: true, childList: true, characterData: true, subtree: true });
  const add = (list, text) => { if (text && list[list.length - 1] !== text) list.push(text); };
  watch('upload-progress-row', () => {
    if ($('upload-progress').hasAttribute('value')) {
      seen.upload = Math.max(seen.upload, Number($('upload-progress').value));
    }
    add(seen.uploadTexts, $('upload-progress-text').textContent);
  });
  watch('job-progress-text', () => add(seen.progressTexts, $('job-progress-text').textContent));
  // What a screen reader gets is what the region holds once the page's task is over, not every
  // intermediate value: read it in the next task.
  watch('announcer', () => setTimeout(() => add(seen.announced, $('announcer').textContent)));
});
"""


def launch(playwright: Playwright, *extra: str) -> Browser:
    return launch_chromium(playwright, *extra)


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def open_page(browser: Browser, url: str) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.add_init_script(WATCH)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#connection[data-state='connected']", timeout=15_000)
    return page


def job_id_of(page: Page) -> str:
    return page.evaluate("new URLSearchParams(location.search).get('job')")


def seen(page: Page) -> dict:
    """What the WATCH script kept."""
    return page.evaluate("window.seen")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One server with live mode off, one real worker and one Chromium (its fake microphone plays RECORDED),
    for the module."""
    tmp = tmp_path_factory.mktemp("web")
    server = Server(tmp, config=write_config(tmp / "config.toml", live={"max_sessions": 0}))
    worker = Worker(server, WORKER)
    try:
        server.wait_workers(1)
        with sync_playwright() as playwright:
            browser = launch(playwright, "--use-fake-ui-for-media-stream", *FAKE_MIC)
            yield server, playwright, browser
            browser.close()
    finally:
        worker.stop()
        server.stop()


@pytest.fixture(scope="module")
def uploaded(site):
    """UPLOADED chosen in the page's file input and transcribed to the end: the page and the job's id."""
    server, _, browser = site
    page = open_page(browser, server.url)
    page.wait_for_selector(f".worker[data-name='{WORKER}']")
    shot(page, "01-ready")
    page.set_input_files("#file", str(corpus_file(UPLOADED)))
    page.wait_for_selector("#waveform-slices .slice-mark", timeout=60_000)
    # Mid-job if the worker is not faster than the page: one slice done, the other still out.
    page.wait_for_selector("#slice-track [data-status=done]", timeout=180_000)
    shot(page, "02-upload-first-slice-done")
    page.wait_for_function(DONE, timeout=180_000)
    page.wait_for_selector("#waveform[data-loaded='true']", timeout=15_000)
    shot(page, "03-upload-done")
    yield page, job_id_of(page)
    page.context.close()


def test_uploaded_recording_is_transcribed_on_the_page(uploaded):
    """A corpus recording chosen in the page's file input ends as text on the page within 10 % WER of its
    reference; on the way the upload bar reached its end and the job said how long it had left."""
    page, _ = uploaded
    text = page.text_content("#transcript")
    error = wer(manifest()[UPLOADED]["reference"], text)
    print(f"{UPLOADED} through the page: WER {error:.1f} %")
    assert error <= 10.0, text
    assert page.text_content("#job-progress-text") == "2 of 2 slices done"
    assert page.evaluate("document.getElementById('job-progress').position") == 1.0, "a full bar when done"
    kept = seen(page)
    assert kept["upload"] == 100 and any(t.startswith(f"Uploaded {UPLOADED}") for t in kept["uploadTexts"]), kept
    # One worker, one slot: the second slice is out once the first has measured the worker's speed.
    eta = [t for t in kept["progressTexts"] if re.search(r" · (about \d+ (s|min) left|finishing…)$", t)]
    assert eta, kept["progressTexts"]
    print("progress texts on the way:", kept["progressTexts"])


def test_a_job_reopens_by_its_address(site, uploaded):
    """/?job=<id> opened in a fresh page shows that job, done, with its transcript."""
    server, _, browser = site
    page, job_id = uploaded
    fresh = open_page(browser, f"{server.url}/?job={job_id}")
    try:
        fresh.wait_for_function(DONE, timeout=15_000)
        assert fresh.text_content("#job-h") == UPLOADED
        assert fresh.text_content("#transcript").strip() == page.text_content("#transcript").strip() != ""
        assert fresh.locator("#jobs a[aria-current='page']").text_content() == UPLOADED
    finally:
        fresh.context.close()


def test_waveform_marks_every_slice_and_the_workers_panel_lists_the_worker(site, uploaded):
    """The waveform carries one mark per slice the API reports, each labelled with its state and worker in
    text; the workers panel shows the connected worker with its engine and the slices it did."""
    server, _, _ = site
    page, job_id = uploaded
    slices = server.job(job_id)["slices"]
    assert len(slices) >= 2
    marks = page.locator("#waveform-slices .slice-mark")
    assert marks.count() == len(slices)
    assert [marks.nth(i).get_attribute("data-status") for i in range(len(slices))] == ["done"] * len(slices)
    chips = page.locator("#slice-track .slice-chip").all_text_contents()
    assert len(chips) == len(slices)
    assert all(f"{i + 1} · done by {WORKER}" in chip for i, chip in enumerate(chips)), chips
    # The worker's name is on a line of its own, whole: these slices are wide enough for it.
    clipped = page.evaluate("""[...document.querySelectorAll('#slice-track .chip-line')]
        .filter((line) => line.scrollWidth > line.clientWidth + 1).map((line) => line.textContent)""")
    assert clipped == [] and page.locator("#slice-track .narrow").count() == 0, clipped
    workers = page.locator("#slice-track .chip-worker")
    assert workers.all_text_contents() == [f"by {WORKER}"] * len(slices)
    assert all(workers.nth(i).is_visible() for i in range(len(slices)))
    # Keyboard: the chips are one Tab stop; an arrow key moves on; the caption says who did it, with what.
    engine = f"{slices[1]['engine']} {slices[1]['model']}"
    assert slices[1]["engine"] == "faster-whisper" and slices[1]["model"]
    page.locator("#slice-track .slice-chip").first.focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.index") == "1"
    caption = page.text_content("#slice-caption")
    assert caption.startswith("Slice 2, ") and f"done by {WORKER} ({engine})" in caption, caption
    # Every slice, one per line: its worker, and the engine and model that produced its text.
    page.click(".slice-details summary")
    rows = page.locator("#slice-list li")
    assert rows.count() == len(slices) and rows.nth(len(slices) - 1).is_visible()
    for i, s in enumerate(slices):
        assert f"done by {s['worker']} with {s['engine']} {s['model']}" in rows.nth(i).text_content()
    shot(page, "03b-slice-details")
    assert page.get_attribute("#waveform-path", "d").count("L") > 100, "the waveform itself is drawn"
    card = page.locator(f".worker[data-name='{WORKER}']")
    assert "faster-whisper" in card.text_content()
    stats = dict(zip(card.locator("dt").all_text_contents(), card.locator("dd").all_text_contents(), strict=False))
    assert stats["Slices done"] == str(server.workers()[0]["slices_done"]) != "0"
    assert stats["Speed"].endswith("× real time"), stats


def test_downloads_are_well_formed(uploaded):
    """The .srt downloaded from the page parses and its cue times increase; the .json names the worker of
    every slice; the .txt holds the words on the page (in paragraphs)."""
    page, _ = uploaded
    files = {}
    for ext in ("srt", "vtt", "json", "txt"):
        with page.expect_download() as info:
            page.click(f"#dl-{ext}")
        files[ext] = Path(info.value.path()).read_text(encoding="utf-8")
    stamp = r"(\d\d):(\d\d):(\d\d),(\d{3})"
    cues = re.findall(rf"(\d+)\n{stamp} --> {stamp}\n(.+)", files["srt"])
    assert len(cues) >= 2 and len(cues) == files["srt"].count(" --> ")
    times = [(_seconds(c[1:5]), _seconds(c[5:9])) for c in cues]
    assert [int(c[0]) for c in cues] == list(range(1, len(cues) + 1))
    assert all(end >= start for start, end in times)
    starts = [start for start, _ in times]
    assert starts == sorted(starts) and starts[-1] > starts[0]
    assert files["vtt"].startswith("WEBVTT\n")
    vtt = re.findall(r"(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})\n(.+)", files["vtt"])
    assert [(_seconds(c[0:4]), _seconds(c[4:8]), c[8]) for c in vtt] == [(a, b, c[-1]) for (a, b), c in
                                                                        zip(times, cues, strict=True)]
    data = json.loads(files["json"])
    assert data["slices"] and {s["worker"] for s in data["slices"]} == {WORKER}
    assert " ".join(files["txt"].split()) == " ".join(page.text_content("#transcript").split())


def test_peaks_for_the_waveform_are_bounded(site, uploaded):
    """peaks.json gives at most the bins asked for (capped at 4000), values within -1..1 that follow the
    recording's loudness; bad requests get a 4xx with a message."""
    server, _, _ = site
    _, job_id = uploaded
    big = server.get(f"/api/jobs/{job_id}/peaks.json?bins=100000").json()
    assert big["bins"] == len(big["min"]) == len(big["max"]) == 4000
    assert abs(big["duration"] - float(manifest()[UPLOADED]["seconds"])) < 0.05
    assert all(-1 <= lo <= hi <= 1 for lo, hi in zip(big["min"], big["max"], strict=False))
    assert max(big["max"]) > 0.1 and min(big["min"]) < -0.1, "speech shows as peaks"
    assert server.get(f"/api/jobs/{job_id}/peaks.json?bins=80").json()["bins"] == 80
    bad = server.get(f"/api/jobs/{job_id}/peaks.json?bins=lots")
    assert bad.status_code == 400 and "bins" in bad.json()["error"]
    assert server.get("/api/jobs/0123456789abcdef/peaks.json").status_code == 404
    assert server.get("/api/jobs/..%2Fdata/peaks.json").status_code == 404


def _seconds(hms_ms: tuple[str, ...]) -> float:
    h, m, s, ms = map(int, hms_ms)
    return h * 3600 + m * 60 + s + ms / 1000


def test_recording_in_the_page_is_transcribed(site):
    """Record (the fake microphone plays RECORDED) on a server that refuses live mode, Stop after the
    utterance: the page says the recording is not live, encodes a WAV of the right length at Stop, uploads it
    (its bar reaching the end), and shows text within 20 % WER of the recording's reference."""
    server, _, browser = site
    page = open_page(browser, server.url)
    length = float(manifest()[RECORDED]["seconds"])
    page.get_by_role("button", name="Record").click()
    page.wait_for_selector("#record-panel[data-live='false']", timeout=30_000)
    assert "not live: live mode is off on this server" in page.text_content("#record-message")
    assert page.is_hidden("#job"), "no job before Stop: nothing has reached the server"
    page.wait_for_function("Number(document.getElementById('elapsed').dataset.seconds) >= 3", timeout=30_000)
    assert page.is_visible("#meter-row")
    page.wait_for_function("Number(document.getElementById('meter-fill').dataset.level) > 0.3", timeout=5_000)
    shot(page, "04-recording")
    # The speech ends before the file does; stopping at its length keeps the loop's next start out.
    page.wait_for_function(f"Number(document.getElementById('elapsed').dataset.seconds) >= {length - 0.2}",
                           timeout=60_000)
    page.get_by_role("button", name="Stop").click()
    page.wait_for_function(DONE, timeout=180_000)
    recorded = float(page.get_attribute("#elapsed", "data-seconds"))  # the length of the WAV the page sent
    shot(page, "05-recorded-done")
    job = server.job(job_id_of(page))
    assert job["source"] == "upload" and not job["recording"]
    assert abs(job["duration"] - recorded) < 0.3, (job["duration"], recorded)
    assert abs(recorded - length) < 0.5, (recorded, length)
    assert seen(page)["upload"] == 100, seen(page)
    text = page.text_content("#transcript")
    error = wer(manifest()[RECORDED]["reference"], text)
    print(f"recorded {recorded:.2f} s of {RECORDED} through the fake microphone: WER {error:.1f} %")
    assert error <= 20.0, text
    page.context.close()


def test_denied_microphone_is_said_in_words(site):
    """When the browser denies the microphone, the page says so in text and Record can be pressed again."""
    server, playwright, _ = site
    browser = launch(playwright, "--deny-permission-prompts", *FAKE_MIC)
    try:
        page = open_page(browser, server.url)
        page.get_by_role("button", name="Record").click()
        page.wait_for_selector("#record-panel[data-mic='denied']", timeout=15_000)
        assert "Microphone access was denied" in page.text_content("#record-message")
        assert page.is_enabled("#record") and page.text_content("#record-label") == "Record"
        shot(page, "06-microphone-denied")
    finally:
        browser.close()


def test_microphone_on_a_plain_http_address_is_explained(site):
    """Opened by a name other than this machine over plain http, the page says before any click that Record
    cannot work there, why (browsers give the microphone only to https pages or on the machine itself) and how
    to fix it (the server's --self-signed, and the https address to open); Record is disabled, upload is not."""
    server, playwright, _ = site
    # A name that resolves to this machine but that Chromium, unlike 127.0.0.1, does not treat as secure.
    browser = launch(playwright, "--host-resolver-rules=MAP scatterscribe.test 127.0.0.1", *FAKE_MIC)
    try:
        page = open_page(browser, f"http://scatterscribe.test:{server.port}/")
        page.wait_for_selector("#record-panel[data-mic='insecure']", timeout=15_000)
        message = page.text_content("#record-message")
        assert "browsers give the microphone only to https:// pages" in message
        assert "--self-signed" in message and f"https://scatterscribe.test:{server.port}/" in message
        assert page.is_disabled("#record") and page.is_enabled("#file")
        assert page.get_attribute("#record", "aria-describedby") == "record-message"
        shot(page, "07b-plain-http-explained")
    finally:
        browser.close()


def test_missing_microphone_is_said_in_words(site):
    """With no audio input device at all, the page says no microphone was found."""
    server, playwright, _ = site
    browser = launch(playwright, "--use-fake-ui-for-media-stream")  # no fake device: nothing to record from
    try:
        page = open_page(browser, server.url)
        page.get_by_role("button", name="Record").click()
        page.wait_for_selector("#record-panel[data-mic='absent']", timeout=15_000)
        assert "No microphone was found" in page.text_content("#record-message")
    finally:
        browser.close()


def test_rejected_upload_shows_the_servers_message(site, tmp_path):
    """A file the server refuses leaves the page showing the server's own error message, word for word (a WAV
    whose header promises more audio than it holds: only the server can tell)."""
    server, _, browser = site
    bad = tmp_path / "short.wav"
    bad.write_bytes(corpus_file(RECORDED).read_bytes()[:20_000])
    expected = server.upload(bad).json()["error"]
    page = open_page(browser, server.url)
    page.set_input_files("#file", str(bad))
    page.wait_for_selector("#upload-error:not([hidden])", timeout=30_000)
    assert page.get_attribute("#upload-error", "data-server-message") == expected
    assert expected in page.text_content("#upload-error")
    shot(page, "07-upload-rejected")
    page.context.close()


def test_a_file_that_is_no_audio_is_refused_before_any_of_it_is_sent(site, tmp_path):
    """A PDF chosen in the picker is refused by the page from its first bytes, with the sentence the server
    would give, and no upload is made."""
    server, _, browser = site
    pdf = tmp_path / "minutes.mp3"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(300_000))
    expected = sniff(pdf.read_bytes()[:512]).refusal
    page = open_page(browser, server.url)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.set_input_files("#file", str(pdf))
    page.wait_for_selector("#upload-error:not([hidden])", timeout=15_000)
    assert page.text_content("#upload-error") == f"minutes.mp3 was not accepted: {expected}"
    assert posts == [] and page.is_hidden("#upload-progress-row")
    page.context.close()


def test_an_mp3_dropped_on_the_page_is_transcribed(site, tmp_path):
    """The upload box says it takes audio or video, its picker offers them, and an MP3 dropped on it (encoded
    here from RECORDED with PyAV) is transcribed."""
    server, _, browser = site
    mp3 = encode_wav(corpus_file(RECORDED), tmp_path / "speech.mp3", ENCODINGS["MP3"])
    page = open_page(browser, server.url)
    assert page.text_content("#drop-zone h3") == "Upload audio or video"
    accept = page.get_attribute("#file", "accept").split(",")
    assert {"audio/*", "video/*", ".mp3", ".m4a", ".ogg", ".opus", ".flac", ".mp4", ".mov", ".mkv"} <= set(accept)
    data = base64.b64encode(mp3.read_bytes()).decode()
    transfer = page.evaluate_handle("""(data) => {
        const t = new DataTransfer();
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        t.items.add(new File([bytes], 'speech.mp3', { type: 'audio/mpeg' }));
        return t; }""", data)
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    page.wait_for_function(DONE, timeout=180_000)
    job = server.job(job_id_of(page))
    assert job["name"] == "speech.mp3" and wer(manifest()[RECORDED]["reference"], job["transcript"]) < 20
    shot(page, "07c-mp3-dropped")
    page.context.close()


def test_a_job_without_workers_says_how_to_start_one(site, tmp_path):
    """On a server with no worker, an uploaded job is shown waiting for workers, with the command that starts
    one against this server."""
    _, _, browser = site
    lonely = Server(tmp_path)
    try:
        page = open_page(browser, lonely.url)
        page.set_input_files("#file", str(corpus_file("timit_LDC93S1_sample.wav")))
        page.wait_for_selector("#waiting:not([hidden])", timeout=60_000)
        assert "waiting for workers" in page.text_content("#waiting")
        assert page.text_content("#job-status") == "Waiting for workers"
        assert page.text_content("#worker-command").endswith(f"python -m client --server {lonely.url}")
        # The whole command shows, wrapped if it must be: nothing is cut off or hidden behind a scrollbar.
        box = page.evaluate("""(() => { const pre = document.querySelector('#waiting .command pre');
            return [pre.scrollWidth, pre.clientWidth, pre.scrollHeight, pre.clientHeight]; })()""")
        assert box[0] <= box[1] and box[2] <= box[3], box
        assert page.is_visible("#no-workers")
        shot(page, "08-waiting-for-workers")
        assert requests.get(f"{lonely.url}/api/workers", timeout=10).json()["workers"] == []
        page.context.close()
    finally:
        lonely.stop()


def test_a_job_no_connected_worker_can_serve_says_so(site):
    """A job that asks for an engine no connected worker runs (sphinx, with only a faster-whisper worker
    connected) is shown waiting, and the page says why: the connected worker cannot take its slices."""
    server, _, browser = site
    job = server.submit(corpus_file("timit_LDC93S1_sample.wav"), engine="sphinx")
    try:
        page = open_page(browser, f"{server.url}/?job={job}")
        page.wait_for_selector("#waiting:not([hidden])", timeout=30_000)
        reason = page.text_content("#waiting-reason")
        assert reason == "None of the 1 connected worker can take its slices (it asks for sphinx).", reason
        assert page.text_content("#job-status") == "Waiting for workers"
        assert server.job(job)["progress"]["done"] == 0
        page.context.close()
    finally:
        assert requests.delete(f"{server.url}/api/jobs/{job}", timeout=10).ok  # leave the module's server idle


def test_waveform_axis_and_narrow_slices(site):
    """The waveform's time axis for a recording of 0 s has no labels (one would sit outside the box); for
    12 s it runs from 0:00 to the end, inside it. A slice too narrow for its words shows its number alone, no
    cut-off words, and still says it all in text and in the caption when focused."""
    server, _, browser = site
    page = open_page(browser, server.url)
    try:
        found = page.evaluate("""async () => {
            const { Waveform } = await import('/static/waveform.js');
            const make = (tag) => document.body.appendChild(document.createElement(tag));
            const track = make('ol');
            track.className = 'slice-track';
            const axis = make('div');
            const caption = make('p');
            const waveform = new Waveform({ svg: make('svg'), path: make('path'), marks: make('g'), track,
                                            axis, caption });
            waveform.setSlices([], 0);
            const empty = [...axis.children].map((s) => s.textContent);
            const slice = (index, start, end) => ({ index, start, end, status: 'done', worker: 'alpha',
                                                    engine: 'faster-whisper', model: 'tiny.en' });
            waveform.setSlices([slice(0, 0, 11.5), slice(1, 11.6, 12)], 12);
            const chips = [...track.children];
            chips[1].focus();
            return { empty, twelve: [...axis.children].map((s) => [s.textContent, s.style.left]),
                     narrow: chips.map((c) => c.classList.contains('narrow')),
                     shown: chips.map((c) => [c.querySelector('.chip-number').offsetWidth > 0,
                                              c.querySelector('.chip-text').getBoundingClientRect().width > 1]),
                     text: chips[1].textContent,
                     caption: caption.textContent };
        }""")
        assert found["empty"] == []
        assert found["twelve"][0] == ["0:00", "0%"] and found["twelve"][-1] == ["0:12", "100%"]
        assert found["narrow"] == [False, True], found
        assert found["shown"] == [[False, True], [True, False]], "words, or the number alone"
        assert "2 · done by alpha" in found["text"]
        assert found["caption"] == "Slice 2, 0:11.6–0:12.0: done by alpha (faster-whisper tiny.en)"
    finally:
        page.context.close()
