import { afterEach, describe, expect, it } from "vitest";

import { type App, buildApp, Lifecycle } from "../src/app.js";
import { CapturedLogs } from "./helpers.js";

const apps: App[] = [];

function started(lifecycle = new Lifecycle(), logs = new CapturedLogs()): App {
  const app = buildApp({ logger: logs.logger(), lifecycle });
  apps.push(app);
  return app;
}

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

describe("probes", () => {
  it("answers /healthz with 200", async () => {
    const response = await started().inject({ method: "GET", url: "/healthz" });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: "ok" });
  });

  it("answers /readyz with 200 once started", async () => {
    const app = started();
    await app.ready();

    const response = await app.inject({ method: "GET", url: "/readyz" });

    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: "ready" });
  });

  it("answers /readyz with 503 while stopping", async () => {
    const lifecycle = new Lifecycle();
    const app = started(lifecycle);
    await app.ready();
    lifecycle.stopping = true;

    const response = await app.inject({ method: "GET", url: "/readyz" });

    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ status: "not ready" });
  });

  it("is ready only between start-up and shutdown", async () => {
    const lifecycle = new Lifecycle();
    const app = buildApp({ logger: new CapturedLogs().logger(), lifecycle });
    expect(lifecycle.ready).toBe(false);

    await app.ready();
    expect(lifecycle.ready).toBe(true);

    await app.close();
    expect(lifecycle.ready).toBe(false);
  });
});

describe("metrics", () => {
  it("serves the Prometheus text format with HELP lines", async () => {
    const response = await started().inject({ method: "GET", url: "/metrics" });

    expect(response.statusCode).toBe(200);
    expect(response.headers["content-type"]).toMatch(/^text\/plain/);
    expect(response.body).toContain("# HELP http_requests_total ");
    expect(response.body).toContain("# HELP process_cpu_user_seconds_total ");
  });

  it("counts requests by method, route template and status", async () => {
    const app = started();
    await app.inject({ method: "GET", url: "/healthz" });
    await app.inject({ method: "GET", url: "/healthz?probe=1" });
    await app.inject({ method: "GET", url: "/no/such/page" });

    const { body } = await app.inject({ method: "GET", url: "/metrics" });

    expect(body).toContain('http_requests_total{method="GET",route="/healthz",status="200"} 2');
    expect(body).toContain('http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(body).toMatch(/http_request_duration_seconds_count\{method="GET",route="\/healthz"\} 2/);
  });
});

describe("access log", () => {
  it("logs one JSON line per request with path, route and status", async () => {
    const logs = new CapturedLogs();
    const app = started(new Lifecycle(), logs);

    await app.inject({ method: "GET", url: "/healthz?token=secret" });

    const entries = logs.lines.filter((line) => line.message === "request completed");
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      level: "info",
      logger: "test",
      method: "GET",
      path: "/healthz",
      route: "/healthz",
      status: 200,
    });
    expect(entries[0]?.duration_ms).toBeTypeOf("number");
    expect(JSON.stringify(entries[0])).not.toContain("secret");
  });
});
