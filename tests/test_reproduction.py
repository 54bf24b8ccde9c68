"""The course's experiments (tests/reproduce.py) as tests. The quick ones run by default;
the 20-seed XOR runs with `pytest -m slow`. The bounds are the course's claims, not our
measured values: θ near the true (2, 3); digits ≥ 95% test accuracy; XOR's wide uniform
init fails often and N(0, 1/fan_in) (almost) never."""

from __future__ import annotations

import pytest
import reproduce


def test_linreg_reaches_the_true_line_with_each_optimizer() -> None:
    for label, (bias, weight) in reproduce.linreg().items():
        assert bias == pytest.approx(2.0, abs=0.03), label
        assert weight == pytest.approx(3.0, abs=0.01), label


def test_digits_mlp_with_dropout_reaches_95_percent() -> None:
    assert reproduce.digits(seeds=1)["mean"] >= 0.95


@pytest.mark.slow
def test_xor_fails_often_from_uniform_10_and_not_from_lecun() -> None:
    result = reproduce.xor(seeds=20)
    assert result["N(0, 1/fan_in)"]["failed"] <= 1
    assert result["uniform(-10, 10)"]["failed"] >= 3
