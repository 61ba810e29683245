"""https for real: a server with a self-signed certificate (``--self-signed``), workers that trust it by a CA file
or its fingerprint and one that does not, and Chromium recording over https from an address that is not
loopback (a second address on ``lo``: the page is a LAN page to the browser, so only https gives it the
microphone)."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import ssl
import subprocess

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.sync_api import sync_playwright

from tests.support import Server, Worker, corpus_file, manifest, wer
from tests.test_live_e2e import STOP_AT
from tests.test_web import DONE, job_id_of, launch, open_page, shot

SPEECH = "jfk_inaugural_excerpt.wav"


def fingerprint_in_log(server: Server) -> str:
    found = re.search(r"SHA-256 fingerprint:\s+((?:[0-9A-F]{2}:){31}[0-9A-F]{2})", server.log())
    assert found, server.log()
    return found.group(1)


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    """A server on https with a certificate it made for this machine."""
    server = Server(tmp_path_factory.mktemp("https"), flags=("--self-signed",))
    yield server
    server.stop()


def test_the_server_serves_https_and_prints_its_certificates_fingerprint(https_server):
    """The page and the API answer over https with the certificate in <data_dir>/tls/, whose SHA-256
    fingerprint is the one printed at start; a request that does not trust it is refused by the client."""
    server = https_server
    der = ssl.PEM_cert_to_DER_cert(open(server.verify).read())
    expected = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    assert fingerprint_in_log(server) == expected
    assert server.get("/").ok and "Upload audio or video" in server.get("/").text
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        requests.get(f"{server.url}/api/workers", timeout=10)


def test_workers_that_trust_the_certificate_join_and_transcribe(https_server):
    """A worker given the certificate as --ca, and one given its --fingerprint, both connect; the job they
    share is transcribed."""
    server = https_server
    workers = [Worker(server, "with-ca", "--ca", str(server.verify)),
               Worker(server, "pinned", "--fingerprint", fingerprint_in_log(server).lower().replace(":", ""))]
    try:
        assert {w["name"] for w in server.wait_workers(2, timeout=120)} == {"with-ca", "pinned"}
        job = server.wait_job(server.submit(corpus_file(SPEECH)))
        assert job["status"] == "done" and wer(manifest()[SPEECH]["reference"], job["transcript"]) < 20
    finally:
        for worker in workers:
            worker.stop()


@pytest.mark.parametrize("flags, words", [
    ((), "is not trusted (self-signed certificate)"),
    (("--fingerprint", "00" * 32), "not the 00:00:"),
])
def test_a_worker_that_does_not_trust_the_certificate_stops_and_says_why(https_server, flags, words):
    """A worker with neither --ca nor --fingerprint (or the wrong fingerprint) does not retry: it exits with
    code 4, naming the certificate, the fingerprint it was shown, and how to trust it."""
    server = https_server
    worker = Worker(server, "naive", *flags)
    try:
        assert worker.proc.wait(timeout=120) == 4
    finally:
        worker.stop()
    log = worker.log()
    assert f"the server's certificate at {server.url} is not trusted" in log and words in log, log
    assert f"--fingerprint {fingerprint_in_log(server)}" in log, log
    assert not any(w["name"] == "naive" for w in server.workers())


@pytest.fixture
def lan_address():
    """A second address on ``lo`` (10.x.y.z/32, removed afterwards): to Chromium a page there is on another
    machine, not this one, so it gets the microphone only over https. Needs root, as CI runs."""
    address = f"10.{random.randrange(64, 128)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True, capture_output=True)
    try:
        yield address
    finally:
        subprocess.run(["ip", "addr", "del", f"{address}/32", "dev", "lo"], capture_output=True)


def spki_hash(certfile: str) -> str:
    """base64 SHA-256 of the certificate's public key: what Chromium's --ignore-certificate-errors-spki-list
    takes to accept exactly this certificate."""
    cert = x509.load_pem_x509_certificate(open(certfile, "rb").read())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_chromium_records_over_https_from_another_address(tmp_path, lan_address):
    """The page opened at https://<a non-loopback address>/ (its certificate accepted through Chromium's flag
    for exactly this key) is a secure context: Record is offered, the fake microphone's recording streams live
    and is transcribed."""
    server = Server(tmp_path, flags=("--self-signed", "--no-announce"), host=lan_address)
    worker = Worker(server, "lan", "--fingerprint", fingerprint_in_log(server))
    try:
        server.wait_workers(1, timeout=120)
        with sync_playwright() as playwright:
            browser = launch(playwright, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                             f"--use-file-for-fake-audio-capture={corpus_file(SPEECH)}",
                             f"--ignore-certificate-errors-spki-list={spki_hash(server.verify)}")
            try:
                page = open_page(browser, server.url)
                assert page.evaluate("window.isSecureContext") and page.evaluate("location.protocol") == "https:"
                assert page.is_enabled("#record") and page.get_attribute("#record-panel", "data-mic") != "insecure"
                page.get_by_role("button", name="Record").click()
                page.wait_for_selector("#record-panel[data-live='true']", timeout=30_000)
                page.evaluate(STOP_AT, float(manifest()[SPEECH]["seconds"]) - 0.2)
                page.wait_for_function(DONE, timeout=180_000)
                shot(page, "https-recorded-from-the-lan")
                job = server.job(job_id_of(page))
            finally:
                browser.close()
        assert job["source"] == "live" and wer(manifest()[SPEECH]["reference"], job["transcript"]) < 25, job
    finally:
        worker.stop()
        server.stop()
