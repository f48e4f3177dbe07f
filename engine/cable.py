"""The cable solve of a multi-compartment neuron: host set-up, NumPy stages, CUDA stages.

A :class:`~gpuspike.bridge.ir.CableIR` advances ``v`` of ``N`` compartments, grouped in
``S`` unbranched sections that form a tree, by one backward Euler step of the cable
equation. With ``gtot``, ``I0`` the linearised membrane current ``Im = I0 - gtot v`` of this
step, compartment ``k`` solves

    (Cm_k/dt + gtot_k) v'_k - sum_n a_kn (v'_n - v'_k) = Cm_k/dt v_k + I0_k

(``a_kn`` = axial conductance / area_k). This is Brian2's ``spatialstateupdate`` scheme
(the Hines "domain decomposition" of its ``SpatialStateUpdater``), in three stages:

1. **sections** (one thread per section and batch entry): the system without the links
   between sections is block tridiagonal; one Thomas sweep per section solves it for
   three right-hand sides at once: the step's ``rhs`` (-> ``vstar``), and the unit
   currents entering at the section's end (``eplus`` -> ``uplus``) and start (``eminus``
   -> ``uminus``). Every solution is ``v' = vstar + V_start uminus + V_end uplus``, where
   ``V_start``/``V_end`` are the voltages of the section's two *nodes*;
2. **tree** (one block per batch entry): the node voltages solve a small system with the
   tree's shape: node 0 is the root section's sealed start, node ``s + 1`` the end of
   section ``s`` (where its children start). Row ``n`` is current conservation at node
   ``n``. Gaussian elimination from the leaves to the root (level by level, the sections
   of one tree level in parallel, each node gathering its children in order), then
   substitution from the root out;
3. **voltage** (an element kernel, printed from the ordinary kernel IR): ``v'`` as above,
   and the capacitive current ``Cm (v' - v) / dt``.

The coefficients that depend on the morphology only are computed once here, on the host
(:func:`constants`); stage 0 (``<cable>_currents``, also ordinary kernel IR) writes the
step's diagonal and right-hand side. The solve runs in float64 whatever the network's
precision (a float32 network keeps float32 state): the node system cancels terms such as
``1 - uplus`` with ``uplus`` close to 1. On a soma with a 10-compartment axon, Brian2's
own NumPy target in float32 ends 2 ms off by hundreds of mV; float32 state with this
float64 solve stays within 3e-7 V of float64.

The order of every floating-point operation of the tree stage is Brian2's; the NumPy
sections stage is LAPACK's banded solver (as Brian2's NumPy target), the CUDA one a Thomas
sweep (same system, no pivoting: the matrix is diagonally dominant when ``gtot >= 0``).

TODO(perf): issue 3 follow-up: a long unbranched section is one sequential sweep on one
thread (Rallpack 1: 1000 compartments); split such sections into blocks solved in
parallel (cyclic reduction, or more nodes) once a GPU can measure it.

Arrays of cable ``c`` (``c__<name>``): constants ``starts``, ``ends``, ``parent``
(S, int32: section -> parent *node*), ``invr0``/``invrn`` (S: conductance to the start /
end node), ``lower``/``upper``/``axial`` (N: sub-, super- and axial part of the
diagonal), ``eplus``/``eminus`` (N), ``node0``/``node1`` (N, int32: the two nodes of the
compartment's section), ``child_start`` (S + 2)/``children`` (S) (CSR: sections hanging
from each node), ``level_start`` (L + 1)/``level_sections`` (S) (sections by depth);
per step (batched): ``diag``, ``vstar``, ``uplus``, ``uminus``, ``cprime`` (N),
``pdiag``, ``node_v`` (S + 1), ``pchild``, ``pparent`` (S).
"""

from __future__ import annotations

import numpy as np
from gpuspike.bridge import ir

from . import kernel_ir as k

#: name -> (dtype, size: 'N' compartments, 'S' sections, 'S+1' nodes, 'S+2', 'L+1')
CONSTANTS: dict[str, tuple[str, str]] = {
    "starts": ("int32", "S"), "ends": ("int32", "S"), "parent": ("int32", "S"),
    "invr0": ("float64", "S"), "invrn": ("float64", "S"),
    "lower": ("float64", "N"), "upper": ("float64", "N"), "axial": ("float64", "N"),
    "eplus": ("float64", "N"), "eminus": ("float64", "N"),
    "node0": ("int32", "N"), "node1": ("int32", "N"),
    "child_start": ("int32", "S+2"), "children": ("int32", "S"),
    "level_start": ("int32", "L+1"), "level_sections": ("int32", "S"),
}
#: per-step arrays (one copy per batch entry)
SCRATCH: dict[str, str] = {
    "diag": "N", "vstar": "N", "uplus": "N", "uminus": "N", "cprime": "N",
    "pdiag": "S+1", "node_v": "S+1", "pchild": "S", "pparent": "S",
}
#: arrays each solve stage reads or writes (its CUDA parameter list, in this order)
STAGE_ARRAYS: dict[str, tuple[str, ...]] = {
    "sections": ("starts", "ends", "lower", "upper", "eplus", "eminus", "diag", "vstar",
                 "uplus", "uminus", "cprime"),
    "tree": ("starts", "ends", "parent", "invr0", "invrn", "child_start", "children",
             "level_start", "level_sections", "vstar", "uplus", "uminus", "pdiag",
             "node_v", "pchild", "pparent"),
}


def name(cable: str, array: str) -> str:
    """The plan's name of one of a cable's arrays."""
    return f"{cable}__{array}"


def levels(parent: np.ndarray) -> np.ndarray:
    """Depth of every section in the tree (the root section: 0)."""
    depth = np.zeros(len(parent), dtype=np.int64)
    for s in range(1, len(parent)):
        depth[s] = depth[parent[s]] + 1
    return depth


def sizes(cable: ir.CableIR) -> dict[str, int]:
    """The sizes the array declarations refer to."""
    n, s = len(cable.area), len(cable.starts)
    n_levels = int(levels(np.asarray(cable.parent)).max()) + 1
    return {"N": n, "S": s, "S+1": s + 1, "S+2": s + 2, "L+1": n_levels + 1}


def array_decls(cable: ir.CableIR, batched: bool = True) -> list[k.ArrayDecl]:
    """Declarations of every array of ``cable`` (constants first)."""
    size = sizes(cable)
    out = [k.ArrayDecl(name(cable.name, a), dtype, size[key], False, "input", cable.name)
           for a, (dtype, key) in CONSTANTS.items()]
    out += [k.ArrayDecl(name(cable.name, a), "float64", size[key], batched, "state",
                        cable.name) for a, key in SCRATCH.items()]
    return out


def constants(cable: ir.CableIR) -> dict[str, np.ndarray]:
    """The morphology's coefficients (float64, also in float32 networks), as Brian2's
    ``spatialstateupdate`` template computes them before a run."""
    area = np.asarray(cable.area, dtype=np.float64)
    r1 = np.asarray(cable.r_length_1, dtype=np.float64)
    r2 = np.asarray(cable.r_length_2, dtype=np.float64)
    Ri = float(cable.Ri)
    starts = np.asarray(cable.starts, dtype=np.int64)
    ends = np.asarray(cable.ends, dtype=np.int64)
    last = ends - 1
    parent_section = np.asarray(cable.parent, dtype=np.int64)
    n, s = area.size, starts.size
    # axial conductance between compartment k-1 and k (0 where a section starts)
    invr = np.zeros(n)
    invr[1:] = 1.0 / (Ri * (1 / r2[:-1] + 1 / r1[1:]))
    invr[starts] = 0
    invr0 = r1[starts] / Ri
    invrn = r2[last] / Ri
    lower = invr / area
    upper = np.zeros(n)
    upper[:-1] = invr[1:] / area[:-1]
    axial = -(invr / area)
    axial[:-1] -= invr[1:] / area[:-1]
    axial[starts] -= invr0 / area[starts]
    axial[last] -= invrn / area[last]
    eplus = np.zeros(n)
    eplus[last] = -(invrn / area[last])
    eminus = np.zeros(n)
    eminus[starts] = -(invr0 / area[starts])
    # parent node of a section: 0 for the root, else 1 + its parent section
    parent = np.where(parent_section < 0, 0, parent_section + 1)
    section = np.repeat(np.arange(s), ends - starts)
    node0, node1 = parent[section], section + 1
    order = np.argsort(parent, kind="stable")  # sections by their parent node, in order
    child_start = np.searchsorted(parent[order], np.arange(s + 2))
    depth = levels(parent_section)
    by_level = np.argsort(depth, kind="stable")
    level_start = np.searchsorted(depth[by_level], np.arange(int(depth.max()) + 2))
    ints = {"starts": starts, "ends": ends, "parent": parent, "node0": node0,
            "node1": node1, "child_start": child_start, "children": order,
            "level_start": level_start, "level_sections": by_level}
    floats = {"invr0": invr0, "invrn": invrn, "lower": lower, "upper": upper,
              "axial": axial, "eplus": eplus, "eminus": eminus}
    return {**{a: v.astype(np.int32) for a, v in ints.items()}, **floats}


def widest_level(cable: ir.CableIR) -> int:
    """Most sections in one tree level (threads per block of the tree stage)."""
    return int(np.bincount(levels(np.asarray(cable.parent))).max())


# ----------------------------------------------------------------------------- NumPy stages
def numpy_sections(A: dict, cable: str, batch: int) -> None:
    """Stage 1 on the CPU: LAPACK's banded solver on the block-tridiagonal system (the
    blocks are the sections: their links are zero), three right-hand sides at once."""
    from scipy.linalg import solve_banded

    lower, upper = A[name(cable, "lower")], A[name(cable, "upper")]
    n = lower.size
    ab = np.zeros((3, n), dtype=lower.dtype)
    ab[0, 1:] = upper[:-1]
    ab[2, :-1] = lower[1:]
    rhs = np.empty((n, 3), dtype=lower.dtype)
    rhs[:, 1] = A[name(cable, "eplus")]
    rhs[:, 2] = A[name(cable, "eminus")]
    diag, vstar = A[name(cable, "diag")], A[name(cable, "vstar")]
    uplus, uminus = A[name(cable, "uplus")], A[name(cable, "uminus")]
    for b in range(batch):
        ab[1] = diag[b]
        rhs[:, 0] = vstar[b]
        x = solve_banded((1, 1), ab, rhs, check_finite=False)
        vstar[b], uplus[b], uminus[b] = x[:, 0], x[:, 1], x[:, 2]


def numpy_tree(A: dict, cable: str, batch: int) -> None:
    """Stage 2 on the CPU: the node system, vectorised over the sections of a level (the
    additions into one parent node happen in section order, as in Brian2)."""
    def get(a: str) -> np.ndarray:
        return A[name(cable, a)]

    first, last = get("starts"), get("ends") - 1
    parent, invr0, invrn = get("parent"), get("invr0"), get("invrn")
    level_start, by_level = get("level_start"), get("level_sections")
    for b in range(batch):
        vstar, uplus, uminus = get("vstar")[b], get("uplus")[b], get("uminus")[b]
        pdiag, node_v = get("pdiag")[b], get("node_v")[b]
        pchild, pparent = get("pchild")[b], get("pparent")[b]
        # rows: the section's end node, then what its children add
        pdiag[0] = uminus[first[0]] - 1
        node_v[0] = -vstar[first[0]]
        pchild[0] = uplus[first[0]]
        pdiag[1:] = (1 - uplus[last]) * invrn
        node_v[1:] = vstar[last] * invrn
        pparent[:] = -uminus[last] * invrn
        kids = slice(1, None)
        pchild[kids] = -uplus[first[kids]] * invr0[kids]
        np.add.at(pdiag, parent[kids], (1 - uminus[first[kids]]) * invr0[kids])
        np.add.at(node_v, parent[kids], vstar[first[kids]] * invr0[kids])
        # elimination, deepest level first
        for lv in range(level_start.size - 2, -1, -1):
            c = by_level[level_start[lv]:level_start[lv + 1]]
            f = pchild[c] / pdiag[c + 1]
            np.add.at(pdiag, parent[c], -(f * pparent[c]))
            np.add.at(node_v, parent[c], -(f * node_v[c + 1]))
        # substitution, root first
        node_v[0] = node_v[0] / pdiag[0]
        for lv in range(level_start.size - 1):
            c = by_level[level_start[lv]:level_start[lv + 1]]
            node_v[c + 1] = (node_v[c + 1] - pparent[c] * node_v[parent[c]]) / pdiag[c + 1]


NUMPY_STAGES = {"sections": numpy_sections, "tree": numpy_tree}


# ----------------------------------------------------------------------------- CUDA stages
def cuda_stage(dom: k.CableDomain, ind: str) -> list[str]:
    """The CUDA body of one solve stage (inside the domain's thread mapping: ``_b_``, and
    for the sections stage ``_sec_``); double precision whatever the network's."""
    c = dom.cable
    real = "double"
    N, S = dom.compartments, dom.sections

    def a(x: str) -> str:
        return name(c, x)

    if dom.stage == "sections":
        # the running values of the previous (forward) / next (backward) compartment stay
        # in registers: the sweep is one dependent chain per section
        vs, up, um, cp = a("vstar"), a("uplus"), a("uminus"), a("cprime")
        body = [
            f"const long long _o = (long long)_b_ * {N}LL;",
            f"const int _a = {a('starts')}[_sec_], _e = {a('ends')}[_sec_];",
            "// forward sweep (Thomas): three right-hand sides share the pivots",
            f"{real} _m = {a('diag')}[_o + _a];",
            f"{real} _cp = {a('upper')}[_a] / _m;",
            f"{real} _xv = {vs}[_o + _a] / _m, _xp = {a('eplus')}[_a] / _m, "
            f"_xm = {a('eminus')}[_a] / _m;",
            f"{cp}[_o + _a] = _cp; {vs}[_o + _a] = _xv; {up}[_o + _a] = _xp; "
            f"{um}[_o + _a] = _xm;",
            "for (int _c = _a + 1; _c < _e; ++_c) {",
            f"    const {real} _l = {a('lower')}[_c];",
            f"    _m = {a('diag')}[_o + _c] - _l * _cp;",
            f"    _cp = {a('upper')}[_c] / _m;",
            f"    _xv = ({vs}[_o + _c] - _l * _xv) / _m;",
            f"    _xp = ({a('eplus')}[_c] - _l * _xp) / _m;",
            f"    _xm = ({a('eminus')}[_c] - _l * _xm) / _m;",
            f"    {cp}[_o + _c] = _cp; {vs}[_o + _c] = _xv; {up}[_o + _c] = _xp; "
            f"{um}[_o + _c] = _xm;",
            "}",
            "// back substitution (the last compartment's values are final)",
            "for (int _c = _e - 2; _c >= _a; --_c) {",
            f"    const {real} _q = {cp}[_o + _c];",
            f"    _xv = {vs}[_o + _c] - _q * _xv;",
            f"    _xp = {up}[_o + _c] - _q * _xp;",
            f"    _xm = {um}[_o + _c] - _q * _xm;",
            f"    {vs}[_o + _c] = _xv; {up}[_o + _c] = _xp; {um}[_o + _c] = _xm;",
            "}",
        ]
        return [ind + line for line in body]
    if dom.stage != "tree":  # pragma: no cover - the lowering makes only these two
        raise ValueError(dom.stage)
    oc, os_, on = "_oc", "_os", "_on"
    body = [
        f"const long long _oc = (long long)_b_ * {N}LL, _os = (long long)_b_ * {S}LL, "
        f"_on = (long long)_b_ * {S + 1}LL;",
        "// rows of the node system: node 0 is the root's sealed start, node n the end of",
        "// section n - 1 plus the starts of the sections hanging from it",
        f"for (int _n = threadIdx.x; _n <= {S}; _n += blockDim.x) {{",
        f"    {real} _d, _r;",
        "    if (_n == 0) {",
        f"        const int _a = {a('starts')}[0];",
        f"        _d = {a('uminus')}[{oc} + _a] - 1;",
        f"        _r = -{a('vstar')}[{oc} + _a];",
        f"        {a('pchild')}[{os_}] = {a('uplus')}[{oc} + _a];",
        "    } else {",
        "        const int _s = _n - 1;",
        f"        const int _e = {a('ends')}[_s] - 1;",
        f"        _d = (1 - {a('uplus')}[{oc} + _e]) * {a('invrn')}[_s];",
        f"        _r = {a('vstar')}[{oc} + _e] * {a('invrn')}[_s];",
        f"        {a('pparent')}[{os_} + _s] = -{a('uminus')}[{oc} + _e] * {a('invrn')}[_s];",
        f"        for (int _k = {a('child_start')}[_n]; _k < {a('child_start')}[_n + 1]; "
        "++_k) {",
        f"            const int _h = {a('children')}[_k];",
        f"            const int _a = {a('starts')}[_h];",
        f"            _d += (1 - {a('uminus')}[{oc} + _a]) * {a('invr0')}[_h];",
        f"            {a('pchild')}[{os_} + _h] = -{a('uplus')}[{oc} + _a] * {a('invr0')}[_h];",
        f"            _r += {a('vstar')}[{oc} + _a] * {a('invr0')}[_h];",
        "        }",
        "    }",
        f"    {a('pdiag')}[{on} + _n] = _d;",
        f"    {a('node_v')}[{on} + _n] = _r;",
        "}",
        "__syncthreads();",
        "// elimination from the leaves: the end node of every section of a level gathers",
        "// its children (whose rows are final), in order",
        f"for (int _lv = {dom.levels - 1}; _lv >= 0; --_lv) {{",
        f"    for (int _p = {a('level_start')}[_lv] + threadIdx.x; "
        f"_p < {a('level_start')}[_lv + 1]; _p += blockDim.x) {{",
        f"        const int _n = {a('level_sections')}[_p] + 1;",
        f"        {real} _d = {a('pdiag')}[{on} + _n], _r = {a('node_v')}[{on} + _n];",
        f"        for (int _k = {a('child_start')}[_n]; _k < {a('child_start')}[_n + 1]; "
        "++_k) {",
        f"            const int _h = {a('children')}[_k];",
        f"            const {real} _f = {a('pchild')}[{os_} + _h] / "
        f"{a('pdiag')}[{on} + _h + 1];",
        f"            _d = _d - _f * {a('pparent')}[{os_} + _h];",
        f"            _r = _r - _f * {a('node_v')}[{on} + _h + 1];",
        "        }",
        f"        {a('pdiag')}[{on} + _n] = _d;",
        f"        {a('node_v')}[{on} + _n] = _r;",
        "    }",
        "    __syncthreads();",
        "}",
        "// the root node: its only child is section 0; then substitution from the root out",
        "if (threadIdx.x == 0) {",
        f"    const {real} _f = {a('pchild')}[{os_}] / {a('pdiag')}[{on} + 1];",
        f"    const {real} _d = {a('pdiag')}[{on}] - _f * {a('pparent')}[{os_}];",
        f"    const {real} _r = {a('node_v')}[{on}] - _f * {a('node_v')}[{on} + 1];",
        f"    {a('pdiag')}[{on}] = _d;",
        f"    {a('node_v')}[{on}] = _r / _d;",
        "}",
        "__syncthreads();",
        f"for (int _lv = 0; _lv < {dom.levels}; ++_lv) {{",
        f"    for (int _p = {a('level_start')}[_lv] + threadIdx.x; "
        f"_p < {a('level_start')}[_lv + 1]; _p += blockDim.x) {{",
        f"        const int _h = {a('level_sections')}[_p];",
        f"        {a('node_v')}[{on} + _h + 1] = ({a('node_v')}[{on} + _h + 1] - "
        f"{a('pparent')}[{os_} + _h] * {a('node_v')}[{on} + {a('parent')}[_h]]) / "
        f"{a('pdiag')}[{on} + _h + 1];",
        "    }",
        "    __syncthreads();",
        "}",
    ]
    return [ind + line for line in body]
