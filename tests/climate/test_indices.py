import icclim
import pytest
from icclim.ecad.registry import EcadIndexRegistry
from icclim.generic.registry import GenericIndicatorRegistry

from dare_cli.climate.errors import ClimateUsageError
from dare_cli.climate.indices import ECAD, GENERIC, list_indices, resolve_index


def test_every_icclim_index_is_listed_once():
    infos = list_indices()
    names = [i.name for i in infos]
    assert len(names) == len(set(names))
    ecad = {i.short_name for i in EcadIndexRegistry.values()}
    generic = {g.name for g in GenericIndicatorRegistry.values()}
    assert {i.name for i in infos if i.group == ECAD} == ecad
    assert {i.name for i in infos if i.group == GENERIC} == generic
    assert len(ecad) >= 60 and len(generic) >= 20  # icclim 7.2.1: 64 and 20
    assert all(i.definition for i in infos)


def test_ecad_index_details_come_from_icclim():
    su = resolve_index("su")
    assert su.name == "SU" and su.group == ECAD and su.category == "heat"
    assert su.variables == ("tasmax",) and "tasmax" in su.variable_aliases[0]
    assert dict(su.parameters)["threshold"] == EcadIndexRegistry.SU.threshold
    assert not su.percentile_based and not su.needs_base_period and not su.spell
    dtr = resolve_index("DTR")
    assert dtr.variables == ("tasmax", "tasmin")


@pytest.mark.parametrize(
    ("name", "percentile", "spell"),
    [("TX90p", True, False), ("WSDI", True, True), ("R95p", True, False),
     ("CDD", False, True), ("CWD", False, True), ("RX5day", False, True),
     ("GSL", False, True), ("PRCPTOT", False, False)],
)
def test_percentile_and_spell_flags(name, percentile, spell):
    info = resolve_index(name)
    assert info.percentile_based is percentile
    assert info.needs_base_period is percentile
    assert info.spell is spell


def test_spi_needs_a_reference_period():
    assert resolve_index("spi6").needs_base_period


def test_generic_indicator_parameters_are_icclim_keywords():
    import inspect

    keywords = set(inspect.signature(icclim.index).parameters)
    for info in list_indices():
        assert {name for name, _ in info.parameters} <= keywords | {"output_unit"}, info.name
    spell = dict(resolve_index("sum_of_spell_lengths").parameters)
    assert spell["min_spell_length"] == "6" and "threshold" in spell
    assert resolve_index("COUNT_OCCURRENCES").group == GENERIC


def test_unknown_index_lists_near_matches():
    message = r"unknown index 'TX9p'; did you mean: TX90p, TX10p"
    with pytest.raises(ClimateUsageError, match=message):
        resolve_index("TX9p")
    with pytest.raises(ClimateUsageError, match=r"unknown index 'zzzz'") as info:
        resolve_index("zzzz")
    assert "did you mean" not in str(info.value)
