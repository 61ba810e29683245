"""Any audio or video upload (server/media.py): every container and codec people have, encoded here from corpus
WAVs with PyAV's own encoders, transcribed as well as the WAV itself; every kind of bad file refused with its
own sentence; the decoder's per-channel blocks."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import audio, media
from server.audio import AudioError
from server.channels import ChannelLevels
from tests.media_files import ENCODINGS, encode_wav
from tests.support import PYTHON, ROOT, Server, Worker, corpus_file, manifest, wer

SPEECH = "bush_radio_address_2008-11-01.wav"  # 127 s, 375 words: one word is 0.27 points of WER
SHORT = "jfk_inaugural_excerpt.wav"  # 11 s
MAX_WER_GAP = 1.5  # points: lossy codecs at their default bitrates change a word or five; a bad decode changes most
BOUND_S = 1.5  # longest a request may wait while an upload is decoded (generous: 2 shared cores)


@pytest.fixture(scope="module")
def encoded(tmp_path_factory) -> dict[str, Path]:
    """SPEECH in every container and codec of ENCODINGS (two at a time: PyAV's encoders let go of the GIL)."""
    folder = tmp_path_factory.mktemp("encoded")
    with ThreadPoolExecutor(2) as pool:
        paths = pool.map(lambda item: encode_wav(corpus_file(SPEECH), folder / (re.sub(r"\W+", "-", item[0]) +
                                                                                item[1].suffix), item[1]),
                         ENCODINGS.items())
        return dict(zip(ENCODINGS, paths, strict=True))


def test_every_container_and_codec_is_transcribed_within_a_point_of_the_wav(encoded, tmp_path):
    """Each file (MP3, M4A, Ogg Vorbis, Ogg and WebM Opus, FLAC, AIFF, MP4, MOV and MKV with a picture track)
    is accepted, decoded to the recording's full length and transcribed by a real worker with a word error rate
    within MAX_WER_GAP points of the same recording uploaded as WAV."""
    server = Server(tmp_path)
    worker = Worker(server, "codecs", "--slots", "8", threads=2)
    try:
        server.wait_workers(1)
        jobs = {"WAV": server.submit(corpus_file(SPEECH))}
        jobs.update({name: server.submit(path) for name, path in encoded.items()})
        done = {name: server.wait_job(job, timeout=600) for name, job in jobs.items()}
    finally:
        worker.stop()
        server.stop()
    reference = manifest()[SPEECH]["reference"]
    rates = {name: wer(reference, job["transcript"]) for name, job in done.items()}
    seconds = float(manifest()[SPEECH]["seconds"])
    for name, job in done.items():
        assert job["status"] == "done", (name, job)
        assert abs(job["duration"] - seconds) < 0.1, (name, job["duration"])
        assert abs(rates[name] - rates["WAV"]) <= MAX_WER_GAP, (name, rates)


def test_the_server_keeps_answering_while_it_decodes(tmp_path):
    """While a 10-minute FLAC is decoded, split and queued, requests are answered within BOUND_S every time
    (decoding runs off the event loop)."""
    flac = encode_wav(corpus_file(SPEECH), tmp_path / "long.flac", ENCODINGS["FLAC"], repeat=5)
    server = Server(tmp_path)
    waits: list[float] = []
    try:
        with ThreadPoolExecutor(1) as pool:
            upload = pool.submit(server.upload, flac)
            while not upload.done():
                t0 = time.monotonic()
                assert server.get("/api/workers").ok
                waits.append(time.monotonic() - t0)
                time.sleep(0.05)
            assert upload.result().status_code == 202
        assert len(waits) >= 5, f"too few polls to say anything: {waits}"
        assert max(waits) < BOUND_S, f"a request waited {max(waits):.2f} s while the FLAC was decoded"
    finally:
        server.stop()


# --- straight through the decoder: each bad file's sentence ------------------------------------------------


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> dict[str, bytes]:
    """SHORT as MP3, M4A and MKV (Opus) bytes."""
    folder = tmp_path_factory.mktemp("short")
    picks = {"mp3": ENCODINGS["MP3"], "m4a": ENCODINGS["M4A (AAC)"], "mkv": ENCODINGS["MKV video (Opus)"]}
    return {k: encode_wav(corpus_file(SHORT), folder / f"short.{k}", enc).read_bytes() for k, enc in picks.items()}


def convert(tmp_path: Path, content: bytes, **kw) -> audio.Converted:
    src = tmp_path / "upload"
    src.write_bytes(content)
    return media.convert_upload(src, tmp_path / "out.wav", **kw)


def test_a_video_without_sound_is_refused_as_such(tmp_path):
    """An MP4 holding only a picture track: 'this video has no sound track'."""
    path = encode_wav(corpus_file(SHORT), tmp_path / "movie.mp4", ENCODINGS["MP4 video (AAC)"])
    import av
    with av.open(str(path)) as src, av.open(str(tmp_path / "mute.mp4"), "w") as out:  # the picture track alone
        picture = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = picture
                out.mux(packet)
    with pytest.raises(AudioError, match="this video has no sound track"):
        convert(tmp_path, (tmp_path / "mute.mp4").read_bytes())


def test_a_truncated_mp3_says_how_far_it_decodes(tmp_path, short):
    """Half an MP3 (its header states the whole length): refused, saying it decodes only up to 0:05 of 0:11."""
    data = short["mp3"]
    with pytest.raises(AudioError, match=r"cut short or damaged: it decodes only up to 0:0[45] of the 0:1[01]"):
        convert(tmp_path, data[: len(data) // 2])


def test_an_m4a_cut_before_its_index_is_refused_as_damaged(tmp_path, short):
    """An M4A whose index (moov, written last) is cut off: FFmpeg's own words say what is missing."""
    data = short["m4a"]
    with pytest.raises(AudioError, match=r"could not be read: it is damaged or cut short \(FFmpeg: moov atom"):
        convert(tmp_path, data[: len(data) * 2 // 3])


def test_a_corrupt_m4a_says_where_decoding_stopped(tmp_path, short):
    """An M4A with a stretch of its audio data overwritten: 'decoding stopped at m:ss of m:ss'."""
    data = bytearray(short["m4a"])
    start = len(data) // 3
    data[start:start + 20000] = b"\xab" * 20000
    with pytest.raises(AudioError, match=r"damaged: decoding stopped at 0:0\d of 0:1\d"):
        convert(tmp_path, bytes(data))


def test_an_unknown_codec_is_named_unsupported(tmp_path, short):
    """A Matroska file whose track names a codec FFmpeg does not know (A_OPUS renamed A_OPUX)."""
    data = short["mkv"]
    where = data.index(b"A_OPUS")
    with pytest.raises(AudioError, match="encoded with an unknown codec, which this server cannot decode"):
        convert(tmp_path, data[:where] + b"A_OPUX" + data[where + 6:])


def test_a_recording_longer_than_the_limit_is_refused_before_decoding(tmp_path, short):
    """The length a file states is checked before any decoding."""
    with pytest.raises(AudioError, match=r"lasts 0.2 min; this server accepts at most 0 min"):
        convert(tmp_path, short["mp3"], max_duration_s=6.0)


@pytest.mark.parametrize("content, words", [
    (b"Dear all,\nthe minutes of today's meeting are attached.\n" * 30, "this is a text file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(200), "this is a PNG image"),
    (b"PK\x03\x04" + bytes(200), "this is a ZIP archive"),
    (b"%PDF-1.7\n" + bytes(200), "this is a PDF document"),
    (b"\x00\x01\x02\x03garbage" * 40, "not an audio or video file this server recognises"),
])
def test_files_that_are_no_audio_are_named(tmp_path, content, words):
    """Text, images, archives, documents and unknown bytes: each refused with a sentence naming what it is."""
    with pytest.raises(AudioError, match=words):
        convert(tmp_path, content)


def wav_with(tag: int, body: bytes, channels: int = 1, rate: int = 8000, bits: int = 8) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    data = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(data)) + b"WAVE" + data


def test_wav_encodings_the_wav_reader_leaves_out_go_through_ffmpeg(tmp_path):
    """A µ-law WAV (the WAV reader takes only PCM and float) is decoded by FFmpeg; a WAV of a format code
    nobody knows keeps the WAV reader's precise message."""
    tone = (np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440) * 100 + 128).astype(np.uint8).tobytes()
    converted = convert(tmp_path, wav_with(0x0007, tone))
    assert converted.samples == 16000 and "pcm_mulaw" in converted.source.describe()
    with pytest.raises(AudioError, match="unsupported WAV encoding: format code 0x1234"):
        convert(tmp_path, wav_with(0x1234, tone))


class Blocks:
    """What a ChannelLevels is fed (its ``add``), kept whole."""

    def __init__(self):
        self.fed: list[tuple[int, np.ndarray, int]] = []

    def add(self, first: int, frames: np.ndarray, rate: int) -> None:
        self.fed.append((first, frames.copy(), rate))

    def whole(self) -> np.ndarray:
        assert [first for first, _, _ in self.fed] == list(np.cumsum([0] + [len(f) for _, f, _ in self.fed])[:-1])
        assert {rate for _, _, rate in self.fed} == {audio.TARGET_RATE}
        return np.concatenate([frames for _, frames, _ in self.fed])


@pytest.mark.parametrize("channels", [3, 6, 8, 9, 16, media.MAX_CHANNELS])
def test_every_channel_count_up_to_the_limit_is_decoded(tmp_path, channels):
    """µ-law WAVs of 3 to MAX_CHANNELS channels (FFmpeg decodes them): the channel levels are fed every channel
    and the length is right (PyAV crashes reading planar frames of 8 or more channels; the decoder reads packed
    ones)."""
    second = np.tile((np.sin(np.arange(8000) / 8000 * 2 * np.pi * 440) * 100 + 128).astype(np.uint8), channels)
    blocks = Blocks()
    converted = convert(tmp_path, wav_with(0x0007, second.tobytes(), channels=channels), channel_levels=blocks)
    assert converted.samples == 16000 and blocks.whole().shape == (16000, channels)
    with pytest.raises(AudioError, match="unsupported channel count"):
        convert(tmp_path, wav_with(0x0007, bytes(8 * (media.MAX_CHANNELS + 1)), channels=media.MAX_CHANNELS + 1))


def test_the_channel_levels_are_fed_every_channel_before_the_mixdown(tmp_path):
    """A stereo FLAC with speech on the left and silence on the right: the channel levels (server/channels.py)
    are fed 16 kHz blocks of frames × 2 channels, in order, covering the whole recording, the left one loud and
    the right one silent; the stored mono file is their mean, and real ChannelLevels find the left louder."""
    speech = audio.PcmFile(corpus_file(SHORT))[:].astype(np.float32) / 32768.0
    import av
    with av.open(str(tmp_path / "lr.flac"), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=16000, layout="stereo")
        frame = av.AudioFrame.from_ndarray(np.stack([speech, np.zeros_like(speech)]), format="fltp",
                                           layout="stereo")
        frame.sample_rate = 16000
        for f in av.AudioResampler(format="s16", layout="stereo", rate=16000).resample(frame):
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    blocks = Blocks()
    converted = media.convert_upload(tmp_path / "lr.flac", tmp_path / "out.wav", channel_levels=blocks)
    seen = blocks.whole()
    assert seen.shape == (converted.samples, 2) and converted.samples == len(speech)
    assert np.abs(seen[:, 0]).max() > 0.1 and np.abs(seen[:, 1]).max() == 0.0
    stored = audio.PcmFile(tmp_path / "out.wav")[:].astype(np.float32) / 32768.0
    assert np.abs(stored - seen.mean(axis=1)).max() < 2 / 32768
    levels = ChannelLevels()
    media.convert_upload(tmp_path / "lr.flac", tmp_path / "out.wav", channel_levels=levels)
    loudest = levels.levels_db().max(axis=0)
    assert loudest[0] > -40 and loudest[1] < loudest[0] - 40, loudest


@pytest.mark.parametrize("magic", [b"ID3\x04\x00\x00\x00\x00\x00\x00", b"OggS\x00\x02", b"fLaC",
                                   b"\x1a\x45\xdf\xa3", b"\x00\x00\x00\x18ftypmp42", b"FORM\x00\x00\x10\x00AIFF",
                                   b"\xff\xfb\x90\x64"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rest=st.binary(min_size=0, max_size=4096))
def test_garbage_behind_a_known_signature_gets_a_sentence_never_a_crash(tmp_path, magic, rest):
    """Whatever follows a container's first bytes, decoding returns audio or raises AudioError (a 400 with a
    sentence): no other exception, no hang."""
    try:
        convert(tmp_path, magic + rest, max_duration_s=600.0)
    except AudioError as exc:
        assert str(exc)


PEAK_SCRIPT = """
import json, struct, sys
from pathlib import Path
from server import media
from server.audio import AudioError
from tests.media_files import one_block_mkv
from tests.support import corpus_file

def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))

folder = Path(sys.argv[1])
big = one_block_mkv(corpus_file(sys.argv[2]), folder / "big.mkv", float(sys.argv[3]))
small = one_block_mkv(corpus_file(sys.argv[2]), folder / "small.mkv", 1.0)
media.convert_upload(small, folder / "out.wav")  # FFmpeg's decoders and numpy warmed up: not counted
data = big.read_bytes()
at = data.index(bytes.fromhex("448988")) + 3  # the Segment's Duration (ms, 64-bit float): 1 s, a lie
lying = folder / "lying.mkv"
lying.write_bytes(data[:at] + struct.pack(">d", 1000.0) + data[at + 8:])
before = peak_mb()
try:
    media.convert_upload(lying, folder / "out.wav", max_duration_s=float(sys.argv[3]) / 2)
    refusal = None
except AudioError as exc:
    refusal = str(exc)
converted = media.convert_upload(big, folder / "out.wav", max_duration_s=float(sys.argv[3]) + 1)
print(json.dumps({"growth_mb": peak_mb() - before, "samples": converted.samples, "refusal": refusal,
                  "file_mb": big.stat().st_size / 2**20}))
"""


def test_a_recording_in_one_huge_block_is_decoded_in_bounded_memory(tmp_path):
    """An 8 MB Matroska file holding 34 minutes of 4 kHz 8-bit PCM in one block (one packet, one decoded frame)
    is resampled a second at a time: the process's peak memory grows by less than 64 MB (the whole frame
    resampled at once took 1.3 GB), the output has every sample, and the same file claiming to last 1 s, given
    half its length as the limit, is refused on its frame's length before any of it is resampled. Measured in a
    fresh process by the kernel's high-water mark."""
    seconds = 8 * 2**20 / 4000
    result = subprocess.run([PYTHON, "-c", PEAK_SCRIPT, str(tmp_path), SHORT, str(seconds)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.splitlines()[-1])
    assert measured["file_mb"] > 7.9
    assert measured["samples"] == round(seconds * audio.TARGET_RATE)
    assert measured["refusal"] == "the recording lasts more than 17 min; this server accepts at most 17 min"
    assert measured["growth_mb"] < 64, measured
