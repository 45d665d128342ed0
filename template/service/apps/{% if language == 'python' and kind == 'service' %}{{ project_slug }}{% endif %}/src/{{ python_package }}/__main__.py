"""`python -m <package>`: serve the app on $PORT until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn

from .app import Lifecycle, create_app
from .config import HOST, Settings
from .logs import logging_config


class Server(uvicorn.Server):
    """uvicorn server that reports not-ready as soon as a stop signal arrives."""

    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle) -> None:
        super().__init__(config)
        self.lifecycle = lifecycle

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # /readyz answers 503 from here on, while in-flight requests still finish.
        self.lifecycle.stopping = True
        super().handle_exit(sig, frame)


def build_server(settings: Settings) -> Server:
    lifecycle = Lifecycle()
    config = uvicorn.Config(
        create_app(lifecycle),
        host=HOST,
        port=settings.port,
        log_config=logging_config(settings.log_level),
        timeout_graceful_shutdown=settings.shutdown_timeout,
        server_header=False,
    )
    return Server(config, lifecycle)


def main() -> None:
    try:
        settings = Settings.from_env()
    except ValueError as error:
        raise SystemExit(f"configuration error: {error}") from None
    server = build_server(settings)
    # uvicorn shuts down gracefully on SIGTERM and Ctrl-C, then raises the signal again under
    # the handler it found at start. Ignoring both there makes a requested stop exit with 0.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, signal.SIG_IGN)
    server.run()


if __name__ == "__main__":
    main()
