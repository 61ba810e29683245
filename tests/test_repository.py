"""The repository itself: no leftovers of a merge or a patch (``*.orig``, ``*.rej``) are committed.

The review found ``tests/test_live_e2e.py.orig`` committed beside the test it was a conflict copy of;
``.gitignore`` now keeps such files out of ``git add -A``, and this test catches one added by force.
"""

from __future__ import annotations

import subprocess

from tests.support import ROOT


def test_no_merge_or_patch_leftovers_are_committed():
    """``git ls-files`` lists no ``*.orig`` or ``*.rej`` file."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True,
                             timeout=60).stdout.decode().split("\0")
    assert [name for name in tracked if name.endswith((".orig", ".rej"))] == []
