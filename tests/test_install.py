"""The quick start's install (requirements.txt) runs the server and its default local worker, and holds no torch.

Building a fresh venv from the package registry takes 45–70 s here (downloads, unpacking ~700 MB), too long for
every CI run, so the test builds the same set without a download: it resolves requirements.txt through the
dependency metadata of the packages `scripts/test` installed (the same pins), then makes a fresh venv
(``python -m venv --without-pip``) that holds only those distributions, their files linked from the test venv,
and runs the real server with one local worker in it on a corpus recording. ``python -m bench.install`` builds
both installs from the registry for real and measures them (README, "Quick start").
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import ROOT, Server, corpus_file, manifest, wer

#: What the quick start must leave out: the heavy engines, the test and bench tools.
NOT_IN_QUICK_START = {"torch", "triton", "openai-whisper", "speechrecognition", "pocketsphinx", "playwright",
                      "matplotlib", "pytest", "hypothesis", "jiwer"}


def requirement_lines(path: Path) -> list[Requirement]:
    """The requirements a pip requirements file names (comments and options left out; ``-r`` followed)."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += requirement_lines(path.parent / line[3:].strip())
        elif line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


def resolve(requirements: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Every distribution the requirements pull in, with their extras, as installed in this environment."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [(r, frozenset(r.extras)) for r in requirements]
    done: set[tuple[str, frozenset]] = set()
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if (name, extras) in done:
            continue
        done.add((name, extras))
        dist = seen.setdefault(name, metadata.distribution(name))
        for text in dist.requires or []:
            dep = Requirement(text)
            env_extras = [""] + sorted(extras)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in env_extras):
                todo.append((dep, frozenset(dep.extras)))
    return seen


def link_venv(venv: Path, dists: dict[str, metadata.Distribution]) -> Path:
    """A fresh venv without pip whose site-packages holds exactly ``dists``, each file a link to this
    environment's copy."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True, timeout=60).stdout.strip())
    here = Path(sysconfig.get_paths()["purelib"]).resolve()
    for dist in dists.values():
        for file in dist.files or []:
            source = Path(dist.locate_file(file)).resolve()
            if not source.is_file() or here not in source.parents:
                continue  # console scripts and the like live outside site-packages: not needed to import
            target = site / source.relative_to(here)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(source)
    return python


def test_quick_start_install_runs_the_server_and_default_worker_without_torch(tmp_path):
    """requirements.txt resolves to no torch (nor any other engine, test or bench tool), and a venv holding only
    that set starts the server, whose default local worker transcribes a corpus recording."""
    dists = resolve(requirement_lines(ROOT / "requirements.txt"))
    assert "faster-whisper" in dists and "flask-socketio" in dists
    assert not NOT_IN_QUICK_START & set(dists), f"the quick start pulls in {NOT_IN_QUICK_START & set(dists)}"
    python = link_venv(tmp_path / "venv", dists)
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
                           capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "None", "torch is importable from the quick-start venv"

    server = Server(tmp_path, local_workers=1, python=str(python))
    try:
        server.wait_workers(1, timeout=120)
        name = "ls_dev-clean_1272-128104-0000.wav"
        done = server.wait_job(server.submit(corpus_file(name)))
        assert done["status"] == "done"
        assert wer(manifest()[name]["reference"], done["transcript"]) < 20, done["transcript"]
    finally:
        server.stop()
    assert not re.search(r"ModuleNotFoundError|ImportError", server.log()), server.log()
