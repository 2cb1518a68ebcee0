"""zh-CN messages of the monthly report (analytics/report.py), keyed by the English message ids.

Terms follow the usage of Chinese energy and carbon reporting: 电量, 需量, 功率因数, 范围一/范围二排放,
基于位置/基于市场, 绿证, 绿电, 可再生能源占比, 单位产品碳排放强度, 分时电价 尖峰/高峰/平段/低谷, 数据完整率, 对账.
"""

from __future__ import annotations

from typing import Final

from plantems.analytics.opportunity_results import NO_DATA
from plantems.config import DeviceKind

__all__ = ["ZH"]

_KINDS: Final = {
    DeviceKind.INCOMER: "进线总表", DeviceKind.FEEDER: "馈线", DeviceKind.COLD_MILL: "冷轧机",
    DeviceKind.FINISHING_MILL: "精轧机", DeviceKind.FOIL_MILL: "箔轧机", DeviceKind.CASTER: "铸轧机",
    DeviceKind.FURNACE: "炉窑", DeviceKind.COMPRESSOR: "空压机", DeviceKind.EXHAUST_FAN: "排风机",
    DeviceKind.PUMP: "水泵", DeviceKind.CHILLER: "冷水机组", DeviceKind.LIGHTING: "照明", DeviceKind.PV: "光伏",
    DeviceKind.AIR_FLOW: "压缩空气流量计", DeviceKind.PRODUCTION: "产量计量", DeviceKind.OTHER: "其他",
}

ZH: Final[dict[str, str]] = {
    **{str(kind): text for kind, text in _KINDS.items()},
    # headings
    "Energy and Scope 2 report: {site}, {month}": "能源与范围二排放月报：{site}，{month}",
    "Computed {as_of} by plantems; configuration sha256 {sha}.": "plantems 于 {as_of} 计算，配置文件 sha256 {sha}。",
    "Summary": "汇总", "Charts": "图表", "Meters": "计量表计",
    "Process lines (Scope 1+2 of the meters in their areas)": "生产线（所属区域表计的范围一+范围二排放）",
    "Opportunities: load shifting, maximum demand, reactive power": "节能机会：负荷转移、最大需量、无功功率",
    "Allocation of site emissions (by sub-metered energy)": "厂区排放分摊（按分项计量电量）",
    "Green-power ledger": "绿电台账", "Provenance": "数据来源", "Scope 2": "范围二",
    "Load shifting (shiftable devices)": "负荷转移（可转移设备）", "Compressed air": "压缩空气",
    "Maximum demand: {group}": "最大需量：{group}", "Reactive power: {group}": "无功功率：{group}",
    "Reconciliation: 15-minute sums vs counter differences": "对账：15 分钟电量之和与电能表读数差",
    # first-page flags
    "Poor data coverage this month: {meters}. Totals use counter deltas and stay exact, but interval detail is "
    "interpolated.": "本月数据完整率不足：{meters}。总量按电能表读数差计算，仍然准确，但分时段明细为插值。",
    "Provisional: {id} ({year}) stands in for {month_year}, whose factor is not yet published; the month will be "
    "restated.": "暂用因子：{month_year} 年的排放因子尚未发布，暂以 {id}（{year} 年）代替，本月数据将重新核算。",
    "Factor {id} is marked uncertain; confirm it before signing.": "排放因子 {id} 标记为待核实，签署前请确认。",
    "Restated: this report replaces the one of {as_of} ({changes}); previous totals are kept in the provenance.":
        "重新核算：本报告取代 {as_of} 的报告（{changes}），原数据保留在数据来源中。",
    "The sub-meters record {kwh:,.0f} kWh more than the site consumed (import - export + generation): check the "
    "meters and their feeds.":
        "分项表计电量比厂区用电量（购入 - 上网 + 自发电）多 {kwh:,.0f} kWh：请检查表计及其接线。",
    "Tariff {id} is to be confirmed: costs are indicative.": "电价 {id} 待确认：电费仅供参考。",
    "Reconciliation: meter {device}'s 15-minute energy sums to {intervals:,.3f} kWh but its counter recorded "
    "{counter:,.3f} kWh (difference {difference:+,.3f} kWh); the month's figures for it are not signable until it is "
    "recomputed.": "对账差异：表计 {device} 的 15 分钟电量之和为 {intervals:,.3f} kWh，而电能表读数差为 "
                   "{counter:,.3f} kWh（差值 {difference:+,.3f} kWh），重新计算前该表本月数据不可签署。",
    # summary rows
    "Grid import (kWh)": "电网购入电量 (kWh)", "Grid export (kWh)": "上网电量 (kWh)",
    "On-site PV generation (kWh)": "厂内光伏发电量 (kWh)", "On-site PV consumed (kWh)": "厂内光伏自用电量 (kWh)",
    "Consumption = import - export + generation (kWh)": "用电量 = 购入 - 上网 + 自发电 (kWh)",
    "Sub-metered loads (kWh)": "分项计量负荷电量 (kWh)",
    "Unmetered remainder: losses and unmetered loads (kWh)": "未计量部分：损耗及未计量负荷 (kWh)",
    "Scope 2 location-based (t CO2e)": "范围二排放，基于位置 (t CO2e)",
    "Scope 2 market-based, monthly matching (t CO2e)": "范围二排放，基于市场，按月匹配 (t CO2e)",
    "Scope 2 market-based, hourly matching, 2025 draft (t CO2e)":
        "范围二排放，基于市场，按小时匹配，2025 草案 (t CO2e)",
    "Green instruments matched, monthly / hourly (kWh)": "已匹配的绿电/绿证电量，按月 / 按小时 (kWh)",
    "Scope 1, natural gas (t CO2e)": "范围一排放，天然气 (t CO2e)",
    "Renewable share (GHG Protocol: instruments matched + PV consumed)":
        "可再生能源占比（温室气体核算体系：已匹配绿电/绿证 + 光伏自用）",
    "Green share by certificates (GECs held, on-site PV's included)": "绿证口径绿电占比（持有绿证，含厂内光伏绿证）",
    "Site output, lines {lines} (t)": "厂区产量，生产线 {lines} (t)",
    "Scope 1+2 intensity, location / market (t CO2e per t)": "单位产品碳排放强度（范围一+范围二），基于位置 / 基于市场 "
                                                             "(t CO2e/t)",
    "Pathway target (t CO2e per t)": "减排路径目标 (t CO2e/t)",
    " ({name}; source: {source})": "（{name}，来源：{source}）",
    "Location factor": "基于位置的排放因子", "Residual factor": "剩余组合排放因子", "Scope 1 factor": "范围一排放因子",
    "{id} ({kg} kg/{unit}, {status})": "{id}（{kg} kg/{unit}，{status}）",
    "; provisional: a later year has no factor yet": "，暂用：更新年份的因子尚未发布",
    "verified": "已核实", "cross-checked": "已交叉核对", "uncertain": "待核实",
    "not metered": "未计量", "none configured": "未配置", "no output recorded": "无产量记录",
    "none for this year": "本年无目标值", "value": "数值", "completeness of its data": "数据完整率",
    "no meter": "无表计", "coverage >= {low:.1%}": "完整率 >= {low:.1%}", "{share:.2%} measured": "实测 {share:.2%}",
    "{kwh:,.0f} kWh interpolated": "插值 {kwh:,.0f} kWh", "{n} samples rejected": "剔除 {n} 个采样",
    "{n} meter replacements": "换表 {n} 次", "no data: {meters}": "无数据：{meters}",
    # charts
    "MWh per day": "每日 MWh", "Sub-metered energy by tariff period": "分项计量电量（按分时电价时段）",
    "Sub-metered energy by area": "分项计量电量（按区域）", "sharp": "尖峰", "peak": "高峰", "flat": "平段",
    "valley": "低谷", "location": "基于位置", "market": "基于市场", "market (monthly)": "基于市场（按月）",
    "market (hourly)": "基于市场（按小时）", "t CO2e": "t CO2e", "Scope 2: location- vs market-based":
        "范围二排放：基于位置与基于市场", "pathway target": "路径目标", "t CO2e / t Al": "t CO2e / t 铝",
    "Scope 1+2 intensity against the pathway": "范围一+范围二排放强度与减排路径",
    "no production recorded for the month": "本月无产量记录", "renewable share": "可再生能源占比",
    "2030 goal": "2030 年目标", "% of consumption": "占用电量 %", "% of intervals with data": "有数据时段 %",
    "Data coverage per meter": "各表计数据完整率", "CNY this month": "本月 元",
    "Saving if moved off sharp/peak": "移出尖峰/高峰时段可节省", "from the average": "按平均值",
    "95 % of intervals": "95 % 时段", "maximum": "最大值", "kvar to reach the target PF": "达标所需 kvar",
    "Capacitor bank sizing": "电容器组容量",
    # meters, lines, allocation, ledger
    "device": "设备", "area": "区域", "kind": "类型", "kWh": "电量 kWh", "of which peak+sharp": "其中尖峰+高峰",
    "cost (CNY)": "电费 (元)", "peak+sharp cost": "尖峰+高峰电费", "coverage": "数据完整率",
    "Each line's intensity uses its own output. The site's intensity uses the output of\n{lines} only\n"
    "(<code>site.output_lines</code>): metal that passes several lines is counted once.":
        "各生产线的排放强度按其自身产量计算。厂区排放强度仅采用\n{lines} 的产量\n"
        "（<code>site.output_lines</code>）：经过多条生产线的金属只计一次。",
    "no line (none configured)": "无生产线（未配置）", "line": "生产线", "output t": "产量 t", "none": "无",
    "location t CO2e": "基于位置 t CO2e", "market t CO2e": "基于市场 t CO2e", "location t/t": "基于位置 t/t",
    "market t/t": "基于市场 t/t", "n/a": "不适用", "meter": "表计", "Used: {entries}.": "已使用：{entries}。",
    "excluded row": "排除的台账行", "ledger file|line": "台账文件行号", "why": "原因",
    # opportunities
    "No opportunities computed (no shiftable device and no billing group configured).":
        "未计算节能机会（未配置可转移设备和计费组）。",
    "Tariff {tariff}. Savings at this month's prices; the load-shifting saving assumes the same energy runs at the "
    "cheapest period the device's windows reach.": "电价 {tariff}。节省金额按本月电价计算，负荷转移节省假设相同电量在"
                                                   "设备允许时段内最便宜的时段运行。",
    "sharp+peak kWh": "尖峰+高峰电量 kWh", "sharp+peak cost (CNY)": "尖峰+高峰电费 (元)", "move to": "转移至",
    "allowed windows": "允许时段", "saving (CNY)": "节省 (元)", "air meter": "压缩空气流量计", "compressors": "空压机",
    "compressor kWh": "空压机电量 kWh", "free air m3": "自由空气量 m³", "kW per m3/min": "比功率 kW/(m³/min)",
    "mean bar(g)": "平均压力 bar(g)", "saving if the header pressure were lower": "降低总管压力可节省",
    "{bar:g} bar: {kwh:,.0f} kWh, {cny:,.0f} CNY": "{bar:g} bar：{kwh:,.0f} kWh，{cny:,.0f} 元",
    NO_DATA: "该计费组表计无 15 分钟电量数据", "{cny:,.0f} CNY": "{cny:,.0f} 元",
    "not priced: the tariff has no demand charge yet": "未计价：电价尚无需量电费",
    "{max_kw:,.0f} kW on 15-minute intervals starting {at} ({tou}), against a limit of {limit_kw:,.0f} kW":
        "15 分钟最大需量 {max_kw:,.0f} kW，起始于 {at}（{tou}），限值 {limit_kw:,.0f} kW",
    "; the live sliding-window maximum was {kw:,.0f} kW": "，实时滑差窗口最大需量为 {kw:,.0f} kW",
    ". Moving the shiftable loads' sharp/peak energy would have made it {kw:,.0f} kW ({less:,.0f} kW less): "
    "{saving}.": "。若转移可转移负荷的尖峰/高峰电量，最大需量将为 {kw:,.0f} kW（减少 {less:,.0f} kW）：{saving}。",
    "yes": "是", "load in that interval": "该时段负荷", "kW": "kW", "shiftable": "可转移",
    "Over-compensated: {kvarh:,.0f} kvarh exported, {leading} leading intervals ({light} at light load): switch "
    "capacitor steps off at light load.":
        "过补偿：反送 {kvarh:,.0f} kvarh，超前时段 {leading} 个（其中轻载 {light} 个）：轻载时请切除电容器组。",
    "No over-compensation.": "无过补偿。",
    "monthly PF (kWh / sqrt(kWh² + (import + export kvarh)²))":
        "月平均功率因数 (kWh / sqrt(kWh² + (正向 + 反向 kvarh)²))",
    "bill adjustment on the {standard:.2f} standard": "按 {standard:.2f} 考核标准的电费调整",
    "{pct:+.2f} % ({cny:+,.0f} CNY)": "{pct:+.2f} %（{cny:+,.0f} 元）",
    "capacitor bank for PF {target:.2f}: 95 % of intervals / average / maximum":
        "功率因数 {target:.2f} 所需电容器容量：95 % 时段 / 平均 / 最大",
    "losses and unmetered load (import - export + on-site generation - sub-meters; upper bound)":
        "损耗及未计量负荷（购入 - 上网 + 自发电 - 分项表计，上限）",
    "line-loss reduction at the target PF": "达到目标功率因数的线损降低",
    "{kwh:,.0f} kWh ({cny:,.0f} CNY)": "{kwh:,.0f} kWh（{cny:,.0f} 元）",
    "saving from compensation (adjustment avoided + losses)": "无功补偿节省（避免的调整电费 + 损耗）",
    "device (lowest PF first)": "设备（功率因数由低到高）", "PF": "功率因数", "kvarh": "kvarh",
    # reconciliation
    "every meter reconciles": "所有表计对账一致", "{n} meter(s) differ: {meters}": "{n} 块表计存在差异：{meters}",
    " (tolerance {relative:g} relative + {absolute:g} kWh).": "（允差：相对 {relative:g} + {absolute:g} kWh）。",
    "counter kWh": "电能表读数差 kWh", "intervals kWh": "15 分钟电量之和 kWh", "difference kWh": "差值 kWh",
    "status": "状态", "reconciled": "一致", "DIFFERS": "存在差异", "no counter readings": "无电能表读数",
    "no counter": "无电能表",
    # XLSX (scope2.zh.xlsx): header rows, scope rows and methods
    "scope": "范围", "name": "名称", "method": "方法", "kwh": "电量 kWh", "kgco2e": "排放 kg CO2e",
    "factor_id": "排放因子", "site": "厂区", "scope1": "范围一", "market_hourly": "基于市场（按小时）",
    "natural_gas": "天然气", "energy_kwh": "电量 kWh", "energy_exp_kwh": "反向电量 kWh", "cost_cny": "电费 元",
    "interp_kwh": "插值电量 kWh", "rejected_samples": "剔除采样数", "replacements": "换表次数",
    "kwh_sharp": "尖峰电量 kWh", "kwh_peak": "高峰电量 kWh", "kwh_flat": "平段电量 kWh", "kwh_valley": "低谷电量 kWh",
    "cost_sharp_cny": "尖峰电费 元", "cost_peak_cny": "高峰电费 元", "cost_flat_cny": "平段电费 元",
    "cost_valley_cny": "低谷电费 元",
}
