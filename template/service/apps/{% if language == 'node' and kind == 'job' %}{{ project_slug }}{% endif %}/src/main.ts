/** `node dist/main.js <step>`: the image's ENTRYPOINT; the workflow gives the step. */
import process from "node:process";

import { run } from "./cli.js";

// Logs are written synchronously: nothing is lost by exiting (and closing the SDK's sockets) now.
process.exit(await run(process.argv.slice(2), process.env));
