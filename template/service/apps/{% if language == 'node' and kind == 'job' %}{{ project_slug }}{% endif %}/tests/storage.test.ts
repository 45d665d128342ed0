import { Readable } from "node:stream";

import { S3Client } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";

import { clientConfig, isTemporary, S3Storage } from "../src/storage.js";

/** The parts of the SDK's HTTP request that the tests read. */
interface Request {
  method: string;
  hostname: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
}

interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * An S3Storage whose client's requests never leave the process: `answer` plays the S3 server,
 * and the SDK's own serializers and error parsing run as against a real one. The whole job runs
 * against a real S3-compatible server in the template's own tests.
 */
function storageAnswering(answer: (request: Request) => Reply) {
  const requests: Request[] = [];
  const handler = {
    handle: (request: Request) => {
      requests.push(request);
      const reply = answer(request);
      return Promise.resolve({
        response: {
          statusCode: reply.status,
          headers: reply.headers ?? {},
          body: Readable.from([Buffer.from(reply.body ?? "")]),
        },
      });
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
  };
  const client = new S3Client({
    ...clientConfig("http://minio.test:9000"),
    region: "us-east-1",
    credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
    maxAttempts: 1,
    requestHandler: handler,
  });
  return { storage: new S3Storage(client), requests };
}

const error = (status: number, code: string): Reply => ({
  status,
  headers: { "content-type": "application/xml" },
  body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`,
});

describe("S3Storage", () => {
  it("reads the ETag without its quotes, addressing the bucket in the path", async () => {
    const { storage, requests } = storageAnswering(() => ({
      status: 200,
      headers: { etag: '"abc123"', "content-length": "0" },
    }));

    expect(await storage.etag("partner-drops", "incoming/day-1.csv")).toBe("abc123");

    expect(requests[0]).toMatchObject({
      method: "HEAD",
      hostname: "minio.test",
      path: "/partner-drops/incoming/day-1.csv",
    });
  });

  it("reads the content and the ETag", async () => {
    const { storage } = storageAnswering(() => ({
      status: 200,
      headers: { etag: '"abc123"', "content-length": "15" },
      body: "id,amount\n1,10\n",
    }));

    const stored = await storage.get("partner-drops", "incoming/day-1.csv");

    expect(stored?.etag).toBe("abc123");
    expect(new TextDecoder().decode(stored?.body)).toBe("id,amount\n1,10\n");
  });

  it("answers undefined for a missing object", async () => {
    const { storage } = storageAnswering((request) =>
      request.method === "HEAD" ? { status: 404 } : error(404, "NoSuchKey"),
    );

    expect(await storage.etag("partner-drops", "missing.csv")).toBeUndefined();
    expect(await storage.get("partner-drops", "missing.csv")).toBeUndefined();
  });

  it("throws other errors", async () => {
    const { storage } = storageAnswering((request) =>
      request.method === "HEAD" ? { status: 403 } : error(403, "AccessDenied"),
    );

    await expect(storage.etag("partner-drops", "secret.csv")).rejects.toThrow();
    await expect(storage.get("partner-drops", "secret.csv")).rejects.toThrow("AccessDenied");
  });

  it("tells temporary failures (5xx, 429, unreachable, timeouts) from final ones", async () => {
    const failure = async (reply: Reply) => {
      const { storage } = storageAnswering(() => reply);
      return storage.get("partner-drops", "day-1.csv").catch((caught: unknown) => caught);
    };

    expect(isTemporary(await failure(error(503, "SlowDown")))).toBe(true);
    expect(isTemporary(await failure(error(500, "InternalError")))).toBe(true);
    expect(isTemporary(await failure(error(429, "TooManyRequests")))).toBe(true);
    expect(isTemporary(await failure(error(403, "AccessDenied")))).toBe(false);
    expect(isTemporary(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isTemporary(Object.assign(new Error("slow"), { name: "TimeoutError" }))).toBe(true);
    expect(isTemporary(new Error("no credentials"))).toBe(false);
    expect(isTemporary("not an error")).toBe(false);
  });

  it("puts the body with its content type", async () => {
    const { storage, requests } = storageAnswering(() => ({
      status: 200,
      headers: { etag: '"x"' },
    }));

    await storage.put("warehouse", "loaded/day-1.csv.json", "{}", "application/json");

    expect(requests[0]).toMatchObject({
      method: "PUT",
      path: "/warehouse/loaded/day-1.csv.json",
      body: "{}",
    });
    expect(requests[0]?.headers["content-type"]).toBe("application/json");
  });

  it("addresses AWS S3 by its own rules when no endpoint is set", () => {
    expect(clientConfig()).not.toHaveProperty("endpoint");
    expect(clientConfig()).not.toHaveProperty("forcePathStyle");
    expect(S3Storage.connect("http://minio.test:9000").client).toBeInstanceOf(S3Client);
  });
});
