"""The filter language parser: trees for good text, positioned errors for bad text."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from packwork.metadata.filters import (
    And, Compare, FilterError, In, IsNull, Not, Or, Var, parse_filter, resolve_var,
)


def test_full_expression():
    tree = parse_filter("stage in ('won','lost') and amount >= 10000.5 and owner_id = $me "
                        "and close_date >= $today-30d")
    assert tree == And((
        In(("stage",), ("won", "lost"), False, 0),
        Compare(("amount",), ">=", Decimal("10000.5"), 28),
        Compare(("owner_id",), "=", Var("me"), 50),
        Compare(("close_date",), ">=", Var("today", -30, "d"), 69),
    ))


def test_precedence_not_and_or_parentheses():
    tree = parse_filter("a = 1 or b = 2 and not c is null")
    assert isinstance(tree, Or) and isinstance(tree.items[1], And)
    assert tree.items[1].items[1] == Not(IsNull(("c",), False, 23))
    grouped = parse_filter("(a = 1 or b = 2) and c is not null")
    assert isinstance(grouped, And) and isinstance(grouped.items[0], Or)
    assert grouped.items[1] == IsNull(("c",), True, 21)


def test_values_and_paths():
    assert parse_filter("name = 'O''Brien'").value == "O'Brien"
    assert parse_filter("x = true").value is True
    assert parse_filter("x != null").value is None
    assert parse_filter("account.industry = 'retail'").path == ("account", "industry")
    assert parse_filter("tags not in ('a')") == In(("tags",), ("a",), True, 0)
    assert parse_filter("name CONTAINS 'x'").op == "contains"
    assert parse_filter("name startswith 'x'").op == "startswith"


@pytest.mark.parametrize("text, message, position", [
    ("1=1) or (1=1", "expected a field name, found '1'", 0),
    ("name;drop table account", "unexpected character ';'", 4),
    ("name = 'x", "unterminated string", 7),
    ("a = ", "expected a value, found the end", 4),
    ("a == 1", "expected a value, found '='", 3),
    ("(a = 1", "expected ')', found the end", 6),
    ("a = 1 b = 2", "unexpected 'b'", 6),
    ("a = $yesterday", "unknown variable $yesterday; known: $me, $today, $now", 4),
    ("a not = 1", "expected 'in' after 'not'", 6),
    ("", "empty filter", 0),
    ("a in 1", "expected '(' to start the list, found '1'", 5),
])
def test_errors_name_the_position(text, message, position):
    with pytest.raises(FilterError) as error:
        parse_filter(text)
    assert (error.value.message, error.value.position) == (message, position)


def test_depth_and_length_limits():
    with pytest.raises(FilterError, match="nested deeper"):
        parse_filter("(" * 100 + "a = 1" + ")" * 100)
    with pytest.raises(FilterError, match="longer than"):
        parse_filter("a = '" + "x" * 5000 + "'")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(list("ab_.=<>!() ',$0123456789-") + ["and ", "or ", "not ", "in ",
                                                                              "is ", "null "]), max_size=60).map("".join))
def test_any_text_parses_or_raises_filter_error(text):
    try:
        parse_filter(text)
    except FilterError:
        pass


@pytest.mark.parametrize("var, expected", [
    (Var("today", -30, "d"), date(2026, 2, 1)),
    (Var("today", 1, "w"), date(2026, 3, 10)),
    (Var("today", -1, "m"), date(2026, 2, 3)),
    (Var("today", 1, "y"), date(2027, 3, 3)),
])
def test_relative_dates(var, expected):
    assert resolve_var(var, date(2026, 3, 3)) == expected


def test_month_end_is_clamped():
    assert resolve_var(Var("today", 1, "m"), date(2026, 1, 31)) == date(2026, 2, 28)


def test_settings_as_values_and_as_offset_counts():
    from packwork.metadata.filters import SettingValue, settings_used
    tree = parse_filter("amount >= ${big_deal} and seen_on < $today-${return_days}d and due > $today+${lead}w")
    assert tree.items[0] == Compare(("amount",), ">=", SettingValue("big_deal"), 0)
    assert tree.items[1].value == Var("today", -1, "d", "return_days")
    assert tree.items[2].value == Var("today", 1, "w", "lead")
    assert settings_used(tree) == [("big_deal", 0, False), ("return_days", 26, True), ("lead", 63, True)]
    assert settings_used(parse_filter("x in (1, ${a})")) == [("a", 0, False)]
    with pytest.raises(FilterError, match=r"\$\{a\} takes no offset"):
        parse_filter("x = ${a}-3d")
