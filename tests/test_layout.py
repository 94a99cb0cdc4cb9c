"""The project's shape: imports point one way, rooms stay small, the recipe fits one screen.

Read from the source files with `ast`, so these tests import nothing of the project.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("pipelines", "tuners", "hypermodels")

# From the bottom up: a module may import its own layer and the layers below it, never one
# above. The registries name what exists and import no TensorFlow; the configuration is
# checked against them, so they sit below it.
LAYERS = (
    ("errors", ("pipelines.errors", "tuners.errors")),
    ("registries", ("tuners.registry", "tuners.plans.schedule", "tuners.results.objectives",
                    "hypermodels.registry", "pipelines.data.sources")),
    ("config", ("pipelines.config",)),
    ("parts", ("pipelines.data", "tuners", "hypermodels")),
    ("run", ("pipelines.run",)),
    ("reports", ("pipelines.reports",)),
    ("recipe", ("pipelines.recipe",)),
    ("parallel and compare", ("pipelines.parallel", "pipelines.compare")),
    ("cli", ("pipelines.cli", "pipelines.__main__", "pipelines")),
)
MAX_LINES = 400
MAX_TOP_ENTRIES = 12
SCREEN_LINES = 60


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported(path: pathlib.Path, known: dict[str, pathlib.Path]) -> set[str]:
    """The project's modules that `path` imports, outside `if TYPE_CHECKING:` blocks."""
    tree = ast.parse(path.read_text())
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    names = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(resolve(f"{node.module}.{alias.name}") for alias in node.names)
    return {name for name in names if name is not None}


def layer(module: str) -> int:
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS)
               for prefix in prefixes if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1]


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for name, path in known.items():
        # A package's __init__ is imported with each of its modules; an import of the
        # package itself from inside it is not an edge.
        graph[name] = {target for target in imported(path, known)
                       if target != name and not name.startswith(target + ".")}
    return graph


def test_no_module_imports_a_higher_layer():
    upward = [f"{source} ({LAYERS[layer(source)][0]}) imports {target} "
              f"({LAYERS[layer(target)][0]})"
              for source, targets in import_graph().items() for target in sorted(targets)
              if layer(target) > layer(source)]
    assert upward == []


def test_the_modules_import_no_loop():
    graph = import_graph()
    loops = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            if state.get(target) == "open":
                loops.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert loops == []


def test_every_module_is_at_most_400_lines():
    long = {str(path.relative_to(ROOT)): lines
            for folder in (*PACKAGES, "tests", "benchmarks")
            for path in sorted((ROOT / folder).rglob("*.py"))
            if (lines := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_pipelines_holds_at_most_twelve_entries_at_its_top():
    entries = sorted(path.name for path in (ROOT / "pipelines").iterdir()
                     if path.name != "__pycache__")
    assert len(entries) <= MAX_TOP_ENTRIES, entries
    assert {"recipe.py", "config", "data", "run", "reports", "parallel", "compare",
            "cli"} <= set(entries)


def test_the_recipe_fits_one_screen_and_calls_every_room_in_order():
    source = (ROOT / "pipelines" / "recipe.py").read_text()
    function = next(node for node in ast.parse(source).body
                    if isinstance(node, ast.FunctionDef) and node.name == "run_search")
    body_start = function.body[1].lineno  # After the docstring.
    assert function.end_lineno - body_start + 1 <= SCREEN_LINES
    body = "\n".join(source.splitlines()[body_start - 1:function.end_lineno])
    steps = ["named_after", "prepare_data", "build_hypermodel", "check_search", "open_run",
             "build_tuner", "search_here", "best_choice", "pick(", "final_model", "write_run",
             "report(result)"]
    positions = [body.index(step) for step in steps]
    assert positions == sorted(positions)
