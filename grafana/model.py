"""Grafana building blocks for plantems: InfluxQL targets, the two datasources, panel helpers
and a row-filling grid layout. Panels are grafana-foundation-sdk builders, so the JSON has
Grafana's dashboard model; the SDK has no InfluxDB query type, hence ``InfluxQL`` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders import barchart, bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig, StackingConfig, VizLegendOptions
from grafana_foundation_sdk.builders.dashboard import DashboardLink, ThresholdsConfig
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.common import (
    GraphDrawStyle,
    GraphThresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    GridPos,
    Threshold,
    ThresholdsMode,
)

from plantems.schema import DERIVED_MEASUREMENTS, RAW_MEASUREMENTS

__all__ = ["DERIVED", "RAW", "Grid", "InfluxQL", "data_link", "datasource_for", "panel", "sort_and_limit"]

INFLUX_TYPE = "influxdb"
RAW = DataSourceRef(type_val=INFLUX_TYPE, uid="plantems-raw")  # the collector's database
DERIVED = DataSourceRef(type_val=INFLUX_TYPE, uid="plantems-derived")  # analytics' database


def datasource_for(measurement: str) -> DataSourceRef:
    if measurement in RAW_MEASUREMENTS:
        return RAW
    if measurement in DERIVED_MEASUREMENTS:
        return DERIVED
    raise ValueError(f"measurement {measurement!r} is in neither database (plantems.schema)")


class _Query(cogvariants.Dataquery):
    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def to_json(self) -> dict[str, Any]:
        return self.payload


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    """A raw InfluxQL target (Grafana's InfluxDB datasource in InfluxQL mode)."""

    def __init__(self, ref_id: str, query: str, *, datasource: DataSourceRef, alias: str = "",
                 result_format: str = "time_series") -> None:
        self.payload: dict[str, Any] = {"refId": ref_id, "datasource": {"type": datasource.type_val,
                                                                        "uid": datasource.uid},
                                        "query": query, "rawQuery": True, "resultFormat": result_format}
        if alias:
            self.payload["alias"] = alias

    def build(self) -> cogvariants.Dataquery:
        return _Query(self.payload)


@dataclass
class Grid:
    """Places panels left to right in rows of 24 columns."""

    x: int = 0
    y: int = 0
    row_h: int = 0

    def next(self, w: int, h: int) -> GridPos:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos


def data_link(title: str, url: str) -> DashboardLink:
    """A link on a panel's values (``${__data.fields.X}`` is the clicked row's column X)."""
    return DashboardLink(title).type(DashboardLinkType.LINK).url(url)


def sort_and_limit(column: str, *, descending: bool, limit: int) -> list[DataTransformerConfig]:
    """Grafana transformations that order a table by ``column`` and keep its first ``limit`` rows."""
    return [DataTransformerConfig(id_val="sortBy", options={"sort": [{"field": column, "desc": descending}]}),
            DataTransformerConfig(id_val="limit", options={"limitField": limit})]


def thresholds(steps: Sequence[tuple[float | None, str]]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=v, color=c) for v, c in steps])


_KINDS: dict[str, Any] = {"timeseries": timeseries.Panel, "stat": stat.Panel, "table": table.Panel,
                          "bargauge": bargauge.Panel, "barchart": barchart.Panel}


def panel(kind: str, title: str, targets: Sequence[InfluxQL], *, unit: str, grid: Grid, w: int = 12, h: int = 8,
          datasource: DataSourceRef, description: str = "", stacked: bool = False, bars: bool = False,
          steps: Sequence[tuple[float | None, str]] = (), threshold_lines: bool = False,
          time_from: str = "", decimals: int | None = None, min_value: float | None = None,
          max_value: float | None = None, min_interval: str = "", links: Sequence[DashboardLink] = (),
          transformations: Sequence[DataTransformerConfig] = (), max_data_points: int | None = None) -> Any:
    """One panel builder with the options plantems uses; every panel has a datasource and a unit.

    ``min_interval`` is Grafana's lower limit for ``$__interval``: a panel reading a 1-minute tier
    never asks for buckets finer than the tier; ``max_data_points`` caps the buckets per series (else the
    panel's width in pixels). ``links`` are data links on the panel's values.
    """
    builder = _KINDS[kind]().title(title).datasource(datasource).unit(unit).grid_pos(grid.next(w, h))
    builder = builder.targets(list(targets))
    if min_interval:
        builder = builder.interval(min_interval)
    if max_data_points is not None:
        builder = builder.max_data_points(max_data_points)
    if links:
        builder = builder.data_links(list(links))
    for transformation in transformations:
        builder = builder.with_transformation(transformation)
    if description:
        builder = builder.description(description)
    if steps:
        builder = builder.thresholds(thresholds(steps))
    if time_from:
        builder = builder.time_from(time_from)
    if decimals is not None:
        builder = builder.decimals(decimals)
    if min_value is not None:
        builder = builder.min(min_value)
    if max_value is not None:
        builder = builder.max(max_value)
    if kind == "timeseries":
        builder = _timeseries(builder, stacked=stacked, bars=bars, threshold_lines=threshold_lines)
    return builder


def _timeseries(builder: Any, *, stacked: bool, bars: bool, threshold_lines: bool) -> Any:
    builder = builder.legend(VizLegendOptions().display_mode(LegendDisplayMode.LIST)
                             .placement(LegendPlacement.BOTTOM).show_legend(True))
    if stacked:
        builder = builder.stacking(StackingConfig().mode(StackingMode.NORMAL)).fill_opacity(40)
    if bars:
        builder = builder.draw_style(GraphDrawStyle.BARS).fill_opacity(80)
    if threshold_lines:
        builder = builder.thresholds_style(GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.LINE))
    return builder
