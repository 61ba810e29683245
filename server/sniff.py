"""What kind of file an upload is, from its first bytes: an audio or video container the server decodes, or
something else, named so the refusal can say what it is ("a PNG image", "a ZIP archive", "a text file").

Pure and fast: the upload's request reads it as the first bytes arrive and stops reading a body that is no
audio (:class:`server.api.UploadRequest`); the page runs the same table (``web/sniff.js``, kept equal to this
one by ``tests/test_sniff.py``) before it sends anything.
"""

from __future__ import annotations

from dataclasses import dataclass

#: How many leading bytes :func:`sniff` looks at (an MPEG transport stream's second sync byte is at 188,
#: a tar header's magic at 257); fewer are enough when the file is shorter.
HEAD_BYTES = 512

#: What to upload instead, named in every "not audio" sentence.
KNOWN = "WAV, MP3, M4A, AAC, OGG, Opus, FLAC, AIFF, WebM, MP4, MOV or MKV"


@dataclass(frozen=True)
class Sniffed:
    """An upload's kind, judged from its first bytes."""

    audio: bool  # a container this server decodes (whether it holds a sound track is known only on decoding)
    name: str  # what it is, in words: "MP3", "MP4/M4A/MOV", "a PNG image"
    refusal: str = ""  # for anything but audio: the sentence the user gets

    @property
    def wav(self) -> bool:
        """A RIFF/WAVE file: the WAV reader, with its own precise messages, takes it."""
        return self.name == "WAV"


def _audio(name: str) -> Sniffed:
    return Sniffed(True, name)


def _not_audio(what: str, advice: str = "") -> Sniffed:
    return Sniffed(False, what, f"this is {what}, not an audio or video file{advice}: upload a recording "
                                f"({KNOWN})")


#: ISO base media brands that are still images, not movies.
_IMAGE_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
_ASF = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


def sniff(head: bytes) -> Sniffed:
    """The kind of file that begins with ``head`` (its first :data:`HEAD_BYTES` bytes, or all of a shorter
    file). Never raises."""
    if not head:
        return Sniffed(False, "an empty file", "the file is empty")
    four, eight = head[:4], head[8:12]
    if four == b"RIFF" and len(head) < 12:
        return _audio("WAV")  # cut short: the WAV reader says how
    if four == b"RIFF":
        if eight == b"WAVE":
            return _audio("WAV")
        if eight == b"AVI ":
            return _audio("AVI")
        if eight == b"WEBP":
            return _not_audio("a WebP image")
    if four in (b"RF64", b"BW64", b"RIFX") and eight == b"WAVE":
        return _audio("WAV (RF64)" if four != b"RIFX" else "WAV (big-endian)")
    if head[:3] == b"ID3":
        return _audio("MP3")
    if four == b"OggS":
        return _audio("Ogg")
    if four == b"fLaC":
        return _audio("FLAC")
    if four == b"FORM" and eight in (b"AIFF", b"AIFC"):
        return _audio("AIFF")
    if four == b"\x1a\x45\xdf\xa3":
        return _audio("Matroska/WebM")
    if head[4:8] == b"ftyp":
        if head[8:12] in _IMAGE_BRANDS:
            return _not_audio("a HEIC/AVIF image")
        return _audio("MP4/M4A/MOV")
    if head[4:8] in (b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return _audio("QuickTime/MP4")
    if head[:16] == _ASF:
        return _audio("WMA/WMV")
    for magic, name in ((b"#!AMR", "AMR"), (b"caff", "CAF"), (b".snd", "AU"), (b"MAC ", "Monkey's Audio"),
                        (b"wvpk", "WavPack"), (b"TTA1", "TTA"), (b"MPCK", "Musepack"), (b"DSD ", "DSF"),
                        (b"FRM8", "DSDIFF"), (b"\x00\x00\x01\xba", "MPEG program stream")):
        if head.startswith(magic):
            return _audio(name)
    if head[0] == 0x47 and len(head) > 188 and head[188] == 0x47:
        return _audio("MPEG transport stream")
    sync = _mpeg_sync(head)
    if sync:
        return _audio(sync)
    return _not_audio_kind(head)


def _mpeg_sync(head: bytes) -> str:
    """"MP3" or "AAC" for a raw MPEG audio or ADTS stream (a frame sync: 11 set bits), after any leading zero
    bytes some encoders leave; "" otherwise."""
    start = len(head) - len(head.lstrip(b"\0"))
    b = head[start:start + 2]
    if len(b) < 2 or b[0] != 0xFF or b[1] & 0xE0 != 0xE0:
        return ""
    layer, version = (b[1] >> 1) & 3, (b[1] >> 3) & 3
    if layer == 0:
        return "AAC" if b[1] & 0xF6 == 0xF0 else ""  # ADTS: MPEG version bit, layer 00
    return "MP3" if version != 1 else ""  # version 01 is reserved


def _not_audio_kind(head: bytes) -> Sniffed:
    """Name a file that is no audio container, as well as its first bytes allow."""
    for magic, what, advice in (
        (b"\x89PNG", "a PNG image", ""), (b"\xff\xd8\xff", "a JPEG image", ""), (b"GIF8", "a GIF image", ""),
        (b"BM", "a BMP image", ""), (b"II*\0", "a TIFF image", ""), (b"MM\0*", "a TIFF image", ""),
        (b"%PDF", "a PDF document", ""),
        (b"PK\x03\x04", "a ZIP archive (or a document saved as one, such as .docx)",
         " (unpack it and upload the recording inside)"),
        (b"\x1f\x8b", "a gzip archive", " (unpack it and upload the recording inside)"),
        (b"BZh", "a bzip2 archive", " (unpack it and upload the recording inside)"),
        (b"\xfd7zXZ\0", "an xz archive", " (unpack it and upload the recording inside)"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", " (unpack it and upload the recording inside)"),
        (b"Rar!", "a RAR archive", " (unpack it and upload the recording inside)"),
        (b"\x28\xb5\x2f\xfd", "a Zstandard archive", " (unpack it and upload the recording inside)"),
        (b"\x7fELF", "a program", ""), (b"MZ", "a program", ""),
    ):
        if head.startswith(magic):
            return _not_audio(what, advice)
    if head[257:262] == b"ustar":
        return _not_audio("a tar archive", " (unpack it and upload the recording inside)")
    if _is_text(head):
        return _not_audio("a text file")
    shown = " ".join(f"{b:02x}" for b in head[:8])
    return Sniffed(False, "unknown", f"this is not an audio or video file this server recognises (it begins with "
                                     f"the bytes {shown}): upload a recording ({KNOWN})")


def _is_text(head: bytes) -> bool:
    """UTF-8 (a character cut at the end is allowed) of printable characters and whitespace."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            return False
        text = head[:exc.start].decode("utf-8")
    return bool(text) and all(ch.isprintable() or ch in "\t\r\n\f" for ch in text.lstrip("\ufeff"))
