"""What every benchmark shares: its context, its result, goals, the bench database, ports.

A benchmark is a function ``(BenchContext) -> BenchResult``. Before any runs, run.py
drops and recreates a dedicated database (``<name>_bench`` next to DATABASE_URL's),
migrates it, points this process's Django at it (tests.bench.settings) and gives every
cache key a per-run prefix, so a benchmark never touches the test or development data.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
VAR_BENCH = ROOT / "var" / "bench"
RESULTS_PATH = VAR_BENCH / "results.json"
SETTINGS_MODULE = "tests.bench.settings"
BENCH_DB_SUFFIX = "_bench"
LOOPBACK = "127.0.0.1"

_GOAL = re.compile(r"^\s*(<=|>=|<|>)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def goal_met(value: float, goal: str) -> bool:
    """Whether *value* meets a goal written as ``"<= 1.5"``, ``">= 0.5"``, ``"< 50"``..."""
    match = _GOAL.match(goal)
    if match is None:
        raise ValueError(f"a goal looks like '>= 0.5' or '<= 1.5', not {goal!r}")
    op, bound = match.group(1), float(match.group(2))
    return {
        "<=": value <= bound,
        ">=": value >= bound,
        "<": value < bound,
        ">": value > bound,
    }[op]


@dataclass
class Check:
    """One goal of a benchmark: a benchmark passes only when all its checks do."""

    what: str
    value: float
    unit: str
    goal: str

    @property
    def passed(self) -> bool:
        return goal_met(self.value, self.goal)

    def as_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "value": self.value,
            "unit": self.unit,
            "goal": self.goal,
            "passed": self.passed,
        }


@dataclass
class BenchResult:
    """A measurement. ``value``/``goal`` is the headline; ``extra_checks`` add goals."""

    name: str
    value: float
    unit: str
    goal: str
    details: dict[str, Any] = field(default_factory=dict)
    extra_checks: list[Check] = field(default_factory=list)

    @property
    def checks(self) -> list[Check]:
        return [Check(self.name, self.value, self.unit, self.goal), *self.extra_checks]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "goal": self.goal,
            "passed": self.passed,
        }
        if self.extra_checks:
            entry["checks"] = [check.as_dict() for check in self.checks]
        entry.update(self.details)
        return entry


@dataclass
class BenchContext:
    """What a benchmark may use: quick mode, the bench database and a subprocess env."""

    quick: bool
    database_url: str
    cache_prefix: str
    env: dict[str, str]
    python: str = sys.executable
    root: Path = ROOT
    var: Path = VAR_BENCH


BenchFn = Callable[[BenchContext], BenchResult]


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


# --- The bench database -----------------------------------------------------------------


def bench_database_url(source: str) -> str:
    """DATABASE_URL with the database name swapped for ``<name>_bench``.

    Without a PostgreSQL DATABASE_URL (run outside scripts/testenv.py) it is a SQLite
    file under var/bench, which still works but measures something less realistic.
    """
    parts = urlsplit(source) if source else None
    if parts is None or not parts.scheme.startswith(("postgres", "pgsql")):
        return f"sqlite:///{VAR_BENCH / 'bench.sqlite3'}"
    name = parts.path.lstrip("/") or "photoprivacy"
    if not name.endswith(BENCH_DB_SUFFIX):
        name += BENCH_DB_SUFFIX
    return urlunsplit(parts._replace(path="/" + name))


def _postgres_conninfo(url: str, dbname: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or LOOPBACK,
        "port": parts.port or 5432,
        "user": parts.username or "postgres",
        "password": parts.password or None,
        "dbname": dbname,
    }


def recreate_database(url: str) -> None:
    """Drop and create the bench database (never any other: its name must end in _bench)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        path = Path(parts.path)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    import psycopg
    from psycopg import sql

    name = parts.path.lstrip("/")
    if not name.endswith(BENCH_DB_SUFFIX):
        raise RuntimeError(f"refusing to drop {name!r}: not a bench database")
    with psycopg.connect(**_postgres_conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def bench_env(database_url: str, cache_prefix: str) -> dict[str, str]:
    """The environment of every process of a bench run (this one, migrate, servers)."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DATABASE_URL": database_url,
            "CACHE_PREFIX": cache_prefix,
            "APP_ENV": env.get("APP_ENV") or "test",
            "DEBUG": "false",
            "ALLOWED_HOSTS": LOOPBACK,
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def prepare(*, quick: bool) -> BenchContext:
    """Create and migrate the bench database, then set Django up in this process on it."""
    VAR_BENCH.mkdir(parents=True, exist_ok=True)
    database_url = bench_database_url(os.environ.get("DATABASE_URL", ""))
    cache_prefix = f"ppbench-{uuid.uuid4().hex[:12]}"
    env = bench_env(database_url, cache_prefix)
    log(f"recreating the bench database {urlsplit(database_url).path.lstrip('/')}")
    recreate_database(database_url)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    log(f"migrated in {time.monotonic() - started:.1f}s")
    os.environ.update(env)
    import django

    django.setup()
    return BenchContext(quick=quick, database_url=database_url, cache_prefix=cache_prefix, env=env)


def cleanup(ctx: BenchContext) -> None:
    """Drop this run's cache keys (the shared Redis also serves tests and development)."""
    redis_url = ctx.env.get("REDIS_URL", "")
    if not redis_url.startswith(("redis://", "rediss://")):
        return
    try:
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{ctx.cache_prefix}:*", count=500))
        if keys:
            client.delete(*keys)
        client.close()
    except Exception as exc:  # cleanup must never hide the results
        log(f"could not remove this run's cache keys: {exc}")
