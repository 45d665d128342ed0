/**
 * JSON logs for the services of this repository: one object per line on stdout, with the
 * fields log pipelines expect (`time`, `level`, `logger`, `message`), whatever the service.
 */
import { pino, type DestinationStream, type Level, type Logger } from "pino";

export type { DestinationStream, Level, Logger } from "pino";

/** Level names, from the most to the least verbose. */
export const LEVELS: readonly Level[] = ["trace", "debug", "info", "warn", "error", "fatal"];

export interface LoggerOptions {
  /** Written as `logger` on every line: the service or component that logs. */
  name: string;
  /** Lines below this level are dropped. */
  level?: Level;
  /** Where lines go; standard output, written synchronously, when not given. */
  destination?: DestinationStream;
}

/** Whether `value` is one of LEVELS (lowercase, as pino names them). */
export function isLevel(value: string): value is Level {
  return (LEVELS as readonly string[]).includes(value);
}

/** A logger writing one JSON object per line, such as
 * `{"level":"info","time":"2024-05-01T12:00:00.000Z","logger":"api","message":"started"}`. */
export function createLogger({ name, level = "info", destination }: LoggerOptions): Logger {
  return pino(
    {
      level,
      messageKey: "message",
      // No pid and hostname: the platform adds where a line came from.
      base: { logger: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ level: label }),
      },
    },
    // Synchronous writes: nothing is lost when the process exits right after logging.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}
