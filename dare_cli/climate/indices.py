"""The climate indices icclim computes, read from icclim's own registries.

Two groups are listed: the ECA&D standard indices (``icclim.ecad.registry``, e.g. ``SU``,
``TX90p``) and icclim's generic indicators (``icclim.generic.registry``, e.g.
``count_occurrences``), which take a user threshold. Nothing here is copied by hand: names,
definitions, input variables, thresholds and parameters come from the installed icclim.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from functools import cache
from typing import Any

from dare_cli.climate.errors import ClimateUsageError

__all__ = ["ECAD", "GENERIC", "IndexInfo", "list_indices", "resolve_index"]

ECAD = "ECA&D"
GENERIC = "generic"

# Keywords of the generic functions that are icclim.index parameters of a spell (run of
# consecutive time steps) or of a moving window: such indices must never be split in time.
_SPELL_KEYWORDS = frozenset({"min_spell_length", "source_freq_delta", "rolling_window_width"})


@dataclass(frozen=True)
class IndexInfo:
    """One index icclim can compute.

    Attributes
    ----------
    name : str
        icclim's name of the index (``"TX90p"``, ``"count_occurrences"``); also the name of
        the output variable for ECA&D indices.
    group : str
        ``"ECA&D"`` or ``"generic"``.
    category : str
        ECA&D index group (``"heat"``, ``"rain"``, ...); ``""`` for generic indicators.
    definition : str
        icclim's definition of the index.
    variables : tuple of str
        For ECA&D indices, the usual (CMIP) name of each input variable, in icclim's order
        (``("tasmax", "tasmin")`` for DTR); ``()`` for generic indicators (any variable).
    variable_aliases : tuple of tuple of str
        For each input variable, the names icclim recognises (case-insensitively).
    parameters : tuple of (str, str)
        ``icclim.index`` keywords that shape this index, with icclim's value as text: the
        fixed threshold, output unit and windows of an ECA&D index, or the keywords a generic
        indicator reads with their defaults (``threshold`` is required for most of them).
    percentile_based : bool
        The threshold is a percentile computed from the data (``doy_per``/``period_per``).
    needs_base_period : bool
        The index uses a reference period (``base_period_time_range``): percentile indices
        and indices relative to a reference such as SPI.
    spell : bool
        The index depends on runs of consecutive time steps or on a moving window (CDD, CWD,
        WSDI, GSL, RX5day, ...). Tiles never split time, so this is informational.
    reference : str
        Where the definition comes from.
    """

    name: str
    group: str
    category: str
    definition: str
    variables: tuple[str, ...]
    variable_aliases: tuple[tuple[str, ...], ...]
    parameters: tuple[tuple[str, str], ...]
    percentile_based: bool
    needs_base_period: bool
    spell: bool
    reference: str


def _index_defaults() -> dict[str, Any]:
    from icclim.main import index

    return {
        name: parameter.default
        for name, parameter in inspect.signature(index).parameters.items()
        if parameter.kind is not inspect.Parameter.KEYWORD_ONLY  # deprecated ones
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _generic_keywords(indicator: Any) -> tuple[str, ...]:
    """Names of the parameters of the function behind a generic indicator."""
    process = getattr(indicator, "process", None)
    if process is None:
        return ()
    return tuple(inspect.signature(process).parameters)


def _is_percentile_threshold(threshold: Any) -> bool:
    from icclim._core.constants import (
        DOY_PERCENTILE_UNIT,
        PERIOD_PERCENTILE_UNIT,
    )

    text = str(threshold)
    return DOY_PERCENTILE_UNIT in text or PERIOD_PERCENTILE_UNIT in text


def _ecad_info(index: Any) -> IndexInfo:
    from icclim._core.constants import (
        QUANTILE_BASED,
        REFERENCE_PERIOD_INDEX,
    )
    from icclim._core.generic.indicator import GenericIndicator

    qualifiers = index.qualifiers or []
    fields = (
        "threshold",
        "output_unit",
        "doy_window_width",
        "min_spell_length",
        "rolling_window_width",
    )
    parameters = tuple(
        (field, _text(getattr(index, field)))
        for field in fields
        if getattr(index, field) is not None
    )
    percentile = QUANTILE_BASED in qualifiers or _is_percentile_threshold(index.threshold)
    keywords = _generic_keywords(index.indicator)
    # GSL and SPI are xclim indicators, not generic ones: both need the whole series.
    spell = not isinstance(index.indicator, GenericIndicator) or bool(
        _SPELL_KEYWORDS.intersection(keywords)
    )
    variables = index.input_variables or []
    return IndexInfo(
        name=index.short_name,
        group=ECAD,
        category=index.group.name,
        definition=index.definition or "",
        variables=tuple(variable.aliases[0] for variable in variables),
        variable_aliases=tuple(tuple(variable.aliases) for variable in variables),
        parameters=parameters,
        percentile_based=percentile,
        needs_base_period=percentile or REFERENCE_PERIOD_INDEX in qualifiers,
        spell=spell,
        reference=index.reference or index.source or "",
    )


def _generic_info(indicator: Any, defaults: dict[str, Any]) -> IndexInfo:
    keywords = set(_generic_keywords(indicator))
    used = {"threshold"} | (keywords & set(defaults))
    if "to_percent" in keywords:  # icclim maps out_unit="%" onto to_percent
        used.add("out_unit")
    if "is_compared_to_reference" in keywords:
        used.add("base_period_time_range")
    parameters = tuple((name, _text(defaults.get(name))) for name in sorted(used))
    return IndexInfo(
        name=indicator.name,
        group=GENERIC,
        category="",
        definition=indicator.definition,
        variables=(),
        variable_aliases=(),
        parameters=parameters,
        percentile_based=False,  # only if the user's threshold is a percentile
        needs_base_period="is_compared_to_reference" in keywords,
        spell=bool(_SPELL_KEYWORDS & keywords),
        reference="icclim generic indicator",
    )


@cache
def _catalog() -> tuple[IndexInfo, ...]:
    from icclim.ecad.registry import EcadIndexRegistry
    from icclim.generic.registry import GenericIndicatorRegistry

    defaults = _index_defaults()
    ecad = [_ecad_info(index) for index in EcadIndexRegistry.values()]
    generic = [_generic_info(item, defaults) for item in GenericIndicatorRegistry.values()]
    return (*ecad, *generic)


def list_indices() -> list[IndexInfo]:
    """Every index icclim offers: the ECA&D indices, then the generic indicators.

    Returns
    -------
    list of IndexInfo
        In icclim's registry order.
    """
    return list(_catalog())


def resolve_index(name: str) -> IndexInfo:
    """Find an index by name, ignoring case.

    Parameters
    ----------
    name : str
        ECA&D short name (``"tx90p"``) or generic indicator name (``"count_occurrences"``).

    Returns
    -------
    IndexInfo
        The index, with icclim's spelling of the name.

    Raises
    ------
    ClimateUsageError
        The name is unknown; the message lists the closest names.
    """
    by_name = {info.name.upper(): info for info in _catalog()}
    found = by_name.get(name.strip().upper())
    if found is not None:
        return found
    spelled = {info.name.upper(): info.name for info in _catalog()}
    near = difflib.get_close_matches(name.strip().upper(), list(spelled), n=5, cutoff=0.5)
    hint = f"; did you mean: {', '.join(spelled[n] for n in near)}" if near else ""
    raise ClimateUsageError(f"unknown index {name!r}{hint} (see the list of indices)")
