"""``python -m server``: the Scatterscribe server, with its local workers.

The async mode is prepared first (``runtime.prepare``: eventlet patches the standard library, which must happen
before anything opens a socket, starts a thread or makes a lock), from the mode alone (``runtime.wanted_mode``);
the settings and everything else are imported after.
"""

import logging
import signal
import sys

from . import runtime


def main(argv: list[str] | None = None) -> int:
    mode = runtime.wanted_mode(argv)
    try:
        runtime.prepare(mode)
    except ValueError as exc:
        print(f"scatterscribe: bad settings: {exc}", file=sys.stderr)
        return 2
    from .config import parse_args  # numpy, scipy: after the patching

    try:
        settings = parse_args(argv)
    except (ValueError, OSError) as exc:
        print(f"scatterscribe: bad settings: {exc}", file=sys.stderr)
        return 2
    server = settings.server
    if server.async_mode != mode:  # e.g. a flag abbreviated past what wanted_mode reads
        print(f"scatterscribe: bad settings: the async mode was read as {mode} before the settings, which say "
              f"{server.async_mode}: give it as --async-mode {server.async_mode}", file=sys.stderr)
        return 2
    from . import tls
    from .announce import Announcer
    from .app import create_app, worker_token
    from .local_workers import LocalWorkers

    logging.basicConfig(level=server.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    log = logging.getLogger("scatterscribe")
    app, socketio = create_app(settings)
    try:
        cert = tls.from_settings(server, settings.data_path)  # None: plain http
    except tls.TlsError as exc:
        print(f"scatterscribe: cannot serve https: {exc}", file=sys.stderr)
        return 2
    scheme = "https" if cert else "http"
    app.config["SCATTERSCRIBE_TLS"] = cert
    try:
        context = tls.server_context(cert.certfile, cert.keyfile) if cert else None
        # Bound before local workers start: they connect at once.
        serving = runtime.make_server(socketio.async_mode, app, server, ssl_context=context)
    except (ValueError, OSError) as exc:
        log.error("cannot serve on %s:%d: %s", server.host, server.port, exc)
        return 2
    if server.host not in ("127.0.0.1", "localhost", "::1") and not server.access_token:
        log.warning("serving on %s without an access token: anyone on the network can use the page and API "
                    "(set [server] access_token or SCATTERSCRIBE_ACCESS_TOKEN)", server.host)
    announcer = Announcer(server.host, server.port, scheme)
    app.config["SCATTERSCRIBE_ANNOUNCED"] = server.announce and announcer.start()
    workers = None
    if server.local_workers > 0:
        host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host
        workers = LocalWorkers(server.local_workers, f"{scheme}://{host}:{server.port}", worker_token(settings),
                               settings.config_path, ["--fingerprint", cert.fingerprint] if cert else [])
        socketio.start_background_task(workers.supervise, socketio.sleep)

    stopping: list[str] = []

    def on_signal(signum, frame):
        # This runs wherever the event loop happens to be, often inside its hub, where nothing may wait (a
        # blocking call there is what crashed the server with "do not call blocking functions from the
        # mainloop"): it only asks the accept loop to end. The stopping itself happens below, in main's thread.
        if not stopping:
            stopping.append(signal.Signals(signum).name)
            serving.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    token_note = "from settings" if server.token else f"in {settings.data_path / 'worker-token'}"
    log.info("Scatterscribe on %s://%s:%d  (async mode %s; data: %s; worker token %s)", scheme, server.host,
             server.port, socketio.async_mode, settings.data_path, token_note)
    if cert is not None:
        log.info("https with %s (%s); its SHA-256 fingerprint:\n    %s\n  Browsers warn about a self-signed "
                 "certificate once: check that they show this fingerprint. Workers on other machines: "
                 "--fingerprint %s", "a self-signed certificate" if cert.self_signed else "the certificate",
                 cert.certfile, cert.fingerprint, cert.fingerprint)
    try:
        serving.serve_forever()
    finally:
        announcer.stop()
        stop(app, socketio, serving, workers, stopping[0] if stopping else "the server loop ended")
    return 0


def stop(app, socketio, serving, workers, why: str) -> None:
    """Stop in order, from main's green thread (where waiting is allowed): slices out go back to the queue in
    the store, local workers are told (SIGTERM; killed after 5 s), every connection is closed (remote workers
    and pages reconnect to the next server by themselves), and SQLite is closed."""
    log = logging.getLogger("scatterscribe")
    log.info("stopping (%s)", why)
    coordinator = app.extensions["scatterscribe"]
    released = coordinator.stop()
    if workers is not None:
        workers.stop(sleep=socketio.sleep)
    serving.close_all()
    coordinator.store.close()
    log.info("stopped; %d slice(s) that were out are back in the queue for the next start", released)


if __name__ == "__main__":
    sys.exit(main())
