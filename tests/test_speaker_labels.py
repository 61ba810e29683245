"""Speaker labels through the server (server/speaker_jobs.py, channels.py): voices kept as results arrive and
clustered over the whole job, every word and segment labelled, names stored and used in every download, a job
without voices saying why, a stereo call labelled by its channels; and, with real processes, a two-person
conversation transcribed by two ``--diarize`` workers.

The in-process tests answer slices with voices made here (vectors around one direction per person): what they
check is the server's bookkeeping, not the encoder, which the real-worker tests use."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import conversations
from server import payloads, speakers
from server.app import create_app
from server.config import ServerSettings, Settings
from server.coordinator import Coordinator
from server.records import JobRecord, SliceRecord
from server.scheduler import Requirement, WorkerInfo
from server.store import Store
from tests.support import Server, corpus_file, wait_for
from tests.test_coordinator import Recorder

BUSH = "bush_radio_address_2008-11-01.wav"  # 127 s: five slices
RNG = np.random.default_rng(7)
PEOPLE = RNG.standard_normal((3, 64))


def voice(person: int, start: float, end: float) -> dict:
    v = PEOPLE[person] + 0.4 * np.linalg.norm(PEOPLE[person]) * RNG.standard_normal(64) / 8
    return {"start": start, "end": end, "vector": (v / np.linalg.norm(v)).tolist()}


@pytest.fixture
def coordinator(tmp_path):
    coord = Coordinator(Settings(server=ServerSettings(data_dir=str(tmp_path / "data"))), Store(tmp_path / "db"),
                        Recorder())
    coord.worker_connected("w1", WorkerInfo(name="w1", slots=8, diarize=True))
    return coord


def submit(coord: Coordinator, name: str = BUSH, count: int | None = None) -> str:
    job_id, upload = coord.new_upload_path()
    shutil.copy(corpus_file(name), upload)
    return coord.create_job(job_id, upload, name, Requirement(), speaker_count=count).id


def answer(coord: Coordinator, sent: dict, voices: list[dict] | None, **extra) -> None:
    """Answer slice ``sent`` with two timed words ("one" at 1 s, "two" at 5 s) and ``voices``."""
    words = [{"start": 1.0, "end": 1.5, "word": "one", "probability": 0.9},
             {"start": 5.0, "end": 5.5, "word": "two", "probability": 0.9}]
    data = {"lease": sent["lease"], "job": sent["job"], "index": sent["index"], "text": "one two",
            "segments": [{"start": 1.0, "end": 1.5, "text": "one", "words": words[:1]},
                         {"start": 5.0, "end": 5.5, "text": "two", "words": words[1:]}], **extra}
    if voices is not None:
        data.update(voices=voices, voice_model="test", voice_s=0.1)
    assert coord.result("w1", payloads.result(data, payloads.slice_ref(data), 20_000)) == {"ok": True}


def slices_sent(coord: Coordinator) -> list[dict]:
    return [data for event, data, _ in coord.emit.sent if event == "slice"]


def test_voices_become_speakers_as_slices_arrive_and_final_when_done(coordinator):
    """Each slice: person 0 speaks at 1 s, person 1 at 5 s. After the first result the job has two provisional
    speakers; at the end the labels are final, every word's speaker follows its person across all slices, and
    each segment has the speaker of its words."""
    job_id = submit(coordinator)
    sent = slices_sent(coordinator)
    assert len(sent) >= 3
    answer(coordinator, sent[0], [voice(0, 0.5, 3.0), voice(1, 4.5, 7.0)])
    first = coordinator.job_view(job_id)
    assert first["speakers"]["status"] == "labelled" and not first["speakers"]["final"]
    for data in sent[1:]:
        answer(coordinator, data, [voice(0, 0.5, 3.0), voice(1, 4.5, 7.0)])
    view = coordinator.job_view(job_id)
    assert view["status"] == "done" and view["speakers"]["final"] and view["speakers"]["method"] == "voice"
    assert [s["name"] for s in view["speakers"]["list"]] == ["Speaker 1", "Speaker 2"]
    for s in view["slices"]:
        one, two = s["segments"]
        assert (one["speaker"], one["words"][0]["speaker"]) == ("Speaker 1", "Speaker 1")
        assert (two["speaker"], two["words"][0]["speaker_id"]) == ("Speaker 2", 2)
    stored = coordinator.store.voices(job_id)
    assert len(stored) == len(sent) and all(len(r.spans) == 2 and r.dim == 64 for r in stored)


def test_the_users_count_is_kept(coordinator):
    """Asked for one speaker, two people are labelled as one."""
    job_id = submit(coordinator, count=1)
    for data in slices_sent(coordinator):
        answer(coordinator, data, [voice(0, 0.5, 3.0), voice(1, 4.5, 7.0)])
    view = coordinator.job_view(job_id)["speakers"]
    assert view["requested"] == 1 and len(view["list"]) == 1


def test_a_job_whose_workers_sent_no_voices_says_it_has_no_labels_and_why(coordinator):
    """Every slice answered without voices: the job is done, with no speakers and the reason; a worker whose
    encoder failed says why instead."""
    job_id = submit(coordinator)
    for data in slices_sent(coordinator):
        answer(coordinator, data, None)
    view = coordinator.job_view(job_id)
    assert view["status"] == "done" and view["speakers"]["status"] == "none"
    assert view["speakers"]["note"] == speakers.NO_VOICES and "--diarize" in speakers.NO_VOICES
    assert all("speaker" not in seg for s in view["slices"] for seg in s["segments"])
    items = json.loads(coordinator_json(coordinator, job_id))["segments"]
    assert items and all(i["speaker"] is None and all(w["speaker"] is None for w in i["words"]) for i in items)


def coordinator_json(coord: Coordinator, job_id: str) -> str:
    from server import transcript
    return transcript.to_json(coord.store.get_job(job_id), coord.job_view(job_id))


def test_slices_without_voices_are_counted_and_their_words_left_unlabelled(coordinator):
    """The first and last slices with voices, the others without: the job is labelled, says how many slices
    have no voices, and the unvoiced slices' words are not given a speaker from far away."""
    job_id = submit(coordinator)
    sent = sorted(slices_sent(coordinator), key=lambda d: d["index"])
    n = len(sent)
    for data in sent:
        answer(coordinator, data, [voice(0, 0.5, 3.0), voice(1, 4.5, 7.0)] if data["index"] in (0, n - 1) else None)
    view = coordinator.job_view(job_id)
    assert view["speakers"]["status"] == "labelled" and f"{n - 2} of {n} slices" in view["speakers"]["note"]
    labelled = [s["segments"][0].get("speaker") for s in view["slices"]]
    assert labelled[0] == labelled[-1] == "Speaker 1" and labelled[1:-1] == [None] * (n - 2)


def test_voices_that_cannot_be_used_cost_the_labels_not_the_text(coordinator):
    """A result whose voices are malformed (a NaN, an impossible time) is stored with its text; the voices are
    dropped and the reason kept."""
    job_id = submit(coordinator, name="jfk_inaugural_excerpt.wav")
    sent = slices_sent(coordinator)
    answer(coordinator, sent[0], [{"start": 5.0, "end": 1.0, "vector": [0.1] * 16}])
    for data in sent[1:]:
        answer(coordinator, data, [{"start": 1.0, "end": 2.0, "vector": [float("nan")] * 16}])
    view = coordinator.job_view(job_id)
    assert view["transcript"] == " ".join(["one two"] * len(sent)) and view["speakers"]["status"] == "none"
    assert view["speakers"]["note"].startswith("no speaker labels: the workers' voices could not be used (the "
                                               "server refused its voices: ")


def test_a_worker_whose_encoder_failed_says_why(coordinator):
    """No voices and a ``voice_error``: the job's note gives the worker's reason."""
    job_id = submit(coordinator, name="jfk_inaugural_excerpt.wav")
    for data in slices_sent(coordinator):
        answer(coordinator, data, None, voice_error="RuntimeError: out of memory")
    assert "(RuntimeError: out of memory)" in coordinator.job_view(job_id)["speakers"]["note"]


# --- the API, in process --------------------------------------------------------------------------------------

JOB = "0123456789abcdef"


@pytest.fixture
def app(tmp_path):
    flask_app, _ = create_app(Settings(server=ServerSettings(data_dir=str(tmp_path / "data"), local_workers=0)))
    coord = flask_app.extensions["scatterscribe"]
    words = [[0.5, 1.0, "Hello"], [1.1, 1.6, "there."], [3.0, 3.4, "Hi,"], [3.5, 4.0, "you."]]
    segments = [{"start": 0.5, "end": 1.6, "text": "Hello there.", "avg_logprob": None,
                 "words": [{"start": a, "end": b, "word": w, "probability": 0.9} for a, b, w in words[:2]]},
                {"start": 3.0, "end": 4.0, "text": "Hi, you.", "avg_logprob": None,
                 "words": [{"start": a, "end": b, "word": w, "probability": 0.9} for a, b, w in words[2:]]}]
    state = {**speakers.initial_state(None), "turns": [[0.4, 1.7, 1], [2.9, 4.1, 2]], "next_id": 3, "final": True}
    coord.store.create_job(JobRecord(JOB, "call.wav", "upload", 1.0, status="done", duration=5.0, speakers=state,
                                     slices=[SliceRecord(0, 0.0, 5.0, [(0.0, 5.0)], status="done",
                                                         text="Hello there. Hi, you.", segments=segments)]))
    yield flask_app
    coord.store.close()


def rename(client, speaker, body):
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = client.patch(f"/api/jobs/{JOB}/speakers/{speaker}", data=data, content_type="application/json")
    return response.status_code, response.get_json()


def test_a_renamed_speaker_is_named_in_the_view_and_every_download(app):
    """Speaker 2 becomes "Alice <QA>": the view, the .txt (a paragraph per speaker), the .srt (the name where the
    speaker changes), the .vtt (an escaped voice tag) and the .json (every segment and word) say so; a null
    name gives "Speaker 2" back."""
    client = app.test_client()
    assert rename(client, 2, {"name": "  Alice   <QA> "}) == (200, {"id": 2, "name": "Alice <QA>"})
    view = client.get(f"/api/jobs/{JOB}").get_json()
    assert [s["name"] for s in view["speakers"]["list"]] == ["Speaker 1", "Alice <QA>"]
    assert [p["speaker"] for p in view["paragraphs"]] == ["Speaker 1", "Alice <QA>"]
    text = client.get(f"/api/jobs/{JOB}/transcript.txt").get_data(as_text=True)
    assert text == "Speaker 1: Hello there.\n\nAlice <QA>: Hi, you.\n"
    srt = client.get(f"/api/jobs/{JOB}/transcript.srt").get_data(as_text=True)
    assert "Speaker 1: Hello there." in srt and "Alice <QA>: Hi, you." in srt
    vtt = client.get(f"/api/jobs/{JOB}/transcript.vtt").get_data(as_text=True)
    assert "<v Speaker 1>Hello there." in vtt and "<v Alice &lt;QA&gt;>Hi, you." in vtt
    segments = client.get(f"/api/jobs/{JOB}/transcript.json").get_json()["segments"]
    assert [(s["speaker"], [w["speaker"] for w in s["words"]]) for s in segments] == [
        ("Speaker 1", ["Speaker 1", "Speaker 1"]), ("Alice <QA>", ["Alice <QA>", "Alice <QA>"])]
    assert rename(client, 2, {"name": None}) == (200, {"id": 2, "name": "Speaker 2"})


@pytest.mark.parametrize("path,body,status,words", [
    (f"/api/jobs/{JOB}/speakers/7", {"name": "Bob"}, 404, "no speaker 7: its speakers are 1, 2"),
    ("/api/jobs/fedcba9876543210/speakers/1", {"name": "Bob"}, 404, "no job"),
    (f"/api/jobs/{JOB}/speakers/1", b"", 400, "no body"),
    (f"/api/jobs/{JOB}/speakers/1", b"{nope", 400, "not JSON"),
    (f"/api/jobs/{JOB}/speakers/1", {"name": "Bob", "x": 1}, 400, "nothing else"),
    (f"/api/jobs/{JOB}/speakers/1", {"name": " \t "}, 400, "empty"),
    (f"/api/jobs/{JOB}/speakers/1", {"name": "x" * 61}, 400, "longer than 60"),
    (f"/api/jobs/{JOB}/speakers/1", {"name": 5}, 400, '{"name": "Alice"}'),
    (f"/api/jobs/{JOB}/speakers/1", b"x" * 5000, 413, "over 4 KB"),
    (f"/api/jobs/{JOB}/speakers/one", {"name": "Bob"}, 404, "nothing answers"),
])
def test_bad_renames_get_a_4xx_with_a_sentence(app, path, body, status, words):
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = app.test_client().patch(path, data=data, content_type="application/json")
    assert response.status_code == status and words in response.get_json()["error"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(speaker=st.integers(0, 4), body=st.one_of(
    st.binary(max_size=64), st.builds(lambda v: json.dumps({"name": v}).encode(),
                                      st.one_of(st.text(max_size=80), st.none(), st.integers(), st.booleans()))))
def test_any_rename_gets_a_sentence_or_is_stored_as_cleaned(app, speaker, body):
    """Whatever the body and speaker: a 4xx with a sentence, or a 200 whose name is what the view then shows."""
    client = app.test_client()
    status, answer = rename(client, speaker, body)
    assert status in (200, 400, 404), (status, answer)
    if status != 200:
        assert answer["error"]
        return
    listed = {s["id"]: s["name"] for s in client.get(f"/api/jobs/{JOB}").get_json()["speakers"]["list"]}
    assert listed[speaker] == answer["name"] and 1 <= len(answer["name"]) <= speakers.MAX_NAME_CHARS


@pytest.mark.parametrize("value,ok", [("2", True), ("", True), ("0", False), ("21", False), ("two", False),
                                      ("1.5", False), ("-1", False), ("３", False)])
def test_the_upload_may_say_how_many_people_speak(app, value, ok):
    """The form field ``speakers``: 1–20, or empty; anything else is a 400 that says what is accepted."""
    with open(corpus_file("jfk_inaugural_excerpt.wav"), "rb") as f:
        response = app.test_client().post("/api/jobs", data={"audio": (f, "a.wav"), "speakers": value},
                                          content_type="multipart/form-data")
    if ok:
        assert response.status_code == 202
        view = app.test_client().get(f"/api/jobs/{response.get_json()['id']}").get_json()
        assert view["speakers"]["requested"] == (int(value) if value else None)
    else:
        assert response.status_code == 400 and "speakers must be a whole number from 1 to 20" in \
            response.get_json()["error"]


# --- real processes -------------------------------------------------------------------------------------------


def test_a_job_done_by_workers_without_voices_says_so(cluster):
    """The shared cluster's workers run without --diarize: the job is transcribed, has no speaker labels, and
    its view says why; the workers list says they do not diarize."""
    server, _ = cluster
    assert all(w["diarize"] is False for w in server.workers())
    view = server.wait_job(server.submit(corpus_file("jfk_inaugural_excerpt.wav")))
    assert view["status"] == "done" and view["transcript"]
    assert view["speakers"]["status"] == "none" and view["speakers"]["note"] == speakers.NO_VOICES


def test_a_stereo_call_is_labelled_by_its_channels(cluster, tmp_path):
    """The corpus's stereo-diarization recording answering LJ Speech on the other channel, transcribed by
    workers without any voice model: each word goes to the person on whose channel it was said."""
    server, _ = cluster
    call = conversations.stereo_call(tmp_path)
    view = server.wait_job(server.submit(call.path))
    assert view["speakers"]["method"] == "channel" and view["speakers"]["final"] and not view["speakers"]["note"]
    assert [s["id"] for s in view["speakers"]["list"]] == [1, 2]
    segments = server.get(f"/api/jobs/{view['id']}/transcript.json").json()["segments"]
    words = [(w["start"], w["end"], w["speaker_id"]) for s in segments for w in s["words"]]
    right, mapping = conversations.words_right(call.turns, words)
    assert mapping == {1: "lj", 2: "fw-right"} and right >= 0.95, (right, words)
    said = " ".join(w["word"] for s in segments for w in s["words"] if w["speaker_id"] == 2).lower()
    assert "horizon" in said and "distant" in said


def labelled_job(diarizing: dict) -> tuple[str, dict]:
    """The conversation transcribed by the diarizing workers (once per session), and its view with final
    labels."""
    server = diarizing["server"]
    if "job" not in diarizing:
        diarizing["job"] = server.submit(diarizing["conversation"].path)
    server.wait_job(diarizing["job"], timeout=300)
    return diarizing["job"], wait_for(lambda: (v := server.job(diarizing["job"]))["speakers"]["final"] and v, 30,
                                      "the final labels")


def test_two_people_are_told_apart_across_slices_and_workers(diarizing):
    """The conversation through two --diarize workers: two speakers found, at least 95 % of the words given
    the right one (labels mapped to people one to one), and each person has the same label in the slices
    alpha did as in those beta did."""
    server, conversation = diarizing["server"], diarizing["conversation"]
    assert all(w["diarize"] for w in server.workers())
    job_id, view = labelled_job(diarizing)
    assert len(view["speakers"]["list"]) == 2
    workers = {s["index"]: s["worker"] for s in view["slices"]}
    assert set(workers.values()) == {"alpha", "beta"}
    segments = server.get(f"/api/jobs/{job_id}/transcript.json").json()["segments"]
    words = [(w["start"], w["end"], w["speaker_id"]) for s in segments for w in s["words"]]
    right, _ = conversations.words_right(conversation.turns, words)
    assert len(words) > 150 and right >= 0.95, right
    by_worker: dict[tuple[str, str], dict[int, int]] = {}
    for s in segments:
        for w in s["words"]:
            person = conversations.true_voice(conversation.turns, w["start"], w["end"])
            counts = by_worker.setdefault((workers[s["slice"]], person), {})
            counts[w["speaker_id"]] = counts.get(w["speaker_id"], 0) + 1
    for person in ("lj", "bush"):
        labels = {max(by_worker[(name, person)], key=by_worker[(name, person)].get) for name in ("alpha", "beta")}
        assert len(labels) == 1, (person, by_worker)


def test_a_renamed_speaker_survives_a_restart_and_is_in_the_subtitles(diarizing):
    """Speaker 1 renamed "Alice" on the finished job; the server is stopped and started again on the same data:
    the name is still there, in the view, the .srt (where she starts speaking) and the .vtt (voice tags)."""
    server = diarizing["server"]
    job_id, _ = labelled_job(diarizing)
    response = requests_patch(server, f"/api/jobs/{job_id}/speakers/1", {"name": "Alice"})
    assert response == (200, {"id": 1, "name": "Alice"})
    server.stop()
    server.start()
    server.wait_ready()
    names = {s["id"]: s["name"] for s in server.job(job_id)["speakers"]["list"]}
    assert names == {1: "Alice", 2: "Speaker 2"}
    srt = server.get(f"/api/jobs/{job_id}/transcript.srt").text
    vtt = server.get(f"/api/jobs/{job_id}/transcript.vtt").text
    assert srt.count("Alice:") >= 2 and "Speaker 2:" in srt
    assert "<v Alice>" in vtt and "<v Speaker 2>" in vtt


def requests_patch(server: Server, path: str, body: dict) -> tuple[int, dict]:
    import requests
    response = requests.patch(server.url + path, json=body, timeout=30)
    return response.status_code, response.json()


def test_a_live_recording_is_labelled_as_its_slices_close(coordinator):
    """A live job grows slice by slice: it is labelled as soon as a slice with voices is back, the labels stay
    provisional while it records, and become final when the recording ends and its last slice is in."""
    import time

    from server import audio, splitter

    job_id = coordinator.new_upload_path()[0]
    coordinator.job_dir(job_id).mkdir()
    shutil.copy(corpus_file(BUSH), coordinator.audio_path(job_id))
    samples = np.asarray(audio.PcmFile(coordinator.audio_path(job_id))[0:10**9])
    planned = splitter.split_at_silence(samples)
    coordinator.open_job(JobRecord(job_id, "live", "live", time.time(), recording=True))
    assert coordinator.job_view(job_id)["speakers"]["status"] == "waiting"
    half = len(planned) // 2
    for first, end in ((0, half), (half, len(planned))):
        coordinator.extend_job(job_id, planned[first:end], planned[end - 1].end / 16000)
        for data in [d for d in slices_sent(coordinator) if first <= d["index"] < end]:
            answer(coordinator, data, [voice(0, 0.5, 3.0), voice(1, 4.5, 7.0)])
        view = coordinator.job_view(job_id)["speakers"]
        assert view["status"] == "labelled" and len(view["list"]) == 2 and not view["final"]
    coordinator.end_recording(job_id, len(samples) / 16000, {})
    view = coordinator.job_view(job_id)
    assert view["status"] == "done" and view["speakers"]["final"]


def test_labels_left_provisional_by_a_stopped_server_are_made_final_when_it_starts(coordinator, tmp_path):
    """A finished job whose last clustering never ran (the server stopped first) gets its final labels from the
    next server on the same data."""
    job_id = submit(coordinator)
    for data in slices_sent(coordinator):
        answer(coordinator, data, [voice(0, 0.5, 3.0), voice(1, 4.5, 7.0)])
    job = coordinator.store.get_job(job_id)
    coordinator.store.update_job(job_id, speakers={**job.speakers, "final": False})
    again = Coordinator(coordinator.settings, coordinator.store, Recorder())
    again.resume()
    view = again.job_view(job_id)["speakers"]
    assert view["final"] and len(view["list"]) == 2
