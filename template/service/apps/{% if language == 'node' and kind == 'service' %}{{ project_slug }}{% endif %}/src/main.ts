/** `node dist/main.js`: serve on $PORT until SIGTERM or Ctrl-C. */
import process from "node:process";

import { run } from "./server.js";

process.exit(await run(process.env, process));
