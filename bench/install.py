"""``python -m bench.install``: how big the installs are, measured in fresh virtual environments.

Builds one venv per requirements file (``python3 -m venv``, then ``pip install -r FILE``, from the package
registry or pip's cache) in a temporary folder and measures it as ``du -sh`` does, with its largest packages.
The quick start installs ``requirements.txt``; the tests install ``requirements-dev.txt``. Writes
``bench/results/install.md`` and ``.json``. Downloads what pip's cache lacks: a few minutes the first time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import machine, report  # noqa: E402

FILES = {"quick start": "requirements.txt", "tests and benchmarks": "requirements-dev.txt"}


def du_bytes(path: Path) -> int:
    """Disk usage in bytes, as ``du -s`` counts it (blocks, not file lengths)."""
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def human(n: int) -> str:
    """Bytes as ``du -h`` would write them (powers of 1024)."""
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit in ("B", "K", "M") else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}G"


def measure(requirements: str, scratch: Path, log=print) -> dict:
    """A fresh venv with ``requirements`` installed: its size, its packages, its largest folders."""
    venv = scratch / Path(requirements).stem
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run(pip + ["-r", str(ROOT / requirements)], capture_output=True, text=True)
    if done.returncode != 0:  # pip's own warnings stay out of the log unless the install fails
        raise RuntimeError(f"pip install -r {requirements} failed:\n{done.stdout}{done.stderr}")
    seconds = time.perf_counter() - t0
    site = next((venv / "lib").glob("python3*/site-packages"))
    listed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True)
    packages = sorted(p["name"].lower() for p in json.loads(listed.stdout))
    folders = sorted(((du_bytes(p), p.name) for p in site.iterdir()), reverse=True)[:8]
    size = du_bytes(venv)
    log(f"{requirements}: {human(size)} in {seconds:.0f} s, {len(packages)} packages")
    return {"file": requirements, "bytes": size, "du_sh": human(size), "install_s": round(seconds, 1),
            "packages": packages, "largest": [[name, human(n)] for n, name in folders]}


def markdown(results: dict[str, dict]) -> str:
    lines = ["Each file installed into a fresh `python3 -m venv` (pip and setuptools included); size as "
             "`du -sh` of the whole venv.", "",
             "| install | file | size | packages | torch | largest folders in site-packages |",
             "|---|---|---:|---:|---|---|"]
    for label, r in results.items():
        torch = "yes" if "torch" in r["packages"] else "no"
        largest = ", ".join(f"{name} {size}" for name, size in r["largest"])
        lines.append(f"| {label} | `{r['file']}` | {r['du_sh']} | {len(r['packages'])} | {torch} | {largest} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.install", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "install.md")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scatterscribe-install-") as tmp:
        results = {label: measure(f, Path(tmp)) for label, f in FILES.items()}
    text = report.header("Install sizes", machine.describe(), "python -m bench.install") + "\n" + markdown(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
