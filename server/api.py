"""HTTP API (JSON) and the page: thin adapters that check their input and call the coordinator."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import unicodedata
import urllib.parse

from flask import Blueprint, Request, Response, current_app, jsonify, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_range_header

from . import audio, bodies, corrections, disk, forms, redo, speaker_jobs, transcript
from .audio import AudioError
from .config import ROOT
from .coordinator import Coordinator, JobError
from .ids import is_job_id
from .scheduler import Requirement
from .store import SearchTooLong
from .uploads import NotAudio, SniffedFile, close_after_answer

log = logging.getLogger("scatterscribe")

bp = Blueprint("api", __name__)

FORMATS = {"txt": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt", "json": "application/json"}


def coordinator() -> Coordinator:
    return current_app.extensions["scatterscribe"]


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def display_name(filename: str | None) -> str:
    """The name shown for an upload: its last path component, printable, bounded. Never used as a path."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip(" .")
    return name[:120] or "recording.wav"


def _requirement() -> Requirement:
    try:
        return redo.requirement(request.form.get("engine"), request.form.get("model"))
    except ValueError as exc:
        raise JobError(str(exc)) from None


class UploadRequest(Request):
    """A request whose uploaded files are written, as they arrive, straight into the data folder's uploads/
    under a temporary server-chosen name, so a job's upload is linked into place rather than copied from the
    system's temporary folder (one write of a 500 MB upload, not two). A file no job takes is deleted when the
    request ends (the request closes it); one left by a killed server goes at the next start. Its first bytes
    are judged as they arrive (:class:`uploads.SniffedFile`): a file that is no audio stops the upload."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return SniffedFile(tempfile.NamedTemporaryFile("wb+", dir=coordinator().uploads_dir, suffix=".part"))


@bp.post("/api/jobs")
def create_job():
    """Upload a recording, audio or video (multipart field ``audio``) → 202 with the new job's id."""
    if request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # The WSGI server does not hand on a body of unknown length: it would read as an empty form.
        return error(411, "send the upload with a Content-Length header; chunked uploads (Transfer-Encoding: "
                          "chunked) are not accepted (curl -F audio=@file.wav and browsers send a length)")
    if not request.mimetype.startswith("multipart/form-data"):
        return error(400, "send the recording as multipart/form-data with the audio file in the field 'audio'")
    coord = coordinator()
    # Before a byte of it is read: while it is converted, an upload takes about twice its size on disk.
    refusal = disk.refusal(coord.uploads_dir, 2 * (request.content_length or 0),
                           coord.settings.server.min_free_disk_mb)
    if refusal:
        return error(507, refusal)
    try:
        upload = request.files.get("audio")
    except NotAudio as exc:  # its first bytes said so: answer now, and read no more of the body
        log.info("refused an upload by its first bytes: %s", exc)
        response, status = error(400, str(exc))
        return close_after_answer(response), status
    if upload is None:
        # Named as sent, but shown bounded: a part may have no name, or a name of any length.
        fields = sorted({"".join(ch for ch in name or "" if ch.isprintable())[:40] or "(a part with no name)"
                         for name in [*request.files, *request.form]})
        got = f" (got: {', '.join(fields[:10])}{', …' if len(fields) > 10 else ''})" if fields else ""
        return error(400, f"no file in the form field 'audio'{got}")
    try:
        requirement = _requirement()
        speaker_count = speaker_jobs.parse_count(request.form.get("speakers"))
    except (JobError, ValueError) as exc:
        return error(400, str(exc))
    job_id, path = coord.new_upload_path()
    os.link(upload.stream.name, path)  # UploadRequest wrote it in uploads/: give it the job's name, no copy
    try:
        job = coord.create_job(job_id, path, display_name(upload.filename), requirement,
                               speaker_count=speaker_count)
    except AudioError as exc:
        log.info("rejected upload %r: %s", display_name(upload.filename), exc)
        return error(400, str(exc))
    return jsonify({"id": job.id, "url": f"/api/jobs/{job.id}", "slices": len(job.slices),
                    "duration": round(job.duration, 3), "status": job.status}), 202


@bp.get("/api/jobs")
def list_jobs():
    """Recent jobs, newest first; ``?q=words``: only those whose name or text holds them."""
    query = " ".join(request.args.get("q", "").split())[:200]
    try:
        return jsonify({"jobs": coordinator().jobs_view(query=query), "query": query})
    except SearchTooLong as exc:
        return error(503, f"{exc}: this server holds too much text to search it whole; try again later")


def refused(exc: corrections.Refused) -> tuple[Response, int]:
    return jsonify({"error": str(exc), **exc.extra}), exc.status


@bp.patch("/api/jobs/<job:job_id>")
def rename_job(job_id: str):
    """``{"name": ...}``: give a job another name."""
    try:
        name = corrections.parse_name(bodies.read(4096))
        corrections.rename(coordinator(), job_id, name)
    except corrections.Refused as exc:
        return refused(exc)
    return jsonify({"id": job_id, "name": name})


@bp.patch("/api/jobs/<job:job_id>/speakers/<int:speaker>")
def rename_speaker(job_id: str, speaker: int):
    """``{"name": "Alice"}``: what speaker ``speaker`` is called in the job's view and every download
    (``{"name": null}``: "Speaker N" again)."""
    try:
        name = speaker_jobs.parse_rename(bodies.read(4096))
        return jsonify(coordinator().speakers.rename(job_id, speaker, name))
    except speaker_jobs.Refused as exc:
        return error(exc.status, str(exc))
    except bodies.Refused as exc:  # the body: too large, not JSON, …
        return refused(exc)


@bp.patch("/api/jobs/<job:job_id>/slices/<int:index>/segments/<int:number>")
def correct_segment(job_id: str, index: int, number: int):
    """``{"text", "was"}`` or ``{"restore": true, "was"}``: correct a segment's text, or undo the correction
    (see ``corrections``); 409 when the segment no longer reads ``was``."""
    try:
        change = corrections.parse(bodies.read(corrections.MAX_BODY_BYTES))
        return jsonify(corrections.correct(coordinator(), job_id, index, number, change))
    except corrections.Refused as exc:
        return refused(exc)


@bp.post("/api/jobs/<job:job_id>/slices/<int:index>/redo")
def redo_slice(job_id: str, index: int):
    """Transcribe a done or failed slice again; optional JSON ``{"engine", "model", "replace_corrections"}``."""
    try:
        request_ = redo.parse(bodies.read(4096))
        coordinator().transcribe_again(job_id, index, request_)
    except corrections.Refused as exc:
        return refused(exc)
    return jsonify({"slice": index, "status": "queued", "engine": request_.asked.engine,
                    "model": request_.asked.model}), 202


@bp.delete("/api/jobs/<job:job_id>/slices/<int:index>/redo")
def cancel_redo(job_id: str, index: int):
    """Call off transcribing a slice again: it goes back to what it was (its text kept); 409 when it is not
    being transcribed again."""
    try:
        coordinator().cancel_redo(job_id, index)
    except corrections.Refused as exc:
        return refused(exc)
    return jsonify({"slice": index, "cancelled": True})


@bp.get("/api/worker-setup")
def worker_setup():
    """What the page needs to write the shortest command that starts a worker against this server: where the
    worker token is kept (relative to the repository when it is inside it), or null when the server was given
    its token (then only whoever started it knows it); whether the server is announced on the LAN (a worker
    there needs no --server); and, for a self-signed https server, the certificate's fingerprint a worker must
    be given (null otherwise)."""
    settings = coordinator().settings
    cert = current_app.config.get("SCATTERSCRIBE_TLS")
    extra = {"announced": bool(current_app.config.get("SCATTERSCRIBE_ANNOUNCED")),
             "fingerprint": cert.fingerprint if cert is not None and cert.self_signed else None}
    if settings.server.token:
        return jsonify({"token_file": None, **extra})
    path = settings.data_path.resolve() / "worker-token"
    try:
        shown = str(path.relative_to(ROOT.resolve()))
    except ValueError:
        shown = str(path)
    return jsonify({"token_file": shown, **extra})


@bp.get("/api/jobs/<job:job_id>")
def get_job(job_id: str):
    view = coordinator().job_view(job_id)
    return error(404, f"no job {job_id!r}") if view is None else jsonify(view)


@bp.delete("/api/jobs/<job:job_id>")
def delete_job(job_id: str):
    if not coordinator().delete_job(job_id):
        return error(404, f"no job {job_id!r}")
    return jsonify({"deleted": job_id})


@bp.get("/api/jobs/<job:job_id>/transcript.<ext>")
def get_transcript(job_id: str, ext: str):
    if ext not in FORMATS:
        return error(404, f"no such format {ext!r}; try one of: {', '.join(FORMATS)}")
    coord = coordinator()
    job = coord.store.get_job(job_id)
    if job is None:
        return error(404, f"no job {job_id!r}")
    if ext == "txt":
        body = transcript.to_txt(job, timestamps=request.args.get("timestamps", "") not in ("", "0", "false"))
    elif ext == "srt":
        body = transcript.to_srt(job)
    elif ext == "vtt":
        body = transcript.to_vtt(job)
    else:
        body = transcript.to_json(job, coord.job_view(job_id))
    return Response(body, mimetype=FORMATS[ext],
                    headers={"Content-Disposition": attachment(job.name, ext, fallback=job_id)})


def attachment(name: str, ext: str, fallback: str) -> str:
    """A ``Content-Disposition`` naming the download after the job, in any script: ``filename`` holds an ASCII
    form (what old clients show; ``fallback`` when nothing of the name is ASCII) and ``filename*`` the name
    itself, UTF-8 percent-encoded (RFC 6266, RFC 8187). A header must be Latin-1: the server could not send one
    that held ``Интервью`` and closed the connection instead."""
    stem = re.sub(r"[^\w.\-]", "_", name.rsplit(".", 1)[0]).strip(".")
    stem = stem if re.search(r"[^\W_]", stem) else fallback
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    ascii_stem = re.sub(r"[^A-Za-z0-9.\-]+", "_", ascii_stem).strip("._")
    if not re.search(r"[A-Za-z0-9]", ascii_stem):
        ascii_stem = fallback
    value = f'attachment; filename="{ascii_stem}.{ext}"'
    if ascii_stem != stem:
        value += f"; filename*=UTF-8''{urllib.parse.quote(f'{stem}.{ext}', safe='')}"
    return value


@bp.before_app_request
def ignore_an_unreadable_range():
    """RFC 9110 (14.2): a ``Range`` that cannot be read, or in a unit other than bytes, is ignored and the whole
    file is sent (200); so is one of several ranges, which this server does not serve. Werkzeug answers each
    with 416, which a client cannot act on."""
    header = request.environ.get("HTTP_RANGE")
    if header is not None:
        parsed = parse_range_header(header)
        if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
            del request.environ["HTTP_RANGE"]


@bp.get("/api/jobs/<job:job_id>/audio.wav")
def get_audio(job_id: str):
    try:
        path = coordinator().audio_path(job_id)
    except JobError:
        return error(404, f"no job {job_id!r}")
    if not path.exists():
        return error(404, f"no audio for job {job_id!r}")
    asked = parse_range_header(request.environ.get("HTTP_RANGE"))  # one readable byte range, or none
    if asked is not None and -asked.ranges[0][0] > path.stat().st_size:
        del request.environ["HTTP_RANGE"]  # the last N bytes of a shorter file are all of it (RFC 9110 14.1.2)
    return send_file(path, mimetype="audio/wav")


@bp.get("/api/jobs/<job:job_id>/peaks.json")
def get_peaks(job_id: str):
    """The stored recording's waveform, downsampled to ``bins`` (50–4000, default 1000) min/max pairs."""
    try:
        bins = min(4000, max(50, int(request.args.get("bins", 1000))))
    except ValueError:
        return error(400, "bins must be a whole number")
    coord = coordinator()
    try:
        path = coord.audio_path(job_id)
    except JobError:
        return error(404, f"no job {job_id!r}")
    if not path.exists():
        return error(404, f"no audio for job {job_id!r}")

    def compute() -> dict:
        samples = audio.PcmFile(path)
        low, high = audio.peaks(samples, bins)
        duration = round(len(samples) / audio.TARGET_RATE, 3)
        return {"duration": duration, "bins": len(low), "min": low, "max": high}
    return jsonify(coord.run_blocking(compute))


@bp.route("/api/jobs/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def no_such_job(rest: str):
    """Anything under /api/jobs/ that no route above takes: an id of the wrong form never reaches a handler."""
    first = rest.split("/", 1)[0]
    if not is_job_id(first):
        return error(404, f"no job {first!r}: a job id is 16 hex digits")
    return error(404, f"nothing answers {request.method} {request.path}")


@bp.get("/api/workers")
def list_workers():
    return jsonify({"workers": coordinator().workers_view()})


@bp.get("/")
def index():
    return current_app.send_static_file("index.html")


@bp.app_errorhandler(Exception)
def unexpected_error(exc: Exception):
    """A bug or a full disk: log it, answer JSON, keep serving."""
    if isinstance(exc, HTTPException):
        return http_error(exc)
    if disk.is_full(exc):
        log.error("request %s %s: %s (%s)", request.method, request.path, disk.FULL, exc)
        return error(507, f"{disk.FULL}: this request could not be stored; try again once space is freed")
    log.exception("request %s %s failed", request.method, request.path)
    return error(500, f"the server failed on this request ({type(exc).__name__}); it is logged and the server "
                      "keeps running")


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException):
    """Every HTTP error as JSON ``{"error": ...}`` with a sentence a person can act on."""
    if isinstance(exc, forms.FormTooLarge):
        return error(413, exc.description)
    if exc.code == 413:
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length <= limit:
            # Werkzeug's check of a field's accumulated size raises the same bare 413 as the size limit.
            return error(413, forms.field_too_large(request.max_form_memory_size))
        return error(413, f"the upload is larger than this server's limit of {limit / 2**20:.0f} MB")
    return error(exc.code or 500, exc.description or exc.name)
