"""What the supply-chain tests share: a registry on loopback, images pushed to it, a grype database.

The registry is distribution's `registry serve` on 127.0.0.1 (optionally with a user: htpasswd
auth, a bcrypt hash made here with the system's libcrypt). Images are one-layer tarballs pushed
with crane (no Docker daemon). The grype database is written by tests/ci/grypedb with grype's
own database package and imported by grype: it knows only ADVISORIES.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import io
import json
import os
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.helpers import REPO_ROOT, run

# The template's pins (extensions/versions.yaml): the tools generated projects install.
PINS = yaml.safe_load((REPO_ROOT / "extensions" / "versions.yaml").read_text(encoding="utf-8"))

Tool = Callable[[str], str]
GRYPEDB = Path(__file__).with_name("grypedb")

# A Python package as pip installs it: syft lists it in the SBOM.
PACKAGE = {
    "usr/lib/python3.13/site-packages/requests-2.31.0.dist-info/METADATA": (
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n"
    ),
    "app/main.py": "print('hello')\n",
}
# PACKAGE with the version that fixes the critical advisory below.
FIXED_PACKAGE = {
    name.replace("2.31.0", "2.32.0"): text.replace("2.31.0", "2.32.0")
    for name, text in PACKAGE.items()
}

# What the database knows: a fixable critical advisory for the package in the test image, and an
# unfixed high one for it, which the gate lists but lets through.
ADVISORIES = [
    {
        "id": "GHSA-test-crit-0001",
        "ecosystem": "python",
        "package": "requests",
        "constraint": "< 2.32.0",
        "fixed": "2.32.0",
        "severity": "critical",
    },
    {
        "id": "GHSA-test-high-0002",
        "ecosystem": "python",
        "package": "requests",
        "constraint": ">= 2.0.0",
        "fixed": "",
        "severity": "high",
    },
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bcrypt(password: str) -> str:
    """A bcrypt hash of password (what the registry's htpasswd auth reads), by libcrypt."""
    libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt"))
    libcrypt.crypt_gensalt.restype = ctypes.c_char_p
    libcrypt.crypt.restype = ctypes.c_char_p
    salt = libcrypt.crypt_gensalt(b"$2y$", 10, None, 0)
    assert salt, "libcrypt cannot make a bcrypt salt"
    hashed = libcrypt.crypt(password.encode(), salt)
    assert hashed, "libcrypt cannot make a bcrypt hash"
    assert hashed.startswith(b"$2y$"), hashed
    return str(hashed.decode())


@contextmanager
def serve_registry(tool: Tool, root: Path, user: tuple[str, str] | None = None) -> Iterator[str]:
    """host:port of a distribution registry serving from root; with `user`, only to that user."""
    port = free_port()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if user is not None:
        htpasswd = root / "htpasswd"
        htpasswd.write_text(f"{user[0]}:{bcrypt(user[1])}\n", encoding="utf-8")
        config["auth"] = {"htpasswd": {"realm": "test", "path": str(htpasswd)}}
    (root / "config.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "none", "OTEL_SDK_DISABLED": "true"}
    server = subprocess.Popen(
        [tool("registry"), "serve", str(root / "config.yml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    host = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://{host}/v2/", timeout=1) as response:
                    if response.status == 200:
                        break
            except urllib.error.HTTPError as error:
                if error.code == 401 and user is not None:  # up, and asking for the login
                    break
                raise
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            server.kill()
            raise AssertionError(f"registry did not start: {server.stderr}")
        yield host
    finally:
        server.terminate()
        server.wait(timeout=10)


def docker_config(folder: Path, host: str, user: tuple[str, str]) -> Path:
    """A DOCKER_CONFIG folder whose config.json logs `user` in to `host`."""
    folder.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}), "utf-8")
    return folder


def layer(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


def push_image(
    crane: str,
    reference: str,
    folder: Path,
    files: dict[str, str],
    env: dict[str, str] | None = None,
) -> str:
    """Push a one-layer image built from files; its digest."""
    tarball = layer(folder / f"layer-{abs(hash(reference))}.tar", files)
    run([crane, "append", "--insecure", "-f", tarball, "-t", reference], env=env)
    return str(run([crane, "digest", "--insecure", reference], env=env).stdout.strip())


def grype_database(tool: Tool, work: Path, env: dict[str, str]) -> dict[str, str]:
    """grype's environment for a scan on a database of ADVISORIES only, imported by grype.

    `env` is the environment grype runs in (its PATH, HOME); the database goes under `work`.
    """
    binary = work / "grypedb"
    # The Go build cache of scripts/bootstrap's grype holds all its packages but main.
    run(
        [tool("go"), "build", "-o", binary, "."],
        cwd=GRYPEDB,
        env={**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"},
        timeout=900,
    )
    written = subprocess.run(
        [binary, work / "db"],
        input=json.dumps(ADVISORIES),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert written.returncode == 0, written.stderr
    grype_env = {
        "GRYPE_DB_CACHE_DIR": str(work / "cache"),
        "GRYPE_DB_AUTO_UPDATE": "false",
        "GRYPE_DB_VALIDATE_AGE": "false",
    }
    grype = [tool("grype"), "db"]
    run([*grype, "import", work / "db" / "vulnerability.db"], env={**env, **grype_env})
    status = run([*grype, "status"], env={**env, **grype_env})
    assert "Status:    valid" in status.stdout
    return grype_env
