"""Agreement profiles: each shipped profile is valid data and cites every rule of the rule book."""

from datetime import timedelta

import pytest

from simulator.protocol import (
    DEFAULT_PROFILE_ID,
    RULES,
    WRITTEN_CONFIRMATION_WINDOW,
    AgreementProfile,
    default_profile,
    load_profile,
    profile_ids,
)


def test_the_default_profile_cites_the_rule_books_own_articles() -> None:
    """Under the default agreement every rule cites the article it always cited."""
    profile = default_profile()
    assert profile.id == DEFAULT_PROFILE_ID
    assert [(r.id, profile.article(r)) for r in RULES] == [(r.id, r.article) for r in RULES]
    assert profile.rule_book() == RULES


def test_the_default_profile_fixes_the_3_days_of_article_4_2() -> None:
    """The written-confirmation window is the agreement's, and the default's is 3 days."""
    assert default_profile().deadlines.written_confirmation == timedelta(days=3)
    assert timedelta(days=3) == WRITTEN_CONFIRMATION_WINDOW


@pytest.mark.parametrize("profile_id", profile_ids())
def test_every_shipped_profile_loads_and_cites_every_rule(profile_id: str) -> None:
    """A shipped profile is valid, names itself by its file, and has an article for each rule."""
    profile = load_profile(profile_id)
    assert profile.id == profile_id
    assert {r.id for r in profile.rule_book()} == {r.id for r in RULES}


def test_an_unknown_profile_is_refused_with_the_known_ones() -> None:
    """Asking for a profile that is not shipped names those that are."""
    with pytest.raises(KeyError, match="default"):
        load_profile("no-such-agreement")


def test_a_profile_that_misses_a_rule_is_refused() -> None:
    """A profile must cite every rule: a rule without an article would cite nothing."""
    data = default_profile().model_dump()
    del data["rules"]["results-overdue"]
    with pytest.raises(ValueError, match="results-overdue"):
        AgreementProfile.model_validate(data)
