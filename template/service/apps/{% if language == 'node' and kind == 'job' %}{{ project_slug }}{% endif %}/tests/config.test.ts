import { describe, expect, it } from "vitest";

import { ConfigError, JOB_NAME, loadSettings } from "../src/config.js";

const EVENT = { EVENT_BUCKET: "partner-drops", EVENT_KEY: "incoming/day-1.csv" };

describe("loadSettings", () => {
  it("needs only the object, and keeps results in its bucket", () => {
    expect(loadSettings(EVENT)).toEqual({
      bucket: "partner-drops",
      key: "incoming/day-1.csv",
      outputBucket: "partner-drops",
      outputPrefix: "loaded/",
      statePrefix: ".processed/",
      logLevel: "info",
    });
    expect(JOB_NAME).not.toBe("");
  });

  it("reads every setting", () => {
    const settings = loadSettings({
      ...EVENT,
      EVENT_ETAG: '"9b2cf535f27731c974343645a3985328"',
      EVENT_SIZE: "26",
      EVENT_TIME: "2026-12-01T02:00:00Z",
      OUTPUT_BUCKET: "warehouse",
      OUTPUT_PREFIX: "partners/",
      STATE_PREFIX: "state/",
      S3_ENDPOINT_URL: "http://minio.storage:9000",
      LOG_LEVEL: " DEBUG ",
    });

    expect(settings).toEqual({
      bucket: "partner-drops",
      key: "incoming/day-1.csv",
      etag: "9b2cf535f27731c974343645a3985328",
      size: 26,
      eventTime: "2026-12-01T02:00:00Z",
      outputBucket: "warehouse",
      outputPrefix: "partners/",
      statePrefix: "state/",
      endpoint: "http://minio.storage:9000",
      logLevel: "debug",
    });
  });

  it("counts empty optional fields as absent", () => {
    const settings = loadSettings({
      ...EVENT,
      EVENT_ETAG: "",
      EVENT_SIZE: "",
      EVENT_TIME: "",
      OUTPUT_BUCKET: "",
    });

    expect(settings).toEqual(loadSettings(EVENT));
  });

  it.each([
    ["url", "incoming/acme/red flower+1.csv"],
    ["none", "incoming%2Facme%2Fred+flower%2B1.csv"],
    ["", "incoming%2Facme%2Fred+flower%2B1.csv"],
  ])("decodes a URL-encoded key when EVENT_KEY_ENCODING=%j says so", (encoding, key) => {
    const env = {
      ...EVENT,
      EVENT_KEY: "incoming%2Facme%2Fred+flower%2B1.csv",
      EVENT_KEY_ENCODING: encoding,
    };

    expect(loadSettings(env).key).toBe(key);
  });

  it("refuses a key that is not URL-encoded when it should be", () => {
    const env = { ...EVENT, EVENT_KEY: "incoming/100%.csv", EVENT_KEY_ENCODING: "url" };

    expect(() => loadSettings(env)).toThrow(/^EVENT_KEY is not URL-encoded/);
  });

  it.each([
    ["EVENT_BUCKET", ""],
    ["EVENT_BUCKET", "Partner_Drops"],
    ["EVENT_KEY", ""],
    ["EVENT_KEY", "k".repeat(1025)],
    ["EVENT_KEY_ENCODING", "base64"],
    ["EVENT_ETAG", '""'],
    ["EVENT_SIZE", "-1"],
    ["EVENT_SIZE", "26 bytes"],
    ["EVENT_TIME", "yesterday"],
    ["EVENT_TIME", "2026-12-01T02:00:00"],
    ["OUTPUT_BUCKET", "a"],
    ["S3_ENDPOINT_URL", "minio:9000"],
    ["LOG_LEVEL", "loud"],
  ])("refuses %s=%j by name", (name, value) => {
    expect(() => loadSettings({ ...EVENT, [name]: value })).toThrow(ConfigError);
    expect(() => loadSettings({ ...EVENT, [name]: value })).toThrow(new RegExp(`^${name} `));
  });

  it.each(["EVENT_BUCKET", "EVENT_KEY"])("requires %s", (name) => {
    const env = Object.fromEntries(Object.entries(EVENT).filter(([key]) => key !== name));

    expect(() => loadSettings(env)).toThrow(`${name} is required`);
  });
});
