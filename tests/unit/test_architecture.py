"""The core's shape, checked: what it may import, no import cycles, every connector fits its port."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from connectors.registry import connector_class, connector_kinds
from hub.api.callbacks import HANDLERS as CALLBACK_HANDLERS
from hub.config import load_config
from hub.ports import CALLBACKS, PORTS
from sandbox.credentials import sandbox_env

CORE = Path(__file__).resolve().parents[2] / "hub"
# Transports, HTTP/SOAP clients and the code around the core: the core reaches them through ports.
FORBIDDEN = {"nameko", "kombu", "requests", "zeep", "workers", "sandbox", "connectors"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(every module imported anywhere in the file, the ones imported when the module loads)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    every: set[str] = set()
    at_load: set[str] = set()

    def targets(node: ast.Import | ast.ImportFrom) -> set[str]:
        if isinstance(node, ast.Import):
            return {a.name for a in node.names}
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        return {base} | {f"{base}.{a.name}" for a in node.names}

    def walk(nodes: list[ast.stmt], loading: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found = targets(node)
                every.update(found)
                if loading:
                    at_load.update(found)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                walk(node.orelse, loading)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                walk(node.body, False)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    walk([n for n in getattr(node, field, []) if isinstance(n, ast.AST)], loading)

    walk(ast.parse(path.read_text()).body, True)
    return every, at_load


MODULES = {_module_name(p): p for p in CORE.rglob("*.py") if "versions" not in p.parts}


def test_the_core_imports_no_transport_client_or_outer_package():
    offences = sorted(f"{name} imports {target}" for name, path in MODULES.items()
                      for target in _imports(path)[0] if target.split(".")[0] in FORBIDDEN)
    assert offences == []


def test_no_import_cycles_among_core_modules():
    graph = {name: {t for t in _imports(path)[1] if t in MODULES and t != name} for name, path in MODULES.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}              # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_graph_walk_sees_a_forbidden_import(tmp_path):
    # the check above must be able to fail: a module importing requests inside a function is caught
    bad = CORE / "_probe_forbidden.py"
    bad.write_text("def f():\n    import requests\n    return requests\n")
    try:
        assert "requests" in _imports(bad)[0]
    finally:
        bad.unlink()


SYSTEMS = load_config(env=sandbox_env()).systems    # config.yaml as shipped, with the sandbox's credentials


@pytest.mark.parametrize("name", sorted(SYSTEMS))
def test_each_configured_connector_satisfies_its_port(name):
    system = SYSTEMS[name]
    cls = connector_class(system.kind)
    port = PORTS[cls.role]
    missing = [m for m in dir(port) if not m.startswith("_") and callable(getattr(port, m))
               and not callable(getattr(cls, m, None))]
    assert missing == [], f"{cls.__name__} lacks {missing} of {port.__name__}"


def test_every_connector_kind_plays_a_role():
    roles = {kind: connector_class(kind).role for kind in connector_kinds()}
    assert set(connector_kinds()) >= {system.kind for system in SYSTEMS.values()}
    assert {kind: role for kind, role in roles.items() if role not in PORTS} == {}


def test_every_declared_callback_has_its_handler():
    declared = {kind: getattr(connector_class(kind), "callback", None) for kind in connector_kinds()}
    assert set(CALLBACK_HANDLERS) == set(CALLBACKS)
    assert {kind: cb for kind, cb in declared.items() if cb is not None and cb not in CALLBACKS} == {}
    assert {cb for cb in declared.values() if cb} == set(CALLBACKS)


def _strings(path: Path) -> set[str]:
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_the_core_never_names_a_connector_kind():
    # A kind that is also a role's name (`local_courier`) may be written only where the roles are: hub/ports.py.
    kinds = set(connector_kinds())
    named = {name: sorted(_strings(path) & (kinds if name != "hub.ports" else kinds - set(PORTS)))
             for name, path in MODULES.items()}
    assert {name: found for name, found in named.items() if found} == {}


def test_the_kind_check_sees_a_kind(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('HANDLERS = {"wechat_pay": None}\n')
    assert _strings(probe) & set(connector_kinds()) == {"wechat_pay"}


# -- layers and cycles over the whole tree, function-level imports included ------------------------

ROOT = CORE.parent
PACKAGES = ("hub", "connectors", "mappings", "workers", "sandbox", "bench")


def _tree_modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            if "versions" not in p.parts:
                parts = list(p.relative_to(ROOT).with_suffix("").parts)
                out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


TREE = _tree_modules()


def _edges(name: str, path: Path) -> set[str]:
    """Modules of the tree `name` imports anywhere (functions too; TYPE_CHECKING blocks never run).
    `from pkg import sub` is an edge to pkg.sub alone when sub is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            node.body = []
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names} & TREE.keys()
            out |= subs if subs and len(subs) == len(node.names) else {base} | subs
    return {t for t in out if t in TREE and t != name}


GRAPH = {name: _edges(name, path) for name, path in TREE.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "hub" and len(parts) > 1 else parts[0]


# (importer's layer, a layer it must not import): inside hub, domain <- services <- flows/api, storage below
# services; outside, the core imports no outer package and mappings no connector.
WRONG_WAY = [("hub.domain", lay) for lay in ("hub.config", "hub.services", "hub.flows", "hub.api", "hub.storage",
                                              "hub.bootstrap", "hub.ports", "hub.events", "hub.consumers")]
WRONG_WAY += [("hub.services", "hub.flows"), ("hub.services", "hub.api"), ("hub.flows", "hub.api"),
              ("hub.api", "hub.flows.channel_stock")]
WRONG_WAY += [(f"hub.{low}", high) for low in ("storage", "config", "ports", "events", "bootstrap")
              for high in ("hub.services", "hub.flows", "hub.api")]
WRONG_WAY += [(lay, outer) for lay in ("hub",) for outer in ("connectors", "workers", "sandbox", "mappings", "bench")]
WRONG_WAY += [("mappings", "connectors"), ("sandbox", "workers"), ("connectors", "workers")]

# Known offences: any other fails, and so does one of these once it is gone (then strike it here). None left:
# `hub demo` gets the workers from its entrypoint (workers/cli.py hands sandbox.demo the services to run).
KNOWN_WRONG_WAY: set[str] = set()


def _offences() -> set[str]:
    out = set()
    for name, targets in GRAPH.items():
        for target in targets:
            for low, high in WRONG_WAY:
                inside = name == low or name.startswith(low + ".")
                if inside and (target == high or target.startswith(high + ".")) and _layer(target) != _layer(name):
                    out.add(f"{name} imports {target}")
    return out


def test_no_import_runs_the_wrong_way():
    assert _offences() == KNOWN_WRONG_WAY


def _cycles() -> list[list[str]]:
    """Strongly connected groups of two or more modules (Tarjan's), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


KNOWN_CYCLES: list[list[str]] = []     # part B took the flows package's (its modules no longer import it)


def test_no_import_cycles_counting_function_level_imports():
    assert sorted(_cycles()) == KNOWN_CYCLES


def test_only_the_app_imports_the_route_modules():
    routes = {name for name, path in TREE.items() if name.startswith("hub.api.") and name != "hub.api.app"
              and "\nROUTES" in path.read_text()}
    importers = {name for name, targets in GRAPH.items() for t in targets if t in routes}
    assert routes and importers == {"hub.api.app"}


def test_the_cycle_walk_sees_a_function_level_cycle():
    # the checks above must be able to fail: a cycle closed only inside a function is found
    GRAPH["hub.domain.stock"].add("hub.domain.catalogue")
    GRAPH["hub.domain.catalogue"].add("hub.domain.stock")
    try:
        assert ["hub.domain.catalogue", "hub.domain.stock"] in _cycles()
    finally:
        GRAPH["hub.domain.stock"].discard("hub.domain.catalogue")
        GRAPH["hub.domain.catalogue"].discard("hub.domain.stock")


def test_the_layer_check_sees_a_new_offence():
    # the list above is compared whole: an import running the wrong way that is not listed makes it differ
    GRAPH["hub.domain.stock"].add("hub.storage.tables")
    try:
        assert "hub.domain.stock imports hub.storage.tables" in _offences() - KNOWN_WRONG_WAY
    finally:
        GRAPH["hub.domain.stock"].discard("hub.storage.tables")
