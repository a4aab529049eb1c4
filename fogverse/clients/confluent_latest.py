"""``read_latest`` on confluent-kafka: skip the backlog a new group finds, nothing more.

FogVerse sought to the end on every assignment, so partitions handed over in a
rebalance (the Master scaling out) lost whatever their previous owner had not
read yet. Here a partition where the group has committed an offset always
resumes from it. One without a commit starts at its end only while the group
has no commit anywhere on the topic (a new group: the backlog is what
``read_latest`` is for); that end is committed at once, so an instance that
gets the partition later resumes there instead of at a newer end. A partition
without a commit on a topic the group already reads was added since (by the
Master, when it scales out) and is read from its beginning: everything in it
arrived after the group started.
"""

from __future__ import annotations

import logging

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from confluent_kafka import Consumer as KafkaConsumer

__all__ = ["latest_start"]

log = logging.getLogger("fogverse.stage")

_TIMEOUT_S = 10.0


def latest_start(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> bool:
    """Set where each of ``partitions`` starts under ``read_latest``; commit new ends.

    Returns False (offsets untouched) if the group's commits could not be read:
    ``auto.offset.reset=latest`` then decides, as it would for a new group.
    """
    try:
        seen = _topics_with_commits(consumer, {tp.topic for tp in partitions})
        committed = consumer.committed(
            [TopicPartition(tp.topic, tp.partition) for tp in partitions], timeout=_TIMEOUT_S
        )
    except KafkaException as exc:
        log.warning("read_latest: could not read the group's commits: %s", exc)
        return False
    has_commit = {(tp.topic, tp.partition) for tp in committed if tp.offset >= 0}
    anchors: list[TopicPartition] = []
    for tp in partitions:
        if (tp.topic, tp.partition) in has_commit:
            continue
        if tp.topic in seen:
            tp.offset = OFFSET_BEGINNING
            continue
        _, high = consumer.get_watermark_offsets(tp, timeout=_TIMEOUT_S)
        tp.offset = high
        anchors.append(TopicPartition(tp.topic, tp.partition, high))
    if anchors:
        try:
            consumer.commit(offsets=anchors, asynchronous=False)
        except KafkaException as exc:
            # Only the anchor is lost: this instance still starts at the end.
            log.warning("read_latest: could not commit where the group starts: %s", exc)
    return True


def _topics_with_commits(consumer: KafkaConsumer, topics: set[str]) -> set[str]:
    """The topics on which the group has committed an offset for any partition."""
    every: list[TopicPartition] = []
    for topic in topics:
        metadata = consumer.list_topics(topic, timeout=_TIMEOUT_S).topics.get(topic)
        if metadata is not None:
            every += [TopicPartition(topic, p) for p in metadata.partitions]
    if not every:
        return set()
    return {tp.topic for tp in consumer.committed(every, timeout=_TIMEOUT_S) if tp.offset >= 0}
