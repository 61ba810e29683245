"""The server's certificate (server/tls.py): made for this machine, kept across starts, checked before use."""

from __future__ import annotations

import datetime
import ssl
import stat

import pytest
from cryptography import x509

from server import tls

NAMES, ADDRESSES = ["localhost", "box", "box.local"], ["127.0.0.1", "::1", "192.168.7.20"]


def test_a_self_signed_certificate_names_the_machine_and_is_kept(tmp_path):
    """It names every host name and address, only its owner can read the key, its fingerprint is the SHA-256
    of the certificate, and a second start reuses it (same fingerprint) rather than making a new one."""
    first = tls.self_signed(tmp_path, NAMES, ADDRESSES)
    cert = x509.load_pem_x509_certificate(first.certfile.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == set(NAMES)
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == set(ADDRESSES)
    assert stat.S_IMODE(first.keyfile.stat().st_mode) == 0o600
    assert first.fingerprint == tls.fingerprint_of(ssl.PEM_cert_to_DER_cert(first.certfile.read_text()))
    assert len(first.fingerprint.split(":")) == 32 and first.self_signed
    assert tls.self_signed(tmp_path, NAMES[:2], ADDRESSES[:1]).fingerprint == first.fingerprint


def test_a_new_address_or_an_expiring_certificate_makes_a_new_one(tmp_path):
    """A machine that got a new address, or a certificate with less than RENEW_DAYS left, gets a new one."""
    first = tls.self_signed(tmp_path, NAMES, ADDRESSES)
    moved = tls.self_signed(tmp_path, NAMES, ADDRESSES + ["10.0.0.9"])
    assert moved.fingerprint != first.fingerprint
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=tls.VALID_DAYS - 10)
    assert tls.self_signed(tmp_path, NAMES, ADDRESSES + ["10.0.0.9"], now=later).fingerprint != moved.fingerprint


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path):
    """A certificate with another certificate's key cannot serve: the error names both files."""
    one = tls.self_signed(tmp_path / "one", NAMES, ADDRESSES)
    two = tls.self_signed(tmp_path / "two", NAMES, ADDRESSES)
    with pytest.raises(tls.TlsError, match="cannot serve https"):
        tls.load(one.certfile, two.keyfile)
    with pytest.raises(tls.TlsError, match="does not exist"):
        tls.load(tmp_path / "missing.pem", two.keyfile)


def test_the_machine_names_include_its_mdns_name_and_loopback():
    """Its .local name (how phones on the LAN reach it) and both loopback addresses are always named."""
    names, addresses = tls.machine_names()
    assert any(n.endswith(".local") for n in names) and "localhost" in names
    assert {"127.0.0.1", "::1"} <= set(addresses)


def test_a_worker_takes_a_fingerprint_as_people_type_it():
    """Upper or lower case, with or without colons or spaces: the same fingerprint; anything else is refused
    with a sentence (the worker exits with 'bad settings')."""
    from client import tls as client_tls

    colons = ":".join(["AB"] * 32)
    for typed in (colons, colons.lower(), "ab" * 32, " ".join(["ab"] * 32)):
        assert client_tls.normal_fingerprint(typed) == colons
    with pytest.raises(ValueError, match="64 hex digits"):
        client_tls.normal_fingerprint("AB:CD")
