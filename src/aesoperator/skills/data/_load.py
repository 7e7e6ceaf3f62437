"""Finding the input files and opening them as polars frames.

Local paths and globs are resolved against the current directory; URLs are fetched by the
caller through ``ctx.web`` (the policy gate) and land here as bytes. Compressed files are
unpacked to a private temporary directory in bounded chunks, and text in another encoding is
re-encoded to UTF-8 the same way, so that polars can scan everything lazily.
"""

from __future__ import annotations

import codecs
import csv
import glob
import gzip
import io
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

import polars as pl

from ...errors import ValidationError

Fmt = Literal["csv", "excel", "parquet", "json", "ndjson"]
Check = Callable[[], None]
_CHUNK = 4 * 1024 * 1024
_SAMPLE_BYTES = 256 * 1024
SAMPLE_ROWS = 2000
_SUFFIX_FMT: dict[str, Fmt] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
    ".xlsb": "excel",
    ".ods": "excel",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
}


@dataclass
class Source:
    """One table to read: a local file in a known format."""

    label: str
    path: Path
    fmt: Fmt
    separator: str = ","
    notes: list[str] = field(default_factory=list)
    sheet: str | None = None

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def is_url(entry: str) -> bool:
    return entry.lower().startswith(("http://", "https://"))


def expand_local(index: int, entry: str) -> list[Path]:
    """Paths for one ``data_files`` entry; a glob must match, a path must be a readable file."""
    where = f"inputs.data_files[{index}]"
    expanded = os.path.expanduser(entry)
    if any(ch in expanded for ch in "*?["):
        matches = sorted(p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p))
        if not matches:
            raise ValidationError(
                f"{where}: the pattern {entry!r} matched no files (looked in {os.getcwd()}); "
                "check the pattern or use absolute paths"
            )
        return [Path(p) for p in matches]
    path = Path(expanded)
    if not path.exists():
        raise ValidationError(
            f"{where}: file {entry!r} does not exist (relative paths start at {os.getcwd()}); "
            "check the name or give an absolute path"
        )
    if not path.is_file():
        raise ValidationError(f"{where}: {entry!r} is not a file; give a file or a glob")
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ValidationError(
            f"{where}: file {entry!r} cannot be read ({exc.strerror or exc}); check permissions"
        ) from None
    return [path]


def _fmt_of(name: str, head: bytes) -> Fmt | None:
    suffix = PurePosixPath(name.lower()).suffix
    if suffix in _SUFFIX_FMT:
        return _SUFFIX_FMT[suffix]
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return "excel"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        return "ndjson"
    return None


def _copy_stream(src: IO[bytes] | gzip.GzipFile, dst: Path, check: Check) -> None:
    with dst.open("wb") as out:
        while chunk := src.read(_CHUNK):
            check()
            out.write(chunk)


def unpack(label: str, path: Path, tmp: Path, check: Check, where: str) -> list[Source]:
    """Turn one file into sources: decompress ``.gz``, expand ``.zip``, detect the format."""
    with path.open("rb") as fh:
        head = fh.read(8)
    name = path.name
    if name.lower().endswith(".gz") or head.startswith(b"\x1f\x8b"):
        inner = name[:-3] if name.lower().endswith(".gz") else name + ".csv"
        target = _unique(tmp, inner)
        try:
            with gzip.open(path, "rb") as gz:
                _copy_stream(gz, target, check)
        except (OSError, EOFError) as exc:
            raise ValidationError(
                f"{where}: {label!r} is not a readable gzip file ({exc}); re-compress or unpack it"
            ) from None
        sources = unpack(label, target, tmp, check, where)
        for s in sources:
            s.notes.insert(0, "decompressed from gzip")
        return sources
    if name.lower().endswith(".zip") or (head.startswith(b"PK\x03\x04") and not _is_office(path)):
        return _unzip(label, path, tmp, check, where)
    fmt = _fmt_of(name, head)
    if fmt is None:
        fmt = "csv"
    return [Source(label=label, path=path, fmt=fmt)]


def _is_office(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except zipfile.BadZipFile:
        return False
    return "[Content_Types].xml" in names or "mimetype" in names


def _unique(tmp: Path, name: str) -> Path:
    base = PurePosixPath(name).name or "data"
    candidate = tmp / base
    n = 1
    while candidate.exists():
        candidate = tmp / f"{n}_{base}"
        n += 1
    return candidate


def _unzip(label: str, path: Path, tmp: Path, check: Check, where: str) -> list[Source]:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValidationError(f"{where}: {label!r} is not a readable zip archive") from None
    sources: list[Source] = []
    with zf:
        members = [
            m
            for m in zf.infolist()
            if not m.is_dir()
            and not PurePosixPath(m.filename).name.startswith(".")
            and "__MACOSX" not in m.filename
        ]
        for member in sorted(members, key=lambda m: m.filename):
            lower = member.filename.lower()
            if not (PurePosixPath(lower).suffix in _SUFFIX_FMT or lower.endswith(".gz")):
                continue
            # Only the base name is used on disk: no path from the archive can escape tmp.
            target = _unique(tmp, PurePosixPath(member.filename).name)
            with zf.open(member) as src:
                _copy_stream(src, target, check)
            for s in unpack(f"{label}:{member.filename}", target, tmp, check, where):
                s.notes.insert(0, "extracted from zip")
                sources.append(s)
    if not sources:
        raise ValidationError(
            f"{where}: the archive {label!r} holds no CSV, TSV, Excel, Parquet or JSON file"
        )
    return sources


def _bom_encoding(head: bytes) -> str | None:
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if head.startswith(bom):
            return name
    return None


def _detect_encoding(sample: bytes, label: str) -> str:
    bom = _bom_encoding(sample)
    if bom is not None:
        return bom
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None or not best.encoding:
        raise ValidationError(
            f"inputs.data_files: cannot tell the text encoding of {label!r}; save it as UTF-8 "
            "or name it with the 'encoding' input (e.g. 'cp1252')"
        )
    name = str(best.encoding)
    # Western text often decodes the same in several code pages; then call it Windows-1252.
    try:
        if sample.decode("cp1252") == sample.decode(name):
            return "cp1252"
    except (UnicodeDecodeError, LookupError):
        pass
    return name


def prepare_text(
    src: Source, tmp: Path, spec_encoding: str | None, sep: str | None, check: Check
) -> None:
    """Make ``src`` a UTF-8 CSV polars can scan; choose the separator; refuse empty files."""
    with src.path.open("rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
    if not sample.strip(b" \t\r\n\x00\xef\xbb\xbf"):
        raise ValidationError(f"inputs.data_files: file {src.label!r} is empty; it has no rows")
    encoding = spec_encoding or _detect_encoding(sample, src.label)
    if codecs.lookup(encoding).name != "utf-8":  # utf-8-sig too: polars wants no BOM
        target = _unique(tmp, src.path.stem + ".utf8.csv")
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            with src.path.open("rb") as fin, target.open("w", encoding="utf-8", newline="") as out:
                while chunk := fin.read(_CHUNK):
                    check()
                    out.write(decoder.decode(chunk))
                out.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"inputs.data_files: {src.label!r} is not valid {encoding} text "
                f"(byte {exc.start}); name its encoding with the 'encoding' input"
            ) from None
        if encoding != "utf-8-sig":
            src.notes.append(f"text encoding {encoding} detected; converted to UTF-8")
        src.path = target
        with src.path.open("rb") as fh:
            sample = fh.read(_SAMPLE_BYTES)
    if sep is None:
        sep = "\t" if src.label.lower().endswith((".tsv", ".tab", ".tsv.gz")) else _sniff(sample)
    src.separator = sep


def _sniff(sample: bytes) -> str:
    text = sample.decode("utf-8", errors="ignore")
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the last line of a sample may be cut
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        header = lines[0] if lines else ""
        counts = {d: header.count(d) for d in ",;\t|"}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def csv_options(src: Source) -> dict[str, Any]:
    return {
        "separator": src.separator,
        "infer_schema": False,
        "empty_string_is_null": False,
        "null_values": None,
        "raise_if_empty": False,
        # The sample decided the encoding; a stray bad byte later becomes U+FFFD, not a crash.
        "encoding": "utf8-lossy",
    }


def read_sample(src: Source, where: str) -> pl.DataFrame:
    """The first rows of a source, to infer columns; raises for header-only or empty data."""
    try:
        if src.fmt == "csv":
            # From the first bytes only: given the path, polars would map the whole file.
            df = pl.read_csv(
                _head_records(src.path),
                n_rows=SAMPLE_ROWS,
                truncate_ragged_lines=True,
                **csv_options(src),
            )
        elif src.fmt == "excel":
            df = read_excel(src)
        elif src.fmt == "parquet":
            df = pl.scan_parquet(src.path).head(SAMPLE_ROWS).collect()
        elif src.fmt == "ndjson":
            df = (
                pl.scan_ndjson(src.path, infer_schema_length=SAMPLE_ROWS)
                .head(SAMPLE_ROWS)
                .collect()
            )
        else:
            df = read_json(src)
    except ValidationError:
        raise
    except Exception as exc:
        raise ValidationError(
            f"{where}: {src.label!r} cannot be read as {src.fmt.upper()} ({_first_line(exc)}); "
            "check the file or its extension"
        ) from None
    if df.width == 0:
        raise ValidationError(f"{where}: file {src.label!r} is empty; it has no columns")
    if df.height == 0:
        raise ValidationError(
            f"{where}: file {src.label!r} has a header ({', '.join(df.columns[:8])}) "
            "but no data rows"
        )
    return df


def _head_records(path: Path) -> bytes:
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
        if len(head) < _SAMPLE_BYTES:
            return head
    end = head.rfind(b"\n")
    # An odd number of quotes before the cut means it falls inside a quoted field: back up.
    while end > 0 and head.count(b'"', 0, end) % 2:
        end = head.rfind(b"\n", 0, end)
    return head[: end + 1] if end > 0 else head


def read_excel(src: Source) -> pl.DataFrame:
    kwargs: dict[str, object] = {"engine": "calamine"}
    if src.sheet is not None:
        kwargs["sheet_name"] = src.sheet
    df = pl.read_excel(src.path, **kwargs)  # type: ignore[call-overload]
    return df if isinstance(df, pl.DataFrame) else next(iter(df.values()))


def read_json(src: Source) -> pl.DataFrame:
    import json

    with src.path.open("rb") as fh:
        doc = json.load(fh)
    if isinstance(doc, dict):
        # {"data": [...]} or {"rows": [...]}: the first list of records inside.
        lists = [v for v in doc.values() if isinstance(v, list)]
        doc = lists[0] if lists else [doc]
    if not isinstance(doc, list):
        raise ValueError("expected a list of records")
    return pl.from_dicts(doc, infer_schema_length=None) if doc else pl.DataFrame()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def scan(src: Source) -> pl.LazyFrame:
    """The whole source as a lazy frame (CSV columns all as text, read exactly as written)."""
    if src.fmt == "csv":
        return pl.scan_csv(src.path, truncate_ragged_lines=True, **csv_options(src))
    if src.fmt == "parquet":
        return pl.scan_parquet(src.path)
    if src.fmt == "ndjson":
        return pl.scan_ndjson(src.path, infer_schema_length=10_000)
    if src.fmt == "excel":
        return read_excel(src).lazy()
    return read_json(src).lazy()


def ragged_rows(
    piece: bytes, separator: str, width: int, first_line: int
) -> list[tuple[int, int, int]]:
    """``(record index, line number, field count)`` of the records of ``piece`` (a chunk of
    whole CSV records) that do not have ``width`` fields. Run only on a chunk where polars
    saw ragged rows, to name them exactly.
    """
    out: list[tuple[int, int, int]] = []
    reader = csv.reader(io.StringIO(piece.decode("utf-8", errors="replace"), newline=""),
                        delimiter=separator)  # fmt: skip
    line = 0
    index = 0
    for record in reader:
        if record:  # polars skips blank lines too
            if len(record) != width:
                out.append((index, first_line + line, len(record)))
            index += 1
        line = reader.line_num
    return out
