import { createHash } from "node:crypto";
import { Writable } from "node:stream";

import { createLogger, type Logger } from "@repo/logger";

import { loadSettings, type Settings } from "../src/config.js";
import type { Storage, StoredObject } from "../src/storage.js";

export const BUCKET = "partner-drops";
export const KEY = "incoming/acme/day-1.csv";
export const RESULT = `loaded/${KEY}.json`;
export const GOOD = "id,amount\n1,10\n2,20\n3,30\n";
/** A row cut short: what a half-written or truncated upload leaves. */
export const TRUNCATED = "id,amount\n1,10\n2,20\n3";

/** The job's Storage over a map, with S3's ETags (the MD5 of a single-part upload). */
export class MemoryStorage implements Storage {
  readonly objects = new Map<string, StoredObject>();

  add(bucket: string, key: string, body: string | Uint8Array): string {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    const etag = createHash("md5").update(bytes).digest("hex");
    this.objects.set(`${bucket}/${key}`, { body: bytes, etag });
    return etag;
  }

  remove(bucket: string, key: string): void {
    this.objects.delete(`${bucket}/${key}`);
  }

  etag(bucket: string, key: string): Promise<string | undefined> {
    return Promise.resolve(this.objects.get(`${bucket}/${key}`)?.etag);
  }

  get(bucket: string, key: string): Promise<StoredObject | undefined> {
    return Promise.resolve(this.objects.get(`${bucket}/${key}`));
  }

  put(bucket: string, key: string, body: string, contentType: string): Promise<void> {
    if (contentType !== "application/json") {
      throw new Error(`unexpected content type ${contentType}`);
    }
    this.add(bucket, key, body);
    return Promise.resolve();
  }

  /** The keys stored in `bucket`. */
  stored(bucket = BUCKET): string[] {
    return [...this.objects.keys()]
      .filter((name) => name.startsWith(`${bucket}/`))
      .map((name) => name.slice(bucket.length + 1))
      .sort();
  }

  json(key: string, bucket = BUCKET): Record<string, unknown> {
    const stored = this.objects.get(`${bucket}/${key}`);
    if (stored === undefined) {
      throw new Error(`no object ${bucket}/${key}`);
    }
    return JSON.parse(new TextDecoder().decode(stored.body)) as Record<string, unknown>;
  }
}

/** The environment a workflow step gets for an S3 event of `body`, uploaded to `storage`. */
export function eventEnv(
  storage: MemoryStorage,
  body: string = GOOD,
  key: string = KEY,
): Record<string, string> {
  const etag = storage.add(BUCKET, key, body);
  return {
    EVENT_BUCKET: BUCKET,
    EVENT_KEY: key,
    EVENT_ETAG: etag,
    EVENT_SIZE: String(new TextEncoder().encode(body).length),
    EVENT_TIME: "2026-12-01T02:00:00Z",
  };
}

/** The settings of such an event, with `overrides` on top. */
export function event(
  storage: MemoryStorage,
  body: string = GOOD,
  overrides: Partial<Settings> = {},
): Settings {
  return { ...loadSettings(eventEnv(storage, body)), ...overrides };
}

/** Log lines written to a logger, parsed, for assertions. */
export class CapturedLogs {
  private readonly chunks: string[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _encoding, callback) => {
      this.chunks.push(chunk.toString());
      callback();
    },
  });

  get lines(): Record<string, unknown>[] {
    return this.chunks
      .join("")
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  get events(): unknown[] {
    return this.lines.map((line) => line.event);
  }

  logger(): Logger {
    return createLogger({ name: "test", destination: this.stream });
  }
}
