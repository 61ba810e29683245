"""How a worker trusts an https server: the system's CAs by default, a CA file (``--ca``), or exactly one
certificate given by its SHA-256 fingerprint (``--fingerprint``, what ``python -m server --self-signed`` prints).

A certificate the worker does not trust is a reason to stop, not to retry: :func:`diagnose` says what the
server presented and how to trust it.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from urllib.parse import urlsplit


class CertificateRefused(RuntimeError):
    """The server's certificate is not trusted; retrying cannot help."""


def fingerprint_of(der: bytes) -> str:
    """``AB:CD:…``: the SHA-256 fingerprint browsers and ``openssl x509 -fingerprint -sha256`` show."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def normal_fingerprint(text: str) -> str:
    """A fingerprint as typed (any case, with or without colons or spaces) in ``AB:CD:…`` form."""
    hexdigits = re.sub(r"[\s:]", "", text).upper()
    if not re.fullmatch(r"[0-9A-F]{64}", hexdigits):
        raise ValueError(f"--fingerprint should be a SHA-256 fingerprint (64 hex digits), not {text!r}")
    return ":".join(hexdigits[i:i + 2] for i in range(0, 64, 2))


class PinnedContext(ssl.SSLContext):
    """Trusts exactly the certificate whose SHA-256 fingerprint is ``fingerprint``, whoever issued it and
    whatever names it holds (as SSH trusts a known host key): checked on every connection, after the
    handshake, before a byte of the request is sent."""

    fingerprint: str

    def wrap_socket(self, *args, **kwargs):  # noqa: D102 - ssl.SSLContext's
        sock = super().wrap_socket(*args, **kwargs)
        if sock.getpeercert(binary_form=True) is None:  # handshake deferred: do it now
            sock.do_handshake()
        found = fingerprint_of(sock.getpeercert(binary_form=True) or b"")
        if found != self.fingerprint:
            sock.close()
            raise ssl.SSLCertVerificationError(
                f"the server's certificate has the SHA-256 fingerprint {found}, not the {self.fingerprint} given "
                "with --fingerprint")
        return sock


def context(ca: str = "", fingerprint: str = "") -> ssl.SSLContext:
    """The TLS context a worker connects to an https server with."""
    if fingerprint:
        pinned = PinnedContext(ssl.PROTOCOL_TLS_CLIENT)
        pinned.check_hostname = False
        pinned.verify_mode = ssl.CERT_NONE  # the fingerprint is the check
        pinned.fingerprint = normal_fingerprint(fingerprint)
        return pinned
    if ca:
        return ssl.create_default_context(cafile=ca)
    return ssl.create_default_context()


def diagnose(server_url: str, ctx: ssl.SSLContext, timeout_s: float = 10.0) -> str | None:
    """Why ``ctx`` does not trust the https server at ``server_url``, in words; None when it does, or when the
    server cannot be reached at all (not a certificate problem)."""
    parts = urlsplit(server_url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    address = (parts.hostname, parts.port or 443)
    try:
        with socket.create_connection(address, timeout=timeout_s) as raw:
            with ctx.wrap_socket(raw, server_hostname=parts.hostname):
                return None
    except ssl.SSLCertVerificationError as exc:
        reason = getattr(exc, "verify_message", "") or str(exc)
    except (OSError, ssl.SSLError):
        return None
    presented = _presented_fingerprint(address, parts.hostname, timeout_s)
    how = (f"its certificate's SHA-256 fingerprint is {presented}: if the server printed the same at start, run "
           f"this worker with --fingerprint {presented}, or with --ca and a copy of the server's certificate "
           "(<data_dir>/tls/cert.pem)") if presented else "run this worker with --ca or --fingerprint"
    return f"the server's certificate at {server_url} is not trusted ({reason}); {how}"


def _presented_fingerprint(address: tuple[str, int], hostname: str, timeout_s: float) -> str:
    """The fingerprint of the certificate the server presents (read without trusting it)."""
    look = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    look.check_hostname, look.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(address, timeout=timeout_s) as raw:
            with look.wrap_socket(raw, server_hostname=hostname) as sock:
                return fingerprint_of(sock.getpeercert(binary_form=True) or b"")
    except (OSError, ssl.SSLError):
        return ""
