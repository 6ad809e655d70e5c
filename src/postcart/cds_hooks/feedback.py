"""Clinicians' feedback on the cards: which cards were shown, accepted or overridden, and why.

Stored with SQLAlchemy in any database it supports (SQLite by default). Nothing about the patient is
stored: a card is kept as its uuid, the option, verdict and rule ids it carried and the rulebook
version; feedback as the outcome, the coded override reason and the time. Free-text comments
(``overrideReason.userComment``) may name the patient and are not stored.

The report gives each rule's override rate: overridden / (accepted + overridden) over the cards the rule
spoke to -- the signal that a rule is wrong or noisy.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine as SqlEngine
from sqlalchemy.pool import StaticPool

__all__ = ["DEFAULT_DATABASE_URL", "CardRecorder", "FeedbackStore", "IssuedCard", "RuleRate"]

log = logging.getLogger("postcart.cds_hooks.feedback")

DEFAULT_DATABASE_URL = "sqlite:///postcart-feedback.sqlite3"

_metadata = MetaData()

cards_table = Table(
    "issued_cards", _metadata,
    Column("uuid", String(64), primary_key=True),
    Column("service_id", String(128), nullable=False),
    Column("kind", String(32), nullable=False),  # option | missing_information | record_not_read
    Column("option", String(64)),
    Column("verdict", String(32)),
    Column("rulebook_version", String(64), nullable=False),
    Column("issuer", String(512)),  # the verified iss of the client the card was issued to (none without auth)
    Column("issued_at", DateTime(timezone=True), nullable=False),
)

card_rules_table = Table(
    "card_rules", _metadata,
    Column("card_uuid", String(64), ForeignKey("issued_cards.uuid"), primary_key=True),
    Column("rule_id", String(200), primary_key=True),
)

feedback_table = Table(
    "feedback", _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("card_uuid", String(64), ForeignKey("issued_cards.uuid"), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),  # accepted | overridden
    Column("override_reason", String(64)),
    Column("accepted_suggestions", Integer, nullable=False, default=0),
    Column("outcome_at", DateTime(timezone=True)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("card_uuid", "outcome", name="one_outcome_per_card"),
)


@dataclass(frozen=True)
class IssuedCard:
    """A card as stored: no patient data."""

    uuid: str
    service_id: str
    kind: str
    option: str | None
    verdict: str | None
    rules: tuple[str, ...]
    rulebook_version: str


@dataclass(frozen=True)
class RuleRate:
    """How clinicians answered the cards a rule spoke to."""

    rule: str
    cards_shown: int
    accepted: int
    overridden: int

    @property
    def override_rate(self) -> float | None:
        answered = self.accepted + self.overridden
        return self.overridden / answered if answered else None

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "cards_shown": self.cards_shown, "accepted": self.accepted,
                "overridden": self.overridden, "override_rate": self.override_rate}


class FeedbackStore:
    """Cards issued and the feedback on them, in a SQLAlchemy database. Thread-safe."""

    def __init__(self, url: str = DEFAULT_DATABASE_URL) -> None:
        options: dict[str, Any] = {}
        if url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if ":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite:/"):
                options["poolclass"] = StaticPool  # one in-memory database shared by every thread, not one each
        self.url = url
        self.engine: SqlEngine = create_engine(url, **options)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._write_lock = threading.Lock() if url.startswith("sqlite") else None
        _metadata.create_all(self.engine)
        self._upgrade()

    def _upgrade(self) -> None:
        """A database written before cards named their issuer gets the column (its old cards: no issuer)."""
        columns = {column["name"] for column in inspect(self.engine).get_columns("issued_cards")}
        if "issuer" not in columns:
            with self.engine.begin() as connection:
                connection.execute(text("ALTER TABLE issued_cards ADD COLUMN issuer VARCHAR(512)"))

    def close(self) -> None:
        self.engine.dispose()

    def _writing(self) -> Any:
        return self._write_lock if self._write_lock is not None else _NoLock()

    def record_cards(self, cards: Iterable[IssuedCard], issuer: str | None = None) -> None:
        """Remember the cards just issued, so that feedback can be tied to the rules behind them."""
        now = dt.datetime.now(dt.UTC)
        cards = list(cards)
        if not cards:
            return
        with self._writing(), self.engine.begin() as connection:
            connection.execute(insert(cards_table), [
                {"uuid": card.uuid, "service_id": card.service_id, "kind": card.kind, "option": card.option,
                 "verdict": card.verdict, "rulebook_version": card.rulebook_version, "issuer": issuer,
                 "issued_at": now}
                for card in cards])
            rows = [{"card_uuid": card.uuid, "rule_id": rule} for card in cards for rule in dict.fromkeys(card.rules)]
            if rows:
                connection.execute(insert(card_rules_table), rows)

    def known_cards(self, uuids: Iterable[str], service_id: str, issuer: str | None = None) -> set[str]:
        """The uuids among these that this service issued to this issuer (``None``: issued without authentication)."""
        wanted = list(set(uuids))
        if not wanted:
            return set()
        same_issuer = cards_table.c.issuer.is_(None) if issuer is None else cards_table.c.issuer == issuer
        with self.engine.connect() as connection:
            found = connection.execute(select(cards_table.c.uuid).where(
                cards_table.c.uuid.in_(wanted), cards_table.c.service_id == service_id, same_issuer))
            return {row[0] for row in found}

    def record_feedback(self, items: Iterable[dict[str, Any]]) -> int:
        """Store outcomes: ``{card, outcome, override_reason, accepted_suggestions, outcome_at}``.

        One outcome per card and kind: an outcome already recorded for a card is not stored again (an EHR may
        resend; a caller may try to weigh a rule). Returns how many were stored.
        """
        now = dt.datetime.now(dt.UTC)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for item in items:
            rows.setdefault((item["card"], item["outcome"]), {
                "card_uuid": item["card"], "outcome": item["outcome"], "override_reason": item.get("override_reason"),
                "accepted_suggestions": item.get("accepted_suggestions", 0), "outcome_at": item.get("outcome_at"),
                "received_at": now})
        if not rows:
            return 0
        with self._writing(), self.engine.begin() as connection:
            cards = list({card for card, _ in rows})
            recorded = {(row.card_uuid, row.outcome) for row in connection.execute(
                select(feedback_table.c.card_uuid, feedback_table.c.outcome).where(feedback_table.c.card_uuid.in_(cards)))}
            new = [row for key, row in rows.items() if key not in recorded]
            if new:
                connection.execute(insert(feedback_table), new)
        return len(new)

    def override_rates(self) -> list[RuleRate]:
        """Per rule: cards shown, accepted, overridden; sorted by override rate, highest first."""
        shown = (select(card_rules_table.c.rule_id, func.count().label("n"))
                 .group_by(card_rules_table.c.rule_id))
        answered = (select(card_rules_table.c.rule_id, feedback_table.c.outcome, func.count().label("n"))
                    .join(feedback_table, feedback_table.c.card_uuid == card_rules_table.c.card_uuid)
                    .group_by(card_rules_table.c.rule_id, feedback_table.c.outcome))
        with self.engine.connect() as connection:
            counts = {row.rule_id: [row.n, 0, 0] for row in connection.execute(shown)}
            for row in connection.execute(answered):
                counts[row.rule_id][1 if row.outcome == "accepted" else 2] += row.n
        rates = [RuleRate(rule, *values) for rule, values in counts.items()]
        rates.sort(key=lambda rate: (-(rate.override_rate or 0.0), -(rate.accepted + rate.overridden), rate.rule))
        return rates

    def override_reasons(self) -> dict[str, int]:
        """How often each coded override reason was given."""
        query = (select(feedback_table.c.override_reason, func.count().label("n"))
                 .where(feedback_table.c.outcome == "overridden")
                 .group_by(feedback_table.c.override_reason))
        with self.engine.connect() as connection:
            return {row.override_reason or "(none given)": row.n for row in connection.execute(query)}


class CardRecorder:
    """Records issued cards off the hook's path: a queue and one writer thread, batching inserts.

    A failure to write (disk full, database unreachable, no store at all) is logged with the error's type
    only, never patient data, and never reaches the hook call. :meth:`flush` waits until what was queued is
    written (the feedback endpoint calls it before looking cards up).
    """

    def __init__(self, store: FeedbackStore | None) -> None:
        self.store = store
        self._queue: queue.Queue[tuple[list[IssuedCard], str | None] | None] = queue.Queue(maxsize=10_000)
        self._thread = threading.Thread(target=self._run, name="postcart-card-recorder", daemon=True)
        self._thread.start()

    def record(self, cards: list[IssuedCard], issuer: str | None) -> None:
        """Queue cards for writing; drops them (logged) when the store is absent or the queue is full."""
        if self.store is None or not cards:
            return
        try:
            self._queue.put_nowait((cards, issuer))
        except queue.Full:
            log.error("feedback store: %d issued cards not recorded (write queue full)", len(cards))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued card has been written (or failed to be)."""
        done = threading.Event()
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout)
        while self._queue.unfinished_tasks and dt.datetime.now(dt.UTC) < deadline:
            done.wait(0.005)

    def close(self) -> None:
        self.flush()
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._queue.task_done()
                return
            batch = [item]
            while len(batch) < 200:  # batch what is waiting: one transaction for many calls
                try:
                    extra = self._queue.get_nowait()
                except queue.Empty:
                    break
                if extra is None:
                    self._queue.put(None)
                    self._queue.task_done()
                    break
                batch.append(extra)
            by_issuer: dict[str | None, list[IssuedCard]] = {}
            for cards, issuer in batch:
                by_issuer.setdefault(issuer, []).extend(cards)
            for issuer, cards in by_issuer.items():
                try:
                    assert self.store is not None
                    self.store.record_cards(cards, issuer)
                except Exception as error:  # the hook call already has its answer; say what failed, no data
                    log.error("feedback store: %d issued cards not recorded (%s)", len(cards), type(error).__name__)
            for _ in batch:
                self._queue.task_done()


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL lets readers proceed during a write; NORMAL sync is durable in WAL mode except on power loss.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
