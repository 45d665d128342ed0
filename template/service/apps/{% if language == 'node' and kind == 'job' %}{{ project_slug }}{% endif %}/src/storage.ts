/** The storage the job reads and writes: S3 or an S3-compatible server (MinIO...). */
import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
} from "@aws-sdk/client-s3";

export interface StoredObject {
  body: Uint8Array;
  etag: string;
}

/** What the job needs of an object store: S3Storage, or a stand-in in tests. */
export interface Storage {
  /** The object's ETag, without quotes; undefined when there is no such object. */
  etag(bucket: string, key: string): Promise<string | undefined>;
  /** The object's content and ETag; undefined when there is no such object. */
  get(bucket: string, key: string): Promise<StoredObject | undefined>;
  put(bucket: string, key: string, body: string, contentType: string): Promise<void>;
}

/** The client settings for AWS S3 (no endpoint), or the S3-compatible server at `endpoint`. */
export function clientConfig(endpoint?: string): S3ClientConfig {
  return {
    // Checksums only where S3 requires them: S3-compatible servers differ in the rest.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 5,
    // S3-compatible servers are addressed by host name or IP: the bucket goes in the path.
    ...(endpoint === undefined ? {} : { endpoint, forcePathStyle: true }),
  };
}

/** Network errors of Node.js that another attempt may not meet. */
const TEMPORARY_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

/**
 * A failure that running the step again may not meet: the storage could not be reached or did
 * not answer in time (after the SDK's own retries), or answered 5xx or 429.
 */
export function isTemporary(error: unknown): boolean {
  if (!(error instanceof Error)) {
    return false;
  }
  const { code, $metadata } = error as Error & {
    code?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  if (typeof code === "string" && TEMPORARY_CODES.has(code)) {
    return true;
  }
  if (error.name === "TimeoutError") {
    return true;
  }
  const status = $metadata?.httpStatusCode ?? 0;
  return status >= 500 || status === 429;
}

/** A missing object: GetObject says NoSuchKey, HeadObject (no body) only 404. */
function isMissing(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    (error.name === "NoSuchKey" ||
      error.name === "NotFound" ||
      error.$metadata.httpStatusCode === 404)
  );
}

function unquoted(etag: string | undefined): string {
  return (etag ?? "").replace(/^"|"$/g, "");
}

/** Storage over an S3 client. */
export class S3Storage implements Storage {
  constructor(readonly client: S3Client) {}

  static connect(endpoint?: string): S3Storage {
    return new S3Storage(new S3Client(clientConfig(endpoint)));
  }

  async etag(bucket: string, key: string): Promise<string | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return unquoted(head.ETag);
    } catch (error) {
      if (isMissing(error)) {
        return undefined;
      }
      throw error;
    }
  }

  async get(bucket: string, key: string): Promise<StoredObject | undefined> {
    try {
      const response = await this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const body = (await response.Body?.transformToByteArray()) ?? new Uint8Array();
      return { body, etag: unquoted(response.ETag) };
    } catch (error) {
      if (isMissing(error)) {
        return undefined;
      }
      throw error;
    }
  }

  async put(bucket: string, key: string, body: string, contentType: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType }),
    );
  }
}
