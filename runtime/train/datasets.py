"""The `Dataset` every data source becomes, and the built-in data sets (`builtin:NAME` or
`builtin:NAME(k=v, ...)`): generated ones (xor, linreg, moons, circles, spirals, and the
sequence tasks copy, reverse, sort, sine) and scikit-learn's bundled ones (digits, iris,
wine, breast_cancer). data.py loads files and splits; see its docstring for what
a `Dataset` guarantees.

Generated sets depend only on their own `seed` argument (default 0), never on the
training seed; nothing is downloaded.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...compiler.errors import DataError, did_you_mean

# A generated set this big is a typo in `n` or `length`, not a data set: refuse it
# before numpy tries to allocate it.
MAX_ELEMENTS = 100_000_000


@dataclass(frozen=True)
class Dataset:
    """Named arrays, one row per example along axis 0; conventionally "x" and "y"."""

    arrays: dict[str, np.ndarray]
    task: str | None = None  # "classification" | "binary" | "regression" | "sequence"
    num_classes: int | None = None
    name: str = ""  # "builtin:digits" or the file name, for messages

    def __post_init__(self) -> None:
        lengths = {key: _rows(key, value) for key, value in self.arrays.items()}
        if len(set(lengths.values())) > 1:
            listed = ", ".join(f"'{k}' has {n}" for k, n in lengths.items())
            raise DataError(
                f"arrays of different lengths in {self.name or 'the data'}: {listed}",
                hint="every array needs one row per example",
            )

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values()))) if self.arrays else 0

    def subset(self, index: np.ndarray) -> Dataset:
        """The examples at `index` (indices or a boolean mask), same task and name."""
        chosen = {key: value[index] for key, value in self.arrays.items()}
        return Dataset(chosen, self.task, self.num_classes, self.name)


def _rows(key: str, value: np.ndarray) -> int:
    if value.ndim == 0:
        raise DataError(f"array '{key}' is a scalar; every array needs one row per example")
    return int(value.shape[0])


_BUILTIN = re.compile(r"builtin:\s*(?P<name>\w*)\s*(?:\((?P<args>.*)\))?\s*", re.DOTALL)
_INT = re.compile(r"[+-]?\d+(_\d+)*")
_NAME = re.compile(r"[A-Za-z_]\w*")


def parse_builtin(source: str) -> tuple[str, dict[str, Any]]:
    """'builtin:moons(n=100, noise=0.2)' -> ('moons', {'n': 100, 'noise': 0.2})."""
    match = _BUILTIN.fullmatch(source)
    if not match or not match["name"]:
        raise DataError(
            f"cannot read the built-in data source '{source}'",
            hint="write builtin:NAME or builtin:NAME(k=v, k2=v2)",
        )
    args: dict[str, Any] = {}
    text = match["args"]
    for part in text.split(",") if text and text.strip() else []:
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not _NAME.fullmatch(key) or not value:
            raise DataError(
                f"cannot read the argument '{part.strip()}' of builtin:{match['name']}",
                hint="arguments are written name=value, separated by commas",
            )
        if key in args:
            raise DataError(f"argument '{key}' of builtin:{match['name']} is given twice")
        args[key] = _value(value)
    return match["name"], args


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text  # a bare word


def call_builtin(name: str, args: Mapping[str, Any]) -> Dataset:
    """Built-in `name` made with `args`, each checked against its signature."""
    make = BUILTINS.get(name)
    if make is None:
        raise DataError(
            f"unknown built-in data set '{name}'{did_you_mean(name, BUILTINS)}",
            hint=f"builtins: {', '.join(BUILTINS)}",
        )
    params = inspect.signature(make).parameters
    kwargs = {}
    for key, value in args.items():
        if key not in params:
            raise DataError(
                f"builtin:{name} has no argument '{key}'{did_you_mean(key, params)}",
                hint=f"its arguments: {', '.join(params)}",
            )
        kwargs[key] = _coerce(name, key, value, params[key].default)
    return make(**kwargs)


def _coerce(name: str, key: str, value: Any, default: Any) -> Any:
    """`value` as the type of the argument's default; a YAML or spec-string value."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value)
        kind, value = "a finite number", float(value) if ok else value
    else:
        ok, kind = isinstance(value, str), "a word"
    if not ok:
        raise DataError(f"argument '{key}' of builtin:{name} must be {kind}, got {value!r}")
    return value


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise DataError(f"builtin:{name}: {message}")


def _rng(name: str, seed: int) -> np.random.Generator:
    _require(0 <= seed < 2**32, name, f"seed must be in 0..2**32-1, got {seed}")
    return np.random.default_rng(seed)


def _check_n(name: str, n: int, per_example: int = 1) -> None:
    _require(n >= 1, name, f"n must be at least 1, got {n}")
    _require(n * per_example <= MAX_ELEMENTS, name, f"n={n} makes more than 10^8 numbers")


def _check_noise(name: str, noise: float) -> None:
    _require(noise >= 0 and math.isfinite(noise), name, f"noise must be >= 0, got {noise}")


def _labels(x: np.ndarray, y: np.ndarray, name: str) -> Dataset:
    classes = int(y.max()) + 1
    task = "binary" if classes <= 2 else "classification"
    return Dataset(
        {"x": x.astype(np.float32), "y": y.astype(np.int64)}, task, max(classes, 2), name
    )


def _xor(*, seed: int = 0) -> Dataset:
    """The four points of XOR. Fixed: `seed` is accepted like every built-in's."""
    _rng("xor", seed)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    return _labels(x, np.array([0, 1, 1, 0]), "builtin:xor")


def _linreg(
    *,
    n: int = 30,
    noise: float = 0.1,
    low: float = -5.0,
    high: float = 5.0,
    slope: float = 3.0,
    intercept: float = 2.0,
    seed: int = 0,
) -> Dataset:
    """y = slope*x + intercept + U(-noise, noise), x ~ U(low, high): x, y float32 [N, 1]."""
    rng = _rng("linreg", seed)
    _check_n("linreg", n)
    _check_noise("linreg", noise)
    _require(low < high, "linreg", f"low must be below high, got low={low}, high={high}")
    x = rng.uniform(low, high, (n, 1)).astype(np.float32)
    # y from the float32 x, so that y - slope*x - intercept is the noise up to rounding
    y = slope * x.astype(np.float64) + intercept + rng.uniform(-noise, noise, (n, 1))
    return Dataset({"x": x, "y": y.astype(np.float32)}, "regression", None, "builtin:linreg")


def _moons(*, n: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Two interleaved half circles (sklearn's make_moons): x float32 [N, 2], y [N]."""
    _rng("moons", seed)
    _check_n("moons", n, 2)
    _check_noise("moons", noise)
    x, y = _sklearn_datasets("moons").make_moons(n_samples=n, noise=noise, random_state=seed)
    return _labels(x, y, "builtin:moons")


def _circles(*, n: int = 200, noise: float = 0.05, factor: float = 0.5, seed: int = 0) -> Dataset:
    """A circle inside a circle (sklearn's make_circles): x float32 [N, 2], y [N]."""
    _rng("circles", seed)
    _check_n("circles", n, 2)
    _check_noise("circles", noise)
    _require(0 <= factor < 1, "circles", f"factor must be in [0, 1), got {factor}")
    make = _sklearn_datasets("circles").make_circles
    x, y = make(n_samples=n, noise=noise, factor=factor, random_state=seed)
    return _labels(x, y, "builtin:circles")


def _spirals(
    *, n: int = 200, classes: int = 2, noise: float = 0.2, turns: float = 1.0, seed: int = 0
) -> Dataset:
    """`classes` interleaved spiral arms from the centre out to radius 1, the same number
    of points on each: x float32 [N, 2], y int64 [N]. `noise` is the standard deviation
    of the angle in radians, so arms blur more the further out they are."""
    rng = _rng("spirals", seed)
    _check_n("spirals", n, 2)
    _check_noise("spirals", noise)
    _require(2 <= classes <= 1000, "spirals", f"classes must be in 2..1000, got {classes}")
    _require(0 < turns <= 100, "spirals", f"turns must be in (0, 100], got {turns}")
    y = rng.permutation(np.arange(n) % classes)
    radius = rng.uniform(0.0, 1.0, n)
    angle = 2 * np.pi * (turns * radius + y / classes) + noise * rng.standard_normal(n)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return _labels(x, y, "builtin:spirals")


def _sklearn_datasets(name: str) -> Any:
    try:  # lazily: importing dlc.runtime.data must stay cheap
        from sklearn import datasets
    except ImportError:
        raise DataError(
            f"builtin:{name} needs scikit-learn", hint="pip install scikit-learn"
        ) from None
    return datasets


def _bundled(name: str, seed: int) -> Dataset:
    """A classic set bundled with scikit-learn (no download): raw features, int labels."""
    _rng(name, seed)
    x, y = getattr(_sklearn_datasets(name), f"load_{name}")(return_X_y=True)
    return _labels(x, y, f"builtin:{name}")


def _digits(*, seed: int = 0) -> Dataset:
    """8x8 handwritten digits, pixels 0..16: x float32 [1797, 64], 10 classes."""
    return _bundled("digits", seed)


def _iris(*, seed: int = 0) -> Dataset:
    """Fisher's irises: x float32 [150, 4], 3 classes."""
    return _bundled("iris", seed)


def _wine(*, seed: int = 0) -> Dataset:
    """Wine cultivars: x float32 [178, 13], 3 classes."""
    return _bundled("wine", seed)


def _breast_cancer(*, seed: int = 0) -> Dataset:
    """Wisconsin breast cancer: x float32 [569, 30], binary."""
    return _bundled("breast_cancer", seed)


def _tokens(name: str, n: int, length: int, vocab: int, seed: int) -> np.ndarray:
    """Random tokens in [1, vocab): 0 is left free for padding."""
    rng = _rng(name, seed)
    _require(length >= 1, name, f"length must be at least 1, got {length}")
    _check_n(name, n, length)
    _require(2 <= vocab <= 2**31, name, f"vocab must be in 2..2**31, got {vocab}")
    return rng.integers(1, vocab, (n, length), dtype=np.int64)


def _sequence(name: str, x: np.ndarray, y: np.ndarray, vocab: int) -> Dataset:
    return Dataset({"x": x, "y": np.ascontiguousarray(y)}, "sequence", vocab, f"builtin:{name}")


def _copy(
    *, n: int = 1000, length: int = 10, vocab: int = 16, delay: int = 0, seed: int = 0
) -> Dataset:
    """Copy the tokens, `delay` steps late: x, y int64 [N, length], y_t = x_(t-delay)
    (token 0 before the first), so a causal model must look `delay` tokens back."""
    _require(0 <= delay < length, "copy", f"delay must be in [0, length), got {delay}")
    x = _tokens("copy", n, length, vocab, seed)
    y = np.zeros_like(x)
    y[:, delay:] = x[:, : length - delay]
    return _sequence("copy", x, y, vocab)


def _reverse(*, n: int = 1000, length: int = 10, vocab: int = 16, seed: int = 0) -> Dataset:
    """Reverse the tokens: x, y int64 [N, length], y = x backwards; and y_in, y shifted
    one step right behind a start token 0: a decoder's input under teacher forcing."""
    x = _tokens("reverse", n, length, vocab, seed)
    ds = _sequence("reverse", x, x[:, ::-1], vocab)
    y_in = np.zeros_like(x)
    y_in[:, 1:] = ds.arrays["y"][:, :-1]
    return Dataset({**ds.arrays, "y_in": y_in}, ds.task, ds.num_classes, ds.name)


def _sort(*, n: int = 1000, length: int = 10, vocab: int = 16, seed: int = 0) -> Dataset:
    """Sort the tokens: x, y int64 [N, length], y = x in ascending order."""
    x = _tokens("sort", n, length, vocab, seed)
    return _sequence("sort", x, np.sort(x, axis=1), vocab)


def _sine(*, n: int = 1000, length: int = 20, noise: float = 0.0, seed: int = 0) -> Dataset:
    """Forecast a sine wave: x float32 [N, length, 1] a window of sin(f*t + phase) with a
    random phase and a frequency f of 0.1..0.5 radians per step (periods of 12 to 63
    steps), y float32 [N, 1] the value after it; `noise` is Gaussian, on every value."""
    rng = _rng("sine", seed)
    _require(length >= 1, "sine", f"length must be at least 1, got {length}")
    _check_n("sine", n, length + 1)
    _check_noise("sine", noise)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    freq = rng.uniform(0.1, 0.5, (n, 1))
    series = np.sin(freq * np.arange(length + 1) + phase)
    series += noise * rng.standard_normal(series.shape)
    x = series[:, :length, None].astype(np.float32)
    y = series[:, length:].astype(np.float32)
    return Dataset({"x": x, "y": y}, "regression", None, "builtin:sine")


BUILTINS: dict[str, Callable[..., Dataset]] = {
    "xor": _xor,
    "linreg": _linreg,
    "moons": _moons,
    "circles": _circles,
    "spirals": _spirals,
    "digits": _digits,
    "iris": _iris,
    "wine": _wine,
    "breast_cancer": _breast_cancer,
    "copy": _copy,
    "reverse": _reverse,
    "sort": _sort,
    "sine": _sine,
}
