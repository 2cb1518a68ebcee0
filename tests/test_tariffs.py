from datetime import date, datetime
from pathlib import Path

import pytest

from plantems.tariffs import Period, load_tariffs, tariff_for
from plantems.yamlconf import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hunan():
    return tariff_for(load_tariffs(REPO / "config" / "tariffs"), date(2026, 11, 25))


@pytest.mark.parametrize(("local", "period"), [
    ("2026-07-15T20:00", Period.SHARP), ("2026-07-15T23:59", Period.SHARP), ("2026-07-16T00:00", Period.FLAT),
    ("2026-07-15T00:59", Period.FLAT), ("2026-07-15T01:00", Period.VALLEY), ("2026-08-31T15:59", Period.FLAT),
    ("2026-11-25T23:30", Period.VALLEY), ("2026-11-26T06:59", Period.VALLEY), ("2026-11-25T19:00", Period.SHARP),
    ("2026-11-25T18:59", Period.PEAK), ("2026-11-25T11:00", Period.FLAT),
], ids=lambda v: str(v))
def test_periods_across_midnight_and_seasons(hunan, local, period):
    assert hunan.period_at(datetime.fromisoformat(local)) is period


def test_prices_keep_the_draft_ratios(hunan):
    prices = hunan.prices_per_kwh
    assert prices[Period.PEAK] / prices[Period.FLAT] == pytest.approx(1.6)
    assert prices[Period.VALLEY] / prices[Period.FLAT] == pytest.approx(0.47)
    assert prices[Period.SHARP] / prices[Period.PEAK] == pytest.approx(1.2)
    assert hunan.status == "to-be-confirmed"


def test_version_selection(tmp_path):
    base = (REPO / "config" / "tariffs" / "hunan_industrial_2026_draft.yaml").read_text()
    (tmp_path / "a.yaml").write_text(base)
    (tmp_path / "b.yaml").write_text(base.replace("valid_from: 2026-01-01", "valid_from: 2027-01-01")
                                     .replace("id: hunan-industrial-2026-draft", "id: v2027"))
    tariffs = load_tariffs(tmp_path)
    assert tariff_for(tariffs, date(2026, 12, 31)).id == "hunan-industrial-2026-draft"
    assert tariff_for(tariffs, date(2027, 1, 1)).id == "v2027"
    with pytest.raises(LookupError, match="no tariff is valid on 2025-12-31"):
        tariff_for(tariffs, date(2025, 12, 31))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t.replace('valley: ["01:00-06:00", "12:00-15:00"]', 'valley: ["01:00-06:00"]'),
     "the day is not covered: nothing at 12:00"),
    (lambda t: t.replace('peak: ["16:00-20:00"]', 'peak: ["15:00-20:00"]'), "overlaps"),
    (lambda t: t.replace('sharp: ["20:00-24:00"]', 'sharp: ["20:00-01:00"]'), "wraps midnight"),
    (lambda t: t.replace("months: [7, 8]", "months: [8]"), r"missing \[7\]"),
], ids=["gap", "overlap", "wrap", "month-missing"])
def test_bad_calendars_are_refused_with_the_line(tmp_path, edit, message):
    text = edit((REPO / "config" / "tariffs" / "hunan_industrial_2026_draft.yaml").read_text())
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_tariffs(tmp_path)
    assert info.value.problems[0].startswith(f"{tmp_path / 't.yaml'}:")


@pytest.mark.parametrize(("now", "month"), [("2026-11-25T10:00", "2026-10"), ("2026-01-01T00:30", "2025-12"),
                                            ("2026-03-31T23:59", "2026-02")])
def test_previous_month(now, month):
    from plantems.calendar import previous_month

    assert previous_month(datetime.fromisoformat(now)) == month
