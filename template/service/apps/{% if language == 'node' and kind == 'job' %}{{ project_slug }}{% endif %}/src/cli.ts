/**
 * `node dist/main.js validate ARTIFACT | load ARTIFACT | run`: one step of the workflow.
 *
 * Exit codes: 0 processed or skipped, 1 invalid input or a storage refusal that running again
 * cannot change (nothing loaded; the log line says why), 2 a configuration or usage error (one
 * line on stderr names the variable), 3 a temporary storage failure (unreachable, timed out,
 * 5xx): the workflow retries only this one.
 */
import { createLogger, type DestinationStream } from "@repo/logger";

import { ConfigError, JOB_NAME, loadSettings } from "./config.js";
import { Invalid, Job, readArtifact, saveArtifact, sourceOf } from "./job.js";
import { isTemporary, S3Storage, type Storage } from "./storage.js";

export const USAGE = "usage: validate ARTIFACT | load ARTIFACT | run";

/** Where `run` writes: JSON logs (standard output by default) and start-up errors. */
export interface Output {
  logs?: DestinationStream;
  errors: NodeJS.WritableStream;
}

type Step = { command: "validate" | "load"; artifact: string } | { command: "run" };

function parseArguments(argv: readonly string[]): Step | undefined {
  const [command, artifact, ...rest] = argv;
  if ((command === "validate" || command === "load") && artifact && rest.length === 0) {
    return { command, artifact };
  }
  if (command === "run" && artifact === undefined) {
    return { command };
  }
  return undefined;
}

/** Run one step for the event in `env`; resolves to the exit code. */
export async function run(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  output: Output = { errors: process.stderr },
  connect: (endpoint?: string) => Storage = (endpoint) => S3Storage.connect(endpoint),
): Promise<number> {
  const step = parseArguments(argv);
  if (step === undefined) {
    output.errors.write(`${USAGE}\n`);
    return 2;
  }
  let settings;
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
    name: JOB_NAME,
    level: settings.logLevel,
    destination: output.logs,
  });
  const source = sourceOf(settings);
  try {
    const job = new Job(settings, connect(settings.endpoint), logger);
    if (step.command === "validate") {
      await saveArtifact(await job.validate(), step.artifact);
    } else if (step.command === "load") {
      await job.load(await readArtifact(step.artifact));
    } else {
      const validated = await job.validate();
      if (!validated.skipped) {
        await job.load(validated);
      }
    }
  } catch (error) {
    if (error instanceof Invalid) {
      logger.error({ event: "invalid", source }, error.message);
      return 1;
    }
    logger.error({ event: "failed", source, err: error }, "storage failed");
    return isTemporary(error) ? 3 : 1;
  }
  return 0;
}
