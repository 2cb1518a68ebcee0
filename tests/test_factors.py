from datetime import date
from pathlib import Path

import pytest

from plantems.factors import load_factors, select_factor
from plantems.yamlconf import ConfigError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def factors():
    return load_factors(REPO / "config" / "emission_factors.yaml")


@pytest.mark.parametrize(("method", "regions", "year", "as_of", "factor_id", "provisional"), [
    ("location", ["central_china", "national"], 2023, date(2026, 2, 1), "mee-central-2023", False),
    ("location", ["central_china", "national"], 2026, date(2026, 12, 1), "mee-central-2023", True),
    # a 2023 month reported in Dec 2025 used 2022 (provisional); the Jan 2026 publication restates it
    ("location", ["central_china", "national"], 2023, date(2025, 12, 1), "mee-central-2022", True),
    ("location", ["hunan", "central_china", "national"], 2026, date(2026, 12, 1), "mee-hunan-2022", True),
    ("location", ["national"], 2022, date(2026, 12, 1), "mee-national-2022", False),
    ("residual", ["national"], 2026, date(2026, 12, 1), "mee-residual-2023", True),
], ids=["own-year", "latest-earlier-year", "before-publication", "most-specific-region", "national", "residual"])
def test_selection_rule(factors, method, regions, year, as_of, factor_id, provisional):
    choice = select_factor(factors, method=method, regions=regions, year=year, as_of=as_of)
    assert (choice.factor.id, choice.provisional) == (factor_id, provisional)


def test_values_from_the_domain_table(factors):
    by_id = {f.id: f for f in factors}
    assert by_id["mee-national-2023"].kg_per_unit == 0.5306
    assert by_id["mee-central-2023"].kg_per_unit == 0.5271
    assert by_id["mee-residual-2023"].kg_per_unit == 0.6096
    assert by_id["mee-hunan-2022"].status == "uncertain"


def test_nothing_published_yet(factors):
    with pytest.raises(LookupError, match="no location factor for 2020"):
        select_factor(factors, method="location", regions=["national"], year=2020, as_of=date(2026, 1, 1))


def test_duplicate_factor_is_refused_with_its_line(tmp_path):
    text = (REPO / "config" / "emission_factors.yaml").read_text()
    text += ("  - {id: again, method: location, region: national, year: 2023, kg_per_unit: 0.5, status: verified,\n"
             "     published: 2026-01-15, source: x}\n")
    path = tmp_path / "f.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="location national 2023 is already given by 'mee-national-2023'") as info:
        load_factors(path)
    assert info.value.problems[0].startswith(f"{path}:{len(text.splitlines()) - 1}")


def test_natural_gas_factor_is_never_provisional(factors):
    choice = select_factor(factors, method="fuel", regions=["natural_gas"], year=2026, as_of=date(2026, 11, 25))
    assert (choice.factor.id, choice.factor.unit, choice.provisional) == ("ng-china-default", "Nm3", False)
    # 389.31 GJ/10^4 Nm3 x 15.3 kgC/GJ x 0.99 x 44/12, the arithmetic its source line states
    assert choice.factor.kg_per_unit == pytest.approx(389.31 / 1e4 * 15.3 * 0.99 * 44 / 12, abs=5e-4)
