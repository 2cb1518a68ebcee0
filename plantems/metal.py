"""The purchased-metal ledger (``config/metal_purchases.csv``): Scope 3 category 1 inputs.

One row per delivery of metal to a site: supplier, delivery date, tonnes, product, the product's
cradle-to-gate footprint (t CO2e per t) with its basis and evidence, and the recycled content by
mass (ISO 14021: pre-consumer and post-consumer, in percent).

Basis of a footprint (shared/domain.md section 12.5): a supplier product carbon footprint to ISO 14067
or GB/T 24067 (``pcf``), an ISO 14025 / EN 15804 EPD (``epd``), an ASI certificate with its chain-of-custody
documents (``asi_certificate``), or a secondary ``default_average`` (e.g. China primary 15.9, recycled 0.85,
Peng et al. 2022). Defaults are lower-quality data and are flagged in every figure that rests on them.

The plant's own scrap (edge trim, coil ends) is never purchased metal and never recycled content
(section 12.2/12.4): a ``home_scrap`` row is refused. Scrap rows are 100 % recycled content of their kind,
primary ingot 0 %; a recycled ingot must state its content; an alloying element is 0 % unless stated.

Refused, with the file's line: unknown product or basis, non-positive tonnes, a footprint outside
0..40 t CO2e/t (the worst smelters are about 20), recycled content that contradicts the product,
evidence missing, a factor year in the future of the delivery, a duplicate delivery id, an unknown site.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from plantems.yamlconf import ConfigError

__all__ = ["FootprintBasis", "MetalPurchase", "Product", "load_metal_ledger"]

MAX_FOOTPRINT_T_PER_T = 40.0  # twice the worst coal-captive smelter (CRU spread > 20): a typo, not a metal
_COLUMNS = ("delivery_id", "site", "supplier", "delivered", "tonnes", "product", "footprint_t_co2e_per_t",
            "basis", "evidence", "factor_year", "recycled_pre_pct", "recycled_post_pct")
_OPTIONAL = ("note",)
E = TypeVar("E", bound=StrEnum)


class Product(StrEnum):
    PRIMARY_INGOT = "primary_ingot"
    RECYCLED_INGOT = "recycled_ingot"
    PRE_CONSUMER_SCRAP = "pre_consumer_scrap"  # bought process scrap from another manufacturer
    POST_CONSUMER_SCRAP = "post_consumer_scrap"  # end-of-life scrap
    ALLOYING_ELEMENT = "alloying_element"  # Si, Mg, Mn, Cu, master alloys

    @property
    def is_aluminium(self) -> bool:
        """Counts in the ASI raw-material intensity denominator (t of aluminium purchased)."""
        return self is not Product.ALLOYING_ELEMENT


class FootprintBasis(StrEnum):
    PCF = "pcf"  # supplier product carbon footprint, ISO 14067 / GB/T 24067
    EPD = "epd"  # ISO 14025 / EN 15804 environmental product declaration
    ASI_CERTIFICATE = "asi_certificate"  # ASI Performance Standard certificate + CoC documents
    DEFAULT_AVERAGE = "default_average"  # secondary average-data factor (lower quality)

    @property
    def supplier_specific(self) -> bool:
        return self is not FootprintBasis.DEFAULT_AVERAGE


# Recycled content a product implies by definition (pre %, post %); other products state theirs.
_IMPLIED_CONTENT: dict[Product, tuple[float, float]] = {
    Product.PRIMARY_INGOT: (0.0, 0.0),
    Product.PRE_CONSUMER_SCRAP: (100.0, 0.0),
    Product.POST_CONSUMER_SCRAP: (0.0, 100.0),
}


@dataclass(frozen=True)
class MetalPurchase:
    delivery_id: str
    site: str
    supplier: str
    delivered: date
    tonnes: float
    product: Product
    footprint_t_co2e_per_t: float
    basis: FootprintBasis
    evidence: str  # certificate / report number and verifier, or the default's source
    factor_year: int
    recycled_pre_pct: float
    recycled_post_pct: float
    note: str
    line: int

    @property
    def t_co2e(self) -> float:
        return self.tonnes * self.footprint_t_co2e_per_t

    @property
    def month(self) -> str:
        return f"{self.delivered:%Y-%m}"


def _enum(kind: type[E], key: str, raw: str) -> E:
    try:
        return kind(raw.strip())
    except ValueError:
        hint = " (own scrap is not purchased metal nor recycled content: leave it out)" if raw.strip() == "home_scrap" \
            else ""
        raise ValueError(f"{key} = {raw.strip()!r}: not one of {', '.join(k.value for k in kind)}{hint}") from None


def _number(row: dict[str, str], key: str) -> float:
    raw = (row.get(key) or "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{key} = {raw!r}: not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{key} = {raw!r}: not a finite number")
    return value


def _content(row: dict[str, str], product: Product) -> tuple[float, float]:
    implied = _IMPLIED_CONTENT.get(product)
    given = [(row.get(key) or "").strip() for key in ("recycled_pre_pct", "recycled_post_pct")]
    if given == ["", ""] and product is not Product.RECYCLED_INGOT:
        return implied or (0.0, 0.0)  # an alloying element is virgin unless stated
    if "" in given and product is Product.RECYCLED_INGOT:
        raise ValueError("recycled_pre_pct and recycled_post_pct: a recycled_ingot must state its recycled content "
                         "(percent by mass, from the supplier's declaration)")
    pre, post = _number(row, "recycled_pre_pct"), _number(row, "recycled_post_pct")
    if pre < 0 or post < 0 or pre + post > 100:
        raise ValueError(f"recycled_pre_pct = {pre:g}, recycled_post_pct = {post:g}: each must be >= 0 and "
                         "together at most 100 (percent by mass)")
    if implied is not None and (pre, post) != implied:
        raise ValueError(f"recycled_pre_pct = {pre:g}, recycled_post_pct = {post:g}: {product.value} is "
                         f"{implied[0]:g} % pre- and {implied[1]:g} % post-consumer by definition (ISO 14021)")
    return pre, post


def _row_purchase(row: dict[str, str], line: int) -> MetalPurchase:
    product = _enum(Product, "product", row["product"])
    basis = _enum(FootprintBasis, "basis", row["basis"])
    try:
        delivered = date.fromisoformat(row["delivered"].strip())
    except ValueError:
        raise ValueError(f"delivered = {row['delivered'].strip()!r}: not a date YYYY-MM-DD") from None
    tonnes = _number(row, "tonnes")
    if tonnes <= 0:
        raise ValueError(f"tonnes = {tonnes:g}: must be positive")
    footprint = _number(row, "footprint_t_co2e_per_t")
    if not 0 <= footprint <= MAX_FOOTPRINT_T_PER_T:
        raise ValueError(f"footprint_t_co2e_per_t = {footprint:g}: must be within 0..{MAX_FOOTPRINT_T_PER_T:g} "
                         "t CO2e per t (cradle-to-gate; China primary is about 15.9)")
    year_raw = row["factor_year"].strip()
    if not year_raw.isdigit() or not 1990 <= int(year_raw) <= delivered.year:
        raise ValueError(f"factor_year = {year_raw!r}: must be the year the footprint was determined, "
                         f"1990..{delivered.year} (not after the delivery)")
    for key in ("site", "supplier"):
        if not row[key].strip():
            raise ValueError(f"{key} is empty")
    if not row["evidence"].strip():
        raise ValueError("evidence is empty: every footprint needs its evidence (certificate or report number "
                         "and verifier, or the default's source)")
    pre, post = _content(row, product)
    return MetalPurchase(
        delivery_id=row["delivery_id"].strip(), site=row["site"].strip(), supplier=row["supplier"].strip(),
        delivered=delivered, tonnes=tonnes, product=product, footprint_t_co2e_per_t=footprint, basis=basis,
        evidence=row["evidence"].strip(), factor_year=int(year_raw), recycled_pre_pct=pre, recycled_post_pct=post,
        note=(row.get("note") or "").strip(), line=line)


def load_metal_ledger(path: Path, *, sites: Collection[str] = ()) -> list[MetalPurchase]:
    """Every delivery; ConfigError lists each refused row as ``file:line delivery 'id': key = value: rule``.

    ``sites``: the known site ids; when given, a row for any other site is refused.
    """
    purchases: list[MetalPurchase] = []
    problems: list[str] = []
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from exc
    with handle:
        lines = handle.read().splitlines(keepends=True)
    # '#' lines are comments (e.g. marking example data); blanked so csv line numbers stay the file's
    lines = ["\n" if text.lstrip().startswith("#") else text for text in lines]
    first = next((i for i, text in enumerate(lines) if text.strip()), len(lines))
    reader = csv.DictReader(lines[first:])
    header = reader.fieldnames or []
    missing = [c for c in _COLUMNS if c not in header]
    unknown = [c for c in header if c not in _COLUMNS + _OPTIONAL]
    if missing or unknown:
        raise ConfigError([f"{path}:{first + 1}: missing columns {missing}, unknown columns {unknown}; "
                           f"expected {list(_COLUMNS)} and optionally {list(_OPTIONAL)}"])
    seen: dict[str, int] = {}
    for row in reader:
        line = first + reader.line_num
        delivery_id = (row.get("delivery_id") or "").strip()
        where = f"{path}:{line} delivery {delivery_id!r}"
        if None in row or any(row.get(c) is None for c in _COLUMNS):
            problems.append(f"{where}: has {len(row)} fields where the header has {len(header)}")
            continue
        try:
            purchase = _row_purchase(row, line)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if not delivery_id:
            problems.append(f"{where}: delivery_id is empty")
        elif delivery_id in seen:
            problems.append(f"{where}: duplicate delivery_id (first on line {seen[delivery_id]})")
        elif sites and purchase.site not in sites:
            problems.append(f"{where}: site = {purchase.site!r}: unknown site; known: {sorted(sites)}")
        else:
            seen[delivery_id] = line
            purchases.append(purchase)
    if problems:
        raise ConfigError(problems)
    return purchases
