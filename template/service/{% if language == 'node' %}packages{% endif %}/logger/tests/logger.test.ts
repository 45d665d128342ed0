import { Writable } from "node:stream";

import { describe, expect, it } from "vitest";

import { createLogger, isLevel, LEVELS } from "../src/index.js";

/** A destination that keeps every line written to it, parsed. */
function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const lines = () =>
    chunks
      .join("")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { stream, lines };
}

describe("createLogger", () => {
  it("writes one JSON object per line with time, level, logger and message", () => {
    const { stream, lines } = capture();
    const logger = createLogger({ name: "api", destination: stream });

    logger.info("first");
    logger.warn({ port: 8080 }, "second");

    const [first, second] = lines();
    expect(first).toMatchObject({ level: "info", logger: "api", message: "first" });
    expect(second).toMatchObject({ level: "warn", logger: "api", message: "second", port: 8080 });
    expect(new Date(String(first?.time)).toISOString()).toBe(first?.time);
  });

  it("leaves out pid and hostname", () => {
    const { stream, lines } = capture();
    createLogger({ name: "api", destination: stream }).info("hello");

    expect(Object.keys(lines()[0] ?? {}).sort()).toEqual(["level", "logger", "message", "time"]);
  });

  it("drops lines below its level", () => {
    const { stream, lines } = capture();
    const logger = createLogger({ name: "api", level: "warn", destination: stream });

    logger.info("dropped");
    logger.error("kept");

    expect(lines().map((line) => line.message)).toEqual(["kept"]);
  });

  it("logs errors under `err` with their type, message and stack, as Fastify does", () => {
    const { stream, lines } = capture();
    const logger = createLogger({ name: "api", destination: stream });

    logger.error(new Error("boom"), "failed");
    logger.error({ err: new TypeError("bad") }, "failed too");

    const [first, second] = lines();
    expect(first?.message).toBe("failed");
    expect(first?.err).toMatchObject({ type: "Error", message: "boom" });
    expect(String((first?.err as { stack?: string }).stack)).toContain("boom");
    expect(second?.err).toMatchObject({ type: "TypeError", message: "bad" });
  });

  it("writes to standard output when no destination is given", () => {
    const logger = createLogger({ name: "api", level: "fatal" });

    expect(logger.level).toBe("fatal");
    expect(logger.bindings()).toEqual({ logger: "api" });
  });
});

describe("isLevel", () => {
  it.each(LEVELS)("accepts %s", (level) => {
    expect(isLevel(level)).toBe(true);
  });

  it.each(["INFO", "verbose", "", "silent"])("rejects %j", (value) => {
    expect(isLevel(value)).toBe(false);
  });
});
