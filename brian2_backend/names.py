"""Brian2 names -> IR names: objects, dtypes, the root group of a subgroup, and the
variables of a group that read another group's state (linked variables)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gpuspike.bridge.errors import UnsupportedFeature


def ir_name(name: str) -> str:
    """A Brian2 object name as an IR name: an identifier without ``__``."""
    out = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    while "__" in out:
        out = out.replace("__", "_")
    if not out or not (out[0].isalpha() or out[0] == "_"):
        out = "g" + out
    return out.strip("_") or "g"


def ir_dtype(dtype: Any) -> str:
    """IR dtype of a Brian2 variable dtype; floats follow the network precision."""
    d = np.dtype(dtype)
    if d.kind == "f":
        return "float"
    if d.kind == "b":
        return "bool"
    if d == np.int64:
        return "int64"
    if d == np.uint32:
        return "uint32"
    if d.kind in "iu":
        return "int32" if d.itemsize <= 4 else "int64"
    raise UnsupportedFeature(f"variables of dtype {d}")


def link_names(group: Any) -> dict[str, str]:
    """Brian2 names of the variables of ``group`` that read another group's state ->
    their IR names: its linked variables, and for a variable linked to another group's
    subexpression (which Brian2 rewrites as a subexpression of ``group``) the references
    to the state variables that subexpression reads (Brian2 names them
    ``_<linked>_<group>_<variable>``)."""
    from brian2.core.variables import ArrayVariable, Subexpression

    variables = getattr(group, "variables", {})
    out: dict[str, str] = {}

    def references(sub: Any, seen: set[str]) -> None:
        for ident in sorted(sub.identifiers):
            var = variables.get(ident)
            if ident in seen or var is None:
                continue
            seen.add(ident)
            if isinstance(var, Subexpression) and var.owner is not None and (
                    var.owner.name == group.name):
                references(var, seen)
            elif (isinstance(var, ArrayVariable) and not var.scalar
                  and getattr(var.owner, "name", None) not in (None, group.name)
                  and not _is_clock(var.owner)):
                out[ident] = ir_name(f"gs_ref{ident}")

    for name in sorted(getattr(group, "_linked_variables", ())):
        var = variables.get(name)
        if isinstance(var, Subexpression):
            references(var, set())
        elif var is not None:
            out[name] = name
    return out


def elementwise_link(group: Any, name: str) -> bool:
    """Whether the linked variable (or reference) ``name`` of ``group`` maps the group's
    elements one to one onto the linked group's (no ``index=``, same size): the only
    links the engine lets the group write."""
    var = group.variables[name]
    return (group.variables.indices[name] == "_idx" and not var.scalar
            and len(root_group(var.owner)) == len(group))


def _is_clock(obj: Any) -> bool:
    from brian2.core.clocks import Clock

    return isinstance(obj, Clock)


def root_group(group: Any) -> Any:
    """The NeuronGroup that owns a subgroup's memory (the group itself otherwise)."""
    from brian2.groups.subgroup import Subgroup

    while isinstance(group, Subgroup):
        group = group.source
    return group
