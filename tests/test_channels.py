"""Stereo calls labelled by channel (server/channels.py): levels taken before the downmix, whether the channels
hold different people, and who speaks when."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from bench import conversations
from server import audio, channels


def tone_bursts(rate: int, spans: list[tuple[float, float, int]], seconds: float, bleed: float = 0.05):
    """Two channels: in each span a noise burst on channel ``c`` (and faint on the other)."""
    rng = np.random.default_rng(0)
    x = np.zeros((int(seconds * rate), 2))
    for a, b, c in spans:
        burst = 0.3 * rng.standard_normal(int((b - a) * rate))
        x[int(a * rate):int(a * rate) + len(burst), c] += burst
        x[int(a * rate):int(a * rate) + len(burst), 1 - c] += bleed * burst
    return x


@pytest.mark.parametrize("rate", [16000, 11025, 44100])
def test_levels_fed_in_overlapping_blocks_are_those_of_the_whole(rate):
    """Blocks that overlap (as the resampler reads them) count every source frame once: the levels equal
    those of the whole recording in one block, at rates whose 20 ms is not a whole number of frames too."""
    x = tone_bursts(rate, [(0.1, 0.7, 0), (1.0, 1.9, 1)], 2.3)
    whole = channels.ChannelLevels()
    whole.add(0, x, rate)
    pieces = channels.ChannelLevels()
    for start in range(0, len(x), 3001):
        lo, hi = max(0, start - 200), min(len(x), start + 3001 + 200)
        pieces.add(lo, x[lo:hi], rate)
    assert np.allclose(whole.levels_db(), pieces.levels_db(), atol=1e-4)
    assert abs(len(whole.levels_db()) - len(x) / rate / 0.02) <= 1
    k = 20  # a frame inside the first burst, computed directly: the samples whose time is in [0.4 s, 0.42 s)
    inside = x[int(np.ceil(k * rate / 50)):int(np.ceil((k + 1) * rate / 50))]
    direct = 10 * np.log10(np.mean(np.square(inside), axis=0))
    assert np.allclose(whole.levels_db()[k], direct, atol=1e-3)


def test_a_call_is_separated_and_its_turns_follow_the_channels():
    """Left 0.2–1.2 s, right 1.6–2.6 s, left 3.0–3.5 s: separated, and the turns say so within a frame or two."""
    spans = [(0.2, 1.2, 0), (1.6, 2.6, 1), (3.0, 3.5, 0)]
    levels = channels.ChannelLevels()
    levels.add(0, tone_bursts(16000, spans, 4.0), 16000)
    db = levels.levels_db()
    assert channels.separated(db)
    turns = channels.channel_turns(db)
    assert [t[2] for t in turns] == [1, 2, 1]
    for (a, b, c), (s, e, who) in zip(spans, turns, strict=True):
        assert abs(s - a) <= 0.12 and abs(e - b) <= 0.12 and who == c + 1


def test_the_same_sound_on_both_channels_is_not_a_call():
    """A mono recording copied to both channels, or a room heard by two microphones alike, is not separated:
    its speakers are told apart by voice instead."""
    x = tone_bursts(16000, [(0.2, 1.2, 0), (1.6, 2.6, 0)], 3.0)
    same = np.stack([x[:, 0], x[:, 0] * 0.8], axis=1)
    levels = channels.ChannelLevels()
    levels.add(0, same, 16000)
    assert not channels.separated(levels.levels_db())
    assert not channels.separated(None) and not channels.separated(np.zeros((0, 2)))


def test_a_stereo_upload_keeps_its_channel_levels_and_a_mono_one_none(tmp_path):
    """The decoder's hook: a stereo call's levels are written beside its audio; a mono upload has none."""
    call = conversations.stereo_call(tmp_path / "call")
    levels = channels.ChannelLevels()
    audio.convert_to_pcm16(call.path, tmp_path / "a.wav", block_s=2.0, channel_levels=levels)
    assert levels.save(tmp_path) is not None
    stored = channels.load(tmp_path)
    assert stored.shape[1] == 2 and abs(len(stored) * 0.02 - call.seconds) < 0.05
    assert channels.separated(stored)
    mono = tmp_path / "mono"
    mono.mkdir()
    soundfile.write(mono / "m.wav", np.zeros(16000, dtype=np.int16), 16000)
    levels = channels.ChannelLevels()
    audio.convert_to_pcm16(mono / "m.wav", mono / "out.wav", channel_levels=levels)
    assert levels.save(mono) is None and channels.load(mono) is None


def test_a_stereo_call_in_another_format_keeps_its_channel_levels(tmp_path):
    """The same call as FLAC goes through the media decoder (PyAV), which feeds the levels before its mix-down
    too: its channels are told apart the same way."""
    from server import media

    call = conversations.stereo_call(tmp_path / "call")
    samples, rate = soundfile.read(call.path, dtype="int16")
    soundfile.write(tmp_path / "call.flac", samples, rate)
    levels = channels.ChannelLevels()
    media.convert_upload(tmp_path / "call.flac", tmp_path / "a.wav", channel_levels=levels)
    db = levels.levels_db()
    assert db.shape[1] == 2 and channels.separated(db)
    assert [t[2] for t in channels.channel_turns(db)] == [1, 2, 1]
