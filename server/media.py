"""Any audio or video upload to the stored 16 kHz mono 16-bit WAV, decoded as a stream with PyAV.

PyAV comes with faster-whisper and bundles FFmpeg's libraries, so MP3, M4A/AAC, Ogg (Vorbis, Opus, FLAC),
FLAC, AIFF, WebM, MP4/MOV/MKV (their first audio track) and the WAV encodings the WAV reader leaves out
(A-law, µ-law, ADPCM, …) decode without a system ffmpeg. :func:`convert_upload` is the one entry point: plain
PCM and float WAV keep :func:`audio.convert_to_pcm16`, its exact resampler and its precise messages; everything
else comes here.

Memory stays bounded whatever the length: FFmpeg hands over one frame at a time, its resampler turns it into
16 kHz float frames that keep every channel, and about a second of them at a time (a block of frames ×
channels) is mixed down to mono and appended to the output file. A frame is usually a few thousand samples, but
a container may hold one packet of any size (a whole recording of PCM in one Matroska block), so a longer frame
is cut into pieces of at most a second before the resampler sees it (16 kHz float is 16 times the bytes of
4 kHz 8-bit input), and the length limit is checked on the frame's length before any of it is resampled. A
:class:`channels.ChannelLevels` is fed each block before the mix-down, as the WAV reader feeds it (who speaks
on which channel of a stereo recording).

The demuxer is chosen from the file's first bytes (:mod:`server.sniff`), never by FFmpeg's probing, so an
upload cannot reach demuxers that read other files or URLs (playlists, concat lists).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import audio, sniff

if TYPE_CHECKING:
    from .channels import ChannelLevels
from .audio import AudioError

log = logging.getLogger("scatterscribe")


#: FFmpeg's demuxer for each container :func:`sniff.sniff` names.
DEMUXERS = {
    "WAV": "wav", "WAV (RF64)": "wav", "WAV (big-endian)": "wav", "AVI": "avi", "MP3": "mp3", "AAC": "aac",
    "Ogg": "ogg", "FLAC": "flac", "AIFF": "aiff", "Matroska/WebM": "matroska", "MP4/M4A/MOV": "mov",
    "QuickTime/MP4": "mov", "WMA/WMV": "asf", "AMR": "amr", "CAF": "caf", "AU": "au", "Monkey's Audio": "ape",
    "WavPack": "wv", "TTA": "tta", "Musepack": "mpc8", "DSF": "dsf", "DSDIFF": "iff",
    "MPEG program stream": "mpeg", "MPEG transport stream": "mpegts",
}
#: Sample rates and channel counts taken (the WAV reader's are narrower). A bounded rate bounds how many 16 kHz
#: samples one decoded frame can become; a bounded channel count bounds a block's size.
MIN_RATE, MAX_RATE = 4000, 384000
MAX_CHANNELS = 64
#: The most samples × channels handed to the resampler at once (2 MB as 64-bit float), as well as at most a
#: second: a longer decoded frame is resampled piece by piece.
MAX_CHUNK_VALUES = 1 << 18
#: Containers whose stated length is only a guess from the bit rate: a short decode is no sign of damage.
_GUESSED_LENGTH = {"AAC", "MPEG program stream", "MPEG transport stream"}


class CannotDecode(AudioError):
    """FFmpeg has no decoder for the file's audio."""


@dataclass(frozen=True)
class MediaFormat:
    """What the decoder found in an upload (the job's ``stats.input`` says it)."""

    container: str  # as :func:`sniff.sniff` names it
    codec: str  # FFmpeg's decoder name
    channels: int
    sample_rate: int
    video: bool  # the file also holds a picture track

    def describe(self) -> str:
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} channels")
        return f"{self.container} ({self.codec}) {self.sample_rate} Hz {layout}" + (", with video" if self.video
                                                                                   else "")


def clock(seconds: float) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour) for messages."""
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def read_head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(sniff.HEAD_BYTES)


def convert_upload(src: Path, dst: Path, max_duration_s: float | None = None,
                   channel_levels: ChannelLevels | None = None) -> audio.Converted:
    """Check ``src`` is audio this server can use and write it to ``dst`` as 16 kHz mono 16-bit PCM; raise
    :class:`AudioError` with a sentence for the user otherwise. CPU work: run it off the event loop."""
    sniffed = sniff.sniff(read_head(src))
    if not sniffed.audio:
        raise AudioError(sniffed.refusal)
    if sniffed.wav:
        try:
            return audio.convert_to_pcm16(src, dst, max_duration_s=max_duration_s, channel_levels=channel_levels)
        except audio.WavUnsupported as wav_refusal:  # A-law, ADPCM, 96 kHz…: FFmpeg may still decode it
            try:
                return decode(src, dst, sniffed, max_duration_s, channel_levels)
            except CannotDecode:  # the WAV reader's words name the encoding
                raise wav_refusal from None
    return decode(src, dst, sniffed, max_duration_s, channel_levels)


def decode(src: Path, dst: Path, sniffed: sniff.Sniffed, max_duration_s: float | None = None,
           channel_levels: ChannelLevels | None = None, block_s: float = 1.0) -> audio.Converted:
    """Decode the first audio track of ``src`` (a container :func:`sniff.sniff` recognised) block by block
    into ``dst``."""
    import av  # PyAV: imported here, so the modules that only read WAV do not load FFmpeg
    import av.logging

    av.logging.set_level(av.logging.ERROR)  # FFmpeg's own words for what is wrong, captured below
    with av.logging.Capture() as ffmpeg_log:  # this thread's messages only
        return _decode(av, src, dst, sniffed, max_duration_s, channel_levels, block_s, ffmpeg_log)


def _decode(av, src: Path, dst: Path, sniffed: sniff.Sniffed, max_duration_s: float | None,
            channel_levels: ChannelLevels | None, block_s: float, ffmpeg_log: list) -> audio.Converted:
    name = sniffed.name
    try:
        container = av.open(str(src), format=DEMUXERS[name])
    except av.FFmpegError as exc:
        raise AudioError(f"the {name} file could not be read: it is damaged or cut short "
                         f"({_reason(exc, ffmpeg_log)})") from None
    with container:
        if not container.streams.audio:
            if container.streams.video:
                raise AudioError("this video has no sound track: there is nothing to transcribe")
            raise AudioError(f"the {name} file holds no audio track")
        stream = container.streams.audio[0]
        context = stream.codec_context
        if context is None or context.codec is None or not context.codec.is_decoder:
            codec = getattr(getattr(stream, "codec", None), "name", None) or "an unknown codec"
            raise CannotDecode(f"the audio in this {name} file is encoded with {codec}, which this server "
                               "cannot decode")
        _check_layout(context.sample_rate, context.channels)
        stated = _stated_length_s(container, stream)
        if max_duration_s is not None and stated is not None and stated > max_duration_s:
            raise AudioError(f"the recording lasts {stated / 60:.1f} min; this server accepts at most "
                             f"{max_duration_s / 60:.0f} min")
        found = MediaFormat(name, context.codec.name, context.channels or 0, context.sample_rate or 0,
                            bool(container.streams.video))
        writer = _Writer(dst, int(block_s * audio.TARGET_RATE), max_duration_s, channel_levels)
        try:
            for frame in _frames(container, stream):
                writer.add(frame)
            writer.finish()
        except av.FFmpegError as exc:
            writer.close()
            if writer.samples + writer.pending_frames == 0:
                raise AudioError(f"the {name} file is damaged: none of its audio could be decoded "
                                 f"({_reason(exc, ffmpeg_log)})") from None
            where = f"{clock(writer.seconds)} of {clock(stated)}" if stated else clock(writer.seconds)
            raise AudioError(f"the {name} file is damaged: decoding stopped at {where} "
                             f"({_reason(exc, ffmpeg_log)})") from None
        except BaseException:
            writer.close()
            raise
    said = f" (FFmpeg: {_last_error(ffmpeg_log)})" if _last_error(ffmpeg_log) else ""
    if writer.samples == 0:
        raise AudioError(f"the {name} file holds no audio samples that could be decoded (is it damaged?){said}")
    if stated and name not in _GUESSED_LENGTH and writer.seconds < stated - max(2.0, 0.05 * stated):
        raise AudioError(f"the {name} file is cut short or damaged: it decodes only up to {clock(writer.seconds)} "
                         f"of the {clock(stated)} it states (was the upload cut short?){said}")
    found = MediaFormat(found.container, found.codec, writer.channels or found.channels,
                        found.sample_rate or writer.rate, found.video)
    return audio.Converted(found, writer.samples)


def _check_layout(rate: int | None, channels: int | None) -> None:
    if rate and not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"unsupported sample rate: {rate} Hz ({MIN_RATE} to {MAX_RATE} Hz are accepted)")
    if channels and channels > MAX_CHANNELS:
        raise AudioError(f"unsupported channel count: {channels} (at most {MAX_CHANNELS})")


def _frames(container, stream):
    """The decoded frames of ``stream``, skipping packets of other tracks without decoding them."""
    for packet in container.demux(stream):
        yield from packet.decode()


def _stated_length_s(container, stream) -> float | None:
    """The length the file states (its track's, else the container's), in seconds; None when it states none."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _last_error(ffmpeg_log: list) -> str:
    """FFmpeg's last message of error level or worse, from a :class:`av.logging.Capture` list."""
    import av.logging

    errors = [text.strip() for level, _name, text in ffmpeg_log if level <= av.logging.ERROR and text.strip()]
    return errors[-1][:200] if errors else ""


def _reason(exc: Exception, ffmpeg_log: list) -> str:
    said = _last_error(ffmpeg_log)
    return f"FFmpeg: {said}" if said else f"FFmpeg: {getattr(exc, 'strerror', None) or exc}"


#: Output samples the resampler may add past the input's own length (its filter's delay, rounding): the exact
#: limit is checked again on what it writes.
_SLACK = 64


def _pieces(frame):
    """``frame`` itself, or, when it is longer than a second or holds more than :data:`MAX_CHUNK_VALUES` samples
    × channels, its samples in order as frames within both, each copied from a view of the frame's own planes
    (so the whole frame is never copied)."""
    import av

    fmt, layout = frame.format, frame.layout
    chunk = max(1, min(frame.sample_rate, MAX_CHUNK_VALUES // max(1, layout.nb_channels)))
    if frame.samples <= chunk:
        yield frame
        return
    step = fmt.bytes * (1 if fmt.is_planar else layout.nb_channels)  # bytes of one sample in one plane
    planes = [memoryview(plane)[:frame.samples * step] for plane in frame.planes]
    for start in range(0, frame.samples, chunk):
        n = min(chunk, frame.samples - start)
        piece = av.AudioFrame(format=fmt.name, layout=layout, samples=n, align=1)
        piece.sample_rate = frame.sample_rate
        for dst, src in zip(piece.planes, planes, strict=True):
            dst.update(src[start * step:(start + n) * step])
        yield piece


class _Writer:
    """Decoded frames in, 16 kHz mono 16-bit PCM out: FFmpeg's resampler to 16 kHz float keeping every
    channel, about ``block`` frames at a time fed to the channel levels, mixed down and appended to the WAV
    file.

    The resampler gives packed float ("flt": one plane, channels interleaved), not planar: PyAV 18 crashes
    reading a planar frame of 8 channels or more."""

    def __init__(self, dst: Path, block: int, max_duration_s: float | None, levels: ChannelLevels | None):
        self.out = audio.PcmWriter(dst)
        self.block, self.levels = block, levels
        self.max_samples = None if max_duration_s is None else int(max_duration_s * audio.TARGET_RATE)
        self.max_duration_s = max_duration_s
        self.resampler = None
        self.layout = None
        self.pending: list[np.ndarray] = []  # frames × channels arrays not yet written
        self.pending_frames = 0
        self.samples = 0
        self.input_s = 0.0  # length of the frames given so far, at their own rate
        self.channels = 0
        self.rate = 0

    @property
    def seconds(self) -> float:
        return (self.samples + self.pending_frames) / audio.TARGET_RATE

    def add(self, frame) -> None:
        import av

        self._check_length(frame)
        if self.resampler is None or (frame.layout.name, frame.sample_rate) != (self.layout, self.rate):
            _check_layout(frame.sample_rate, frame.layout.nb_channels)
            if self.resampler is not None:  # the layout or rate changed mid-stream: start a new resampler
                self._take(self.resampler.resample(None))
            self.layout, self.rate = frame.layout.name, frame.sample_rate
            self.resampler = av.AudioResampler(format="flt", layout=frame.layout, rate=audio.TARGET_RATE)
        for piece in _pieces(frame):
            self._take(self.resampler.resample(piece))

    def _check_length(self, frame) -> None:
        """Refuse a recording over the length limit before resampling the frame that takes it there (one frame
        may be the whole recording)."""
        self.input_s += frame.samples / frame.sample_rate
        if self.max_samples is not None and self.input_s * audio.TARGET_RATE > self.max_samples + _SLACK:
            self._too_long()

    def _too_long(self):
        raise AudioError(f"the recording lasts more than {self.max_duration_s / 60:.0f} min; this server "
                         f"accepts at most {self.max_duration_s / 60:.0f} min")

    def _take(self, frames) -> None:
        for f in frames:
            x = f.to_ndarray().reshape(-1, f.layout.nb_channels)  # packed: one row of interleaved samples
            if self.pending and x.shape[1] != self.pending[0].shape[1]:
                self._write()
            self.pending.append(x)
            self.pending_frames += len(x)
        if self.pending_frames >= self.block:
            self._write()

    def _write(self) -> None:
        if not self.pending:
            return
        block = np.concatenate(self.pending)  # frames × channels
        self.pending, self.pending_frames = [], 0
        self.channels = max(self.channels, block.shape[1])
        if self.max_samples is not None and self.samples + len(block) > self.max_samples:
            self._too_long()
        if self.levels is not None:  # (frames, channels) at 16 kHz, from output frame self.samples on
            self.levels.add(self.samples, block, audio.TARGET_RATE)
        mono = block.mean(axis=1) if block.shape[1] > 1 else block[:, 0]
        self.out.append(audio.float_to_pcm16(np.nan_to_num(mono)))
        self.samples += len(block)

    def finish(self) -> None:
        if self.resampler is not None:
            self._take(self.resampler.resample(None))
        self._write()
        self.close()

    def close(self) -> None:
        self.out.close()
