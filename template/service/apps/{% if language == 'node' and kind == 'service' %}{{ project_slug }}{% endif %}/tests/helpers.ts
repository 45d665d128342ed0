import { once } from "node:events";
import { createServer } from "node:net";
import { Writable } from "node:stream";

import { createLogger, type Logger } from "@repo/logger";

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

  logger(): Logger {
    return createLogger({ name: "test", destination: this.stream });
  }
}

/** A TCP port that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  if (typeof address !== "object" || address === null) {
    throw new Error("no port");
  }
  return address.port;
}
