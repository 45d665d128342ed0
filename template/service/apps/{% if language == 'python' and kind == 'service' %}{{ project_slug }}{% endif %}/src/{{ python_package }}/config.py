"""Settings read from the environment once, at start-up."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

# Containers must listen on every interface for Kubernetes to reach the pod.
HOST = "0.0.0.0"  # noqa: S104
MAX_PORT = 65535


@dataclass(frozen=True)
class Settings:
    port: int = 8080
    log_level: str = "INFO"
    # Seconds uvicorn waits for in-flight requests after SIGTERM; keep it below the pod's
    # terminationGracePeriodSeconds so that the kubelet never has to send SIGKILL.
    shutdown_timeout: float = 20.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read PORT, LOG_LEVEL and SHUTDOWN_TIMEOUT; unset ones keep their defaults."""
        return cls(
            port=_port(environ.get("PORT", str(cls.port))),
            log_level=_log_level(environ.get("LOG_LEVEL", cls.log_level)),
            shutdown_timeout=_seconds(environ.get("SHUTDOWN_TIMEOUT", str(cls.shutdown_timeout))),
        )


def _port(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_PORT:
        raise ValueError(f"PORT must be a number from 1 to {MAX_PORT}, got {value!r}")
    return int(value)


def _log_level(value: str) -> str:
    level = value.strip().upper()
    if level not in logging.getLevelNamesMapping():
        raise ValueError(f"LOG_LEVEL must be a level name such as INFO or DEBUG, got {value!r}")
    return level


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise ValueError(f"SHUTDOWN_TIMEOUT must be a number of seconds >= 0, got {value!r}")
    return seconds
