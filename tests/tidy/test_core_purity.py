"""`gridmarket.core` stays pure: no I/O, clock, randomness or concurrency, and no floats.

The core decides; time, ids and parsed numbers are passed in (DESIGN section 12). So every
module under src/gridmarket/core may import only the allow-list below (plus the core itself),
never names the I/O builtins, and computes in integers only: no `float`, no float or complex
literal, no true division `/` (floor division `//` is fine).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

CORE_PACKAGE = "gridmarket.core"


def _core_dir() -> Path:
    # Found without importing the core, so a core that fails to import is still checked.
    spec = importlib.util.find_spec(CORE_PACKAGE)
    assert spec is not None and spec.submodule_search_locations, f"{CORE_PACKAGE} not found"
    return Path(next(iter(spec.submodule_search_locations)))


CORE_DIR = _core_dir()

ALLOWED_MODULES = frozenset(
    {
        "__future__",
        "typing",
        "enum",
        "dataclasses",
        "collections",
        "bisect",
        "heapq",
        "itertools",
        "functools",
        "operator",
        "abc",
        # Deterministic, no I/O: the core fingerprints its state for replay checks.
        "hashlib",
    }
)
FORBIDDEN_EXAMPLES = (
    "time, datetime, random, os, sys, io, socket, asyncio, threading, decimal, sqlalchemy, httpx"
)
IO_BUILTINS = frozenset({"open", "print", "input", "breakpoint", "__import__", "eval", "exec"})

_IMPORT_RULE = (
    f"core may import only {', '.join(sorted(ALLOWED_MODULES))} and {CORE_PACKAGE}.*; "
    f"I/O, clocks, randomness, concurrency, Decimal, the database and HTTP "
    f"(e.g. {FORBIDDEN_EXAMPLES}) belong in the service or adapters, which pass values in"
)
_INT_RULE = "core computes in integers: micro-USD and units, `//` with explicit rounding"


def is_allowed(module: str) -> bool:
    """Whether core may import `module` (absolute, dotted)."""
    top = module.partition(".")[0]
    return top in ALLOWED_MODULES or module == CORE_PACKAGE or module.startswith(CORE_PACKAGE + ".")


def _absolute(node: ast.ImportFrom, module_name: str, is_package: bool) -> str:
    """The absolute module a (possibly relative) `from ... import` names."""
    if node.level == 0:
        return node.module or ""
    package = module_name.split(".") if is_package else module_name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)] if node.level - 1 <= len(package) else []
    return ".".join([*base, node.module] if node.module else base)


def impurities(source: str, module_name: str = f"{CORE_PACKAGE}.snippet") -> list[str]:
    """Every rule `source`, the text of core module `module_name`, breaks: `line N: why`."""
    tree = ast.parse(source)
    is_package = module_name.endswith("__init__")
    module_name = module_name.removesuffix(".__init__")
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            found += [
                f"line {line}: imports {alias.name}: {_IMPORT_RULE}"
                for alias in node.names
                if not is_allowed(alias.name)
            ]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, module_name, is_package)
            found += [
                f"line {line}: imports {module}.{alias.name}: {_IMPORT_RULE}"
                for alias in node.names
                if not (is_allowed(module) or is_allowed(f"{module}.{alias.name}"))
            ]
        elif isinstance(node, ast.Name) and node.id == "float":
            found.append(f"line {line}: uses `float`: {_INT_RULE}")
        elif isinstance(node, ast.Name) and node.id in IO_BUILTINS:
            found.append(f"line {line}: uses `{node.id}`: core does no I/O and loads no code")
        elif isinstance(node, ast.Constant) and isinstance(node.value, float | complex):
            found.append(f"line {line}: float literal {node.value!r}: {_INT_RULE}")
        elif isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.Div):
            found.append(f"line {line}: true division `/` makes a float: {_INT_RULE}")
    return found


def core_modules() -> list[Path]:
    return sorted(CORE_DIR.rglob("*.py"))


def module_name_of(path: Path) -> str:
    relative = path.relative_to(CORE_DIR).with_suffix("")
    return ".".join([CORE_PACKAGE, *relative.parts])


def test_core_is_pure() -> None:
    problems = [
        f"{path.relative_to(CORE_DIR.parent.parent)}: {problem}"
        for path in core_modules()
        for problem in impurities(path.read_text(encoding="utf-8"), module_name_of(path))
    ]

    assert not problems, "core is not pure:\n" + "\n".join(problems)


def test_the_checker_catches_an_import_a_float_and_a_true_division() -> None:
    bad = "import time\nx = 1.5\ny = a / b\n"

    problems = impurities(bad)

    assert len(problems) == 3
    assert problems[0].startswith("line 1: imports time")
    assert "time, datetime, random, os, sys, io, socket, asyncio" in problems[0]
    assert problems[1].startswith("line 2: float literal 1.5")
    assert problems[2].startswith("line 3: true division")


def test_the_checker_catches_the_subtler_cases() -> None:
    bad = (
        "from decimal import Decimal\n"  # 1: Decimal is parsed at the edge
        "from datetime import datetime\n"  # 2
        "import collections.abc, os.path\n"  # 3: os.path only
        "from .. import adapters\n"  # 4: relative, but out of core
        "from ..adapters import store\n"  # 5
        "def f(q: float) -> int:\n"  # 6: float annotation
        "    q /= 2\n"  # 7: augmented true division
        "    print(q)\n"  # 8: I/O builtin
        "    return int(1e6)\n"  # 9: 1e6 is a float
    )

    lines = sorted(int(p.split(":")[0].removeprefix("line ")) for p in impurities(bad))

    assert lines == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_the_checker_allows_what_core_needs() -> None:
    good = (
        "from __future__ import annotations\n"
        "from collections.abc import Iterator\n"
        "from typing import NamedTuple\n"
        "import heapq, bisect, itertools\n"
        "from gridmarket.core.ids import OrderId\n"
        "from . import ledger\n"
        "from .book import Book\n"
        "half = 7 // 2\n"
        "fee = (notional * 25 + 9_999) // 10_000\n"
    )

    assert impurities(good, f"{CORE_PACKAGE}.matching") == []


def test_relative_imports_resolve_from_the_right_package() -> None:
    assert impurities("from . import book", f"{CORE_PACKAGE}.__init__") == []
    assert impurities("from .. import core", f"{CORE_PACKAGE}.matching") == []
    assert impurities("from .. import service", f"{CORE_PACKAGE}.matching") != []
    assert impurities("from .. import service", f"{CORE_PACKAGE}.sub.__init__") == []
