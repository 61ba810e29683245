"""A real worker process whose engine misbehaves on purpose: fault injection for the resilience tests.

    python tests/faulty_worker.py MODE [python -m client arguments...]

MODE ``fail-over=S`` transcribes slices of at most S seconds for real (the default engine) and raises on longer
ones; ``hang`` never returns from its first slice. Everything else (connection, leases, heartbeats, results) is
the real worker code.
"""

import sys
import threading
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from client import engines  # noqa: E402
from client.cli import main  # noqa: E402


class FaultyEngine:
    def __init__(self, mode: str, **opts):
        self.real = engines.create_engine("faster-whisper", **opts)
        self.name, self.model, self.max_slice_s = self.real.name, self.real.model, self.real.max_slice_s
        self.mode = mode

    def transcribe(self, audio):
        seconds = len(audio) / 16000
        if self.mode == "hang":
            threading.Event().wait()  # stuck for good, while the heartbeat thread keeps the connection alive
        if self.mode.startswith("fail-over=") and seconds > float(self.mode.split("=", 1)[1]):
            raise RuntimeError(f"simulated engine failure on a {seconds:.1f} s slice")
        yield from self.real.transcribe(audio)


if __name__ == "__main__":
    mode = sys.argv.pop(1)
    engines.ENGINES["faulty"] = lambda **opts: FaultyEngine(mode, **opts)
    sys.exit(main(sys.argv[1:] + ["--engine", "faulty"]))
