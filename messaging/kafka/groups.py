"""What the broker says of consumer groups: state, which partitions a member holds, committed offset and log end.

The group's own view, not a member's: a member that kafka-python left without partitions may
still believe it holds what it held, and a dead member reports nothing at all. So liveness
(:func:`messaging.kafka.liveness.unowned_partitions`), ``messaging_status``, readiness and the
scrape-time metrics all read it from here, through one admin client the caller owns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group has committed nothing here yet
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


@dataclass(frozen=True)
class GroupView:
    """One group's state and the partitions of the topics it reads: owned by a member or not, and how far read."""

    group: str
    state: str  # "Stable", "PreparingRebalance", "Empty", "Dead" ... ("" if the broker said none)
    members: int
    partitions: frozenset[TopicPartition]
    owned: frozenset[TopicPartition]
    #: Offsets, when asked for: the group's committed offset (None: nothing committed) and the log end.
    committed: dict[TopicPartition, int | None] = field(default_factory=dict)
    ends: dict[TopicPartition, int] = field(default_factory=dict)

    @property
    def unowned(self) -> frozenset[TopicPartition]:
        return self.partitions - self.owned

    def lags(self) -> list[PartitionLag]:
        """Committed offset and log end of each partition, in topic and partition order."""
        return [
            PartitionLag(self.group, tp.topic, tp.partition, self.committed.get(tp), self.ends.get(tp, 0))
            for tp in sorted(self.partitions)
        ]


def describe_groups(
    admin: KafkaAdminClient, groups_topics: dict[str, list[str]], *, offsets: bool = True
) -> dict[str, GroupView]:
    """Each group of ``groups_topics`` (group -> the topics it reads) as the broker sees it now.

    A topic that does not exist (yet) has no partitions here. ``offsets=False`` skips the two
    offset requests (committed, log end) when only ownership matters.
    """
    topics = sorted({topic for group_topics in groups_topics.values() for topic in group_topics})
    partitions: dict[str, list[int]] = {}
    if topics:
        partitions = {
            description["name"]: sorted(p["partition_index"] for p in description.get("partitions") or [])
            for description in admin.describe_topics(topics)
            if description.get("error_code", 0) == 0
        }
    groups = sorted(groups_topics)
    descriptions = admin.describe_groups(groups) if groups else {}
    ends: dict[TopicPartition, int] = {}
    committed: dict[str, dict] = {}
    if offsets:
        specs = {TopicPartition(t, p): OffsetSpec.LATEST for t, ps in partitions.items() for p in ps}
        if specs:
            ends = {tp: result.offset for tp, result in admin.list_partition_offsets(specs).items()}
        if groups:
            committed = admin.list_group_offsets(dict.fromkeys(groups))
    views = {}
    for group in groups:
        description = descriptions.get(group) or {}
        mine = frozenset(
            TopicPartition(topic, partition)
            for topic in groups_topics[group]
            for partition in partitions.get(topic, [])
        )
        owned = set()
        for member in description.get("members") or []:
            assignment = member.get("member_assignment")
            for entry in (assignment.get("assigned_partitions") or []) if isinstance(assignment, dict) else []:
                owned.update(TopicPartition(entry["topic"], partition) for partition in entry["partitions"])
        group_offsets = committed.get(group) or {}
        views[group] = GroupView(
            group=group,
            state=description.get("group_state") or "",
            members=len(description.get("members") or []),
            partitions=mine,
            owned=frozenset(owned & mine),
            committed={tp: _offset(group_offsets.get(tp)) for tp in mine} if offsets else {},
            ends={tp: ends.get(tp, 0) for tp in mine} if offsets else {},
        )
    return views


def _offset(committed) -> int | None:
    return committed.offset if committed is not None and committed.offset >= 0 else None
