"""The layout's promises, checked on the import graph: figure code and the tables never load the
engine, and the shared core needs no torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "inference_zoo"
TRAINING = ("inference_zoo.engine", "inference_zoo.experiment", "inference_zoo.strategies", "inference_zoo.nets")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def load_time_imports(path: Path) -> set[str]:
    """Modules of the package that importing ``path`` imports (module level only: an import inside
    a function runs when that function does, e.g. a study planning its runs)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
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
