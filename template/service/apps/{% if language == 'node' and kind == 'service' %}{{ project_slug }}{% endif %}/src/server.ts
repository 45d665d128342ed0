/** Start-up and graceful shutdown: what `main.ts` runs, with its inputs injectable for tests. */
import { createLogger, type DestinationStream, type Logger } from "@repo/logger";

import { type App, type AppOptions, buildApp, Lifecycle } from "./app.js";
import { ConfigError, HOST, loadSettings, SERVICE_NAME, type Settings } from "./config.js";

/** The signals that stop the service: SIGTERM from Kubernetes, SIGINT from Ctrl-C. */
export const STOP_SIGNALS = ["SIGTERM", "SIGINT"] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** What the server listens to for stop signals: `process`, or a stand-in in tests. */
export interface SignalSource {
  once(signal: StopSignal, listener: () => void): unknown;
}

export interface Server {
  app: App;
  lifecycle: Lifecycle;
  port: number;
  /** Stop taking traffic, let in-flight requests finish, then close; false on time-out. */
  stop(): Promise<boolean>;
}

/** Listen on `settings.port` (0 picks a free port) until `stop()`. */
export async function startServer(
  settings: Settings,
  logger: Logger,
  build: (options: AppOptions) => App = buildApp,
): Promise<Server> {
  const lifecycle = new Lifecycle();
  const app = build({ logger, lifecycle });
  await app.listen({ host: HOST, port: settings.port });
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : settings.port;

  const stop = async (): Promise<boolean> => {
    // /readyz answers 503 from here on, while in-flight requests still finish.
    lifecycle.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, settings.shutdownTimeout * 1000, false);
    });
    try {
      return await Promise.race([app.close().then(() => true), timedOut]);
    } finally {
      clearTimeout(timer);
    }
  };
  return { app, lifecycle, port, stop };
}

/** Wait for the first stop signal. */
export function stopSignal(signals: SignalSource): Promise<StopSignal> {
  return new Promise((resolve) => {
    for (const signal of STOP_SIGNALS) {
      signals.once(signal, () => {
        resolve(signal);
      });
    }
  });
}

/** Where `run` writes: JSON logs (standard output by default) and start-up errors. */
export interface Output {
  logs?: DestinationStream;
  errors: NodeJS.WritableStream;
}

/**
 * Serve until SIGTERM or SIGINT, then shut down gracefully. Resolves to the exit code: 0 after
 * a clean stop, 1 when the server could not start or in-flight requests outlived
 * SHUTDOWN_TIMEOUT, 2 on a configuration error.
 */
export async function run(
  env: NodeJS.ProcessEnv,
  signals: SignalSource,
  output: Output = { errors: process.stderr },
): Promise<number> {
  let settings: Settings;
  try {
    settings = loadSettings(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      output.errors.write(`configuration error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  const logger = createLogger({
    name: SERVICE_NAME,
    level: settings.logLevel,
    destination: output.logs,
  });
  const stopped = stopSignal(signals);
  let server: Server;
  try {
    server = await startServer(settings, logger);
  } catch (error) {
    logger.fatal({ err: error }, "could not start");
    return 1;
  }
  logger.info({ port: server.port }, "started");

  const signal = await stopped;
  logger.info({ signal }, "stopping: not ready any more, finishing in-flight requests");
  if (!(await server.stop())) {
    logger.error(
      { timeout: settings.shutdownTimeout },
      "in-flight requests outlived SHUTDOWN_TIMEOUT",
    );
    return 1;
  }
  logger.info("stopped");
  return 0;
}
