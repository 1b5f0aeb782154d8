"""The layout's promises, checked on the import graph: figure code and the tables never load the
engine, and the shared core needs no torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "inference_zoo"
TRAINING = ("inference_zoo.engine", "inference_zoo.evaluation", "inference_zoo.experiment", "inference_zoo.strategies",
            "inference_zoo.nets")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def load_time_imports(path: Path, everywhere: bool = False) -> set[str]:
    """Modules of the package that importing ``path`` imports (module level only: an import inside
    a function runs when that function does); ``everywhere``: the imports inside functions too."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in (ast.walk(tree) if everywhere else tree.body):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)  # "from . import x" may name a module
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in modules}


def closure(start: str) -> set[str]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        # importing a.b.c runs the __init__ of a and a.b first
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo += [p for p in parents if p in files]
        todo += sorted(load_time_imports(files[name]))
    return seen


def test_figure_code_and_tables_never_import_the_engine():
    for folder in ("viz", "studies", "core"):
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            reached = closure(module_name(path))
            training = sorted(m for m in reached if m.startswith(TRAINING))
            assert not training, f"{module_name(path)} imports {training}"


def test_walker_sees_a_known_dependency():
    assert "inference_zoo.engine.train" in closure("inference_zoo.experiment.runs")
    assert "inference_zoo.core.results" in closure("inference_zoo.viz.curves")


#: the package's floors, lowest first: a module imports only from its own folder or a lower floor
#: (the package root, imported before any of its modules, is not a floor)
FLOORS = [("core",), ("data", "metrics", "nets"), ("strategies", "viz"), ("engine", "studies"), ("evaluation",),
          ("experiment",), ("cli",), ("__main__",)]


def floor(module: str) -> int:
    part = module.split(".")[1]
    return next(i for i, names in enumerate(FLOORS) if part in names)


def import_graph() -> dict[str, set[str]]:
    """Every module's imports of the package's modules, those inside functions included."""
    return {module_name(p): {m for m in load_time_imports(p, everywhere=True) if m not in ("inference_zoo", module_name(p))}
            for p in PACKAGE.rglob("*.py") if module_name(p) != "inference_zoo"}


def test_the_import_graph_has_no_cycle_counting_imports_inside_functions():
    graph = import_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_nothing_below_reaches_up_counting_imports_inside_functions():
    upward = sorted(f"{source} -> {target}" for source, targets in import_graph().items() for target in targets
                    if source.split(".")[1] != target.split(".")[1] and floor(target) >= floor(source))
    assert not upward, upward


def test_the_graph_walk_sees_imports_inside_functions():
    graph = import_graph()
    assert "inference_zoo.experiment.study" in graph["inference_zoo.cli"]  # imported inside the study command
    assert "inference_zoo.engine.train" in graph["inference_zoo.experiment.export"]  # inside load_run


def test_configs_tables_and_files_load_without_torch():
    code = ("import sys; import inference_zoo.core.config, inference_zoo.core.results, inference_zoo.core.fileio, "
            "inference_zoo.core.registry, inference_zoo.core.errors; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_package_root_holds_only_the_entry_points():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py", "cli.py"]


def test_every_relative_link_in_the_readme_and_docs_resolves():
    import re

    root = PACKAGE.parent
    pages = [root / "README.md", root / "figures" / "README.md", *sorted((root / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if not target.startswith(("http://", "https://")) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(root)}: {target}")
    assert not broken, broken
    assert len((root / "README.md").read_text().splitlines()) <= 200
