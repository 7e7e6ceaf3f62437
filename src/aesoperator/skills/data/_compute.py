"""From raw files to exact metrics.

A CSV file is read in chunks of whole records (the next one read and parsed in a thread while
the current one is reduced); other formats are scanned lazily. Each is reduced to a narrow typed
frame of the columns the metrics need (dates, amounts as numbers, ids as categories) plus a hash
of the whole raw row for duplicate detection. Only that narrow frame is held in memory, so a file
wider or larger than ``max_memory_mb`` is read within it. Metrics are then exact aggregations
over the narrow frame.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from ...errors import ValidationError
from ._infer import MONEY_RE, NULL_TOKENS, Mapping, Profile
from ._load import Source, csv_options, ragged_rows, scan
from ._spec import PERIODS, Spec

Check = Callable[[], None]
_TEXT_ROLES = ("customer", "product", "region", "order_id")
# Categories: 4 bytes a row, and distinct counts on integers (the dictionary is shared).
_CATEGORICAL = ("customer", "product", "region")
_SAMPLES = 5


@dataclass
class FileQuality:
    """What happened to one file's rows."""

    label: str
    rows_read: int = 0
    rows_used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.label,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_skipped": sum(self.skipped.values()),
            "skipped_by_reason": dict(self.skipped),
            "samples": list(self.samples),
            "notes": list(self.notes),
        }


@dataclass
class Plan:
    """Which columns to read and how to convert them."""

    mapping: Mapping
    extra: list[str]  # group_by, revenue_by_<column> and period columns, by source name
    need_quantity: bool
    need_price: bool
    text_roles: frozenset[str] = frozenset(("customer", "product", "region", "order_id"))


def collect(lf: pl.LazyFrame, check: Check) -> pl.DataFrame:
    """Collect with the streaming engine in the background, so that ``check`` can stop it."""
    query = lf.collect(background=True, engine="streaming")
    try:
        while True:
            out = query.fetch()
            if out is not None:
                return out
            check()
            time.sleep(0.01)
    except BaseException:
        query.cancel()
        raise


def _text(col: str) -> pl.Expr:
    return pl.col(col)  # already stripped of surrounding spaces by narrow()


def _number(col: str, p: Profile) -> pl.Expr:
    if p.native:
        return pl.col(col).cast(pl.Float64, strict=False)
    s = _text(col)
    if p.style in (None, "plain"):
        return s.cast(pl.Float64, strict=False)
    keep = r"[^0-9.]" if p.style == "dot" else r"[^0-9,]"
    digits = s.str.replace_all(keep, "")
    if p.style == "comma":
        digits = digits.str.replace(",", ".", literal=True)
    value = digits.cast(pl.Float64, strict=False)
    # A refund may be written -12.50, (12.50) or 12.50-.
    value = pl.when(s.str.contains(r"^[(-]|-\s*$|^\S{1,3}\s*-")).then(-value).otherwise(value)
    return pl.when(s.str.contains(MONEY_RE)).then(value).otherwise(None)


def _date(col: str, p: Profile) -> pl.Expr:
    if p.native:
        return pl.col(col).cast(pl.Date, strict=False)
    s = _text(col)
    fmt = p.date_format or "%Y-%m-%d"
    if p.date_slice:
        s = s.str.slice(0, 10) if fmt == "%Y-%m-%d" else s.str.extract(r"^(\S+?)(?:[ T]\d.*)?$", 1)
    return s.str.to_date(fmt, strict=False)


def _label(col: str, p: Profile | None) -> pl.Expr:
    if p is not None and p.native:
        return pl.col(col).cast(pl.String)
    s = _text(col)
    return pl.when(s.is_in(NULL_TOKENS)).then(None).otherwise(s)


def _is_bad(col: str, p: Profile, converted: pl.Expr) -> pl.Expr:
    if p.native:
        return pl.col(col).is_not_null() & converted.is_null()
    s = _text(col)
    return s.is_not_null() & ~s.is_in(NULL_TOKENS) & converted.is_null()


def narrow(raw: pl.LazyFrame, index: int, plan: Plan, spec: Spec, row_offset: int) -> pl.LazyFrame:
    """The narrow frame of ``raw`` rows of file ``index`` (see the module docstring)."""
    m = plan.mapping
    schema = raw.collect_schema()
    names = list(schema.names())
    used = {c for r, c in m.roles.items() if r not in _TEXT_ROLES or r in plan.text_roles}
    used.update(plan.extra)
    # Strip each text column once (the streaming engine does not share subexpressions).
    raw = raw.with_columns(
        pl.col(c).str.strip_chars() for c in names if c in used and schema[c] == pl.String
    )
    exprs: list[pl.Expr] = [pl.lit(index, dtype=pl.UInt16).alias("__file")]
    bad: list[pl.Expr] = []
    for role in ("amount", "quantity", "price"):
        col = m.roles.get(role)
        wanted = role == "amount" or (role == "quantity" and plan.need_quantity)
        wanted = wanted or (role == "price" and plan.need_price)
        if col is None or not wanted:
            continue
        conv = _number(col, m.profiles[col])
        exprs.append(conv.alias(role))
        bad.append(pl.when(_is_bad(col, m.profiles[col], conv)).then(pl.lit(col)))
    if "date" in m.roles:
        col = m.roles["date"]
        conv = _date(col, m.profiles[col])
        exprs.append(conv.alias("date"))
        bad.append(pl.when(_is_bad(col, m.profiles[col], conv)).then(pl.lit(col)))
    for role in _TEXT_ROLES:
        col = m.roles.get(role)
        if col is None or role not in plan.text_roles:
            continue
        expr = _label(col, m.profiles.get(col))
        # Few distinct customers, products, regions: categories keep them small in memory.
        exprs.append((expr.cast(pl.Categorical) if role in _CATEGORICAL else expr).alias(role))
    for col in plan.extra:
        exprs.append(_label(col, m.profiles.get(col)).cast(pl.Categorical).alias(f"x:{col}"))
    exprs.append(
        pl.coalesce(bad).alias("__bad") if bad else pl.lit(None, dtype=pl.String).alias("__bad")
    )
    if spec.duplicates == "drop":
        exprs.append(pl.struct(names).hash(seed=7).alias("__h"))
    lf = raw.with_row_index("__row", offset=row_offset).select(pl.col("__row"), *exprs)
    if "amount" not in m.roles:
        price = pl.col("price")
        amount = price * pl.col("quantity") if m.amount_from == "price*quantity" else price
        lf = lf.with_columns(amount.alias("amount"))
    return lf


def chunk_bytes(max_memory_mb: int) -> int:
    """Bytes of CSV parsed at once: small enough to stay far below the memory limit."""
    return int(min(64, max(4, max_memory_mb // 40)) * 1024 * 1024)


def _cut(buf: bytes, in_quotes: bool = False) -> int:
    """Index just after the last newline that ends a record (not inside quotes), or 0.

    ``in_quotes``: ``buf`` starts inside a quoted field (the text before it left one open).
    """
    pos = buf.rfind(b"\n")
    if pos >= 0 and not in_quotes and buf.find(b'"', 0, pos) < 0:
        return pos + 1  # no quotes at all: the common case, found with one memchr
    tries = 0
    while pos >= 0 and tries < 64:
        if (buf.count(b'"', 0, pos) + in_quotes) % 2 == 0:
            return pos + 1
        pos = buf.rfind(b"\n", 0, pos)
        tries += 1
    return 0


def csv_chunks(src: Source, size: int, check: Check) -> Iterator[tuple[bytes, int]]:
    """``(bytes, byte offset in the file)`` of whole records, about ``size`` bytes each."""
    with src.path.open("rb") as fh:
        fh.readline()  # the header
        offset = fh.tell()
        carry = b""
        while True:
            check()
            block = fh.read(size)
            if not block:
                if carry.strip():
                    yield carry, offset
                return
            # The carried partial record holds no record end, so the last one is in the block
            # (searched with the quote the carry left open, if any), and the piece is built
            # with one copy (fresh 50 MB buffers fault their pages in: a second copy of each
            # chunk was a quarter of the reading time).
            cut = _cut(block, carry.count(b'"') % 2 == 1)
            if cut == 0 and len(carry) + len(block) < 8 * size:
                carry += block  # a record longer than a chunk, or an open quote: read on
                continue
            cut = cut or len(block)
            piece = b"".join((carry, memoryview(block)[:cut]))
            carry = block[cut:]
            yield piece, offset
            offset += len(piece)


class _Lines:
    """Line numbers of byte offsets in a file, counted only when an error needs one.

    Counting every chunk's newlines up front costs a full scan of the data under the GIL;
    errors are rare, and offsets are asked for in increasing order, so count on demand from
    the last answer.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._offset, self._line = 0, 1

    def at(self, offset: int) -> int:
        if offset < self._offset:
            self._offset, self._line = 0, 1
        with self._path.open("rb") as fh:
            fh.seek(self._offset)
            left = offset - self._offset
            while left > 0:
                block = fh.read(min(left, 8 << 20))
                if not block:
                    break
                self._line += block.count(b"\n")
                left -= len(block)
        self._offset = offset
        return self._line


def _header(src: Source) -> list[str]:
    with src.path.open("rb") as fh:
        first = fh.readline()
    return pl.read_csv(first, has_header=True, **csv_options(src)).columns


def _csv_frames(
    src: Source, columns: list[str], size: int, check: Check
) -> Iterator[tuple[pl.DataFrame, bytes, int, bool]]:
    """Each chunk parsed as text columns: ``(frame, raw bytes, byte offset, had long rows)``."""
    schema = {c: pl.String for c in columns}
    opts = csv_options(src)
    for piece, offset in csv_chunks(src, size, check):
        try:
            df = pl.read_csv(
                piece, has_header=False, schema=schema, truncate_ragged_lines=False, **opts
            )
            yield df, piece, offset, False
        except pl.exceptions.ComputeError as exc:
            if "more fields" not in str(exc):
                line = _Lines(src.path).at(offset)
                raise ValidationError(
                    f"inputs.data_files: {src.label!r} cannot be read near line {line}: "
                    f"{str(exc).splitlines()[0]}"
                ) from None
            df = pl.read_csv(
                piece, has_header=False, schema=schema, truncate_ragged_lines=True, **opts
            )
            yield df, piece, offset, True


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def _prefetch(items: Iterator[Any]) -> Generator[Any, None, None]:
    """Iterate ``items`` one step ahead in a thread: the next chunk is read and parsed while
    this one is reduced. Closing the generator (or an error) stops and joins the thread."""
    box: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as exc:  # delivered to the consumer, which raises it
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="aesop-data-read", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


def _has_short_rows(raw: pl.DataFrame, piece: bytes, separator: str) -> bool:
    """Whether some record of the chunk has fewer fields than the header.

    polars fills missing fields as it fills empty ones, so count instead: every complete record
    has ``width - 1`` separators outside quotes, and records with too many fields already made
    polars fail. Separators inside quotes are those left inside the parsed values. A short
    record leaves the last column empty, so a chunk with a value in every last field has none
    (and the count, a scan of the whole chunk under the GIL, is skipped).
    """
    if raw.width == 0:
        return False
    last = pl.col(raw.columns[-1])
    if not raw.select((last.is_null() | (last == "")).any()).item():
        return False
    outside = piece.count(separator.encode())
    if b'"' in piece:
        inside = raw.select(
            pl.sum_horizontal(pl.all().str.count_matches(separator, literal=True).sum())
        ).item()
        outside -= int(inside or 0)
    return bool(outside != (raw.width - 1) * raw.height)


def load_file(
    src: Source,
    index: int,
    plan: Plan,
    spec: Spec,
    check: Check,
    chunk: int,
    advance: Callable[[int, int], None] = lambda nbytes, nrows: None,
) -> tuple[pl.DataFrame, FileQuality]:
    """Read one source to its narrow frame, applying the bad-rows rule.

    ``advance(bytes, rows)`` is called after each chunk, for progress.
    """
    q = FileQuality(label=src.label, notes=list(src.notes))
    parts: list[pl.DataFrame] = []
    problems: list[dict[str, Any]] = []
    drop_rows: list[int] = []
    rows = 0
    if src.fmt == "csv":
        columns = _header(src)
        chunks = _prefetch(_csv_frames(src, columns, chunk, check))
        line_index = _Lines(src.path)
        try:
            for raw, piece, offset, long_rows in chunks:
                short_rows = _has_short_rows(raw, piece, src.separator)
                lazy = narrow(raw.lazy(), index, plan, spec, rows)
                part = lazy.collect(engine="streaming")
                del raw
                if long_rows or short_rows:
                    line = line_index.at(offset)
                    for rec, at, n in ragged_rows(piece, src.separator, len(columns), line):
                        drop_rows.append(rows + rec)
                        q.skipped["ragged row (wrong number of fields)"] = (
                            q.skipped.get("ragged row (wrong number of fields)", 0) + 1
                        )
                        if len(problems) < _SAMPLES:
                            problems.append(
                                {
                                    "line": at,
                                    "reason": f"ragged row: {n} fields, expected {len(columns)}",
                                }
                            )
                bad = part.filter(pl.col("__bad").is_not_null())
                if bad.height:
                    line = line_index.at(offset)
                    _bad_values(bad, piece, src, rows, line, q, problems, drop_rows)
                rows += part.height
                parts.append(part)
                advance(len(piece), part.height)
        finally:
            chunks.close()  # stops and joins the reading thread
        df = pl.concat(parts) if len(parts) != 1 else parts[0]
        del parts
    else:
        df = collect(narrow(scan(src), index, plan, spec, 0), check)
        rows = df.height
        bad = df.filter(pl.col("__bad").is_not_null())
        if bad.height:
            _bad_values(bad, None, src, 0, 2, q, problems, drop_rows)
    q.rows_read = rows
    if drop_rows:
        if spec.on_bad_rows == "fail":
            lines = "; ".join(f"line {p['line']}: {p['reason']}" for p in problems[:_SAMPLES])
            raise ValidationError(
                f"inputs.data_files: {src.label!r} has {len(set(drop_rows))} bad row(s) — "
                f"{lines}; fix the file, or set inputs.on_bad_rows='skip' to leave them out "
                "(they are counted and reported)"
            )
        df = df.filter(~pl.col("__row").is_in(drop_rows))
        q.samples = problems
    q.rows_used = df.height
    return df.drop([c for c in ("__row", "__bad") if c in df.columns]), q


def _bad_values(
    bad: pl.DataFrame,
    piece: bytes | None,
    src: Source,
    offset: int,
    first_line: int,
    q: FileQuality,
    problems: list[dict[str, Any]],
    drop_rows: list[int],
) -> None:
    """Count rows with an unreadable value; keep a few samples with their raw text."""
    fresh = bad.filter(~pl.col("__row").is_in(drop_rows))
    for col, n in fresh.group_by("__bad").len().sort("__bad").iter_rows():
        key = f"unreadable value in column {col!r}"
        q.skipped[key] = q.skipped.get(key, 0) + int(n)
    want = max(0, 2 * _SAMPLES - len(problems))
    if want:
        sample = fresh.select("__row", "__bad").head(want).rows()
        raw = _raw_values(piece, src, [r - offset for r, _ in sample])
        for row, col in sample:
            value = raw.get(row - offset, {}).get(col)
            line = first_line + (row - offset) if piece is not None else row + 2
            problems.append({"line": line, "reason": f"cannot read {value!r} in column {col!r}"})
    drop_rows.extend(fresh.get_column("__row").to_list())


def _raw_values(piece: bytes | None, src: Source, rows: list[int]) -> dict[int, dict[str, Any]]:
    try:
        if piece is not None:
            schema = {c: pl.String for c in _header(src)}
            raw = pl.read_csv(
                piece,
                has_header=False,
                schema=schema,
                truncate_ragged_lines=True,
                **csv_options(src),
            )
            frame = raw.with_row_index("__r").filter(pl.col("__r").is_in(rows))
        else:
            frame = scan(src).with_row_index("__r").filter(pl.col("__r").is_in(rows)).collect()
    except Exception:
        return {}
    return {int(r["__r"]): r for r in frame.iter_rows(named=True)}


# --------------------------------------------------------------------------------------------
# Metrics


def _period_key(period: str) -> pl.Expr:
    d = pl.col("date")
    if period == "day":
        return d
    every = {"week": "1w", "month": "1mo", "quarter": "1q", "year": "1y"}[period]
    return d.dt.truncate(every)


def period_label(period: str, d: date) -> str:
    if period == "day":
        return d.isoformat()
    if period == "week":
        iso = d.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if period == "month":
        return f"{d.year}-{d.month:02d}"
    if period == "quarter":
        return f"{d.year}-Q{(d.month - 1) // 3 + 1}"
    return str(d.year)


def _period_range(period: str, first: date, last: date) -> list[date]:
    out: list[date] = []
    cur = first
    while cur <= last:
        out.append(cur)
        if period == "day":
            cur = cur + timedelta(days=1)
        elif period == "week":
            cur = cur + timedelta(days=7)
        else:
            step = {"month": 1, "quarter": 3, "year": 12}[period]
            month = cur.month - 1 + step
            cur = date(cur.year + month // 12, month % 12 + 1, 1)
    return out


def _aggs(cols: list[str], has_qty: bool) -> list[pl.Expr]:
    amount = pl.col("amount")
    sale = amount > 0
    out = [
        amount.sum().alias("revenue"),
        amount.filter(sale).sum().alias("gross_revenue"),
        (-amount.filter(amount < 0).sum()).alias("refunds"),
        (amount < 0).sum().cast(pl.Int64).alias("refund_rows"),
        pl.len().cast(pl.Int64).alias("rows"),
    ]
    if "order_id" in cols:
        oid = pl.col("order_id")
        orders = oid.filter(sale & oid.is_not_null()).n_unique() + (sale & oid.is_null()).sum()
    else:
        orders = sale.sum()
    out.append(orders.cast(pl.Int64).alias("orders"))
    if "customer" in cols:
        cust = pl.col("customer")
        out.append(
            cust.filter(sale & cust.is_not_null()).n_unique().cast(pl.Int64).alias("customers")
        )
    if has_qty:
        out.append(pl.col("quantity").sum().alias("units"))
    return out


_ORDER = ("revenue", "growth", "orders", "customers", "average_order_value", "units",
          "gross_revenue", "refunds", "refund_rows", "rows")  # fmt: skip


def _finish(table: pl.DataFrame) -> pl.DataFrame:
    """Add the average order value and growth; put the columns in reading order."""
    orders = pl.col("orders")
    aov = pl.when(orders > 0).then(pl.col("revenue") / orders).otherwise(None)
    prev = pl.col("revenue").shift(1)
    growth = pl.when(prev.is_not_null() & (prev != 0)).then((pl.col("revenue") - prev) / prev.abs())
    table = table.with_columns(aov.alias("average_order_value"), growth.alias("growth"))
    keys = [c for c in table.columns if c not in _ORDER]
    return table.select(keys + [c for c in _ORDER if c in table.columns])


def _records(df: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in df.iter_rows(named=True)]


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, date):
        return v.isoformat()
    return v


def compute(
    frames: list[pl.DataFrame],
    labels: list[str],
    plan: Plan,
    spec: Spec,
    metrics: list[str],
    check: Check,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Return ``(headline metrics, tables, quality counts)``, all JSON-able.

    ``frames`` (the narrow frame of each file) is emptied: the frames are consumed.
    """
    m = plan.mapping
    df = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
    frames.clear()  # the caller's list too: filtered copies below must not double the memory
    quality: dict[str, Any] = {"rows_loaded": df.height, "duplicates_dropped": 0}
    if "__h" in df.columns:
        df, quality["duplicates_dropped"] = _drop_duplicates(df)
    check()
    if "order_id" in df.columns and not spec.sql_metrics and not spec.group_by:
        df = _order_codes(df)
    null_amount = int(df.get_column("amount").null_count())
    quality["rows_without_amount"] = null_amount
    valid = df.filter(pl.col("amount").is_not_null()) if null_amount else df
    has_qty = "quantity" in valid.columns
    aggs = _aggs(valid.columns, has_qty)
    totals = valid.select(aggs).row(0, named=True)
    check()
    tables: dict[str, Any] = {}
    headline: dict[str, Any] = {}
    revenue = float(totals["revenue"] or 0.0)
    quality["refund_rows"] = int(totals["refund_rows"])
    quality["refund_amount"] = float(totals["refunds"] or 0.0)

    by_period: pl.DataFrame | None = None
    period = spec.period
    if "date" in valid.columns and period in PERIODS:
        quality["rows_without_date"] = int(valid.get_column("date").null_count())
        dated = valid.filter(pl.col("date").is_not_null())
        if dated.height:
            grouped = dated.group_by(_period_key(period).alias("key")).agg(aggs)
            first, last = grouped["key"].min(), grouped["key"].max()
            assert isinstance(first, date) and isinstance(last, date)
            keys = _period_range(period, first, last)
            full = pl.DataFrame({"key": keys}, schema={"key": pl.Date})
            by_period = (
                full.join(grouped, on="key", how="left")
                .with_columns(pl.exclude("key").fill_null(0))
                .sort("key")
            )
            by_period = _finish(by_period)
            by_period = by_period.with_columns(
                pl.col("key")
                .map_elements(lambda d: period_label(period, d), return_dtype=pl.String)
                .alias("period")
            ).drop("key")
            by_period = by_period.select("period", pl.exclude("period"))
    elif period not in PERIODS:
        col = f"x:{period}" if f"x:{period}" in valid.columns else _role_col(m, period)
        grouped = (
            valid.group_by(pl.col(col).cast(pl.String).fill_null("(blank)").alias("period"))
            .agg(aggs)
            .sort("period")
        )
        by_period = _finish(grouped)
    if by_period is not None:
        tables["by_period"] = _records(by_period)
    check()

    by_file = _finish(
        pl.DataFrame(
            {"__file": list(range(len(labels))), "file": labels},
            schema={"__file": pl.UInt16, "file": pl.String},
        )
        .join(valid.group_by("__file").agg(aggs), on="__file", how="left")
        .with_columns(pl.exclude("__file", "file").fill_null(0))
        .sort("__file")
        .drop("__file")
    )
    if len(labels) > 1:
        tables["by_file"] = _records(by_file)

    # Headline growth: file over file when several files are periods, else the last period.
    growth: float | None = None
    basis = ""
    if len(labels) > 1:
        growth = _clean(by_file.get_column("growth")[-1])
        basis = f"{labels[-1]} vs {labels[-2]}, file over file"
    elif by_period is not None and by_period.height > 1:
        growth = _clean(by_period.get_column("growth")[-1])
        p = by_period.get_column("period")
        basis = f"{p[-1]} vs {p[-2]}, {period} over {period}"
    for name in metrics:
        if name == "revenue":
            headline["revenue"] = revenue
        elif name == "gross_revenue":
            headline["gross_revenue"] = float(totals["gross_revenue"] or 0.0)
        elif name == "refunds":
            headline["refunds"] = float(totals["refunds"] or 0.0)
        elif name == "growth":
            headline["growth"] = growth
            headline["growth_basis"] = basis
        elif name == "customers":
            headline["customers"] = int(totals["customers"])
        elif name == "orders":
            headline["orders"] = int(totals["orders"])
        elif name == "average_order_value":
            orders = int(totals["orders"])
            headline["average_order_value"] = revenue / orders if orders else None
        elif name == "units":
            headline["units"] = _clean(float(totals["units"] or 0.0))
        elif name == "rows":
            headline["rows"] = int(totals["rows"])
        elif name in ("top_products", "top_customers"):
            role = name.removeprefix("top_").removesuffix("s")
            tables[name] = _records(_top(valid, role, revenue, spec.top_n, has_qty, m))
        elif name.startswith("revenue_by_"):
            col = _by_column(name.removeprefix("revenue_by_"), m, valid)
            tables[name] = _records(
                _breakdown(valid, col, revenue, aggs, by=name.removeprefix("revenue_by_"))
            )
        check()
    for col_name in spec.group_by:
        col = _by_column(col_name, m, valid)
        tables[f"by_{col_name}"] = _records(_breakdown(valid, col, revenue, aggs, by=col_name))
    for sql_metric in spec.sql_metrics:
        headline_value, table = _sql(sql_metric.name, sql_metric.sql, df, labels, period)
        if table is not None:
            tables[sql_metric.name] = table
        else:
            headline[sql_metric.name] = headline_value
        check()
    return headline, tables, quality


def _drop_duplicates(df: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """``df`` without ``__h`` (a hash of the whole row) and its repeated rows (the first of
    each kept), and how many were dropped.

    Duplicates are few: a parallel group-by finds the repeated hashes, and only their rows are
    looked at in order. ``is_first_distinct`` over the whole column does the same in one
    thread, ~4x slower at 10 M rows.
    """
    h = df.get_column("__h")
    repeated = df.lazy().group_by("__h").len().filter(pl.col("len") > 1).collect()
    df = df.drop("__h")
    if repeated.height == 0:
        return df, 0
    at = h.is_in(repeated.get_column("__h").implode()).arg_true()
    drop = at.filter(~h.gather(at).is_first_distinct())
    row = pl.int_range(pl.len(), dtype=pl.get_index_type())
    return df.filter(~row.is_in(drop.implode())), len(drop)


def _order_codes(df: pl.DataFrame) -> pl.DataFrame:
    """Order ids as 64-bit hashes, when that is provably one code per id.

    Distinct counts of hashes are several times cheaper than of strings. Hashing is exact here
    because the number of distinct hashes is checked to equal the number of distinct ids (a
    collision would make it smaller); otherwise the ids stay as they are.
    """
    ids = df.get_column("order_id")
    codes = ids.hash(seed=11).set(ids.is_null(), None)
    # Both counts in one query: the query engine counts in parallel (Series.n_unique does not,
    # ~2x slower on 10 M strings).
    both = pl.DataFrame({"code": codes, "id": ids}).lazy()
    n_codes, n_ids = both.select(pl.all().n_unique()).collect().row(0)
    if n_codes != n_ids:
        return df
    return df.with_columns(codes.alias("order_id"))


def _role_col(m: Mapping, name: str) -> str:
    for role, col in m.roles.items():
        if col == name:
            return role
    raise ValidationError(f"inputs.period: column {name!r} is not available")


def _by_column(name: str, m: Mapping, df: pl.DataFrame) -> str:
    if f"x:{name}" in df.columns:
        return f"x:{name}"
    for role, col in m.roles.items():
        if name in (role, col) and role in df.columns:
            return role
    raise ValidationError(f"revenue_by_{name}: no column {name!r}")


def _breakdown(
    df: pl.DataFrame, col: str, revenue: float, aggs: list[pl.Expr], by: str
) -> pl.DataFrame:
    label = by.split(":")[-1]
    table = (
        df.group_by(pl.col(col).cast(pl.String).fill_null("(blank)").alias(label))
        .agg(aggs)
        .sort(["revenue", label], descending=[True, False])
    )
    share = pl.col("revenue") / revenue if revenue else pl.lit(None, pl.Float64)
    table = _finish(table).drop("growth").with_columns(share.alias("share"))
    return table.select(label, "revenue", "share", pl.exclude(label, "revenue", "share"))


def _top(
    df: pl.DataFrame, role: str, revenue: float, n: int, has_qty: bool, m: Mapping
) -> pl.DataFrame:
    amount = pl.col("amount")
    aggs = [amount.sum().alias("revenue")]
    if has_qty:
        aggs.append(pl.col("quantity").sum().alias("units"))
    if "order_id" in df.columns and role != "order_id":
        oid = pl.col("order_id")
        aggs.append(
            (
                oid.filter((amount > 0) & oid.is_not_null()).n_unique()
                + ((amount > 0) & oid.is_null()).sum()
            )
            .cast(pl.Int64)
            .alias("orders")
        )
    else:
        aggs.append((amount > 0).sum().cast(pl.Int64).alias("orders"))
    table = (
        df.filter(pl.col(role).is_not_null())
        .group_by(pl.col(role).cast(pl.String))
        .agg(aggs)
        .sort(["revenue", role], descending=[True, False])
        .head(n)
    )
    share = pl.col("revenue") / revenue if revenue else pl.lit(None, pl.Float64)
    table = table.with_columns(share.alias("share"))
    return table.select(role, "revenue", "share", pl.exclude(role, "revenue", "share"))


_SQL_ORDER = ("date", "period", "file", "order_id", "customer", "product", "region", "quantity",
              "price", "amount")  # fmt: skip


def sql_frame(df: pl.DataFrame, labels: list[str], period: str) -> pl.DataFrame:
    """The table ``data`` that custom SQL metrics see: one row per loaded row, role names."""
    out = df.with_columns(
        pl.col("__file")
        .replace_strict(list(range(len(labels))), labels, return_dtype=pl.String)
        .alias("file")
    )
    out = out.drop([c for c in out.columns if c.startswith("__")])
    renames = {c: c.removeprefix("x:") for c in out.columns if c.startswith("x:")}
    out = out.rename({k: v for k, v in renames.items() if v not in out.columns})
    casts = [pl.col(c).cast(pl.String) for c, t in out.schema.items() if t == pl.Categorical]
    if casts:
        out = out.with_columns(casts)
    if "date" in out.columns and period in PERIODS:
        out = out.with_columns(_period_key(period).alias("period"))
    first = [c for c in _SQL_ORDER if c in out.columns]
    return out.select(first + [c for c in out.columns if c not in first])


def _sql(
    name: str, query: str, df: pl.DataFrame, labels: list[str], period: str
) -> tuple[Any, list[dict[str, Any]] | None]:
    frame = sql_frame(df, labels, period)
    try:
        with pl.SQLContext(data=frame, eager=True) as sql:
            result = sql.execute(query)
    except Exception as exc:
        raise ValidationError(
            f"inputs.metrics: custom metric {name!r} failed: {str(exc).splitlines()[0]}; the "
            f"table is 'data' with columns {', '.join(frame.columns)}"
        ) from None
    if result.shape == (1, 1):
        return _clean(result.item()), None
    return None, _records(result.head(10_000))
