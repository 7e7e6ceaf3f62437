"""The examples in the public API's docstrings run."""

import doctest

import pytest

import aesoperator.task


@pytest.mark.parametrize("module", [aesoperator.task])
def test_docstring_examples(module: object) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert tried > 0 and failures == 0
