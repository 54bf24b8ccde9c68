"""`dlc serve MODEL.onnx...|DIR`: the KServe v2 inference protocol over onnxruntime; DIR
is a Triton model repository (`dlc export --triton DIR`), served by name and version.

The pieces, outside in:

- uvicorn, on a socket `serve_command` binds itself (so a port in use is a clean error),
  with a SIGTERM/SIGINT handler that drains: the listener closes, requests in flight
  are answered, the process exits 0 (this module);
- the ASGI application and its endpoints (app.py), over the models named on the command
  line (models.py), with the metrics and access log of observe.py;
- the wire format (protocol.py) and dynamic batching (batching.py).

Only the models named on the command line are served, and the server listens on
127.0.0.1 unless `--host` says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from ...compiler.errors import UsageError
from .app import KServeApp, ServeOptions
from .models import ServeError, load_models

log = logging.getLogger("dlc.serve")

DRAIN_SECONDS = 30  # how long SIGTERM waits for requests in flight before cancelling them


def serve_command(args: argparse.Namespace) -> int:
    options = _options(args)
    models = load_models(args.models)
    sock = _listen(args.host, args.port)
    app = KServeApp(models, options)
    _setup_logging()
    for m in models.values():
        sig = m.signature
        ins = ", ".join(t.describe() for t in sig.inputs)
        outs = ", ".join(t.describe() for t in sig.outputs)
        rows = min(options.max_batch, m.max_batch or options.max_batch)
        how = (
            f"batches up to {rows} rows along {sig.batch_dim}"
            if sig.batch_dim
            else "one request per call (no symbolic batch dim)"
        )
        log.info("model '%s' version %s from %s: %s -> %s; %s", m.name, m.version, m.path,
                 ins, outs, how)  # fmt: skip
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    if not _loopback(host):
        log.warning("listening on %s: anyone who can reach this machine can call the models", host)
    log.info("listening on %s (KServe v2 at /v2, docs at /docs, metrics at /metrics)", url)

    config = uvicorn.Config(
        app.asgi(access_log=sys.stdout),
        lifespan="on",
        access_log=False,  # Observe writes one line per request
        log_config=None,
        timeout_graceful_shutdown=DRAIN_SECONDS,
        server_header=False,
        proxy_headers=False,  # on loopback by default; no proxy's headers to trust
    )
    server = _DrainingServer(config, app)
    server.run(sockets=[sock])
    log.info("stopped")
    return 0


def _options(args: argparse.Namespace) -> ServeOptions:
    checks = [
        (args.max_batch >= 1, "--max-batch must be 1 or more"),
        (args.max_delay_ms >= 0, "--max-delay-ms must be 0 or more"),
        (args.workers >= 1, "--workers must be 1 or more"),
        (args.max_body_mb > 0, "--max-body-mb must be more than 0"),
        (0 <= args.port <= 65535, "--port must be from 0 to 65535"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    return ServeOptions(
        max_batch=args.max_batch,
        max_delay=args.max_delay_ms / 1e3,
        workers=args.workers,
        max_body=int(args.max_body_mb * (1 << 20)),
        noop=args.noop_endpoint,
    )


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise ServeError(f"cannot listen on '{host}': {e.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {e.strerror}",
            hint="choose another --port (0 picks a free one)",
        ) from None
    return sock


def _loopback(host: str) -> bool:
    return host in ("::1", "localhost") or host.startswith("127.")


def _setup_logging() -> None:
    """Server messages and uvicorn's on stderr (the access log goes to stdout)."""
    info = logging.StreamHandler(sys.stderr)
    info.setFormatter(logging.Formatter("dlc serve: %(message)s"))
    for name in ("dlc.serve", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [info]
        logger.setLevel(logging.INFO)
        logger.propagate = False


class _DrainingServer(uvicorn.Server):
    """uvicorn's Server with a signal handler that drains and then exits 0 (uvicorn's
    own re-raises the signal after draining, so the process would die of SIGTERM)."""

    def __init__(self, config: uvicorn.Config, app: KServeApp) -> None:
        super().__init__(config)
        self.kserve_app = app

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def drain(sig: int, frame: Any) -> None:
            if not self.should_exit:
                log.info("%s: draining the requests in flight", signal.Signals(sig).name)
            self.kserve_app.draining = True
            self.handle_exit(sig, frame)

        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {s: signal.signal(s, drain) for s in handled}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
