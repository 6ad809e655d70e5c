"""Cohort tables: reading CSV, JSON Lines and Parquet as a stream of records, and writing result parts.

Reading never ends a file early and never loses a record: every record of the input comes out as one
:class:`Chunk` row, either its cells or a :class:`BadRecord` saying what is wrong with it and where
(the file line). The caller evaluates the good ones and reports the bad ones, so that *records in =
rows out* always (``postcart.batch.cohort`` checks it at the end of every run).

- **CSV** is parsed by pyarrow (``pyarrow.csv.open_csv``, streaming, one block at a time): quoted cells
  may hold commas, quotes (``""``) and line breaks; CRLF, LF and a UTF-8 byte-order mark are accepted; a
  record with too few or too many cells is a bad record (pyarrow's ``invalid_row_handler``). A quote
  that opens a cell and never closes swallows the following lines into one record: that record is
  reported as bad at its first line and the lines it swallowed are read again as records of their own
  (the reader is not lost for the rest of the file, as it was when quotes were counted by hand). Lines
  holding only separators or nothing are blank lines, not records.
- Bytes that are not UTF-8 are kept visible (each becomes a private-use character, ``U+10FF00 +
  byte``) so that the record holding them is reported, with its line and the byte, when it is read,
  not after the whole file.
- **JSON Lines**: one record per line, read by the strict JSON reader of :mod:`postcart.documents`
  (duplicate keys refused); the record number is the line number.
- **Parquet**: pyarrow record batches.

CSV cells are text; :func:`cell_value` converts a cell to the field's type strictly (decimal digits for
an integer, ``true``/``false``/``yes``/``no``/``1``/``0`` for a boolean), and leaves anything else as
text for the input model to refuse with the field named.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postcart.rulebook import Rulebook
from postcart.situation import field_catalogue
from postcart.vocabulary import OPTIONS

__all__ = [
    "FORMATS",
    "LIST_SEPARATOR",
    "BadRecord",
    "Chunk",
    "arrow_schema",
    "cell_value",
    "cohort_format",
    "encode_part",
    "output_columns",
    "read_chunks",
    "read_results",
]

FORMATS = ("csv", "jsonl", "parquet")
#: Separates the members of a list field in a CSV cell (``history.prior_bispecific``).
LIST_SEPARATOR = ";"
LIST_OUTPUT = ("rules", "missing_information", "error_fields")
_BLOCK_SIZE = 1 << 20
#: Undecodable byte b is read as this code point + b (private use; never in a clinical table).
_BYTE_MARK = 0x10FF00
_MARKED = re.compile("[\U0010ff00-\U0010ffff]")


def _mark_bytes(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    return "".join(chr(_BYTE_MARK + byte) for byte in error.object[error.start:error.end]), error.end


codecs.register_error("postcart-mark-bytes", _mark_bytes)


def cohort_format(path: str | os.PathLike[str]) -> str:
    """The table format of a path from its extension, or ValueError naming the allowed ones."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in {"jsonl", "ndjson"}:
        return "jsonl"
    if suffix in ("csv", "parquet"):
        return suffix
    raise ValueError(f"{path}: unknown table format '.{suffix}'; expected .csv, .jsonl or .parquet")


def output_columns(rulebook: Rulebook) -> tuple[str, ...]:
    """The output columns for a rulebook (its derived facts each get a column)."""
    return ("row", "line", "patient_id", "status", *OPTIONS, "rules", "missing_information",
            *(f"derived.{name}" for name in sorted(rulebook.facts)), "error", "error_fields")


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be read as cells: what is wrong, and the file line it starts on."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


@dataclass(frozen=True)
class Chunk:
    """Consecutive input records, the unit of parallel work and of resuming.

    ``kind`` says what ``rows`` holds: ``values``, one tuple of cells (text or None) per record, or a
    :class:`BadRecord`, under ``columns``, with ``lines`` the file line of each record; ``jsonl``, raw
    lines (a line that is not UTF-8 arrives as a :class:`BadRecord`); ``arrow``, a ``pyarrow.RecordBatch``.
    """

    index: int
    first_row: int
    kind: str
    columns: tuple[str, ...] | None
    rows: Any
    lines: tuple[int, ...] | None = None

    def __len__(self) -> int:
        return int(self.rows.num_rows) if self.kind == "arrow" else len(self.rows)


# --------------------------------------------------------------------------------------------------
# reading


def read_chunks(path: Path, chunk_size: int) -> Iterator[Chunk]:
    """The input as consecutive chunks of ``chunk_size`` records, read as a stream.

    Raises:
        ValueError: the file cannot be read as a table at all (no header, a column named twice, not a
            Parquet file); the message names the file.
    """
    input_format = cohort_format(path)
    if input_format == "csv":
        yield from _csv_chunks(path, chunk_size)
    elif input_format == "jsonl":
        yield from _jsonl_chunks(path, chunk_size)
    else:
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        try:
            parquet = pq.ParquetFile(path)
        except Exception as error:  # pyarrow raises its own ArrowInvalid / OSError kinds
            raise ValueError(f"{path}: not a readable Parquet file ({error})") from None
        index, first = 0, 1
        for batch in parquet.iter_batches(batch_size=chunk_size):
            yield Chunk(index, first, "arrow", tuple(batch.schema.names), batch)
            index, first = index + 1, first + batch.num_rows


def _jsonl_chunks(path: Path, chunk_size: int) -> Iterator[Chunk]:
    index, first = 0, 1
    batch: list[Any] = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                batch.append(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                batch.append(BadRecord(f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column "
                                       f"{error.start + 1})", number))
            if len(batch) == chunk_size:
                yield Chunk(index, first, "jsonl", None, batch)
                index, first, batch = index + 1, first + len(batch), []
    if batch:
        yield Chunk(index, first, "jsonl", None, batch)


class _MarkedUtf8:
    """A binary file read as UTF-8 with each undecodable byte made a visible private-use character."""

    def __init__(self, raw: Any, *, bare_cr: bool = False) -> None:
        self.raw = raw
        self.decoder = codecs.getincrementaldecoder("utf-8")("postcart-mark-bytes")
        self.closed = False
        self.bare_cr = bare_cr

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size and size > 0 else -1)
        text = self.decoder.decode(data, final=not data)
        return (text.replace("\r", "\n") if self.bare_cr else text).encode("utf-8")

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


def _header(path: Path) -> tuple[tuple[str, ...], int, bool]:
    """The column names (first line), the byte length of the header line, and whether the file ends its
    lines with a bare CR (old Mac spreadsheets): such a file is read with each CR as a line break."""
    with open(path, "rb") as handle:
        first = handle.readline(1 << 20)
    cr = first.find(b"\r")
    bare_cr = cr != -1 and first[cr + 1:cr + 2] != b"\n"
    if bare_cr:
        first = first[:cr + 1]
    text = first.removeprefix(codecs.BOM_UTF8).decode("utf-8", "postcart-mark-bytes")
    if not text.strip():
        raise ValueError(f"{path}: no header line (the first line names the columns)")
    (names,) = list(csv.reader([text])) or [[]]
    columns = tuple(name.strip() for name in names)
    if _MARKED.search(text):
        raise ValueError(f"{path}:1: the header is not UTF-8 text")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise ValueError(f"{path}:1: column {repeated[0]} is named twice in the header")
    return columns, len(first), bare_cr


def _csv_records(source: Any, columns: tuple[str, ...], first_line: int) -> Iterator[tuple[int, Any]]:
    """(file line, cells or BadRecord) of every record of a CSV stream without its header."""
    import pyarrow as pa
    import pyarrow.csv as pacsv  # type: ignore[import-untyped]

    invalid: list[tuple[int, str]] = []

    def handler(row: Any) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    names = [f"c{index}" for index in range(len(columns))]  # header names may be anything, even empty
    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=_BLOCK_SIZE, column_names=names),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=handler,
                                         ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                             strings_can_be_null=False, quoted_strings_can_be_null=False))
    line = first_line
    position = 0  # pyarrow's 1-based record number of the last record handed out
    width = len(columns)

    def bad_records(text: str) -> Iterator[tuple[int, Any]]:
        nonlocal line
        head, newline, rest = text.partition("\n")
        got = len(next(csv.reader([head]), []))
        message = f"expected {width} cells (one per column), got {got}"
        if newline:
            message = (f"a quoted cell opened on this line never closes, so it swallowed {rest.count(chr(10)) + 1} "
                       f"more line(s), each read again as a record of its own: {message}")
        yield line, BadRecord(message, line)
        line += 1
        # the lines an unclosed quote swallowed: each parsed alone (csv), so one bad quote costs one record
        for swallowed in rest.splitlines():
            cells = tuple(next(csv.reader([swallowed]), []))
            if len(cells) == width:
                yield from good(cells)
                continue
            if swallowed.strip(" ,"):
                yield line, BadRecord(f"expected {width} cells (one per column), got {len(cells)}", line)
            line += 1

    def records(values: list[tuple[str, ...]]) -> Iterator[tuple[int, Any]]:
        nonlocal line, position
        cursor = 0
        for number, text in sorted(invalid):
            while position + 1 < number and cursor < len(values):
                yield from good(values[cursor])
                cursor += 1
                position += 1
            position += 1
            yield from bad_records(text)
        invalid.clear()
        for cells in values[cursor:]:
            yield from good(cells)
            position += 1

    free_text = columns.index("patient_id") if "patient_id" in columns else -1

    def swallowed(index: int, cell: str) -> bool:
        """A line break in a cell is a quote that swallowed lines, unless it is in the patient label and
        no continuation line looks like a record (a table row has a separator per column)."""
        if index != free_text:
            return True  # no clinical field holds a line break
        return any(part.count(",") >= width - 1 for part in cell.split("\n")[1:])

    def good(cells: tuple[str, ...]) -> Iterator[tuple[int, Any]]:
        nonlocal line
        start = line
        line += 1 + sum(cell.count("\n") for cell in cells)
        if not any(cells) or all(not cell.strip() for cell in cells):
            return  # a blank line (or only separators): not a record
        broken = next((index for index, cell in enumerate(cells) if "\n" in cell and swallowed(index, cell)), None)
        if broken is not None:
            yield from split_swallowed(start, cells, broken)
            return
        marked = next((cell for cell in cells if _MARKED.search(cell)), None)
        if marked is not None:
            byte = ord(_MARKED.search(marked).group()) - _BYTE_MARK  # type: ignore[union-attr]
            column = columns[cells.index(marked)]
            yield start, BadRecord(f"not UTF-8 text (byte 0x{byte:02x} in column {column})", start)
            return
        yield start, cells

    def split_swallowed(start: int, cells: tuple[str, ...], broken: int) -> Iterator[tuple[int, Any]]:
        """A quoted cell that ran over lines up to the next quote: its first and last line are bad records,
        the lines between are read again one by one (csv), each a record of its own."""
        nonlocal line
        end = line
        inner = cells[broken].split("\n")
        yield start, BadRecord(f"a quote in column {columns[broken]} opens a cell that runs over the next "
                               f"{len(inner) - 1} line(s) to another quote: the lines between are read as records "
                               "of their own", start)
        line = start + 1
        for text in inner[1:-1]:
            parsed = tuple(next(csv.reader([text]), []))
            if len(parsed) == width:
                yield from good(parsed)
            else:
                if text.strip(" ,"):
                    yield line, BadRecord(f"expected {width} cells (one per column), got {len(parsed)}", line)
                line += 1
        yield line, BadRecord(f"the quote that closes the cell opened on line {start}", line)
        line = end

    try:
        for batch in reader:
            values = list(zip(*(column.to_pylist() for column in batch.columns), strict=True))
            if not invalid and _plain(batch):  # the usual block: one line per record, nothing to check
                start = line
                line += len(values)
                position += len(values)
                yield from zip(range(start, line), values, strict=True)
            else:
                yield from records(values)
        yield from records([])
    except pa.ArrowInvalid as error:  # pyarrow could not go on (it reports what and where)
        yield line, BadRecord(f"the rest of the file cannot be read as CSV: {error}", line)


_SUSPECT = "[\n\U0010ff00-\U0010ffff]"  # a line break or a marked byte (RE2 syntax, run by pyarrow)


def _plain(batch: Any) -> bool:
    """No cell holds a line break or an undecodable byte, and no record is blank (checked by pyarrow)."""
    import pyarrow.compute as pc  # type: ignore[import-untyped]

    blank = None
    for column in batch.columns:
        if pc.any(pc.match_substring_regex(column, _SUSPECT)).as_py():
            return False
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0)
        blank = empty if blank is None else pc.and_(blank, empty)
    return blank is None or not pc.any(blank).as_py()


def _csv_chunks(path: Path, chunk_size: int) -> Iterator[Chunk]:
    columns, header_bytes, bare_cr = _header(path)
    index, first = 0, 1
    rows: list[Any] = []
    lines: list[int] = []
    with open(path, "rb") as raw:
        raw.seek(header_bytes)
        for line, record in _csv_records(_MarkedUtf8(raw, bare_cr=bare_cr), columns, 2):
            rows.append(record)
            lines.append(line)
            if len(rows) == chunk_size:
                yield Chunk(index, first, "values", columns, rows, tuple(lines))
                index, first, rows, lines = index + 1, first + len(rows), [], []
    if rows:
        yield Chunk(index, first, "values", columns, rows, tuple(lines))


_INTEGER = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLEAN = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def cell_value(kind: str, text: str) -> Any:
    """A CSV cell as the value of a field of this kind (``int``, ``float``, ``bool``), strictly.

    A cell that is not plainly of the kind is returned as text, for the input model to refuse by name.

    >>> cell_value("int", "58"), cell_value("int", "5_8"), cell_value("int", "58.0"), cell_value("bool", "Yes")
    (58, '5_8', '58.0', True)
    """
    if kind == "int":
        if len(text) <= 18 and ((text.isdigit() and text.isascii()) or _INTEGER.fullmatch(text)):
            return int(text)
        return text
    if kind == "float":
        return float(text) if len(text) <= 40 and _NUMBER.fullmatch(text) else text
    if kind == "bool":
        return _BOOLEAN.get(text.lower(), text)
    return text


def cell_kinds() -> dict[str, str]:
    """The kind of each typed field, by dotted path (the fields whose CSV cells are converted)."""
    return {path: spec.kind for path, spec in field_catalogue().items() if spec.kind in ("int", "float", "bool")}


# --------------------------------------------------------------------------------------------------
# writing output parts and reading them back


def encode_part(rows: list[dict[str, Any]], columns: tuple[str, ...], output_format: str) -> bytes:
    """Rows -> bytes of one output part (CSV without header, JSON Lines, or a Parquet file)."""
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        join = LIST_SEPARATOR.join
        for row in rows:
            writer.writerow(["" if value is None else join(value) if type(value) is list else value
                             for value in map(row.__getitem__, columns)])
        return buffer.getvalue().encode("utf-8")
    if output_format == "jsonl":
        return "".join(json.dumps({column: row[column] for column in columns}, ensure_ascii=False) + "\n"
                       for row in rows).encode("utf-8")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=arrow_schema(columns))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def csv_header(columns: tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(columns)
    return buffer.getvalue().encode("utf-8")


def arrow_schema(columns: tuple[str, ...]) -> Any:
    import pyarrow as pa

    fields = []
    for column in columns:
        if column in ("row", "line"):
            fields.append(pa.field(column, pa.int64()))
        elif column in LIST_OUTPUT:
            fields.append(pa.field(column, pa.list_(pa.string())))
        else:
            fields.append(pa.field(column, pa.string()))
    return pa.schema(fields)


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read an output file back as rows (lists as lists, empty as None), whatever its format."""
    output_format = cohort_format(path)
    if output_format == "parquet":
        import pyarrow.parquet as pq

        return [dict(row) for row in pq.read_table(path).to_pylist()]
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", newline="") as handle:
        if output_format == "jsonl":
            return [json.loads(line) for line in handle if line.strip()]
        for record in csv.DictReader(handle):
            row: dict[str, Any] = {}
            for column, value in record.items():
                if column in ("row", "line"):
                    row[column] = int(value) if value else None
                elif column in LIST_OUTPUT:
                    row[column] = value.split(LIST_SEPARATOR) if value else []
                else:
                    row[column] = value if value != "" else None
            rows.append(row)
    return rows
