"""A description of the machine a benchmark ran on, for the results' header."""

from __future__ import annotations

import os
import platform
from importlib import metadata

#: Libraries whose versions decide the numbers.
LIBRARIES = ("faster-whisper", "ctranslate2", "numpy", "flask-socketio", "python-socketio", "eventlet")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def describe() -> dict[str, str]:
    """Cores, CPU model, OS, Python and library versions, and the load average when asked."""
    return {"cores": str(os.cpu_count()), "cpu": cpu_model(),
            "os": f"{platform.system()} {platform.release()}", "load average (1/5/15 min)": load_average(),
            **versions()}


def markdown(info: dict[str, str]) -> str:
    return "\n".join(f"- **{k}**: {v}" for k, v in info.items())
