"""What a log file really is, from its first bytes, and one way to open it as a (decompressed) stream.

A log copied from a data lake is often gzip- or zstd-compressed, sometimes a parquet file with a `.csv`
name, sometimes a zip archive; an Excel export starts with a byte-order mark. Sniffing the magic bytes
turns each of those into a correct reading or one clear message, instead of pyarrow's parser error
about "a row with 1 field" far from the cause.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa

from seqexp.errors import DataError

# magic bytes -> pyarrow codec name; bz2 is "BZh" + block size digit + the block magic (pi in BCD)
COMPRESSED = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
BZ2_BLOCK = b"1AY&SY"
FIRST_LINE_LIMIT = 16 << 20  # a header longer than this is not a header


def compression_of(path: Path) -> str | None:
    """The codec a file is compressed with, from its magic bytes (not its name), or None for plain bytes."""
    with open(path, "rb") as f:
        head = f.read(10)
    for magic, codec in COMPRESSED.items():
        if head.startswith(magic):
            return codec
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == BZ2_BLOCK:
        return "bz2"
    return None


def refuse_non_text(path: Path, fmt: str) -> None:
    """A parquet file or a zip archive handed to a text reader: say what it is and which setting reads it."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PAR1":
        raise DataError(f"{path} is a parquet file, not {fmt} text: set data.format=parquet")
    if head == b"PK\x03\x04":
        raise DataError(f"{path} is a zip archive: unzip it and point data.path at the log inside")


def open_stream(path: Path) -> pa.NativeFile:
    """The file's bytes, decompressed on the fly when it is gzip, zstd or bz2 (detected by magic bytes)."""
    return pa.input_stream(str(path), compression=compression_of(path))


def python_encoding(encoding: str) -> str:
    """utf-8 read as utf-8-sig: identical for plain UTF-8, and a leading byte-order mark is not part of the
    first column's name (pyarrow's CSV reader skips the mark in the data the same way)."""
    return "utf-8-sig" if _is_utf8(encoding) else encoding


def arrow_encoding(encoding: str) -> str:
    return "utf8" if _is_utf8(encoding) else encoding


def _is_utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")


def first_line(path: Path, encoding: str) -> str:
    """Line 1 without its line ending (and without a BOM): the header, or the first row to count fields in.
    Only line 1's bytes are decoded, so that a bad byte further down is reported at its own line."""
    try:
        with open_stream(path) as raw:
            if "16" in encoding or "32" in encoding:  # not ASCII-compatible: b"\n" is not a line end
                with io.TextIOWrapper(raw, encoding=encoding, newline="") as f:
                    line = f.readline(FIRST_LINE_LIMIT)
            else:
                line = _first_line_bytes(raw).decode(python_encoding(encoding))
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: line 1 is not valid {encoding} ({e.reason}); re-encode the file as UTF-8 or set data.encoding"
        ) from e
    except (OSError, pa.ArrowException, EOFError) as e:
        raise unreadable(path, e) from e
    except LookupError as e:
        raise DataError(f"data.encoding={encoding!r} is not a known text encoding; use e.g. utf-8 or latin-1") from e
    line = line.rstrip("\r\n")
    if not line.strip():
        raise DataError(f"{path}: line 1 is blank; the log must start with a header or a data row")
    return line


def unreadable(path: Path, e: Exception) -> DataError:
    """The error for bytes that cannot be read at all: a damaged compressed stream, or an I/O failure."""
    codec = compression_of(path)
    if codec is not None:
        return DataError(f"{path}: the {codec} stream is damaged or truncated ({e}); re-download or re-compress it")
    return DataError(f"{path}: cannot be read ({type(e).__name__}: {e}); check the file and its permissions")


def _first_line_bytes(stream: pa.NativeFile) -> bytes:
    buf = b""
    while len(buf) < FIRST_LINE_LIMIT:
        chunk = stream.read(1 << 16)
        end = chunk.find(b"\n")
        if end >= 0:
            return buf + chunk[:end]
        if not chunk:
            return buf
        buf += chunk
    return buf


def locate_undecodable(path: Path, encoding: str, block: int = 4 << 20) -> tuple[int, int, bytes] | None:
    """(line, byte column, the line's bytes) of the first byte sequence that is not valid `encoding`, read in
    blocks of whole lines (only called once a reader has failed, to point at the real line)."""
    lines_before, carry = 0, b""
    with open_stream(path) as f:
        while True:
            chunk = f.read(block)
            data = carry + chunk
            cut = len(data) if not chunk else data.rfind(b"\n") + 1
            whole, carry = data[:cut], data[cut:]
            try:
                whole.decode(python_encoding(encoding))
            except UnicodeDecodeError as e:
                start = whole.rfind(b"\n", 0, e.start) + 1
                end = whole.find(b"\n", e.start)
                text = whole[start : end if end >= 0 else len(whole)]
                return lines_before + whole.count(b"\n", 0, e.start) + 1, e.start - start + 1, text[:200]
            lines_before += whole.count(b"\n")
            if not chunk:
                return None
