import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";

import { afterEach, describe, expect, it } from "vitest";

import { type AppOptions, buildApp } from "../src/app.js";
import { DEFAULTS, SERVICE_NAME, type Settings } from "../src/config.js";
import { run, type Server, startServer, stopSignal } from "../src/server.js";
import { CapturedLogs, freePort } from "./helpers.js";

const servers: Server[] = [];

async function serve(settings: Partial<Settings> = {}, slowMs = 0): Promise<Server> {
  // A route that takes `slowMs` to answer: an in-flight request during shutdown.
  const build = (options: AppOptions) =>
    buildApp(options).get("/slow", async () => {
      await new Promise((resolve) => setTimeout(resolve, slowMs));
      return { done: true };
    });
  const server = await startServer(
    { ...DEFAULTS, port: 0, ...settings },
    new CapturedLogs().logger(),
    build,
  );
  servers.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

function url(server: Server, path: string): string {
  return `http://127.0.0.1:${String(server.port)}${path}`;
}

describe("startServer", () => {
  it("listens on a real port and is ready", async () => {
    const server = await serve();

    const response = await fetch(url(server, "/readyz"));

    expect(response.status).toBe(200);
    expect(server.lifecycle.ready).toBe(true);
  });

  it("lets in-flight requests finish after stop() and refuses new ones", async () => {
    const server = await serve({}, 300);
    const inFlight = fetch(url(server, "/slow"));
    await new Promise((resolve) => setTimeout(resolve, 50));

    const stopped = server.stop();
    expect(server.lifecycle.ready).toBe(false);

    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ done: true });
    expect(await stopped).toBe(true);
    await expect(fetch(url(server, "/healthz"))).rejects.toThrow();
  });

  it("gives up waiting after SHUTDOWN_TIMEOUT", async () => {
    const server = await serve({ shutdownTimeout: 0.1 }, 1000);
    const inFlight = fetch(url(server, "/slow"));
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect(await server.stop()).toBe(false);
    await inFlight;
  });
});

describe("stopSignal", () => {
  it.each(["SIGTERM", "SIGINT"] as const)("resolves with %s", async (signal) => {
    const signals = new EventEmitter();
    const received = stopSignal(signals);

    signals.emit(signal);

    await expect(received).resolves.toBe(signal);
  });
});

describe("run", () => {
  it("serves until SIGTERM, then exits with 0 and logs JSON", async () => {
    const port = await freePort();
    const signals = new EventEmitter();
    const logs = new CapturedLogs();
    const exitCode = run({ PORT: String(port) }, signals, {
      logs: logs.stream,
      errors: new PassThrough(),
    });
    await expect.poll(() => logs.lines.some((line) => line.message === "started")).toBe(true);

    const response = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
    expect(response.status).toBe(200);
    signals.emit("SIGTERM");

    await expect(exitCode).resolves.toBe(0);
    const messages = logs.lines.map((line) => line.message);
    expect(messages).toContain("request completed");
    expect(messages.at(-1)).toBe("stopped");
    expect(logs.lines.every((line) => line.logger === SERVICE_NAME)).toBe(true);
  });

  it("exits with 2 and names the setting on a configuration error", async () => {
    const errors = new PassThrough();
    const chunks: Buffer[] = [];
    errors.on("data", (chunk: Buffer) => chunks.push(chunk));

    const exitCode = await run({ PORT: "http" }, new EventEmitter(), { errors });

    expect(exitCode).toBe(2);
    expect(Buffer.concat(chunks).toString()).toMatch(/^configuration error: PORT must be/);
  });
});
