"""What the test harnesses share (tests/e2e, tests/faults, tests/messaging), one job a file.

- :mod:`~tests.support.waiting`: wait for a condition with a deadline (never a bare sleep);
- :mod:`~tests.support.processes`: child processes: environments, starting, logs, signals, stopping;
- :mod:`~tests.support.postgres`: the PostgreSQL server: fresh databases, URLs, queries;
- :mod:`~tests.support.kafka`: the Kafka broker: bootstrap servers, a run's topics, a broker of one's own;
- :mod:`~tests.support.http`: an HTTP client over the standard library, and waiting for a server to answer;
- :mod:`~tests.support.tokens`: customer JWTs signed as accounts signs them, for shops started without it.
"""
