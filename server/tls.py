"""https: the certificate the server serves with, its fingerprint, and the TLS context built from it.

Browsers give the microphone only to https pages (or pages on the machine itself), so recording from a phone
or a laptop on the LAN needs the server on https. A certificate from a CA is given with ``--certfile`` and
``--keyfile``; ``--self-signed`` makes one for this machine's names and addresses (``<data_dir>/tls/``, kept
and reused while it is valid and still names them), so a browser shows a warning once and workers trust it by
its SHA-256 fingerprint (``--fingerprint``) or as a CA file (``--ca``).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("scatterscribe")

VALID_DAYS = 397  # what browsers accept from a CA; renewed when a month is left
RENEW_DAYS = 30


class TlsError(ValueError):
    """The certificate or key cannot be used; the message says why."""


@dataclass(frozen=True)
class Certificate:
    """The files the server serves https with."""

    certfile: Path
    keyfile: Path
    fingerprint: str  # SHA-256 of the certificate (DER), as upper-case hex pairs joined by colons
    self_signed: bool


def fingerprint_of(der: bytes) -> str:
    """``AB:CD:…``: the SHA-256 fingerprint browsers and ``openssl x509 -fingerprint -sha256`` show."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def load(certfile: Path, keyfile: Path, self_signed: bool = False) -> Certificate:
    """Check that the pair can serve TLS (the key matches the certificate) and read its fingerprint."""
    for what, path in (("certificate", certfile), ("key", keyfile)):
        if not path.is_file():
            raise TlsError(f"the {what} file {path} does not exist")
    try:
        server_context(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"{certfile} and {keyfile} cannot serve https: {exc}") from None
    der = ssl.PEM_cert_to_DER_cert(certfile.read_text())
    return Certificate(certfile, keyfile, fingerprint_of(der), self_signed)


def server_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """The TLS settings the server listens with: TLS 1.2 or later, Python's default ciphers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(certfile), str(keyfile))
    return context


def machine_names() -> tuple[list[str], list[str]]:
    """This machine's host names (with its ``.local`` name, which the LAN resolves by mDNS) and the addresses
    of all its network interfaces."""
    host = socket.gethostname()
    names = {"localhost", host, f"{host.split('.')[0]}.local", socket.getfqdn()}
    addresses = {"127.0.0.1", "::1"}
    try:
        import ifaddr  # comes with zeroconf

        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                address = ip.ip if isinstance(ip.ip, str) else ip.ip[0]  # IPv6 comes as (address, flow, scope)
                if not ipaddress.ip_address(address.split("%")[0]).is_link_local:
                    addresses.add(address.split("%")[0])
    except ImportError:  # pragma: no cover - ifaddr is installed with zeroconf
        for info in socket.getaddrinfo(host, None):
            addresses.add(str(info[4][0]))
    return sorted(n for n in names if n), sorted(addresses)


def self_signed(folder: Path, names: list[str], addresses: list[str],
                now: datetime.datetime | None = None) -> Certificate:
    """The self-signed certificate in ``folder`` (``cert.pem``, ``key.pem``): kept while it is valid for
    another RENEW_DAYS and names every one of ``names`` and ``addresses``, else made anew (the fingerprint
    then changes, and the log says so)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or datetime.datetime.now(datetime.timezone.utc)
    certfile, keyfile = folder / "cert.pem", folder / "key.pem"
    wanted = {*(n.lower() for n in names), *(str(ipaddress.ip_address(a)) for a in addresses)}
    if certfile.exists() and keyfile.exists():
        try:
            cert = x509.load_pem_x509_certificate(certfile.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            covered = {*(n.lower() for n in san.get_values_for_type(x509.DNSName)),
                       *(str(a) for a in san.get_values_for_type(x509.IPAddress))}
            if wanted <= covered and cert.not_valid_after_utc - now > datetime.timedelta(days=RENEW_DAYS):
                return load(certfile, keyfile, self_signed=True)
            log.warning("the self-signed certificate in %s does not cover %s or expires soon: making a new one "
                        "(its fingerprint changes: tell the workers)", folder,
                        ", ".join(sorted(wanted - covered)) or "this machine")
        except (ValueError, x509.ExtensionNotFound, TlsError) as exc:
            log.warning("the certificate in %s cannot be used (%s): making a new one", folder, exc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Scatterscribe on {socket.gethostname()}"[:64])])
    alt_names = [x509.DNSName(n) for n in sorted({n.lower() for n in names})]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(set(addresses))]
    public = key.public_key()
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    _write_private(keyfile, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return load(certfile, keyfile, self_signed=True)


def from_settings(server, data_path: Path) -> Certificate | None:
    """The certificate ``[server]`` asks for: ``certfile``/``keyfile``, or ``self_signed``; None for plain
    http. Raises :class:`TlsError` with a sentence when the settings cannot work."""
    if server.self_signed and (server.certfile or server.keyfile):
        raise TlsError("--self-signed makes its own certificate: give it without --certfile and --keyfile")
    if server.self_signed:
        names, addresses = machine_names()
        if server.host not in ("0.0.0.0", "::", ""):
            try:
                addresses.append(str(ipaddress.ip_address(server.host)))
            except ValueError:
                names.append(server.host)
        return self_signed(data_path / "tls", sorted(set(names)), sorted(set(addresses)))
    if bool(server.certfile) != bool(server.keyfile):
        raise TlsError("https needs both --certfile and --keyfile")
    if server.certfile:
        return load(Path(server.certfile).expanduser(), Path(server.keyfile).expanduser())
    return None


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, from the moment it exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
