"""The one settings module, driven by environment variables (see .env.example)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config import keys, logs, topology
from config.databases import database_config

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = Path(env.str("QUIRE_VAR_DIR", default=str(BASE_DIR / "var")))

# --- topology -----------------------------------------------------------------
SERVICE = env.str("SERVICE", default=topology.ALL).strip().lower()
SERVED_MODULES = topology.served_modules(SERVICE)
EVENT_TRANSPORT = topology.check_transport(SERVICE, env.str("EVENT_TRANSPORT", default="inprocess"))

# --- core ---------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is empty: set SECRET_KEY to a long random string when DEBUG=false.")
    SECRET_KEY = "quire-development-only-secret-key-not-for-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- HTTPS: one switch for a shop served over TLS (by the gateway or a load balancer) ----------
# SECURE_HTTPS=true redirects plain HTTP to HTTPS, sends HSTS and marks the session and CSRF cookies
# Secure; `manage.py check --deploy` is clean with it (docs/operations.md, "Production settings").
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=False)
SECURE_SSL_REDIRECT = SECURE_HTTPS
# Probes and scrapers talk plain HTTP inside the cluster: a redirect would fail them.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
# Empty (as in .env.example) means the default that follows from SECURE_HTTPS.
SECURE_HSTS_SECONDS = int(env.str("SECURE_HSTS_SECONDS", default="") or (31_536_000 if SECURE_HTTPS else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HTTPS)
# The preload token only asks to be listed; a site is listed once its owner submits it.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_HTTPS)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_HTTPS
# The gateway sets X-Forwarded-Proto on every request (overwriting a client's), so a request that
# reached it over TLS is known as secure. Set false where no such proxy stands in front.
if env.bool("TRUST_X_FORWARDED_PROTO", default=True):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "config.apps.ConfigConfig",
    "messaging",
    *(f"{module}.apps.{module.capitalize()}Config" for module in SERVED_MODULES),
]

MIDDLEWARE = [
    # First and last: request counts and latency by view, method and status (django-prometheus).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Each process serves its own STATIC_ROOT (collected into the image), so a service reached
    # without the gateway still has a styled admin and Swagger UI.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "messaging.correlation.CorrelationIdMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
if SERVICE != topology.ALL:
    # Services share one host name behind the gateway: separate cookies keep their admin sessions apart.
    SESSION_COOKIE_NAME = f"quire_{SERVICE}_sessionid"
    CSRF_COOKIE_NAME = f"quire_{SERVICE}_csrftoken"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- databases: default (contrib apps) plus one alias per served module ----------
DATABASES = {"default": database_config(env, "default", f"sqlite:///{VAR_DIR / 'default.sqlite3'}")}
for _module in SERVED_MODULES:
    DATABASES[topology.alias_for_module(_module)] = database_config(
        env, _module, f"sqlite:///{VAR_DIR / (_module + '.sqlite3')}"
    )
# Each served module routes its own models; then the messaging tables and contrib apps.
DATABASE_ROUTERS = [
    *(f"{module}.routers.{module.capitalize()}Router" for module in SERVED_MODULES),
    "messaging.routing.MessagingRouter",
    "config.routers.ContribRouter",
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))

# --- events ---------------------------------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env.list("KAFKA_BOOTSTRAP_SERVERS", default=[])
if EVENT_TRANSPORT == "kafka" and not KAFKA_BOOTSTRAP_SERVERS:
    raise ImproperlyConfigured(
        "EVENT_TRANSPORT=kafka needs a broker: set KAFKA_BOOTSTRAP_SERVERS (e.g. 127.0.0.1:59092)."
    )
# The messaging kernel reads only this (through messaging.conf): it never imports config.
MESSAGING = {
    "MODULES": topology.MODULES,
    "SERVED_MODULES": SERVED_MODULES,
    "SERVICE": SERVICE,
    "DATABASES": {module: topology.alias_for_module(module) for module in topology.MODULES},
    "TRANSPORT": EVENT_TRANSPORT,
    "TOPIC_PREFIX": env.str("KAFKA_TOPIC_PREFIX", default="quire"),
    "MAX_ATTEMPTS": env.int("MESSAGING_MAX_ATTEMPTS", default=5),
    "BACKOFF_SECONDS": env.float("MESSAGING_BACKOFF_SECONDS", default=0.2),
    "BACKOFF_MAX_SECONDS": env.float("MESSAGING_BACKOFF_MAX_SECONDS", default=10.0),
    "RELAY_BATCH_SIZE": env.int("MESSAGING_RELAY_BATCH_SIZE", default=500),
    # A consumer idle this long checks that every partition of its topics has a member in its group,
    # and rebuilds its Kafka client if not (kafka-python can drop a rejoin's assignment for good).
    "CONSUMER_IDLE_CHECK_SECONDS": env.float("MESSAGING_CONSUMER_IDLE_CHECK_SECONDS", default=5.0),
    # A consumer that made no progress this long (broker or database away, no partitions, a wedged
    # handler) exits non-zero so that its supervisor restarts it; 0 disables.
    "CONSUMER_STALL_EXIT_SECONDS": env.float("MESSAGING_CONSUMER_STALL_EXIT_SECONDS", default=120.0),
    # A file run_consumer keeps touching, its mtime the oldest progress of its consumers ("" = none).
    "CONSUMER_HEARTBEAT_FILE": env.str("MESSAGING_CONSUMER_HEARTBEAT_FILE", default=""),
    # The relay's: rounds failing this long (a lost database connection it cannot regain, a broker
    # that never takes a batch) make run_relay exit non-zero; 0 disables. Its heartbeat file likewise.
    "RELAY_STALL_EXIT_SECONDS": env.float("MESSAGING_RELAY_STALL_EXIT_SECONDS", default=120.0),
    "RELAY_HEARTBEAT_FILE": env.str("MESSAGING_RELAY_HEARTBEAT_FILE", default=""),
}

# /health/ready/ fails when a module's oldest unpublished event is older than this.
HEALTH_OUTBOX_MAX_AGE_SECONDS = env.float("HEALTH_OUTBOX_MAX_AGE_SECONDS", default=60.0)

# orders: a checkout still pending this long is overdue (its saga stalled: an event lost, a consumer down);
# orders_resolve_pending re-announces its OrderPlaced up to ORDERS_PENDING_MAX_REANNOUNCEMENTS times, one
# timeout apart, then rejects it with a reason. run_service runs that command every CHECK seconds (0 = never).
ORDERS_PENDING_TIMEOUT_SECONDS = env.float("ORDERS_PENDING_TIMEOUT_SECONDS", default=300.0)
ORDERS_PENDING_MAX_REANNOUNCEMENTS = env.int("ORDERS_PENDING_MAX_REANNOUNCEMENTS", default=3)
ORDERS_PENDING_CHECK_SECONDS = env.float("ORDERS_PENDING_CHECK_SECONDS", default=60.0)

# recommendations: journal entries between two snapshots of the model
RECOMMENDATIONS_CHECKPOINT_EVERY = env.int("RECOMMENDATIONS_CHECKPOINT_EVERY", default=10_000)

# --- web: DRF, problem details, OpenAPI, JWT ---------------------------------------
JWT_PRIVATE_KEY, JWT_PUBLIC_KEY = keys.load_jwt_keys(
    env, var_dir=VAR_DIR, needs_private="accounts" in SERVED_MODULES, allow_generate=DEBUG
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "web.problems.problem_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 20,
}

SIMPLE_JWT = {
    "ALGORITHM": "RS256",
    "SIGNING_KEY": JWT_PRIVATE_KEY,
    "VERIFYING_KEY": JWT_PUBLIC_KEY,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TOKEN_SECONDS", default=15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TOKEN_SECONDS", default=7 * 24 * 3600)),
    "ISSUER": env.str("JWT_ISSUER", default="quire-accounts"),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "TOKEN_USER_CLASS": "rest_framework_simplejwt.models.TokenUser",
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Quire API",
    "DESCRIPTION": "The Quire bookshop: one API per module under /api/<module>/.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Logs: one JSON object per line in production, a readable line in development (config/logs.py).
LOG_FORMAT = (env.str("LOG_FORMAT", default="") or ("text" if DEBUG else "json")).strip().lower()
if LOG_FORMAT not in logs.FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is unknown: set LOG_FORMAT to 'text' or 'json'.")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = logs.logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL, service=SERVICE)
