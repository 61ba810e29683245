"""The server announced on the LAN by DNS-SD over mDNS (``_scatterscribe._tcp``, with its scheme and port), so
``python client.py`` on another machine finds it without ``--server``.

python-zeroconf runs an asyncio loop in threads of its own; in the server's process eventlet's monkey-patching
would make those green threads sharing the event loop. So the announcement is a small child process,
``python -m server.announce``, started by :class:`Announcer` and ended with the server (Linux sends it SIGTERM
when the server dies, even by SIGKILL, as local workers get).

Only a server that serves the network is announced: one bound to loopback (the default) cannot be reached from
elsewhere. The announcement says nothing secret: the worker token is still needed, and an https worker still
checks the certificate (the announcement's word is never taken for which certificate to trust).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import threading

log = logging.getLogger("scatterscribe")

SERVICE = "_scatterscribe._tcp.local."
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def addresses_for(host: str) -> list[str]:
    """The addresses to announce for a server bound to ``host``: that address, or for 0.0.0.0 / :: every
    address of every interface but loopback and link-local ones."""
    if host not in ("0.0.0.0", "::", ""):
        return [socket.gethostbyname(host)] if not _is_ip(host) else [host]
    import ifaddr

    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            parsed = ipaddress.ip_address(address.split("%")[0])
            if not (parsed.is_loopback or parsed.is_link_local) and (parsed.version == 4 or host == "::"):
                found.append(str(parsed))
    return sorted(set(found))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


class Announcer:
    """The announcing child process of a server on ``host``:``port`` (nothing for a loopback host)."""

    def __init__(self, host: str, port: int, scheme: str):
        self.host, self.port, self.scheme = host, port, scheme
        self.process: subprocess.Popen | None = None

    def start(self) -> bool:
        """Start announcing; False when there is nothing to announce (a loopback server, no address)."""
        if self.host in LOOPBACK_HOSTS:
            return False
        addresses = addresses_for(self.host)
        if not addresses:
            log.warning("not announced on the LAN: no network address found for %s", self.host)
            return False
        from .local_workers import _die_with_parent

        command = [sys.executable, "-m", "server.announce", "--port", str(self.port), "--scheme", self.scheme,
                   *(arg for a in addresses for arg in ("--address", a))]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        log.info("announcing %s://…:%d on the LAN as %s (DNS-SD, at %s); --no-announce turns this off",
                 self.scheme, self.port, SERVICE.removesuffix(".local."), ", ".join(addresses))
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def main(argv: list[str] | None = None) -> int:
    """The child process: register the service, keep it until SIGTERM, then say goodbye on the LAN."""
    p = argparse.ArgumentParser(prog="python -m server.announce")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--scheme", choices=["http", "https"], required=True)
    p.add_argument("--address", action="append", required=True)
    args = p.parse_args(argv)
    from zeroconf import ServiceInfo, Zeroconf

    host = socket.gethostname().split(".")[0]
    info = ServiceInfo(SERVICE, f"Scatterscribe on {host} ({args.port}).{SERVICE}", port=args.port,
                       properties={"scheme": args.scheme, "path": "/", "version": "1"},
                       server=f"{host}.local.", parsed_addresses=args.address)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    zeroconf = Zeroconf()
    try:
        zeroconf.register_service(info, allow_name_change=True)
        while not stop.wait(1.0):
            if os.getppid() == 1:  # the server is gone (not on Linux, where SIGTERM comes)
                break
        zeroconf.unregister_service(info)
    finally:
        zeroconf.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
