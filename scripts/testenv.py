"""Bring up every service the test suite (or the benchmarks) needs, run a command, stop them.

Reuses PostgreSQL on 127.0.0.1:5432 and Redis on :6379 when they answer; otherwise starts
private ones when the binaries exist. Always starts an S3 endpoint (moto server) and an
SMTP sink (aiosmtpd); starts clamd with an EICAR-only database when clamd is installed.
Only processes started here are stopped, by their own pid.

Usage: python scripts/testenv.py -- COMMAND [ARGS...]
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STARTED: list[tuple[str, subprocess.Popen[bytes]]] = []
EICAR_MD5 = "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature-HDB\n"
# Hex of "EICAR-STANDARD-ANTIVIRUS-TEST-FILE": catches EICAR appended to an image too.
EICAR_NDB = "Eicar-Test-Signature-NDB:0:*:" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE".hex() + "\n"


def log(msg: str) -> None:
    print(f"[testenv] {msg}", file=sys.stderr, flush=True)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


def start(name: str, cmd: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    logdir = ROOT / "var" / "test-services"
    logdir.mkdir(parents=True, exist_ok=True)
    out = open(logdir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
    )  # type: ignore[call-overload]
    STARTED.append((name, proc))
    return proc


def redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def ensure_postgres(env: dict[str, str]) -> None:
    if env.get("DATABASE_URL"):
        return
    if port_open("127.0.0.1", 5432):
        env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/photoprivacy"
        return
    initdb = shutil.which("initdb") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))), None
    )
    if not initdb:
        raise RuntimeError(
            "PostgreSQL is not running on 127.0.0.1:5432 and initdb is not installed"
        )
    bindir = Path(initdb).parent
    data = Path(tempfile.mkdtemp(prefix="pp-pg-"))
    port = free_port()
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_pg:
        shutil.chown(data, "postgres")
    subprocess.run(
        [
            *as_pg,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    start(
        "postgres",
        [
            *as_pg,
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ],
    )
    wait_for(lambda: port_open("127.0.0.1", port), "private PostgreSQL")
    env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{port}/photoprivacy"
    log(f"started a private PostgreSQL on port {port}")


def ensure_redis(env: dict[str, str]) -> None:
    if env.get("REDIS_URL"):
        return
    if redis_ping("127.0.0.1", 6379):
        env["REDIS_URL"] = "redis://127.0.0.1:6379/13"
        return
    server = shutil.which("redis-server")
    if not server:
        raise RuntimeError(
            "Redis is not running on 127.0.0.1:6379 and redis-server is not installed"
        )
    port = free_port()
    start(
        "redis",
        [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
    )
    wait_for(lambda: redis_ping("127.0.0.1", port), "private Redis")
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/13"
    log(f"started a private Redis on port {port}")


def ensure_s3(env: dict[str, str]) -> None:
    moto = ROOT / ".venv" / "bin" / "moto_server"
    port = free_port()
    start("moto", [str(moto), "-H", "127.0.0.1", "-p", str(port)])

    def up() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return True
        except OSError:
            return False

    wait_for(up, "moto S3 server")
    env["TEST_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"


def ensure_smtp(env: dict[str, str]) -> None:
    port = free_port()
    maildir = Path(tempfile.mkdtemp(prefix="pp-mail-"))
    start(
        "smtp",
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Mailbox",
            str(maildir / "Maildir"),
        ],
    )
    wait_for(lambda: port_open("127.0.0.1", port), "aiosmtpd SMTP sink")
    env["TEST_SMTP_PORT"] = str(port)
    env["TEST_MAILDIR"] = str(maildir / "Maildir")


def ensure_clamd(env: dict[str, str]) -> None:
    clamd = shutil.which("clamd") or (
        "/usr/sbin/clamd" if Path("/usr/sbin/clamd").exists() else None
    )
    if not clamd:
        log("clamd is not installed: malware-scan tests will skip (or fail with CI=true)")
        return
    base = Path(tempfile.mkdtemp(prefix="pp-clamd-"))
    (base / "db").mkdir()
    (base / "tmp").mkdir()
    (base / "db" / "eicar.hdb").write_text(EICAR_MD5)
    (base / "db" / "eicar.ndb").write_text(EICAR_NDB)
    port = free_port()
    conf = base / "clamd.conf"
    conf.write_text(
        "Foreground yes\n"
        f"TCPSocket {port}\nTCPAddr 127.0.0.1\n"
        f"DatabaseDirectory {base / 'db'}\n"
        f"PidFile {base / 'clamd.pid'}\n"
        f"TemporaryDirectory {base / 'tmp'}\n"
        "Bytecode no\nStreamMaxLength 60M\nMaxFileSize 60M\nMaxScanSize 100M\n"
    )
    if os.geteuid() == 0:
        conf.write_text(conf.read_text() + "User root\n")
    start("clamd", [clamd, "-c", str(conf)])
    wait_for(lambda: port_open("127.0.0.1", port), "clamd", timeout=60)
    env["TEST_CLAMD_ADDRESS"] = f"127.0.0.1:{port}"


def ensure_chromium(env: dict[str, str]) -> None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            env["TEST_CHROMIUM"] = candidate
            return
    log("chromium is not installed: browser tests will skip (or fail with CI=true)")


def stop_all() -> None:
    for name, proc in reversed(STARTED):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log(f"stopped {name}")


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__)
        return 2
    cmd = argv[argv.index("--") + 1 :]
    env = dict(os.environ)
    env.setdefault("APP_ENV", "test")
    # Parallel runs (several developers or agents on one machine) must not collide.
    env.setdefault("TEST_DATABASE_NAME", f"test_photoprivacy_{os.getpid()}")
    env.setdefault("CELERY_QUEUE", f"test-{os.getpid()}")
    env.setdefault("CACHE_PREFIX", f"pp-test-{os.getpid()}")
    try:
        ensure_postgres(env)
        ensure_redis(env)
        ensure_s3(env)
        ensure_smtp(env)
        ensure_clamd(env)
        ensure_chromium(env)
        return subprocess.call(cmd, env=env, cwd=ROOT)
    finally:
        stop_all()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main(sys.argv))
