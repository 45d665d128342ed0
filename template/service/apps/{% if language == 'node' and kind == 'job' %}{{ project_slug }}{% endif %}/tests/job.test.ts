import { mkdtemp, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

import { Invalid, Job, parseCsv, readArtifact, saveArtifact } from "../src/job.js";
import {
  BUCKET,
  CapturedLogs,
  event,
  GOOD,
  KEY,
  MemoryStorage,
  RESULT,
  TRUNCATED,
} from "./helpers.js";

function job(storage: MemoryStorage, settings = event(storage)): Job {
  return new Job(settings, storage, new CapturedLogs().logger());
}

/** Both steps, as `run` does; false when skipped. */
async function runBoth(target: Job): Promise<boolean> {
  const validated = await target.validate();
  return !validated.skipped && (await target.load(validated));
}

const encode = (text: string) => new TextEncoder().encode(text);

describe("Job", () => {
  it("loads a whole object, then marks it processed", async () => {
    const storage = new MemoryStorage();
    const settings = event(storage);

    expect(await runBoth(job(storage, settings))).toBe(true);

    expect(storage.json(RESULT)).toEqual({
      source: `s3://${BUCKET}/${KEY}`,
      etag: settings.etag,
      rows: 3,
      columns: ["id", "amount"],
    });
    const marker = storage.json(`.processed/${KEY}@${String(settings.etag)}`);
    expect(marker).toMatchObject({ rows: 3, event_time: "2026-12-01T02:00:00Z" });
    expect(Date.parse(String(marker.loaded_at))).not.toBeNaN();
  });

  it("skips the same version again without reading it", async () => {
    const storage = new MemoryStorage();
    const settings = event(storage);
    await runBoth(job(storage, settings));
    storage.remove(BUCKET, RESULT);
    // The event names the ETag: the marker answers before the object is read.
    storage.objects.set(`${BUCKET}/${KEY}`, { body: encode(""), etag: String(settings.etag) });

    expect(await runBoth(job(storage, settings))).toBe(false);

    expect(storage.stored()).not.toContain(RESULT);
  });

  it("loads a new version of the same key", async () => {
    const storage = new MemoryStorage();
    await runBoth(job(storage));

    expect(await runBoth(job(storage, event(storage, `${GOOD}4,40\n`)))).toBe(true);

    expect(storage.json(RESULT).rows).toBe(4);
    expect(storage.stored().filter((key) => key.startsWith(".processed/"))).toHaveLength(2);
  });

  it("uses the object's own ETag when the event has none", async () => {
    const storage = new MemoryStorage();
    const announced = event(storage).etag;
    const settings = { ...event(storage), etag: undefined, size: undefined };

    expect(await runBoth(job(storage, settings))).toBe(true);

    expect(storage.json(RESULT).etag).toBe(announced);
  });

  it("writes results and markers where the settings say", async () => {
    const storage = new MemoryStorage();
    const settings = event(storage, GOOD, {
      outputBucket: "warehouse",
      outputPrefix: "out/",
      statePrefix: "state/",
    });

    await runBoth(job(storage, settings));

    expect(storage.stored("warehouse")).toEqual([
      `out/${KEY}.json`,
      `state/${KEY}@${String(settings.etag)}`,
    ]);
    expect(storage.stored()).toEqual([KEY]);
  });

  it.each([RESULT, `.processed/${KEY}@9b2cf535f27731c974343645a3985328`])(
    "takes its own output (%s) for no input",
    async (key) => {
      const storage = new MemoryStorage();
      const settings = { ...event(storage), key };
      storage.add(BUCKET, key, '{"rows": 3}');

      const validated = await job(storage, settings).validate();

      expect(validated.skipped).toBe(true);
      expect(await job(storage, settings).load(validated)).toBe(false);
      expect(storage.stored()).toEqual([KEY, key].sort());
    },
  );

  it("processes an input under the output prefix of another bucket", async () => {
    const storage = new MemoryStorage();
    const settings = { ...event(storage), key: "loaded/day-1.csv", outputBucket: "warehouse" };
    storage.add(BUCKET, "loaded/day-1.csv", GOOD);

    expect(await runBoth(job(storage, { ...settings, etag: undefined, size: undefined }))).toBe(
      true,
    );

    expect(storage.stored("warehouse")).toContain("loaded/loaded/day-1.csv.json");
  });

  it.each([
    ["a cut row", TRUNCATED, {}, "line 4 has 1 fields where the header has 2"],
    ["fewer bytes", GOOD.slice(0, -6), { size: GOOD.length }, "has 19 bytes"],
    ["another ETag", GOOD, { etag: "0".repeat(32) }, "changed since the event"],
  ])("refuses %s and loads nothing", async (_name, body, announced, reason) => {
    const storage = new MemoryStorage();
    const target = job(storage, event(storage, body, announced));

    await expect(target.validate()).rejects.toThrow(reason);
    await expect(target.validate()).rejects.toBeInstanceOf(Invalid);

    expect(storage.stored()).toEqual([KEY]);
  });

  it.each([undefined, "9b2cf535f27731c974343645a3985328"])(
    "refuses a missing object (event ETag %s)",
    async (etag) => {
      const storage = new MemoryStorage();
      const settings = { ...event(storage), etag };
      storage.remove(BUCKET, KEY);

      await expect(job(storage, settings).validate()).rejects.toThrow("does not exist");
    },
  );

  it("skips at load what another run loaded meanwhile", async () => {
    const storage = new MemoryStorage();
    const settings = event(storage);
    const validated = await job(storage, settings).validate();
    await runBoth(job(storage, settings));
    storage.remove(BUCKET, RESULT);

    expect(await job(storage, settings).load(validated)).toBe(false);

    expect(storage.stored()).not.toContain(RESULT);
  });

  it.each([{ key: "incoming/acme/other.csv" }, { etag: "0".repeat(32) }])(
    "refuses the artifact of another object (%j)",
    async (other) => {
      const storage = new MemoryStorage();
      const settings = event(storage);
      const validated = await job(storage, settings).validate();

      await expect(job(storage, { ...settings, ...other }).load(validated)).rejects.toThrow(
        "artifact is of",
      );
    },
  );
});

describe("artifact", () => {
  it("survives the trip between the steps", async () => {
    const storage = new MemoryStorage();
    const validated = await job(storage).validate();
    const folder = await mkdtemp(join(tmpdir(), "artifact-"));
    const path = join(folder, "steps", "validated");

    await saveArtifact(validated, path);

    expect(await readArtifact(path)).toEqual(validated);
    expect(await readdir(join(folder, "steps"))).toEqual(["validated"]);
  });

  it.each([undefined, "{not json", '{"bucket": "b"}', "null"])(
    "is invalid when unreadable (%j)",
    async (content) => {
      const path = join(await mkdtemp(join(tmpdir(), "artifact-")), "validated");
      if (content !== undefined) {
        await writeFile(path, content, "utf8");
      }

      await expect(readArtifact(path)).rejects.toThrow("cannot read the validated artifact");
    },
  );
});

describe("parseCsv", () => {
  it("reads quoted fields and CRLF line ends, without a byte order mark", () => {
    const body = encode('\ufeffid,note\r\n1,"a, b"\r\n2,"two\nlines"\r\n3,"say ""hi"""\r\n');

    expect(parseCsv(body)).toEqual({
      columns: ["id", "note"],
      records: [
        ["1", "a, b"],
        ["2", "two\nlines"],
        ["3", 'say "hi"'],
      ],
    });
  });

  it("reads a header alone, and a last line without a line break", () => {
    expect(parseCsv(encode("id,amount\n"))).toEqual({ columns: ["id", "amount"], records: [] });
    expect(parseCsv(encode("id,amount\n1,"))).toEqual({
      columns: ["id", "amount"],
      records: [["1", ""]],
    });
  });

  it.each([
    ["empty", "", "no header row"],
    ["an unnamed column", "id,,amount\n1,2,3\n", "empty column name"],
    ["a blank line", "id,amount\n1,10\n\n2,20\n", "line 3 has 0 fields"],
    ["an open quote", 'id,note\n1,"cut\n', "ends inside a quoted field"],
    ["text after a quote", 'id,note\n1,"a"b\n', "after a closing quote"],
  ])("refuses %s", (_name, text, reason) => {
    expect(() => parseCsv(encode(text))).toThrow(reason);
  });

  it("refuses what is not UTF-8", () => {
    expect(() => parseCsv(new Uint8Array([0x69, 0x64, 0x0a, 0xe9, 0x0a]))).toThrow("not UTF-8");
  });
});
