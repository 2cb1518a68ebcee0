import pytest

from plantems.collector.modbus.planner import Span, plan_reads
from plantems.meters import Hole, RegisterType

H, INP = RegisterType.HOLDING, RegisterType.INPUT


def spans(addresses, kind=H, words=1):
    return [Span(kind, a, words) for a in addresses]


@pytest.mark.parametrize(("given", "options", "expected"), [
    (spans([1, 2, 3, 5, 6, 10, 11, 12, 14]), {}, [(1, 3), (5, 2), (10, 3), (14, 1)]),
    (spans([1, 2, 3, 5, 6, 10, 11, 12, 14]), {"max_gap_fill": 2}, [(1, 6), (10, 5)]),
    (spans([0, 100, 124]), {"max_gap_fill": 200}, [(0, 125)]),
    (spans([0, 100, 125]), {"max_gap_fill": 200}, [(0, 101), (125, 1)]),
    (spans([0, 2, 4], words=2), {}, [(0, 6)]),
    (spans([0, 10]), {"max_gap_fill": 20, "holes": [Hole(start=5, end=6)]}, [(0, 1), (10, 1)]),
    (spans([0, 10]), {"max_gap_fill": 20, "holes": [Hole(start=5, end=6, register_type=INP)]}, [(0, 11)]),
    (spans([0, 4, 7]), {"even_count": True}, [(0, 2), (4, 2), (7, 2)]),
    (spans([0, 3]), {"even_count": True, "max_gap_fill": 5}, [(0, 4)]),
    ([*spans([9]), Span(H, 10, 1)], {"even_count": True, "holes": [Hole(start=11, end=11)]}, [(9, 2)]),
    (spans([10]), {"even_count": True, "holes": [Hole(start=11, end=11)]}, [(9, 2)]),
], ids=["style-fill0", "style-fill2", "limit-125", "over-125-splits", "two-word-values", "never-across-hole",
        "hole-of-other-table", "even-pads-after", "even-merged", "even-already", "even-pads-before-hole"])
def test_plan_reads(given, options, expected):
    assert [(r.address, r.count) for r in plan_reads(given, **options)] == expected


def test_register_types_never_merge():
    reads = plan_reads([Span(H, 0, 2), Span(INP, 2, 2)], max_gap_fill=10)
    assert [(r.register_type, r.address, r.count) for r in reads] == [(H, 0, 2), (INP, 2, 2)]


@pytest.mark.parametrize(("now", "interval", "phase", "expected"), [
    (10.2, 1.0, 0.0, 11.0), (10.0, 1.0, 0.0, 11.0), (10.2, 1.0, 0.25, 10.25), (10.3, 1.0, 0.25, 11.25),
    (59.0, 15.0, 0.5, 67.5), (67.5, 15.0, 0.5, 82.5),
], ids=["next-second", "strictly-after", "phase-ahead", "phase-passed", "long-interval", "on-the-slot"])
def test_poll_slots(now, interval, phase, expected):
    from plantems.collector.modbus.poller import next_slot_s

    assert next_slot_s(now, interval, phase) == pytest.approx(expected)
