"""Scope 3 category 1 for purchased metal, its ASI raw-material intensity and the recycled share (pure).

Reads the deliveries of the purchased-metal ledger (``plantems.metal``); returns, for a month or a year
and for one site or the group:

- Scope 3 category 1 emissions: sum of tonnes x cradle-to-gate footprint over every delivery, alloying
  elements included (average-data or supplier-specific method, GHG Protocol Scope 3 guidance);
- the raw-material intensity on the ASI procurement-pathway basis (shared/domain.md section 12.2):
  t CO2e of the aluminium purchased / t of aluminium purchased (input), mass-weighted. Alloying
  elements are not aluminium: their emissions are in the category 1 total, not in the intensity (how the
  ASI tool treats them is open, domain.md gap 13). The plant's own scrap is never in the ledger;
- the recycled share (section 12.4): (pre- + post-consumer content, by mass) / all purchased metal input,
  pre and post shown separately, not yield-adjusted, against the 2030 goal of 35 %;
- a supplier table ranked by mass-weighted footprint, lowest first;
- data quality: emissions resting on default averages make a figure lower quality; a factor older than
  5 years at delivery is stale (IAI: refresh at least every 5 years).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from plantems.metal import FootprintBasis, MetalPurchase, Product

__all__ = [
    "INTENSITY_BASIS",
    "RECYCLED_BASIS",
    "RECYCLED_SHARE_GOAL",
    "MetalSummary",
    "SupplierRow",
    "monthly_summaries",
    "summarise_metal",
]

RECYCLED_SHARE_GOAL = 0.35  # the group's 2030 goal (domain.md section 0); its basis is undefined (gap 14)
FACTOR_REFRESH_YEARS = 5  # IAI methodology: refresh a footprint at least every 5 years
INTENSITY_BASIS = ("t CO2e per t of aluminium purchased (input), mass-weighted; alloying elements and "
                   "own scrap excluded (ASI procurement pathway, Scope 3 category 1)")
RECYCLED_BASIS = ("pre- + post-consumer content by mass / all purchased metal input; own scrap excluded; "
                  "not yield-adjusted (ISO 14021)")


@dataclass(frozen=True)
class SupplierRow:
    rank: int  # 1 = lowest mass-weighted footprint
    supplier: str
    tonnes: float
    t_co2e: float
    t_co2e_per_t: float
    bases: tuple[str, ...]
    default_average_tonnes: float

    @property
    def lower_quality(self) -> bool:
        return self.default_average_tonnes > 0


@dataclass(frozen=True)
class MetalSummary:
    period: str  # "YYYY-MM" or "YYYY"
    site: str | None  # None: every site of the ledger
    deliveries: int
    metal_input_t: float
    aluminium_input_t: float
    scope3_cat1_t_co2e: float
    aluminium_t_co2e: float
    alloying_t_co2e: float
    intensity_t_co2e_per_t: float | None  # None without aluminium input
    pathway_t_co2e_per_t: float | None
    recycled_pre_t: float
    recycled_post_t: float
    default_average_t_co2e: float
    stale_factor_deliveries: tuple[str, ...]
    suppliers: tuple[SupplierRow, ...]

    @property
    def meets_pathway(self) -> bool | None:
        if self.intensity_t_co2e_per_t is None or self.pathway_t_co2e_per_t is None:
            return None
        return self.intensity_t_co2e_per_t <= self.pathway_t_co2e_per_t

    @property
    def recycled_share(self) -> float | None:
        return _share(self.recycled_pre_t + self.recycled_post_t, self.metal_input_t)

    @property
    def recycled_pre_share(self) -> float | None:
        return _share(self.recycled_pre_t, self.metal_input_t)

    @property
    def recycled_post_share(self) -> float | None:
        return _share(self.recycled_post_t, self.metal_input_t)

    @property
    def meets_recycled_goal(self) -> bool | None:
        share = self.recycled_share
        return None if share is None else share >= RECYCLED_SHARE_GOAL

    @property
    def default_average_share(self) -> float | None:
        """Share of the category 1 emissions that rests on default averages."""
        return _share(self.default_average_t_co2e, self.scope3_cat1_t_co2e)

    @property
    def lower_quality(self) -> bool:
        """Some of the figure rests on default averages, or on a footprint due for refresh."""
        return self.default_average_t_co2e > 0 or bool(self.stale_factor_deliveries)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["suppliers"] = [{**asdict(row), "lower_quality": row.lower_quality} for row in self.suppliers]
        data["stale_factor_deliveries"] = list(self.stale_factor_deliveries)
        for name in ("meets_pathway", "recycled_share", "recycled_pre_share", "recycled_post_share",
                     "meets_recycled_goal", "default_average_share", "lower_quality"):
            data[name] = getattr(self, name)
        data["recycled_share_goal"] = RECYCLED_SHARE_GOAL
        data["intensity_basis"] = INTENSITY_BASIS
        data["recycled_basis"] = RECYCLED_BASIS
        return data


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _check_period(period: str) -> None:
    parts = period.split("-")
    ok = len(parts) in (1, 2) and all(p.isdigit() for p in parts) and len(parts[0]) == 4 \
        and (len(parts) == 1 or (len(parts[1]) == 2 and 1 <= int(parts[1]) <= 12))
    if not ok:
        raise ValueError(f"period {period!r}: expected YYYY or YYYY-MM")


def _in_period(purchase: MetalPurchase, period: str) -> bool:
    return purchase.month == period or str(purchase.delivered.year) == period


def _suppliers(rows: Sequence[MetalPurchase]) -> tuple[SupplierRow, ...]:
    by_supplier: dict[str, list[MetalPurchase]] = {}
    for row in rows:
        by_supplier.setdefault(row.supplier, []).append(row)
    table = []
    for supplier, items in by_supplier.items():
        tonnes = sum(item.tonnes for item in items)
        t_co2e = sum(item.t_co2e for item in items)
        table.append((t_co2e / tonnes, supplier, tonnes, t_co2e, tuple(sorted({i.basis.value for i in items})),
                      sum(i.tonnes for i in items if i.basis is FootprintBasis.DEFAULT_AVERAGE)))
    table.sort(key=lambda entry: (entry[0], entry[1]))
    return tuple(SupplierRow(rank=rank, supplier=supplier, tonnes=tonnes, t_co2e=t_co2e, t_co2e_per_t=per_t,
                             bases=bases, default_average_tonnes=default_t)
                 for rank, (per_t, supplier, tonnes, t_co2e, bases, default_t) in enumerate(table, start=1))


def summarise_metal(purchases: Iterable[MetalPurchase], *, period: str, site: str | None = None,
                    pathway_t_co2e_per_t: float | None = None) -> MetalSummary:
    """Category 1, intensity, recycled share, suppliers and quality for ``period`` (YYYY-MM or YYYY) by
    delivery date, for ``site`` (None: all sites). ``pathway_t_co2e_per_t``: the raw-material pathway value
    for the period's year (config/targets.yaml ``raw_material``)."""
    _check_period(period)
    rows = [p for p in purchases if _in_period(p, period) and (site is None or p.site == site)]
    aluminium = [r for r in rows if r.product.is_aluminium]
    aluminium_t = sum(r.tonnes for r in aluminium)
    aluminium_t_co2e = sum(r.t_co2e for r in aluminium)
    return MetalSummary(
        period=period, site=site, deliveries=len(rows), metal_input_t=sum(r.tonnes for r in rows),
        aluminium_input_t=aluminium_t, scope3_cat1_t_co2e=sum(r.t_co2e for r in rows),
        aluminium_t_co2e=aluminium_t_co2e,
        alloying_t_co2e=sum(r.t_co2e for r in rows if r.product is Product.ALLOYING_ELEMENT),
        intensity_t_co2e_per_t=aluminium_t_co2e / aluminium_t if aluminium_t > 0 else None,
        pathway_t_co2e_per_t=pathway_t_co2e_per_t,
        recycled_pre_t=sum(r.tonnes * r.recycled_pre_pct / 100 for r in rows),
        recycled_post_t=sum(r.tonnes * r.recycled_post_pct / 100 for r in rows),
        default_average_t_co2e=sum(r.t_co2e for r in rows if r.basis is FootprintBasis.DEFAULT_AVERAGE),
        stale_factor_deliveries=tuple(r.delivery_id for r in rows
                                      if r.delivered.year - r.factor_year > FACTOR_REFRESH_YEARS),
        suppliers=_suppliers(rows))


def monthly_summaries(purchases: Iterable[MetalPurchase], *, year: int, site: str | None = None,
                      pathway_t_co2e_per_t: float | None = None) -> tuple[MetalSummary, ...]:
    """The twelve months of ``year``; their category 1 totals add up to the year's."""
    rows = list(purchases)
    return tuple(summarise_metal(rows, period=f"{year:04d}-{month:02d}", site=site,
                                 pathway_t_co2e_per_t=pathway_t_co2e_per_t) for month in range(1, 13))
