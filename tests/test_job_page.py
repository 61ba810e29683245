"""The job view as a working document, in a real browser (Debian's Chromium through Playwright) against a real
server and a real worker transcribing real corpus recordings: listen and follow, paragraphs with times, correct,
find, transcribe a slice again, subtitles, jobs (rename, delete, search), and the page defects fixed with it
(phone width, contrast, accessibility, the worker command, empty downloads, clipped labels).

Screenshots of what each test saw go to test-artifacts/screenshots/."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support import ROOT, Server, Worker, corpus_file, launch_chromium, manifest, wait_for, wer
from tests.test_subtitles import check_cues

LONG = "bush_radio_address_2008-11-01.wav"  # 127 s of speech: five slices, three paragraphs
SHORT = "timit_LDC93S1_sample.wav"  # 2.9 s, one sentence
MIC = "jfk_inaugural_excerpt.wav"  # what the fake microphone plays
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "test-artifacts" / "screenshots"
DONE = "document.getElementById('job-status').textContent === 'Done'"
WORKER = "page-worker"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"job-page-{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server (live mode on), one real worker, and a Chromium whose fake microphone plays MIC."""
    tmp = tmp_path_factory.mktemp("job-page")
    server = Server(tmp)
    worker = Worker(server, WORKER)
    try:
        server.wait_workers(1)
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright, "--use-fake-ui-for-media-stream",
                                      "--use-fake-device-for-media-stream",
                                      f"--use-file-for-fake-audio-capture={corpus_file(MIC)}")
            yield server, browser
            browser.close()
    finally:
        worker.stop()
        server.stop()


@pytest.fixture(scope="module")
def long_job(site) -> str:
    """LONG uploaded and transcribed to the end (through the API; the page's upload is tests/test_web.py's)."""
    server, _ = site
    job = server.submit(corpus_file(LONG))
    server.wait_job(job, timeout=300)
    return job


def open_page(browser: Browser, url: str, width: int = 1280, height: int = 900, dark: bool = False,
              **context) -> Page:
    ctx = browser.new_context(viewport={"width": width, "height": height},
                              color_scheme="dark" if dark else "light", **context)
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#connection[data-state='connected']", timeout=15_000)
    return page


def open_job(browser: Browser, server: Server, job: str, **kw) -> Page:
    page = open_page(browser, f"{server.url}/?job={job}", **kw)
    page.wait_for_function(DONE, timeout=30_000)
    page.wait_for_selector("#transcript-body .seg", timeout=15_000)
    return page


def words_of(page: Page) -> str:
    return " ".join(page.text_content("#transcript-body").split())


# --- listen and follow ------------------------------------------------------------------------------------------

def test_the_recording_is_served_with_range_requests(site, long_job):
    """audio.wav answers a byte range with 206 and Content-Range, so the player seeks in a long recording at
    once; a range past the end is 416."""
    server, _ = site
    url = f"{server.url}/api/jobs/{long_job}/audio.wav"
    whole = requests.get(url, headers={"Range": "bytes=0-0"}, timeout=10)
    size = int(whole.headers["Content-Range"].split("/")[1])
    part = requests.get(url, headers={"Range": "bytes=1000000-1000099"}, timeout=10)
    assert part.status_code == 206 and len(part.content) == 100
    assert part.headers["Content-Range"] == f"bytes 1000000-1000099/{size}"
    assert part.headers["Accept-Ranges"] == "bytes"
    assert requests.get(url, headers={"Range": f"bytes={size + 10}-"}, timeout=10).status_code == 416


def test_playing_highlights_the_sentence_and_clicking_one_plays_it(site, long_job):
    """Play: the highlighted sentence moves on with the audio and is the one being said. Clicking a sentence
    seeks to within 0.3 s of its start and plays; a paragraph's time plays from the paragraph; the keys work,
    but not while typing in the find box."""
    server, browser = site
    page = open_job(browser, server, long_job)
    try:
        page.select_option("#speed", "2")
        page.click("#play")
        first = page.wait_for_function("document.querySelector('.seg.current')?.dataset.key", timeout=10_000)
        first = first.json_value()
        moved = page.wait_for_function(
            f"(() => {{ const k = document.querySelector('.seg.current')?.dataset.key;"
            f" return k && k !== '{first}' && k; }})()", timeout=20_000).json_value()
        state = page.evaluate("""(() => { const seg = document.querySelector('.seg.current');
            return { t: document.getElementById('audio').currentTime, start: Number(seg.dataset.start),
                     end: Number(seg.dataset.end), label: document.getElementById('play-label').textContent }; })()""")
        assert moved != first and state["label"] == "Pause"
        assert state["start"] - 0.3 <= state["t"] <= state["end"] + 0.3, state
        shot(page, "playing")

        # Where the audio is at the moment it has seeked: not later, when it has played on.
        page.evaluate("""window.seekedAt = []; document.getElementById('audio')
            .addEventListener('seeked', (e) => window.seekedAt.push(e.target.currentTime))""")
        target = page.locator(".seg").nth(7)
        start = float(target.get_attribute("data-start"))
        target.click()
        page.wait_for_function("window.seekedAt.length > 0", timeout=5_000)
        assert abs(page.evaluate("window.seekedAt[0]") - start) <= 0.3
        assert page.evaluate("!document.getElementById('audio').paused")

        times = page.locator(".para-time")
        assert times.count() >= 2
        page.evaluate("window.seekedAt = []")
        times.nth(1).click()
        page.wait_for_function("window.seekedAt.length > 0", timeout=5_000)
        assert abs(page.evaluate("window.seekedAt[0]") - float(times.nth(1).get_attribute("data-start"))) <= 0.3

        page.keyboard.press("k")
        assert page.evaluate("document.getElementById('audio').paused")
        before = page.evaluate("document.getElementById('audio').currentTime")
        page.keyboard.press("j")
        assert abs(page.evaluate("document.getElementById('audio').currentTime") - (before - 5)) < 0.05
        page.keyboard.press(">")
        assert page.evaluate("document.getElementById('audio').playbackRate") == 2.0  # already at the top
        page.keyboard.press("<")
        assert page.evaluate("document.getElementById('audio').playbackRate") == 1.75
        page.click("#find-input")
        page.keyboard.type("kjl")
        assert page.input_value("#find-input") == "kjl"
        assert page.evaluate("document.getElementById('audio').paused"), "k typed in a box is a letter"
    finally:
        page.context.close()


def unsure_words(view: dict) -> list[tuple[str, int]]:
    """Each word of the job's text the model was unsure of (below 50 %), with its probability in percent: the
    words of a segment's text matched to its timed words (several timed words spelling one word of the text
    count as it, the least sure part counting)."""
    found = []
    for s in view["slices"]:
        for n, seg in enumerate(s["segments"]):
            if str(n) in s["edits"]:
                continue
            words, k = seg["words"], 0
            for token in seg["text"].split():
                first, joined = k, ""
                while k < len(words) and len(joined) < len(token):
                    joined += words[k]["word"]
                    k += 1
                assert joined == token, (token, joined)
                p = min(w["probability"] for w in words[first:k])
                if p < 0.5:
                    found.append((token, round(p * 100)))
    return found


def test_the_word_being_said_is_highlighted_and_unsure_words_are_marked(site, long_job):
    """Every word comes with its time and probability (the .json's segments hold them); while playing, the word
    being said is highlighted inside its sentence; the words the model was below 50 % sure of are underlined
    with their probability on focus, and "Next unsure word" (or n) goes to each in turn and moves the player
    there."""
    server, browser = site
    view = server.job(long_job)
    segments = server.get(f"/api/jobs/{long_job}/transcript.json").json()["segments"]
    assert all(seg["words"] and set(seg) >= {"words", "avg_logprob"} for seg in segments)
    assert all(set(w) >= {"start", "end", "word", "probability"} for seg in segments for w in seg["words"])
    expected = unsure_words(view)
    assert expected, "the long recording has words the tiny model is unsure of"
    page = open_job(browser, server, long_job)
    try:
        marked = page.locator(".w.unsure").evaluate_all("(els) => els.map((e) => [e.textContent, e.dataset.tip])")
        assert marked == [[w, f"{p} % sure"] for w, p in expected]
        assert page.text_content("#next-uncertain") == f"Next unsure word ({len(expected)})"
        page.click("#next-uncertain")
        focused = page.evaluate("""(() => { const w = document.activeElement;
            return { text: w.textContent, start: Number(w.dataset.start), unsure: w.classList.contains('unsure'),
                     tip: getComputedStyle(w, '::after').content,
                     t: document.getElementById('audio').currentTime }; })()""")
        assert focused["unsure"] and focused["text"] == expected[0][0]
        assert focused["tip"] == f'"{expected[0][1]} % sure"' and abs(focused["t"] - focused["start"]) < 0.05
        shot(page, "unsure-word")
        if len(expected) > 1:
            page.keyboard.press("n")
            assert page.evaluate("document.activeElement.textContent") == expected[1][0]

        page.locator(".seg").nth(3).click()
        word = page.wait_for_function("""(() => { const w = document.querySelector('.seg.current .w.current');
            const t = document.getElementById('audio').currentTime;
            return w && { start: Number(w.dataset.start), end: Number(w.dataset.end), t }; })()""", timeout=10_000)
        word = word.json_value()
        assert word["start"] - 0.3 <= word["t"] <= word["end"] + 0.3, word
        page.click("#play")
    finally:
        page.context.close()


def test_the_player_stays_in_reach_while_the_transcript_scrolls(site, long_job):
    """Scrolled to the transcript's end, on a desktop and on a phone, the player is on screen."""
    server, browser = site
    for width, height in ((1280, 700), (390, 800)):
        page = open_job(browser, server, long_job, width=width, height=height)
        try:
            page.locator(".para").last.scroll_into_view_if_needed()
            page.evaluate("window.scrollBy(0, 200)")
            box = page.locator("#toolbar").bounding_box()
            assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height, (width, box)
        finally:
            page.context.close()


# --- paragraphs -------------------------------------------------------------------------------------------------

def test_paragraphs_with_times_on_the_page_and_in_the_txt(site, long_job):
    """The page draws the server's paragraphs, each with its start time; the .txt holds the same paragraphs
    (a blank line between them) and ?timestamps=1 puts each one's time in front."""
    server, browser = site
    view = server.job(long_job)
    page = open_job(browser, server, long_job)
    try:
        paragraphs = [" ".join(t.split()) for t in page.locator(".para-text").all_text_contents()]
        times = page.locator(".para-time").evaluate_all("(els) => els.map((e) => e.dataset.time)")
    finally:
        page.context.close()
    assert len(paragraphs) == len(view["paragraphs"]) >= 2
    assert times[0] == "0:00" and all(re.fullmatch(r"\d+:\d\d", t) for t in times)
    txt = server.get(f"/api/jobs/{long_job}/transcript.txt").text
    assert txt.rstrip("\n").split("\n\n") == paragraphs
    timed = server.get(f"/api/jobs/{long_job}/transcript.txt?timestamps=1").text.rstrip("\n").split("\n\n")
    assert [re.sub(r"^\[\d+:\d\d\.\d\] ", "", p) for p in timed] == paragraphs
    assert all(re.match(r"^\[\d+:\d\d\.\d\] ", p) for p in timed)
    assert wer(manifest()[LONG]["reference"], txt) < 15


# --- corrections ------------------------------------------------------------------------------------------------

def edit(page: Page, n: int, text: str) -> None:
    """Correct sentence n on the page: double-click it, replace its words, Enter."""
    page.locator(".seg").nth(n).dblclick()
    page.wait_for_selector(".seg.editing", timeout=5_000)
    page.keyboard.press("Control+a")
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_a_correction_survives_a_reload_and_reaches_every_download(site, long_job):
    """A sentence corrected on the page is saved: after a reload it reads as corrected (marked as such), and
    the API, .txt, .srt, .vtt and .json all carry it; "put back" restores the worker's text everywhere."""
    server, browser = site
    page = open_job(browser, server, long_job)
    try:
        key = page.locator(".seg").nth(2).get_attribute("data-key")
        slice_index, n = map(int, key.split(":"))
        original = server.job(long_job)["slices"][slice_index]["segments"][n]["text"]
        edit(page, 2, "Scatterscribe checks that corrections are kept.")
        page.wait_for_selector(f".seg.edited[data-key='{key}']", timeout=10_000)
        page.reload()
        page.wait_for_selector(f".seg.edited[data-key='{key}']", timeout=15_000)
        segment = page.locator(f".seg[data-key='{key}']")
        assert segment.text_content() == "Scatterscribe checks that corrections are kept."
        assert original in segment.get_attribute("title")
        shot(page, "corrected")
        view = server.job(long_job)
        assert "corrections are kept" in view["transcript"] and original not in view["transcript"]
        for ext in ("txt", "srt", "vtt"):
            body = " ".join(server.get(f"/api/jobs/{long_job}/transcript.{ext}").text.split())
            assert "corrections are kept" in body, ext
        data = server.get(f"/api/jobs/{long_job}/transcript.json").json()
        item = next(s for s in data["segments"] if s.get("edited"))
        assert item["original"] == original and item["text"].startswith("Scatterscribe checks")

        segment.dblclick()
        page.get_by_role("button", name="Put back the worker’s text").click()
        page.wait_for_function(f"!document.querySelector(\".seg[data-key='{key}']\").classList.contains('edited')",
                               timeout=10_000)
        assert server.job(long_job)["slices"][slice_index]["segments"][n]["text"] == original
        assert "corrections are kept" not in server.get(f"/api/jobs/{long_job}/transcript.txt").text
    finally:
        page.context.close()


def test_a_stale_edit_is_refused_with_a_message(site, long_job):
    """Two pages show the same sentence. One starts correcting it; meanwhile the other saves its own
    correction. Saving the first is refused by the server; the page says so, shows what it now reads, keeps the
    person's words, and the other page's correction stands until they save again on purpose."""
    server, browser = site
    first = open_job(browser, server, long_job)
    second = open_job(browser, server, long_job)
    try:
        key = first.locator(".seg").nth(4).get_attribute("data-key")
        slice_index, n = map(int, key.split(":"))
        first.locator(".seg").nth(4).dblclick()
        first.wait_for_selector(".seg.editing", timeout=5_000)
        first.keyboard.press("Control+a")
        first.keyboard.type("The first page's version.")
        edit(second, 4, "The second page's version.")
        wait_for(lambda: server.job(long_job)["slices"][slice_index]["segments"][n]["text"] ==
                 "The second page's version.", 10, "the second page's correction")
        first.keyboard.press("Enter")
        first.wait_for_selector("#edit-message:not([hidden])", timeout=10_000)
        message = first.text_content("#edit-message")
        assert "changed since your page showed it" in message and "The second page's version." in message
        assert first.locator(".seg.editing").text_content() == "The first page's version."
        assert server.job(long_job)["slices"][slice_index]["segments"][n]["text"] == "The second page's version."
        shot(first, "stale-edit")
        first.keyboard.press("Escape")  # keep theirs
        first.wait_for_function(
            f"document.querySelector(\".seg[data-key='{key}']\").textContent === \"The second page's version.\"",
            timeout=10_000)
        # restore the original for the other tests
        answer = requests.patch(f"{server.url}/api/jobs/{long_job}/slices/{slice_index}/segments/{n}",
                                json={"restore": True, "was": "The second page's version."}, timeout=10)
        assert answer.ok, answer.text
    finally:
        first.context.close()
        second.context.close()


# --- find -------------------------------------------------------------------------------------------------------

def test_find_counts_highlights_and_moves(site, long_job):
    """Typing in the find box highlights every match and says "1 of N" (N: the word's occurrences in the
    transcript, any case); Enter moves on, Shift+Enter back, Play match plays from the match's sentence."""
    server, browser = site
    page = open_job(browser, server, long_job)
    try:
        text = words_of(page).lower()
        expected = text.count("election")
        assert expected >= 2
        page.click("#find-input")
        page.keyboard.type("Election")
        page.wait_for_function(f"document.getElementById('find-count').textContent === '1 of {expected}'",
                               timeout=5_000)
        assert page.evaluate("CSS.highlights.get('find').size") == expected
        page.keyboard.press("Enter")
        assert page.text_content("#find-count") == f"2 of {expected}"
        page.keyboard.press("Shift+Enter")
        page.keyboard.press("Shift+Enter")
        assert page.text_content("#find-count") == f"{expected} of {expected}"
        current = page.evaluate("""(() => { const r = [...CSS.highlights.get('find-current')][0];
            const timed = r.startContainer.parentElement.closest('[data-start]');
            return [r.toString(), Number(timed.dataset.start)]; })()""")
        assert current[0].lower() == "election"
        shot(page, "find")
        page.evaluate("window.seekedAt = []; document.getElementById('audio')"
                      ".addEventListener('seeked', (e) => window.seekedAt.push(e.target.currentTime))")
        page.click("#find-play")
        page.wait_for_function("window.seekedAt.length > 0", timeout=5_000)
        assert abs(page.evaluate("window.seekedAt[0]") - current[1]) <= 0.3
        page.fill("#find-input", "no such words anywhere")
        page.wait_for_function("document.getElementById('find-count').textContent === 'no match'", timeout=5_000)
        assert page.is_disabled("#find-next")
    finally:
        page.context.close()


# --- subtitles --------------------------------------------------------------------------------------------------

def parse_cues(body: str, sep: str) -> list:
    from server.subtitles import Cue
    stamp = rf"(\d\d):(\d\d):(\d\d){re.escape(sep)}(\d{{3}})"
    found = []
    for block in body.strip().split("\n\n"):
        lines = block.split("\n")
        at = next(i for i, line in enumerate(lines) if " --> " in line)
        m = re.fullmatch(rf"{stamp} --> {stamp}", lines[at])
        assert m, lines[at]
        g = list(map(int, m.groups()))
        found.append(Cue(g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000, g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000,
                         tuple(lines[at + 1:])))
    return found


def test_every_cue_of_a_long_recording_is_readable(site, long_job):
    """Every cue of the long recording's .srt and .vtt: at most 2 lines of 42 characters, 1–7 s on screen
    (less only when the next starts sooner), at most 20 characters a second where the pause after allows; the
    .srt and .vtt hold the same cues, and every word of the transcript once, in order."""
    server, _ = site
    srt = server.get(f"/api/jobs/{long_job}/transcript.srt").text
    vtt = server.get(f"/api/jobs/{long_job}/transcript.vtt").text
    assert vtt.startswith("WEBVTT\n\n")
    srt_cues = parse_cues(srt, ",")
    vtt_cues = parse_cues(vtt[len("WEBVTT\n\n"):], ".")
    assert srt_cues == vtt_cues and len(srt_cues) > 20
    view = server.job(long_job)
    check_cues(srt_cues, eps=0.002, duration_s=view["duration"])
    assert " ".join(" ".join(c.lines) for c in srt_cues).split() == \
        server.get(f"/api/jobs/{long_job}/transcript.txt").text.split()
    fast = sum(len(c.text) / (c.end - c.start) > 20 for c in srt_cues)
    print(f"{LONG}: {len(srt_cues)} cues, {fast} faster than 20 chars/s (no room after them), longest "
          f"{max(c.end - c.start for c in srt_cues):.2f} s, shortest {min(c.end - c.start for c in srt_cues):.2f} s")


# --- transcribe again -------------------------------------------------------------------------------------------

def test_a_slice_is_transcribed_again_from_the_page(site):
    """"Transcribe again…" on a slice asks which workers may do it (any, or the engine of a connected worker),
    sends it, and the new text replaces the old; a corrected slice is redone only after the page asks whether
    to replace the correction."""
    server, browser = site
    job = server.submit(corpus_file(SHORT))
    server.wait_job(job)
    page = open_job(browser, server, job)
    try:
        edit(page, 0, "A correction that will be replaced.")
        page.wait_for_selector(".seg.edited", timeout=10_000)
        page.click(".slice-details summary")
        page.get_by_role("button", name="Transcribe again… (slice 1)").click()
        page.wait_for_selector("#dialog[open]")
        options = page.locator("#redo-engine option").all_text_contents()
        assert options[0] == "any worker" and "faster-whisper tiny.en" in options
        page.select_option("#redo-engine", label="faster-whisper tiny.en")
        page.click("#dialog-ok")
        page.wait_for_function("document.getElementById('dialog-h').textContent.startsWith('Replace your')",
                               timeout=5_000)
        assert page.evaluate("document.activeElement.id") == "dialog-cancel", "a destructive question starts on No"
        shot(page, "redo-asks")
        page.click("#dialog-ok")
        wait_for(lambda: (s := server.job(job)["slices"][0])["status"] == "done" and not s["edits"] and s["attempts"]
                 and s["asked_engine"] == "faster-whisper", 60, "the slice to be done again")
        page.wait_for_function(DONE, timeout=15_000)
        page.wait_for_function("!document.querySelector('.seg.edited')", timeout=10_000)
        assert "replaced" not in words_of(page)
        assert wer(manifest()[SHORT]["reference"], words_of(page)) < 30
    finally:
        page.context.close()
        requests.delete(f"{server.url}/api/jobs/{job}", timeout=10)


# --- jobs -------------------------------------------------------------------------------------------------------

def test_jobs_are_renamed_searched_highlighted_and_deleted(site, long_job):
    """Rename from the page (kept over a reload, shown in Past jobs); Past jobs shows first words, highlights
    the open job and finds jobs by name and by words said; the tab's title counts slices while a job runs;
    Delete asks first, and Cancel keeps the job."""
    server, browser = site
    page = open_page(browser, server.url)
    try:
        page.evaluate("""window.titles = []; new MutationObserver(() => titles.push(document.title))
            .observe(document.querySelector('title'), { childList: true, characterData: true, subtree: true })""")
        page.set_input_files("#file", str(corpus_file("osr_us_000_0034_harvard_list72.wav")))
        page.wait_for_function(DONE, timeout=180_000)
        job = page.evaluate("new URLSearchParams(location.search).get('job')")
        titles = page.evaluate("window.titles")
        assert any(re.fullmatch(r"\(\d/2\) osr_us_000_0034_harvard_list72\.wav — Scatterscribe", t) for t in titles), \
            titles
        assert page.title() == "osr_us_000_0034_harvard_list72.wav — Scatterscribe"

        page.click("#rename")
        page.fill("#rename-input", "Harvard sentences, list 72")
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('job-h').textContent === 'Harvard sentences, list 72'",
                               timeout=10_000)
        page.reload()
        page.wait_for_function("document.getElementById('job-h').textContent === 'Harvard sentences, list 72'",
                               timeout=15_000)
        current = page.locator("#jobs li.open")
        assert current.count() == 1 and current.locator("a").get_attribute("aria-current") == "page"
        assert current.locator("a").text_content() == "Harvard sentences, list 72"
        assert current.locator(".first-words").text_content().startswith("A gold ring")
        assert page.title() == "Harvard sentences, list 72 — Scatterscribe"

        page.fill("#jobs-search", "election day")  # said in LONG, not in its name
        page.wait_for_function("document.querySelectorAll('#jobs li').length === 1", timeout=5_000)
        assert page.get_attribute("#jobs li", "data-id") == long_job
        page.fill("#jobs-search", "HARVARD")
        page.wait_for_function(f"document.querySelector('#jobs li')?.dataset.id === '{job}'", timeout=5_000)
        page.fill("#jobs-search", "words nobody said")
        page.wait_for_selector("#no-jobs:not([hidden])", timeout=5_000)
        assert "words nobody said" in page.text_content("#no-jobs")
        shot(page, "jobs-search")
        page.fill("#jobs-search", "")

        page.click("#delete")
        page.wait_for_selector("#dialog[open]")
        assert "Delete “Harvard sentences, list 72”?" == page.text_content("#dialog-h")
        page.keyboard.press("Escape")
        assert server.get(f"/api/jobs/{job}").ok, "cancelled: the job stays"
        page.click("#delete")
        page.click("#dialog-ok")
        page.wait_for_selector("#job", state="hidden", timeout=10_000)
        assert server.get(f"/api/jobs/{job}").status_code == 404
        assert page.locator(f"#jobs li[data-id='{job}']").count() == 0
    finally:
        page.context.close()


def test_past_jobs_show_a_few_and_say_how_many_more(site, long_job):
    """With more jobs than fit, Past jobs shows the first ones whole and a button saying how many more; no
    item is cut off mid-way."""
    server, browser = site
    extra = [server.submit(corpus_file(SHORT)) for _ in range(8)]
    try:
        for job in extra:
            server.wait_job(job)
        page = open_page(browser, server.url)
        page.wait_for_function("document.querySelectorAll('#jobs li').length === 8", timeout=10_000)
        total = len(server.get("/api/jobs").json()["jobs"])
        assert page.text_content("#jobs-more") == f"Show all {total} ({total - 8} more)"
        box = page.evaluate("(() => { const l = document.getElementById('jobs'); "
                            "return [l.scrollHeight, l.clientHeight]; })()")
        assert box[0] <= box[1], "the list never scrolls inside itself"
        page.click("#jobs-more")
        assert page.locator("#jobs li").count() == total
        page.context.close()
    finally:
        for job in extra:
            requests.delete(f"{server.url}/api/jobs/{job}", timeout=10)


# --- defects ----------------------------------------------------------------------------------------------------

SIDEWAYS = "document.documentElement.scrollWidth <= window.innerWidth"
AXIS_OVERLAPS = """(() => {
    const r = [...document.querySelectorAll('#time-axis span')].map((s) => s.getBoundingClientRect());
    return r.slice(1).filter((b, i) => b.left < r[i].right - 0.5).length; })()"""


def test_a_phone_never_scrolls_sideways(site, long_job, tmp_path):
    """At 390 px: the empty page, a finished job, a job waiting for workers (its command box at least 250 px
    wide, words whole) and a live recording in progress all fit the width, and the time axis's labels never
    overlap."""
    server, browser = site
    page = open_page(browser, server.url, width=390, height=844)
    try:
        assert page.evaluate(SIDEWAYS)
        page.goto(f"{server.url}/?job={long_job}")
        page.wait_for_function(DONE, timeout=30_000)
        assert page.evaluate(SIDEWAYS) and page.evaluate(AXIS_OVERLAPS) == 0
        page.get_by_role("button", name="Record").click()
        page.wait_for_selector("#record-panel[data-live='true']", timeout=30_000)
        page.wait_for_function("Number(document.getElementById('elapsed').dataset.seconds) >= 7.3", timeout=30_000)
        shot(page, "phone-recording")
        assert page.evaluate(SIDEWAYS), page.evaluate("document.documentElement.scrollWidth")
        assert page.evaluate(AXIS_OVERLAPS) == 0
        page.get_by_role("button", name="Stop").click()
        page.wait_for_function(DONE, timeout=120_000)
    finally:
        page.context.close()
    lonely = Server(tmp_path)
    try:
        page = open_page(browser, lonely.url, width=390, height=844)
        page.set_input_files("#file", str(corpus_file(SHORT)))
        page.wait_for_selector("#waiting:not([hidden])", timeout=60_000)
        shot(page, "phone-waiting")
        assert page.evaluate(SIDEWAYS)
        width = page.evaluate("document.querySelector('#waiting .command pre').getBoundingClientRect().width")
        assert width >= 250, width
        page.context.close()
    finally:
        lonely.stop()


CONTRAST = """() => {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const rgba = (css) => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = '#000'; ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1); const d = ctx.getImageData(0, 0, 1, 1).data; return [d[0], d[1], d[2], d[3] / 255]; };
  const over = (top, bottom) => top.slice(0, 3).map((c, i) => c * top[3] + bottom[i] * (1 - top[3])).concat(1);
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  // Every background an element's text may sit on: its own and its ancestors' colours, and each colour of a
  // gradient among them; composited down to the page's opaque background.
  const backgrounds = (el) => {
    const layers = [];
    for (let node = el; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      const colours = style.backgroundImage
        .match(/(rgba?|color|hsla?|oklch|oklab|lab|lch)\\([^()]*\\)|#[0-9a-f]{3,8}/gi) || [];
      layers.push({ colour: rgba(style.backgroundColor), gradient: colours.map(rgba) });
      if (layers[layers.length - 1].colour[3] === 1) break;
    }
    let result = [[255, 255, 255, 1]];
    for (const layer of layers.reverse()) {
      result = result.map((b) => over(layer.colour, b));
      if (layer.gradient.length) result = result.flatMap((b) => layer.gradient.map((g) => over(g, b)));
    }
    return result;
  };
  const hidden = (el) => { for (let n = el; n; n = n.parentElement) { const s = getComputedStyle(n);
    if (s.clip === 'rect(0px, 0px, 0px, 0px)' || s.visibility === 'hidden' || Number(s.opacity) === 0) return true; }
    return false; };
  const inactive = (el) => !!el.closest(':disabled, [aria-disabled="true"]');
  const found = [];
  const check = (el, style, what) => {
    const text = rgba(style.color);
    // A pseudo-element's own background (a tooltip's) lies over its element's.
    const own = what === 'text' ? null : rgba(style.backgroundColor);
    for (const under of backgrounds(el)) {
      const bg = own ? over(own, under) : under;
      const r = ratio(over(text, bg), bg);
      if (r < 4.5) { found.push({ what, text: (el.textContent || '').trim().slice(0, 40) || style.content,
        colour: style.color, ratio: Math.round(r * 100) / 100, cls: el.className.baseVal ?? el.className }); break; }
    }
  };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg, script, style, dialog:not([open])') || inactive(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width < 1 || box.height < 1 || hidden(el)) continue;
    if ([...el.childNodes].some((n) => n.nodeType === 3 && n.data.trim())) check(el, getComputedStyle(el), 'text');
    for (const pseudo of ['::before', '::after']) {
      const style = getComputedStyle(el, pseudo);
      if (style.content && !['none', 'normal', '""'].includes(style.content)) check(el, style, pseudo);
    }
  }
  return found;
}"""


def test_every_text_colour_on_the_page_reads_at_4_5_to_1(site, long_job):
    """Every piece of text shown (and every symbol the style sheet draws) against every background it sits on
    (its own and its ancestors' colours and gradients) has a contrast of at least 4.5:1, in the light and the
    dark scheme: the empty page, a finished job with a word found, and a job being corrected. Inactive
    controls are exempt, as WCAG 1.4.3 says."""
    server, browser = site
    for dark in (False, True):
        page = open_page(browser, server.url, dark=dark)
        try:
            assert page.evaluate(CONTRAST) == [], ("empty page", dark)
            page.goto(f"{server.url}/?job={long_job}")
            page.wait_for_function(DONE, timeout=30_000)
            page.fill("#find-input", "election")
            page.click("#play")
            page.wait_for_selector(".seg.current .w.current", timeout=10_000)
            page.click("#play")
            page.click(".slice-details summary")
            assert page.evaluate(CONTRAST) == [], ("job", dark)
            page.click("#next-uncertain")  # its probability shows beside it
            assert page.evaluate(CONTRAST) == [], ("unsure word", dark)
            # The status words of every other state, on the same card, and a busy worker.
            page.evaluate("""async () => { const { renderWorkers } = await import('/static/panels.js');
                renderWorkers([{ name: 'busy-one', engine: 'faster-whisper', model: 'tiny.en', slots: 2, busy: 1,
                                 slices_done: 3, speed: 9.5 }]); }""")
            for status in ("running", "failed", "recording", "waiting", "queued"):
                page.evaluate(f"document.getElementById('job-status').dataset.status = '{status}'")
                assert page.evaluate(CONTRAST) == [], (status, dark)
            page.locator(".seg").nth(1).dblclick()
            page.wait_for_selector(".seg.editing")
            assert page.evaluate(CONTRAST) == [], ("editing", dark)
            page.keyboard.press("Escape")
        finally:
            page.context.close()


def axe(page: Page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    return page.evaluate("""async () => (await axe.run(document, { resultTypes: ['violations'] })).violations
        .filter((v) => ['serious', 'critical'].includes(v.impact))
        .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                       nodes: v.nodes.slice(0, 4).map((n) => n.target.join(' ')) }))""")


def test_an_accessibility_engine_finds_nothing_serious(site, long_job):
    """axe-core (vendored in tests/vendor) reports no serious or critical violation on the main states: the
    empty page, a finished job (player, paragraphs, find, slice list), a sentence being corrected, and the
    question before a delete."""
    server, browser = site
    page = open_page(browser, server.url)
    try:
        assert axe(page) == [], "empty page"
        page.goto(f"{server.url}/?job={long_job}")
        page.wait_for_function(DONE, timeout=30_000)
        page.fill("#find-input", "the")
        page.click(".slice-details summary")
        assert axe(page) == [], "finished job"
        page.locator(".seg").nth(1).dblclick()
        page.wait_for_selector(".seg.editing")
        assert axe(page) == [], "correcting"
        page.keyboard.press("Escape")
        page.click("#delete")
        page.wait_for_selector("#dialog[open]")
        assert axe(page) == [], "delete question"
        page.keyboard.press("Escape")
    finally:
        page.context.close()


def test_narrow_slice_labels_are_never_cut(site):
    """At 1440 px, slices of every width show whole words, or their symbol and number, or their symbol, or
    only their colour: no chip cuts a character off."""
    server, browser = site
    page = open_page(browser, server.url, width=1440)
    try:
        page.evaluate("""async () => {
            const { Waveform } = await import('/static/waveform.js');
            const job = document.getElementById('job');
            job.hidden = false;
            const waveform = new Waveform({ svg: document.getElementById('waveform'),
              path: document.getElementById('waveform-path'), marks: document.getElementById('waveform-slices'),
              track: document.getElementById('slice-track'), axis: document.getElementById('time-axis'),
              caption: document.getElementById('slice-caption') });
            const widths = [0.3, 0.6, 0.9, 1.2, 1.6, 2, 3, 4, 6, 9, 14, 20, 28];
            const states = ['queued', 'leased', 'done', 'failed'];
            let t = 0;
            const slices = widths.map((w, index) => { const s = { index, start: t, end: t + w,
              status: states[index % 4], worker: 'laptop-of-someone' }; t += w + 0.05; return s; });
            waveform.setSlices(slices, t);
        }""")
        cut = page.evaluate("""[...document.querySelectorAll('#slice-track .slice-chip')]
            .filter((c) => c.scrollWidth > c.clientWidth + 1).map((c) => c.className + ' ' + c.textContent)""")
        assert cut == []
        classes = page.evaluate("[...document.querySelectorAll('#slice-track .slice-chip')].map((c) => c.className)")
        assert any("bare" in c for c in classes) and any("narrow" not in c for c in classes), classes
    finally:
        page.context.close()


def test_the_worker_command_from_the_page_connects_to_a_server_with_another_data_dir(site, tmp_path):
    """A server started with --data-dir elsewhere and no token of its own: the page's "start a worker" command,
    copied with its button and run from the repository root, reads that server's token and connects; until the
    worker's text comes, Copy and the downloads are inactive; after, the .json names the engine and model."""
    _, browser = site
    lonely = Server(tmp_path, env={"SCATTERSCRIBE_TOKEN": ""})  # the server generates its token in its data dir
    worker = None
    try:
        assert (tmp_path / "data" / "worker-token").exists()
        page = open_page(browser, lonely.url, permissions=["clipboard-read", "clipboard-write"])
        page.set_input_files("#file", str(corpus_file(SHORT)))
        page.wait_for_selector("#waiting:not([hidden])", timeout=60_000)
        assert page.is_disabled("#copy") and page.is_visible("#empty-note")
        assert page.evaluate(CONTRAST) == [], "waiting for workers"
        for ext in ("txt", "srt", "vtt", "json"):
            assert page.get_attribute(f"#dl-{ext}", "href") is None
            assert page.get_attribute(f"#dl-{ext}", "aria-disabled") == "true"
        page.click("#waiting [data-copy]")
        command = page.evaluate("navigator.clipboard.readText()")
        assert str(tmp_path / "data" / "worker-token") in command and "data/worker-token" != command
        worker = subprocess.Popen(["bash", "-c", command], cwd=ROOT, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lonely.wait_workers(1, timeout=60)
        page.wait_for_function(DONE, timeout=120_000)
        assert page.is_enabled("#copy") and page.is_hidden("#empty-note")
        job = page.evaluate("new URLSearchParams(location.search).get('job')")
        assert page.get_attribute("#dl-json", "href") == f"/api/jobs/{job}/transcript.json"
        data = json.loads(requests.get(f"{lonely.url}/api/jobs/{job}/transcript.json", timeout=10).text)
        assert data["engine"] == "faster-whisper" and data["model"] == "tiny.en"
        assert data["requested"] == {"engine": "", "model": ""}
        page.context.close()
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=20)
        lonely.stop()


def test_the_worker_command_asks_for_the_token_a_server_was_given(site):
    """A server started with a token of its own (SCATTERSCRIBE_TOKEN) has no token file to point at: the
    command says to put that token in, rather than naming a file that does not exist."""
    server, browser = site
    page = open_page(browser, server.url)
    try:
        assert requests.get(f"{server.url}/api/worker-setup", timeout=10).json()["token_file"] is None
        page.wait_for_function("document.getElementById('worker-command-2').textContent.includes('<the token')",
                               timeout=5_000)
    finally:
        page.context.close()
