"""Finding the server on the LAN when no ``--server`` is given: the servers that announce ``_scatterscribe._tcp``
by DNS-SD (python-zeroconf), each at the first of its addresses that answers.

One server in sight: that one. Several: the worker lists them and asks for ``--server`` (it cannot know which
one its token belongs to). None yet: it keeps looking, with a growing pause, as a worker started before its
server keeps trying; a server on this machine at the old default address (``127.0.0.1:5000``, not announced
because it serves loopback only) is taken too, over https if it speaks TLS.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger("scatterscribe.worker")

SERVICE = "_scatterscribe._tcp.local."
LOCAL_DEFAULT = ("127.0.0.1", 5000)  # where a worker looked before servers were announced
BROWSE_S = 3.0  # how long one look listens for announcements


class SeveralServers(RuntimeError):
    """More than one server is announced: the worker must be told which (the message lists them)."""


@dataclass(frozen=True)
class Found:
    """An announced server."""

    name: str  # its DNS-SD instance name, e.g. "Scatterscribe on box (5000)"
    url: str  # scheme://address:port, at an address that answered


def browse(wait_s: float = BROWSE_S) -> list[Found]:
    """The servers announced on the LAN within ``wait_s``, each at the first of its addresses that answers."""
    from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

    names: set[str] = set()
    lock = threading.Lock()

    def changed(zeroconf, service_type, name, state_change):
        if state_change in (ServiceStateChange.Added, ServiceStateChange.Updated):
            with lock:
                names.add(name)

    zeroconf = Zeroconf()
    found: list[Found] = []
    try:
        browser = ServiceBrowser(zeroconf, SERVICE, handlers=[changed])
        time.sleep(wait_s)
        browser.cancel()
        for name in sorted(names):
            info = zeroconf.get_service_info(SERVICE, name, timeout=2000)
            if info is None or not info.port:
                continue
            props = {k.decode(errors="replace"): (v or b"").decode(errors="replace")
                     for k, v in info.properties.items()}
            scheme = props.get("scheme", "http") if props.get("scheme") in ("http", "https") else "http"
            addresses = info.parsed_addresses(IPVersion.V4Only) + info.parsed_addresses(IPVersion.V6Only)
            for address in addresses:
                if ipaddress.ip_address(address).is_link_local:
                    continue  # needs an interface to be named: not worth it when others exist
                if answers(address, info.port):
                    host = f"[{address}]" if ":" in address else address
                    found.append(Found(name.removesuffix("." + SERVICE), f"{scheme}://{host}:{info.port}"))
                    break
    finally:
        zeroconf.close()
    return found


def answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Does something accept a TCP connection at ``host``:``port``?"""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def local_server() -> str | None:
    """``https://`` or ``http://127.0.0.1:5000`` when a server listens there (https when it speaks TLS)."""
    import ssl

    if not answers(*LOCAL_DEFAULT):
        return None
    look = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    look.check_hostname, look.verify_mode = False, ssl.CERT_NONE  # only: does it speak TLS at all?
    try:
        with socket.create_connection(LOCAL_DEFAULT, timeout=2) as raw, look.wrap_socket(raw):
            scheme = "https"
    except (OSError, ssl.SSLError):
        scheme = "http"
    return f"{scheme}://{LOCAL_DEFAULT[0]}:{LOCAL_DEFAULT[1]}"


def find_server(stopped: Callable[[], bool] = lambda: False, browse_s: float = BROWSE_S) -> str | None:
    """The URL of the one server on the LAN, looking until there is one (None if ``stopped`` first); raises
    :class:`SeveralServers` when there are several."""
    delay = 1.0
    while not stopped():
        found = browse(browse_s)
        if len(found) == 1:
            print(f"worker: found {found[0].name} at {found[0].url} (announced on the LAN); connecting",
                  flush=True)
            return found[0].url
        if len(found) > 1:
            listing = "\n".join(f"  {f.url}   ({f.name})" for f in found)
            raise SeveralServers(f"{len(found)} Scatterscribe servers are announced on this network:\n{listing}\n"
                                 "start the worker with --server and the one its token belongs to")
        local = local_server()
        if local:
            print(f"worker: no server announced on the LAN; using the one on this machine at {local}", flush=True)
            return local
        log.warning("no Scatterscribe server is announced on this network yet; looking again in %.0f s "
                    "(or give --server URL)", delay)
        for _ in range(int(delay * 10)):
            if stopped():
                return None
            time.sleep(0.1)
        delay = min(30.0, delay * 2)
    return None
