"""The package's layout is its architecture: imports point down the layers only, never round in
a cycle (lazy imports inside functions included), no private name crosses a package, and every
module has its test (docs/architecture.md: the map)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ktrdr"

# Top to bottom. A module may import from its own package and from any lower layer; never from
# a layer above it, nor from another package of its own layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli",),
    ("api", "host_service"),
    ("service_security",),
    ("sweep", "evaluate"),
    ("runs",),
    ("inference",),
    ("training",),
    ("store",),
    ("config",),
    ("neural", "data", "indicators", "async_infrastructure"),
    ("database",),
    ("service_client", "messages", "settings", "fileio"),
    ("errors",),
)
# ``ktrdr/__init__.py`` exports the public API by name, resolved only when used
# (importlib, never an import statement), so ``import ktrdr`` loads nothing: it is above all.
ROOT_MODULE = "ktrdr"

# Every module's test is ``test_<module>.py`` (or ``test_<package>_<module>.py``) under tests/,
# in the folder of its package; these are tested elsewhere, and say where.
COVERED_ELSEWHERE: dict[str, str] = {
    "ktrdr/api/app.py": "tests/integration/services/test_local_operations.py serves it",
    "ktrdr/api/schemas.py": "tests/integration/test_bad_inputs.py posts every refused body",
    "ktrdr/api/strategies.py": "test_host_mode_through_the_backend.py reads /api/v1/strategies",
    "ktrdr/api/trainings.py": "tests/integration/services/ (local and host operations)",
    "ktrdr/cli/evaluate.py": "tests/integration/evaluate/test_walk_forward.py runs the command",
    "ktrdr/cli/main.py": "every tests/integration/cli/ test enters through main()",
    "ktrdr/cli/operations.py": "tests/integration/cli/test_cli_services.py",
    "ktrdr/cli/options.py": "the --data-dir and --models-dir of every CLI test",
    "ktrdr/cli/output.py": "the --json and piped-table assertions of every CLI test",
    "ktrdr/cli/strategies.py": "tests/integration/test_bad_inputs.py, test_cli_data.py",
    "ktrdr/cli/sweep.py": "tests/integration/sweep/test_runner.py runs and interrupts it",
    "ktrdr/config/schema.py": "tests/unit/config/test_loader.py validates through it",
    "ktrdr/config/semantics.py": "tests/unit/config/test_loader.py (the semantic refusals)",
    "ktrdr/config/yaml_safety.py": "tests/unit/config/test_loader.py, test_bad_inputs.py",
    "ktrdr/data/sample.py": "the sample_data_dir fixture (tests/conftest.py) and test_cli_data.py",
    "ktrdr/fileio.py": "tests/unit/data/test_store.py (concurrent writers) and the store tests",
    "ktrdr/host_service/app.py": "tests/integration/services/test_host_mode_through_the_backend.py",
    "ktrdr/host_service/schemas.py": "tests/integration/test_bad_inputs.py (host bodies)",
    "ktrdr/host_service/sessions.py": "test_host_mode_through_the_backend.py (callbacks, pulls)",
    "ktrdr/indicators/compute.py": "tests/unit/training/test_indicator_calculation.py (TA-Lib)",
    "ktrdr/messages.py": "every error-message assertion (shorten and show)",
    "ktrdr/neural/classes.py": "tests/unit/training/test_label_generation.py (the class ids)",
    "ktrdr/neural/limits.py": "tests/unit/config/test_loader.py (65 hidden layers refused)",
    "ktrdr/neural/mlp.py": "tests/unit/training/test_model_creation.py",
    "ktrdr/runs/ray_tasks.py": "tests/integration/runs/test_ray_backend.py (it runs the task)",
    "ktrdr/store/layout.py": "tests/unit/store/test_model_storage.py (the files of a version)",
    "ktrdr/store/manifest.py": "tests/unit/store/test_model_storage.py (every manifest refusal)",
    "ktrdr/store/model_artifact.py": "tests/unit/store/test_model_storage.py, test_transfer.py",
    "ktrdr/sweep/spec.py": "tests/unit/sweep/test_plan.py loads every sweep file through it",
    "ktrdr/training/artifact_building.py": "tests/unit/training/test_executor.py (step 10)",
    "ktrdr/training/feature_importance.py": "tests/unit/training/test_evaluation.py",
    "ktrdr/training/feature_pipeline.py": "test_step_contracts.py, test_trained_model.py",
    "ktrdr/training/preview.py": "test_cli_data.py and test_bad_inputs.py (validate --preview)",
    "ktrdr/training/progress_integration.py": "tests/unit/async_infrastructure/test_progress.py",
}


@dataclass(frozen=True)
class Import:
    importer: str  # module name
    imported: str  # module name
    names: tuple[str, ...]
    line: int
    lazy: bool


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}


def imports(package: Path = PACKAGE) -> Iterator[Import]:
    """Every import of a ktrdr module inside ``package``, at module level or inside a function."""
    known = modules(package)
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        lazy_lines = {
            node.lineno
            for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(function)
            if isinstance(node, ast.Import | ast.ImportFrom)
        }
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [(alias.name, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = name.split(".")
                    parent = parent[: len(parent) - node.level + (1 if is_package else 0)]
                    base = ".".join([*parent, *([base] if base else [])])
                targets = []
                for alias in node.names:
                    # ``from ktrdr import settings`` imports the module ktrdr.settings.
                    sub = f"{base}.{alias.name}"
                    if sub in known:
                        targets.append((sub, ()))
                    else:
                        targets.append((base, (alias.name,)))
            else:
                continue
            for target, names in targets:
                if target != "ktrdr" and not target.startswith("ktrdr."):
                    continue
                while target not in known and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target != name:
                    yield Import(name, target, names, node.lineno, node.lineno in lazy_lines)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT_MODULE


def layer_of(package: str) -> int:
    for index, layer in enumerate(LAYERS):
        if package in layer:
            return index
    if package == ROOT_MODULE:
        return -1
    raise AssertionError(f"ktrdr/{package} is in no layer: add it to LAYERS in {__file__}")


def upward_imports(package: Path = PACKAGE) -> list[str]:
    problems = []
    for found in imports(package):
        here, there = package_of(found.importer), package_of(found.imported)
        if here == there:
            continue
        if layer_of(there) <= layer_of(here):
            kind = "lazy import" if found.lazy else "import"
            problems.append(
                f"{found.importer}:{found.line} ({here}) {kind}s {found.imported} ({there}), "
                f"which is {'above' if layer_of(there) < layer_of(here) else 'beside'} it"
            )
    return problems


def cycles(package: Path = PACKAGE) -> list[list[str]]:
    """Module-level cycles, lazy imports counted as edges too."""
    graph: dict[str, set[str]] = {}
    for found in imports(package):
        graph.setdefault(found.importer, set()).add(found.imported)
    found_cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            # A package's __init__ importing its own modules is how a package exports.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                found_cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found_cycles


def private_names_across_packages(package: Path = PACKAGE) -> list[str]:
    return [
        f"{found.importer}:{found.line} imports {name} from {found.imported}"
        for found in imports(package)
        for name in found.names
        if name.startswith("_") and package_of(found.importer) != package_of(found.imported)
    ]


def test_every_import_points_down_the_layers() -> None:
    assert upward_imports() == []


def test_no_module_imports_itself_round_a_cycle() -> None:
    assert cycles() == []


def test_no_private_name_is_imported_from_another_package() -> None:
    assert private_names_across_packages() == []


def test_the_checks_fail_on_an_upward_import_a_cycle_and_a_private_name(tmp_path: Path) -> None:
    # A package in the same shape, with one of each fault: the checks must see them.
    fake = tmp_path / "ktrdr"
    for folder in ("training", "runs", "store"):
        (fake / folder).mkdir(parents=True)
        (fake / folder / "__init__.py").write_text("")
    (fake / "__init__.py").write_text("")
    (fake / "training" / "steps.py").write_text(
        "def later():\n    from ktrdr.runs.pool import RunPool\n"
    )
    (fake / "runs" / "pool.py").write_text("from ktrdr.training.steps import later\nRunPool = 1\n")
    (fake / "store" / "a.py").write_text("from ktrdr.store.b import x\n")
    (fake / "store" / "b.py").write_text("from ktrdr.store.a import y\nfrom ktrdr.runs import _p\n")
    upward = upward_imports(fake)
    assert any("ktrdr.training.steps" in p and "lazy import" in p for p in upward), upward
    assert any(p.startswith("ktrdr.store.b") for p in upward), upward
    found = cycles(fake)
    assert ["ktrdr.store.a", "ktrdr.store.b", "ktrdr.store.a"] in found, found
    assert any("ktrdr.runs.pool" in c and "ktrdr.training.steps" in c for c in found), found
    assert private_names_across_packages(fake) == ["ktrdr.store.b:2 imports _p from ktrdr.runs"]


def _test_file_for(path: Path) -> tuple[str, str]:
    relative = path.relative_to(PACKAGE)
    return f"test_{relative.stem}.py", relative.parent.as_posix()


def untested_modules() -> list[str]:
    tests = [p.relative_to(ROOT / "tests") for p in (ROOT / "tests").rglob("test_*.py")]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(ROOT).as_posix()
        if relative in COVERED_ELSEWHERE:
            continue
        name, folder = _test_file_for(path)
        # tests/{unit,integration}/{package}/test_{module}.py; top-level modules: any kind.
        package = folder.rsplit("/", 1)[-1]
        names = {name, name.replace("test_", f"test_{package}_", 1)}
        if not any(
            test.name in names and (folder == "." or test.parent.as_posix().endswith(folder))
            for test in tests
        ):
            missing.append(relative)
    return missing


def test_every_module_has_its_own_test_file() -> None:
    assert untested_modules() == []


def test_modules_said_to_be_covered_elsewhere_exist() -> None:
    for relative in COVERED_ELSEWHERE:
        assert (ROOT / relative).is_file(), f"{relative} is listed but does not exist"
