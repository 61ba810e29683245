"""Paths built from outside input stay inside their folder; job ids are checked in one place."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.ids import is_job_id, new_job_id
from server.paths import OutsideFolder, inside


def test_new_ids_have_the_checked_form():
    """Every id the server makes passes the one check every route and event applies."""
    assert all(is_job_id(new_job_id()) for _ in range(100))


@pytest.mark.parametrize("bad", ["..", ".", "", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef\n",
                                 "0123456789abcdef0", None, 123, ["0123456789abcdef"]])
def test_ids_of_any_other_form_are_refused(bad):
    """Upper case, wrong length, a trailing newline, non-strings: not a job id."""
    assert not is_job_id(bad)


@pytest.mark.parametrize("parts", [("..",), (".",), ("a", "..", ".."), ("/etc",), ("../x",), ("a/../../b",)])
def test_inside_refuses_what_leaves_the_folder(tmp_path, parts):
    """`..`, the folder itself, absolute paths: refused before anything touches the disk."""
    with pytest.raises(OutsideFolder):
        inside(tmp_path, *parts)


def test_inside_refuses_a_symbolic_link_out(tmp_path):
    """A link inside the folder that points out of it is resolved and refused."""
    (tmp_path / "link").symlink_to("/")
    with pytest.raises(OutsideFolder):
        inside(tmp_path, "link", "etc")


@given(st.text(max_size=40))
def test_whatever_name_is_given_the_path_is_inside_or_refused(name):
    """Property: for any string, the result lies strictly below the folder, or OutsideFolder is raised."""
    import tempfile
    from pathlib import Path
    base = Path(tempfile.gettempdir()) / "scatterscribe-paths-test"
    try:
        path = inside(base, name)
    except (OutsideFolder, ValueError):  # ValueError: a NUL byte in the name
        return
    assert base.resolve() in path.parents
