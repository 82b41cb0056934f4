"""The layer-spec parser every command uses: valid specs, and one clear error for the rest."""
from __future__ import annotations

import pytest

from lensteer.errors import LayerSpecError, LensteerError
from lensteer.layers import check_layer_spec, parse_layers


@pytest.mark.parametrize("spec, layers", [
    ("3", [3]),
    ("0-2", [0, 1, 2]),
    ("1,3,5", [1, 3, 5]),
    ("1, 3 ,5", [1, 3, 5]),
    ("all", [0, 1, 2, 3, 4, 5]),
    ("ALL", [0, 1, 2, 3, 4, 5]),
    ("-1", [5]),
    ("-6", [0]),
    ("-3--1", [3, 4, 5]),
    ("0-1,-1", [0, 1, 5]),
    ("2,2,1-2", [1, 2]),
    ("5-5", [5]),
])
def test_valid_specs(spec, layers):
    assert parse_layers(spec, 6) == layers


@pytest.mark.parametrize("spec, message", [
    ("-100", "Layer -100 does not exist: this model has 6 layers, 0 to 5 (or -6 to -1"),
    ("-7", "Layer -7 does not exist"),
    ("6", "Layer 6 does not exist"),
    ("0-6", "Layer 6 does not exist"),
    ("5-3", "the range 5-3 is empty"),
    ("-1-2", "is empty"),  # layer 5 to layer 2
    ("a", "'a' is not a layer or a range"),
    ("1.5", "'1.5' is not a layer"),
    ("", "The layer spec is empty"),
    ("1,,2", "an empty item"),
    ("0-", "'0-' is not a layer"),
    ("3-5-7", "'3-5-7' is not a layer"),
])
def test_bad_specs_raise_one_clear_error(spec, message):
    with pytest.raises(LayerSpecError, match=message.replace("(", r"\(")) as info:
        parse_layers(spec, 6)
    assert isinstance(info.value, LensteerError) and isinstance(info.value, ValueError)


def test_syntax_is_checked_without_a_model():
    assert check_layer_spec("0-2,5") == "0-2,5"
    assert check_layer_spec("-100") == "-100"  # the range needs the model
    for bad in ("5-3", "a", ""):
        with pytest.raises(LayerSpecError):
            check_layer_spec(bad)
