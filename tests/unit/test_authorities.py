"""The 152 authorities of 2011, resolved by code or name as the views and the CLI ask."""

from __future__ import annotations

import pytest

from adapters.reference import authorities as load_authorities
from domain.authorities import Authorities, Authority, UnknownAuthority


@pytest.fixture(scope="module")
def authorities() -> Authorities:
    return load_authorities()


def test_by_code_and_by_name_whatever_the_case_and_spacing(authorities):
    kent = authorities.resolve("886")
    assert kent.name == "Kent"
    assert authorities.resolve("  kENT ") is kent
    for a in authorities.all:
        assert authorities.resolve(a.la_code) is a
        assert authorities.resolve(a.name.upper()) is a
        assert authorities.resolve("  ".join(a.name.split())) is a
    assert len(authorities.codes) == 152 and "886" in authorities.codes


@pytest.mark.parametrize("given", ["999", "Atlantis", "", "88 6"])
def test_an_unknown_authority_is_refused_naming_what_was_given(authorities, given):
    with pytest.raises(UnknownAuthority) as e:
        authorities.resolve(given)
    assert repr(given) in str(e.value)


def test_the_first_listed_wins_as_a_scan_in_order_would():
    first = Authority("001", "E1", "Same", "x", "r")
    second = Authority("002", "E2", "same", "x", "r")
    assert Authorities((first, second)).resolve("SAME") is first
