"""The async mode (server/runtime.py): read before anything else, so eventlet patches a clean process.

eventlet keeps quiet about locks it could not make green when it runs under pytest (it looks for
``PYTEST_CURRENT_TEST``), so the start-up test takes that out of the server's environment, as a real start has
none.
"""

from __future__ import annotations

import pytest

from server import runtime
from tests.support import Server, write_config


@pytest.mark.parametrize(("argv", "config", "mode"), [
    ([], None, "eventlet"),
    (["--async-mode", "threading"], None, "threading"),
    (["--port", "5001", "--async-mode=threading"], None, "threading"),
    ([], '[server]\nasync_mode = "threading"\n', "threading"),
    (["--async-mode", "eventlet"], '[server]\nasync_mode = "threading"\n', "eventlet"),  # the flag wins
    ([], "[server\nbroken", "eventlet"),  # the full parse says what is wrong
    ([], 'server = "not a table"\n', "eventlet"),
    (["--async-mode"], None, "eventlet"),
])
def test_the_mode_is_read_from_the_flag_then_the_config_file(tmp_path, argv, config, mode):
    """``--async-mode`` wins over ``[server] async_mode`` of ``--config``, which wins over eventlet; what
    cannot be read gives the default (``config.parse_args`` reports it afterwards)."""
    if config is not None:
        (tmp_path / "c.toml").write_text(config)
        argv = [*argv, "--config", str(tmp_path / "c.toml")]
    assert runtime.wanted_mode(argv) == mode


@pytest.mark.parametrize("mode", ["eventlet", "threading"])
def test_a_server_starts_without_eventlets_lock_warning(tmp_path, monkeypatch, mode):
    """The review: every start logged "1 RLock(s) were not greened", because the settings were read (importing
    numpy, whose random generator holds a lock) before eventlet patched the standard library. The mode is now
    read alone first; the log of a start and stop holds no such line and no traceback."""
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    server = Server(tmp_path, config=write_config(tmp_path / "c.toml", server={"async_mode": mode}))
    assert server.stop() == 0
    log = server.log()
    assert "Scatterscribe on http://127.0.0.1" in log
    assert "greened" not in log and "Traceback" not in log, log


def test_eventlet_is_imported_only_where_the_async_mode_is_set_up():
    """eventlet's upstream has stopped maintaining it, so it stays in one place: of the server's and the
    worker's modules, only server/runtime.py (which patches for it) and server/serving.py (its HTTP server,
    which runtime.py alone imports, and only under eventlet) import it. (server/uploads.py only reads the WSGI
    environ's ``eventlet.input`` when it is there.)"""
    import ast

    from tests.support import ROOT

    importers = set()
    for path in sorted([*(ROOT / "server").rglob("*.py"), *(ROOT / "client").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(n == "eventlet" or n.startswith("eventlet.") for n in names):
                importers.add(path.relative_to(ROOT).as_posix())
    assert importers == {"server/runtime.py", "server/serving.py"}
    serving_importers = {p.relative_to(ROOT).as_posix() for p in (ROOT / "server").rglob("*.py")
                         if "serving import" in p.read_text() or "import serving" in p.read_text()}
    assert serving_importers == {"server/runtime.py"}
