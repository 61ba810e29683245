"""Retake the README's pictures of the page: ``.venv/bin/python scripts/readme_screenshot.py``.

A real server and two real workers (tiny.en, one thread and one slot each, named like two machines) take a
two-minute corpus recording; Debian's Chromium shows the page and is photographed once two slices are done
and the rest are still out (docs/page-mid-job.png), then, once it is done, the job card as a person works on
it (docs/page-job.png): one sentence corrected on the page, the recording played for a few seconds (the
sentence and word being said highlighted), a word searched for, an unsure word's probability shown.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.support import Server, Worker, corpus_file, launch_chromium, wait_for  # noqa: E402

RECORDING = "bush_radio_address_2008-11-01.wav"  # 2:07 of speech: five slices over two workers
OUT = ROOT / "docs" / "page-mid-job.png"
JOB_OUT = ROOT / "docs" / "page-job.png"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp))
        workers = [Worker(server, name, "--slots", "1") for name in ("desk-pc", "laptop")]
        try:
            server.wait_workers(2, timeout=120)
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto(server.url)
                page.wait_for_selector("#workers li", timeout=30_000)
                job = server.submit(corpus_file(RECORDING))
                page.goto(f"{server.url}/?job={job}")

                def two_done() -> bool:
                    slices = server.job(job)["slices"]
                    return sum(s["status"] == "done" for s in slices) >= 2

                wait_for(two_done, 120, "two slices to be done", interval=0.05)
                page.wait_for_timeout(300)  # let the page draw the push it just got
                page.screenshot(path=str(OUT), full_page=True)

                page.wait_for_function("document.getElementById('job-status').textContent === 'Done'",
                                       timeout=300_000)
                page.wait_for_selector("#transcript-body .seg")
                sentence = page.locator(".seg").nth(9)  # any sentence: the tenth
                sentence.dblclick()
                page.keyboard.press("End")
                page.keyboard.type(" (corrected on the page)")
                page.keyboard.press("Enter")
                page.wait_for_selector(".seg.edited")
                page.locator(".seg").nth(1).click()  # plays from there
                page.wait_for_timeout(2500)
                page.click("#play")
                page.fill("#find-input", "election")
                page.wait_for_function("document.getElementById('find-count').textContent.includes(' of ')")
                page.evaluate("window.scrollTo(0, 0)")
                page.wait_for_timeout(300)
                page.locator("#job").screenshot(path=str(JOB_OUT))
                browser.close()
            print(f"wrote {OUT} and {JOB_OUT}")
        finally:
            for worker in workers:
                worker.stop()
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
