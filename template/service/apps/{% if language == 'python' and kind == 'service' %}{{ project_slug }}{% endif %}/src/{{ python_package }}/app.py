"""The FastAPI application: probes for Kubernetes, metrics for Prometheus."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from .metrics import HttpMetrics


@dataclass
class Lifecycle:
    """Ready only between the end of start-up and the beginning of shutdown."""

    started: bool = False
    stopping: bool = False

    @property
    def ready(self) -> bool:
        return self.started and not self.stopping


def create_app(lifecycle: Lifecycle | None = None) -> FastAPI:
    lifecycle = lifecycle or Lifecycle()
    metrics = HttpMetrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        lifecycle.started = True
        yield
        lifecycle.stopping = True

    app = FastAPI(lifespan=lifespan)

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        status = 500  # what the client gets if the route raises
        try:
            response = await call_next(request)
            status = response.status_code
            if lifecycle.stopping:
                # Close each connection after its response while stopping, so that clients
                # reconnect to another pod instead of reusing a connection that is closing.
                response.headers["connection"] = "close"
            return response
        finally:
            # The router stores the matched route in the scope; its template is the label.
            route = getattr(request.scope.get("route"), "path", "unmatched")
            metrics.observe(request.method, route, status, time.perf_counter() - start)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process is up and serving requests."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """Readiness: started and not shutting down, so it may receive traffic."""
        if lifecycle.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app
