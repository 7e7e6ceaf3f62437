"""The examples in the text and extraction modules' docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    [
        "aesoperator.text.bm25",
        "aesoperator.text.language",
        "aesoperator.text.sentences",
        "aesoperator.text.summarize",
        "aesoperator.web.extract",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
