"""Tests of gpuspike.bridge.units: unit strings, dimensions and dimensional analysis."""

from __future__ import annotations

from fractions import Fraction

import pytest
import sympy
from gpuspike.bridge.errors import UnitError
from gpuspike.bridge.expressions import parse_expression
from gpuspike.bridge.units import (
    DIMENSIONLESS,
    UNIT_SCALES,
    Dimension,
    check_assignment,
    dimension_of,
    parse_unit,
)

VOLT = Dimension(m=2, kg=1, s=-3, A=-1)
AMP = Dimension(A=1)
SECOND = Dimension(s=1)
SIEMENS = Dimension(m=-2, kg=-1, s=3, A=2)
FARAD = Dimension(m=-2, kg=-1, s=4, A=2)


# ----------------------------------------------------------------------------- Dimension
def test_dimension_algebra() -> None:
    assert SIEMENS * VOLT == AMP
    assert AMP / VOLT == SIEMENS
    assert (VOLT**2) ** Fraction(1, 2) == VOLT
    assert DIMENSIONLESS.is_dimensionless and not VOLT.is_dimensionless
    assert Dimension(s=1).s == Fraction(1)


def test_dimension_str() -> None:
    assert str(VOLT) == "volt"
    assert str(AMP) == "amp"
    assert str(DIMENSIONLESS) == "dimensionless"
    assert str(VOLT / SECOND**2) == "m^2 kg s^-5 A^-1"
    assert str(SECOND ** Fraction(1, 2)) == "s^1/2"


# ----------------------------------------------------------------------------- parse_unit
@pytest.mark.parametrize(
    ("text", "scale", "dim"),
    [
        ("volt", 1.0, VOLT),
        ("mV", 1e-3, VOLT),
        ("mvolt", 1e-3, VOLT),
        ("nA", 1e-9, AMP),
        ("pA", 1e-12, AMP),
        ("uA", 1e-6, AMP),
        ("µA", 1e-6, AMP),
        ("ms", 1e-3, SECOND),
        ("us", 1e-6, SECOND),
        ("nS", 1e-9, SIEMENS),
        ("pF", 1e-12, FARAD),
        ("Mohm", 1e6, VOLT / AMP),
        ("kHz", 1e3, Dimension(s=-1)),
        ("Hz", 1.0, Dimension(s=-1)),
        ("1/second", 1.0, Dimension(s=-1)),
        ("siemens/meter**2", 1.0, SIEMENS / Dimension(m=2)),
        ("uF/cm**2", 1e-6 / 1e-4, FARAD / Dimension(m=2)),
        ("mS/cm**2", 1e-3 / 1e-4, SIEMENS / Dimension(m=2)),
        ("um", 1e-6, Dimension(m=1)),
        ("kg", 1.0, Dimension(kg=1)),
        ("gram", 1e-3, Dimension(kg=1)),
        ("mM", 1.0, Dimension(mol=1, m=-3)),
        ("L", 1e-3, Dimension(m=3)),
        ("1", 1.0, DIMENSIONLESS),
        ("", 1.0, DIMENSIONLESS),
        ("metre**0.5", 1.0, Dimension(m=Fraction(1, 2))),
    ],
)
def test_parse_unit(text: str, scale: float, dim: Dimension) -> None:
    got_scale, got_dim = parse_unit(text)
    assert got_scale == pytest.approx(scale, rel=1e-12)
    assert got_dim == dim


def test_unknown_unit_suggests_close_match() -> None:
    with pytest.raises(UnitError, match=r"unknown unit 'mvolts'.*did you mean.*'mvolt'"):
        parse_unit("mvolts")


@pytest.mark.parametrize("text", ["mV +", "mV + ms", "mV**x", "'mV'"])
def test_malformed_unit(text: str) -> None:
    with pytest.raises(UnitError):
        parse_unit(text)


def test_unit_scales_mapping() -> None:
    assert UNIT_SCALES["mV"] == pytest.approx(1e-3)
    assert UNIT_SCALES["Mohm"] == pytest.approx(1e6)
    assert UNIT_SCALES["mohm"] == pytest.approx(1e-3)
    with pytest.raises(TypeError):
        UNIT_SCALES["x"] = 1.0  # type: ignore[index]


# ----------------------------------------------------------------------------- analysis
DIMS = {
    "v": VOLT, "E_L": VOLT, "I": AMP, "g": SIEMENS, "C": FARAD, "tau": SECOND,
    "t": SECOND, "dt": SECOND, "x": DIMENSIONLESS, "stim": AMP,
}


@pytest.mark.parametrize(
    ("text", "dim"),
    [
        ("(E_L - v) / tau", VOLT / SECOND),
        ("g * (E_L - v) + I", AMP),
        ("I / C", VOLT / SECOND),
        ("exp(-t / tau)", DIMENSIONLESS),
        ("exprel((v - E_L) / (v - E_L + E_L))", DIMENSIONLESS),
        ("sqrt(v**2)", VOLT),
        ("sqrt(tau)", SECOND ** Fraction(1, 2)),
        ("v > E_L", DIMENSIONLESS),
        ("where(v > E_L, v, 0)", VOLT),
        ("clip(v, 0, inf)", VOLT),
        ("minimum(v, E_L) + abs(v)", VOLT),
        ("v + rand() * E_L", VOLT),
        ("randn() * sqrt(dt)", SECOND ** Fraction(1, 2)),
        ("v - 10 * mV", VOLT),
        ("stim(t)", AMP),
        ("2 ** x", DIMENSIONLESS),
        ("x * (v > 0)", DIMENSIONLESS),
        ("floor(t / dt) * dt", SECOND),
    ],
)
def test_dimension_of(text: str, dim: Dimension) -> None:
    assert dimension_of(parse_expression(text, functions={"stim"}), DIMS) == dim


def test_adding_volt_to_amp_is_an_error() -> None:
    with pytest.raises(UnitError) as info:
        dimension_of(parse_expression("v + I"), DIMS)
    msg = str(info.value)
    assert "adding" in msg and "volt" in msg and "amp" in msg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("exp(v)", r"exp\(\) needs a dimensionless argument, got volt"),
        ("log(tau)", r"log\(\) needs a dimensionless argument"),
        ("sin(v / tau)", r"sin\(\) needs a dimensionless argument"),
        ("v > I", "comparing"),
        ("where(x > 0, v, I)", "choosing between"),
        ("clip(v, I, 1)", r"clip\(\) of"),
        ("v ** x", "needs a numeric exponent"),
        ("x ** v", "exponent"),
        ("q + v", "no unit known for symbol 'q'"),
        ("vv + v", "did you mean 'v'"),
        ("f(t)", "no unit known for the values of function 'f'"),
    ],
)
def test_dimension_errors(text: str, message: str) -> None:
    with pytest.raises(UnitError, match=message):
        dimension_of(parse_expression(text, functions={"f"}), DIMS)


def test_check_assignment() -> None:
    check_assignment(VOLT, parse_expression("v + (E_L - v) * dt / tau"), DIMS, target="v")
    check_assignment(VOLT, sympy.Integer(0), DIMS, target="v")
    with pytest.raises(UnitError, match=r"to v \(unit volt\)") as info:
        check_assignment(VOLT, parse_expression("I"), DIMS, target="v")
    assert "amp" in str(info.value)
