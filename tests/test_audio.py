"""Reading WAV files: every PCM layout the server accepts, and a clear message for everything else."""

import struct

import numpy as np
import pytest
import soundfile
from scipy.signal import resample_poly

from server.audio import AudioError, PcmFile, Resampler, convert_to_pcm16, peaks, wav_bytes
from tests.support import corpus_file

SPEECH = "jfk_inaugural_excerpt.wav"


def speech_float() -> np.ndarray:
    return PcmFile(corpus_file(SPEECH))[:].astype(np.float32) / 32768.0


@pytest.mark.parametrize("rate,channels,subtype", [
    (16000, 1, "PCM_16"), (8000, 1, "PCM_16"), (44100, 2, "PCM_16"), (48000, 2, "PCM_24"),
    (22050, 1, "PCM_U8"), (32000, 2, "PCM_32"), (48000, 1, "FLOAT"), (11025, 2, "DOUBLE"),
])
def test_accepted_layouts_convert_to_16k_mono(tmp_path, rate, channels, subtype):
    """Any PCM WAV from 8 to 48 kHz, mono or stereo, 8/16/24/32-bit or float, becomes the same speech at
    16 kHz mono (correlation with the original above 0.97 where the format keeps enough bits)."""
    x16 = speech_float()
    x = resample_poly(x16, rate, 16000).astype(np.float32)
    data = np.stack([x, 0.5 * x], axis=1) if channels == 2 else x
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    soundfile.write(src, data, rate, subtype=subtype)
    converted = convert_to_pcm16(src, dst, block_s=3.0)  # small blocks: block edges must not show
    y = PcmFile(dst)[:].astype(np.float32) / 32768.0
    assert converted.samples == len(y)
    assert abs(len(y) - len(x16)) <= 2
    expected = x16 * (0.75 if channels == 2 else 1.0)
    n = min(len(y), len(expected))
    if rate < 16000:  # band-limited: compare below the lower Nyquist frequency only
        expected = resample_poly(resample_poly(expected, rate, 16000), 16000, rate)[:n]
    corr = np.corrcoef(y[:n], expected[:n])[0, 1]
    assert corr > (0.9 if subtype == "PCM_U8" else 0.97)


def test_blockwise_conversion_equals_one_pass(tmp_path):
    """Converting in blocks gives exactly the samples of one resample over the whole file."""
    rng = np.random.default_rng(0)
    x = (rng.normal(0, 0.1, 44100 * 7)).astype(np.float32)
    soundfile.write(tmp_path / "a.wav", x, 44100, subtype="FLOAT")
    convert_to_pcm16(tmp_path / "a.wav", tmp_path / "b.wav", block_s=0.5)
    y = PcmFile(tmp_path / "b.wav")[:]
    reference = (np.clip(resample_poly(x, 160, 441), -1, 32767 / 32768) * 32768).astype(np.int16)
    assert np.array_equal(y, reference)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_streamed_resampling_equals_one_pass(rate):
    """The one resampler (uploads block by block, live recordings chunk by chunk) gives exactly the samples of
    one ``resample_poly`` over the whole recording, however the input is cut up."""
    x = resample_poly(speech_float()[: 16000 * 6], rate, 16000).astype(np.float32)
    whole = Resampler(rate)
    at_once = np.concatenate([whole.feed(x), whole.finish()])
    streamed, parts, first = Resampler(rate), [], 0
    for size in np.random.default_rng(rate).integers(1, rate // 2, size=40):
        parts.append(streamed.feed(x[first : first + size]))
        first += size
    parts += [streamed.feed(x[first:]), streamed.finish()]
    reference = x if rate == 16000 else resample_poly(x, 16000 // np.gcd(16000, rate), rate // np.gcd(16000, rate))
    assert np.array_equal(np.concatenate(parts), at_once) and np.array_equal(at_once, reference)


def riff(fmt_body: bytes, data: bytes, data_size: int | None = None, extra: bytes = b"") -> bytes:
    size = len(data) if data_size is None else data_size
    chunks = b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body + extra + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def fmt(tag=1, channels=1, rate=16000, bits=16) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


GOOD = np.zeros(1600, np.int16).tobytes()
BAD = {
    "empty": (b"", "empty"),
    "not a wav": (b"hello, this is text and not audio" * 10, "not a WAV"),
    "truncated header": (riff(fmt(), GOOD)[:30], "truncated"),
    "data before fmt": (b"RIFF" + struct.pack("<I", 20) + b"WAVEdata" + struct.pack("<I", 4) + b"\0\0\0\0",
                        "before the 'fmt '"),
    "claims more data": (riff(fmt(), GOOD, data_size=10 * len(GOOD)), "truncated"),
    "zero samples": (riff(fmt(), b""), "no audio samples"),
    "zero samples then a LIST chunk": (riff(fmt(), b"", data_size=0) + b"LIST" + struct.pack("<I", 16) +
                                       b"INFOISFT\4\0\0\0Lavf", "no audio samples"),
    "a-law": (riff(fmt(tag=6, bits=8), GOOD), "A-law"),
    "ms adpcm": (riff(fmt(tag=2, bits=4), GOOD), "ADPCM"),
    "12-bit pcm": (riff(fmt(bits=12), GOOD), "12 bits"),
    "96 kHz": (riff(fmt(rate=96000), GOOD), "96000 Hz"),
    "4 kHz": (riff(fmt(rate=4000), GOOD), "4000 Hz"),
    "rifx": (b"RIFX" + riff(fmt(), GOOD)[4:], "RIFX"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_files_are_refused_with_a_reason(tmp_path, name):
    """Each malformed or unsupported file raises AudioError whose message names the problem."""
    content, words = BAD[name]
    src = tmp_path / "in.wav"
    src.write_bytes(content)
    with pytest.raises(AudioError, match=words):
        convert_to_pcm16(src, tmp_path / "out.wav")


def test_unknown_data_size_from_a_streaming_writer_means_until_the_end(tmp_path):
    """Writers that cannot seek put 0xFFFFFFFF in the data size; the samples present are used."""
    src = tmp_path / "in.wav"
    src.write_bytes(riff(fmt(), GOOD, data_size=0xFFFFFFFF))
    assert convert_to_pcm16(src, tmp_path / "out.wav").samples == 1600


def test_a_zero_data_size_means_until_the_end_only_when_no_chunk_follows(tmp_path):
    """A streaming writer's header with data size 0 is followed by samples: they are used. A finished file's
    empty data chunk followed by a LIST chunk holds no samples: the LIST bytes are never read as audio."""
    src = tmp_path / "in.wav"
    src.write_bytes(riff(fmt(), GOOD, data_size=0))
    assert convert_to_pcm16(src, tmp_path / "out.wav").samples == 1600
    src.write_bytes(riff(fmt(), b"", data_size=0) + b"LIST" + struct.pack("<I", 4 + len(GOOD)) + b"INFO" + GOOD)
    with pytest.raises(AudioError, match="no audio samples"):
        convert_to_pcm16(src, tmp_path / "out.wav")


def test_unknown_chunks_are_skipped(tmp_path):
    """A LIST chunk (odd length, padded) between fmt and data is stepped over."""
    src = tmp_path / "in.wav"
    src.write_bytes(riff(fmt(), GOOD, extra=b"LIST" + struct.pack("<I", 5) + b"abcde\0"))
    assert convert_to_pcm16(src, tmp_path / "out.wav").samples == 1600


def test_too_long_a_recording_is_refused_before_decoding(tmp_path):
    """The duration limit is checked from the header."""
    src = tmp_path / "in.wav"
    src.write_bytes(riff(fmt(), np.zeros(16000 * 3, np.int16).tobytes()))
    with pytest.raises(AudioError, match="at most"):
        convert_to_pcm16(src, tmp_path / "out.wav", max_duration_s=2.0)


def test_slice_bytes_round_trip(tmp_path):
    """What the server sends a worker is a plain 16 kHz mono WAV holding exactly the samples."""
    samples = (np.arange(1000) - 500).astype(np.int16)
    path = tmp_path / "slice.wav"
    path.write_bytes(wav_bytes(samples))
    assert np.array_equal(PcmFile(path)[:], samples)


def test_pcm_file_reads_the_samples_in_the_file(tmp_path):
    """PcmFile slices give exactly the samples the file holds, at the edges and past the end too; anything but
    a plain slice is refused."""
    path = corpus_file(SPEECH)
    stored, pcm = soundfile.read(path, dtype="int16")[0], PcmFile(path)
    assert len(pcm) == len(stored) and pcm.dtype == np.int16
    for a, b in [(0, 1000), (12345, 54321), (len(stored) - 10, len(stored) + 500), (500, 400)]:
        assert np.array_equal(pcm[a:b], stored[a:b])
    assert np.array_equal(pcm[:], stored)
    with pytest.raises(TypeError):
        pcm[::2]


def test_peaks_of_a_file_read_block_by_block_equal_those_of_its_samples(tmp_path):
    """The waveform of a stored recording is read a few stretches at a time (never the whole file in memory)
    and is the same as from all its samples at once."""
    rng = np.random.default_rng(7)
    samples = rng.integers(-32768, 32767, 48_017).astype("<i2")
    path = tmp_path / "audio.wav"
    path.write_bytes(wav_bytes(samples))
    stored = PcmFile(path)
    for bins in (1, 50, 1000, 48_017):
        assert peaks(stored, bins, block_bins=7) == peaks(samples, bins, block_bins=10**9)
