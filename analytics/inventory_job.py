"""``plantems inventory --year Y``: the year's monthly rollup.json documents, consolidated into the inventory.

The inventory reads the monthly rollups already written (``REPORTS/MONTH/rollup.json`` for a site,
``REPORTS/SITE/MONTH/rollup.json`` for each site of a group), so its figures are the signed monthly
figures summed. With ``run_missing`` a month without its rollup that has ended is first rolled up by the
existing monthly rollup (analytics/service.py run_rollup) from the site's InfluxDB; a month still
missing after that is listed as missing in the inventory, never counted as zero.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm  # type: ignore[import-untyped]

from plantems.analytics.enpi import (
    CALORIFIC_ELECTRICITY_KGCE_PER_KWH,
    NATURAL_GAS_GAS_FIELD_KGCE_PER_M3,
    CoalCoefficients,
    kgce_per_m3_from_lhv,
)
from plantems.analytics.inventory import months_of

__all__ = ["RollupSource", "coal_coefficients", "read_rollups"]

log = logging.getLogger(__name__)
CALORIFIC_SOURCE = "GB/T 2589 当量值: electricity 3,600 kJ / 29,307.6 kJ per kgce"


@dataclass(frozen=True)
class RollupSource:
    """Where a site's monthly rollups are, and how to run a missing one (None: read only)."""

    site: str
    folder: Path  # holds MONTH/rollup.json
    run: Callable[[str], None] | None = None


def coal_coefficients(gas_lhv_kj_per_m3: float | None) -> CoalCoefficients:
    """当量值 coefficients: electricity 0.1229 kgce/kWh; gas from the supplier's LHV, else GB/T 2589 Annex A."""
    if gas_lhv_kj_per_m3 is not None:
        return CoalCoefficients("calorific", CALORIFIC_ELECTRICITY_KGCE_PER_KWH,
                                kgce_per_m3_from_lhv(gas_lhv_kj_per_m3),
                                f"{CALORIFIC_SOURCE}; natural gas: supplier LHV {gas_lhv_kj_per_m3:g} kJ/m3 / 29,307.6")
    return CoalCoefficients("calorific", CALORIFIC_ELECTRICITY_KGCE_PER_KWH, NATURAL_GAS_GAS_FIELD_KGCE_PER_M3,
                            f"{CALORIFIC_SOURCE}; natural gas: gas-field gas 1.2143 kgce/m3, GB/T 2589-2008 Annex A "
                            "(DB43/T 612-2015); give the supplier's LHV (--gas-lhv) where known")


def read_rollups(sources: Sequence[RollupSource], year: int, *, last_ended: Mapping[str, str],
                 progress: bool = True) -> list[dict[str, Any]]:
    """Every rollup.json of ``year`` found for ``sources``; a missing month that has ended (up to
    ``last_ended[site]``, YYYY-MM) is rolled up first where the source can run it."""
    docs = []
    steps = [(s, month) for s in sources for month in months_of(year)]
    for source, month in tqdm(steps, desc=f"inventory {year}", unit="month", disable=not progress):
        path = source.folder / month / "rollup.json"
        if not path.exists() and source.run is not None and month <= last_ended[source.site]:
            log.info("inventory %d: site %s %s has no rollup: running it", year, source.site, month)
            source.run(month)
        if path.exists():
            docs.append(json.loads(path.read_text(encoding="utf-8")))
        else:
            log.warning("inventory %d: site %s %s has no rollup (%s): listed as missing", year, source.site, month,
                        path)
    return docs
