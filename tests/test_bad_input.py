"""The README's table of bad (and odd but good) uploads, case by case, against a real server and worker.

Every file is written by the test. Each case gets either a correct transcript or a 4xx with a message that
says what is wrong, and after all of them the server still serves.
"""

from __future__ import annotations

import io
import re
import struct
import urllib.parse

import numpy as np
import pytest
import requests
import soundfile
from scipy.signal import resample_poly

from server.audio import PcmFile
from tests.media_files import ENCODINGS, encode_wav
from tests.support import Server, Worker, corpus_file, manifest, wer, write_config

SPEECH = "jfk_inaugural_excerpt.wav"
LIMIT_MB = 4.0


def speech() -> np.ndarray:
    return PcmFile(corpus_file(SPEECH))[:].astype(np.float32) / 32768.0


def encoded(rate: int, channels: int, subtype: str, seconds: float | None = None) -> bytes:
    x = resample_poly(speech(), rate, 16000).astype(np.float32)
    if seconds is not None:
        x = np.resize(x, int(seconds * rate))
    data = np.stack([x, x], axis=1) if channels == 2 else x
    buf = io.BytesIO()
    soundfile.write(buf, data, rate, subtype=subtype, format="WAV")
    return buf.getvalue()


def header(tag=1, channels=1, rate=16000, bits=16, data_size=0, extra=b"") -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size) + extra
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body


def silence() -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, np.random.default_rng(0).normal(0, 1e-4, 16000 * 15), 16000, subtype="PCM_16",
                    format="WAV")
    return buf.getvalue()


def noise(level_db: float) -> bytes:
    buf = io.BytesIO()
    x = np.random.default_rng(1).normal(0, 10 ** (level_db / 20), 16000 * 20)
    soundfile.write(buf, x, 16000, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def media(kind: str, cut: float = 1.0) -> bytes:
    """The speech encoded as ENCODINGS[kind] (written with PyAV's encoders), its first ``cut`` part only."""
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        data = encode_wav(corpus_file(SPEECH), Path(tmp) / f"speech{ENCODINGS[kind].suffix}", ENCODINGS[kind])
        content = data.read_bytes()
    return content[: int(len(content) * cut)]


def video_without_sound() -> bytes:
    """An MP4 holding only a picture track."""
    import tempfile
    from pathlib import Path

    import av
    with tempfile.TemporaryDirectory() as tmp:
        with av.open(str(Path(tmp) / "mute.mp4"), "w") as out:
            stream = out.add_stream("mpeg4", rate=5)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            for _ in range(10):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
            out.mux(stream.encode(None))
        return (Path(tmp) / "mute.mp4").read_bytes()


def unknown_codec() -> bytes:
    """A Matroska file whose audio track names a codec nobody knows (A_OPUS renamed A_OPUX)."""
    data = media("MKV video (Opus)")
    where = data.index(b"A_OPUS")
    return data[:where] + b"A_OPUX" + data[where + 6:]


TEXT = "transcript"  # expected: a transcript of the speech within a WER bound
#: case → (form field, filename, content or None for "no multipart at all", expected status, expected words)
CASES = {
    "empty body": ("audio", "empty.wav", b"", 400, "the file is empty"),
    "no multipart at all": (None, None, None, 400, "multipart/form-data"),
    "wrong form field": ("file", "a.wav", b"RIFF", 400, "no file in the form field 'audio'"),
    "a text file": ("audio", "notes.wav", b"just some text, not audio\n" * 50, 400, "this is a text file"),
    "an image": ("audio", "photo.mp3", b"\xff\xd8\xff\xe0" + bytes(2000), 400, "this is a JPEG image"),
    "an archive": ("audio", "talks.zip", b"PK\x03\x04" + bytes(2000), 400, "this is a ZIP archive"),
    "MP3": ("audio", "speech.mp3", lambda: media("MP3"), 202, TEXT),
    "M4A": ("audio", "speech.m4a", lambda: media("M4A (AAC)"), 202, TEXT),
    "a video without sound": ("audio", "mute.mp4", video_without_sound, 400, "this video has no sound track"),
    "a truncated MP3": ("audio", "half.mp3", lambda: media("MP3", 0.5), 400,
                        "cut short or damaged: it decodes only up to 0:0"),
    "an M4A cut before its index": ("audio", "cut.m4a", lambda: media("M4A (AAC)", 0.6), 400,
                                    "could not be read: it is damaged or cut short (FFmpeg: moov atom not found)"),
    "an unknown codec": ("audio", "odd.mkv", unknown_codec, 400, "encoded with an unknown codec, which this server "
                                                                  "cannot decode"),
    "truncated header": ("audio", "cut.wav", header()[:22], 400, "truncated WAV header"),
    "header claims more data than present": ("audio", "short.wav", header(data_size=32000) + b"\0" * 1000, 400,
                                             "truncated (was the upload cut short?)"),
    "0 samples": ("audio", "zero.wav", header(data_size=0)[:-8] + b"data\0\0\0\0", 400, "no audio samples"),
    "0 samples, then a LIST chunk": ("audio", "tagged.wav", header(data_size=0, extra=b"LIST" + struct.pack("<I", 3204)
                                     + b"INFO" + b"\x10\x27" * 1600), 400, "no audio samples"),
    "steady noise, no speech (-40 dBFS hiss)": ("audio", "hiss.wav", lambda: noise(-40), 202, "no speech found"),
    "all silence": ("audio", "quiet.wav", silence, 400, "the recording is silent"),
    "48 kHz stereo 24-bit": ("audio", "studio.wav", lambda: encoded(48000, 2, "PCM_24"), 202, TEXT),
    "32-bit float": ("audio", "float.wav", lambda: encoded(44100, 1, "FLOAT"), 202, TEXT),
    "8-bit": ("audio", "old.wav", lambda: encoded(22050, 1, "PCM_U8"), 202, TEXT),
    "8 kHz": ("audio", "phone.wav", lambda: encoded(8000, 1, "PCM_16"), 202, TEXT),
    "over the size limit": ("audio", "long.wav", lambda: encoded(16000, 1, "PCM_16", seconds=150), 413,
                            "larger than this server's limit"),
    "a filename with ../": ("audio", "../../../escape.wav", lambda: encoded(16000, 1, "PCM_16"), 202, TEXT),
    "A-law": ("audio", "alaw.wav", lambda: encoded(8000, 1, "ALAW"), 202, TEXT),
    "IMA ADPCM": ("audio", "adpcm.wav", lambda: encoded(16000, 1, "IMA_ADPCM"), 202, TEXT),
    "MS ADPCM": ("audio", "msadpcm.wav", lambda: encoded(16000, 1, "MS_ADPCM"), 202, TEXT),
    "a WAV encoding nobody knows": ("audio", "odd.wav", lambda: header(tag=0x1234, data_size=1000) + bytes(1000),
                                    400, "unsupported WAV encoding: format code 0x1234"),
    "96 kHz WAV": ("audio", "hires.wav", lambda: encoded(96000, 1, "PCM_16"), 202, TEXT),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-input")
    server = Server(tmp, config=write_config(tmp / "config.toml", server={"max_upload_mb": LIMIT_MB}))
    worker = Worker(server, "only")
    server.wait_workers(1)
    yield server, tmp
    worker.stop()
    server.stop()


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_input_gets_a_result_or_a_clear_4xx(served, case):
    """The case gets its documented outcome: a transcript, 'no speech found', or a 4xx naming the problem."""
    server, tmp = served
    field, filename, content, status, words = CASES[case]
    if field is None:
        response = requests.post(f"{server.url}/api/jobs", data=b"RIFF....WAVE", timeout=30,
                                 headers={"Content-Type": "audio/wav"})
    else:
        body = content() if callable(content) else content
        response = requests.post(f"{server.url}/api/jobs", files={field: (filename, body, "audio/wav")}, timeout=60)
    assert response.status_code == status, response.text
    if status >= 400:
        assert words in response.json()["error"]
        return
    job = server.wait_job(response.json()["id"])
    assert job["status"] == "done"
    if words == TEXT:
        assert wer(manifest()[SPEECH]["reference"], job["transcript"]) < 20
    else:
        assert job["transcript"] == "" and job["note"] == words
    if case == "a filename with ../":
        assert job["name"] == "escape.wav"
        assert not list(tmp.rglob("escape.wav")), "a client-supplied name was used as a path"
        stored = sorted(p.relative_to(server.data_dir).as_posix() for p in server.data_dir.rglob("*") if p.is_file())
        assert f"jobs/{job['id']}/audio.wav" in stored


def test_the_server_still_serves_after_every_bad_input(served):
    """After the whole table the server answers and has kept every upload it accepted."""
    server, _ = served
    assert server.get("/api/workers").json()["workers"][0]["name"] == "only"
    accepted = [c for c, spec in CASES.items() if spec[3] == 202]
    jobs = server.get("/api/jobs").json()["jobs"]
    assert len(jobs) >= len(accepted) and all(j["status"] == "done" for j in jobs)


def test_a_chunked_upload_is_refused_with_411_and_a_clear_message(served):
    """A body sent with Transfer-Encoding: chunked and no Content-Length is not read as an empty form: it gets
    411 saying to send a length; an empty POST gets the multipart message; the server keeps serving."""
    server, _ = served
    boundary = "b0undary"
    wav = encoded(16000, 1, "PCM_16")
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
            f"Content-Type: audio/wav\r\n\r\n").encode() + wav + f"\r\n--{boundary}--\r\n".encode()
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))  # a generator: requests sends it chunked
    response = requests.post(f"{server.url}/api/jobs", data=chunks, timeout=30,
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 411, response.text
    assert "Content-Length" in response.json()["error"] and "chunked" in response.json()["error"]
    empty = requests.post(f"{server.url}/api/jobs", timeout=30)
    assert empty.status_code == 400 and "multipart/form-data" in empty.json()["error"]
    assert server.get("/api/workers").ok


def test_each_form_limit_has_its_own_sentence_and_a_filename_in_any_encoding_is_taken(served):
    """The probe: a 3 MB request whose text field is over the form's field limit was told it was over the 512 MB
    upload limit, and a filename that is not UTF-8 made the file vanish from the form. Now: the field limit and
    the part limit each say what they are, and the upload with a Latin-1 name is taken, its name shown."""
    server, _ = served
    wav = encoded(16000, 1, "PCM_16")
    field = requests.post(f"{server.url}/api/jobs", files={"audio": ("a.wav", wav, "audio/wav")},
                          data={"note": "x" * 3_000_000}, timeout=60)
    assert field.status_code == 413
    assert field.json()["error"].startswith("a form field other than the file holds more than 500 KB")
    parts = [("audio", ("a.wav", wav, "audio/wav"))] + [(f"f{n}", (None, "1")) for n in range(1500)]
    many = requests.post(f"{server.url}/api/jobs", files=parts, timeout=60)
    assert many.status_code == 413 and many.json()["error"].startswith("the form has more than 1000 parts")

    boundary = b"b0undary"
    body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="audio"; filename="\xe9t\xe9 \xff.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n" + wav + b"\r\n--" + boundary + b"--\r\n")
    latin = requests.post(f"{server.url}/api/jobs", data=body, timeout=60,
                          headers={"Content-Type": "multipart/form-data; boundary=b0undary"})
    assert latin.status_code == 202, latin.text
    job = server.wait_job(latin.json()["id"])
    assert job["name"] == "été ÿ.wav" and job["status"] == "done"


def download_name(response: requests.Response) -> tuple[str, str]:
    """The ASCII ``filename`` and the decoded ``filename*`` (the ASCII one when absent) of a download."""
    disposition = response.headers["Content-Disposition"]
    plain = re.search(r'filename="([^"]*)"', disposition).group(1)
    assert plain.isascii() and plain.isprintable()
    extended = re.search(r"filename\*=UTF-8''([A-Za-z0-9%._~!#$&+^`|-]+)", disposition)
    return plain, urllib.parse.unquote(extended.group(1)) if extended else plain


def test_a_job_named_in_any_script_can_be_downloaded_in_every_format(served):
    """The review: an upload named Интервью.wav, or a job renamed 日本語, got an empty reply (the connection closed,
    nothing logged) for every download, because the name went into Content-Disposition, which must be Latin-1.
    Now each download answers 200 with an ASCII ``filename`` and the real name in ``filename*`` (RFC 6266)."""
    server, _ = served
    upload = requests.post(f"{server.url}/api/jobs", timeout=60,
                           files={"audio": ("Интервью.wav", corpus_file(SPEECH).read_bytes(), "audio/wav")})
    assert upload.status_code == 202, upload.text
    job_id = upload.json()["id"]
    assert server.job(job_id)["name"] == "Интервью.wav"
    for name, expected in (("Интервью.wav", "Интервью"), ("日本語", "日本語"), ("Café crème", "Café_crème")):
        if name != "Интервью.wav":
            renamed = requests.patch(f"{server.url}/api/jobs/{job_id}", json={"name": name}, timeout=30)
            assert renamed.status_code == 200, renamed.text
        for ext in ("txt", "srt", "vtt", "json"):
            response = server.get(f"/api/jobs/{job_id}/transcript.{ext}")
            assert response.status_code == 200, response.text
            assert download_name(response)[1] == f"{expected}.{ext}"
            assert download_name(response)[0] in (f"{job_id}.{ext}", f"Cafe_creme.{ext}")
    assert "Traceback" not in server.log()
