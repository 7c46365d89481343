"""The house's layering: every import (module level or inside a function) runs from a package to one in its
own layer or below, and the packages' import graph has no circle."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "keras_arcface"

#: Bottom to top; the README's "Architecture" section draws the same picture.
LAYERS = [
    {"errors", "validation", "files", "formats", "dtypes", "registry", "compilation"},  # plain Python, no Keras
    {"runtime", "data"},  # Keras-free embedders and input contract; images and folders of faces
    {"alignment", "heads", "losses", "backbones"},  # detector and warp; the Keras layers and models
    {"zoo"},  # model cards, downloads, zoo models by name
    {"embedding"},  # the one loader: the embedding model / embedder of anything
    {"training", "export", "evaluation", "convert"},  # siblings that use the loader
    {"verification"},  # photos -> verdict
    {"gallery", "clustering"},  # 1:N identification over verification; unlabelled faces grouped by person
    {"service"},  # verification, identification and a gallery over HTTP
    {"demo", "heads_demo", "cli"},  # entry points
]
LAYER_OF = {unit: index for index, units in enumerate(LAYERS) for unit in units}


def _unit(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path):
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def module_imports():
    """(importing module, imported module, file, line) for every keras_arcface import, module level or inside
    a function; ``from package import name`` counts as importing ``package.name`` when that is a module."""
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in MODULES else node.module
                         for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("keras_arcface") and name != module:
                    yield module, name, path.relative_to(PACKAGE.parent), node.lineno


def import_edges():
    """(importing unit, imported unit, file, line) for every keras_arcface import between units."""
    for module, name, file, line in module_imports():
        if name != "keras_arcface" and _unit(name) != _unit(module):
            yield _unit(module), _unit(name), file, line


def find_circle(edges):
    """The first import circle of the graph ``edges`` ((source, target) pairs) as a list of nodes, or None."""
    graph = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return None
        if state.get(node) == "open":
            return path[path.index(node):] + [node]
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            circle = visit(target, path + [node])
            if circle:
                return circle
        state[node] = "done"
        return None

    return next((circle for node in sorted(graph) if (circle := visit(node, []))), None)


def test_every_unit_has_a_layer():
    units = {_unit(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)) for p in PACKAGE.glob("*")
             if p.suffix == ".py" or (p / "__init__.py").is_file()} - {"__init__"}
    assert units == set(LAYER_OF), f"place these in LAYERS: {sorted(units - set(LAYER_OF))}; gone: " \
                                   f"{sorted(set(LAYER_OF) - units)}"


def test_no_import_runs_up_a_layer():
    upward = [f"{file}:{line}: {source} (layer {LAYER_OF[source]}) imports {target} (layer {LAYER_OF[target]})"
              for source, target, file, line in import_edges()
              if source != "__init__" and LAYER_OF[target] > LAYER_OF[source]]
    assert not upward, "\n".join(upward)


def test_the_package_graph_has_no_circle():
    circle = find_circle((source, target) for source, target, *_ in import_edges() if source != "__init__")
    assert not circle, "import circle between packages: " + " -> ".join(circle)


def test_the_module_graph_has_no_circle():
    """Within a package too (a lazy import inside a function included): a circle means two modules that are
    one, or a piece that belongs below both."""
    circle = find_circle((module, target) for module, target, *_ in module_imports())
    assert not circle, "import circle between modules: " + " -> ".join(circle)


def test_the_circle_finder_finds_a_circle():
    assert find_circle([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]) == ["a", "b", "c", "a"]
    assert find_circle([("a", "b"), ("b", "c"), ("a", "c")]) is None
