"""InfluxDB schema: every measurement, tag and field name used by plantems.

This module is the contract between the collector, analytics and Grafana
(see shared/design.md, "Schema"). No other module writes one of these names
as a string literal.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "AIR",
    "AIR_FIELDS",
    "ALERT",
    "ANALYTICS_STATUS",
    "COLLECTOR_STATUS",
    "COUNTER_FIELDS",
    "DEMAND",
    "DERIVED_MEASUREMENTS",
    "ELECTRICAL",
    "ENERGY_15M",
    "FUEL",
    "FUEL_FIELDS",
    "OPPORTUNITY",
    "PRODUCTION",
    "RAW_MEASUREMENTS",
    "Field",
    "Job",
    "Tag",
    "measurement_of",
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
ALERT: Final = "alert"
ANALYTICS_STATUS: Final = "analytics_status"  # per job: ok, failures, last error (retried with backoff)


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


# Which database holds a measurement: the collector writes raw, analytics derived.
RAW_MEASUREMENTS: Final = frozenset({ELECTRICAL, FUEL, AIR, PRODUCTION, COLLECTOR_STATUS})
DERIVED_MEASUREMENTS: Final = frozenset({ENERGY_15M, DEMAND, SCOPE2, OPPORTUNITY, ALERT, ANALYTICS_STATUS})
# Fields that are running totals. They heal gaps (a later delta covers the
# missing interval), so the spool drops instantaneous values before them.
COUNTER_FIELDS: Final = frozenset(
    {Field.E_IMP_KWH, Field.E_EXP_KWH, Field.EQ_IMP_KVARH, Field.EQ_EXP_KVARH, Field.GAS_M3, Field.AIR_M3}
)
# Fields a meter reading puts in the `fuel` measurement; everything else is `electrical`.
FUEL_FIELDS: Final = frozenset({Field.GAS_M3, Field.GAS_M3H})
AIR_FIELDS: Final = frozenset({Field.AIR_M3, Field.AIR_M3MIN, Field.AIR_BAR})
# Source tag of the collector's own spool in `collector_status`.
SPOOL_SOURCE: Final = "spool"
MQTT_SOURCE: Final = "mqtt"


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
    GROUP_ROLLUP = "group_rollup"  # tagged with the group id as its site (plantems group analyze)
