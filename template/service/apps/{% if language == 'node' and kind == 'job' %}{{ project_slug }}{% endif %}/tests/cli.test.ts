import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";

import { describe, expect, it } from "vitest";

import { run, USAGE } from "../src/cli.js";
import type { Storage } from "../src/storage.js";
import {
  BUCKET,
  CapturedLogs,
  eventEnv,
  KEY,
  MemoryStorage,
  RESULT,
  TRUNCATED,
} from "./helpers.js";

/** One step against `storage`: its exit code, log lines and standard error. */
async function step(storage: Storage, argv: string[], env: Record<string, string>) {
  const logs = new CapturedLogs();
  const errors = new PassThrough();
  const chunks: Buffer[] = [];
  errors.on("data", (chunk: Buffer) => chunks.push(chunk));
  const code = await run(argv, env, { logs: logs.stream, errors }, () => storage);
  return { code, logs, errors: Buffer.concat(chunks).toString() };
}

const artifactPath = async () => join(await mkdtemp(join(tmpdir(), "steps-")), "validated");

describe("run", () => {
  it("loads, then skips the same event", async () => {
    const storage = new MemoryStorage();
    const env = eventEnv(storage);

    const first = await step(storage, ["run"], env);
    expect(first.code).toBe(0);
    expect(first.logs.events).toEqual(["validated", "loaded"]);

    const again = await step(storage, ["run"], env);
    expect(again.code).toBe(0);
    expect(again.logs.events).toEqual(["skipped"]);
  });

  it("passes the records from validate to load through the artifact", async () => {
    const storage = new MemoryStorage();
    const env = eventEnv(storage);
    const artifact = await artifactPath();

    expect((await step(storage, ["validate", artifact], env)).code).toBe(0);
    expect(storage.stored()).not.toContain(RESULT);
    const loaded = await step(storage, ["load", artifact], env);

    expect(loaded.code).toBe(0);
    expect(loaded.logs.events).toEqual(["loaded"]);
    expect(storage.json(RESULT).rows).toBe(3);
  });

  it("passes a processed event through both steps as skipped", async () => {
    const storage = new MemoryStorage();
    const env = eventEnv(storage);
    await step(storage, ["run"], env);
    const artifact = await artifactPath();

    const validated = await step(storage, ["validate", artifact], env);
    const loaded = await step(storage, ["load", artifact], env);

    expect([validated.code, loaded.code]).toEqual([0, 0]);
    expect([...validated.logs.events, ...loaded.logs.events]).toEqual(["skipped", "skipped"]);
  });

  it("exits with 1 and one line saying why on invalid input", async () => {
    const storage = new MemoryStorage();

    const failed = await step(storage, ["run"], eventEnv(storage, TRUNCATED));

    expect(failed.code).toBe(1);
    expect(failed.logs.lines).toHaveLength(1);
    expect(failed.logs.lines[0]).toMatchObject({
      event: "invalid",
      level: "error",
      source: `s3://${BUCKET}/${KEY}`,
    });
    expect(String(failed.logs.lines[0]?.message)).toContain("truncated");
    expect(storage.stored()).toEqual([KEY]);
  });

  it("exits with 1 when load has no artifact", async () => {
    const storage = new MemoryStorage();

    const failed = await step(storage, ["load", await artifactPath()], eventEnv(storage));

    expect(failed.code).toBe(1);
    expect(failed.logs.events).toEqual(["invalid"]);
  });

  it("exits with 3 and logs the error when the storage is unreachable", async () => {
    const storage = new MemoryStorage();
    const env = eventEnv(storage);
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9000"), {
      code: "ECONNREFUSED",
    });
    storage.get = () => Promise.reject(refused);

    const failed = await step(storage, ["run"], env);

    expect(failed.code).toBe(3);
    expect(failed.logs.events).toEqual(["failed"]);
    expect(JSON.stringify(failed.logs.lines[0]?.err)).toContain("ECONNREFUSED");
  });

  it("exits with 1 when the storage refuses for good", async () => {
    const storage = new MemoryStorage();
    const env = eventEnv(storage);
    storage.get = () => Promise.reject(new Error("Access Denied"));

    const failed = await step(storage, ["run"], env);

    expect(failed.code).toBe(1);
    expect(failed.logs.events).toEqual(["failed"]);
  });

  it("exits with 2 naming the variable on a configuration error", async () => {
    const failed = await step(new MemoryStorage(), ["run"], { EVENT_BUCKET: BUCKET });

    expect(failed.code).toBe(2);
    expect(failed.errors).toMatch(/^configuration error: EVENT_KEY is required/);
    expect(failed.logs.lines).toEqual([]);
  });

  it.each([[[]], [["transform"]], [["validate"]], [["run", "extra"]], [["load", "a", "b"]]])(
    "exits with 2 and the usage on arguments %j",
    async (argv) => {
      const failed = await step(new MemoryStorage(), argv, {});

      expect(failed.code).toBe(2);
      expect(failed.errors).toBe(`${USAGE}\n`);
    },
  );

  it("connects to the endpoint of the settings by default", async () => {
    const errors = new PassThrough();
    const logs = new CapturedLogs();
    // Nothing listens on port 9 (discard): the connection is refused, after the client was made,
    // a temporary failure.
    const env = {
      EVENT_BUCKET: BUCKET,
      EVENT_KEY: KEY,
      S3_ENDPOINT_URL: "http://127.0.0.1:9",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "testing",
      AWS_SECRET_ACCESS_KEY: "testing",
    };
    const saved = { ...process.env };
    Object.assign(process.env, env, { AWS_MAX_ATTEMPTS: "1" });
    try {
      expect(await run(["run"], env, { logs: logs.stream, errors })).toBe(3);
    } finally {
      process.env = saved;
    }
    expect(logs.events).toEqual(["failed"]);
  });
});
