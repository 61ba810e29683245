"""The SQLite store: what is written survives a reopen, and the first result for a slice wins."""

from server.records import JobRecord, SliceRecord
from server.store import Store


def job(job_id="j1", n=3, status="queued"):
    return JobRecord(id=job_id, name="a.wav", source="upload", created_at=1.0, status=status, duration=30.0,
                     slices=[SliceRecord(index=i, start=10.0 * i, end=10.0 * i + 9, pieces=[(10.0 * i, 10.0 * i + 9)])
                             for i in range(n)])


def test_job_and_slices_survive_reopening(tmp_path):
    """Everything written is there, in order, after the store is closed and opened again."""
    store = Store(tmp_path / "db")
    store.create_job(job())
    store.finish_slice("j1", 1, text="hello", segments=[{"start": 10.0, "end": 11.0, "text": "hello"}],
                       worker="w", elapsed=0.5)
    store.close()
    again = Store(tmp_path / "db").get_job("j1")
    assert [s.index for s in again.slices] == [0, 1, 2]
    assert again.slices[1].status == "done" and again.slices[1].text == "hello"
    assert again.slices[1].segments == [{"start": 10.0, "end": 11.0, "text": "hello"}]
    assert again.slices[0].pieces == [(0.0, 9.0)]


def test_first_result_wins(tmp_path):
    """A second finish of the same slice changes nothing and says so."""
    store = Store(tmp_path / "db")
    store.create_job(job())
    assert store.finish_slice("j1", 0, text="first")
    assert not store.finish_slice("j1", 0, text="second")
    assert store.get_job("j1").slices[0].text == "first"


def test_unfinished_jobs_are_the_ones_to_resume(tmp_path):
    """Only queued and running jobs come back, oldest first, with their slices."""
    store = Store(tmp_path / "db")
    store.create_job(job("a"))
    store.create_job(job("b", status="done"))
    store.create_job(job("c", status="running"))
    assert [j.id for j in store.unfinished_jobs()] == ["a", "c"]
    assert len(store.unfinished_jobs()[0].slices) == 3


def test_list_counts_slices_by_status_and_delete_removes_all(tmp_path):
    """The job list counts slice states; deleting a job removes its slices too."""
    store = Store(tmp_path / "db")
    store.create_job(job())
    store.update_slice("j1", 2, status="failed", error="x")
    (listed, counts), = store.list_jobs()
    assert listed.id == "j1" and counts == {"queued": 2, "failed": 1}
    assert store.delete_job("j1") and store.get_job("j1") is None
    assert store._db.execute("SELECT COUNT(*) FROM slices").fetchone()[0] == 0


def test_a_failed_transaction_leaves_nothing_behind(tmp_path):
    """Inserting a job whose slices clash rolls the whole job back."""
    store = Store(tmp_path / "db")
    bad = job()
    bad.slices.append(SliceRecord(index=0, start=0, end=1, pieces=[(0, 1)]))  # duplicate index
    try:
        store.create_job(bad)
    except Exception:
        pass
    assert store.get_job("j1") is None
