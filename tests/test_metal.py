"""Purchased metal: the ledger refuses bad rows by line; category 1, ASI intensity, recycled share,
supplier ranking and quality flags match hand-computed cases."""

from pathlib import Path

import pytest

from plantems.analytics.metal import RECYCLED_SHARE_GOAL, monthly_summaries, summarise_metal
from plantems.metal import FootprintBasis, Product, load_metal_ledger
from plantems.targets import load_targets
from plantems.yamlconf import ConfigError

REPO = Path(__file__).resolve().parent.parent
HEADER = ("delivery_id,site,supplier,delivered,tonnes,product,footprint_t_co2e_per_t,basis,evidence,factor_year,"
          "recycled_pre_pct,recycled_post_pct\n")


def row(delivery_id="d1", site="a", supplier="S1", delivered="2026-11-05", tonnes="100", product="primary_ingot",
        footprint="4.0", basis="pcf", evidence="PCF-1 verified", year="2025", pre="", post=""):
    return (f"{delivery_id},{site},{supplier},{delivered},{tonnes},{product},{footprint},{basis},{evidence},{year},"
            f"{pre},{post}\n")


def load(tmp_path, *rows, header=HEADER, sites=("a", "b")):
    path = tmp_path / "metal.csv"
    path.write_text("# test ledger\n" + header + "".join(rows))
    return load_metal_ledger(path, sites=sites), path


# Hand-computed case (t CO2e = t x factor):
#   d1 S1 primary 100 t x 4.0 (pcf)              = 400
#   d2 S2 primary  50 t x 15.9 (default, 2020)   = 795   stale in 2026 (6 years > 5)
#   d3 S3 recycled ingot 40 t x 0.85, 25 % pre / 50 % post = 34   (10 t pre, 20 t post)
#   d4 S3 post-consumer scrap 10 t x 0.5         = 5     (10 t post)
#   d5 S4 alloying element 5 t x 10              = 50
#   d6 site b: S1 primary 30 t x 4.0             = 120
#   d7 site a, October: S1 primary 20 t x 4.0    = 80
CASE = (
    row("d1"),
    row("d2", supplier="S2", tonnes="50", footprint="15.9", basis="default_average", evidence="Peng 2022", year="2020"),
    row("d3", supplier="S3", tonnes="40", product="recycled_ingot", footprint="0.85", basis="default_average",
        evidence="Peng 2022", year="2024", pre="25", post="50"),
    row("d4", supplier="S3", tonnes="10", product="post_consumer_scrap", footprint="0.5", basis="default_average",
        evidence="EA 2024", year="2024"),
    row("d5", supplier="S4", tonnes="5", product="alloying_element", footprint="10", basis="default_average",
        evidence="placeholder", year="2026"),
    row("d6", site="b", tonnes="30"),
    row("d7", delivered="2026-10-20", tonnes="20"),
)


def test_shipped_example_ledger_loads_for_both_demo_sites():
    purchases = load_metal_ledger(REPO / "config" / "metal_purchases.csv", sites={"changsha", "changde"})
    assert {p.site for p in purchases} == {"changsha", "changde"}
    assert all(p.delivery_id.startswith("example-") for p in purchases)
    assert {p.basis for p in purchases} >= {FootprintBasis.PCF, FootprintBasis.DEFAULT_AVERAGE}


def test_rows_parse_with_their_file_lines_and_implied_recycled_content(tmp_path):
    purchases, _ = load(tmp_path, *CASE)
    assert [p.line for p in purchases] == [3, 4, 5, 6, 7, 8, 9]  # line 1 comment, line 2 header
    by_id = {p.delivery_id: p for p in purchases}
    assert (by_id["d1"].recycled_pre_pct, by_id["d1"].recycled_post_pct) == (0, 0)
    assert (by_id["d4"].recycled_pre_pct, by_id["d4"].recycled_post_pct) == (0, 100)
    assert by_id["d3"].product is Product.RECYCLED_INGOT


def test_month_for_one_site_by_hand(tmp_path):
    purchases, _ = load(tmp_path, *CASE)
    nov = summarise_metal(purchases, period="2026-11", site="a", pathway_t_co2e_per_t=5.4)
    assert nov.deliveries == 5
    assert nov.metal_input_t == pytest.approx(205)
    assert nov.aluminium_input_t == pytest.approx(200)  # the alloying element is not aluminium
    assert nov.scope3_cat1_t_co2e == pytest.approx(400 + 795 + 34 + 5 + 50)
    assert nov.alloying_t_co2e == pytest.approx(50)
    assert nov.intensity_t_co2e_per_t == pytest.approx(1234 / 200)  # 6.17 t CO2e per t Al purchased
    assert nov.meets_pathway is False
    assert nov.recycled_pre_share == pytest.approx(10 / 205)
    assert nov.recycled_post_share == pytest.approx(30 / 205)
    assert nov.recycled_share == pytest.approx(40 / 205)
    assert nov.meets_recycled_goal is False and RECYCLED_SHARE_GOAL == 0.35
    assert nov.default_average_share == pytest.approx((795 + 34 + 5 + 50) / 1284)
    assert nov.stale_factor_deliveries == ("d2",)
    assert nov.lower_quality


def test_supplier_table_ranked_by_mass_weighted_footprint(tmp_path):
    purchases, _ = load(tmp_path, *CASE)
    table = summarise_metal(purchases, period="2026-11", site="a").suppliers
    assert [(r.rank, r.supplier) for r in table] == [(1, "S3"), (2, "S1"), (3, "S4"), (4, "S2")]
    s3 = table[0]
    assert s3.t_co2e_per_t == pytest.approx((34 + 5) / 50)
    assert s3.lower_quality and not table[1].lower_quality


def test_year_and_group_totals(tmp_path):
    purchases, _ = load(tmp_path, *CASE)
    year = summarise_metal(purchases, period="2026", site="a", pathway_t_co2e_per_t=5.4)
    assert year.scope3_cat1_t_co2e == pytest.approx(1284 + 80)
    assert year.intensity_t_co2e_per_t == pytest.approx((1234 + 80) / 220)
    months = monthly_summaries(purchases, year=2026, site="a")
    assert len(months) == 12
    assert sum(m.scope3_cat1_t_co2e for m in months) == pytest.approx(year.scope3_cat1_t_co2e)
    assert months[9].scope3_cat1_t_co2e == pytest.approx(80) and months[0].intensity_t_co2e_per_t is None
    group = summarise_metal(purchases, period="2026-11")
    assert group.scope3_cat1_t_co2e == pytest.approx(1284 + 120)


def test_supplier_specific_figures_are_not_lower_quality_and_meet_the_pathway(tmp_path):
    purchases, _ = load(tmp_path, row("d1"), row("d2", tonnes="300", product="pre_consumer_scrap", footprint="0.5",
                                                 basis="epd", year="2024"))
    month = summarise_metal(purchases, period="2026-11", pathway_t_co2e_per_t=5.4)
    assert month.intensity_t_co2e_per_t == pytest.approx((400 + 150) / 400)
    assert month.meets_pathway is True and month.meets_recycled_goal is True  # 300 / 400 = 75 %
    assert not month.lower_quality and month.default_average_share == 0


def test_to_json_carries_the_bases_and_derived_figures(tmp_path):
    purchases, _ = load(tmp_path, *CASE)
    data = summarise_metal(purchases, period="2026-11", site="a").to_json()
    assert "aluminium purchased (input)" in data["intensity_basis"]
    assert data["recycled_share"] == pytest.approx(40 / 205)
    assert data["suppliers"][0]["supplier"] == "S3" and data["suppliers"][0]["lower_quality"] is True
    assert data["stale_factor_deliveries"] == ["d2"]


def test_targets_carry_the_raw_material_pathway():
    pathway = load_targets(REPO / "config" / "targets.yaml").raw_material
    assert pathway is not None
    assert (pathway.for_year(2024), pathway.for_year(2026), pathway.for_year(2031)) == (5.9, 5.4, 4.5)


def test_a_bad_period_is_refused():
    with pytest.raises(ValueError, match="period '2026-13'"):
        summarise_metal([], period="2026-13")


BAD = [
    (row(tonnes="0"), "tonnes = 0: must be positive"),
    (row(tonnes="ten"), "tonnes = 'ten': not a number"),
    (row(tonnes="nan"), "tonnes = 'nan': not a finite number"),
    (row(product="home_scrap"), "own scrap is not purchased metal"),
    (row(product="ingot"), "product = 'ingot': not one of primary_ingot"),
    (row(basis="guess"), "basis = 'guess': not one of pcf"),
    (row(footprint="159"), "footprint_t_co2e_per_t = 159: must be within 0..40"),
    (row(evidence=""), "evidence is empty"),
    (row(year="2027"), "factor_year = '2027': must be the year the footprint was determined, 1990..2026"),
    (row(delivered="2026-11-31"), "delivered = '2026-11-31': not a date"),
    (row(pre="10", post="0"), "primary_ingot is 0 % pre- and 0 % post-consumer by definition"),
    (row(product="recycled_ingot"), "a recycled_ingot must state its recycled content"),
    (row(product="recycled_ingot", pre="60", post="50"), "together at most 100"),
    (row(site="c"), "site = 'c': unknown site"),
    (row(supplier=""), "supplier is empty"),
    (row().rstrip("\n") + ",extra\n", "has 13 fields where the header has 12"),
]


@pytest.mark.parametrize(("bad", "rule"), BAD, ids=[rule.split(":")[0][:30] for _, rule in BAD])
def test_bad_rows_are_refused_with_file_line(tmp_path, bad, rule):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, row("ok"), bad.replace("d1,", "bad,", 1))
    path = tmp_path / "metal.csv"
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}:4 delivery 'bad': ")
    assert rule in caught.value.problems[0]


def test_every_bad_row_is_listed_and_duplicates_name_the_first_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, row("d1"), row("d1"), row("d3", tonnes="-1"))
    path = tmp_path / "metal.csv"
    assert caught.value.problems == [
        f"{path}:4 delivery 'd1': duplicate delivery_id (first on line 3)",
        f"{path}:5 delivery 'd3': tonnes = -1: must be positive",
    ]


def test_missing_column_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"metal.csv:2: missing columns \['recycled_post_pct'\]"):
        load(tmp_path, header=HEADER.replace(",recycled_post_pct", ""))


def test_shipped_example_changsha_november_by_hand():
    purchases = load_metal_ledger(REPO / "config" / "metal_purchases.csv")
    month = summarise_metal(purchases, period="2026-11", site="changsha", pathway_t_co2e_per_t=5.4)
    aluminium_t_co2e = 1200 * 4.0 + 300 * 6.8 + 400 * 15.9 + 250 * 0.85 + 180 * 0.5 + 220 * 0.85  # 13,689.5
    assert month.aluminium_input_t == pytest.approx(2550)
    assert month.scope3_cat1_t_co2e == pytest.approx(aluminium_t_co2e + 20 * 11.0)
    assert month.intensity_t_co2e_per_t == pytest.approx(aluminium_t_co2e / 2550)  # 5.37, just under 5.4
    assert month.meets_pathway is True
    # recycled ingot 250 t at 20 % pre / 70 % post, 180 t pre-consumer and 220 t post-consumer scrap
    assert month.recycled_pre_share == pytest.approx((50 + 180) / 2570)
    assert month.recycled_post_share == pytest.approx((175 + 220) / 2570)
    assert month.lower_quality
