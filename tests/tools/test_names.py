"""The name policy: the protocol's rule, fitting any text into it, and resolving clashes."""

import pytest

from framework.tools import MAX_NAME_LENGTH, check_name, fit_name, qualified_name, resolve_names


@pytest.mark.parametrize("name", ["a", "get_weather", "get-weather-2", "_x", "x" * 64])
def test_valid_names_pass_and_are_kept(name: str) -> None:
    check_name(name)
    assert fit_name(name) == name


@pytest.mark.parametrize("name", ["", "has space", "dot.ted", "x" * 65, "naïve"])
def test_invalid_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(ValueError, match=r"is invalid: it must match \^\[a-zA-Z0-9_-\]\{1,64\}\$"):
        check_name(name, advice=" (pass name=...)")
    fitted = fit_name(name)
    check_name(fitted)
    assert fitted != name


@pytest.mark.parametrize(
    ("name", "fitted"),
    [
        ("Billing Agent", "Billing_Agent"),
        ("  Billing -- Agent!  ", "Billing_--_Agent"),
        ("files.read/all", "files_read_all"),
        ("café crème", "caf_cr_me"),
    ],
)
def test_refused_characters_become_one_underscore(name: str, fitted: str) -> None:
    assert fit_name(name) == fitted


def test_long_names_are_cut_and_kept_apart_by_a_hash() -> None:
    a, b = "x" * 70 + "_first", "x" * 70 + "_second"
    fa, fb = fit_name(a), fit_name(b)
    assert len(fa) == len(fb) == MAX_NAME_LENGTH
    assert fa != fb
    assert fa.startswith("x" * 55 + "_")
    assert fit_name(a) == fa  # the same text always fits the same way
    assert len(fit_name(a, limit=20)) == 20


def test_text_without_a_usable_character_gets_a_hashed_name() -> None:
    assert fit_name("日本").startswith("tool_")
    assert fit_name("日本") != fit_name("中国")
    check_name(fit_name(""))


@pytest.mark.parametrize("limit", [15, 65])
def test_limit_out_of_range_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be between 16 and 64"):
        fit_name("x", limit)


def test_qualified_name_prefixes_the_owner_and_fits() -> None:
    assert qualified_name("films", "add") == "films_add"
    assert qualified_name("my plugin", "add") == "my_plugin_add"
    long = qualified_name("p" * 40, "t" * 40)
    assert len(long) == MAX_NAME_LENGTH
    assert long.startswith("p" * 40 + "_")


@pytest.mark.parametrize(
    ("reserved", "offered", "names"),
    [
        # Nothing shared: every tool keeps its name.
        (["a"], [("p", "b"), ("q", "c")], ["b", "c"]),
        # Shared with a reserved name: the offered one is qualified.
        (["add"], [("films", "add")], ["films_add"]),
        # Shared between two offered tools: both are qualified, whatever the order.
        ([], [("films", "add"), ("books", "add")], ["films_add", "books_add"]),
        ([], [("books", "add"), ("films", "add")], ["books_add", "films_add"]),
        # The qualified name is taken too: the tool is left out.
        (["add", "films_add"], [("films", "add")], [None]),
        ([], [("films", "add"), ("films", "add")], ["films_add", None]),
        ([], [], []),
    ],
)
def test_resolve_names(
    reserved: list[str], offered: list[tuple[str, str]], names: list[str | None]
) -> None:
    assert resolve_names(reserved, offered) == names
