from tests.messaging.probes import probe_handler  # noqa: F401  (fixture)
