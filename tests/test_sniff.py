"""What kind of file an upload is, from its first bytes (server/sniff.py), and the page's copy of the same
table (web/sniff.js) giving the same verdict, word for word, in Chromium."""

from __future__ import annotations

import base64
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from playwright.sync_api import sync_playwright

from server.sniff import HEAD_BYTES, sniff
from tests.support import ROOT, launch_chromium

#: First bytes of each kind of file, and what sniff must call them.
AUDIO = {
    b"RIFF\x24\x00\x00\x00WAVEfmt ": "WAV", b"RIFF\x00\x00": "WAV", b"RIFF\0\0\0\0AVI LIST": "AVI",
    b"RF64\xff\xff\xff\xffWAVEds64": "WAV (RF64)", b"ID3\x04\x00\x00\x00\x00\x00\x23TSSE": "MP3",
    b"\xff\xfb\x90\x64\x00": "MP3", b"\x00\x00\xff\xf3\x84\xc4": "MP3", b"\xff\xf1\x50\x80\x02": "AAC",
    b"OggS\x00\x02\x00\x00": "Ogg", b"fLaC\x00\x00\x00\x22": "FLAC", b"FORM\x00\x01\x00\x00AIFFCOMM": "AIFF",
    b"FORM\x00\x01\x00\x00AIFCFVER": "AIFF", b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81": "Matroska/WebM",
    b"\x00\x00\x00\x1cftypM4A \x00\x00": "MP4/M4A/MOV", b"\x00\x00\x00\x14ftypqt  ": "MP4/M4A/MOV",
    b"\x00\x00\x00\x08wide\x00\x00": "QuickTime/MP4",
    bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + b"\0": "WMA/WMV", b"#!AMR\n": "AMR",
    b"caff\x00\x01": "CAF", b".snd\x00\x00\x00\x18": "AU", b"\x00\x00\x01\xba\x44": "MPEG program stream",
    b"\x47\x40\x00\x10" + bytes(184) + b"\x47\x40": "MPEG transport stream",
}
NOT_AUDIO = {
    b"hello, these are notes\n": "a text file", "naïve café — 日本語のテキスト".encode(): "a text file",
    b"\xef\xbb\xbfBOM text\r\n": "a text file", b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff\xe0": "a JPEG image",
    b"GIF89a": "a GIF image", b"RIFF\0\0\0\0WEBPVP8 ": "a WebP image", b"\x00\x00\x00\x18ftypheic": "a HEIC/AVIF image",
    b"%PDF-1.4": "a PDF document", b"PK\x03\x04\x14\x00": "a ZIP archive (or a document saved as one, such as .docx)",
    b"\x1f\x8b\x08\x00": "a gzip archive", b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive", b"\x7fELF\x02\x01": "a program",
    bytes(257) + b"ustar\x0000": "a tar archive", b"": "an empty file", b"\x00\x01\x02\x03": "unknown",
}


@pytest.mark.parametrize("head, name", list(AUDIO.items()))
def test_audio_and_video_containers_are_recognised(head, name):
    """Each container's signature is audio, named as the decoder's table names it."""
    found = sniff(head)
    assert (found.audio, found.name, found.refusal) == (True, name, "")


@pytest.mark.parametrize("head, name", list(NOT_AUDIO.items()))
def test_files_that_are_no_audio_are_named_in_their_refusal(head, name):
    """Text, images, documents, archives, programs, empty and unknown files are no audio, and the sentence says
    which (an unknown file shows its first bytes)."""
    found = sniff(head)
    assert not found.audio and found.name == name
    if name == "an empty file":
        assert found.refusal == "the file is empty"
    elif name == "unknown":
        assert "it begins with the bytes 00 01 02 03" in found.refusal
    else:
        assert found.refusal.startswith(f"this is {name}, not an audio or video file")
    assert "MP3" in found.refusal or name == "an empty file"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=HEAD_BYTES))
def test_any_bytes_get_a_verdict_and_no_audio_gets_a_sentence(head):
    """sniff never raises; whatever is not audio carries a sentence for the user."""
    found = sniff(head)
    assert found.audio or found.refusal


def samples() -> list[bytes]:
    """Heads for the page's copy to judge: every case above, and random bytes, texts and truncated texts."""
    rng = random.Random(15)
    heads = list(AUDIO) + list(NOT_AUDIO)
    heads += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, HEAD_BYTES))) for _ in range(60)]
    heads += [b"\xff" + bytes([b]) + bytes(8) for b in range(0xe0, 0x100)]  # every MPEG sync variant
    text = "Minutes: the café's naïve plan — 会議 ✓\ttab\n"
    heads += [(text * 20).encode()[:n] for n in (1, 40, 41, 42, 43, 300, HEAD_BYTES)]  # cut inside a character
    heads += ["\u2028 line separator".encode(), "nbsp\u00a0here".encode(), "zero\u200bwidth".encode()]
    return heads


def test_the_page_judges_every_file_as_the_server_does():
    """web/sniff.js, run in Chromium, gives each sample head the server's verdict: the same audio flag, name
    and refusal sentence."""
    heads = samples()
    source = (ROOT / "web" / "sniff.js").read_text()
    module = "data:text/javascript;base64," + base64.b64encode(source.encode()).decode()
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            verdicts = page.evaluate("""async ([module, heads]) => {
                const { sniff } = await import(module);
                return heads.map((h) => sniff(Uint8Array.from(atob(h), (c) => c.charCodeAt(0))));
            }""", [module, [base64.b64encode(h).decode() for h in heads]])
        finally:
            browser.close()
    for head, verdict in zip(heads, verdicts, strict=True):
        expected = sniff(head)
        assert verdict == {"audio": expected.audio, "name": expected.name, "refusal": expected.refusal}, \
            json.dumps({"head": head[:24].hex(), "page": verdict, "server": expected.__dict__})
