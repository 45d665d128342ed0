import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";

import { afterEach, describe, expect, it } from "vitest";

import { type AppOptions, buildApp } from "../src/app.js";
import { DEFAULTS, SERVICE_NAME, type Settings } from "../src/config.js";
import { run, type Server, startServer, stopSignal } from "../src/server.js";
import { CapturedLogs, freePort } from "./helpers.js";

const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

/** A promise and the function that resolves it. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** A server with a route that answers only once released: an in-flight request at shutdown. */
async function serveWithSlowRoute(settings: Partial<Settings> = {}) {
  const arrival = signal();
  const release = signal();
  const build = (options: AppOptions) =>
    buildApp(options).get("/slow", async () => {
      arrival.resolve();
      await release.promise;
      return { done: true };
    });
  const server = await startServer(
    { ...DEFAULTS, port: 0, ...settings },
    new CapturedLogs().logger(),
    build,
  );
  servers.push(server);
  const url = (path: string) => `http://127.0.0.1:${String(server.port)}${path}`;
  return { server, url, arrived: arrival.promise, release: release.resolve };
}

describe("startServer", () => {
  it("listens on a real port and is ready", async () => {
    const { server, url } = await serveWithSlowRoute();

    const response = await fetch(url("/readyz"));

    expect(response.status).toBe(200);
    expect(server.lifecycle.ready).toBe(true);
  });

  it("lets in-flight requests finish after stop() and refuses new ones", async () => {
    const { server, url, arrived, release } = await serveWithSlowRoute();
    const inFlight = fetch(url("/slow"));
    await arrived;

    const stopped = server.stop();
    expect(server.lifecycle.ready).toBe(false);
    release();

    const response = await inFlight;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ done: true });
    expect(await stopped).toBe(true);
    await expect(fetch(url("/healthz"))).rejects.toThrow();
  });

  it("gives up waiting after SHUTDOWN_TIMEOUT", async () => {
    const { server, url, arrived, release } = await serveWithSlowRoute({ shutdownTimeout: 0.1 });
    const inFlight = fetch(url("/slow"));
    await arrived;

    expect(await server.stop()).toBe(false);
    release();
    expect((await inFlight).status).toBe(200);
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
    await expect
      .poll(() => logs.lines.some((line) => line.message === "started"), { timeout: 10_000 })
      .toBe(true);

    const response = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
    expect(response.status).toBe(200);
    signals.emit("SIGTERM");

    await expect(exitCode).resolves.toBe(0);
    const messages = logs.lines.map((line) => line.message);
    expect(messages).toContain("request completed");
    expect(messages.at(-1)).toBe("stopped");
    expect(logs.lines.every((line) => line.logger === SERVICE_NAME)).toBe(true);
  });

  it("exits with 1 and logs why when the port is taken", async () => {
    const { server } = await serveWithSlowRoute();
    const logs = new CapturedLogs();

    const exitCode = await run({ PORT: String(server.port) }, new EventEmitter(), {
      logs: logs.stream,
      errors: new PassThrough(),
    });

    expect(exitCode).toBe(1);
    const [entry] = logs.lines;
    expect(entry).toMatchObject({ level: "fatal", message: "could not start" });
    expect(JSON.stringify(entry?.err)).toContain("EADDRINUSE");
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
