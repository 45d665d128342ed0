"""Throughput, latency and memory of the generated HTTP service of each language, on loopback.

    python benchmarks/services.py [--seconds 10] [--connections 16] [--languages go,java]

Renders the default project once per language, builds and starts the service natively with the
runtime settings its chart gives it (runtimeEnv; the JVM also gets -XX:MaxRAM=<memory limit>, the
limit a container would show it), then puts a bounded load on GET /healthz: `wrk` (Debian's wrk
package) with `--connections` keep-alive connections for `--seconds`, after a short warm-up. A
Python load generator stands in when wrk is missing (it measures far less throughput: the
results say which one ran). RSS is VmRSS of /proc/<pid>/status: idle after start-up, and the peak
sampled during the load.

Writes benchmarks/results/services.json and the table between the markers of
docs/performance.md. A measurement, not a test: it prints and never fails on the numbers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from copier import run_copy

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "services.json"
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- services benchmark: start -->", "<!-- services benchmark: end -->"
LANGUAGES = ("go", "node", "java", "python")
JAVA_HOMES = (Path("/usr/lib/jvm"),)


@dataclass
class Result:
    language: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    rss_idle_mib: float
    rss_peak_mib: float
    memory_limit_mib: int
    runtime_env: dict[str, str]
    load_generator: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def render(language: str, where: Path) -> Path:
    destination = where / language
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_copy(
            str(ROOT),
            destination,
            data={"language": language},
            defaults=True,
            unsafe=True,
            vcs_ref="HEAD",
            quiet=True,
        )
    return destination


def chart_runtime(project: Path) -> tuple[dict[str, str], int]:
    (values_file,) = (project / "deploy" / "charts").glob("*/values.yaml")
    values = yaml.safe_load(values_file.read_text(encoding="utf-8"))
    env = {item["name"]: item["value"] for item in values["runtimeEnv"]}
    match = re.fullmatch(r"(\d+)Mi", values["resources"]["limits"]["memory"])
    assert match, "the memory limit is in Mi"
    return env, int(match[1])


def java_home() -> str:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    wanted = str(
        yaml.safe_load((ROOT / "extensions" / "versions.yaml").read_text())["java"]["version"]
    )
    for root in JAVA_HOMES:
        for home in sorted(root.iterdir()) if root.is_dir() else []:
            release = home / "release"
            if release.is_file() and f'JAVA_VERSION="{wanted}' in release.read_text():
                return str(home)
    raise SystemExit(f"no JDK {wanted}: set JAVA_HOME")


def build(language: str, service: Path, env: dict[str, str]) -> list[str]:
    """Build the service as its Makefile does; the command that starts it."""

    def sh(*command: str) -> None:
        subprocess.run(command, cwd=service, env=env, check=True, capture_output=True)

    if language == "go":
        sh("make", "build")
        return [str(service / "bin" / service.name)]
    if language == "node":
        sh("make", "build")
        return ["node", "dist/main.js"]
    if language == "python":
        sh("make", "venv")
        (package,) = (init.parent.name for init in (service / "src").glob("*/__init__.py"))
        return [str(service / ".venv" / "bin" / "python"), "-m", package]
    sh("mvn", "--batch-mode", "--quiet", "-Dmaven.test.skip=true", "package")
    return [f"{env['JAVA_HOME']}/bin/java", "-jar", f"target/{service.name}.jar"]


def wait_for_health(port: int, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited with {process.returncode} while starting")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"/healthz did not answer within {timeout} s")


def wrk(port: int, seconds: int, connections: int) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 in ms, from `wrk --latency`."""
    threads = str(min(connections, os.cpu_count() or 1))
    command = ["wrk", "-t", threads, "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    output = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/healthz"], capture_output=True, text=True, check=True
    ).stdout
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def latency(percentile: str) -> float:
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)$", output, re.M)
        assert match, output
        return float(match[1]) * units[match[2]]

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    assert rate, output
    errors = re.search(r"Socket errors: .*|Non-2xx or 3xx responses: \d+", output)
    if errors:
        print(f"  wrk reported: {errors[0]}", file=sys.stderr)
    return float(rate[1]), latency("50"), latency("99")


def python_load(port: int, seconds: int, connections: int) -> tuple[float, float, float]:
    """The same measurement with keep-alive http.client threads (slower: the GIL)."""
    latencies: list[float] = []
    lock = threading.Lock()
    until = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        while time.monotonic() < until:
            start = time.perf_counter()
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            mine.append((time.perf_counter() - start) * 1000)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / seconds, cuts[49], cuts[98]


def measure(
    language: str,
    where: Path,
    seconds: int,
    connections: int,
    warmup: int,
    load: Callable[..., tuple[float, float, float]],
) -> Result:
    project = render(language, where)
    (service,) = (makefile.parent for makefile in (project / "apps").glob("*/Makefile"))
    runtime_env, limit_mib = chart_runtime(project)
    # The bootstrapped tools (pnpm, uv) first, as the tests and the root Makefile have them.
    tools = [str(ROOT / ".tools" / "bin"), str(ROOT / ".venv" / "bin"), os.environ["PATH"]]
    env = {**os.environ, **runtime_env, "PATH": os.pathsep.join(tools)}
    if language == "java":
        env["JAVA_HOME"] = java_home()
        env["JAVA_TOOL_OPTIONS"] = f"{runtime_env['JAVA_TOOL_OPTIONS']} -XX:MaxRAM={limit_mib}m"
    command = build(language, service, env)
    port = free_port()
    env["PORT"] = str(port)  # every other setting at its default: access logs included
    if language == "python":
        env["PYTHONPATH"] = "src"  # as `make run` and the image run the package
    process = subprocess.Popen(
        command, cwd=service, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_health(port, process)
        time.sleep(2)
        idle = rss_mib(process.pid)
        load(port, warmup, connections)  # JIT compilers, pools, caches
        peak = idle
        sampling = True

        def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, rss_mib(process.pid))
                time.sleep(0.2)

        sampler = threading.Thread(target=sample)
        sampler.start()
        rate, p50, p99 = load(port, seconds, connections)
        sampling = False
        sampler.join()
    finally:
        process.terminate()
        process.wait(30)
    return Result(
        language=language,
        requests_per_second=round(rate),
        p50_ms=round(p50, 2),
        p99_ms=round(p99, 2),
        rss_idle_mib=round(idle),
        rss_peak_mib=round(peak),
        memory_limit_mib=limit_mib,
        runtime_env=runtime_env,
        load_generator="wrk" if load is wrk else "python http.client",
    )


def table(results: list[Result]) -> str:
    lines = [
        "| language | /healthz req/s | p50 | p99 | RSS idle → peak under load | memory limit |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.language} | {r.requests_per_second:,.0f} | {r.p50_ms} ms | {r.p99_ms} ms "
            f"| {r.rss_idle_mib:.0f} → {r.rss_peak_mib:.0f} MiB | {r.memory_limit_mib} Mi |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=5, help="seconds of load before measuring")
    parser.add_argument("--languages", default=",".join(LANGUAGES))
    args = parser.parse_args()
    load = wrk if shutil.which("wrk") else python_load
    load_average = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-services-") as scratch:
        for language in args.languages.split(","):
            print(f"{language}: building and loading for {args.seconds} s", file=sys.stderr)
            result = measure(
                language, Path(scratch), args.seconds, args.connections, args.warmup, load
            )
            print(json.dumps(asdict(result)))
            results.append(result)
    machine = {
        "cpus": os.cpu_count(),
        "load_average_before": load_average,
        "platform": platform.platform(),
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "connections": args.connections,
        "measured": time.strftime("%Y-%m-%d", time.gmtime()),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"machine": machine, "results": [asdict(r) for r in results]}, indent=2) + "\n",
        encoding="utf-8",
    )
    text = DOCS.read_text(encoding="utf-8")
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    generated = (
        f"{START}\n{table(results)}\n\n"
        f"Measured {machine['measured']} with {results[0].load_generator}, "
        f"{args.connections} keep-alive connections for {args.seconds} s per language, on "
        f"{machine['cpus']} CPUs shared with the load generator (load average "
        f"{machine['load_average_before']:.1f} before the run).\n{END}"
    )
    DOCS.write_text(head + generated + tail, encoding="utf-8")
    print(table(results))


if __name__ == "__main__":
    main()
