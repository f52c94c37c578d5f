"""castbench's modules form no import cycle (lazy imports inside functions count too), and each
of them imports in a fresh interpreter."""

import subprocess
import sys

import grimp


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]  # iterative, so deep chains need no recursion
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_castbench_has_no_import_cycles():
    cycles = import_cycles(grimp.build_graph("castbench"))
    assert not cycles, "import cycles among: " + " | ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for importer, imported in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")):
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph) == [["p.a", "p.b", "p.c"]]


IMPORT_ALL = """
import importlib, pkgutil, castbench
names = [m.name for m in pkgutil.walk_packages(castbench.__path__, "castbench.")
         if not m.name.endswith(".__main__")]  # running the CLI is not importing it
for name in names:
    importlib.import_module(name)
print(len(names))
"""


def test_every_module_imports_in_a_fresh_interpreter():
    # one interpreter for all, in pkgutil's order: cheap, and a module that imports only after
    # another has set something up still fails when it comes first
    done = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) > 40
