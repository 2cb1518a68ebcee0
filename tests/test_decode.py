"""Device decoding: a meter's NaN is left out and counted, never replaced."""

import math
import struct

import pytest

from plantems.collector.modbus.decode import compile_plan


def words(*floats):
    raw = struct.pack(f">{len(floats)}f", *floats)
    return list(struct.unpack(f">{len(raw) // 2}H", raw))


def test_nan_is_left_out(meters):
    model = meters["generic_float32"]
    plan = compile_plan(model, max_gap_fill=4)
    values = [float(i) for i in range(15)]
    values[0] = math.nan  # p_kw: the meter says "not available"
    decoded, invalid = plan.decode([words(*values)], {})
    assert invalid == ["p_kw"] and "p_kw" not in decoded
    assert decoded["q_kvar"] == 1.0 and decoded["e_imp_kwh"] == 11.0


def test_a_summed_quantity_with_a_nan_part_is_left_out(meters):
    model = meters["chint_dtsu666"]  # eq_imp_kvarh = quadrant I + quadrant II
    plan = compile_plan(model, max_gap_fill=model.max_gap_fill)
    results = [[0] * r.count for r in plan.reads]
    energy = next(i for i, r in enumerate(plan.reads) if r.address == 0x101E)
    offset = 0x103C - 0x101E  # quadrant II
    results[energy][offset:offset + 2] = words(math.nan)
    decoded, invalid = plan.decode(results, {})
    assert "eq_imp_kvarh" not in decoded and invalid == ["eq_imp_kvarh"]
    assert decoded["eq_exp_kvarh"] == 0.0


UNSIGNED_PF_METER = """\
vendor: ACME
model: PF-1
datasheet: ACME PF-1 manual p. 3
defaults: {register_type: holding, data_type: float32}
registers:
  - {quantity: q_kvar, address: 0}
  - {quantity: pf, address: 2, pf_sign: from_reactive}
  - {quantity: q_l1_kvar, address: 4}
  - {quantity: pf_l1, address: 6, pf_sign: from_reactive}
"""


def _meter(tmp_path, text: str, name: str = "acme_pf1"):
    from plantems.meters import load_meter_model

    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_meter_model(path)


@pytest.mark.parametrize(("q_kvar", "pf_raw", "expected_pf"), [
    (5.0, 0.9, 0.9),  # inductive import: lagging, +
    (-5.0, 0.9, -0.9),  # capacitive: leading, -
    (0.0, 1.0, 1.0),  # no reactive power: unity, +
    (-2.0, -0.8, -0.8),  # a stray sign on the PF register is replaced, not multiplied
    (3.0, -0.8, 0.8),
], ids=["inductive", "capacitive", "unity", "negative-raw-capacitive", "negative-raw-inductive"])
def test_an_unsigned_pf_takes_the_sign_of_reactive_power(tmp_path, q_kvar, pf_raw, expected_pf):
    plan = compile_plan(_meter(tmp_path, UNSIGNED_PF_METER), max_gap_fill=4)
    decoded, invalid = plan.decode([words(q_kvar, pf_raw, -q_kvar, pf_raw)], {})
    assert invalid == []
    assert decoded["pf"] == pytest.approx(expected_pf) and decoded["q_kvar"] == q_kvar
    assert decoded["pf_l1"] == pytest.approx(-expected_pf if q_kvar else expected_pf)  # its own phase's q


def test_an_unsigned_pf_without_its_reactive_power_is_left_out(tmp_path):
    plan = compile_plan(_meter(tmp_path, UNSIGNED_PF_METER), max_gap_fill=4)
    decoded, invalid = plan.decode([words(math.nan, 0.9, 2.0, 0.7)], {})
    assert sorted(invalid) == ["pf", "q_kvar"] and "pf" not in decoded  # never guessed inductive
    assert decoded["pf_l1"] == pytest.approx(0.7)


@pytest.mark.parametrize(("edit", "rule"), [
    (lambda t: t.replace("{quantity: q_kvar, address: 0}", "{quantity: q_kvar, address: 0, pf_sign: from_reactive}"),
     ".yaml:6: pf_sign = 'from_reactive': from_reactive applies to power factors (pf, pf_l1, pf_l2, pf_l3), "
     "not to q_kvar"),
    (lambda t: t.replace("{quantity: q_kvar, address: 0}", "{quantity: p_kw, address: 0}"),
     ".yaml:7: pf_sign = 'from_reactive': from_reactive on pf needs a q_kvar register in the model"),
    (lambda t: t.replace("pf_sign: from_reactive}\n  - {quantity: q_l1", "pf_sign: by_magic}\n  - {quantity: q_l1"),
     ".yaml:7: pf_sign = 'by_magic': Input should be 'as_read' or 'from_reactive'"),
], ids=["not-a-pf", "no-reactive-register", "unknown-option"])
def test_pf_sign_is_refused_where_it_cannot_work(tmp_path, edit, rule):
    from plantems.yamlconf import ConfigError

    with pytest.raises(ConfigError) as refused:
        _meter(tmp_path, edit(UNSIGNED_PF_METER))
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0].startswith(str(tmp_path / "acme_pf1.yaml")), refused.value.problems
    assert rule in refused.value.problems[0], refused.value.problems
