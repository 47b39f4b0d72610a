"""The Kafka adapter: everything the services topology needs beyond the kernel.

A reader of the kernel can skip this package. Its files, bottom up:

- ``clients``: how every producer and admin client is configured;
- ``topics``: topic and group names, and creating the topics;
- ``lease``: one relay per module database at a time (advisory lock or file lock, LISTEN);
- ``outbox``: reading the outbox in commit order (the polling-trap guard), as records;
- ``pipeline``: one module's stream from outbox to topic (read ahead, in flight, mark behind);
- ``relay``: the loop that drives the pipelines (``run_relay``);
- ``dead_letters``: the DLQ topic, and parking records that are not envelopes;
- ``consumer``: one consumer group per subscribing module (``run_consumer``);
- ``groups``: what the broker says of consumer groups (state, owners, committed offsets, log ends);
- ``status``: consumer lag and outbox backlog (``messaging_status``);
- ``health``: readiness and scrape-time metrics of the broker, the relay, the consumer, the groups;
- ``transport``: what the transport protocol asks of a web process in this topology.
"""
