"""The one settings module, driven by environment variables (see .env.example)."""

from __future__ import annotations

from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config import keys, logs, topology
from config.databases import database_config
from web.rates import parse_rate as throttle_rate

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = Path(env.str("QUIRE_VAR_DIR", default=str(BASE_DIR / "var")))

# --- topology -----------------------------------------------------------------
# SERVICE: all, one module, or a comma-separated set; from here on SERVICE is the set's one name
# ("all", "orders", "accounts+catalog+orders"), however it was spelled.
_SERVICE = env.str("SERVICE", default=topology.ALL)
SERVED_MODULES = topology.served_modules(_SERVICE)
SERVICE = topology.service_name(SERVED_MODULES)
EVENT_TRANSPORT = topology.check_transport(_SERVICE, env.str("EVENT_TRANSPORT", default="inprocess"))

# --- core ---------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is empty: set SECRET_KEY to a long random string when DEBUG=false.")
    SECRET_KEY = "quire-development-only-secret-key-not-for-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# run_service's web server: gunicorn worker processes (0 = 1 with in-process events, whose web
# process relays its own outbox, 2 with Kafka) and threads per worker; --workers/--threads win.
WEB_WORKERS = env.int("WEB_WORKERS", default=0)
WEB_THREADS = env.int("WEB_THREADS", default=4)

# --- HTTPS: one switch for a shop served over TLS (by the gateway or a load balancer) ----------
# SECURE_HTTPS=true redirects plain HTTP to HTTPS, sends HSTS and marks the session and CSRF cookies
# Secure; `manage.py check --deploy` is clean with it (docs/operations.md, "Production settings").
SECURE_HTTPS = env.bool("SECURE_HTTPS", default=False)
SECURE_SSL_REDIRECT = SECURE_HTTPS
# The Content-Security-Policy of every HTML page (web.middleware); empty sends none.
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)
# Probes and scrapers talk plain HTTP inside the cluster: a redirect would fail them.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
# Empty (as in .env.example) means the default that follows from SECURE_HTTPS.
SECURE_HSTS_SECONDS = int(env.str("SECURE_HSTS_SECONDS", default="") or (31_536_000 if SECURE_HTTPS else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HTTPS)
# The preload token only asks to be listed; a site is listed once its owner submits it.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_HTTPS)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_HTTPS
# Behind the gateway (every service) X-Forwarded-Proto is the gateway's: the scheme a TLS-terminating
# ingress in front of it reported, else its own. The one-process shop has nothing in front by default,
# where the header would be the client's own claim: trusted only if set (as NUM_PROXIES below).
if env.bool("TRUST_X_FORWARDED_PROTO", default=SERVICE != topology.ALL):
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
    # A body over REQUEST_BODY_MAX_BYTES is a 413 problem before anything reads it.
    "web.middleware.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Each process serves its own STATIC_ROOT (collected into the image), so a service reached
    # without the gateway still has a styled admin and Swagger UI.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The session and CSRF cookies under each of this process's own paths (COOKIE_PATHS).
    "web.cookies.CookiePathsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # One staff identity (web/staff.py): accounts issues the staff token, every other service accepts it.
    "accounts.staff_tokens.StaffTokenIssueMiddleware"
    if "accounts" in SERVED_MODULES
    else "web.staff.StaffTokenMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "web.middleware.ContentSecurityPolicyMiddleware",
    "messaging.correlation.CorrelationIdMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# --- tracing: OpenTelemetry, off by default (config/tracing.py; OTLP exporter via OTEL_* variables) ---
OTEL_ENABLED = env.bool("OTEL_ENABLED", default=False)
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="") or f"quire-{SERVICE.replace(',', '+')}"
if OTEL_ENABLED:
    # Outside the correlation id's middleware, so that the request's log lines carry its trace id.
    _before = MIDDLEWARE.index("messaging.correlation.CorrelationIdMiddleware")
    MIDDLEWARE.insert(_before, "config.tracing.TracingMiddleware")

ROOT_URLCONF = "config.urls"
CSRF_FAILURE_VIEW = "web.problems.csrf_failure"
# The paths the session and CSRF cookies are sent to (web/cookies.py). Services share one host name
# behind the gateway: each names its cookies after itself and scopes them to the prefixes it serves,
# so that no service receives another's admin session.
COOKIE_PATHS = ["/"]
if SERVICE != topology.ALL:
    SESSION_COOKIE_NAME = f"quire_{SERVICE}_sessionid"
    CSRF_COOKIE_NAME = f"quire_{SERVICE}_csrftoken"
    COOKIE_PATHS = [f"/{area}/{module}/" for area in ("admin", "api") for module in SERVED_MODULES]
SESSION_COOKIE_PATH = CSRF_COOKIE_PATH = COOKIE_PATHS[0]
# Admin messages ("The book was changed") in the session, not in a cookie of their own at Path=/.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
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
# The relay's Kafka client (messaging/kafka/producers.py; docs/messaging.md, "The relay's Kafka client"):
# kafka-python (pure Python, the default) or confluent (librdkafka, closer to the broker's limit).
MESSAGING_RELAY_CLIENT = env.str("MESSAGING_RELAY_CLIENT", default="kafka-python").strip().lower()
if MESSAGING_RELAY_CLIENT not in ("kafka-python", "confluent"):
    raise ImproperlyConfigured(
        f"MESSAGING_RELAY_CLIENT={MESSAGING_RELAY_CLIENT!r} is unknown: "
        "set MESSAGING_RELAY_CLIENT to 'kafka-python' (the default) or 'confluent'."
    )
if MESSAGING_RELAY_CLIENT == "confluent" and find_spec("confluent_kafka") is None:
    raise ImproperlyConfigured(
        "MESSAGING_RELAY_CLIENT=confluent needs the confluent-kafka package, which is not installed: "
        "install requirements/base.txt (it pins confluent-kafka), or set MESSAGING_RELAY_CLIENT=kafka-python."
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
    "RELAY_CLIENT": MESSAGING_RELAY_CLIENT,
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

# orders: unpaid reservations (orders/holds.py). A confirmed order not paid within the timeout is cancelled
# and its stock released by orders_expire_unpaid, which run_service runs every CHECK seconds (0 = never;
# a timeout of 0 keeps unpaid orders forever). A customer's open unpaid orders hold at most these many
# copies of one book and in all (0 = no limit).
ORDERS_PAYMENT_TIMEOUT_SECONDS = env.float("ORDERS_PAYMENT_TIMEOUT_SECONDS", default=900.0)
ORDERS_PAYMENT_CHECK_SECONDS = env.float("ORDERS_PAYMENT_CHECK_SECONDS", default=30.0)
ORDERS_MAX_UNPAID_COPIES_PER_BOOK = env.int("ORDERS_MAX_UNPAID_COPIES_PER_BOOK", default=10)
ORDERS_MAX_UNPAID_COPIES = env.int("ORDERS_MAX_UNPAID_COPIES", default=50)
# Shop-wide, against account farming: while all customers' open unpaid orders hold this share of a book's
# copies (at least one), no new checkout adds to them (0 = no limit).
ORDERS_MAX_UNPAID_SHARE_PER_BOOK = env.float("ORDERS_MAX_UNPAID_SHARE_PER_BOOK", default=0.5)
if not 0 <= ORDERS_MAX_UNPAID_SHARE_PER_BOOK <= 1:
    raise ImproperlyConfigured(
        f"ORDERS_MAX_UNPAID_SHARE_PER_BOOK={ORDERS_MAX_UNPAID_SHARE_PER_BOOK} is not a share: "
        "set a number from 0 (no limit) to 1 (every copy), e.g. 0.5."
    )

# orders: a checkout still pending this long is overdue (its saga stalled: an event lost, a consumer down);
# orders_resolve_pending re-announces its OrderPlaced up to ORDERS_PENDING_MAX_REANNOUNCEMENTS times, one
# timeout apart, then rejects it with a reason. run_service runs that command every CHECK seconds (0 = never).
ORDERS_PENDING_TIMEOUT_SECONDS = env.float("ORDERS_PENDING_TIMEOUT_SECONDS", default=300.0)
ORDERS_PENDING_MAX_REANNOUNCEMENTS = env.int("ORDERS_PENDING_MAX_REANNOUNCEMENTS", default=3)
ORDERS_PENDING_CHECK_SECONDS = env.float("ORDERS_PENDING_CHECK_SECONDS", default=60.0)

# recommendations: journal entries between two snapshots of the model
RECOMMENDATIONS_CHECKPOINT_EVERY = env.int("RECOMMENDATIONS_CHECKPOINT_EVERY", default=10_000)

# --- web: DRF, problem details, OpenAPI, JWT ---------------------------------------
# The largest request body accepted (413 above it). The gateway's client_max_body_size is rendered
# from the same variable (scripts/services.sh, docker/compose.services.yml), so both refuse alike.
REQUEST_BODY_MAX_BYTES = env.int("REQUEST_BODY_MAX_BYTES", default=1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_BODY_MAX_BYTES
JWT_PRIVATE_KEY, JWT_PUBLIC_KEY = keys.load_jwt_keys(
    env, var_dir=VAR_DIR, needs_private="accounts" in SERVED_MODULES, allow_generate=DEBUG
)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "web.auth.CustomerJWTAuthentication",
        "web.auth.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # An error is application/problem+json from the JSON renderer, a text/html page from the
    # browsable API: each response is the type it declares (web.renderers).
    "DEFAULT_RENDERER_CLASSES": [
        "web.renderers.JSONRenderer",
        "web.renderers.BrowsableAPIRenderer",
    ],
    # DRF's parsers, the JSON one bounded in nesting depth (web.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "web.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # DRF's renderer choice, remembered per Accept header (web.negotiation).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "web.negotiation.ContentNegotiation",
    # OPTIONS without DRF's object lookup, which our selector-based views do not support (web.metadata).
    "DEFAULT_METADATA_CLASS": "web.metadata.Metadata",
    "DEFAULT_FILTER_BACKENDS": ["web.filtering.FilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "web.schema.AutoSchema",  # documents every operation's problem responses
    "EXCEPTION_HANDLER": "web.problems.problem_exception_handler",
    "DEFAULT_PAGINATION_CLASS": "web.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 20,
}

# --- abuse: rate limits over a store every process shares, and bounded password hashing (web/throttling.py)
# The client's address: how many proxies in front of this process append to X-Forwarded-For (the gateway
# does; a Kubernetes ingress in front of it is one more). 0 trusts no header (the one-process shop).
REST_FRAMEWORK["NUM_PROXIES"] = int(env.str("NUM_PROXIES", default="") or (0 if SERVICE == topology.ALL else 1))
THROTTLE_ENABLED = env.bool("THROTTLE_ENABLED", default=True)
THROTTLE_KEY_PREFIX = "quire-throttle:"
THROTTLE_RATES = {
    "sign_in": env.str("THROTTLE_SIGN_IN_RATE", default="20/min"),  # per client address
    # Failed sign-ins at one email from one address: failures by others never lock its owner out.
    "sign_in_account": env.str("THROTTLE_SIGN_IN_ACCOUNT_RATE", default="10/hour"),
    "register": env.str("THROTTLE_REGISTER_RATE", default="20/hour"),  # per client address
    "refresh": env.str("THROTTLE_REFRESH_RATE", default="60/min"),  # per client address
    "password_change": env.str("THROTTLE_PASSWORD_CHANGE_RATE", default="5/min"),  # per customer and per address
    "email_change": env.str("THROTTLE_EMAIL_CHANGE_RATE", default="5/hour"),  # per customer and per address
    "admin_login": env.str("THROTTLE_ADMIN_LOGIN_RATE", default="10/min"),  # per client address
    # Writes a customer makes, per customer and per client address (web.throttling.WritesThrottled).
    "checkout": env.str("THROTTLE_CHECKOUT_RATE", default="30/min"),  # POST /api/orders/
    "cart": env.str("THROTTLE_CART_RATE", default="120/min"),  # every cart write
    "address_write": env.str("THROTTLE_ADDRESS_WRITE_RATE", default="30/min"),  # address book writes
    # Declined payments (card testing), per customer and per client address; then payments are refused.
    "payment_declined": env.str("THROTTLE_PAYMENT_DECLINED_RATE", default="5/hour"),
    # Failed staff logins at one username from one address.
    "admin_login_account": env.str("THROTTLE_ADMIN_LOGIN_ACCOUNT_RATE", default="5/hour"),
    "service_map": env.str("THROTTLE_SERVICE_MAP_RATE", default="60/min"),  # /api/map/ and /api/map/svg/, per address
}
for _scope, _rate in THROTTLE_RATES.items():
    try:
        throttle_rate(_rate)
    except ValueError as _error:
        raise ImproperlyConfigured(f"THROTTLE_{_scope.upper()}_RATE: {_error} (empty = no limit).") from None
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # The rate limits' counters: a table on `default` (the service's own database), made by `migrate`.
    "throttle": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "quire_throttle",
        "OPTIONS": {"MAX_ENTRIES": env.int("THROTTLE_MAX_ENTRIES", default=100_000)},
    },
}
# At most this many password hashes at once per process; a sign-in that waits longer for one gets 503.
PASSWORD_HASH_CONCURRENCY = env.int("PASSWORD_HASH_CONCURRENCY", default=2)
PASSWORD_HASH_WAIT_SECONDS = env.float("PASSWORD_HASH_WAIT_SECONDS", default=5.0)

SIMPLE_JWT = {
    "ALGORITHM": "RS256",
    "SIGNING_KEY": JWT_PRIVATE_KEY,
    "VERIFYING_KEY": JWT_PUBLIC_KEY,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_ACCESS_TOKEN_SECONDS", default=15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("JWT_REFRESH_TOKEN_SECONDS", default=7 * 24 * 3600)),
    "ISSUER": env.str("JWT_ISSUER", default="quire-accounts"),
    # Issued in every token and required on verification: a token minted for another
    # audience (another shop or service sharing the key) is refused.
    "AUDIENCE": env.str("JWT_AUDIENCE", default="quire"),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "TOKEN_USER_CLASS": "rest_framework_simplejwt.models.TokenUser",
    "UPDATE_LAST_LOGIN": False,
}

# Staff: one identity for every service's admin (web/staff.py, accounts/staff_tokens.py). accounts signs an
# RS256 token with the JWT key pair into a cookie for /admin/; the other services verify it locally.
STAFF_TOKEN_COOKIE = env.str("STAFF_TOKEN_COOKIE", default="quire_staff")
STAFF_TOKEN_COOKIE_PATH = "/admin/"
STAFF_TOKEN_AUDIENCE = env.str("STAFF_TOKEN_AUDIENCE", default="quire-admin")
STAFF_TOKEN_SECONDS = env.int("STAFF_TOKEN_SECONDS", default=3600)
# Where a service without accounts sends staff to sign in (accounts' admin behind the gateway).
STAFF_LOGIN_URL = env.str("STAFF_LOGIN_URL", default="/admin/accounts/login/")

SPECTACULAR_SETTINGS = {
    "TITLE": "Quire API",
    # Markdown in Swagger UI: a bare <module> would be taken for an HTML tag and vanish.
    "DESCRIPTION": "The Quire bookshop: one API per module under `/api/{module}/`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The API is JSON: the form parsers serve the browsable API's HTML forms and stay undocumented.
    "PARSER_WHITELIST": ["web.parsers.JSONParser"],
}

# Logs: one JSON object per line in production, a readable line in development (config/logs.py).
LOG_FORMAT = (env.str("LOG_FORMAT", default="") or ("text" if DEBUG else "json")).strip().lower()
if LOG_FORMAT not in logs.FORMATS:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is unknown: set LOG_FORMAT to 'text' or 'json'.")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = logs.logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL, service=SERVICE)
