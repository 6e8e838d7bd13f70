"""The reader thread of streaming inference: order kept, errors raised in the caller, clean early exit."""

from __future__ import annotations

import threading
from typing import Iterator

import pytest

from zoomplan.errors import InputError
from zoomplan.plan.inference.infer import _Prefetch


def test_items_in_order_and_errors_reraised() -> None:
    with _Prefetch(iter(range(50)), depth=2) as it:
        assert list(it) == list(range(50))

    def bad() -> Iterator[int]:
        yield 1
        raise InputError("scene x.tif: reading pixels failed")

    with pytest.raises(InputError, match="reading pixels failed"):
        with _Prefetch(bad(), depth=1) as it:
            list(it)


def test_early_exit_closes_the_generator_in_its_thread() -> None:
    where: list[str] = []

    def gen() -> Iterator[int]:
        try:
            for i in range(10**6):
                yield i
        finally:
            where.append(threading.current_thread().name)

    with pytest.raises(RuntimeError):
        with _Prefetch(gen(), depth=2) as it:
            for i in it:
                if i == 3:
                    raise RuntimeError("consumer failed")
    assert where == ["zoomplan-reader"]
