from pathlib import Path

import pytest

from plantems.collector.service import Shard, build_runtimes, mqtt_topic_filters
from plantems.config import load_plant

REPO = Path(__file__).resolve().parent.parent


def test_shards_partition_devices_and_keep_gateways_whole():
    plant = load_plant(REPO / "config" / "plant.demo.yaml")
    seen: list[str] = []
    for i in range(3):
        groups = build_runtimes(plant, Shard(i, 3))
        for connection, runtimes in groups.items():
            gateway_ids = {plant.gateway_of(r.device).id for r in runtimes}
            assert gateway_ids == {connection}
            seen.extend(r.device.id for r in runtimes)
    assert sorted(seen) == sorted(d.id for d in plant.modbus_devices)  # each device in exactly one shard
    assert build_runtimes(plant, Shard(1, 3)).keys() == build_runtimes(plant, Shard(1, 3)).keys()  # stable


@pytest.mark.parametrize("text", ["3/3", "a/2", "1", "-1/2"])
def test_bad_shard_is_refused(text):
    with pytest.raises(ValueError, match=f"shard '{text}'"):
        Shard.parse(text)


def test_mqtt_devices_are_partitioned_by_topic():
    plant = load_plant(REPO / "config" / "plant.demo.yaml")
    assert mqtt_topic_filters(plant, Shard(0, 1)) == ["plant/changsha/+/telemetry"]  # one process: wildcard
    topics = [t for i in range(2) for t in mqtt_topic_filters(plant, Shard(i, 2))]
    assert sorted(topics) == ["plant/changsha/comp-3/telemetry", "plant/changsha/fan-3/telemetry"]
