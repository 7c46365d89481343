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
    {"gallery"},  # 1:N identification over verification
    {"demo", "heads_demo", "cli"},  # entry points
]
LAYER_OF = {unit: index for index, units in enumerate(LAYERS) for unit in units}


def _unit(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_edges():
    """(importing unit, imported unit, file, line) for every keras_arcface import between units."""
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.startswith("keras_arcface.") and _unit(name) != _unit(module):
                    yield _unit(module), _unit(name), path.relative_to(PACKAGE.parent), node.lineno


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
    graph = {}
    for source, target, *_ in import_edges():
        if source != "__init__":
            graph.setdefault(source, set()).add(target)
    state = {}

    def visit(unit, path):
        if state.get(unit) == "done":
            return
        assert state.get(unit) != "open", "import circle: " + " -> ".join(path + [unit])
        state[unit] = "open"
        for target in sorted(graph.get(unit, ())):
            visit(target, path + [unit])
        state[unit] = "done"

    for unit in sorted(graph):
        visit(unit, [])
