"""The layers import one way and no module imports itself round a cycle, not even inside a function.

bot -> core.runtime -> core.service -> core.storage | core.upbit -> core.trading -> models -> core.data
(the contracts live in pyproject.toml; grimp reads every import statement, function bodies included).
"""
from __future__ import annotations

import logging
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

from tests.conftest import ROOT

PACKAGES = ("core", "models", "bot")
MAX_LINES = 420  # a file past ~400 lines is split by responsibility


def test_the_layer_contracts_hold(monkeypatch):
    monkeypatch.chdir(ROOT)
    loggers = [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    enabled = [lg for lg in loggers if not lg.disabled]
    try:
        assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0
    finally:  # its CLI configures logging with dictConfig, which disables every logger that existed before
        for logger in enabled:
            logger.disabled = False


def strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's components with more than one module: each is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = [0]

    def visit(module: str) -> None:
        work = [(module, iter(sorted(graph.find_modules_directly_imported_by(module))))]
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(component)

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_anywhere():
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    assert strongly_connected(graph) == []


def test_the_cycle_check_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    assert strongly_connected(graph) == [{"a", "b", "c"}]


def test_modules_stay_small():
    long = {str(p.relative_to(ROOT)): n for package in PACKAGES for p in (ROOT / package).rglob("*.py")
            if (n := len(Path(p).read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these by responsibility: {long}"
