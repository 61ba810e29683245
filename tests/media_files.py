"""Audio and video files of every container the server takes, encoded here from corpus WAVs with PyAV's own
encoders (no ffmpeg program, no downloaded samples), for the tests and the memory bench."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from server.audio import PcmFile


@dataclass(frozen=True)
class Encoding:
    """How to write one kind of file: ``av.open(..., format=container)`` with an audio stream of ``codec``."""

    container: str  # FFmpeg muxer
    codec: str  # FFmpeg audio encoder
    suffix: str
    rate: int = 44100
    layout: str = "stereo"
    video: str = ""  # a video encoder: the file gets a small picture track beside the sound
    options: dict = field(default_factory=dict)
    bit_rate: int = 0  # 0: the encoder's default


#: One file of each container and codec people have (issue 15): name → how it is written.
ENCODINGS = {
    "MP3": Encoding("mp3", "libmp3lame", ".mp3", bit_rate=128_000),
    "M4A (AAC)": Encoding("ipod", "aac", ".m4a", layout="mono", bit_rate=96_000),
    "Ogg Vorbis": Encoding("ogg", "vorbis", ".ogg", rate=22050,  # FFmpeg's own Vorbis encoder: stereo only
                           options={"strict": "experimental"}),
    "Ogg Opus": Encoding("ogg", "libopus", ".opus", rate=48000, layout="mono", bit_rate=32_000),
    "WebM Opus": Encoding("webm", "libopus", ".webm", rate=48000, layout="mono", bit_rate=32_000),
    "FLAC": Encoding("flac", "flac", ".flac", rate=48000),
    "AIFF": Encoding("aiff", "pcm_s16be", ".aiff", rate=22050, layout="mono"),
    "MP4 video (AAC)": Encoding("mp4", "aac", ".mp4", layout="mono", video="mpeg4"),
    "MOV video (AAC)": Encoding("mov", "aac", ".mov", rate=48000, layout="mono", video="mpeg4"),
    "MKV video (Opus)": Encoding("matroska", "libopus", ".mkv", rate=48000, layout="mono", video="mpeg4"),
}

BLOCK_S = 10  # seconds of audio read and encoded at a time: a long file is never in memory whole


def encode_wav(src: Path, dst: Path, enc: Encoding, repeat: int = 1) -> Path:
    """Write the 16 kHz mono corpus WAV ``src`` (``repeat`` times over) to ``dst`` as ``enc`` says."""
    pcm = PcmFile(src)
    with av.open(str(dst), "w", format=enc.container) as out:
        stream = out.add_stream(enc.codec, rate=enc.rate, layout=enc.layout, options=dict(enc.options))
        if enc.bit_rate:
            stream.codec_context.bit_rate = enc.bit_rate
        stream.codec_context.open()  # now its frame size is known: whole frames in, PyAV's slow re-framing left out
        picture = _picture_stream(out, enc.video) if enc.video else None
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout=enc.layout, rate=enc.rate,
                                      frame_size=stream.codec_context.frame_size or None)
        pts, seconds = 0, 0.0
        for _ in range(repeat):
            for start in range(0, len(pcm), BLOCK_S * 16000):
                x = pcm[start:start + BLOCK_S * 16000].astype(np.float32) / 32768.0
                channels = 2 if enc.layout == "stereo" else 1
                frame = av.AudioFrame.from_ndarray(np.tile(x, (channels, 1)), format="fltp", layout=enc.layout)
                frame.sample_rate, frame.pts = 16000, pts
                pts += len(x)
                for f in resampler.resample(frame):
                    out.mux(stream.encode(f))
                seconds += len(x) / 16000
                if picture is not None:
                    _pictures_until(out, picture, seconds)
        for f in resampler.resample(None):
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
        if picture is not None:
            out.mux(picture.encode(None))
    return dst


FPS = 2


def _picture_stream(out, codec: str):
    options = {"deadline": "realtime", "cpu-used": "8"} if codec == "libvpx" else {}
    stream = out.add_stream(codec, rate=FPS, options=options)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    return stream


def _pictures_until(out, stream, seconds: float) -> None:
    """Grey frames, a few per second, up to ``seconds``: a movie's picture track, as small as it gets."""
    while stream.frames < int(seconds * FPS):  # encoded so far
        frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
        frame.pts = stream.frames
        out.mux(stream.encode(frame))


def one_block_mkv(src: Path, dst: Path, seconds: float, rate: int = 4000) -> Path:
    """``src`` (a 16 kHz mono corpus WAV, looped) for ``seconds``, as 8-bit PCM at ``rate`` in a Matroska file
    that holds it all in one block: one packet that decodes to one frame of the whole recording (a file the
    review used to make the server's decoder resample everything at once)."""
    pcm = np.asarray(PcmFile(src)[:], dtype=np.float32)[::16000 // rate]  # a plain decimation: level, not fidelity
    n = int(seconds * rate)
    looped = np.resize(pcm, n) / 256.0 + 128.0
    block = np.clip(looped, 0, 255).astype(np.uint8).reshape(1, -1)
    with av.open(str(dst), "w", format="matroska") as out:
        stream = out.add_stream("pcm_u8", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(block, format="u8", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return dst
