"""The 16 kHz mono 16-bit audio everything else uses: its one sample rate (:data:`TARGET_RATE`), its one
resampler (:class:`Resampler`), reading and writing its WAV files (:class:`PcmFile`, :class:`PcmWriter`,
:func:`wav_bytes`), and the conversion of an uploaded PCM or float WAV to it (:func:`convert_to_pcm16`).

With :mod:`server.media` (every other audio or video format, through PyAV), this is the only module that reads
audio files. It parses the RIFF header itself, so every way a file can be wrong gets its own message
(:class:`AudioError`), and converts block by block: a 60-minute upload is never held in memory whole, as bytes
or as floats. Files are read with plain reads, not memory maps: every page of a map that is read stays in the
process's resident set until the map is closed, while read pages only pass through the page cache
(``bench/memory.py`` measures the server's peak; ``bench/results/memory.md``).
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

import numpy as np
from scipy.signal import resample_poly

if TYPE_CHECKING:
    from .channels import ChannelLevels

TARGET_RATE = 16000
MIN_RATE, MAX_RATE = 8000, 48000
MAX_CHANNELS = 8

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
#: Names of WAV encodings people actually meet, for the error message.
_ENCODING_NAMES = {
    0x0002: "Microsoft ADPCM", 0x0006: "A-law", 0x0007: "µ-law", 0x0011: "IMA ADPCM", 0x0031: "GSM 6.10",
    0x0055: "MP3", 0x0161: "WMA", 0x00FF: "AAC",
}
#: Streaming WAV writers put one of these in the data size when they do not know it yet. 0 is also the size of
#: a genuinely empty data chunk: it means "unknown" only when no further chunk follows it (see
#: :func:`_chunk_follows`).
_UNKNOWN_SIZE, _MAYBE_UNKNOWN_SIZE = 0xFFFFFFFF, 0


class AudioError(ValueError):
    """The upload is not audio this server can use; the message says why, in words a user understands."""


class WavUnsupported(AudioError):
    """A well-formed WAV whose samples this reader does not take (a compressed encoding, a rate outside
    8–48 kHz, …): :func:`server.media.convert_upload` hands it to FFmpeg, and uses this message if FFmpeg
    has no decoder for it either."""


@dataclass(frozen=True)
class WavFormat:
    """What a WAV header says about the samples that follow."""

    encoding: str  # "pcm" or "float"
    channels: int
    sample_rate: int
    bits: int
    data_offset: int
    frames: int

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.bits // 8

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def describe(self) -> str:
        kind = "float" if self.encoding == "float" else "bit PCM"
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.sample_rate} Hz {layout} {self.bits}-{kind}"


def read_wav_format(f: BinaryIO, size: int) -> WavFormat:
    """Parse a RIFF/WAVE header from a file of ``size`` bytes; raise :class:`AudioError` for anything else."""
    head = f.read(12)
    if size == 0:
        raise AudioError("the file is empty")
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        if head[:4] in (b"RIFX", b"RF64"):
            raise AudioError(f"{head[:4].decode()} WAV files are not supported; save as a standard RIFF WAV")
        raise AudioError("not a WAV file (it does not start with a RIFF/WAVE header)")
    fmt = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            if fmt is None:
                raise AudioError("truncated WAV header: no 'fmt ' chunk")
            raise AudioError("truncated WAV file: no 'data' chunk")
        chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if chunk_id == b"data":
            if fmt is None:
                raise AudioError("broken WAV header: the 'data' chunk comes before the 'fmt ' chunk")
            encoding, channels, rate, bits = fmt
            block = channels * bits // 8
            available = size - f.tell()
            if chunk_size == _UNKNOWN_SIZE or (chunk_size == _MAYBE_UNKNOWN_SIZE and not _chunk_follows(f, size)):
                chunk_size = available
            elif chunk_size > available:
                raise AudioError(
                    f"the WAV header promises {chunk_size // block / rate:.2f} s of audio but the file holds only "
                    f"{available // block / rate:.2f} s: it is truncated (was the upload cut short?)")
            return WavFormat(encoding, channels, rate, bits, f.tell(), chunk_size // block)
        if f.tell() + chunk_size > size:
            part = "header" if chunk_id == b"fmt " else "file"
            name = chunk_id.decode("latin-1")
            raise AudioError(f"truncated WAV {part}: its '{name}' chunk runs past the end of the file")
        if chunk_id == b"fmt ":
            body = f.read(chunk_size)
            if len(body) < 16:
                raise AudioError("broken WAV header: the 'fmt ' chunk is too short")
            fmt = _parse_fmt(body)
        else:
            f.seek(chunk_size, io.SEEK_CUR)
        f.seek(chunk_size & 1, io.SEEK_CUR)  # chunks are padded to an even length


def _chunk_follows(f: BinaryIO, size: int) -> bool:
    """Does a well-formed RIFF chunk header start at the current position (which is kept)? A 0-size data chunk
    followed by one (say a LIST chunk) is really empty; after a streaming writer's header come samples."""
    here = f.tell()
    head = f.read(8)
    f.seek(here)
    if len(head) < 8:
        return False
    chunk_id, chunk_size = head[:4], struct.unpack("<I", head[4:])[0]
    return all(32 <= b < 127 for b in chunk_id) and here + 8 + chunk_size <= size + 1  # +1: the pad byte


def _parse_fmt(body: bytes) -> tuple[str, int, int, int]:
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _EXTENSIBLE:
        if len(body) < 40:
            raise AudioError("broken WAV header: WAVE_FORMAT_EXTENSIBLE without its sub-format")
        tag = struct.unpack("<H", body[24:26])[0]
    if tag not in (_PCM, _FLOAT):
        name = _ENCODING_NAMES.get(tag, f"format code 0x{tag:04X}")
        raise WavUnsupported(f"unsupported WAV encoding: {name}; only uncompressed PCM (8/16/24/32-bit "
                             "integer) and 32-bit float are accepted")
    encoding = "float" if tag == _FLOAT else "pcm"
    if encoding == "pcm" and bits not in (8, 16, 24, 32):
        raise WavUnsupported(f"unsupported PCM sample size: {bits} bits (8, 16, 24 and 32 are accepted)")
    if encoding == "float" and bits not in (32, 64):
        raise WavUnsupported(f"unsupported float sample size: {bits} bits (32 and 64 are accepted)")
    if not 1 <= channels <= MAX_CHANNELS:
        raise WavUnsupported(f"unsupported channel count: {channels}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise WavUnsupported(f"unsupported sample rate: {rate} Hz (8000 to 48000 Hz are accepted)")
    if block_align and block_align != channels * bits // 8:
        raise AudioError("broken WAV header: block alignment does not match channels and sample size")
    return encoding, channels, rate, bits


def _to_float_frames(raw: np.ndarray, fmt: WavFormat) -> np.ndarray:
    """Raw little-endian bytes of whole frames → float32 frames (n, channels) in [-1, 1]."""
    if fmt.encoding == "float":
        x = raw.view("<f4" if fmt.bits == 32 else "<f8").astype(np.float32)
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    elif fmt.bits == 8:
        x = (raw.astype(np.float32) - 128.0) / 128.0  # 8-bit WAV is unsigned
    elif fmt.bits == 16:
        x = raw.view("<i2").astype(np.float32) / 32768.0
    elif fmt.bits == 24:
        b = raw.reshape(-1, 3).astype(np.int32)
        x = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8).astype(np.float32) / 8388608.0
    else:
        x = raw.view("<i4").astype(np.float32) / 2147483648.0
    return x.reshape(-1, fmt.channels)


class Resampler:
    """Mono float samples at ``rate`` in, as they come; float samples at :data:`TARGET_RATE` out, identical to
    one ``resample_poly`` over the whole recording however the input is cut up. The one resampler of WAV
    uploads (:func:`convert_to_pcm16`, block by block) and of live recordings (``live.LiveSession``, chunk by
    chunk), so both store the same samples for the same audio.

    ``resample_poly``'s filter is shorter than ``pad`` input frames, so an output sample depends only on the input
    within ``pad`` frames of it. Output is given for every input frame that has ``pad`` frames after it, in
    blocks starting on multiples of ``down`` (each maps to a whole number of output samples), each resampled
    with ``pad`` frames of context on both sides and trimmed back; :meth:`finish` gives the rest once the end
    of the recording is known.
    """

    def __init__(self, rate: int):
        g = math.gcd(TARGET_RATE, rate)
        self.up, self.down = TARGET_RATE // g, rate // g
        self.pad = self.down * math.ceil(64 / self.down)  # more than the half-length of the filter, in input frames
        self.buffer = np.zeros(0, np.float32)  # input from frame ``offset`` on
        self.offset = 0
        self.next = 0  # first input frame not yet resampled

    def feed(self, x: np.ndarray) -> np.ndarray:
        """The output now certain, given the next input samples."""
        if self.up == self.down:
            return x
        self.buffer = np.concatenate((self.buffer, x))
        end = (self.offset + len(self.buffer) - self.pad) // self.down * self.down
        return self._emit(end, end + self.pad) if end > self.next else np.zeros(0, np.float32)

    def finish(self) -> np.ndarray:
        """The last output, now that no more input will come."""
        total = self.offset + len(self.buffer)
        if self.up == self.down or total <= self.next:
            return np.zeros(0, np.float32)
        return self._emit(total, total)

    def _emit(self, end: int, hi: int) -> np.ndarray:
        lo = max(0, self.next - self.pad)
        y = resample_poly(self.buffer[lo - self.offset : hi - self.offset], self.up, self.down)
        first = (self.next - lo) * self.up // self.down
        out = y[first : first + math.ceil((end - self.next) * self.up / self.down)]
        self.next = end
        keep_from = max(0, self.next - self.pad)
        self.buffer = self.buffer[keep_from - self.offset :]
        self.offset = keep_from
        return out


class SourceFormat(Protocol):
    """What an upload was, as its reader found it (a :class:`WavFormat`, or a ``media.MediaFormat``)."""

    channels: int

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Converted:
    """What :func:`convert_to_pcm16` (or :func:`server.media.decode`) wrote."""

    source: SourceFormat
    samples: int  # at 16 kHz

    @property
    def duration_s(self) -> float:
        return self.samples / TARGET_RATE


def convert_to_pcm16(src: Path, dst: Path, max_duration_s: float | None = None,
                     block_s: float = 30.0, channel_levels: ChannelLevels | None = None) -> Converted:
    """Check ``src`` is a usable WAV and write it to ``dst`` as 16 kHz mono 16-bit PCM, block by block.
    ``channel_levels``, when given, is fed each block of a multichannel recording's frames before they are
    mixed down (``channels.py``: who speaks on which channel)."""
    size = src.stat().st_size
    with open(src, "rb") as f:
        fmt = read_wav_format(f, size)
    if fmt.frames == 0:
        raise AudioError("the WAV file holds no audio samples (0 frames)")
    if max_duration_s is not None and fmt.duration_s > max_duration_s:
        raise AudioError(f"the recording lasts {fmt.duration_s / 60:.1f} min; this server accepts at most "
                         f"{max_duration_s / 60:.0f} min")
    block = max(1, int(block_s * fmt.sample_rate))
    resampler = Resampler(fmt.sample_rate)
    with open(src, "rb") as f, PcmWriter(dst) as out:
        f.seek(fmt.data_offset)
        for first in range(0, fmt.frames, block):
            n = min(block, fmt.frames - first)
            x = _to_float_frames(np.frombuffer(f.read(n * fmt.frame_bytes), dtype=np.uint8), fmt)
            if fmt.channels > 1 and channel_levels is not None:
                channel_levels.add(first, x, fmt.sample_rate)
            out.append(float_to_pcm16(resampler.feed(x[:, 0] if fmt.channels == 1 else x.mean(axis=1))))
        out.append(float_to_pcm16(resampler.finish()))
    return Converted(fmt, out.samples)


def float_to_pcm16(x: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] → int16, clipped."""
    return (np.clip(x, -1.0, 32767 / 32768) * 32768.0).astype("<i2")


class PcmFile:
    """The samples of a 16 kHz mono 16-bit WAV file (one :class:`PcmWriter` wrote), read on demand with plain
    reads: ``pcm[a:b]`` reads those samples from disk as int16, ``pcm[:]`` all of them. It looks enough like an
    array (``len``, ``dtype``, slicing) for the splitter's block-by-block level pass, and holds no open file or
    map between reads."""

    dtype = np.dtype("<i2")

    def __init__(self, path: Path):
        with open(path, "rb") as f:
            fmt = read_wav_format(f, path.stat().st_size)
        if (fmt.encoding, fmt.channels, fmt.sample_rate, fmt.bits) != ("pcm", 1, TARGET_RATE, 16):
            raise AudioError(f"{path.name} is not 16 kHz mono 16-bit PCM")
        self.path, self.offset, self.frames = path, fmt.data_offset, fmt.frames

    def __len__(self) -> int:
        return self.frames

    def __getitem__(self, span: slice) -> np.ndarray:
        if not isinstance(span, slice) or span.step not in (None, 1):
            raise TypeError("PcmFile takes a plain slice, e.g. pcm[start:end]")
        start, end, _ = span.indices(self.frames)
        if end <= start:
            return np.zeros(0, dtype=self.dtype)
        with open(self.path, "rb") as f:
            f.seek(self.offset + 2 * start)
            return np.frombuffer(f.read(2 * (end - start)), dtype=self.dtype)


def wav_header(samples: int) -> bytes:
    """The 44-byte header Python's ``wave`` module writes for ``samples`` 16 kHz mono 16-bit samples."""
    data = 2 * samples
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data, b"WAVE", b"fmt ", 16, _PCM, 1, TARGET_RATE,
                       2 * TARGET_RATE, 2, 16, b"data", data)


def wav_bytes(samples: np.ndarray) -> bytes:
    """A complete 16 kHz mono 16-bit WAV file in memory (what a worker receives for one slice)."""
    data = np.asarray(samples, dtype="<i2").tobytes()
    return wav_header(len(data) // 2) + data


class PcmWriter:
    """A 16 kHz mono 16-bit WAV file being written (an upload's copy, a live recording as it grows). Its header
    always states what the file holds, so it can be read (slices, waveform) at any moment and survives a crash;
    complete, it is byte for byte what Python's ``wave`` module (and :func:`wav_bytes`) writes for the same
    samples. ``exclusive``: a fresh file, never one that is already there."""

    def __init__(self, path: Path, exclusive: bool = False):
        self.path = path
        self.samples = 0
        self._file = open(path, "xb" if exclusive else "wb")
        self._file.write(wav_header(0))
        self._file.flush()

    def append(self, samples: np.ndarray) -> None:
        """Add samples at the end, then state the new length in the header."""
        self._file.seek(0, io.SEEK_END)
        self._file.write(np.asarray(samples, dtype="<i2").tobytes())
        self.samples += len(samples)
        self._file.seek(0)
        self._file.write(wav_header(self.samples))
        self._file.flush()  # readers read the file: they must see what the header promises

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PcmWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def repair(path: Path) -> int:
        """After a crash: cut off what was written after the header's last update; returns the samples."""
        with open(path, "r+b") as f:
            fmt = read_wav_format(f, path.stat().st_size)
            f.truncate(fmt.data_offset + 2 * fmt.frames)
        return fmt.frames


def peaks(samples: PcmFile | np.ndarray, bins: int, block_bins: int = 64) -> tuple[list[float], list[float]]:
    """The lowest and highest sample (-1..1) in each of ``bins`` equal stretches of ``samples``: enough to
    draw a waveform, a few kilobytes whatever the recording's length; fewer bins for fewer samples. A file is
    read ``block_bins`` stretches at a time, so a recording of hours is never in memory whole."""
    n = len(samples)
    bins = max(0, min(bins, n))
    if bins == 0:
        return [], []
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    low, high = [], []
    for first in range(0, bins, block_bins):
        last = min(bins, first + block_bins)
        block = samples[int(edges[first]):int(edges[last])]
        local = edges[first:last] - edges[first]
        low.append(np.minimum.reduceat(block, local))
        high.append(np.maximum.reduceat(block, local))
    low_a, high_a = np.concatenate(low) / 32768.0, np.concatenate(high) / 32768.0
    return np.round(low_a, 3).tolist(), np.round(high_a, 3).tolist()
