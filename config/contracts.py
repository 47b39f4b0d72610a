"""Every module's event contracts and who consumes them, read from the code without running it.

The map (config/module_map.py), the AsyncAPI document (config/asyncapi.py) and the compatibility
check (config/compatibility.py) all start here. A process serving one module has only that
module's handlers registered (the others' models are not installed, so their handlers.py cannot
be imported), yet its map must still name every consumer: so the subscriptions are read from the
source of each ``<module>/handlers.py`` (its ``@handles(...)`` decorators and the contract names it
imports). tests/config/test_contracts.py checks that this reading equals the registry of a process
that imported every handler.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path

from config import topology
from messaging.events import EVENT_TYPES, Event


@dataclass(frozen=True, order=True)
class Subscription:
    """One handler of one event version, as its module's handlers.py declares it."""

    event_type: str
    event_version: int
    module: str
    handler: str  # dotted name, the same as messaging's registry gives it (its inbox key)


def contracts() -> list[type[Event]]:
    """Every event class the modules' contracts.py declare, ordered by (type, version)."""
    for module in topology.MODULES:
        import_module(f"{module}.contracts")
    # Only what a module's contracts declare: tests may register probe events of their own.
    declared = [cls for cls in EVENT_TYPES.values() if cls.__module__ == f"{cls.producer()}.contracts"]
    return sorted(declared, key=lambda cls: (cls.event_type, cls.event_version))


def _imported_contracts(tree: ast.Module) -> dict[str, type[Event] | object]:
    """Names bound in a handlers.py to contract classes (``from x.contracts import A``) or modules."""
    names: dict[str, type[Event] | object] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.endswith(".contracts"):
                source = import_module(node.module)
                for alias in node.names:
                    names[alias.asname or alias.name] = getattr(source, alias.name)
            else:
                for alias in node.names:
                    if alias.name == "contracts":
                        names[alias.asname or alias.name] = import_module(f"{node.module}.contracts")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.endswith(".contracts") and alias.asname:
                    names[alias.asname] = import_module(alias.name)
    return names


def _resolve(node: ast.expr, names: dict) -> type[Event]:
    if isinstance(node, ast.Name) and node.id in names:
        value = names[node.id]
    elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
        value = getattr(names[node.value.id], node.attr)
    else:
        raise ValueError(f"@handles argument {ast.unparse(node)} is not an imported contract class")
    if not (isinstance(value, type) and issubclass(value, Event) and value.event_type):
        raise ValueError(f"@handles argument {ast.unparse(node)} is not an event contract")
    return value


def _is_handles(decorator: ast.expr) -> bool:
    func = decorator.func if isinstance(decorator, ast.Call) else None
    return (isinstance(func, ast.Name) and func.id == "handles") or (
        isinstance(func, ast.Attribute) and func.attr == "handles"
    )


def module_subscriptions(module: str) -> list[Subscription]:
    """The handlers ``module``'s handlers.py declares, read from its source."""
    spec = find_spec(f"{module}.handlers")
    if spec is None or spec.origin is None:
        return []
    tree = ast.parse(Path(spec.origin).read_text(), filename=spec.origin)
    names = _imported_contracts(tree)
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if not _is_handles(decorator):
                continue
            classes = [_resolve(arg, names) for arg in decorator.args]
            for cls in classes:
                name = f"{module}.handlers.{node.name}"
                if len(classes) > 1:  # the same naming as messaging.registry.handles
                    name = f"{name}[{cls.event_type}.v{cls.event_version}]"
                found.append(Subscription(cls.event_type, cls.event_version, module, name))
    return sorted(found)


def subscriptions() -> list[Subscription]:
    """Every module's handlers, whichever modules this process serves."""
    return sorted(s for module in topology.MODULES for s in module_subscriptions(module))


def consumers_of(event_class: type[Event], subs: list[Subscription] | None = None) -> list[str]:
    """The modules that handle this event version."""
    subs = subscriptions() if subs is None else subs
    key = (event_class.event_type, event_class.event_version)
    return sorted({s.module for s in subs if (s.event_type, s.event_version) == key})
