"""The inventory's files: ``inventory.json`` (``Inventory.to_json()``), ``inventory.csv`` and ``inventory.xlsx``.

The CSV is one table (section, item, value, unit, note) with bilingual headers. The workbook has sheets shaped
like ISO 14064-1 categories 1-6 and CDP C6.1 (Scope 1) / C6.3 (Scope 2), then Scope 1 by source, energy in
tce, renewable MWh by instrument type, the base year with its recalculation log, completeness and the
monthly provenance (config hash, factors, reconciliation). Every header is English + Chinese.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from openpyxl import Workbook

from plantems.analytics.inventory import Inventory

__all__ = ["CSV_HEADER", "inventory_rows", "write_inventory", "zh_header"]

Cell = str | float | int | bool | None
CSV_HEADER = ("Section 部分", "Item 项目", "Value 数值", "Unit 单位", "Note 说明")
T = "t CO2e"
NOT_QUANTIFIED = "not quantified by plantems 未量化"
_ENERGY_UNITS = {"kwh": "kWh", "m3": "m3", "tce": "tce"}  # by the Inventory.energy key's suffix


def _iso(inv: Inventory) -> list[tuple[Cell, ...]]:
    """ISO 14064-1:2018 clause 5.2.4 categories."""
    s3 = inv.scope3_cat1_t
    return [
        ("1", "Direct GHG emissions and removals 直接温室气体排放和清除", inv.scope1_t, T, "Scope 1"),
        ("2", "Indirect GHG emissions from imported energy 输入能源的间接排放 (location-based 基于位置)",
         inv.scope2_location_t, T, "Scope 2"),
        ("2", "Indirect GHG emissions from imported energy 输入能源的间接排放 (market-based 基于市场)",
         inv.scope2_market_t, T, "Scope 2"),
        ("3", "Indirect GHG emissions from transportation 运输产生的间接排放", None, T, NOT_QUANTIFIED),
        ("4", "Indirect GHG emissions from products used 组织使用的产品产生的间接排放 (purchased metal 外购金属)",
         s3, T, "Scope 3 category 1" if s3 is not None else "no metal ledger 无金属台账"),
        ("5", "Indirect GHG emissions associated with the use of products 组织产品使用相关的间接排放", None, T,
         NOT_QUANTIFIED),
        ("6", "Indirect GHG emissions from other sources 其他来源的间接排放", None, T, NOT_QUANTIFIED),
    ]


def _cdp_scope1(inv: Inventory) -> list[tuple[Cell, ...]]:
    return [(inv.year, inv.scope1_t, ", ".join(inv.scope1_factors) or "no fuel metered 无燃料计量",
             "complete 完整" if inv.complete else f"{len(inv.missing)} month(s) missing 缺月")]


def _cdp_scope2(inv: Inventory) -> list[tuple[Cell, ...]]:
    instruments = "; ".join(f"{k}: {', '.join(v)}" for k, v in inv.instruments_used.items())
    return [(inv.year, inv.scope2_location_t, inv.scope2_market_t, instruments or "none 无",
             "complete 完整" if inv.complete else f"{len(inv.missing)} month(s) missing 缺月")]


def inventory_rows(inv: Inventory) -> list[tuple[Cell, ...]]:
    """The CSV's rows (after CSV_HEADER)."""
    rows: list[tuple[Cell, ...]] = [(f"ISO 14064-1 category {c}", item, v, u, n) for c, item, v, u, n in _iso(inv)]
    rows += [("Scope 1 by source 按排放源", src, t, T, "") for src, t in inv.scope1_by_source_t.items()]
    rows += [("Energy 能源", k, v, _ENERGY_UNITS[k.rsplit("_", 1)[-1]],
              f"GB/T 2589 {inv.coefficients.basis}: {inv.coefficients.source}") for k, v in inv.energy.items()]
    rows += [("Renewable 可再生电力", kind, mwh, "MWh", ", ".join(inv.instruments_used.get(kind, ())))
             for kind, mwh in inv.renewable_mwh_by_type.items()]
    if inv.base is not None:
        b = inv.base
        for scope in ("scope1", "scope2", "scope3"):
            rows.append((f"Base year {b.base_year} 基准年", scope, b.recalculated[scope], T,
                         f"original 原始 {b.original[scope]}; this year 本年 {b.current[scope]}; change 变化 "
                         f"{b.change[scope]}" + (f"; {b.scope3_note}" if scope == "scope3" else "")))
        rows += [("Recalculation 基准年重算", e["date"], None, "", f"{e['reason']}: {e['description']}")
                 for e in b.log]
    else:
        rows.append(("Base year 基准年", "", None, "", inv.base_missing_reason))
    rows += [("Missing month 缺失月份", site, None, "", month) for site, month in inv.missing]
    rows += [("Data quality 数据质量", kind, None, "", item) for kind, items in inv.data_quality.items()
             for item in items]
    return rows


_CJK = re.compile(r"[\u4e00-\u9fff]")
# the zh variant's sheet names (the English ones are the standards' table names)
_SHEETS_ZH = {"ISO 14064-1": "ISO 14064-1 类别", "CDP C6.1 Scope 1": "CDP C6.1 范围一",
              "CDP C6.3 Scope 2": "CDP C6.3 范围二", "Scope 1 by source": "范围一按排放源",
              "Energy tce": "能耗 吨标准煤",
              "Renewable": "可再生电力", "Base year": "基准年", "Targets": "目标", "Completeness": "完整性",
              "Provenance": "数据来源"}


def zh_header(header: str) -> str:
    """The Chinese part of a bilingual header ("Emissions 排放量 (t CO2e)" -> "排放量 (t CO2e)"); the year of
    "Target 2026 年度目标" is kept ("2026 年度目标"); a header with no Chinese stays as it is."""
    found = _CJK.search(header)
    if found is None:
        return header
    year = re.search(r"(\d{4}) $", header[:found.start()])
    return (f"{year.group(1)} " if year else "") + header[found.start():]


def _sheet(wb: Workbook, title: str, header: Sequence[str], rows: Sequence[Sequence[Cell]],
           label: Callable[[str], str] = str) -> None:
    ws = wb.create_sheet(_SHEETS_ZH.get(title, title) if label is zh_header else title)
    ws.append([label(h) for h in header])
    for row in rows:
        ws.append(list(row))


def write_inventory(inv: Inventory, out_dir: Path, *, zh: bool = False) -> list[Path]:
    """inventory.json, inventory.csv and inventory.xlsx in ``out_dir`` (headers English and Chinese); with
    ``zh`` also inventory.zh.csv and inventory.zh.xlsx, the same tables with Chinese headers and sheet names."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "inventory.json", out_dir / "inventory.csv", out_dir / "inventory.xlsx"]
    paths[0].write_text(json.dumps(inv.to_json(), indent=1, ensure_ascii=False), encoding="utf-8")
    variants: list[tuple[Path, Path, Callable[[str], str]]] = [(paths[1], paths[2], str)]
    if zh:
        variants.append((out_dir / "inventory.zh.csv", out_dir / "inventory.zh.xlsx", zh_header))
        paths += [variants[1][0], variants[1][1]]
    for csv_path, xlsx_path, label in variants:
        _write_tables(inv, csv_path, xlsx_path, label)
    return paths


def _write_tables(inv: Inventory, csv_path: Path, xlsx_path: Path, label: Callable[[str], str]) -> None:
    with csv_path.open("w", newline="", encoding="utf-8-sig") as handle:  # BOM: Excel reads the Chinese
        writer = csv.writer(handle)
        writer.writerow([label(h) for h in CSV_HEADER])
        writer.writerows(inventory_rows(inv))
    wb = Workbook()
    wb.remove(wb.active)
    sheet = partial(_sheet, label=label)
    sheet(wb, "ISO 14064-1", ("Category 类别", "Description 描述", "Emissions 排放量 (t CO2e)", "Unit 单位",
                               "Note 说明"), _iso(inv))
    sheet(wb, "CDP C6.1 Scope 1", ("Reporting year 报告年度", "Gross global Scope 1 范围一总排放 (t CO2e)",
                                    "Emission factors 排放因子", "Completeness 完整性"), _cdp_scope1(inv))
    sheet(wb, "CDP C6.3 Scope 2", ("Reporting year 报告年度", "Scope 2 location-based 范围二基于位置 (t CO2e)",
                                    "Scope 2 market-based 范围二基于市场 (t CO2e)",
                                    "Instruments used 使用的凭证", "Completeness 完整性"), _cdp_scope2(inv))
    sheet(wb, "Scope 1 by source", ("Source 排放源", "Emissions 排放量 (t CO2e)"),
           list(inv.scope1_by_source_t.items()))
    sheet(wb, "Energy tce", ("Item 项目", "Value 数值"), [*inv.energy.items(),
           ("coefficients 折标系数", f"{inv.coefficients.electricity_kgce_per_kwh} kgce/kWh, "
            f"{inv.coefficients.gas_kgce_per_m3} kgce/m3 ({inv.coefficients.basis}): {inv.coefficients.source}")])
    sheet(wb, "Renewable", ("Instrument type 凭证类型", "Renewable 可再生电力 (MWh)", "Ledger entries 台账条目"),
           [(k, v, ", ".join(inv.instruments_used.get(k, ()))) for k, v in inv.renewable_mwh_by_type.items()])
    base_rows = [r[1:] for r in inventory_rows(inv) if str(r[0]).startswith(("Base year", "Recalculation"))]
    sheet(wb, "Base year", ("Item 项目", "Recalculated base 重算后基准 (t CO2e)", "Unit 单位", "Note 说明"), base_rows)
    sheet(wb, "Targets", ("Target 目标", "Unit 单位", "Base year 基准年", f"Target {inv.year} 年度目标",
                           "Final year 目标年", "Final target 最终目标", f"Actual {inv.year} 本年实际", "Source 来源"),
           [(t["name"], t["unit"], t["base_year"], t["target"], t["final_year"], t["final_target"], t["actual"],
             t["source"]) for t in inv.targets.values()])
    quality = [(f"data quality 数据质量: {kind}", item) for kind, items in inv.data_quality.items() for item in items]
    sheet(wb, "Completeness", ("Site or check 站点或检查", "Month 月份"), [*inv.missing, *quality])
    sheet(wb, "Provenance", ("Site 站点", "Month 月份", "As of 计算日期", "Config SHA-256 配置哈希",
                              "Location factor 位置因子", "Residual factor 剩余因子", "Provisional 暂定因子",
                              "Reconciled 对账", "Fuel factor 燃料因子", "Location kg/kWh 位置因子值",
                              "Residual kg/kWh 剩余因子值"),
           [(m.site, m.month, m.as_of, m.config_sha256, m.location_factor, m.residual_factor, m.factors_provisional,
             m.reconciled, m.scope1_factor, m.location_kg_per_kwh, m.residual_kg_per_kwh) for m in inv.months])
    wb.save(xlsx_path)
