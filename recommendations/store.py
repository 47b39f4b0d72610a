"""This process's engine: loaded lazily from the database and kept in step with it.

The database holds the truth (``ModelSnapshot`` + the ``ModelChange`` journal, ordered by
``ModelState.version``); every process holds a cached :class:`~recommendations.engine.Engine`
built from it. Before each read the cache compares its (generation, version) with the
state row (one primary-key lookup) and, if behind, applies only the journal rows it has
not seen. A process therefore sees a purchase or a withdrawal handled by any other
process on its next request, and a rebuild (new generation) makes every process reload.

Handlers never touch the cache: they only write rows. A rolled-back handler can thus
never leave a process with a model that the database does not have.
"""

from __future__ import annotations

import io
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connections, transaction

from recommendations.models import ModelChange, ModelSnapshot, ModelState, Purchase, RecoBook
from recommendations.records import BookMeta
from recommendations.routers import DATABASE

# numpy, scipy and the engine are imported where a model is built, loaded or stored, not with
# this module: a process that never reads recommendations (a command, a consumer) starts without them.
if TYPE_CHECKING:
    import numpy as np

    from recommendations.engine import Engine

logger = logging.getLogger(__name__)

#: Versions (writing transactions) after which the next writer's commit folds the journal
#: into a snapshot.
READ_CHUNK = 100_000

Progress = Callable[[str, int, int], None]


def checkpoint_every() -> int:
    return int(settings.RECOMMENDATIONS_CHECKPOINT_EVERY)


@dataclass
class _Loaded:
    engine: Engine
    generation: uuid.UUID | None
    version: int


_lock = threading.RLock()
_loaded: _Loaded | None = None


@contextmanager
def current_engine() -> Iterator[Engine]:
    """The engine, caught up with the database, held exclusively for the duration of the block."""
    with _lock:
        yield _sync()


def loaded_version() -> tuple[uuid.UUID | None, int] | None:
    """(generation, version) of this process's cached model, if one is loaded."""
    with _lock:
        return None if _loaded is None else (_loaded.generation, _loaded.version)


def reset() -> None:
    """Forget the cached model (as a process restart would); the next read reloads it from the database."""
    global _loaded
    with _lock:
        _loaded = None


def _state() -> tuple[uuid.UUID, int, int] | None:
    """(generation, version, journal_floor), or None before anything was learnt.

    Every request runs this, so it is plain SQL: the ORM would cost 20 times the query.
    """
    connection = connections[DATABASE]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('generation')}, {quote('version')}, {quote('journal_floor')} "
            f"FROM {quote(ModelState._meta.db_table)} WHERE {quote('id')} = %s",
            [ModelState.SINGLETON_ID],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    generation, version, floor = row
    return _as_uuid(generation), int(version), int(floor)


def _sync() -> Engine:
    from recommendations.engine import Engine

    global _loaded
    state = _state()
    if state is None:
        # Nothing was ever learnt (every writer creates the state row).
        if _loaded is None or _loaded.generation is not None:
            _loaded = _Loaded(Engine(), None, 0)
        return _loaded.engine
    generation, version, floor = state
    stale = _loaded is None or _loaded.generation != generation or _loaded.version < floor
    # A failed catch-up (journal pruned under us) falls back to a full load as well.
    if stale or (_loaded.version < version and not _catch_up(_loaded, version)):
        _loaded = _load(generation, version)
    return _loaded.engine


def _load(generation: uuid.UUID, observed: int) -> _Loaded:
    from recommendations.engine import Engine

    snapshot = (
        ModelSnapshot.objects.filter(generation=generation).order_by("-version").values_list("version", "data").first()
    )
    books = book_metas()
    loaded = _Loaded(Engine(books), generation, 0)
    if snapshot is not None:
        version, data = snapshot
        try:
            loaded = _Loaded(decode(data, books), generation, version)
        except ValueError as error:  # written by another version of the code
            logger.warning("recommendation snapshot v%d unusable (%s): rebuilding in memory", version, error)
            loaded = None
    if loaded is None or not _catch_up(loaded, observed):
        # No usable snapshot, or the journal it needs was pruned under us (a concurrent
        # rebuild): build from the purchases here (rebuild_recommendations stores one).
        engine, version, _ = build_from_database()
        loaded = _Loaded(engine, generation, version)
        _catch_up(loaded, version)
    logger.info("recommendation model loaded: generation %s, version %d", generation, loaded.version)
    return loaded


def _catch_up(loaded: _Loaded, observed: int) -> bool:
    """Apply the journal after ``loaded.version``; False if part of it was already pruned.

    ``observed`` is a version read from the state row before this call: every journal
    row up to it is committed, so the model is then at least that recent (a version
    may have no rows, e.g. a duplicate order that changed nothing).
    """
    rows = list(
        ModelChange.objects.filter(version__gt=loaded.version)
        .order_by("version", "id")
        .values_list("version", "kind", "book_id", "customer_id", "purchased_at", "ownership_changed")
    )
    # Read after the rows: a prune committed before our read shows here, so no gap goes unnoticed.
    state = _state()
    if state is not None and state[2] > loaded.version:
        return False
    engine = loaded.engine
    changed_books: set[int] = set()
    for version, kind, book_id, customer_id, purchased_at, ownership_changed in rows:
        if kind == ModelChange.Kind.PURCHASE:
            engine.add_purchase(customer_id, book_id, purchased_at.timestamp(), becomes_owner=ownership_changed)
        elif kind == ModelChange.Kind.CANCELLATION:
            engine.remove_purchase(customer_id, book_id, purchased_at.timestamp(), loses_owner=ownership_changed)
        else:
            changed_books.add(book_id)
        loaded.version = version
    if changed_books:
        for meta in book_metas(book_ids=changed_books):
            engine.upsert_book(meta)
    loaded.version = max(loaded.version, observed)
    return True


def book_metas(*, book_ids: set[int] | None = None) -> list[BookMeta]:
    """The books the engine may show: those catalog published (a withdrawal alone leaves no title)."""
    rows = RecoBook.objects.exclude(title="")
    if book_ids is not None:
        rows = rows.filter(book_id__in=book_ids)
    return [
        BookMeta(book_id, title, tuple(authors or ()), tuple(genres or ()), language, active)
        for book_id, title, authors, genres, language, active in rows.values_list(
            "book_id", "title", "authors", "genres", "language", "active"
        )
    ]


# --- snapshots --------------------------------------------------------------------


def encode(engine: Engine) -> bytes:
    """The engine's arrays as an ``.npz`` blob; customers as 16-byte UUIDs."""
    import numpy as np

    arrays, customers = engine.export_state()
    raw = b"".join(customer.bytes for customer in customers)
    arrays["customers"] = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode(data: bytes | memoryview, books: list[BookMeta]) -> Engine:
    import numpy as np

    from recommendations.engine import Engine

    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    raw = arrays.pop("customers").tobytes()
    customers = [uuid.UUID(bytes=raw[i : i + 16]) for i in range(0, len(raw), 16)]
    return Engine.from_state(arrays, customers, books)


def next_version() -> int:
    """Take the writers' turn and the version of the caller's transaction's changes.

    Bumping the state row locks it until the caller's transaction ends (on SQLite the
    transaction holds the database's write lock anyway), so versions are assigned in
    commit order and a reader never skips one. Plain SQL: every handler runs this.
    """
    connection = connections[DATABASE]
    quote = connection.ops.quote_name
    table = quote(ModelState._meta.db_table)
    with connection.cursor() as cursor:
        update = f"UPDATE {table} SET {quote('version')} = {quote('version')} + 1 WHERE {quote('id')} = %s"
        cursor.execute(update, [ModelState.SINGLETON_ID])
        if cursor.rowcount == 0:
            ModelState.objects.get_or_create(pk=ModelState.SINGLETON_ID)
            cursor.execute(update, [ModelState.SINGLETON_ID])
        cursor.execute(
            f"SELECT {quote('version')}, {quote('journal_floor')} FROM {table} WHERE {quote('id')} = %s",
            [ModelState.SINGLETON_ID],
        )
        version, floor = cursor.fetchone()
    if version - floor >= checkpoint_every():
        transaction.on_commit(checkpoint_quietly, using=DATABASE)
    return int(version)


def lock_state() -> ModelState:
    """The state row, locked until the caller's transaction ends (rebuilds and checkpoints)."""
    state = ModelState.objects.select_for_update().filter(pk=ModelState.SINGLETON_ID).first()
    if state is None:
        ModelState.objects.get_or_create(pk=ModelState.SINGLETON_ID)
        state = ModelState.objects.select_for_update().get(pk=ModelState.SINGLETON_ID)
    return state


def save_snapshot(engine: Engine, *, version: int, generation: uuid.UUID | None) -> ModelSnapshot | None:
    """Store ``engine`` (the model at ``version``) and prune the journal it covers.

    ``generation`` None: a rebuild, which starts a new generation so that every process
    reloads. Otherwise (a checkpoint of that generation) nothing is stored if a rebuild
    replaced the generation meanwhile.
    """
    from recommendations.engine import STATE_FORMAT

    data = encode(engine)
    stats = engine.stats()
    with transaction.atomic(using=DATABASE):
        state = lock_state()
        if generation is None:
            state.generation = uuid.uuid4()
        elif state.generation != generation or state.version < version:
            return None
        snapshot = ModelSnapshot.objects.create(
            generation=state.generation,
            version=version,
            format=STATE_FORMAT,
            data=data,
            size_bytes=len(data),
            books=stats["books"],
            customers=stats["customers"],
            owned_pairs=stats["owned_pairs"],
            co_pairs=stats["co_pairs"],
        )
        ModelChange.objects.filter(version__lte=version).delete()
        ModelSnapshot.objects.exclude(pk=snapshot.pk).delete()
        state.journal_floor = max(state.journal_floor, version)
        state.save(update_fields=["generation", "journal_floor", "updated_at"])
    return snapshot


def checkpoint() -> ModelSnapshot | None:
    """Fold the journal into a snapshot of this process's (caught-up) model."""
    with _lock:
        engine = _sync()
        if _loaded is None or _loaded.generation is None:
            return None
        return save_snapshot(engine, version=_loaded.version, generation=_loaded.generation)


def checkpoint_quietly() -> None:
    """After-commit hook of writers: a failed checkpoint only delays the next one."""
    try:
        checkpoint()
    except Exception:
        logger.exception("recommendation model checkpoint failed; the journal keeps growing until the next one")


# --- rebuild from purchases -------------------------------------------------------------


def build_from_database(progress: Progress | None = None) -> tuple[Engine, int, int]:
    """The model of every live purchase line, the version it corresponds to, and the line count.

    Reads under the state lock so that no writer commits between the version and the
    rows; the (CPU-bound) build runs after the lock is released.
    """
    import numpy as np

    from recommendations.engine import Engine

    report = progress or (lambda phase, done, total: None)
    table = Purchase._meta.db_table
    connection = connections[DATABASE]
    quote = connection.ops.quote_name
    customer_codes: dict = {}
    codes_chunks: list[np.ndarray] = []
    book_chunks: list[np.ndarray] = []
    time_chunks: list[np.ndarray] = []
    with transaction.atomic(using=DATABASE):
        version = lock_state().version
        total = Purchase.objects.filter(cancelled=False).count()
        report("reading purchases", 0, total)
        done = 0
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {quote('customer_id')}, {quote('book_id')}, {_seconds_sql(connection)} "
                f"FROM {quote(table)} WHERE {quote('cancelled')} = %s ORDER BY {quote('id')}",
                [False],
            )
            while rows := cursor.fetchmany(READ_CHUNK):
                customers, books, times = zip(*rows, strict=True)
                setdefault = customer_codes.setdefault
                codes_chunks.append(np.fromiter((setdefault(c, len(customer_codes)) for c in customers), np.int64))
                book_chunks.append(np.asarray(books, dtype=np.int64))
                time_chunks.append(_seconds(times))
                done += len(rows)
                report("reading purchases", done, total)
    customers_list = [_as_uuid(c) for c in customer_codes]
    books = book_metas()

    def step(phase: str) -> None:
        report(f"building: {phase}", 0, 0)

    engine = Engine.build(
        books,
        customer_codes=np.concatenate(codes_chunks) if codes_chunks else np.zeros(0, dtype=np.int64),
        customers=customers_list,
        book_ids=np.concatenate(book_chunks) if book_chunks else np.zeros(0, dtype=np.int64),
        at_seconds=np.concatenate(time_chunks) if time_chunks else np.zeros(0),
        progress=step,
    )
    return engine, version, done


def _as_uuid(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _seconds_sql(connection) -> str:
    """``purchased_at`` in a form read a million times faster than a datetime per row.

    SQLite: the stored UTC text (a bare expression escapes the driver's datetime
    converter); PostgreSQL: epoch seconds. Both give exactly ``datetime.timestamp()``.
    """
    column = connection.ops.quote_name("purchased_at")
    if connection.vendor == "sqlite":
        return f"CAST({column} AS TEXT)"
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    return column


def _seconds(values: tuple) -> np.ndarray:
    """POSIX seconds from what :func:`_seconds_sql` selected: UTC text, numbers or datetimes."""
    import numpy as np

    if not values:
        return np.zeros(0)
    if isinstance(values[0], str):
        micros = np.array([value[:26] for value in values], dtype="datetime64[us]").astype(np.int64)
        return micros / 1e6
    if isinstance(values[0], int | float):
        return np.asarray(values, dtype=np.float64)
    return np.fromiter((value.timestamp() for value in values), dtype=np.float64, count=len(values))
