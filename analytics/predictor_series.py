"""Predictor series of the measures register as daily values: the CSV ones (read with the register) and
the InfluxDB ones (read here: a field of the site, hourly sums and counts gathered per local day).

Reads the ``influx`` predictors' measurement and field (named in measures.yaml, not schema names: they
are the site's own data) from the raw or derived database. A day whose value falls outside the
series' ``valid_range`` is left out (the baseline then leaves that day out) and logged at ERROR with
the count: never turned into a predictor value.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime, timedelta

from plantems.analytics.enpi_job import day_bucket
from plantems.config import PlantConfig
from plantems.influx import InfluxClient
from plantems.measures import InfluxSource, MeasuresFile, PredictorSeries
from plantems.predictors import degree_days
from plantems.store.query import SiteScope, agg

__all__ = ["daily_values", "read_influx_series", "register_series"]

log = logging.getLogger(__name__)

_NS = 1_000_000_000
_SUM, _COUNT = "sum_value", "count_value"  # column aliases of this query only


def _local_ns(plant: PlantConfig, day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=plant.site.tz).timestamp()) * _NS


def read_influx_series(client: InfluxClient, plant: PlantConfig, source: InfluxSource, first: date, last: date
                       ) -> dict[date, float]:
    """The field's daily mean (all its samples of the local day alike) or sum, ``first``..``last``."""
    query = SiteScope(plant.site.id).select(
        source.measurement, [agg("sum", source.field, alias=_SUM), agg("count", source.field, alias=_COUNT)],
        tags=source.tags or None, start_ns=_local_ns(plant, first), end_ns=_local_ns(plant, last + timedelta(days=1)),
        every=day_bucket(plant.site.tz, first))
    database = plant.influxdb.raw_database if source.database == "raw" else plant.influxdb.derived_database
    sums: dict[date, list[float]] = {}
    for series in client.query(query, database=database):
        at = {name: index for index, name in enumerate(series.columns)}
        for row in series.values:
            count = row[at[_COUNT]]
            if not count:
                continue
            day = datetime.fromtimestamp(int(row[at["time"]]) / _NS, plant.site.tz).date()
            acc = sums.setdefault(day, [0.0, 0.0])
            acc[0] += float(row[at[_SUM]])
            acc[1] += float(count)
    return {day: total if source.aggregate == "sum" else total / count for day, (total, count) in sums.items()}


def daily_values(series: PredictorSeries, raw: Mapping[date, float]) -> dict[date, float]:
    """Range-checked raw values turned into the predictor (degree-days where configured); days outside
    ``valid_range`` are left out and logged (pure but for the log)."""
    out: dict[date, float] = {}
    rejected = []
    for day, value in sorted(raw.items()):
        if series.valid_range is not None and not series.valid_range[0] <= value <= series.valid_range[1]:
            rejected.append(f"{day} {value:g}")
            continue
        spec = series.degree_days
        out[day] = value if spec is None else degree_days(value, kind=spec.kind, base_c=spec.base_c)
    if rejected:
        log.error("predictor %s: %d day(s) outside its valid range %s left out: %s", series.id, len(rejected),
                  list(series.valid_range or ()), ", ".join(rejected[:5]) + (" ..." if len(rejected) > 5 else ""))
    return out


def register_series(register: MeasuresFile | None, client: InfluxClient, plant: PlantConfig, first: date,
                    last: date) -> dict[str, Mapping[date, float]]:
    """Every predictor of the register by id: CSV ones as loaded, InfluxDB ones read for ``first``..``last``."""
    if register is None:
        return {}
    out: dict[str, Mapping[date, float]] = {}
    for series in register.predictors:
        if series.influx is None:
            out[series.id] = register.series(series.id)
        else:
            out[series.id] = daily_values(series, read_influx_series(client, plant, series.influx, first, last))
    return out
