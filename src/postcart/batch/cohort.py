"""Cohorts: tables of patient situations evaluated in bulk, streaming, resumable, in parallel.

Input and output formats follow the file extension: ``.csv``, ``.jsonl`` (JSON Lines) or ``.parquet``
(reading and writing: :mod:`postcart.batch.tables`; evaluating records: :mod:`postcart.batch.evaluator`).

Input columns are the situation's dotted field names (``age``, ``car_t.product``,
``failure.months_since_infusion`` ...); JSON Lines records may also be nested. An empty cell (or a null,
or a NaN) means *not given*. The list field ``history.prior_bispecific`` is written in a cell as its
members separated by ``;`` (``CD20xCD3;CD19xCD3``); Parquet and JSON may also hold a real list. CSV
cells are text: numbers and booleans (``true``/``false``, ``yes``/``no``, ``1``/``0``) are converted
strictly (``5_8`` or ``58.0`` is not an age), so a bad cell gets the same error, naming the field, as any
bad input.

One output row per input record, in input order, with the columns of
:func:`~postcart.batch.tables.output_columns`: ``row`` (1-based record number), ``line`` (the file
line the record starts on; empty for Parquet), ``patient_id``, ``status`` (``ok``, ``invalid`` or ``error``), one column per option holding its
verdict (empty: not addressed), ``rules``, ``missing_information``, one ``derived.<fact>`` column per
derived fact, ``error`` (the validation error naming each field, or for a record the reader could not
read, its file line and what is wrong) and ``error_fields``. In CSV, lists are ``;``-joined.

**Nothing is lost.** Every record the reader yields becomes exactly one output row; at the end of every
run the summary checks and prints *records read = rows written* (``ok + invalid + error``), resumed
parts included, and a run where they differ fails (:class:`CohortIncomplete`).

How a run works. The input is read as a stream and cut into chunks of ``chunk_size`` records; each chunk
is evaluated (in this process, in ``--workers`` processes, or on a Dask cluster) and its encoded result
written atomically to ``OUTPUT.parts/``. A resumed run skips the chunks found there when the manifest
matches: the SHA-256 of the input's *content*, the rulebook's content hash and rule ids, the output
format and the chunk size (a corrected row changes the hash: everything is evaluated again). At the end
the parts are concatenated into a temporary file that is renamed to ``OUTPUT``: the output file is never
half-written. Memory is bounded by the chunks in flight, not by the cohort.

Safety. The output may not be the input (the same path or a hard link of it). SIGTERM and SIGINT stop
the run: worker processes are terminated and reaped, temporary files removed, finished parts kept for a
resume; a worker whose parent disappeared (kill -9) exits by itself within a second. A write that fails
(disk full, permission) is reported with the path (``ValueError``, exit 2).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postcart.batch.evaluator import ChunkResult, Evaluator
from postcart.batch.tables import Chunk, arrow_schema, cohort_format, csv_header, output_columns, read_chunks
from postcart.rulebook import Rulebook

__all__ = ["CohortIncomplete", "CohortSummary", "run_cohort"]


class CohortIncomplete(ValueError):
    """The rows written do not account for every record read (a bug: the run is refused, exit 2)."""



@dataclass
class CohortSummary:
    """What a cohort run did: counts, speed, and where the invalid rows went wrong."""

    output: str
    rows: int = 0
    ok: int = 0
    invalid: int = 0
    error: int = 0
    resumed_rows: int = 0
    evaluated_rows: int = 0
    engine_runs: int = 0
    seconds: float = 0.0
    invalid_fields: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    records_read: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.evaluated_rows / self.seconds if self.seconds else 0.0

    def text(self) -> str:
        lines = [f"{self.rows} rows -> {self.output}: {self.ok} ok, {self.invalid} invalid, {self.error} error",
                 f"records read {self.records_read} = rows written {self.ok + self.invalid + self.error}"
                 f"{'' if self.records_read == self.ok + self.invalid + self.error else '  MISMATCH'}"]
        if self.resumed_rows:
            lines.append(f"resumed: {self.resumed_rows} rows already done, {self.evaluated_rows} evaluated now")
        lines.append(f"{self.evaluated_rows} rows in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s; "
                     f"durable-rules ran {self.engine_runs} times: only for outcomes not seen before)")
        if self.invalid_fields:
            worst = ", ".join(f"{name} ({count})" for name, count in self.invalid_fields.most_common(10))
            lines.append(f"invalid rows by field: {worst}")
        lines.extend(self.notes)
        return "\n".join(lines)


Progress = Callable[[int], None]


def run_cohort(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], rulebook: Rulebook, *,
               workers: int = 1, dask_address: str | None = None, chunk_size: int = 5000,
               restart: bool = False, progress: Progress | None = None, cache: bool = True) -> CohortSummary:
    """Evaluate every record of a cohort table and write one result row per record.

    Args:
        workers: processes on this machine (1: in this process).
        dask_address: a ``dask.distributed`` scheduler address (or a ``Client``); chunks are evaluated
            on its workers. Overrides ``workers``.
        chunk_size: records per chunk (the unit of parallel work, of resuming and of memory).
        restart: discard the parts of an interrupted run instead of resuming it.
        progress: called with the number of rows finished after every chunk.
        cache: reuse engine results across equal signatures (default); ``False`` runs durable-rules and
            builds the assessment for every row (for comparisons and benchmarks).

    Raises:
        ValueError: an unknown table format, an unreadable input, an output that is the input, or a write
            that failed (the message names the file).
        CohortIncomplete: the rows written do not account for every record read.
    """
    source, target = Path(input_path), Path(output_path)
    output_format = cohort_format(target)
    cohort_format(source)
    if not source.is_file():
        raise ValueError(f"{source}: no such cohort file")
    _refuse_overwriting_input(source, target)
    manifest = _manifest(source, rulebook, output_format, chunk_size)
    with _signals_as_interrupts():
        parts = _io(target.parent, lambda: _Parts(target, output_format, manifest, restart))
        summary = CohortSummary(output=str(target))
        if parts.discarded:
            summary.notes.append("an earlier partial run did not match this input's content, rulebook or settings: "
                                 "started over")
        for counts in parts.done.values():
            summary.resumed_rows += counts["counts"]["rows"]
        started = time.perf_counter()
        finished_rows = summary.resumed_rows
        if progress:
            progress(finished_rows)
        records_read = 0

        def pending() -> Iterator[Chunk]:
            nonlocal records_read
            for chunk in read_chunks(source, chunk_size):
                records_read += len(chunk)
                if chunk.index not in parts.done:
                    yield chunk

        def record(result: ChunkResult) -> None:
            nonlocal finished_rows
            _io(parts.directory, lambda: parts.write(result))
            finished_rows += result.counts["rows"]
            summary.evaluated_rows += result.counts["rows"]
            summary.engine_runs += result.counts.get("engine_runs", 0)
            if progress:
                progress(finished_rows)

        if dask_address is not None:
            _run_dask(pending(), rulebook, output_format, dask_address, workers, record, cache)
        elif workers > 1:
            _run_processes(pending(), rulebook, output_format, workers, record, cache)
        else:
            evaluator = Evaluator(rulebook, cache)
            try:
                for chunk in pending():
                    record(evaluator.evaluate_chunk(chunk, output_format))
            finally:
                evaluator.close()
        for counts in parts.done.values():
            summary.rows += counts["counts"]["rows"]
            summary.ok += counts["counts"]["ok"]
            summary.invalid += counts["counts"]["invalid"]
            summary.error += counts["counts"]["error"]
            summary.invalid_fields.update(counts["invalid_fields"])
        summary.records_read = records_read
        if summary.rows != records_read or summary.ok + summary.invalid + summary.error != records_read:
            raise CohortIncomplete(f"{source}: {records_read} records read but {summary.rows} rows written "
                                   f"({summary.ok} ok + {summary.invalid} invalid + {summary.error} error); the "
                                   f"output is not written and the parts are kept in {parts.directory}")
        _io(target, lambda: parts.merge(output_columns(rulebook)))
        summary.seconds = time.perf_counter() - started
        parts.remove()
    return summary


def _refuse_overwriting_input(source: Path, target: Path) -> None:
    """The output may not be the input: the same path, or another name of the same file (a hard link)."""
    same = source.resolve() == target.resolve()
    if not same and target.exists():
        with contextlib.suppress(OSError):
            same = os.path.samefile(source, target)
    if same:
        raise ValueError(f"{target}: the output is the input cohort {source} (the same file); writing it would "
                         "destroy the input: choose another --output")


def _io(path: Path, action: Callable[[], Any]) -> Any:
    """Run a file operation; an OSError (disk full, permission) becomes a ValueError naming the path."""
    try:
        return action()
    except OSError as error:
        where = error.filename or path
        raise ValueError(f"{where}: cannot write: {error.strerror or type(error).__name__}") from None


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that the run stops as it does on Ctrl-C (``signal``: its number,
    for the conventional exit status 128 + signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signal = signum


@contextlib.contextmanager
def _signals_as_interrupts() -> Iterator[None]:
    """While a run is going, SIGTERM stops it like SIGINT (workers terminated, temporary files removed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _content_hash(source: Path) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(source: Path, rulebook: Rulebook, output_format: str, chunk_size: int) -> dict[str, Any]:
    """What a resumed run must share with the interrupted one: the input's content (not its size and
    modification time: a corrected row keeps both), the rulebook, the output format and the chunking."""
    return {"input": str(source.resolve()), "sha256": _content_hash(source),
            "rulebook": rulebook.content_hash, "rules": sorted(rule.id for rule in rulebook.rules),
            "format": output_format, "chunk_size": chunk_size}


class _Parts:
    """``OUTPUT.parts/``: one atomically written file per finished chunk, plus its counts."""

    def __init__(self, target: Path, output_format: str, manifest: dict[str, Any], restart: bool) -> None:
        self.target = target
        self.format = output_format
        self.directory = target.with_name(target.name + ".parts")
        self.done: dict[int, dict[str, Any]] = {}
        self.discarded = False
        manifest_file = self.directory / "manifest.json"
        if self.directory.exists():
            try:
                previous = json.loads(manifest_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                previous = None
            if restart or previous != manifest:
                self.discarded = not restart
                shutil.rmtree(self.directory)
        if not self.directory.exists():
            self.directory.mkdir(parents=True)
            _atomic_write(manifest_file, json.dumps(manifest).encode())
        for counts_file in self.directory.glob("part-*.json"):
            index = int(counts_file.stem.removeprefix("part-"))
            if self._part(index).exists():
                self.done[index] = json.loads(counts_file.read_text(encoding="utf-8"))
        for stale in self.directory.glob(".*.tmp"):  # left by a run killed mid-write
            stale.unlink(missing_ok=True)

    def _part(self, index: int) -> Path:
        return self.directory / f"part-{index:08d}.{self.format}"

    def write(self, result: ChunkResult) -> None:
        counts = {"counts": result.counts, "invalid_fields": result.invalid_fields}
        _atomic_write(self.directory / f"part-{result.index:08d}.json", json.dumps(counts).encode())
        _atomic_write(self._part(result.index), result.payload)  # its presence marks the chunk done
        self.done[result.index] = counts

    def merge(self, columns: tuple[str, ...]) -> None:
        """Concatenate the parts in order into a temporary file, then rename it onto the output."""
        temporary = self.target.with_name(f".{self.target.name}.{os.getpid()}.tmp")
        try:
            if self.format == "parquet":
                import pyarrow.parquet as pq  # type: ignore[import-untyped]

                with pq.ParquetWriter(temporary, arrow_schema(columns)) as writer:
                    for index in sorted(self.done):
                        writer.write_table(pq.read_table(self._part(index)))
            else:
                with open(temporary, "wb") as out:
                    if self.format == "csv":
                        out.write(csv_header(columns))
                    for index in sorted(self.done):
                        with open(self._part(index), "rb") as part:
                            shutil.copyfileobj(part, out)
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(temporary, self.target)
        finally:
            temporary.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _atomic_write(path: Path, payload: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------
# parallel drivers: processes on this machine, or a Dask cluster


_WORKER: dict[tuple[str, bool], Evaluator] = {}
_WORKER_LOCK = threading.Lock()


def _worker_evaluator(rulebook: Rulebook, cache: bool) -> Evaluator:
    """This process's evaluator for a rulebook (created once per process, reused by every chunk)."""
    key = (rulebook.memo_key, cache)
    with _WORKER_LOCK:
        evaluator = _WORKER.get(key)
        if evaluator is None:
            evaluator = _WORKER[key] = Evaluator(rulebook, cache)
        return evaluator


def _process_chunk(rulebook: Rulebook, cache: bool, chunk: Chunk, output_format: str) -> ChunkResult:
    return _worker_evaluator(rulebook, cache).evaluate_chunk(chunk, output_format)


_PROCESS_RULEBOOK: list[Rulebook] = []


def _watch_parent(parent: int) -> None:
    """Exit when the process that started the run is gone (killed with -9: nobody reaps this worker)."""
    while True:
        time.sleep(0.5)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # a pid reused by another user's process: ours is gone
            os._exit(1)


def _init_process(rulebook: Rulebook, cache: bool, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="postcart-parent-watch").start()
    _PROCESS_RULEBOOK[:] = [rulebook]  # sent once per process, not with every chunk
    _worker_evaluator(rulebook, cache)


def _process_local_chunk(cache: bool, chunk: Chunk, output_format: str) -> ChunkResult:
    return _process_chunk(_PROCESS_RULEBOOK[0], cache, chunk, output_format)


def _run_processes(chunks: Iterator[Chunk], rulebook: Rulebook, output_format: str, workers: int,
                   record: Callable[[ChunkResult], None], cache: bool) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    # forkserver: workers never inherit this process's threads or durable-rules state
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["postcart.batch.cohort"])
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_process,
                               initargs=(rulebook, cache, os.getpid()))
    in_flight: set[Future[ChunkResult]] = set()
    try:
        for chunk in chunks:
            in_flight.add(pool.submit(_process_local_chunk, cache, chunk, output_format))
            if len(in_flight) >= 2 * workers:
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in sorted(finished, key=id):
                    record(future.result())
        for future in in_flight:
            record(future.result())
        in_flight = set()
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown(wait=True)


def _terminate(pool: Any) -> None:
    """Stop a process pool now: cancel what is queued, terminate and reap every worker, in bounded time.

    The pool's own shutdown is not bounded once its workers are gone: its queue-feeding thread can stay
    blocked writing a chunk into a pipe nobody reads (seen once in CI, under load, as a run that did not
    exit after SIGTERM). So the workers are terminated first, the pipe's write end is closed to unblock
    that thread, and the pool's management thread is given a bounded time to finish.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(3)
            if process.is_alive():
                process.kill()
                process.join(3)
    queue = getattr(pool, "_call_queue", None)
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(3)
    if manager is not None and manager.is_alive() and queue is not None:
        with contextlib.suppress(Exception):
            queue._writer.close()  # unblock a feeder stuck in send_bytes
        manager.join(3)


def _run_dask(chunks: Iterator[Chunk], rulebook: Rulebook, output_format: str, address: Any, workers: int,
              record: Callable[[ChunkResult], None], cache: bool) -> None:
    from distributed import Client, as_completed

    client = address if isinstance(address, Client) else Client(address)  # type: ignore[no-untyped-call]
    try:
        shared = client.scatter(rulebook, broadcast=True)  # type: ignore[no-untyped-call]
        limit = 2 * max(workers, len(client.scheduler_info().get("workers", {})) or 1)
        futures = as_completed()  # type: ignore[no-untyped-call]
        for chunk in chunks:
            future = client.submit(_process_chunk, shared, cache, chunk, output_format, pure=False)
            futures.add(future)  # type: ignore[no-untyped-call]
            if futures.count() >= limit:  # type: ignore[no-untyped-call]
                record(next(futures).result())
        for future in futures:
            record(future.result())
    finally:
        if client is not address:
            client.close()  # type: ignore[no-untyped-call]
