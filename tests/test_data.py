"""Training data (runtime/train/data.py, datasets.py): every built-in, every file
format, the split, and every bad input a DataError at the spec location of the source
string."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dlc.compiler.errors import DataError, Loc, Source
from dlc.runtime.train.data import BUILTINS, Dataset, load_source, parse_idx, split

LOC = Loc(Source("spec.yaml", "text"), 3, 5, 9)

# name -> (x shape, y shape, task, num_classes, generated: depends on its seed)
EXPECTED = {
    "xor": ((4, 2), (4,), "binary", 2, False),
    "linreg": ((30, 1), (30, 1), "regression", None, True),
    "moons": ((200, 2), (200,), "binary", 2, True),
    "circles": ((200, 2), (200,), "binary", 2, True),
    "spirals": ((200, 2), (200,), "binary", 2, True),
    "digits": ((1797, 64), (1797,), "classification", 10, False),
    "iris": ((150, 4), (150,), "classification", 3, False),
    "wine": ((178, 13), (178,), "classification", 3, False),
    "breast_cancer": ((569, 30), (569,), "binary", 2, False),
    "copy": ((1000, 10), (1000, 10), "sequence", 16, True),
    "reverse": ((1000, 10), (1000, 10), "sequence", 16, True),
    "sort": ((1000, 10), (1000, 10), "sequence", 16, True),
    "sine": ((1000, 20, 1), (1000, 1), "regression", None, True),
}


def load(source: str, base_dir: Path = Path("."), **kw: Any) -> Dataset:
    return load_source(source, base_dir=base_dir, loc=LOC, **kw)


def data_error(source: str, base_dir: Path = Path("."), **kw: Any) -> DataError:
    with pytest.raises(DataError) as info:
        load(source, base_dir, **kw)
    assert info.value.loc == LOC
    return info.value


def same(a: Dataset, b: Dataset) -> bool:
    return a.arrays.keys() == b.arrays.keys() and all(
        np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays
    )


# --- built-ins ------------------------------------------------------------------------


def test_every_builtin_is_in_the_table() -> None:
    assert set(BUILTINS) == set(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_builtin_shapes_dtypes_and_task(name: str) -> None:
    x_shape, y_shape, task, classes, _ = EXPECTED[name]
    ds = load(f"builtin:{name}")
    # reverse also gives y_in, its decoder input under teacher forcing
    assert set(ds.arrays) == {"x", "y"} | ({"y_in"} if name == "reverse" else set())
    assert ds.arrays["x"].shape == x_shape and ds.arrays["y"].shape == y_shape
    assert len(ds) == x_shape[0]
    assert (ds.task, ds.num_classes, ds.name) == (task, classes, f"builtin:{name}")
    x_dtype = np.int64 if task == "sequence" else np.float32
    y_dtype = np.float32 if task == "regression" else np.int64
    assert ds.arrays["x"].dtype == x_dtype and ds.arrays["y"].dtype == y_dtype
    if classes is not None:
        y = ds.arrays["y"]
        assert y.min() >= 0 and y.max() == classes - 1


@pytest.mark.parametrize("name", EXPECTED)
def test_builtin_seed(name: str) -> None:
    first, again, other = (load(f"builtin:{name}{args}") for args in ("", "", "(seed=1)"))
    assert same(first, again)
    generated = EXPECTED[name][4]
    assert same(first, other) != generated  # fixed sets take a seed and ignore it


def test_linreg_is_the_course_line() -> None:
    ds = load("builtin:linreg")
    x, y = ds.arrays["x"].astype(np.float64), ds.arrays["y"].astype(np.float64)
    residual = y - 3 * x - 2
    assert np.all(np.abs(residual) <= 0.1 + 1e-5)
    assert residual.std() > 0.02  # the noise is there
    assert x.min() >= -5 and x.max() <= 5 and x.max() - x.min() > 5


def test_linreg_arguments() -> None:
    ds = load("builtin:linreg(n=7, noise=0, low=1, high=2, slope=-1, intercept=0.5)")
    x, y = ds.arrays["x"], ds.arrays["y"]
    assert len(ds) == 7 and x.min() >= 1 and x.max() <= 2
    np.testing.assert_allclose(y, -x + 0.5, atol=1e-6)


def test_sequence_tasks() -> None:
    for name, want in (("copy", lambda x: x), ("reverse", lambda x: x[:, ::-1]),
                       ("sort", lambda x: np.sort(x, axis=1))):  # fmt: skip
        ds = load(f"builtin:{name}(n=50, length=7, vocab=5)")
        x, y = ds.arrays["x"], ds.arrays["y"]
        assert x.shape == y.shape == (50, 7) and ds.num_classes == 5
        assert x.min() == 1 and x.max() == 4  # 0 is padding
        np.testing.assert_array_equal(y, want(x))
    assert not np.array_equal(load("builtin:sort").arrays["x"], load("builtin:sort").arrays["y"])
    reverse = load("builtin:reverse(n=5, length=4)").arrays
    np.testing.assert_array_equal(reverse["y_in"][:, 1:], reverse["y"][:, :-1])
    assert (reverse["y_in"][:, 0] == 0).all()  # the start token
    late = load("builtin:copy(n=20, length=6, delay=2)").arrays
    np.testing.assert_array_equal(late["y"][:, 2:], late["x"][:, :4])
    assert (late["y"][:, :2] == 0).all()


def test_sine_y_is_the_next_value() -> None:
    ds = load("builtin:sine(n=40, length=12)")
    s = ds.arrays["x"][:, :, 0].astype(np.float64)
    y = ds.arrays["y"][:, 0].astype(np.float64)
    # a sinusoid obeys s[t+1] = 2cos(f) s[t] - s[t-1]; fit 2cos(f) per row, predict y
    two_cos = ((s[:, :-2] + s[:, 2:]) * s[:, 1:-1]).sum(1) / (s[:, 1:-1] ** 2).sum(1)
    np.testing.assert_allclose(y, two_cos * s[:, -1] - s[:, -2], atol=1e-4)
    assert np.abs(s).max() <= 1
    noisy = load("builtin:sine(n=40, length=12, noise=0.5)")
    assert np.abs(noisy.arrays["x"]).max() > 1


def test_spirals_classes_are_balanced() -> None:
    ds = load("builtin:spirals(n=300, classes=3, turns=2)")
    assert (ds.task, ds.num_classes) == ("classification", 3)
    np.testing.assert_array_equal(np.bincount(ds.arrays["y"]), [100, 100, 100])
    assert np.linalg.norm(ds.arrays["x"], axis=1).max() <= 1 + 1e-6


def test_builtin_arguments_and_options() -> None:
    assert len(load("builtin:moons(n=50, noise=0)")) == 50
    assert len(load("builtin: circles ( n = 9 , factor = 0.2 )")) == 9
    assert len(load("builtin:moons", options={"n": 12})) == 12
    assert len(load("builtin:xor", target="y")) == 4


# --- files ------------------------------------------------------------------------------


def test_npz_x_y(tmp_path: Path) -> None:
    x = np.arange(18, dtype=np.float64).reshape(6, 3)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 2, 2, 1, 0]))
    ds = load("d.npz", tmp_path)
    assert ds.arrays["x"].dtype == np.float32 and ds.arrays["y"].dtype == np.int64
    np.testing.assert_array_equal(ds.arrays["x"], x)
    assert (ds.task, ds.num_classes, ds.name, len(ds)) == ("classification", 3, "d.npz", 6)


def test_npz_named_arrays_and_target(tmp_path: Path) -> None:
    path = tmp_path / "named.npz"
    np.savez(path, a=np.ones((4, 2)), b=np.zeros((4, 5)), label=np.array([0.0, 1.0, 1.0, 0.0]))
    ds = load(str(path), Path("/nonexistent"), target="label")  # absolute: base_dir unused
    assert set(ds.arrays) == {"a", "b", "label"}
    assert ds.arrays["label"].dtype == np.int64 and (ds.task, ds.num_classes) == ("binary", 2)
    untargeted = load(str(path))
    assert untargeted.task is None and untargeted.arrays["label"].dtype == np.float32


def test_npz_regression_and_sequence(tmp_path: Path) -> None:
    np.savez(tmp_path / "r.npz", x=np.ones((3, 2)), y=np.array([0.5, 1.0, -2.0]))
    ds = load("r.npz", tmp_path)
    assert (ds.task, ds.num_classes, ds.arrays["y"].dtype) == ("regression", None, np.float32)
    tokens = np.array([[1, 2, 3], [3, 2, 1]], dtype=np.int32)
    np.savez(tmp_path / "s.npz", x=tokens, y=tokens[:, ::-1])
    ds = load("s.npz", tmp_path)
    assert (ds.task, ds.num_classes) == ("sequence", 4)
    assert ds.arrays["x"].dtype == ds.arrays["y"].dtype == np.int64


def test_npy_target_column(tmp_path: Path) -> None:
    table = np.array([[0.5, 1.0, 2.0], [1.5, 2.0, 0.0], [2.5, 3.0, 1.0]])
    np.save(tmp_path / "t.npy", table)
    ds = load("t.npy", tmp_path)
    np.testing.assert_array_equal(ds.arrays["x"], table[:, :2])
    np.testing.assert_array_equal(ds.arrays["y"], [2, 0, 1])
    assert (ds.task, ds.num_classes) == ("classification", 3)
    first = load("t.npy", tmp_path, target="0")
    np.testing.assert_array_equal(first.arrays["x"], table[:, 1:])
    assert first.task == "regression" and first.arrays["y"].dtype == np.float32


def test_csv_with_and_without_header(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("a,label,b\n1,0,2.5\n\n3,1,4.5\n5,1,6.5\n")
    ds = load("h.csv", tmp_path, target="label")
    np.testing.assert_array_equal(ds.arrays["x"], [[1, 2.5], [3, 4.5], [5, 6.5]])
    np.testing.assert_array_equal(ds.arrays["y"], [0, 1, 1])
    assert ds.task == "binary"
    (tmp_path / "n.csv").write_text("1,2,0.25\n3,4,0.75\n")
    ds = load("n.csv", tmp_path)
    np.testing.assert_array_equal(ds.arrays["x"], [[1, 2], [3, 4]])
    assert ds.task == "regression" and ds.arrays["y"].dtype == np.float32
    by_index = load("n.csv", tmp_path, target="-3")
    np.testing.assert_array_equal(by_index.arrays["y"], [1, 3])


def test_tsv_and_delimiter_option(tmp_path: Path) -> None:
    (tmp_path / "t.tsv").write_text("x1\tx2\ty\n1\t2\t3\n4\t5\t6\n")
    assert load("t.tsv", tmp_path).arrays["x"].shape == (2, 2)
    (tmp_path / "s.csv").write_text("1;2;3\n4;5;6\n")
    ds = load("s.csv", tmp_path, options={"delimiter": ";"})
    assert (ds.task, ds.num_classes) == ("classification", 7)
    forced = load("s.csv", tmp_path, options={"delimiter": ";", "header": True})
    assert len(forced) == 1


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_mnist(folder: Path, images: np.ndarray, labels: np.ndarray, gz: bool = False) -> None:
    for name, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        raw = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)


MNIST_IMAGES = np.arange(5 * 3 * 4, dtype=np.uint8).reshape(5, 3, 4) * 4
MNIST_LABELS = np.array([3, 0, 4, 1, 9], dtype=np.uint8)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path: Path, gz: bool) -> None:
    write_mnist(tmp_path, MNIST_IMAGES, MNIST_LABELS, gz)
    ds = load("train-images-idx3-ubyte" + ".gz" * gz, tmp_path)
    x, y = ds.arrays["x"], ds.arrays["y"]
    assert x.dtype == np.float32 and x.shape == (5, 3, 4) and y.dtype == np.int64
    np.testing.assert_allclose(x, MNIST_IMAGES / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, MNIST_LABELS)
    assert (ds.task, ds.num_classes) == ("classification", 10)


def test_idx_labels_beside_gzipped_images(tmp_path: Path) -> None:
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(MNIST_IMAGES)))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(MNIST_LABELS))
    assert len(load("t10k-images-idx3-ubyte.gz", tmp_path)) == 5


def test_parse_idx_types() -> None:
    values = np.array([[1.5, -2.0], [3.0, 4.25]], dtype=">f4")
    got = parse_idx(idx_bytes(values, 0x0D))
    np.testing.assert_array_equal(got, values)
    assert got.dtype == np.float32 and got.dtype.isnative
    np.testing.assert_array_equal(parse_idx(idx_bytes(np.array([-3, 7], ">i2"), 0x0B)), [-3, 7])


# --- split ------------------------------------------------------------------------------


def numbered(n: int) -> Dataset:
    return Dataset({"x": np.arange(n, dtype=np.float32)[:, None], "y": np.zeros(n, np.float32)},
                   "regression", None, "numbered")  # fmt: skip


def test_split_sizes_disjoint_and_seeded() -> None:
    ds = numbered(100)
    rest, held = split(ds, 0.2, seed=3)
    assert (len(rest), len(held)) == (80, 20)
    ids = np.concatenate([rest.arrays["x"][:, 0], held.arrays["x"][:, 0]])
    np.testing.assert_array_equal(np.sort(ids), np.arange(100))
    assert (rest.task, rest.name, held.task) == ("regression", "numbered", "regression")
    again = split(ds, 0.2, seed=3)
    assert same(rest, again[0]) and same(held, again[1])
    assert not same(held, split(ds, 0.2, seed=4)[1])
    assert not np.array_equal(held.arrays["x"][:, 0], np.arange(20))  # permuted


def test_split_holds_out_at_least_one() -> None:
    rest, held = split(numbered(10), 0.01)
    assert (len(rest), len(held)) == (9, 1)
    assert len(split(numbered(10), 0.25)[1]) == 3  # round(2.5) up


def test_split_stratifies_classes() -> None:
    iris = load("builtin:iris")
    rest, held = split(iris, 0.2, seed=1)
    np.testing.assert_array_equal(np.bincount(held.arrays["y"]), [10, 10, 10])
    np.testing.assert_array_equal(np.bincount(rest.arrays["y"]), [40, 40, 40])
    assert not np.all(np.diff(held.arrays["y"]) >= 0)  # not left sorted by class
    assert held.num_classes == 3


def test_dataset_len_and_subset() -> None:
    ds = load("builtin:xor")
    sub = ds.subset(np.array([3, 0]))
    np.testing.assert_array_equal(sub.arrays["y"], [0, 0])
    assert (len(sub), sub.task, sub.num_classes, sub.name) == (2, "binary", 2, "builtin:xor")
    with pytest.raises(DataError, match="different lengths"):
        Dataset({"x": np.ones((3, 1)), "y": np.ones(2)})


# --- errors ------------------------------------------------------------------------------

BUILTIN_ERRORS = [
    ("builtin:digit", "unknown built-in data set 'digit' (did you mean 'digits'?)"),
    ("builtin:moons(size=3)", "builtin:moons has no argument 'size'"),
    ("builtin:moons(n=0)", "builtin:moons: n must be at least 1, got 0"),
    ("builtin:circles(noise=-0.1)", "builtin:circles: noise must be >= 0, got -0.1"),
    ("builtin:circles(factor=1.5)", "factor must be in [0, 1), got 1.5"),
    ("builtin:moons(n=2.5)", "argument 'n' of builtin:moons must be an integer, got 2.5"),
    ("builtin:moons(n=true)", "must be an integer, got True"),
    ("builtin:moons(noise=lots)", "argument 'noise' of builtin:moons must be a finite number"),
    ("builtin:moons(noise=nan)", "must be a finite number, got nan"),
    ("builtin:moons(5)", "cannot read the argument '5' of builtin:moons"),
    ("builtin:moons(n=1, n=2)", "argument 'n' of builtin:moons is given twice"),
    ("builtin:moons(n=5", "cannot read the built-in data source 'builtin:moons(n=5'"),
    ("builtin:", "cannot read the built-in data source"),
    ("builtin:linreg(low=2, high=1)", "low must be below high"),
    ("builtin:spirals(classes=1)", "classes must be in 2..1000, got 1"),
    ("builtin:copy(vocab=1)", "vocab must be in 2..2**31, got 1"),
    ("builtin:copy(length=4, delay=4)", "delay must be in [0, length), got 4"),
    ("builtin:sine(length=0)", "length must be at least 1, got 0"),
    ("builtin:copy(n=100000000, length=10)", "makes more than 10^8 numbers"),
    ("builtin:xor(seed=-1)", "seed must be in 0..2**32-1, got -1"),
    ("", "the data source is empty"),
]


@pytest.mark.parametrize(("source", "message"), BUILTIN_ERRORS)
def test_builtin_errors(source: str, message: str) -> None:
    assert message in data_error(source).message


def test_builtin_error_hints() -> None:
    assert "builtins: xor, linreg, moons" in (data_error("builtin:nope").hint or "")
    assert data_error("builtin:moons(size=3)").hint == "its arguments: n, noise, seed"
    err = data_error("builtin:moons(n=3)", options={"n": 4})
    assert err.message == "argument 'n' of builtin:moons is given twice"
    err = data_error("builtin:xor", target="label")
    assert "target 'label' is not an array of builtin:xor" in err.message
    assert err.hint == "arrays: x, y"


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    err = data_error("sub/missing.csv", tmp_path)
    assert err.message == f"data file '{tmp_path / 'sub' / 'missing.csv'}' does not exist"
    (tmp_path / "d.xlsx").write_text("")
    err = data_error("d.xlsx", tmp_path)
    assert err.message.startswith("unknown data format '.xlsx'")
    assert ".npz, .npy, .csv, .tsv, MNIST IDX" in (err.hint or "")
    assert "is not a file" in data_error(".", tmp_path).message


def test_npz_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 this is no zip archive")
    assert data_error("bad.npz", tmp_path).message.startswith(f"cannot read '{tmp_path}")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object))
    assert "holds Python objects" in data_error("obj.npz", tmp_path).message
    np.savez(tmp_path / "str.npz", x=np.array(["a", "b"]))
    assert "has dtype <U1; training data must be numbers" in data_error("str.npz", tmp_path).message
    np.savez(tmp_path / "ragged.npz", x=np.ones((4, 2)), y=np.ones(3))
    err = data_error("ragged.npz", tmp_path)
    assert err.message == "arrays of different lengths in ragged.npz: 'x' has 4, 'y' has 3"
    np.savez(tmp_path / "t.npz", x=np.ones((2, 2)), y=np.ones(2))
    err = data_error("t.npz", tmp_path, target="yy")
    assert err.message == "target 'yy' is not an array of t.npz (did you mean 'y'?)"
    assert err.hint == "arrays: x, y"
    np.savez(tmp_path / "none.npz")
    assert "holds no arrays" in data_error("none.npz", tmp_path).message
    np.savez(tmp_path / "zero.npz", x=np.ones((0, 2)), y=np.ones(0))
    assert "holds no examples" in data_error("zero.npz", tmp_path).message
    np.savez(tmp_path / "scalar.npz", x=np.ones(2), lr=np.float32(0.1))
    assert "array 'lr' is a scalar" in data_error("scalar.npz", tmp_path).message
    np.save(tmp_path / "single.npy", np.ones((2, 2)))
    (tmp_path / "single.npz").write_bytes((tmp_path / "single.npy").read_bytes())
    assert "not an .npz archive" in data_error("single.npz", tmp_path).message
    assert "takes no options" in data_error("t.npz", tmp_path, options={"sep": ","}).message


def test_npy_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "flat.npy", np.ones(5))
    err = data_error("flat.npy", tmp_path)
    assert err.message.endswith("holds an array of shape [5]") and "2-D" in (err.hint or "")
    np.save(tmp_path / "obj.npy", np.array([None, 1], dtype=object))
    assert "holds Python objects" in data_error("obj.npy", tmp_path).message
    np.save(tmp_path / "ok.npy", np.ones((3, 3)))
    assert "target column 3 is out of range" in data_error("ok.npy", tmp_path, target="3").message
    err = data_error("ok.npy", tmp_path, target="label")
    assert err.message == "target 'label' is not a column of 'ok.npy'"
    assert err.hint == "a column index 0..2"
    (tmp_path / "trunc.npy").write_bytes((tmp_path / "ok.npy").read_bytes()[:-10])
    assert data_error("trunc.npy", tmp_path).message.startswith("cannot read")
    np.save(tmp_path / "empty.npy", np.ones((0, 3)))
    assert "holds no examples" in data_error("empty.npy", tmp_path).message


def test_csv_errors(tmp_path: Path) -> None:
    (tmp_path / "cell.csv").write_text("a,b,y\n1,2,0\n3,oops,1\n")
    err = data_error("cell.csv", tmp_path)
    assert err.message == "'cell.csv' line 3, column 2 ('b'): 'oops' is not a number"
    (tmp_path / "gap.csv").write_text("1,2,0\n3,,1\n")
    err = data_error("gap.csv", tmp_path)
    assert err.message == "'gap.csv' line 2, column 2: '' is not a number"
    (tmp_path / "ragged.csv").write_text("1,2,0\n3,4\n")
    err = data_error("ragged.csv", tmp_path)
    assert err.message == "'ragged.csv' line 2 has 2 columns, expected 3"
    (tmp_path / "h.csv").write_text("width,height,label\n1,2,0\n")
    err = data_error("h.csv", tmp_path, target="lable")
    assert err.message == "target 'lable' is not a column of 'h.csv' (did you mean 'label'?)"
    assert err.hint == "columns: width, height, label"
    (tmp_path / "empty.csv").write_text("\n\n")
    assert data_error("empty.csv", tmp_path).message.endswith("is empty")
    (tmp_path / "head.csv").write_text("a,b\n")
    assert "has a header but no data rows" in data_error("head.csv", tmp_path).message
    (tmp_path / "one.csv").write_text("1\n2\n")
    assert "has 1 column" in data_error("one.csv", tmp_path).message
    err = data_error("h.csv", tmp_path, options={"delimter": ";"})
    assert err.message == "unknown option 'delimter' for a .csv file (did you mean 'delimiter'?)"
    assert "one character" in data_error("h.csv", tmp_path, options={"delimiter": ";;"}).message
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00garbage")
    assert data_error("bin.csv", tmp_path).message.startswith("cannot read")


def test_idx_errors(tmp_path: Path) -> None:
    (tmp_path / "a-images-idx3-ubyte").write_bytes(b"\x01\x02\x08\x03")
    assert "bad magic number" in data_error("a-images-idx3-ubyte", tmp_path).message
    write_mnist(tmp_path, MNIST_IMAGES, MNIST_LABELS)
    raw = idx_bytes(MNIST_IMAGES)
    (tmp_path / "b-images-idx3-ubyte").write_bytes(raw[:-3])
    (tmp_path / "b-labels-idx1-ubyte").write_bytes(idx_bytes(MNIST_LABELS))
    err = data_error("b-images-idx3-ubyte", tmp_path)
    assert err.message == ("'b-images-idx3-ubyte' is corrupt: the header [5, 3, 4] promises "
                           "60 bytes of data, the file has 57")  # fmt: skip
    (tmp_path / "c-images-idx3-ubyte").write_bytes(raw)
    err = data_error("c-images-idx3-ubyte", tmp_path)
    assert err.message == f"the labels file '{tmp_path / 'c-labels-idx1-ubyte'}' does not exist"
    (tmp_path / "c-labels-idx1-ubyte").write_bytes(idx_bytes(MNIST_LABELS[:4]))
    err = data_error("c-images-idx3-ubyte", tmp_path)
    assert err.message == ("'c-images-idx3-ubyte' has 5 images but 'c-labels-idx1-ubyte' has "
                           "4 labels")  # fmt: skip
    assert "is an IDX labels file" in data_error("train-labels-idx1-ubyte", tmp_path).message
    (tmp_path / "odd-idx3-ubyte").write_bytes(raw)
    assert "has no 'images-idx3'" in data_error("odd-idx3-ubyte", tmp_path).message
    (tmp_path / "d-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    assert data_error("d-images-idx3-ubyte.gz", tmp_path).message.startswith("cannot read")
    (tmp_path / "e-images-idx3-ubyte").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01x")
    assert "unknown data type 0x07" in data_error("e-images-idx3-ubyte", tmp_path).message


def test_split_errors() -> None:
    for fraction in (0.0, 1.0, -0.5, float("nan")):
        with pytest.raises(DataError, match="between 0 and 1"):
            split(numbered(10), fraction)
    with pytest.raises(DataError, match="numbered has 1 example, too few to hold out 0.5"):
        split(numbered(1), 0.5)
    with pytest.raises(DataError, match="too few"):
        split(numbered(4), 0.9)  # round(3.6) = 4 leaves nothing to train on


def test_errors_without_loc_and_cheap_import() -> None:
    with pytest.raises(DataError) as info:
        load_source("builtin:nope", base_dir=Path("."))
    assert info.value.loc is None
    code = "import sys, dlc.runtime.train.data; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
