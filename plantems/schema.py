"""InfluxDB schema: every measurement, tag and field name used by plantems.

This module is the contract between the collector, analytics and Grafana
(see shared/design.md, "Schema"). No other module writes one of these names
as a string literal.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

__all__ = [
    "AIR",
    "AIR_FIELDS",
    "ALERT",
    "ALL_DEVICES_SOURCE",
    "ANALYTICS_STATUS",
    "COLLECTOR_1H",
    "COLLECTOR_1M",
    "COLLECTOR_STATUS",
    "COLLECTOR_TIER_STATS",
    "COUNTER_FIELDS",
    "DEMAND",
    "DERIVED_MEASUREMENTS",
    "DEVICE_1H",
    "DEVICE_1M",
    "ELECTRICAL",
    "ENERGY_1H",
    "ENERGY_15M",
    "ENPI",
    "FUEL",
    "FUEL_FIELDS",
    "OPPORTUNITY",
    "PLAN",
    "POWER_1M",
    "PRODUCTION",
    "RAW_MEASUREMENTS",
    "SCOPE2",
    "SITE_AREA",
    "TIER_FIELDS",
    "TIER_STATS",
    "UNMETERED_AREA",
    "Area",
    "Field",
    "Granularity",
    "Job",
    "Method",
    "OpportunityType",
    "PlanScope",
    "PlanTarget",
    "Stat",
    "Tag",
    "measurement_of",
    "tier_columns",
    "tier_field",
]

# Measurements written by the collector (raw database).
ELECTRICAL: Final = "electrical"
FUEL: Final = "fuel"
AIR: Final = "air"  # compressed air: flow and pressure meters on a compressor station's header
PRODUCTION: Final = "production"
COLLECTOR_STATUS: Final = "collector_status"
# Measurements written by analytics (derived database).
ENERGY_15M: Final = "energy_15m"
DEMAND: Final = "demand"
SCOPE2: Final = "scope2"
OPPORTUNITY: Final = "opportunity"
ENPI: Final = "enpi"  # EnPIs per production line (tag line) and per site (no line tag), by day and month
PLAN: Final = "plan"  # the plan page: per target (tag target), month and scope (site / its group)
ALERT: Final = "alert"
ANALYTICS_STATUS: Final = "analytics_status"  # per job: ok, failures, last error (retried with backoff)
# Dashboard tiers (derived, rebuilt from raw at any time: the raw retention policy stays the source of truth).
POWER_1M: Final = "power_1m"  # per area (tag area) or per billing group (tag meter_group): summed device means
DEVICE_1M: Final = "device_1m"  # per device: min/mean/max of TIER_FIELDS per minute (tier_field names)
DEVICE_1H: Final = "device_1h"  # the same per hour, for worst-N panels over long ranges
COLLECTOR_1M: Final = "collector_1m"  # per collector source (and ALL_DEVICES_SOURCE): latency, errors, missed polls
COLLECTOR_1H: Final = "collector_1h"  # the same per source and hour, for the collector's worst-N tables
ENERGY_1H: Final = "energy_1h"  # energy_15m summed per hour, same tags


class Tag(StrEnum):
    """Tag keys. Values always come from configuration, never from a payload."""

    SITE = "site"
    AREA = "area"
    DEVICE = "device"
    KIND = "kind"
    SOURCE = "source"
    LINE = "line"
    TOU = "tou"
    METER_GROUP = "meter_group"
    METHOD = "method"
    GRANULARITY = "granularity"
    TYPE = "type"
    RULE = "rule"
    LEVEL = "level"
    TARGET = "target"  # `plan`: which target of config/targets.yaml (PlanTarget)
    SCOPE = "scope"  # `plan`: the site's own figures or its group's (PlanScope)


class Field(StrEnum):
    """Field keys: canonical quantities, each with its unit in the name."""

    # electrical, instantaneous
    P_KW = "p_kw"
    P_L1_KW = "p_l1_kw"
    P_L2_KW = "p_l2_kw"
    P_L3_KW = "p_l3_kw"
    Q_KVAR = "q_kvar"
    Q_L1_KVAR = "q_l1_kvar"
    Q_L2_KVAR = "q_l2_kvar"
    Q_L3_KVAR = "q_l3_kvar"
    S_KVA = "s_kva"
    PF = "pf"  # signed: + inductive (lagging), - capacitive (leading)
    PF_L1 = "pf_l1"
    PF_L2 = "pf_l2"
    PF_L3 = "pf_l3"
    V_L1_V = "v_l1_v"
    V_L2_V = "v_l2_v"
    V_L3_V = "v_l3_v"
    V_L12_V = "v_l12_v"
    V_L23_V = "v_l23_v"
    V_L31_V = "v_l31_v"
    I_L1_A = "i_l1_a"
    I_L2_A = "i_l2_a"
    I_L3_A = "i_l3_a"
    I_N_A = "i_n_a"
    F_HZ = "f_hz"
    DEMAND_KW = "demand_kw"
    # electrical, counters
    E_IMP_KWH = "e_imp_kwh"
    E_EXP_KWH = "e_exp_kwh"
    EQ_IMP_KVARH = "eq_imp_kvarh"
    EQ_EXP_KVARH = "eq_exp_kvarh"
    # fuel
    GAS_M3 = "gas_m3"
    GAS_M3H = "gas_m3h"
    # compressed air (free air delivered, m3 at intake conditions)
    AIR_M3 = "air_m3"
    AIR_M3MIN = "air_m3min"
    AIR_BAR = "air_bar"  # header pressure, bar(g)
    # production
    OUTPUT_T = "output_t"
    # collector_status
    UP = "up"
    LATENCY_MS = "latency_ms"
    REQUESTS = "requests"
    ERRORS = "errors"
    SPOOL_BYTES = "spool_bytes"
    MISSED_POLLS = "missed_polls"
    INVALID_VALUES = "invalid_values"
    MESSAGES = "messages"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    SPOOL_LINES = "spool_lines"
    DROPPED_LINES = "dropped_lines"
    SHED_LINES = "shed_lines"
    DEAD_LETTERED_LINES = "dead_lettered_lines"
    DEAD_LETTERS_DROPPED = "dead_letters_dropped"  # oldest dead letters deleted to keep the table bounded
    SPOOL_ERRORS = "spool_errors"  # failed spool operations (disk full, I/O error, corrupt page)
    BUFFERED_LINES = "buffered_lines"  # readings held in memory while the spool cannot be written
    BUFFER_DROPPED_LINES = "buffer_dropped_lines"  # readings lost because that memory buffer was full
    # dashboard tiers
    SAMPLES = "samples"  # device_1m/1h: raw samples of p_kw summarised (the weight of a mean over longer periods)
    DEVICES = "devices"  # power_1m: member devices that reported in the minute (a missing one shows)
    # energy_15m
    ENERGY_KWH = "energy_kwh"
    ENERGY_EXP_KWH = "energy_exp_kwh"
    REACTIVE_KVARH = "reactive_kvarh"
    REACTIVE_EXP_KVARH = "reactive_exp_kvarh"
    COVERAGE = "coverage"
    FROM_POWER = "from_power"
    INTERP_KWH = "interp_kwh"  # the part of energy_kwh spread across a data gap (interpolated, not measured)
    REJECTED_SAMPLES = "rejected_samples"  # counter samples in the interval rejected as implausible
    REPLACEMENTS = "replacements"  # meter replacements/resets detected in the interval
    # analytics_status (tag source = the job)
    OK = "ok"
    CONSECUTIVE_FAILURES = "consecutive_failures"
    LAST_ERROR = "last_error"
    # demand
    PROJECTED_KW = "projected_kw"
    LIMIT_KW = "limit_kw"
    MINUTES_LEFT = "minutes_left"
    # alert (Grafana annotations: title and text)
    VALUE = "value"
    THRESHOLD = "threshold"
    TITLE = "title"
    TEXT = "text"
    SHIFT = "shift"
    DELIVERED = "delivered"
    FAILED = "failed"
    DELIVERIES = "deliveries"
    # opportunity
    SAVING_CNY = "saving_cny"
    SAVING_KWH = "saving_kwh"
    COST_CNY = "cost_cny"
    REDUCTION_KW = "reduction_kw"
    KVAR = "kvar"
    ADJUSTMENT_PCT = "adjustment_pct"
    ADJUSTMENT_CNY = "adjustment_cny"
    SPECIFIC_POWER_KW_PER_M3MIN = "specific_power_kw_per_m3min"
    # scope2
    KGCO2E = "kgco2e"
    FACTOR_KG_PER_KWH = "factor_kg_per_kwh"
    GREEN_KWH = "green_kwh"
    RENEWABLE_SHARE = "renewable_share"  # 0-1: (matched instruments + PV self-consumed) / consumption
    INTENSITY_T_PER_T = "intensity_t_per_t"  # Scope 1+2 t CO2e per t of output
    TARGET_T_PER_T = "target_t_per_t"  # the pathway's value for the year
    SCOPE1_KGCO2E = "scope1_kgco2e"  # on the site rows of `scope2`: the month's Scope 1 (fuel), for Scope 1+2
    # enpi (beside energy_kwh, gas_m3 and output_t of the period; a ratio is absent when output was 0)
    KWH_PER_T = "kwh_per_t"
    GAS_M3_PER_T = "gas_m3_per_t"
    KGCE = "kgce"  # standard coal equivalent, GB/T 2589 calorific basis (当量值)
    KGCE_PER_T = "kgce_per_t"
    T_CO2E = "t_co2e"  # Scope 1 + location-based Scope 2
    T_CO2E_PER_T = "t_co2e_per_t"
    DAYS = "days"  # days in the period with energy data
    PRODUCTION_DAYS = "production_days"  # days whose output was recorded (every output line, for the site)
    PRODUCTION_COMPLETENESS = "production_completeness"  # production_days / days of the period, 0-1
    # plan (each value in its target's unit, config/targets.yaml: t CO2e per t, or a share 0-1)
    TARGET_VALUE = "target_value"  # this year's target (the plan's value, or the straight path to the goal)
    GOAL_VALUE = "goal_value"  # the final year's goal
    BASE_VALUE = "base_value"  # the base year's value (absent when the plan states none)
    BASE_YEAR = "base_year"
    ACTUAL_VALUE = "actual_value"  # the month alone
    ACTUAL_YTD_VALUE = "actual_ytd_value"  # year to date: sum of numerators / sum of denominators
    ACTUAL_MARKET_VALUE = "actual_market_value"  # intensity only: the same with market-based Scope 2
    ACTUAL_YTD_MARKET_VALUE = "actual_ytd_market_value"
    NUMERATOR = "numerator"  # the month's: t CO2e, kWh or t (what the ratio divides)
    NUMERATOR_MARKET = "numerator_market"
    DENOMINATOR = "denominator"  # the month's: t output, kWh consumed, t purchased, machines
    ON_TRACK = "on_track"  # 1 on track, 0 off track; absent when it cannot be decided (no data, no target)
    MONTHS_COUNTED = "months_counted"  # months of the year in the year-to-date figure
    TO_BE_CONFIRMED = "to_be_confirmed"  # 1: the target itself is still to be confirmed


# Which database holds a measurement: the collector writes raw, analytics derived.
RAW_MEASUREMENTS: Final = frozenset({ELECTRICAL, FUEL, AIR, PRODUCTION, COLLECTOR_STATUS})
DERIVED_MEASUREMENTS: Final = frozenset({ENERGY_15M, DEMAND, SCOPE2, OPPORTUNITY, ENPI, PLAN, ALERT, ANALYTICS_STATUS,
                                        POWER_1M, DEVICE_1M, DEVICE_1H, COLLECTOR_1M, COLLECTOR_1H,
                                        ENERGY_1H})
# Fields that are running totals. They heal gaps (a later delta covers the
# missing interval), so the spool drops instantaneous values before them.
COUNTER_FIELDS: Final = frozenset(
    {Field.E_IMP_KWH, Field.E_EXP_KWH, Field.EQ_IMP_KVARH, Field.EQ_EXP_KVARH, Field.GAS_M3, Field.AIR_M3}
)
# Fields a meter reading puts in the `fuel` measurement; everything else is `electrical`.
FUEL_FIELDS: Final = frozenset({Field.GAS_M3, Field.GAS_M3H})
AIR_FIELDS: Final = frozenset({Field.AIR_M3, Field.AIR_M3MIN, Field.AIR_BAR})


class Stat(StrEnum):
    """The statistic a tier field holds (its name's suffix)."""

    MIN = "min"
    MEAN = "mean"
    MAX = "max"


# Fields the per-device tiers summarise, each with the statistics the dashboards read (PF comes from the P and Q
# means). Every statistic costs InfluxDB a pass over the raw samples (bench/bench_tiers.py), so none is kept that
# no panel shows: the equipment dashboard's bands of P and Q, and the means of the rest.
TIER_STATS: Final[Mapping[Field, tuple[Stat, ...]]] = {
    Field.P_KW: (Stat.MIN, Stat.MEAN, Stat.MAX), Field.Q_KVAR: (Stat.MIN, Stat.MEAN, Stat.MAX),
    **{f: (Stat.MEAN,) for f in (Field.I_L1_A, Field.I_L2_A, Field.I_L3_A, Field.V_L1_V, Field.V_L2_V, Field.V_L3_V)},
}
TIER_FIELDS: Final = tuple(TIER_STATS)
# The statistics of collector_status the collector tiers keep beside the errors and missed polls added: the
# collector dashboard reads the latency's mean and maximum only (no minimum, no `up`: its live panel reads raw).
COLLECTOR_TIER_STATS: Final[Mapping[Field, tuple[Stat, ...]]] = {Field.LATENCY_MS: (Stat.MEAN, Stat.MAX)}


def tier_columns() -> list[tuple[Field, Stat, str]]:
    """Every (field, statistic, tier field name) of the per-device tiers."""
    return [(f, s, tier_field(f, s)) for f, stats in TIER_STATS.items() for s in stats]


def tier_field(field: Field, stat: Stat) -> str:
    """The tier field holding ``stat`` of ``field`` over the tier's period, e.g. ``p_kw_mean``."""
    return f"{field.value}_{stat.value}"


# Source tag of the collector's own spool in `collector_status`.
SPOOL_SOURCE: Final = "spool"
MQTT_SOURCE: Final = "mqtt"
# Source tag of the collector_1m rows that summarise every device source of a site (not spool, not MQTT) per
# minute: the collector dashboard's trends read one series whatever the number of devices.
ALL_DEVICES_SOURCE: Final = "all-devices"


def measurement_of(field: str) -> str:
    """Where a meter reading's field is stored (raw database): fuel, air, production or electrical."""
    if field in FUEL_FIELDS:
        return FUEL
    if field in AIR_FIELDS:
        return AIR
    return PRODUCTION if field == Field.OUTPUT_T else ELECTRICAL


class Job(StrEnum):
    """Scheduled analytics jobs: the ``source`` tag of their `analytics_status` points."""

    ENERGY_15M = "energy_15m"
    ENERGY_DAILY = "energy_15m_daily"
    MONTHLY_ROLLUP = "monthly_rollup"
    QUARTER_REPORT = "quarter_report"  # the carbon committee's quarterly report (plantems quarter)
    GROUP_ROLLUP = "group_rollup"  # tagged with the group id as its site (plantems group analyze)
    TIERS = "tiers"  # the dashboard tiers (power_1m, device_1m/1h, collector_1m/1h, energy_1h)


# --- Tag values the analytics write and Grafana reads (shared, so a renamed value breaks both at once) ---

class OpportunityType(StrEnum):
    """``type`` tag of `opportunity` points."""

    LOAD_SHIFT = "load_shift"
    MAX_DEMAND = "max_demand"
    REACTIVE = "reactive"
    LOW_PF = "low_pf"
    COMPRESSED_AIR = "compressed_air"


class Granularity(StrEnum):
    """``granularity`` tag of `opportunity` and `scope2` points: the period one point covers."""

    DAY = "day"
    MONTH = "month"


class Method(StrEnum):
    """``method`` tag of `scope2` points: the GHG Protocol Scope 2 method."""

    LOCATION = "location"
    MARKET = "market"  # monthly matching of instruments
    MARKET_HOURLY = "market_hourly"  # hourly matching (GHG Protocol revision draft)


class PlanTarget(StrEnum):
    """``target`` tag of `plan` points: the keys of config/targets.yaml."""

    INTENSITY = "intensity"  # ASI casting-rolling, Scope 1+2 t CO2e per t of output
    RAW_MATERIAL = "raw_material"  # ASI raw material, Scope 3 category 1 t CO2e per t of aluminium purchased
    RECYCLED_SHARE = "recycled_share"
    RENEWABLE_SHARE = "renewable_share"
    CERTIFICATE_SHARE = "certificate_share"
    METERING_COVERAGE = "metering_coverage"


class PlanScope(StrEnum):
    """``scope`` tag of `plan` points: the site's own figures, or its group's (written under each member site)."""

    SITE = "site"
    GROUP = "group"


class Area(StrEnum):
    """Pseudo-areas of the ``area`` tag beside the configured ones."""

    SITE = "site"  # the whole site's `scope2` row (sum of every area)
    UNMETERED = "unmetered"  # what the site's incomers measured beyond the sum of its sub-meters


# The same values as plain constants, for code that compares or formats them as strings.
SITE_AREA: Final = Area.SITE.value
UNMETERED_AREA: Final = Area.UNMETERED.value
