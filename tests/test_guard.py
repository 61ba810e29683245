"""Guard bands: what a worker hears around a slice, and where the slice's own audio lies in it."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.guard import GuardOptions, heard, length

#: Three slices: 0-8 s (two pieces, a pause left out), 9-17 s, 18-20 s.
SLICES = [[(0.0, 3.0), (4.0, 9.0)], [(9.0, 17.0)], [(18.0, 20.0)]]


def test_a_middle_slice_hears_its_neighbours_speech_on_both_sides():
    """The middle slice gets 3 s of the speech before it (across the first slice's pieces, the pause left out)
    and the 2 s after it (all the last slice has), and its span says where its own 8 s lie."""
    sent = heard(SLICES, 1, GuardOptions(guard_s=3.0, min_guard_s=0.5))
    assert sent.pieces == ((6.0, 17.0), (18.0, 20.0))  # 6-9 then its own 9-17 joined: they touch
    assert sent.span == (3.0, 11.0)


def test_the_ends_of_a_recording_have_one_guard_band():
    """The first slice hears only what follows it, the last only what precedes it."""
    first = heard(SLICES, 0, GuardOptions(guard_s=2.0, min_guard_s=0.5))
    assert first.span == (0.0, 8.0) and first.pieces == ((0.0, 3.0), (4.0, 11.0))
    last = heard(SLICES, 2, GuardOptions(guard_s=2.0, min_guard_s=0.5))
    assert last.span == (2.0, 4.0) and last.pieces == ((15.0, 17.0), (18.0, 20.0))


def test_guard_bands_stay_within_the_window_and_share_the_room():
    """A 22 s slice between long neighbours has room for 7.5 s in a 29.5 s window: 3.75 s each side; a slice
    with nothing before it gives all the room to the side after it; a 26 s slice, with room for 1.75 s a side,
    gets none (below min_guard_s: a full slice gains nothing from a second of context)."""
    opts = GuardOptions(guard_s=6.0, window_s=29.5, min_guard_s=2.0)
    sent = heard([[(0.0, 30.0)], [(30.0, 52.0)], [(52.0, 90.0)]], 1, opts)
    assert sent.pieces == ((26.25, 55.75),) and sent.span == (3.75, 25.75)
    first = heard([[(0.0, 22.0)], [(22.0, 60.0)]], 0, GuardOptions(guard_s=8.0, window_s=29.5))
    assert first.pieces == ((0.0, 29.5),) and first.span == (0.0, 22.0)
    full = heard([[(0.0, 30.0)], [(30.0, 56.0)], [(56.0, 90.0)]], 1, opts)
    assert full.pieces == ((30.0, 56.0),) and full.span == (0.0, 26.0)


def test_by_default_a_squeezed_guard_band_under_4_s_is_left_out():
    """With the default options a side left less than 4 s of room gets no guard band: a 22 s slice between long
    neighbours has room for 3.75 s a side and gets none (a squeezed band is too short to help, and the decoder
    may skip it and drag the slice's first word into it: issue 13, the joined workload); a 20 s slice gets
    4.75 s a side; the first slice of a recording, 22 s, gets all 6 s after it, its whole side of the room
    being free; a neighbour with less audio than that gives all it has."""
    opts = GuardOptions()
    assert (opts.guard_s, opts.window_s, opts.min_guard_s) == (6.0, 29.5, 4.0)
    squeezed = heard([[(0.0, 30.0)], [(30.0, 52.0)], [(52.0, 90.0)]], 1, opts)
    assert squeezed.pieces == ((30.0, 52.0),) and squeezed.span == (0.0, 22.0)
    room = heard([[(0.0, 30.0)], [(30.0, 50.0)], [(50.0, 90.0)]], 1, opts)
    assert room.pieces == ((25.25, 54.75),) and room.span == (4.75, 24.75)
    first = heard([[(0.0, 22.0)], [(22.0, 60.0)]], 0, opts)
    assert first.pieces == ((0.0, 28.0),) and first.span == (0.0, 22.0)
    short = heard([[(0.0, 1.5)], [(2.0, 24.0)], [(25.0, 60.0)]], 1, opts)
    assert short.pieces == ((0.0, 1.5), (2.0, 24.0), (25.0, 31.0)) and short.span == (1.5, 23.5)
    # A guard_s under min_guard_s is whole or nothing.
    three = GuardOptions(guard_s=3.0)
    fits = heard([[(0.0, 30.0)], [(30.0, 53.0)], [(53.0, 90.0)]], 1, three)
    assert fits.pieces == ((27.0, 56.0),) and fits.span == (3.0, 26.0)
    assert heard([[(0.0, 30.0)], [(30.0, 54.0)], [(54.0, 90.0)]], 1, three).pieces == ((30.0, 54.0),)


def test_no_guard_is_the_slice_alone():
    sent = heard(SLICES, 1, GuardOptions(guard_s=0.0))
    assert sent.pieces == ((9.0, 17.0),) and sent.span == (0.0, 8.0)


def test_bad_options_are_refused():
    with pytest.raises(ValueError):
        GuardOptions(guard_s=-1.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.2, 28.0), min_size=1, max_size=12), st.floats(0.0, 10.0), st.data())
def test_the_span_is_exactly_the_slice_and_the_whole_fits_the_window(lengths, guard_s, data):
    """For any slices and guard length: the audio heard at the span is the slice's own pieces, the guard bands
    are the neighbours' audio just before and after it, and the whole never exceeds the window (unless the
    slice alone does)."""
    slices, t = [], 0.0
    for n in lengths:
        slices.append([(t, t + n)])
        t += n + 1.0
    k = data.draw(st.integers(0, len(slices) - 1))
    opts = GuardOptions(guard_s=guard_s)
    sent = heard(slices, k, opts)
    assert length(sent.pieces) <= max(opts.window_s, lengths[k]) + 1e-6
    start, end = sent.span
    assert abs(end - start - lengths[k]) < 1e-6
    played, position = [], 0.0  # the recording's stretches that play between span start and end
    for a, b in sent.pieces:
        lo, hi = max(a, a + start - position), min(b, a + end - position)
        if hi > lo + 1e-5:  # the span is rounded to the microsecond
            played.append((lo, hi))
        position += b - a
    assert abs(played[0][0] - slices[k][0][0]) < 1e-6 and abs(played[-1][1] - slices[k][-1][1]) < 1e-6
    assert start <= guard_s + 1e-6 and length(sent.pieces) - end <= guard_s + 1e-6
    before = sum(lengths[:k]) + 0.0
    assert start == 0 or start >= min(opts.min_guard_s, guard_s, before) - 1e-6
