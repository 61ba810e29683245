"""The bench cannot rot: ``python -m bench --quick`` runs every part end to end on a few seconds of audio.

Its numbers are not checked here (timing goals live in the bench's own report, never in tests); what is
checked is that each part ran the real thing and wrote its table, raw numbers and plot.
"""

import json
import subprocess

from tests.support import PYTHON, ROOT

PARTS = ("compare", "before", "scaleout", "memory", "splitter")


def test_quick_bench_writes_every_part(tmp_path):
    """Every part runs on ~10 s of audio and writes markdown (machine described), JSON and PNG;
    Scatterscribe's jobs carry the server's timing stats; the scratch folder is cleaned up."""
    # The before part runs HEAD's code as "before": a shallow clone has no older commit, and the point here is
    # that exporting a commit and running its server and workers works.
    command = [PYTHON, "-m", "bench", *PARTS, "--quick", "--before", "HEAD", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for part in PARTS:
        text = (tmp_path / f"{part}.md").read_text()
        assert "**cores**" in text and "**cpu**" in text and "| " in text
    for plot in ("compare.png", "scaleout.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    compare = json.loads((tmp_path / "compare.json").read_text())
    assert set(compare["sides"]) == {"plain", "batched", "ss-1x2", "ss-2x1"}
    assert compare["long_recordings"] == 1
    for key, side in compare["sides"].items():
        assert side["wall_s"] and all(t > 0 for t in side["wall_s"]) and side["wer"]["trusted"] < 30, key
        assert side["long_s"] and side["long_wer"] is not None, key
    for run in compare["sides"]["ss-2x1"]["runs"]:
        assert {"decode_s", "split_s", "dispatch_s", "merge_s", "transcribe_s", "transfer_s"} <= set(run)
    scale = json.loads((tmp_path / "scaleout.json").read_text())
    assert [p["workers"] for p in scale["points"]] == [1, 2]
    for point in scale["points"]:
        assert all(0 < ideal / wall <= 1.05 for ideal, wall in zip(point["ideal_s"], point["wall_s"], strict=True))
    memory = json.loads((tmp_path / "memory.json").read_text())
    assert memory["server_peak_mb"] >= memory["server_idle_mb"] > 0
    assert memory["server_mp3_peak_mb"] >= memory["server_mp3_idle_mb"] > 0 and memory["mp3_s"] > 0
    assert memory["server_block_peak_mb"] >= memory["server_block_idle_mb"] > 0 and memory["block_mb"] > 0.4
    old = json.loads((tmp_path / "before.json").read_text())
    assert old["commit"] == "HEAD" and set(old["sides"]) == {"before", "after-1", "after"}
    assert all(side["wall_s"] and side["wer"]["trusted"] < 30 for side in old["sides"].values())
    splitter = json.loads((tmp_path / "splitter.json").read_text())
    assert {"numpy", "silero", "pydub-1", "pydub-10"} == set(splitter["methods"])
    assert not any((tmp_path / "tmp").glob("2*")), "scratch data left behind"


def test_quick_ceiling_measures_a_server_under_simulated_workers(tmp_path):
    """The ceiling part starts a real server, simulated workers and pages (bench/swarm.py), and reports slices
    returned per second, hand-out and push latencies and a py-spy profile of the server (or why py-spy could
    not take one)."""
    command = [PYTHON, "-m", "bench", "ceiling", "--quick", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "ceiling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    raw = json.loads((tmp_path / "ceiling.json").read_text())
    (point,) = raw["points"]
    assert point["workers"] == 4 and point["results_per_s"] > 0 and point["errors"] == 0
    assert point["handout_ms"][0] > 0 and point["pushes"] > 0
    # py-spy cannot read every Python build (a shared libpython without its version string): then the report
    # says so in py-spy's words rather than showing an empty profile
    assert point["profile_self"] or point["profile_error"], "py-spy saw nothing and said nothing"
    if not point["profile_self"]:
        assert "py-spy could not sample the server" in (tmp_path / "ceiling.md").read_text()
    assert "| workers |" in (tmp_path / "ceiling.md").read_text()


def test_quick_width_bench_scores_every_width(tmp_path):
    """The width part runs two widths and both faster-whisper baselines on the shortest long recording and a
    short joined workload, and writes its table, raw numbers and plot; every side has a time, a WER per
    recording and (for Scatterscribe) its slice counts. The slicing part scores two slice lengths with and
    without guard bands; the beams part times and scores two beam widths against the first."""
    command = [PYTHON, "-m", "bench", "width", "slicing", "beams", "--quick", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| Scatterscribe, 4 slots" in (tmp_path / "width.md").read_text()
    assert (tmp_path / "width.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width = json.loads((tmp_path / "width.json").read_text())
    assert set(width["sides"]) == {"plain", "batched", "one-1", "one-4"}
    for key, side in width["sides"].items():
        assert side["long_s"] and side["joined_s"] and side["long_wer_all"] < 40, key
        assert set(side["per_file_wer"]) == {r["name"] for r in width["recordings"]}, key
    assert width["sides"]["one-4"]["long_slices"] and width["sides"]["one-1"]["slots"] == 1
    points = json.loads((tmp_path / "slicing.json").read_text())["points"]
    assert [(p["max_slice_s"], p["guard_s"], p["prompt"]) for p in points] == \
        [(8, 0, False), (8, 6, False), (28, 0, False), (28, 6, False), (8, 6, True)]
    assert all(p["slices"] >= 1 and 0 <= p["wer_all"] < 40 for p in points)
    beams = json.loads((tmp_path / "beams.json").read_text())
    assert [b["beam_size"] for b in beams["beams"]] == [5, 1] and beams["joined_slices"] >= 1
    assert beams["beams"][0]["ratios"] == [1.0] and beams["beams"][1]["ratios"][0] > 0
    assert all(b["joined_s"][0] > 0 and 0 <= b["long_wer"] < 40 for b in beams["beams"])
    assert "| 1 |" in (tmp_path / "beams.md").read_text()


def test_quick_speakers_bench_runs_the_real_thing(tmp_path):
    """``python -m bench speakers --quick``: a short two-person conversation, the same with noise under it, through
    two real --diarize workers, and the stereo call; the table and the raw numbers are written, each clean
    conversation's speakers found (by voice, then by channel) and its words labelled, the noisy one's words
    labelled; the clustering is timed on made-up voices and finds the three clear people."""
    command = [PYTHON, "-m", "bench", "speakers", "--quick", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "**cores**" in (tmp_path / "speakers.md").read_text()
    raw = json.loads((tmp_path / "speakers.json").read_text())
    assert [(m["method"], m["noisy"]) for m in raw["mixes"]] == [("voice", False), ("voice", True), ("channel", False)]
    for mix in raw["mixes"]:
        assert mix["words"] > 10 and mix["found"] >= 1, mix
        if not mix["noisy"]:
            assert mix["found"] == mix["voices"] == 2 and mix["right"] > 0.9, mix
    assert [(c["people"], c["found"]) for c in raw["cost"]][2] == (3, 3) and raw["cost"][2]["right"] > 0.95
    assert all(c["median_s"] > 0 for c in raw["cost"])
    assert raw["mixes"][0]["voices_worker_s"] > 0 and raw["mixes"][0]["transcribe_s"] > 0
    assert raw["same"][2] > raw["threshold"] > raw["different"][2]


def test_quick_subtitles_bench_counts_the_rules_before_and_after(tmp_path):
    """``python -m bench.subtitles --quick`` transcribes one recording through a real server and worker and
    counts, for the old one-cue-per-segment subtitles and the new ones, the cues that break each rule; the new
    ones break none."""
    command = [PYTHON, "-m", "bench.subtitles", "--quick", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "**cores**" in (tmp_path / "subtitles.md").read_text()
    counts = json.loads((tmp_path / "subtitles.json").read_text())
    assert counts["before"]["cues"] > 0 and counts["after"]["cues"] > 0
    assert all(v == 0 for k, v in counts["after"].items() if k not in ("cues", "longest line (characters)",
                                                                       "faster than 20 characters/s"))
