"""The shape-inference memos are shared by the server's request threads (issue 11, item 11):
bounded, locked, one build per key, and the same answers as one thread gets."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from torch import nn

from graph_compiler import infer
from graph_compiler.catalog import CATALOG
from graph_compiler.memo import Memo
from graph_compiler.shapes import B, TensorInfo

THREADS = 8


def together(fn, count: int = THREADS) -> list:
    """fn(i) on `count` threads released at the same moment."""
    start = threading.Barrier(count)

    def run(i):
        start.wait()
        return fn(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_threads_asking_for_one_module_share_one_build():
    built = []

    def factory():
        built.append(threading.get_ident())
        time.sleep(0.05)  # a slow build: every thread arrives while it runs
        return nn.Linear(4, 4)

    spec = CATALOG["Linear"]
    key = f"shared-{time.time()}"
    modules = together(lambda _: infer.meta_module(spec, {}, factory, factory_key=key))
    assert len(built) == 1
    assert all(m is modules[0] for m in modules)
    assert modules[0].weight.is_meta


def test_concurrent_inference_matches_one_thread():
    spec = CATALOG["Linear"]

    def shapes(n: int):
        params = {"in_features": 8, "out_features": n, "bias": True}
        return infer.infer_node(spec, params, {"in": [TensorInfo((B, 8))]}, "_m(_in_in_0)")

    infer.clear_caches()
    expected = {n: shapes(n) for n in range(1, 121)}

    def worker(i: int) -> list[int]:
        wrong = []
        for k in range(240):
            if i == 0 and k % 60 == 0:
                infer.clear_caches()  # a clear in the middle of everyone's lookups
            n = 1 + (i * 37 + k) % 120
            if shapes(n) != expected[n]:
                wrong.append(n)
        return wrong

    assert together(worker) == [[]] * THREADS


def test_the_memo_is_bounded_and_keeps_what_was_used_last():
    memo: Memo[int] = Memo(limit=100)
    for i in range(100):
        memo.get_or_make(i, lambda i=i: i)
    memo.get_or_make(0, lambda: pytest.fail("0 is cached"))  # used last now
    for i in range(100, 150):
        memo.get_or_make(i, lambda i=i: i)
    assert len(memo) == 100
    assert memo.get_or_make(0, lambda: -1) == 0  # kept: the old cache emptied itself when full
    assert memo.get_or_make(1, lambda: -1) == -1  # the least recently used went first


def test_a_failed_build_is_not_remembered_and_reaches_every_caller():
    memo: Memo[int] = Memo(limit=10)
    calls = []

    def failing():
        calls.append(1)
        time.sleep(0.02)
        raise ValueError("bad params")

    def ask(_):
        try:
            return memo.get_or_make("k", failing)
        except ValueError as exc:
            return str(exc)

    assert together(ask, 4) == ["bad params"] * 4
    assert len(memo) == 0 and 1 <= len(calls) <= 4
    assert memo.get_or_make("k", lambda: 5) == 5
