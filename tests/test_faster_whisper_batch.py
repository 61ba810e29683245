"""Batched decoding with the real tiny.en model on real recordings: as accurate as one slice at a time, text
after an early stop recovered, silence left silent, segments timed."""

import time

import numpy as np

from client.engines.base import SAMPLE_RATE
from client.engines.faster_whisper_batch import BatchOptions, BatchTranscriber, sentence_segments
from server.audio import PcmFile
from tests.support import corpus_file, manifest, normalise, wer

#: Short tier-A recordings (a slice is at most 30 s).
SHORT = ["jfk_inaugural_excerpt.wav", "ls_dev-clean_2412-153948-0000.wav",
         "ls_dev-clean_1272-141231-0002.wav", "ljspeech_LJ001-0001.wav", "ljspeech_LJ001-0014.wav",
         "ljspeech_LJ001-0027.wav", "mfa_cold_corpus_spontaneous.wav", "mfa_acoustic_corpus_spontaneous.wav"]


def samples(name: str) -> np.ndarray:
    return PcmFile(corpus_file(name))[:].astype(np.float32) / 32768.0


def text_of(segments) -> str:
    return " ".join(s.text.strip() for s in segments)


def test_a_batch_is_as_accurate_as_one_slice_at_a_time(whisper_model):
    """Eight recordings decoded as one batch: pooled WER within 2 points of transcribing each alone, every
    result in its own place, segment times increasing and inside the recording."""
    audios = [samples(name) for name in SHORT]
    batched = whisper_model.transcribe_batch(audios)
    alone = [list(whisper_model.transcribe(a)) for a in audios]
    refs = [manifest()[name]["reference"] for name in SHORT]
    assert wer(refs, [text_of(s) for s in batched]) <= wer(refs, [text_of(s) for s in alone]) + 2.0
    for name, segments, audio in zip(SHORT, batched, audios, strict=True):
        assert wer(manifest()[name]["reference"], text_of(segments)) < 25, name  # each in its own place
        starts = [s.start for s in segments]
        assert starts == sorted(starts) and all(0 <= s.start <= s.end <= len(audio) / SAMPLE_RATE + 0.5
                                                for s in segments)


def test_text_after_an_early_stop_is_decoded_too(whisper_model):
    """A slice holding the end of the radio address and the start of a sonnet: without timestamps Whisper
    stops at "Thank you for listening" and drops the sonnet (checked here with continuation turned off); the
    batch decoder sees the words end early and decodes the rest."""
    audio = np.concatenate([samples("bush_radio_address_2008-11-01.wav")[-10 * SAMPLE_RATE:],
                            samples("librivox_shakespeare_sonnet_001.wav")[:14 * SAMPLE_RATE]])
    without = BatchTranscriber(whisper_model._model, lambda a: [], BatchOptions(remainder_s=1e9))
    dropped = normalise(text_of(without.transcribe([audio])[0]))
    assert "thank you for listening" in dropped and "fairest creatures" not in dropped
    segments = whisper_model.transcribe_batch([audio])[0]
    text = normalise(text_of(segments))
    assert "thank you for listening" in text and "fairest creatures" in text
    assert text.count("thank you for listening") == 1
    sonnet = next(s for s in segments if "fairest" in s.text)
    assert sonnet.start >= 9.0, "the continuation's times are shifted to where it starts"


def test_silence_in_a_batch_stays_silent(whisper_model):
    """A slice of faint noise decoded beside speech gives no segments; the speech beside it is unharmed."""
    noise = np.random.default_rng(1).normal(0, 0.001, 8 * SAMPLE_RATE).astype(np.float32)
    speech = samples("jfk_inaugural_excerpt.wav")
    quiet, spoken = whisper_model.transcribe_batch([noise, speech])
    assert quiet == []
    assert wer(manifest()["jfk_inaugural_excerpt.wav"]["reference"], text_of(spoken)) < 15


def test_words_are_grouped_into_sentences():
    """Aligned words become one segment per sentence, cut also when a sentence runs past the limit, shifted by
    the offset; empty words (merged punctuation) are skipped."""
    words = [{"word": " Hello", "start": 0.0, "end": 0.4}, {"word": " there.", "start": 0.5, "end": 0.9},
             {"word": "", "start": 0.9, "end": 0.9}, {"word": " A", "start": 1.2, "end": 1.3},
             {"word": " long", "start": 1.3, "end": 6.5}, {"word": " one", "start": 6.5, "end": 7.0}]
    segments = sentence_segments(words, offset_s=10.0, max_segment_s=5.0)
    assert [s.text for s in segments] == [" Hello there.", " A long", " one"]
    assert segments[0].start == 10.0 and segments[0].end == 10.9 and segments[1].start == 11.2


def early_stop(seconds_of_address: float, sonnet: str) -> np.ndarray:
    """The end of the radio address, then the start of a sonnet: Whisper without timestamps stops at "Thank you
    for listening", so the sonnet comes only from a continuation round prompted with the text so far."""
    return np.concatenate([samples("bush_radio_address_2008-11-01.wav")[-int(seconds_of_address * SAMPLE_RATE):],
                           samples(sonnet)[:14 * SAMPLE_RATE]])


def refuse_fallback(audio):
    raise AssertionError("the careful path was not needed here")


def test_continuations_with_prompts_of_different_lengths_decode_every_item(whisper_model):
    """Two slices that both stop early after different lengths of the address, so their continuation prompts
    (the text so far) differ in length, decoded as one batch: CTranslate2 decodes a batch only when
    <|startoftranscript|> sits at one position in every prompt, and before the continuation round grouped
    prompts by length this raised for the whole batch. Both slices come back whole, each with its own
    sonnet, without the careful path."""
    audios = [early_stop(8, "librivox_shakespeare_sonnet_001.wav"),
              early_stop(12, "librivox_shakespeare_sonnet_002.wav")]
    first, second = BatchTranscriber(whisper_model._model, refuse_fallback).transcribe(audios)
    first_text, second_text = normalise(text_of(first)), normalise(text_of(second))
    assert "thank you for listening" in first_text and "fairest creatures" in first_text
    assert "thank you for listening" in second_text and "winters shall besiege" in second_text
    before_first = first_text.split("thank you for listening")[0].split()
    before_second = second_text.split("thank you for listening")[0].split()
    assert len(before_first) < len(before_second), "the texts so far, hence the prompts, differ in length"


class RefusesBatches(BatchTranscriber):
    """A decoder that raises for any batch of more than one slice, and for a slice of exactly ``bad_len``
    samples: CTranslate2 errors cannot be provoked on purpose with real audio, so this stands in for one."""

    bad_len = -1

    def _decode_group(self, model, audios, prompts):
        if len(audios) > 1 or any(len(a) == self.bad_len for a in audios):
            raise RuntimeError("the decoder refused this batch")
        return super()._decode_group(model, audios, prompts)


def test_a_batch_that_raises_is_decoded_slice_by_slice(whisper_model):
    """When decoding a batch raises, each slice is decoded alone: every good slice still gets its text, and a
    slice that fails alone gets its own exception in its place, never its batch-mates'."""
    jfk, ljs, bad = (samples("jfk_inaugural_excerpt.wav"), samples("ljspeech_LJ001-0001.wav"),
                     samples("ljspeech_LJ001-0014.wav"))
    transcriber = RefusesBatches(whisper_model._model, refuse_fallback)
    transcriber.bad_len = len(bad)
    first, failed, second = transcriber.transcribe([jfk, bad, ljs])
    assert isinstance(failed, RuntimeError)
    assert wer(manifest()["jfk_inaugural_excerpt.wav"]["reference"], text_of(first)) < 15
    assert wer(manifest()["ljspeech_LJ001-0001.wav"]["reference"], text_of(second)) < 15


def test_segments_carry_their_words_both_ways(whisper_model):
    """The batched path and the careful path (``transcribe``) both give every segment its words: stripped,
    each inside its segment's time span, spelling its text, with a probability in [0, 1], and the decode's
    average log probability."""
    audio = samples("jfk_inaugural_excerpt.wav")
    for segments in (whisper_model.transcribe_batch([audio])[0], list(whisper_model.transcribe(audio))):
        assert segments
        for seg in segments:
            assert seg.words and isinstance(seg.avg_logprob, float) and seg.avg_logprob < 0
            assert normalise(" ".join(w.word for w in seg.words)) == normalise(seg.text)
            for w in seg.words:
                assert seg.start - 0.01 <= w.start <= w.end <= seg.end + 0.01
                assert w.word == w.word.strip() and 0.0 <= w.probability <= 1.0


def test_trailing_silence_gives_no_words(whisper_model):
    """Recordings followed by seconds of faint noise: tiny.en writes "Thank you." there (its alignment
    stretches it across the silence or squeezes it where nothing sounds); those words are dropped, and the
    speech's own last words are kept."""
    rng = np.random.default_rng(0)
    for name in ("jfk_inaugural_excerpt.wav", "ljspeech_LJ001-0001.wav", "ls_dev-clean_2412-153948-0000.wav"):
        speech = samples(name)
        audio = np.concatenate([speech, rng.normal(0, 0.0005, 3 * SAMPLE_RATE).astype(np.float32)])
        words = [w for seg in whisper_model.transcribe_batch([audio])[0] for w in seg.words]
        assert words and all(w.end <= len(speech) / SAMPLE_RATE + 0.3 for w in words), (name, words[-3:])
        assert normalise(words[-1].word) == normalise(manifest()[name]["reference"]).split()[-1], name


def test_invented_words_are_told_by_their_alignment():
    """The rules on made-up alignments over 1 s of speech then 2 s of silence: a word stretched into the
    silence with an improbable first token, the word squeezed after it where nothing sounds, and a word in
    the padding past the audio are invented; a probable word over speech, one ending just into the silence,
    and a probable word squeezed alone into a quiet moment (an alignment collapsing a real word) are not."""
    from client.engines.base import Word
    from client.engines.silence import invented, loud_frames

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    audio = np.concatenate([0.3 * np.sin(2 * np.pi * 220 * t),
                            np.random.default_rng(2).normal(0, 0.0005, 2 * SAMPLE_RATE)]).astype(np.float32)
    loud = loud_frames(audio)
    assert not invented(Word(0.2, 0.6, "real", 0.9), loud)
    assert not invented(Word(0.8, 1.15, "trailing", 0.3), loud)
    assert invented(Word(0.9, 2.8, "Thank", 0.01), loud)
    assert invented(Word(2.5, 2.5, "you.", 0.97), loud, after_invented=True)
    assert not invented(Word(2.5, 2.5, "words.", 0.97), loud)
    assert invented(Word(3.2, 3.4, "padding", 0.9), loud)  # past the audio: Whisper's zero padding


def test_the_engine_says_how_many_slices_it_decodes_at_once(whisper_model):
    """Two threads and two slots: two one-thread decoders side by side, so two slices at once (the worker
    announces it as ``parallel``; more slots would only be batched)."""
    assert whisper_model.parallel == 2


def test_a_slice_whose_speech_is_skipped_beside_its_guard_bands_is_decoded_alone(whisper_model):
    """Issue 13, the joined workload cut for 16 decoders: 17 s of a spontaneous monologue heard with 6 s of
    itself before it and 6 s of the Harvard sentences (another recording) after it. Whisper decodes the
    sentences alone and lays "A" over the whole monologue; the batch decoder sees that word, longer than
    ``skipped_word_s``, and decodes the slice's own audio alone, its times where that audio lies."""
    joined = np.concatenate([samples("mfa_cold_corpus_spontaneous.wav"),
                             samples("osr_us_000_0034_harvard_list72.wav")])
    start = 366.301875  # where the monologue begins in the bench's joined workload (bench/workload.py)
    pieces = [(368.8, 379.24), (379.6, 391.28), (391.44, 392.22), (393.06, 395.96), (396.6, 398.94),
              (399.62, 400.38)]  # what the server sent: guard.heard of that slice
    audio = np.concatenate([joined[round((a - start) * SAMPLE_RATE):round((b - start) * SAMPLE_RATE)]
                            for a, b in pieces])
    span = (6.0, 22.9)
    skipping = BatchTranscriber(whisper_model._model, lambda a: [], BatchOptions(skipped_word_s=1e9))
    skipped = skipping.transcribe([audio], [span])[0]
    assert max(w.end - w.start for s in skipped for w in s.words) > 10.0  # the monologue got no text
    assert "environment is also quite different" not in normalise(text_of(skipped))
    segments = whisper_model.transcribe_batch([audio], [span])[0]
    words = [w for s in segments for w in s.words]
    text = normalise(text_of(segments))
    assert "environment is also quite different" in text and "bunch of different words" in text
    assert "gold ring" not in text  # the guard band after it is not heard this time
    assert span[0] <= words[0].start and words[-1].end <= span[1] + 0.5


class _Slowed:
    """A loaded model whose beam search is made slower by ``delay_s`` per call: the real model otherwise."""

    def __init__(self, model, delay_s: float):
        self._model, self.delay_s = model, delay_s

    def __getattr__(self, name):
        return getattr(self._model, name)

    @property
    def model(self):
        slowed = self

        class Generator:
            def __getattr__(self, name):
                return getattr(slowed._model.model, name)

            def generate(self, *args, **kwargs):
                time.sleep(slowed.delay_s)
                return slowed._model.model.generate(*args, **kwargs)

        return Generator()


def test_the_engine_decodes_with_whichever_copy_of_the_model_decodes_faster(whisper_model):
    """``faster_decoder`` times a real beam search on each copy and keeps the faster, whichever comes first;
    the engine's lone slice is then encoded with every thread and decoded by that copy, with the text of a
    decode on one copy alone."""
    from client.engines.faster_whisper_engine import faster_decoder

    model = whisper_model._model
    # One choice, used by every lone decode: the batch path's, tentative text's and the careful fallback's.
    assert whisper_model._batch._lone == (model, whisper_model._decoder)
    assert whisper_model._tentative.decoder is whisper_model._decoder
    slowed = _Slowed(model, 0.3)
    assert faster_decoder([slowed, model], beam_size=5) is model
    assert faster_decoder([model, slowed], beam_size=5) is model
    audio = samples("jfk_inaugural_excerpt.wav")
    reference = manifest()["jfk_inaugural_excerpt.wav"]["reference"]
    lone = whisper_model.transcribe_batch([audio])[0]
    one_copy = BatchTranscriber(model, lambda a: [], BatchOptions()).transcribe([audio])[0]
    assert wer(reference, text_of(lone)) <= wer(reference, text_of(one_copy)) + 5.0 < 15.0
