"""Golden tests: each meter model decodes a register map laid out as its datasheet says.

The registers are built here with ``struct`` straight from the datasheet's addresses, types
and units (shared/reference/meters.md), independent of plantems' own encoder, served by a
real pymodbus server, read by the collector's client and decoded by the model.
"""

import asyncio
import struct

import pytest

from plantems.collector.modbus.client import ModbusBus
from plantems.collector.modbus.decode import compile_plan, decode_multipliers
from plantems.config import Gateway
from plantems.localservers import free_port
from plantems.meters import RegisterType
from plantems.simulator.server import MeterRegisters, ModbusEndpoint

HR, IR = RegisterType.HOLDING, RegisterType.INPUT


def words(fmt: str, value) -> list[int]:
    raw = struct.pack(">" + fmt, value)
    return list(struct.unpack(f">{len(raw) // 2}H", raw))


# model: [(table, address, struct format, raw value)], {quantity: expected canonical value}
GOLDEN = {
    "chint_dtsu666": (
        [(HR, 0x2006, "f", 2301.0), (HR, 0x200C, "f", 1520.0), (HR, 0x2012, "f", 15200.0),
         (HR, 0x202A, "f", -870.0), (HR, 0x2044, "f", 4998.0), (HR, 0x101E, "f", 12345.5),
         (HR, 0x1032, "f", 10.0), (HR, 0x103C, "f", 2.5), (HR, 0x1046, "f", 1.0)],
        {"v_l1_v": 230.1, "i_l1_a": 1.52, "p_kw": 1.52, "pf": -0.87, "f_hz": 49.98, "e_imp_kwh": 12345.5,
         "eq_imp_kvarh": 12.5, "eq_exp_kvarh": 1.0}),
    "chint_dtsu666_h": (
        [(HR, 0x401E, "f", 777.25), (HR, 0x4028, "f", 3.5), (HR, 0x2012, "f", -5000.0)],
        {"e_imp_kwh": 777.25, "e_exp_kwh": 3.5, "p_kw": -0.5}),
    "chint_dtsu666_ct": (  # secondary-side values x IrAt 40, x UrAt 10 * 0.1
        [(HR, 0x0006, "h", 40), (HR, 0x0007, "h", 10), (HR, 0x2006, "f", 2301.0), (HR, 0x200C, "f", 2500.0),
         (HR, 0x2012, "f", 15200.0), (HR, 0x101E, "f", 100.0), (HR, 0x202A, "f", 900.0)],
        {"v_l1_v": 230.1, "i_l1_a": 100.0, "p_kw": 60.8, "e_imp_kwh": 4000.0, "pf": 0.9}),
    "eastron_sdm630": (  # input registers, W, PF + capacitive on the meter
        [(IR, 0, "f", 231.2), (IR, 6, "f", 12.5), (IR, 52, "f", -1520.0), (IR, 62, "f", 0.9),
         (IR, 70, "f", 50.02), (IR, 72, "f", 345.6), (IR, 78, "f", 12.0), (IR, 200, "f", 400.5)],
        {"v_l1_v": 231.2, "i_l1_a": 12.5, "p_kw": -1.52, "pf": -0.9, "f_hz": 50.02, "e_imp_kwh": 345.6,
         "eq_exp_kvarh": 12.0, "v_l12_v": 400.5}),
    "schneider_iem3255": (  # printed register - 1; kW; int64 Wh
        [(HR, 2999, "f", 101.5), (HR, 3027, "f", 229.0), (HR, 3059, "f", 12.5), (HR, 3109, "f", 50.01),
         (HR, 3203, "q", 123456789), (HR, 3223, "q", 5000)],
        {"i_l1_a": 101.5, "v_l1_v": 229.0, "p_kw": 12.5, "f_hz": 50.01, "e_imp_kwh": 123456.789,
         "eq_exp_kvarh": 5.0}),
    "acrel_adw300": (  # fixed-point integers; PF 0..1 signed by reactive power (capacitive here)
        [(HR, 20, "H", 2305), (HR, 26, "H", 1234), (HR, 36, "i", -15200), (HR, 44, "i", -8600), (HR, 57, "H", 870),
         (HR, 59, "H", 4999), (HR, 62, "I", 1234567), (HR, 66, "I", 250)],
        {"v_l1_v": 230.5, "i_l1_a": 12.34, "p_kw": -15.2, "q_kvar": -8.6, "pf": -0.87, "f_hz": 49.99,
         "e_imp_kwh": 12345.67, "eq_imp_kvarh": 2.5}),
    "janitza_umg604": (  # SI units: W, Wh
        [(HR, 19000, "f", 230.0), (HR, 19012, "f", 80.5), (HR, 19026, "f", 152000.0), (HR, 19050, "f", 49.97),
         (HR, 19068, "f", 5.0e6), (HR, 19100, "f", 1.2e6), (HR, 19108, "f", 3.0e3)],
        {"v_l1_v": 230.0, "i_l1_a": 80.5, "p_kw": 152.0, "f_hz": 49.97, "e_imp_kwh": 5000.0,
         "eq_imp_kvarh": 1200.0, "eq_exp_kvarh": 3.0}),
    "generic_gas_flow": (  # uint32 in 0.1 Nm3
        [(HR, 0, "I", 123_456_789), (HR, 2, "f", 412.5)],
        {"gas_m3": 12_345_678.9, "gas_m3h": 412.5}),
    "generic_air_flow": (  # uint32 m3, float32 flow and pressure
        [(HR, 0, "I", 4_000_000_000), (HR, 2, "f", 41.5), (HR, 4, "f", 6.8)],
        {"air_m3": 4_000_000_000.0, "air_m3min": 41.5, "air_bar": 6.8}),
    "siemens_pac3200": (  # float32 SI units; energy as T1 + T2 doubles in Wh
        [(HR, 1, "f", 231.5), (HR, 13, "f", 52.25), (HR, 55, "f", 49.95), (HR, 65, "f", 36_500.0),
         (HR, 67, "f", -12_000.0), (HR, 69, "f", 0.95), (HR, 801, "d", 987_654_321.5), (HR, 805, "d", 12_345_678.5),
         (HR, 817, "d", 1_000.0), (HR, 821, "d", 500.0)],
        {"v_l1_v": 231.5, "i_l1_a": 52.25, "f_hz": 49.95, "p_kw": 36.5, "q_kvar": -12.0, "pf": 0.95,
         "e_imp_kwh": 1_000_000.0, "eq_imp_kvarh": 1.5}),
    "generic_float32": (
        [(HR, 0, "f", 12.5), (HR, 6, "f", 0.93), (HR, 22, "f", 1000.25)],
        {"p_kw": 12.5, "pf": 0.93, "e_imp_kwh": 1000.25}),
}


def test_every_model_has_a_golden_case(meters):
    assert set(GOLDEN) == set(meters)


async def _poll(model, registers: MeterRegisters) -> dict[str, float]:
    port = free_port()
    endpoint = ModbusEndpoint("127.0.0.1", port, {7: registers})
    await endpoint.start()
    bus = ModbusBus(Gateway(id="g", host="127.0.0.1", port=port, timeout_s=2.0))
    try:
        await bus.connect()
        plan = compile_plan(model, max_gap_fill=model.max_gap_fill)
        mults = decode_multipliers(model, plan.multiplier_reads,
                                   [await bus.read(7, r) for r in plan.multiplier_reads])
        values, invalid = plan.decode([await bus.read(7, r) for r in plan.reads], mults)
        assert invalid == []
        assert set(registers.function_codes) <= {3, 4}
        return values
    finally:
        bus.close()
        await endpoint.stop()


@pytest.mark.parametrize("model_id", sorted(GOLDEN))
def test_golden(meters, model_id):
    model = meters[model_id]
    layout, expected = GOLDEN[model_id]
    registers = MeterRegisters()
    registers.prepare(model)  # reserved words inside the map read 0, as on the meters
    for table, address, fmt, raw in layout:
        registers.load(table, address, words(fmt, raw))
    values = asyncio.run(_poll(model, registers))
    for quantity, value in expected.items():
        assert values[quantity] == pytest.approx(value, rel=1e-6, abs=1e-9), quantity
    untouched = {r.quantity.value for r in model.registers} - set(expected)
    assert all(values[q] == 0.0 for q in untouched)
