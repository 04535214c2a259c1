"""The shared command-line helpers: the progress bar appears only where a person watches."""

import sys
import types

import pytest

from hpc_comm import _launcher, cli_support


@pytest.fixture
def fake_tqdm(monkeypatch):
    made = []

    def tqdm(**kwargs):
        made.append(kwargs)
        return ("bar", kwargs)

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=tqdm))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(_launcher, "rank_and_size", lambda: (0, 1))
    return made


def test_bar_on_rank_zero_of_a_terminal(fake_tqdm):
    bar = cli_support.progress_bar(10, desc="steps", unit="step", leave=False)
    assert bar == ("bar", {"total": 10, "desc": "steps", "unit": "step", "leave": False})


def test_no_bar_when_disabled_or_on_other_ranks(fake_tqdm, monkeypatch):
    assert cli_support.progress_bar(10, enabled=False) is None
    monkeypatch.setattr(_launcher, "rank_and_size", lambda: (1, 2))
    assert cli_support.progress_bar(10) is None
    assert fake_tqdm == []


def test_no_bar_without_a_terminal_or_without_tqdm(fake_tqdm, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert cli_support.progress_bar(10) is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import fails
    assert cli_support.progress_bar(10) is None
    assert fake_tqdm == []


@pytest.mark.parametrize(
    "parse, text, expected",
    [
        (cli_support.positive_int, "3", 3),
        (cli_support.nonnegative_int, "0", 0),
        (cli_support.positive_float, "0.5", 0.5),
    ],
)
def test_number_types_accept(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize(
    "parse, text",
    [
        (cli_support.positive_int, "0"),
        (cli_support.positive_int, "2.5"),
        (cli_support.nonnegative_int, "-1"),
        (cli_support.positive_float, "0"),
        (cli_support.positive_float, "nan"),
        (cli_support.positive_float, "x"),
    ],
)
def test_number_types_refuse_with_the_argparse_error(parse, text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        parse(text)
