"""Training data for `dlc train`: built-in data sets and numeric files, in one shape.

A spec names its data with one string: a file path (`.npz`, `.npy`, `.csv`, `.tsv`, or an
MNIST IDX images file, optionally gzipped), resolved against the spec file's folder, or
a built-in `builtin:NAME` / `builtin:NAME(k=v, ...)`. `load_source` turns it into a
`Dataset`: named arrays of equal length, and what the targets look like (the task).

What a loaded `Dataset` guarantees:
  - every array has the same length along axis 0, and there is at least one example;
  - features are float32, except integer and bool arrays of an `.npz` (tokens, masks)
    and the tokens of the sequence built-ins, which are int64;
  - class labels are int64 [N] (task "classification", or "binary" for two classes),
    regression targets float32 (task "regression"), per-position labels of a sequence
    int64 [N, T] (task "sequence");
  - generated built-ins depend only on their own `seed` argument (default 0), never on
    the training seed, so a spec always trains on the same data;
  - nothing is downloaded and nothing is unpickled (`allow_pickle=False`).

Anything wrong with the data is a `DataError` at the spec location of the source string.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ...compiler.errors import DataError, Loc, did_you_mean
from .datasets import BUILTINS, Dataset, call_builtin, parse_builtin

__all__ = ["BUILTINS", "Dataset", "load_source", "parse_idx", "split"]  # BUILTINS: re-exported

FORMATS = ".npz, .npy, .csv, .tsv, MNIST IDX (*-images-idx3-ubyte, optionally .gz)"


# --- loading ------------------------------------------------------------------------


def load_source(
    source: str,
    *,
    base_dir: Path,
    target: str | None = None,
    options: Mapping[str, Any] | None = None,
    loc: Loc | None = None,
) -> Dataset:
    """The data a spec's source string names. `target` picks the target array (.npz,
    built-ins) or column (.npy, .csv); `options` are format options (the csv delimiter
    and header) or, for a built-in, more of its arguments."""
    try:
        return _load(source.strip(), Path(base_dir), target, dict(options or {}))
    except DataError as e:
        raise _located(e, loc) from None


def _located(err: DataError, loc: Loc | None) -> DataError:
    """The error at `loc`: the loaders below do not know where in the spec they are."""
    if loc is None or all(d.loc is not None for d in err.diagnostics):
        return err
    return DataError([d if d.loc else replace(d, loc=loc) for d in err.diagnostics])


def _load(source: str, base_dir: Path, target: str | None, options: dict[str, Any]) -> Dataset:
    if not source:
        raise DataError("the data source is empty", hint="give a file path or builtin:NAME")
    if source.startswith("builtin:"):
        name, args = parse_builtin(source)
        for key, value in options.items():
            if key in args:
                raise DataError(f"argument '{key}' of builtin:{name} is given twice")
            args[key] = value
        return _check_target(call_builtin(name, args), target)
    path = _resolve(source, base_dir)
    fmt, reader = _reader_for(path)
    try:
        return reader(path, target, options)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        # a malformed file, in whatever words the parser found for it
        raise DataError(f"cannot read '{path}' as {fmt}: {e}") from None


def _resolve(source: str, base_dir: Path) -> Path:
    path = Path(source).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if not path.exists():
        raise DataError(
            f"data file '{path}' does not exist",
            hint="relative paths are read from the spec file's folder",
        )
    if not path.is_file():
        raise DataError(f"data source '{path}' is not a file")
    return path


Reader = Callable[[Path, str | None, dict[str, Any]], Dataset]


def _reader_for(path: Path) -> tuple[str, Reader]:
    name = path.name.lower()
    if name.endswith(".npz"):
        return "npz", _read_npz
    if name.endswith(".npy"):
        return "npy", _read_npy
    if name.endswith(".csv"):
        return "csv", _read_csv
    if name.endswith(".tsv"):
        return "tsv", _read_csv
    if re.search(r"idx\d-ubyte(\.gz)?$", name):
        return "IDX", _read_idx
    raise DataError(
        f"unknown data format '{path.suffix or path.name}' of '{path}'",
        hint=f"supported: {FORMATS}, and builtin:NAME",
    )


def _take_options(options: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    for key in options:
        if key not in allowed:
            hint = f"options of {what}: {', '.join(allowed)}" if allowed else None
            raise DataError(
                f"unknown option '{key}' for {what}{did_you_mean(key, allowed)}"
                + ("" if allowed else f" ({what} takes no options)"),
                hint=hint,
            )


def _check_target(ds: Dataset, target: str | None) -> Dataset:
    """Named-array sources: the target, if given, must be one of the arrays."""
    if target is not None and str(target) not in ds.arrays:
        raise DataError(
            f"target '{target}' is not an array of {ds.name}{did_you_mean(str(target), ds.arrays)}",
            hint=f"arrays: {', '.join(ds.arrays)}",
        )
    return ds


def _infer_target(y: np.ndarray) -> tuple[np.ndarray, str, int | None]:
    """The target as training needs it, and the task it implies: non-negative whole
    numbers are class labels (per position when 2-D or more: a sequence), anything
    else is a regression target."""
    whole = y.dtype.kind in "biu" or (
        y.dtype.kind == "f" and bool(np.all(np.isfinite(y))) and bool(np.all(y == np.round(y)))
    )
    if whole and y.size and y.min() >= 0:
        classes = int(y.max()) + 1
        if y.ndim == 1:
            if classes <= 2:
                return y.astype(np.int64), "binary", 2
            return y.astype(np.int64), "classification", classes
        if y.dtype.kind in "biu":  # float grids of whole numbers are still measurements
            return y.astype(np.int64), "sequence", classes
    return y.astype(np.float32), "regression", None


def _numeric(key: str, value: np.ndarray, where: str) -> np.ndarray:
    if value.dtype.kind not in "biuf":
        raise DataError(
            f"array '{key}' of {where} has dtype {value.dtype}; training data must be numbers"
        )
    # integers stay exact (they may be tokens), booleans too as 0 / 1 (attention masks);
    # the trainer casts to the model's dtype
    return value.astype(np.int64 if value.dtype.kind in "biu" else np.float32)


def _read_npz(path: Path, target: str | None, options: dict[str, Any]) -> Dataset:
    _take_options(options, (), "an .npz file")
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"'{path}' is a single .npy array, not an .npz archive")
    with loaded as archive:
        arrays = {key: _npz_array(archive, key, path) for key in archive.files}
    if not arrays:
        raise DataError(f"'{path}' holds no arrays")
    ds = _check_target(Dataset(arrays, name=path.name), target)  # checks the lengths too
    if len(ds) == 0:
        raise DataError(f"'{path}' holds no examples (its arrays have length 0)")
    key = str(target) if target is not None else ("y" if "y" in arrays else None)
    if key is None:
        return ds
    arrays[key], task, classes = _infer_target(arrays[key])
    return Dataset(arrays, task, classes, path.name)


def _npz_array(archive: Any, key: str, path: Path) -> np.ndarray:
    try:
        value = archive[key]
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DataError(
                f"array '{key}' of '{path}' holds Python objects; dlc reads only numeric "
                "arrays and never unpickles"
            ) from None
        raise
    return _numeric(key, value, f"'{path.name}'")


def _read_npy(path: Path, target: str | None, options: dict[str, Any]) -> Dataset:
    _take_options(options, (), "an .npy file")
    try:
        table = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DataError(f"'{path}' holds Python objects; dlc never unpickles") from None
        raise
    if not isinstance(table, np.ndarray):
        table.close()
        raise DataError(f"'{path}' is an .npz archive, not a single .npy array")
    table = _numeric("the array", table, f"'{path.name}'")
    if table.ndim != 2 or table.shape[1] < 2:
        raise DataError(
            f"'{path}' holds an array of shape {list(table.shape)}",
            hint="an .npy data file is one 2-D array [examples, features + target]",
        )
    if table.shape[0] == 0:
        raise DataError(f"'{path}' holds no examples")
    return _from_table(table, _column(target, table.shape[1], None, path), path.name)


def _column(target: str | None, ncols: int, header: list[str] | None, path: Path) -> int:
    """The target column: a header name or an index (negative from the end); the last
    column when no target is given."""
    if target is None:
        return ncols - 1
    wanted = str(target).strip()
    if header and wanted in header:
        return header.index(wanted)
    if re.fullmatch(r"[+-]?\d+", wanted):
        index = int(wanted)
        if -ncols <= index < ncols:
            return index % ncols
        raise DataError(f"target column {index} is out of range: '{path.name}' has {ncols}")
    names = f"columns: {', '.join(header)}" if header else f"a column index 0..{ncols - 1}"
    raise DataError(
        f"target '{wanted}' is not a column of '{path.name}'{did_you_mean(wanted, header or [])}",
        hint=names,
    )


def _from_table(table: np.ndarray, column: int, name: str) -> Dataset:
    x = np.delete(table, column, axis=1).astype(np.float32)
    y, task, classes = _infer_target(table[:, column])
    return Dataset({"x": x, "y": y}, task, classes, name)


def _read_csv(path: Path, target: str | None, options: dict[str, Any]) -> Dataset:
    what = "a .tsv file" if path.name.lower().endswith(".tsv") else "a .csv file"
    _take_options(options, ("delimiter", "header"), what)
    delimiter = options.get("delimiter", "\t" if what == "a .tsv file" else ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise DataError(f"the csv delimiter must be one character, got {delimiter!r}")
    header_option = options.get("header")
    if header_option is not None and not isinstance(header_option, bool):
        raise DataError(f"the csv option 'header' must be true or false, got {header_option!r}")
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")), delimiter=delimiter)
    # (line number, cells) of the rows that are not blank; line numbers for messages
    rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"'{path}' is empty")
    has_header = header_option
    if has_header is None:  # a first row that is not all numbers is a header
        has_header = not all(_is_number(cell) for cell in rows[0][1])
    header = [cell.strip() for cell in rows[0][1]] if has_header else None
    if has_header:
        rows = rows[1:]
    if not rows:
        raise DataError(f"'{path}' has a header but no data rows")
    ncols = len(header) if header else len(rows[0][1])
    if ncols < 2:
        raise DataError(
            f"'{path}' has {ncols} column; training data needs features and a target column"
        )
    table = _parse_rows(rows, ncols, header, path)
    return _from_table(table, _column(target, ncols, header, path), path.name)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _parse_rows(
    rows: list[tuple[int, list[str]]], ncols: int, header: list[str] | None, path: Path
) -> np.ndarray:
    for line, row in rows:
        if len(row) != ncols:
            raise DataError(f"'{path.name}' line {line} has {len(row)} columns, expected {ncols}")
    try:  # numpy converts the whole table at once; the cell-by-cell walk finds a bad one
        return np.array([row for _, row in rows], dtype=np.float64)
    except ValueError:
        pass
    table = np.empty((len(rows), ncols), dtype=np.float64)
    for i, (line, row) in enumerate(rows):
        for col, cell in enumerate(row):
            try:
                table[i, col] = float(cell)
            except ValueError:
                named = f" ('{header[col]}')" if header else ""
                raise DataError(
                    f"'{path.name}' line {line}, column {col + 1}{named}: "
                    f"{cell.strip()!r} is not a number"
                ) from None
    return table


# --- MNIST IDX ------------------------------------------------------------------------

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_RENAMES = (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1"))


def _read_idx(path: Path, target: str | None, options: dict[str, Any]) -> Dataset:
    _take_options(options, (), "an IDX file")
    if re.search(r"idx1-ubyte(\.gz)?$", path.name.lower()):
        raise DataError(
            f"'{path.name}' is an IDX labels file",
            hint="name the images file (…-images-idx3-ubyte); its labels are found beside it",
        )
    images = _idx_array(path)
    labels_path = _idx_labels_path(path)
    labels = _idx_array(labels_path)
    if images.ndim != 3:
        raise DataError(
            f"'{path.name}' holds {images.ndim}-D data; IDX images are 3-D [N, rows, cols]"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"'{labels_path.name}' does not hold a 1-D list of integer labels")
    if len(images) != len(labels):
        raise DataError(
            f"'{path.name}' has {len(images)} images but '{labels_path.name}' has "
            f"{len(labels)} labels"
        )
    if len(images) == 0:
        raise DataError(f"'{path}' holds no images")
    if labels.min() < 0:
        raise DataError(f"'{labels_path.name}' holds negative labels")
    x = images.astype(np.float32)
    if images.dtype == np.uint8:
        x /= 255.0  # pixels to [0, 1]
    y = labels.astype(np.int64)
    ds = Dataset({"x": x, "y": y}, "classification", max(10, int(y.max()) + 1), path.name)
    return _check_target(ds, target)


def _idx_labels_path(images: Path) -> Path:
    name = images.name
    for old, new in IDX_RENAMES:
        if old in name:
            wanted = name.replace(old, new)
            # the labels may be gzipped where the images are not, or the other way round
            other = wanted[:-3] if wanted.endswith(".gz") else wanted + ".gz"
            for candidate in (wanted, other):
                if (images.parent / candidate).is_file():
                    return images.parent / candidate
            raise DataError(
                f"the labels file '{images.parent / wanted}' does not exist",
                hint="IDX images need their labels beside them ('images-idx3' -> 'labels-idx1')",
            )
    raise DataError(
        f"cannot find the labels of '{name}': its name has no 'images-idx3'",
        hint="the labels file is found by replacing 'images-idx3' with 'labels-idx1'",
    )


def _idx_array(path: Path) -> np.ndarray:
    try:
        raw = path.read_bytes()
        if path.name.lower().endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read '{path}': {e}") from None
    return parse_idx(raw, path.name)


def parse_idx(raw: bytes, name: str = "the IDX data") -> np.ndarray:
    """An IDX file's array: magic 00 00 TYPE NDIM, NDIM big-endian uint32 sizes, data."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise DataError(f"'{name}' is not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise DataError(f"'{name}' is not an IDX file (unknown data type 0x{code:02x})")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise DataError(f"'{name}' is truncated: its header is cut short")
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = np.dtype(IDX_TYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - start != expected:
        raise DataError(
            f"'{name}' is corrupt: the header {list(dims)} promises {expected} bytes of data, "
            f"the file has {len(raw) - start}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=start).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


# --- splitting ------------------------------------------------------------------------


def split(ds: Dataset, fraction: float, *, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(rest, held_out): round(fraction * N) examples, at least one, held out by a
    permutation seeded with `seed`. Class-labelled sets are stratified: each class is
    held out in proportion, to within one example."""
    n = len(ds)
    if not 0 < fraction < 1:  # `not <` so that nan is refused too
        raise DataError(f"the held-out fraction must be between 0 and 1, got {fraction}")
    held = max(1, math.floor(fraction * n + 0.5))
    if held >= n:
        raise DataError(
            f"{ds.name or 'the data'} has {n} example{'s' * (n != 1)}, too few to hold out "
            f"{fraction:g} of them and train on the rest"
        )
    order = np.random.default_rng(seed).permutation(n)
    labels = _strata(ds)
    if labels is None:
        return ds.subset(order[held:]), ds.subset(order[:held])
    # Group the permutation by class (random within each class), then take `held` evenly
    # spaced positions: each class gets its share, and the total is exact.
    grouped = order[np.argsort(labels[order], kind="stable")]
    picked = np.zeros(n, dtype=bool)
    picked[((np.arange(held) + 0.5) * n / held).astype(np.int64)] = True
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)

    # back in permutation order, so neither part comes sorted by class
    rest, held_out = grouped[~picked], grouped[picked]
    rest, held_out = rest[np.argsort(rank[rest])], held_out[np.argsort(rank[held_out])]
    return ds.subset(rest), ds.subset(held_out)


def _strata(ds: Dataset) -> np.ndarray | None:
    y = ds.arrays.get("y")
    if ds.task in ("classification", "binary") and y is not None and y.ndim == 1:
        if y.dtype.kind in "iu":
            return y
    return None
