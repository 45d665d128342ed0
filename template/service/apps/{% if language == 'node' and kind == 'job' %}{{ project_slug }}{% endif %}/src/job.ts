/**
 * The job's two steps: validate the object an event names, then load it, exactly once.
 *
 * Idempotent: a marker `<STATE_PREFIX><key>@<etag>` records each version of an object that was
 * loaded, and is written last. A re-delivered or late event finds it and skips; a crash before
 * it is harmless, as loading again writes the same result. A partial object (another size or
 * ETag than the event announced, or a row cut short) fails validation and nothing is loaded.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

import type { Logger } from "@repo/logger";

import type { Settings } from "./config.js";
import type { Storage } from "./storage.js";

/** The object is missing, changed, incomplete or malformed: nothing is loaded. */
export class Invalid extends Error {
  override name = "Invalid";
}

/** What validate hands to load: the workflow's artifact between the two steps. */
export interface Validated {
  bucket: string;
  key: string;
  etag: string;
  /** True when this version of the object was loaded before: load then does nothing. */
  skipped: boolean;
  columns: string[];
  records: string[][];
}

export function sourceOf({ bucket, key }: { bucket: string; key: string }): string {
  return `s3://${bucket}/${key}`;
}

/** Write the artifact, whole or not at all (a temporary file renamed into place). */
export async function saveArtifact(validated: Validated, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const partial = join(dirname(path), `.${basename(path)}.partial`);
  await writeFile(partial, JSON.stringify(validated), "utf8");
  await rename(partial, path);
}

export async function readArtifact(path: string): Promise<Validated> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new Invalid(`cannot read the validated artifact ${path}: ${String(error)}`);
  }
  if (!isValidated(data)) {
    throw new Invalid(`cannot read the validated artifact ${path}: not what validate writes`);
  }
  return data;
}

function isValidated(data: unknown): data is Validated {
  if (typeof data !== "object" || data === null) {
    return false;
  }
  const value = data as Record<string, unknown>;
  const strings = (items: unknown): boolean =>
    Array.isArray(items) && items.every((item) => typeof item === "string");
  return (
    typeof value.bucket === "string" &&
    typeof value.key === "string" &&
    typeof value.etag === "string" &&
    typeof value.skipped === "boolean" &&
    strings(value.columns) &&
    Array.isArray(value.records) &&
    value.records.every(strings)
  );
}

/** Rows of CSV text (RFC 4180: quoted fields may hold commas, quotes and line breaks). */
function csvRows(text: string): { line: number; fields: string[] }[] {
  const rows: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  let empty = true;
  const endRow = () => {
    rows.push({ line: rowLine, fields: empty ? [] : [...fields, field] });
    fields = [];
    field = "";
    empty = true;
    rowLine = line;
  };
  for (let index = 0; index < text.length; index++) {
    const char = text.charAt(index);
    if (quoted) {
      if (char === '"' && text.charAt(index + 1) === '"') {
        field += '"';
        index++;
      } else if (char === '"') {
        quoted = false;
        const next = text.charAt(index + 1);
        if (next !== "" && next !== "," && next !== "\n" && next !== "\r") {
          throw new Invalid(`not CSV at line ${String(line)}: a character after a closing quote`);
        }
      } else {
        line += char === "\n" ? 1 : 0;
        field += char;
      }
    } else if (char === '"' && field === "") {
      quoted = true;
      empty = false;
    } else if (char === ",") {
      fields.push(field);
      field = "";
      empty = false;
    } else if (char === "\n" || char === "\r") {
      if (char === "\r" && text.charAt(index + 1) === "\n") {
        index++;
      }
      line++;
      endRow();
    } else {
      field += char;
      empty = false;
    }
  }
  if (quoted) {
    throw new Invalid(`not CSV at line ${String(line)}: the object ends inside a quoted field`);
  }
  if (!empty) {
    endRow();
  }
  return rows;
}

/** The header and the records of a CSV object; Invalid unless every row is whole. */
export function parseCsv(body: Uint8Array): { columns: string[]; records: string[][] } {
  let text: string;
  try {
    // A byte order mark is dropped, as TextDecoder does by default.
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new Invalid("not UTF-8 text");
  }
  const [header, ...rows] = csvRows(text);
  if (!header?.fields.every((name) => name.trim() !== "")) {
    throw new Invalid("no header row, or a header with an empty column name");
  }
  const columns = header.fields;
  for (const row of rows) {
    if (row.fields.length !== columns.length) {
      throw new Invalid(
        `line ${String(row.line)} has ${String(row.fields.length)} fields where the header has ` +
          `${String(columns.length)}: the object is truncated or malformed`,
      );
    }
  }
  return { columns, records: rows.map((row) => row.fields) };
}

/** The object named by `settings`, processed through `storage`. */
export class Job {
  constructor(
    readonly settings: Settings,
    readonly storage: Storage,
    readonly logger: Logger,
  ) {}

  get source(): string {
    return sourceOf(this.settings);
  }

  get resultKey(): string {
    return `${this.settings.outputPrefix}${this.settings.key}.json`;
  }

  markerKey(etag: string): string {
    return `${this.settings.statePrefix}${this.settings.key}@${etag}`;
  }

  /** Whether the object is a result or a marker of this job (when both share a bucket, a
   * notification for the whole bucket would otherwise start the job on its own output). */
  get ownOutput(): boolean {
    const { bucket, key, outputBucket, outputPrefix, statePrefix } = this.settings;
    const prefixes = [outputPrefix, statePrefix].filter((prefix) => prefix !== "");
    return outputBucket === bucket && prefixes.some((prefix) => key.startsWith(prefix));
  }

  /** Whether this version of the object (key and ETag) was loaded before. */
  async processed(etag: string): Promise<boolean> {
    return (
      (await this.storage.etag(this.settings.outputBucket, this.markerKey(etag))) !== undefined
    );
  }

  /** Read the object and check it is the whole one the event announced, and well-formed. */
  async validate(): Promise<Validated> {
    const { bucket, key, size } = this.settings;
    if (this.ownOutput) {
      this.logger.info({ event: "skipped", source: this.source }, "the job's own output");
      const etag = this.settings.etag ?? "";
      return { bucket, key, etag, skipped: true, columns: [], records: [] };
    }
    const etag = this.settings.etag ?? (await this.storage.etag(bucket, key));
    if (etag === undefined) {
      throw new Invalid(`${this.source} does not exist`);
    }
    if (await this.processed(etag)) {
      this.logger.info({ event: "skipped", source: this.source }, "already processed");
      return { bucket, key, etag, skipped: true, columns: [], records: [] };
    }
    const stored = await this.storage.get(bucket, key);
    if (stored === undefined) {
      throw new Invalid(`${this.source} does not exist`);
    }
    if (stored.etag !== etag) {
      throw new Invalid(
        `${this.source} changed since the event: ETag ${stored.etag}, announced ${etag}`,
      );
    }
    if (size !== undefined && stored.body.length !== size) {
      throw new Invalid(
        `${this.source} has ${String(stored.body.length)} bytes, the event announced ` +
          `${String(size)}: the object is incomplete`,
      );
    }
    const { columns, records } = parseCsv(stored.body);
    this.logger.info(
      { event: "validated", source: this.source, etag, rows: records.length },
      "validated",
    );
    return { bucket, key, etag, skipped: false, columns, records };
  }

  /** Write the result, then the marker; false when this version was loaded before. */
  async load(validated: Validated): Promise<boolean> {
    const { bucket, key, etag, outputBucket, eventTime } = this.settings;
    if (
      validated.bucket !== bucket ||
      validated.key !== key ||
      (etag !== undefined && validated.etag !== etag)
    ) {
      throw new Invalid(`the validated artifact is of ${sourceOf(validated)}, not ${this.source}`);
    }
    if (validated.skipped || (await this.processed(validated.etag))) {
      this.logger.info({ event: "skipped", source: this.source }, "already processed");
      return false;
    }
    const rows = validated.records.length;
    const result = {
      source: sourceOf(validated),
      etag: validated.etag,
      rows,
      columns: validated.columns,
    };
    await this.storage.put(
      outputBucket,
      this.resultKey,
      JSON.stringify(result),
      "application/json",
    );
    const marker = {
      ...result,
      loaded_at: new Date().toISOString(),
      event_time: eventTime ?? null,
    };
    await this.storage.put(
      outputBucket,
      this.markerKey(validated.etag),
      JSON.stringify(marker),
      "application/json",
    );
    this.logger.info(
      {
        event: "loaded",
        source: this.source,
        etag: validated.etag,
        rows,
        result: `s3://${outputBucket}/${this.resultKey}`,
      },
      "loaded",
    );
    return true;
  }
}
