"""Speaker labels on the page, in a real browser (Debian's Chromium through Playwright) against real servers and
workers: who speaks at each change, in colour and in words; renaming a speaker (stored, shown after a reload,
in the downloads); a job without diarizing workers saying why it has no labels; a stereo call labelled by its
channels. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import requests
from playwright.sync_api import Page, sync_playwright

from bench import conversations
from tests.support import corpus_file, launch_chromium, wait_for
from tests.test_job_page import CONTRAST, DONE, axe, shot


def open_job(browser, url: str, job: str, dark: bool = False) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900},
                               color_scheme="dark" if dark else "light").new_page()
    page.goto(f"{url}/?job={job}")
    page.wait_for_selector("#connection[data-state='connected']", timeout=15_000)
    page.wait_for_function(DONE, timeout=60_000)
    page.wait_for_selector("#transcript-body .seg", timeout=15_000)
    return page


def paragraph_speakers(page: Page) -> list[tuple[str, str | None]]:
    return page.evaluate("""[...document.querySelectorAll('#transcript-body .para')].map((p) => {
        const s = p.querySelector('.para-speaker'); return [s ? s.textContent : '', s ? s.dataset.colour : null]; })""")


def test_speakers_show_at_each_change_and_a_new_name_is_kept(diarizing, tmp_path):
    """A two-person conversation through --diarize workers: the page lists two speakers, each paragraph names
    its speaker in that speaker's colour, and the names alternate as the server's paragraphs do. Renaming
    Speaker 2 "Bob Ross" on the page changes the list and every paragraph at once, survives a reload, and is in
    the .srt and .txt downloads. Every text colour reads at 4.5:1 in both schemes; axe finds nothing serious."""
    server = diarizing["server"]
    conversation = conversations.build("page-two", ["lj", "bush"], tmp_path, 45, seed=5)
    job = server.submit(conversation.path)
    server.wait_job(job, timeout=300)
    view = wait_for(lambda: (v := server.job(job))["speakers"]["final"] and v, 30, "the final labels")
    assert len(view["speakers"]["list"]) == 2
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = open_job(browser, server.url, job)
        try:
            page.wait_for_selector("#speakers:not([hidden]) #speaker-list li", timeout=10_000)
            listed = page.evaluate("""[...document.querySelectorAll('#speaker-list li')].map((li) =>
                [li.querySelector('.speaker-name').textContent, li.querySelector('.speaker-name').dataset.colour,
                 getComputedStyle(li.querySelector('.speaker-name')).color])""")
            assert [(name, colour) for name, colour, _ in listed] == [("Speaker 1", "1"), ("Speaker 2", "2")]
            assert listed[0][2] != listed[1][2], "each speaker has a colour of its own"
            shown = paragraph_speakers(page)
            assert [s for s, _ in shown] == [p["speaker"] for p in view["paragraphs"]]
            assert {s for s, _ in shown} == {"Speaker 1", "Speaker 2"}
            assert all(colour == name[-1] for name, colour in shown)
            assert any(a[0] != b[0] for a, b in zip(shown, shown[1:], strict=False)), "a change of speaker"
            shot(page, "speakers")
            assert page.evaluate(CONTRAST) == [], "speakers, light"
            assert axe(page) == [], "speakers"

            page.click("button[aria-label='Rename Speaker 2']")
            page.fill("#speaker-rename-input", "   ")  # not empty to the browser; empty to the server
            page.click("#speaker-rename-form button[type=submit]")
            page.wait_for_selector("#speaker-rename-error:not([hidden])")
            assert "empty" in page.text_content("#speaker-rename-error")
            page.fill("#speaker-rename-input", "Bob  Ross")
            page.keyboard.press("Enter")
            page.wait_for_function("[...document.querySelectorAll('.para-speaker')].some((s) => "
                                   "s.textContent === 'Bob Ross')", timeout=10_000)
            assert page.is_hidden("#speaker-rename-form")
            assert {s for s, _ in paragraph_speakers(page)} == {"Speaker 1", "Bob Ross"}
            page.reload()
            page.wait_for_function(DONE, timeout=30_000)
            page.wait_for_selector("#speaker-list li")
            assert page.evaluate("[...document.querySelectorAll('.speaker-name')].map((n) => n.textContent)") == \
                ["Speaker 1", "Bob Ross"]
            srt = requests.get(server.url + page.get_attribute("#dl-srt", "href"), timeout=30).text
            txt = requests.get(server.url + page.get_attribute("#dl-txt", "href"), timeout=30).text
            assert "Bob Ross:" in srt and "\n\nBob Ross: " in "\n\n" + txt
        finally:
            page.context.close()
        page = open_job(browser, server.url, job, dark=True)
        try:
            page.wait_for_selector("#speaker-list li")
            assert page.evaluate(CONTRAST) == [], "speakers, dark"
            shot(page, "speakers-dark")
        finally:
            page.context.close()
            browser.close()


def test_the_page_says_why_a_job_has_no_speakers_and_shows_a_call_by_channel(cluster, tmp_path):
    """Workers without --diarize: a plain recording's page says it has no speaker labels and why (and how to
    get them); the stereo call's page names its two speakers, told apart by the channels."""
    server, _ = cluster
    call = conversations.stereo_call(tmp_path)
    plain = server.submit(corpus_file("jfk_inaugural_excerpt.wav"))
    stereo = server.submit(call.path)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = open_job(browser, server.url, plain)
            page.wait_for_selector("#speakers-note:not([hidden])")
            note = page.text_content("#speakers-note")
            assert note.startswith("No speaker labels") and "--diarize" in note
            assert page.locator("#speaker-list li").count() == 0 and page.locator(".para-speaker").count() == 0
            page.context.close()
            page = open_job(browser, server.url, stereo)
            page.wait_for_selector("#speaker-list li")
            assert "channels" in page.text_content("#speakers-note")
            assert page.locator("#speaker-list li").count() == 2
            assert {s for s, _ in paragraph_speakers(page)} == {"Speaker 1", "Speaker 2"}
            shot(page, "speakers-by-channel")
            page.context.close()
        finally:
            browser.close()
