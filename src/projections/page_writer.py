"""The writer of a bulk run's pages, in a process of its own (ADR 0035; PostgreSQL: ADR 0036).

A bulk run (`projections.projector.Projector._run_pipeline`) builds pages of rows in one thread
and writes them in another. On SQLite both threads were in one process, and each needed the
GIL for much of its work: the builder for all of it, the writer while the driver binds each
statement's parameters. Measured on the national log, each thread took 1.7-2.9 times as long
as when the other was idle. So on SQLite the pages are written by this program, a child
process with an interpreter of its own: the projector sends each page's rows down the child's
standard input, and the child commits them, with the read model's position, one transaction a
page, and says so on its standard output.

On PostgreSQL (ADR 0036) the child writes the same way, through psycopg and `COPY`: there the
writer thread's formatting of the COPY rows held the projector's GIL.

For SQLite it imports only the standard library (it starts in ~30 ms, and it can be run as a
file, with no package path); for PostgreSQL it imports psycopg from the projector's own
interpreter. It decides nothing: the rows, the SQL's tables and columns, the pragmas or the
connection string come from the projector. `write_values` is also what the projector's own
writer thread uses.

Frames, both ways: an 8-byte little-endian length, then a pickle. The projector sends a
configuration (a dict), then a tuple (seq, start, last, closes, inserts, log) for each page,
then None. The child answers each page with ("committed", seq); if the read model's position
is not where a page starts (another projector wrote meanwhile) with ("moved", seq, position); if
anything fails with ("error", seq, exception, traceback text) (seq None: the configuration). After "moved" or "error" it writes
nothing more, reads on to the None, and exits.
"""

from __future__ import annotations

import io
import pickle
import sqlite3
import struct
import sys
import traceback
from collections.abc import Sequence
from itertools import chain
from typing import Any, BinaryIO

_LENGTH = struct.Struct("<Q")
SQLITE_LIMIT_VARIABLE_NUMBER = 9  # sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER (Python 3.11+)


def dumps(obj: Any) -> bytes:
    """A pickle without the memo: the pages are lists of fresh texts and numbers, which the
    memo would only index (it made pickling a page 2.7 times as slow)."""
    out = io.BytesIO()
    p = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    p.fast = True  # no memo (the pages hold no object twice that it would matter to share)
    p.dump(obj)
    return out.getvalue()


def send(stream: BinaryIO, obj: Any) -> None:
    data = dumps(obj)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """The next frame's object; EOFError at the end of the stream."""
    head = _read_exactly(stream, _LENGTH.size)
    return pickle.loads(_read_exactly(stream, _LENGTH.unpack(head)[0]))  # noqa: S301 - our own process's


def _read_exactly(stream: BinaryIO, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = stream.read(n - len(buf))
        if not part:
            raise EOFError("the stream ended inside a frame" if buf else "the stream ended")
        buf += part
    return bytes(buf)


def values_sql(table: str, columns: Sequence[str], n: int) -> str:
    one = "(" + ",".join("?" * len(columns)) + ")"
    return f"INSERT INTO {table} ({','.join(columns)}) VALUES " + ",".join([one] * n)


def write_values(cur: sqlite3.Cursor, limit: int, max_rows: int, table: str, columns: Sequence[str],
                 rows: Sequence[Sequence[Any]], sql: dict[tuple[str, int], str]) -> None:
    """Insert `rows` with as few multi-row VALUES statements as the store's limit on variables
    (`limit`) and `max_rows` allow: the driver binds a statement's rows, then SQLite inserts them
    all at once (where `executemany` steps once a row). `max_rows` rows at a time, then powers of
    two, so that the driver compiles few distinct statements; `sql` caches their text."""
    step = 1 << (max(1, min(max_rows, limit // len(columns))).bit_length() - 1)
    i, left = 0, len(rows)
    while left:
        n = step if left >= step else 1 << (left.bit_length() - 1)
        text = sql.get((table, n))
        if text is None:
            text = sql[(table, n)] = values_sql(table, columns, n)
        cur.execute(text, list(chain.from_iterable(rows[i:i + n])))
        i += n
        left -= n


class _Writer:
    def __init__(self, config: dict[str, Any]):
        self.c = config
        self.conn = sqlite3.connect(config["path"], isolation_level=None, timeout=config.get("timeout", 30))
        for pragma in config["pragmas"]:
            self.conn.execute(f"PRAGMA {pragma}")
        self.limit = self.conn.getlimit(SQLITE_LIMIT_VARIABLE_NUMBER)
        self.sql: dict[tuple[str, int], str] = {}
        table, self.name = config["position_table"], config["name"]
        self.ensure = f"INSERT INTO {table} (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING"
        self.read = f"SELECT position FROM {table} WHERE name = ?"
        self.move = f"UPDATE {table} SET position = ? WHERE name = ?"

    def page(self, seq: int, start: int, last: int, closes: list, inserts: list, log: list) -> tuple:
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(self.ensure, (self.name,))
            (position,) = cur.execute(self.read, (self.name,)).fetchone()
            if position != start - 1:  # another projector wrote meanwhile
                cur.execute("ROLLBACK")
                return ("moved", seq, position)
            if closes:
                cur.executemany(self.c["close_sql"], closes)
            for (table, columns), rows in ((self.c["evidence"], inserts), (self.c["log"], log)):
                write_values(cur, self.limit, self.c["values_rows"], table, columns, rows, self.sql)
            cur.execute(self.move, (last, self.name))
            cur.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        finally:
            cur.close()
        return ("committed", seq)


class _PgWriter:
    """The same on PostgreSQL (ADR 0036): psycopg, the rows by `COPY`, each page's commit not
    waiting for the WAL flush (as the projector's writer thread does, `BULK_ASYNC_COMMIT`).
    psycopg is imported only here: a run on SQLite needs nothing but the standard library."""

    def __init__(self, config: dict[str, Any]):
        import psycopg  # noqa: PLC0415 - the projector's own interpreter has it

        self.c = config
        self.rollback = psycopg.Rollback
        self.conn = psycopg.connect(config["conninfo"], autocommit=True)
        table, self.name = config["position_table"], config["name"]
        self.ensure = f"INSERT INTO {table} (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING"
        self.read = f"SELECT position FROM {table} WHERE name = %s FOR UPDATE"
        self.move = f"UPDATE {table} SET position = %s WHERE name = %s"

    def page(self, seq: int, start: int, last: int, closes: list, inserts: list, log: list) -> tuple:
        answer: tuple = ("committed", seq)
        with self.conn.transaction(), self.conn.cursor() as cur:
            if self.c["async_commit"]:
                cur.execute("SET LOCAL synchronous_commit TO OFF")
            cur.execute(self.ensure, (self.name,))
            (position,) = cur.execute(self.read, (self.name,)).fetchone()
            if position != start - 1:  # another projector wrote meanwhile
                answer = ("moved", seq, position)
                raise self.rollback
            if closes:
                cur.executemany(self.c["close_sql"], closes)
            for (table, columns), rows in ((self.c["evidence"], inserts), (self.c["log"], log)):
                if rows:
                    with cur.copy(f"COPY {table} ({','.join(columns)}) FROM STDIN") as copy:
                        for r in rows:
                            copy.write_row(r)
            cur.execute(self.move, (last, self.name))
        return answer


def _error(seq: int | None, e: BaseException) -> tuple:
    text = "".join(traceback.format_exception(e))
    try:
        pickle.loads(pickle.dumps(e))  # noqa: S301
        return ("error", seq, e, text)
    except Exception:  # noqa: BLE001 - an exception that does not pickle goes as its text
        return ("error", seq, RuntimeError(f"{type(e).__name__}: {e}"), text)


def main(inp: BinaryIO, out: BinaryIO) -> int:
    writer: _Writer | None = None
    stopped = False  # after "moved" or "error": read on to the end, write nothing
    while True:
        try:
            msg = receive(inp)
        except EOFError:
            return 0 if stopped else 1  # the projector went away without saying it was done
        if msg is None:
            return 0
        if stopped:
            continue
        seq = None if isinstance(msg, dict) else msg[0]
        try:
            if isinstance(msg, dict):
                writer = _PgWriter(msg) if "conninfo" in msg else _Writer(msg)
                continue
            if writer is None:
                raise RuntimeError("a page came before the configuration")
            answer = writer.page(*msg)
        except Exception as e:  # noqa: BLE001 - sent to the projector, which raises it
            answer = _error(seq, e)
        send(out, answer)
        stopped = answer[0] != "committed"


if __name__ == "__main__":
    sys.exit(main(sys.stdin.buffer, sys.stdout.buffer))
