"""Tentative decodes with the real tiny.en model on real recordings (client/engines/faster_whisper_tentative.py):
close to the slice's own text, the stable prefix kept as given, silence left silent."""

import numpy as np

from server.audio import PcmFile
from tests.support import corpus_file, manifest, normalise, wer

HARVARD = "osr_us_000_0034_harvard_list72.wav"
JFK = "jfk_inaugural_excerpt.wav"


def samples(name: str) -> np.ndarray:
    return PcmFile(corpus_file(name))[:].astype(np.float32) / 32768.0


def test_a_tentative_decode_is_close_to_the_slices_own_text(whisper_model):
    """The whole JFK excerpt decoded tentatively (greedy, one window) is within 15 % WER of its reference and
    of the slice decode's text."""
    audio = samples(JFK)
    tentative = whisper_model.transcribe_tentative(audio)
    final = " ".join(s.text for s in whisper_model.transcribe_batch([audio])[0])
    assert wer(manifest()[JFK]["reference"], tentative) <= 15.0, tentative
    assert wer(final, tentative) <= 15.0, (final, tentative)


def test_the_stable_prefix_is_kept_and_continued(whisper_model):
    """Given the words already stable, the decode starts with exactly those words (their case and punctuation
    too) and continues with the ones after them; the prefix may even be wrong, it stays."""
    audio = samples(HARVARD)[: 6 * 16000]  # "A gold ring will please most any girl. The long journey home t..."
    text = whisper_model.transcribe_tentative(audio, "A gold ring will please")
    assert text.startswith("A gold ring will please ")
    assert "most any girl" in normalise(text) and "long journey" in normalise(text), text
    wrong = whisper_model.transcribe_tentative(audio, "A cold ring")
    assert wrong.startswith("A cold ring ") and "girl" in normalise(wrong), wrong


def test_silence_gives_no_tentative_words(whisper_model):
    """Two seconds of near-silence give no words (no more than the prefix, when one is given)."""
    quiet = np.random.default_rng(0).normal(0, 10 / 32768, 2 * 16000).astype(np.float32)
    assert whisper_model.transcribe_tentative(quiet) == ""
    given = whisper_model.transcribe_tentative(quiet, "  Hello  there ")
    assert given.startswith("Hello there") and normalise(given) == "hello there", given


def test_a_decode_can_be_abandoned_once_the_audio_is_encoded(whisper_model):
    """Asked after the encoder, an abandon that says yes gives None (a slice came: it goes first)."""
    asked = []
    assert whisper_model.transcribe_tentative(samples(JFK), "", lambda: asked.append(1) or True) is None
    assert asked == [1]
