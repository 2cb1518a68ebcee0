"""Device decoding: a meter's NaN is left out and counted, never replaced."""

import math
import struct

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
