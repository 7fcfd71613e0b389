"""A gunicorn of the bench settings on a free loopback port, and the load generator.

The server is started as our own subprocess (its own session, so a Ctrl-C of the harness
does not reach it first) and is always stopped by its own pid, never by name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from tests.bench.common import LOOPBACK, BenchContext, free_port, log, wait_for


@dataclass(frozen=True)
class WorkerSetup:
    workers: int
    worker_class: str
    threads: int

    def describe(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        return f"{self.workers} {self.worker_class} workers{threads}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "worker_class": self.worker_class,
            "threads": self.threads,
            "description": self.describe(),
        }


@dataclass(frozen=True)
class Server:
    pid: int
    port: int
    setup: WorkerSetup
    log_path: str

    def url(self, path: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Graceful stop of the gunicorn master we started (it stops its own workers)."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        # Still up: kill its process group, which is only this gunicorn (own session).
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://{LOOPBACK}:{port}/__bench__/bare/", timeout=2
        ) as response:
            return int(response.status) == 200
    except OSError:
        return False


@contextmanager
def gunicorn(ctx: BenchContext, setup: WorkerSetup, *, name: str) -> Iterator[Server]:
    port = free_port()
    ctx.var.mkdir(parents=True, exist_ok=True)
    log_path = ctx.var / f"gunicorn-{name}.log"
    cmd = [
        str(ctx.root / ".venv" / "bin" / "gunicorn"),
        "tests.bench.wsgi:application",
        "--bind",
        f"{LOOPBACK}:{port}",
        "--workers",
        str(setup.workers),
        "--worker-class",
        setup.worker_class,
        "--threads",
        str(setup.threads),
        "--keep-alive",
        "5",
        "--log-level",
        "warning",
        "--no-control-socket",
        "--chdir",
        str(ctx.root),
    ]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ctx.root,
            env=ctx.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (ctx.var / f"gunicorn-{name}.pid").write_text(f"{proc.pid}\n")
    log(f"gunicorn pid {proc.pid} on {LOOPBACK}:{port}: {setup.describe()}")
    try:

        def up() -> bool:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{tail}")
            return _ready(port)

        wait_for(up, "gunicorn", timeout=60)
        yield Server(pid=proc.pid, port=port, setup=setup, log_path=str(log_path))
    finally:
        _stop(proc)
        (ctx.var / f"gunicorn-{name}.pid").unlink(missing_ok=True)
        log(f"gunicorn pid {proc.pid} stopped")


def load(
    ctx: BenchContext,
    server: Server,
    path: str,
    *,
    headers: list[str],
    concurrency: int,
    duration: float,
    warmup: float,
    max_requests: int,
    expect_body: str | None = None,
) -> dict[str, Any]:
    """Run the load generator in its own process against *server* and return its figures."""
    cmd = [
        ctx.python,
        "-m",
        "tests.bench.loadgen",
        "--host",
        LOOPBACK,
        "--port",
        str(server.port),
        "--path",
        path,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
        "--max-requests",
        str(max_requests),
    ]
    for header in headers:
        cmd += ["--header", header]
    if expect_body:
        cmd += ["--expect-body", expect_body]
    done = subprocess.run(
        cmd,
        cwd=ctx.root,
        capture_output=True,
        text=True,
        check=False,
        timeout=duration + warmup + 60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
