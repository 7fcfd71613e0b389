"""Settings: production refuses to start without secrets and turns on transport security."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'hsts': s.SECURE_HSTS_SECONDS, 'sub': s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
    " 'cookie': s.SESSION_COOKIE_SECURE, 'csrf': s.CSRF_COOKIE_SECURE, 'debug': s.DEBUG,"
    " 'hasher': s.PASSWORD_HASHERS[0], 'xfo': s.X_FRAME_OPTIONS}))"
)


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "DEBUG"}
    }
    base.update({"DJANGO_SETTINGS_MODULE": "config.settings", **env})
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        env=base,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"])
def test_production_refuses_to_start_without_required_settings(missing: str) -> None:
    env = {
        "APP_ENV": "production",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "example.org",
        "DATABASE_URL": "postgres://u@127.0.0.1/db",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    del env[missing]
    result = _run(env)
    assert result.returncode != 0
    assert missing in result.stderr


def test_production_turns_on_transport_security_ACC_2() -> None:
    """Production: HSTS 1 year with subdomains, secure cookies, Argon2id first (ACC-2)."""
    import json

    result = _run(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "x" * 60,
            "ALLOWED_HOSTS": "example.org",
            "DATABASE_URL": "postgres://u@127.0.0.1/db",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
        }
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "hsts": 31536000,
        "sub": True,
        "cookie": True,
        "csrf": True,
        "debug": False,
        "xfo": "DENY",
        "hasher": "django.contrib.auth.hashers.Argon2PasswordHasher",
    }


@pytest.mark.django_db
def test_every_page_has_strict_csp_and_security_headers(client) -> None:
    response = client.get("/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_pages_load_no_outside_assets(client) -> None:
    """Every asset is served locally: no CDN, no outside fonts or scripts."""
    import re

    for url in ["/", "/privacy/", "/accounts/login/", "/accounts/signup/"]:
        html = client.get(url).content.decode()
        srcs = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert srcs
        assert all(not s.startswith(("http://", "https://", "//")) for s in srcs), srcs
