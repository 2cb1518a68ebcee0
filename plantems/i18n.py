"""Report languages: zh-CN and English (issue 14, item 5).

Every report text is written in English in the code as a message id (a str.format template) and passed
through ``tr(lang, message, **values)``; English returns the id itself, Chinese looks it up in the catalogues.
Each report module registers its own catalogue (``register``) so the monthly, group, quarterly and annual
reports share the mechanism without sharing one file. Numbers keep the same digits in both languages
(1,234.5: the thousands separator a Chinese finance reader expects); months, dates, names and units differ.
A message with no Chinese translation is rendered in English and logged once as an ERROR (the report is
still written: a sentence in English is better than no report); tests/test_i18n.py checks every literal
message id in the report modules has a translation, so this is a bug caught before release.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Protocol

__all__ = ["ALL_LANGS", "CHART_FONTS", "CJK_FONT_FILES", "HTML_FONT_STACK", "DisplayNames", "Lang", "Named",
           "chart_rc", "date_label", "month_label", "name_of", "parse_langs", "register", "tr", "tr_context",
           "translations"]

log = logging.getLogger(__name__)


class Lang(StrEnum):
    ZH = "zh"
    EN = "en"


ALL_LANGS: tuple[Lang, ...] = (Lang.ZH, Lang.EN)

# The HTML font stack: Chinese Windows (Microsoft YaHei, SimHei), macOS (PingFang SC), Linux (Noto/Source Han).
HTML_FONT_STACK = ('"Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "Source Han Sans SC", "SimHei", '
                   '"WenQuanYi Micro Hei", sans-serif')
# matplotlib's font list, DejaVu last for Latin only. Debian's fonts-noto-cjk (deploy/setup-debian.sh) ships .ttc
# collections of which matplotlib 3.10 reads the first face only: it knows them as "Noto Sans CJK JP" (every face
# holds the full Chinese glyph set; a few characters take the Japanese shape of the glyph).
CHART_FONTS: tuple[str, ...] = ("Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", "SimHei",
                                "Noto Sans CJK JP", "WenQuanYi Micro Hei", "DejaVu Sans")
CJK_FONT_FILES: tuple[str, ...] = ("NotoSansCJK", "SourceHanSans", "msyh", "simhei", "wqy-microhei")


def chart_rc() -> dict[str, object]:
    """matplotlib rcParams for every report chart: a CJK font, and text drawn as paths in the SVG so the
    browser needs no font for the charts (a viewer without Chinese fonts still sees the glyphs)."""
    return {"font.family": "sans-serif", "font.sans-serif": list(CHART_FONTS), "svg.fonttype": "path",
            "axes.unicode_minus": False}  # the ASCII hyphen: not every CJK font has U+2212


def parse_langs(values: tuple[str, ...] | list[str]) -> tuple[Lang, ...]:
    """The CLI's --lang values (repeatable; none means both), in the canonical order zh, en."""
    wanted = {Lang(v) for v in values} if values else set(ALL_LANGS)
    return tuple(lang for lang in ALL_LANGS if lang in wanted)


_CATALOGUE: dict[str, str] = {}
_reported_missing: set[str] = set()


def register(catalogue: Mapping[str, str]) -> None:
    """Add a report module's English -> Chinese messages; one id translated two ways is a bug."""
    for message, text in catalogue.items():
        if _CATALOGUE.get(message, text) != text:
            raise ValueError(f"i18n: message {message!r} translated twice: {_CATALOGUE[message]!r} and {text!r}")
        _CATALOGUE[message] = text


def translations() -> Mapping[str, str]:
    return _CATALOGUE


def tr(lang: Lang, message: str, /, **values: object) -> str:
    """The message in ``lang``, its {placeholders} filled from ``values``."""
    return tr_context(lang, "", message, **values)


def tr_context(lang: Lang, context: str, message: str, /, **values: object) -> str:
    """``tr`` for one English word with two Chinese ones (a production "line", a ledger file's "line"):
    with a context its catalogue key is "context|message"."""
    template = message
    if lang is Lang.ZH:
        found = _CATALOGUE.get(f"{context}|{message}" if context else message)
        if found is None:
            if message not in _reported_missing:
                _reported_missing.add(message)
                log.error("i18n: no Chinese translation for %r: the zh report shows it in English", message)
        else:
            template = found
    return template.format(**values) if values else template


class Named(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def name_zh(self) -> str: ...


def name_of(obj: Named, lang: Lang) -> str:
    """A device's, line's or site's display name: in Chinese its name_zh (else name, else id); in English its id."""
    if lang is Lang.EN:
        return obj.id  # the English report names objects by their configuration ids, as before
    return obj.name_zh or obj.name or obj.id


class DisplayNames:
    """Objects' display names by id in one language (``name_of``); an id with no object shows as itself."""

    def __init__(self, objects: Mapping[str, Named], lang: Lang) -> None:
        self._objects, self.lang = objects, lang

    def __call__(self, key: str) -> str:
        found = self._objects.get(key)
        return key if found is None else name_of(found, self.lang)


def month_label(month: str, lang: Lang) -> str:
    """'2026-10' as 2026年10月 or 2026-10."""
    year, number = month.split("-")
    return f"{year}年{int(number)}月" if lang is Lang.ZH else month


def date_label(day: date, lang: Lang) -> str:
    return f"{day.year}年{day.month}月{day.day}日" if lang is Lang.ZH else day.isoformat()
