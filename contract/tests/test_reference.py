import json
from pathlib import Path

import pytest

from ferry_contract.reference import InvalidReference, parse_reference

CASES = json.loads((Path(__file__).parent / "reference_cases.json").read_text())


@pytest.mark.parametrize("text,repository,tag", CASES["valid"])
def test_valid_references_split_into_repository_and_tag(text, repository, tag):
    ref = parse_reference(text)
    assert (ref.repository, ref.tag) == (repository, tag)


@pytest.mark.parametrize("text", CASES["invalid"])
def test_invalid_references_are_refused_with_a_reason(text):
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert str(info.value)


def test_uppercase_repository_is_reported_as_a_case_problem():
    with pytest.raises(InvalidReference, match="lowercase"):
        parse_reference("Arista/ceos:4.35.1F")


def test_long_repository_names_are_refused():
    with pytest.raises(InvalidReference, match="255"):
        parse_reference("/".join(["abcdefghij"] * 30))
