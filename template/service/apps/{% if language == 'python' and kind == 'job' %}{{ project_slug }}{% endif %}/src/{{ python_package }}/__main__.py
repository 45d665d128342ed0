"""`python -m <package> validate ARTIFACT | load ARTIFACT | run`: one step of the workflow.

Exit codes: 0 processed or skipped, 1 invalid input or a storage refusal that running again
cannot change (nothing loaded; the log line says why), 2 a configuration error (one line on
stderr names the variable), 3 a temporary storage failure (unreachable, timed out, 5xx): the
workflow retries only this one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from .config import ConfigError, Settings
from .job import Invalid, Job, Validated
from .logs import configure
from .storage import S3Storage, Storage, temporary

log = logging.getLogger(__package__)


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description="Process the object of S3-compatible storage that EVENT_BUCKET and "
        "EVENT_KEY name.",
    )
    steps = commands.add_subparsers(dest="command", required=True)
    validate = steps.add_parser("validate", help="check the object, write the artifact")
    validate.add_argument("artifact", type=Path, help="where the validated records go")
    load = steps.add_parser("load", help="load what validate wrote in the artifact")
    load.add_argument("artifact", type=Path, help="the file validate wrote")
    steps.add_parser("run", help="validate, then load, in one process")
    return commands


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] = os.environ,
    connect: Callable[[str | None], Storage] = S3Storage.connect,
) -> int:
    arguments = parser().parse_args(argv)
    try:
        settings = Settings.from_env(environ)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure(settings.log_level)
    source = f"s3://{settings.bucket}/{settings.key}"
    try:
        job = Job(settings, connect(settings.endpoint_url))
        if arguments.command == "validate":
            job.validate().save(arguments.artifact)
        elif arguments.command == "load":
            job.load(Validated.read(arguments.artifact))
        else:
            validated = job.validate()
            if not validated.skipped:
                job.load(validated)
    except Invalid as error:
        log.error("%s", error, extra={"event": "invalid", "source": source})
        return 1
    except (BotoCoreError, ClientError) as error:
        log.exception("storage failed", extra={"event": "failed", "source": source})
        return 3 if temporary(error) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
