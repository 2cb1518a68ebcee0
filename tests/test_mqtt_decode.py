"""MQTT payload mapping: formats, timestamps, and every kind of bad payload (pure)."""

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plantems.collector.mqtt.decode import MqttDecoder, PayloadError, UnknownDevice
from plantems.config import load_plant
from tests.mqtt.plant_body import MQTT_BODY

NOW_NS = 1_795_000_000_000_000_000  # 2026-11-18T11:06:40Z


@pytest.fixture(scope="module")
def decoder(tmp_path_factory) -> MqttDecoder:
    path = Path(tmp_path_factory.mktemp("mqtt")) / "plant.yaml"
    path.write_text("site: {id: cs, timezone: Asia/Shanghai}\n" + MQTT_BODY.format(port=1883, client_id="t"))
    return MqttDecoder(load_plant(path))


def decode(decoder, topic, payload):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return decoder.decode(topic, raw, received_ns=NOW_NS)


@pytest.mark.parametrize(("topic", "payload", "device", "time_ns", "values"), [
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": 12.5}, "energy": {"import_kwh": 100}, "pf": 0.9,
                                  "v": {"l1": 2301}, "ts": 1_795_000_000},
     "fan-1", NOW_NS, {"p_kw": 12.5, "e_imp_kwh": 100.0, "pf": 0.9, "v_l1_v": 230.1}),
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": 1}, "ts": 1_794_999_999_500},
     "fan-1", NOW_NS - 500_000_000, {"p_kw": 1.0}),
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": 1}, "ts": 1_794_999_999_000_000_001},
     "fan-1", NOW_NS - 999_999_999, {"p_kw": 1.0}),
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": 1}}, "fan-1", NOW_NS, {"p_kw": 1.0}),
    ("meters/C1/p_kw", 1500, "comp-1", NOW_NS, {"p_kw": 1.5}),
    ("meters/C1/e_imp_kwh", 42.25, "comp-1", NOW_NS, {"e_imp_kwh": 42.25}),
], ids=["json-paths-scale-epoch-s", "epoch-ms", "epoch-ns", "receive-time", "value-scaled", "value-counter"])
def test_formats(decoder, topic, payload, device, time_ns, values):
    (reading,) = decode(decoder, topic, payload)
    assert reading.device.id == device
    assert reading.time_ns == time_ns
    assert reading.values == pytest.approx(values)


def test_json_array_with_iso_timestamps(decoder):
    readings = decode(decoder, "batch/pump-1", [
        {"t": "2026-11-18T19:06:39", "p_kw": 5.0},  # naive: the site's zone (UTC+8)
        {"t": "2026-11-18T11:06:40Z", "p_kw": 6.0, "e_imp_kwh": 7.0},
    ])
    assert [(r.time_ns, r.values) for r in readings] == [
        (NOW_NS - 1_000_000_000, {"p_kw": 5.0}), (NOW_NS, {"p_kw": 6.0, "e_imp_kwh": 7.0})]


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("plant/cs/fan-1/telemetry", b"{not json", "payload is not JSON"),
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": "12"}}, "field p_kw: '12' is not a number"),
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": True}}, "field p_kw: True is not a number"),
    ("plant/cs/fan-1/telemetry", b'{"power": {"total_kw": NaN}}', "field p_kw: nan is not finite"),
    ("plant/cs/fan-1/telemetry", {"pf": 1.7}, r"field pf: 1.7 is outside the configured range \[-1.0, 1.0\]"),
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": 1}, "ts": 1_795_000_900}, "900 s in the future"),
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": 1}, "ts": 1000}, "older than the raw retention"),
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": 1}, "ts": "yesterday"}, "'yesterday' is not ISO 8601"),
    ("plant/cs/fan-1/telemetry", {"voltage": 230}, "none of the mapped fields is present"),
    ("plant/cs/fan-1/telemetry", [1, 2], "expected a JSON object, got list"),
    ("plant/cs/fan-1/telemetry", b'{"power": {"total_kw": 1e999}}', "not finite"),
    ("plant/cs/fan-1/telemetry", {"power": {"total_kw": 10**400}}, "out of range"),
    ("meters/C1/q_kvar", 5, r"field 'q_kvar' is not mapped; mapped: \['e_imp_kwh', 'p_kw'\]"),
    ("batch/pump-1", {"p_kw": 1}, "not a non-empty JSON array"),
    ("batch/pump-1", [{"t": "2026-11-18T11:06:40Z", "p_kw": 1}, {"p_kw": "x"}], "field p_kw: 'x' is not a number"),
], ids=["not-json", "string", "bool", "nan", "range", "future", "too-old", "bad-iso", "no-fields", "wrong-type",
        "inf", "huge-int", "unmapped-field", "array-expected", "one-bad-element-rejects-all"])
def test_bad_payloads_are_rejected_with_a_reason(decoder, topic, payload, reason):
    with pytest.raises(PayloadError, match=reason):
        decode(decoder, topic, payload)


@pytest.mark.parametrize("topic", ["plant/cs/fan-9/telemetry", "plant/other-site/fan-1/telemetry", "x/y"])
def test_unknown_devices_and_topics(decoder, topic):
    with pytest.raises(UnknownDevice):
        decode(decoder, topic, {"power": {"total_kw": 1}})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["power", "total_kw", "energy", "import_kwh", "pf", "v", "l1", "ts", "t", "p_kw", "x"]),
        children, max_size=5),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(topic=st.sampled_from(["plant/cs/fan-1/telemetry", "meters/C1/p_kw", "batch/pump-1", "meters/C1/x"]),
       payload=st.one_of(json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()), st.binary(max_size=64)))
def test_random_payloads_never_crash_and_never_yield_invalid_points(decoder, topic, payload):
    try:
        readings = decoder.decode(topic, payload, received_ns=NOW_NS)
    except (PayloadError, UnknownDevice):
        return
    for reading in readings:
        assert reading.values
        assert all(isinstance(v, float) and math.isfinite(v) for v in reading.values.values())
        assert -1 <= reading.values.get("pf", 0) <= 1
        assert 0 <= reading.values.get("v_l1_v", 0) <= 1000
        assert reading.time_ns <= NOW_NS + 300 * 10**9


def test_simulated_plc_payloads_decode_to_what_was_published():
    from plantems.simulator.mqtt_publisher import payloads_for

    root = Path(__file__).resolve().parent.parent
    plant = load_plant(root / "config" / "plant.demo.yaml")
    decoder = MqttDecoder(plant)
    values = {"p_kw": 123.456, "q_kvar": 50.0, "pf": 0.91, "v_l1_v": 229.5, "i_l1_a": 180.25,
              "e_imp_kwh": 98765.4321, "eq_imp_kvarh": 4321.5, "f_hz": 50.0}
    for device in plant.mqtt_devices:
        (topic, payload), = payloads_for(plant, device, values, NOW_NS / 1e9)
        (reading,) = decoder.decode(topic, payload, received_ns=NOW_NS)
        assert reading.device.id == device.id and reading.time_ns == NOW_NS
        assert reading.values == pytest.approx({k: v for k, v in values.items() if k != "f_hz"})
