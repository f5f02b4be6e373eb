"""The plugin's layers, read from the code's imports (no module is imported): the composition root on top, then the
test's lifecycle, then the features and foundations, with no two of grpc_user.locust's packages importing each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "grpc_user" / "locust"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every grpc_user module a file imports, at any depth of its code (``from a import b`` counts a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in names if name.split(".")[0] == "grpc_user"}


def part_of_plugin(name: str) -> str:
    """The package (or top-level module) of grpc_user.locust that holds a module: ``grpc_user.locust.audit`` for
    ``grpc_user.locust.audit.delivery``; the root itself is ``grpc_user.locust``."""
    parts = name.split(".")
    return ".".join(parts[:3])


def plugin_files() -> list[Path]:
    return sorted(PLUGIN.rglob("*.py"))


def test_no_two_parts_of_the_plugin_import_each_other():
    arrows: dict[str, set[str]] = {}
    for path in plugin_files():
        source = part_of_plugin(module_name(path))
        targets = {part_of_plugin(name) for name in imported_modules(path) if name.startswith("grpc_user.locust.")}
        arrows.setdefault(source, set()).update(targets - {source})

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for step in arrows.get(start, ()):
            if step == goal or (step not in seen and reaches(step, goal, seen | {step})):
                return True
        return False

    loops = sorted(f"{a} -> {b}" for a, targets in arrows.items() for b in targets if reaches(b, a, {b}))
    assert not loops, loops


def test_only_the_root_imports_the_lifecycle_and_nothing_imports_the_root():
    for path in plugin_files():
        name = module_name(path)
        imported = imported_modules(path)
        if name != "grpc_user.locust" and part_of_plugin(name) != "grpc_user.locust.lifecycle":
            assert not {i for i in imported if i.startswith("grpc_user.locust.lifecycle")}, name
        assert "grpc_user.locust" not in {part_of_plugin(i) for i in imported if i.count(".") < 3}, name


def test_the_foundations_import_no_feature_that_reads_the_run():
    readers = ("audit", "capacity", "web", "user", "workloads", "actions", "preflight", "lifecycle")
    for folder in ("run", "settings"):
        for path in (PLUGIN / folder).glob("*.py"):
            imported = {part_of_plugin(name) for name in imported_modules(path)}
            assert not {f"grpc_user.locust.{reader}" for reader in readers} & imported, path.name
