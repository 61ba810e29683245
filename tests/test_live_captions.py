"""Tentative text on a coordinator (server/live_captions.py with live_jobs.py, a real store in a temporary folder):
real corpus speech streamed in 250 ms chunks with the clock stepped, a worker that is only an id in the
scheduler (what the server sends it is kept; its answers are the calls a worker's events make). No sockets,
nothing sleeps. The same with real processes and the page: tests/test_live_e2e.py."""

from __future__ import annotations

import io
import json
import wave

import numpy as np

from server import audio, payloads, transcript
from server.config import ServerSettings, Settings
from server.coordinator import Coordinator
from server.live_captions import LiveCaptions
from server.live_jobs import DELETED, LiveJobs
from server.scheduler import Requirement, WorkerInfo
from server.store import Store
from server.tentative import TentativeOptions
from tests.support import corpus_file

RATE = 16000
CHUNK = RATE // 4
HARVARD = "osr_us_000_0034_harvard_list72.wav"  # read sentences with pauses: the first slice closes after ~8 s


class Site:
    """LiveJobs and LiveCaptions on a real coordinator and store; every emit is kept in ``sent``."""

    def __init__(self, tmp_path, opts: TentativeOptions = TentativeOptions()):
        self.sent: list[tuple[str, dict, str | None]] = []
        settings = Settings(server=ServerSettings(data_dir=str(tmp_path)))
        self.coord = Coordinator(settings, Store(tmp_path / "jobs.db"),
                                 lambda event, data, to=None, **_: self.sent.append((event, data, to)))
        self.now = 0.0
        self.captions = LiveCaptions(self.coord, opts, clock=lambda: self.now)
        self.live = LiveJobs(self.coord, settings.live, clock=lambda: self.now, captions=self.captions)

    def worker(self, worker_id: str, **info) -> None:
        self.coord.worker_connected(worker_id, WorkerInfo(worker_id, **{"tentative": True, **info}))

    def answer(self, worker_id: str, request: dict, text) -> None:
        """The worker's answer to ``request``, as its event reaches the captions (parsed at the edge)."""
        data = {"id": request["id"], "job": request["job"], "text": text}
        self.captions.answered(worker_id, payloads.tentative_text(data, 20_000))

    def take(self, event: str, to: str | None = None) -> list[dict]:
        """The ``event``s sent so far (to ``to``, if given), removed from ``sent``."""
        found = [{**data, "_to": dest} for e, data, dest in self.sent if e == event and (to is None or dest == to)]
        self.sent = [s for s in self.sent if not (s[0] == event and (to is None or s[2] == to))]
        return found


def speech() -> np.ndarray:
    return audio.PcmFile(corpus_file(HARVARD))[:]


def samples_of(wav: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def stream(site: Site, job: dict, pcm: np.ndarray, first_seq: int, answer=None) -> list[dict]:
    """Send ``pcm`` in 250 ms chunks from ``first_seq``, the clock a chunk's length on each; ``answer(request)``
    gives each request's text as the worker would (None: the request stays unanswered). Returns the requests."""
    requests = []
    for n, first in enumerate(range(0, len(pcm), CHUNK)):
        site.now = (first_seq + n + 1) * 0.25
        reply = site.live.chunk(payloads.live_chunk({**job, "seq": first_seq + n,
                                                     "pcm": pcm[first : first + CHUNK].tobytes()}))
        assert "error" not in reply, reply
        for request in site.take("tentative"):
            request["_end"] = site.live.sessions[job["job"]].session.samples_out  # the audio stored then
            requests.append(request)
            text = answer(request) if answer else None
            if text is not None:
                site.answer(request["_to"], request, text)
    return requests


def start(site: Site, page: str = "page") -> dict:
    started = site.live.start("rec.wav", RATE, page=page)
    return {"job": started["job"], "key": started["key"]}


def test_the_open_part_is_sent_about_once_a_second_and_its_text_shown(tmp_path):
    """Speech with a free worker: a request once a second at most, each for the open part from its start to
    the newest audio (the very samples stored), the stable words as its prefix; every answer that changes the
    text is pushed to the job's pages as `partial` and is in the job view, never in the transcript or a
    download."""
    site = Site(tmp_path)
    site.worker("w")
    job = start(site)
    pcm = speech()[: 6 * RATE]  # "A gold ring will please most any girl. The long journey home ..."
    words = "A gold ring will please most any girl the long journey home".split()
    requests = stream(site, job, pcm, 0, answer=lambda r: " ".join(words[: len(samples_of(r["audio"])) // 8000]))
    assert 4 <= len(requests) <= 6, "about one a second over 6 s, none before there is speech"
    stored = audio.PcmFile(site.coord.audio_path(job["job"]))[:]
    starts = set()
    for request in requests:
        sent = samples_of(request["audio"])
        end = request["_end"]
        assert np.array_equal(sent, stored[end - len(sent) : end]), "the stored audio, to the newest sample"
        starts.add(end - len(sent))
    assert len(starts) == 1, "each from the start of the open part (the leading silence left out)"
    assert [r["prefix"] for r in requests][-1].startswith("A gold ring")
    pushed = site.take("partial")
    assert pushed and all(p["job"] == job["job"] for p in pushed)
    view = site.coord.job_view(job["job"])
    assert view["partial"] == pushed[-1]["partial"] and view["partial"]["start"] == starts.pop() / RATE
    assert view["partial"]["text"].startswith("A gold ring will please") and view["transcript"] == ""
    stored_job = site.coord.store.get_job(job["job"])
    assert "partial" not in json.loads(transcript.to_json(stored_job, view))
    assert transcript.to_txt(stored_job).strip() == ""


def test_no_free_slot_means_no_tentative_text_and_nothing_waits(tmp_path):
    """With no worker, or only one that cannot decode tentative text, no request goes and the job view's
    partial stays null; a worker connecting later is asked at once."""
    site = Site(tmp_path)
    site.worker("plain", tentative=False)
    job = start(site)
    assert stream(site, job, speech()[: 4 * RATE], 0) == []
    assert site.coord.job_view(job["job"])["partial"] is None and not site.take("partial")
    site.worker("w")
    assert stream(site, job, speech()[4 * RATE : 5 * RATE], 16), "asked once a worker can"


def test_a_closed_slice_takes_the_free_slot_and_its_tentative_text_goes(tmp_path):
    """When the first slice closes: the job push that shows it carries no partial, the request still out is
    called back, and the slice goes to the worker's only slot, so no tentative request goes until the slice is
    answered; then the open part after the slice is asked for."""
    site = Site(tmp_path)
    site.worker("w", slots=1)
    job = start(site)
    pcm = speech()
    seq, out, slices, shown = 0, [], [], None
    while not slices:  # stream until the first slice closes; each request is answered when the next one goes
        for request in stream(site, job, pcm[seq * CHUNK : (seq + 1) * CHUNK], seq):
            for earlier in out:
                site.answer("w", earlier, "A gold ring")
            out = [request]
        seq += 1
        slices = site.take("slice", to="w")
        shown = shown or site.coord.job_view(job["job"])["partial"]
    assert shown and shown["text"] == "A gold ring", "tentative text was shown before the slice closed"
    views = [v for v in site.take("job") if v["slices"]]
    assert views and views[0]["partial"] is None, "the push showing the slice has no tentative text"
    assert [c["lease"] for c in site.take("cancel", to="w")] == [out[0]["id"]], "the request out is called back"
    site.answer("w", out[0], "A gold ring will")
    assert site.coord.job_view(job["job"])["partial"] is None, "its late answer is not shown"
    more = stream(site, job, pcm[seq * CHUNK : (seq + 8) * CHUNK], seq)
    assert more == [], "the only slot holds the slice: no tentative work"
    lease = slices[0]
    data = {"lease": lease["lease"], "job": job["job"], "index": 0, "text": "final words"}
    site.coord.result("w", payloads.result(data, payloads.slice_ref(data), 20_000))
    seq += 8
    after = stream(site, job, pcm[seq * CHUNK : (seq + 8) * CHUNK], seq)
    end_of_slice = site.coord.job_view(job["job"])["slices"][0]["end"]
    assert after and all(samples_of(r["audio"]).size < (seq + 8) * CHUNK - end_of_slice * RATE + CHUNK
                         for r in after), "only the audio after the closed slice"


def test_stop_ends_the_tentative_text(tmp_path):
    """After Stop the job view has no partial, no request goes, and a late answer is not shown."""
    site = Site(tmp_path)
    site.worker("w")
    job = start(site)
    requests = stream(site, job, speech()[: 3 * RATE], 0, answer=lambda r: "A gold ring")
    late = stream(site, job, speech()[3 * RATE : 4 * RATE], 12)
    assert site.coord.job_view(job["job"])["partial"]["text"] == "A gold ring"
    assert site.live.stop(payloads.live_stop({**job, "last_seq": 15}))["finished"]
    assert site.coord.job_view(job["job"])["partial"] is None
    final = site.take("job")[-1]
    assert final["partial"] is None and final["recording"] is False
    for request in late:
        site.answer("w", request, "too late")
    assert site.coord.job_view(job["job"])["partial"] is None and requests


def test_an_answer_from_another_worker_or_for_another_job_is_not_shown(tmp_path):
    """Only the worker that was asked may answer a request, and only for the job it was about."""
    site = Site(tmp_path)
    site.worker("w")
    site.worker("other")
    job = start(site)
    asked = stream(site, job, speech()[: 3 * RATE], 0)[-1]
    stranger = "w" if asked["_to"] == "other" else "other"
    other = start(site, page="another page")
    site.answer(stranger, asked, "stolen")
    site.answer(asked["_to"], {**asked, "job": other["job"]}, "misfiled")
    assert site.coord.job_view(job["job"])["partial"] is None
    assert site.coord.job_view(other["job"])["partial"] is None
    site.answer(asked["_to"], asked, "A gold ring")
    assert site.coord.job_view(job["job"])["partial"]["text"] == "A gold ring"


def test_deleting_a_job_being_recorded_ends_its_recording_and_tentative_text_at_once(tmp_path):
    """DELETE while recording: at once the recording's session and slot are gone, the request out is called
    back, the recording page hears `live_ended` with the reason and the job's pages `partial` null; the next
    chunk is refused as finished and nothing is written where the job was."""
    site = Site(tmp_path)
    site.worker("w")
    job = start(site, page="the-page")
    out = stream(site, job, speech()[: 3 * RATE], 0, answer=lambda r: "A gold ring")
    out += stream(site, job, speech()[3 * RATE : 4 * RATE], 12)  # unanswered: a request is out
    assert site.coord.job_view(job["job"])["partial"]["text"] == "A gold ring"
    folder = site.coord.job_dir(job["job"])
    site.sent.clear()
    assert site.coord.delete_job(job["job"])
    assert job["job"] not in site.live.sessions and job["job"] not in site.coord.partials
    assert site.take("live_ended", to="the-page") == [{"job": job["job"], "error": DELETED, "_to": "the-page"}]
    assert {"job": job["job"], "partial": None, "_to": f"job:{job['job']}"} in site.take("partial")
    assert {c["lease"] for c in site.take("cancel", to="w")} >= {out[-1]["id"]}
    reply = site.live.chunk(payloads.live_chunk({**job, "seq": 16, "pcm": speech()[: CHUNK].tobytes()}))
    assert reply["finished"] is True and "error" in reply
    assert not folder.exists()
    assert site.live.start("next.wav", RATE, page="the-page").get("job"), "the page may record again"


def test_a_recording_that_asks_for_an_engine_gets_its_tentative_text_and_slices_only_from_it(tmp_path):
    """Two idle workers that both decode tentative text, a faster-whisper one and a sleep-engine one; a recording
    started asking for the sleep engine: every tentative request and its closed slice go to the sleep worker
    only, though the other would be picked first otherwise (its name sorts first)."""
    site = Site(tmp_path)
    site.worker("a-fw", engine="faster-whisper", model="tiny.en")
    site.worker("b-sleep", engine="sleep", model="0.05")
    started = site.live.start("rec.wav", RATE, page="page", requirement=Requirement("sleep"))
    job = {"job": started["job"], "key": started["key"]}
    assert site.coord.job_view(job["job"])["engine"] == "sleep"
    requests = stream(site, job, speech()[: 12 * RATE], 0)
    assert requests and {r["_to"] for r in requests} == {"b-sleep"}
    sent = site.take("slice")
    assert sent and {s["_to"] for s in sent} == {"b-sleep"}, "the closed slice too"

    (tmp_path / "other").mkdir()
    other = Site(tmp_path / "other")  # the same workers, a recording that asks for nothing: either may serve it
    other.worker("a-fw", engine="faster-whisper", model="tiny.en")
    other.worker("b-sleep", engine="sleep", model="0.05")
    assert {r["_to"] for r in stream(other, start(other), speech()[: 3 * RATE], 0)} == {"a-fw"}
