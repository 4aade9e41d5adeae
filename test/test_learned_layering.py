"""Layering inside learned_nodes (#18), read from the source with ast (nothing is imported):

- no import cycle among learned_nodes' modules (absolute and relative imports, at module level or
  inside functions);
- no module imports a `_private` name from another subpackage of learned_nodes;
- daft, llm, loraprune and server do not import learned_nodes.cocoop (shared pieces live in
  learned_nodes.model_files);
- `package:` specs are parsed in one place, learned_nodes/model_files/paths.py.
"""
from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "learned_nodes"
SOURCE_DIRS = ("coin_lio", "learned_nodes", "scripts", "suite_apps", "suite_tools")   # not test/
NO_COCOOP = ("daft", "llm", "loraprune", "server")
COCOOP_ALLOWED: dict[tuple[str, str], str] = {}   # (importer, imported) -> why it is unavoidable
PACKAGE_SPEC_HOME = "learned_nodes/model_files/paths.py"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def learned_modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py")) if "models" not in p.parts}


@functools.lru_cache(maxsize=None)
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[:len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def imports(module: str, path: Path, modules: set[str], attributes: bool = False) -> list[tuple[str, str, int]]:
    """(imported module, imported name or '', line) of every import in the file, functions included.

    `from a.b import c` is an import of the module a.b.c when that module exists, else of the name
    c of a.b; `import a.b.c` imports a.b.c. With `attributes`, reads of an imported module's
    attributes (`enc._x`) count as imports of those names."""
    out: list[tuple[str, str, int]] = []
    aliases: dict[str, str] = {}
    tree = parse(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append((a.name, "", node.lineno))
                if a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node)
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in modules:
                    out.append((sub, "", node.lineno))
                    aliases[a.asname or a.name] = sub
                else:
                    out.append((base, a.name, node.lineno))
    for node in ast.walk(tree) if attributes else ():
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            out.append((aliases[node.value.id], node.attr, node.lineno))
    return out


def owner(target: str, modules: set[str]) -> str | None:
    """The learned_nodes module `target` falls in (longest existing prefix), else None."""
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return None


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """{module: {imported learned_nodes module: first line}}."""
    mods = learned_modules(root)
    graph: dict[str, dict[str, int]] = {m: {} for m in mods}
    for m, path in mods.items():
        for target, _, line in imports(m, path, set(mods)):
            dst = owner(target, set(mods))
            if dst is not None and dst != PACKAGE and dst != m:
                graph[m].setdefault(dst, line)
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (a path a -> ... -> a) per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    found = []
    for comp in comps:                               # shortest way back to the component's first module
        start = min(comp)
        prev: dict[str, str] = {}
        frontier = [start]
        while frontier and start not in prev:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w in comp and w not in prev:
                        prev[w] = v
                        nxt.append(w)
            frontier = nxt
        path = [start]
        while True:
            path.append(prev[path[-1]])
            if path[-1] == start:
                break
        found.append(path[::-1])
    return found


def describe(path: list[str], graph: dict[str, dict[str, int]]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(path, path[1:])) + f" -> {path[-1]}"


def group(module: str) -> str:
    """learned_nodes.daft.x -> learned_nodes.daft; a top-level module is its own group."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == PACKAGE and len(parts) > 2 else module


def source_files(root: Path = ROOT) -> list[Path]:
    return [p for d in SOURCE_DIRS for p in sorted((root / d).rglob("*.py"))]


def private_imports(root: Path = ROOT) -> list[str]:
    mods = learned_modules(root)
    bad = []
    for path in source_files(root):
        m = module_name(path, root)
        for target, name, line in imports(m, path, set(mods), attributes=True):
            dst = owner(target, set(mods))
            private = name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
            if dst is not None and private and group(dst) != group(m):
                bad.append(f"{path.relative_to(root)}:{line}: {name} from {dst}")
    return bad


def cocoop_imports(root: Path = ROOT) -> list[str]:
    mods = learned_modules(root)
    bad = []
    for m, path in mods.items():
        if group(m).split(".")[-1] not in NO_COCOOP:
            continue
        for target, _, line in imports(m, path, set(mods)):
            dst = owner(target, set(mods)) or target
            if group(dst) == f"{PACKAGE}.cocoop" and (m, dst) not in COCOOP_ALLOWED:
                bad.append(f"{path.relative_to(root)}:{line}: imports {dst}")
    return sorted(set(bad))


SPEC = re.compile(r"package:(//)?[A-Za-z_][\w.-]*(/\S*)?")   # a whole spec: a value, not parsing


def docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def package_scheme_parsers(root: Path = ROOT) -> list[str]:
    """Code that takes `package:` specs apart: a string starting with "package:" (or "^package:")
    that is not a whole spec (the scheme prefix for startswith / partition / len, a regex, the head
    of an f-string), or a comparison with "package" (a URL scheme), outside PACKAGE_SPEC_HOME.
    Whole specs ("package://learned_nodes/models/x", defaults, configs) and docstrings are values."""
    bad = []
    for path in source_files(root):
        rel = path.relative_to(root).as_posix()
        if rel == PACKAGE_SPEC_HOME:
            continue
        tree = parse(path)
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                s = node.value.lstrip("^")
                if s.startswith("package:") and not SPEC.fullmatch(s):
                    bad.append(f"{rel}:{node.lineno}: {node.value!r}")
            elif isinstance(node, ast.Compare):
                if any(isinstance(c, ast.Constant) and c.value == "package" for c in [node.left, *node.comparators]):
                    bad.append(f"{rel}:{node.lineno}: compares with 'package'")
    return bad


def test_no_import_cycle_in_learned_nodes():
    graph = import_graph()
    assert len(graph) > 50 and all(graph[m] for m in ("learned_nodes.daft.backbones", "learned_nodes.llm.model_io"))
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(c, graph) for c in found)


def test_no_private_name_imported_across_learned_subpackages():
    bad = private_imports()
    assert not bad, "private names imported from another learned_nodes subpackage:\n" + "\n".join(bad)


def test_daft_llm_loraprune_server_do_not_import_cocoop():
    bad = cocoop_imports()
    assert not bad, ("learned_nodes.cocoop imported outside it (shared code belongs in "
                     "learned_nodes.model_files):\n" + "\n".join(bad))


def test_package_specs_are_parsed_in_one_place():
    assert (ROOT / PACKAGE_SPEC_HOME).is_file()
    bad = package_scheme_parsers()
    assert not bad, f"package: specs parsed outside {PACKAGE_SPEC_HOME}:\n" + "\n".join(bad)


def test_the_checks_see_what_they_look_for(tmp_path):
    """Each check on a small tree that breaks its rule (the walk must not be blind)."""
    pkg = tmp_path / PACKAGE
    for sub in ("cocoop", "daft"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "cocoop" / "enc.py").write_text("def _helper():\n    pass\n")
    (pkg / "daft" / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "daft" / "b.py").write_text(
        "import learned_nodes.daft.a\nfrom learned_nodes.cocoop.enc import _helper\n"
        "from learned_nodes.cocoop import enc\nx = enc._helper\n"
        "def resolve(s):\n    return s.startswith('package://') or s == f'package:{s}'\n")
    found = cycles(import_graph(tmp_path))
    assert found == [["learned_nodes.daft.a", "learned_nodes.daft.b", "learned_nodes.daft.a"]]
    assert len(private_imports(tmp_path)) == 2
    assert len(cocoop_imports(tmp_path)) == 2
    assert len(package_scheme_parsers(tmp_path)) == 2
