"""How a consumer tells "idle" from "stuck", and what it does about it.

kafka-python 3.0.x can leave a member in its group with no partitions for good: a rejoin its
leader starts because a subscribed topic's partitions changed (e.g. the first join saw none yet
of a topic just created) takes the assignment snapshot when the JoinGroup response arrives, so a
``poll()`` whose timer expires while the SyncGroup is in flight sees no rejoin needed and never
collects the assignment (``join_group_async``/``need_rejoin`` in ``kafka/coordinator``). The member
then stays REBALANCING, its broker session expires, and it may still report what it held
before: its own view proves nothing, the group's does.

So, besides joining only once its metadata knows every subscribed topic's partitions (in the
consumer), an idle consumer asks the broker now and then (:class:`GroupWatch`) whether some
partition of its topics has no member; if so it rebuilds its client. A consumer that makes no
progress at all for ``CONSUMER_STALL_EXIT_SECONDS`` raises :class:`ConsumerStalled`, so that its
process exits and its supervisor restarts it.

The relay has the same guard (:class:`RelayStalled`, ``RELAY_STALL_EXIT_SECONDS``): a round that
keeps failing (a database connection it cannot regain, a broker that never answers) ends it.
Both keep a heartbeat file (:class:`Heartbeat`) whose mtime is their last progress, for a
supervisor that cannot ask them: ``manage.py check_heartbeat`` (a Kubernetes exec probe) and
``run_service`` read it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import TopicPartition
from kafka.errors import KafkaError

from messaging.kafka.clients import admin_client
from messaging.kafka.groups import describe_groups

logger = logging.getLogger(__name__)

#: Exit status of a relay or consumer process whose loop stopped progressing inside a call (EX_SOFTWARE).
WEDGED_EXIT_CODE = 70
#: Seconds past its stall limit a loop gets to raise (and stop) by itself, before its process gives up on it.
WEDGED_GRACE_SECONDS = 15.0

#: Group states in which partitions are legitimately unowned for a moment.
REBALANCING_STATES = frozenset({"PreparingRebalance", "CompletingRebalance"})


class ConsumerStalled(Exception):
    """The consumer made no progress for ``CONSUMER_STALL_EXIT_SECONDS``: restart its process."""


class RelayStalled(Exception):
    """The relay made no progress for ``RELAY_STALL_EXIT_SECONDS``: restart its process."""


class Heartbeat:
    """A file whose mtime is the wall-clock time of a process's last progress ("" path: none).

    Written at most once a second; a failure to write is ignored (the probe then sees it age,
    which is the truth: a process that cannot even touch a file is not well).
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path else None
        self._written = 0.0

    def beat(self, last_progress: float, *, force: bool = False) -> None:
        """Record ``last_progress`` (a ``time.monotonic()`` value) as the file's mtime."""
        if self.path is None:
            return
        now = time.monotonic()
        if not force and now - self._written < 1.0:
            return
        self._written = now
        at = time.time() - (now - last_progress)
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
            os.utime(self.path, (at, at))


def heartbeat_age(path: str | os.PathLike) -> float | None:
    """Seconds since the heartbeat at ``path`` last recorded progress; None if there is no such file."""
    try:
        return max(time.time() - Path(path).stat().st_mtime, 0.0)
    except FileNotFoundError:
        return None


def unowned_partitions(group: str, topics: list[str], bootstrap_servers: list[str]) -> tuple[str, set[TopicPartition]]:
    """The group's state and the partitions of ``topics`` that no member of ``group`` is assigned."""
    admin = admin_client(bootstrap_servers)
    try:
        view = describe_groups(admin, {group: topics}, offsets=False)[group]
    finally:
        admin.close()
    return view.state, set(view.unowned)


@dataclass(frozen=True)
class Verdict:
    """What an empty poll means: ``status`` to show, whether it counts as progress, whether to rebuild."""

    status: str = ""
    progressed: bool = False
    rebuild: bool = False


class GroupWatch:
    """After empty polls, every ``interval`` seconds (backing off to twice that), check the group reads everything."""

    def __init__(self, group: str, topics: list[str], bootstrap_servers: list[str], *, interval: float) -> None:
        self.group = group
        self.topics = topics
        self.bootstrap_servers = bootstrap_servers
        self.interval = interval
        self._idle_since: float | None = None
        self._next_check = 0.0
        self._check_interval = interval

    def busy(self) -> None:
        """Records arrived: the next empty poll starts a new idle stretch."""
        self._idle_since = None

    def after_empty_poll(self, *, assigned: frozenset[TopicPartition], coordinator_known: bool) -> Verdict:
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
            self._next_check = now + self.interval
            self._check_interval = self.interval
        if not coordinator_known:
            return Verdict("Kafka unreachable")
        if now < self._next_check:
            return Verdict("consuming", progressed=True) if assigned else Verdict()
        try:
            state, unowned = unowned_partitions(self.group, self.topics, self.bootstrap_servers)
        except (KafkaError, OSError) as error:
            self._next_check = now + self.interval
            logger.warning("cannot describe group %s (%r)", self.group, error)
            return Verdict("Kafka unreachable")
        if state in REBALANCING_STATES or not unowned:
            # Healthy (or a spare member: more members than partitions); look again less often, but a
            # member kafka-python dropped shows as unowned only once its session expired: stay prompt.
            self._check_interval = min(self._check_interval * 2, 2 * self.interval)
            self._next_check = now + self._check_interval
            status = f"group {state}" if unowned else "consuming" if assigned else "idle: spare member"
            return Verdict(status, progressed=True)
        logger.warning(
            "idle for %.0fs holding %s while %d partition(s) of %s have no member in group %s (%s): "
            "rebuilding its Kafka client",
            now - self._idle_since,
            sorted(map(tuple, assigned)) or "nothing",
            len(unowned),
            ", ".join(sorted({tp.topic for tp in unowned})),
            self.group,
            state or "no state",
        )
        self._idle_since = None
        return Verdict("rebuilding its Kafka client", rebuild=True)
