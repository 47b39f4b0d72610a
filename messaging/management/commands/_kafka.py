"""What the operator commands share: served-module selection, the transport check, clean stops, a quiet client."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

from django.core.management.base import CommandError

from messaging.conf import messaging_settings


def require_kafka_transport(command: str) -> None:
    if messaging_settings.TRANSPORT != "kafka":
        raise CommandError(
            f"{command} works with the Kafka transport: set EVENT_TRANSPORT=kafka and KAFKA_BOOTSTRAP_SERVERS "
            f"(this process has EVENT_TRANSPORT={messaging_settings.TRANSPORT})."
        )


def selected_modules(requested: list[str] | None) -> list[str]:
    """The modules named with --module, each of which this process must serve; else all it serves."""
    served = list(messaging_settings.served_modules)
    if not requested:
        return served
    unknown = [module for module in requested if module not in served]
    if unknown:
        raise CommandError(
            f"this process does not serve {', '.join(unknown)} "
            f"(SERVICE={messaging_settings.SERVICE} serves {', '.join(served)})."
        )
    return list(dict.fromkeys(requested))


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM (an orchestrator) and SIGINT (Ctrl-C) ask for a clean stop instead of killing.

    The previous handlers come back afterwards (the command may run inside another program,
    e.g. a test run, through ``call_command``).
    """

    def handler(signum, frame):
        stop()

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old_handler in previous.items():
            signal.signal(signum, old_handler)


def quiet_kafka_client(verbosity: int) -> None:
    """While the broker is away kafka-python logs every reconnect attempt at ERROR, several a
    second; the relay and consumer report the outage themselves (a warning per failed round,
    then the recovery). ``-v 2`` keeps the client's own log, and lowers librdkafka's (the relay's
    confluent client) from WARNING to INFO, where its reconnects are."""
    if verbosity < 2:
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    else:
        logging.getLogger("librdkafka").setLevel(logging.INFO)


class LogLines:
    """A stand-in for a command's stdout/stderr that writes each line as a log record instead.

    With ``LOG_FORMAT=json`` the relay's and the consumer's own lines (start, progress, stop) must
    be JSON like every other line of their process, so they go through logging; in text they
    stay on the command's streams, readable and unchanged.
    """

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger, self.level = logger, level

    def write(self, text: str, style_func=None, ending=None) -> int:
        for line in text.splitlines():
            if line.strip():
                self.logger.log(self.level, line.strip())
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""

    def isatty(self) -> bool:
        return False


def log_command_output(command, logger: logging.Logger) -> None:
    """Route ``command``'s stdout and stderr through ``logger`` when the process logs JSON."""
    from django.conf import settings

    if getattr(settings, "LOG_FORMAT", "text") == "json":
        command.stdout = LogLines(logger, logging.INFO)
        command.stderr = LogLines(logger, logging.ERROR)
