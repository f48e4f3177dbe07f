"""Where the state and recordings of a built NetworkIR live on the Brian2 side."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Binding:
    """Where the state and recordings of the IR live on the Brian2 side."""

    #: (IR owner, IR variable) -> Brian2 Variable (state pushed before / pulled after a run)
    state: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: (IR owner, IR variable) -> values computed here (pushed, never pulled)
    derived: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    #: IR monitor name -> (Brian2 monitor, kind, extra)
    monitors: dict[str, tuple[Any, str, dict]] = field(default_factory=dict)
    #: Brian2 StateMonitors of Synapses, recorded on the host between engine steps:
    #: (monitor, IR synapse group, variables, synapse indices, every, after_step)
    host_monitors: list[tuple] = field(default_factory=list)
    #: Brian2 network_operations, called on the host between engine steps:
    #: (operation, every, after_step) in schedule order
    host_operations: list[tuple] = field(default_factory=list)
    #: Brian2 object names by IR name (for messages)
    names: dict[str, str] = field(default_factory=dict)
    #: (IR group, linked variable) -> (IR target group, target variable, index array or
    #: None for element-wise links)
    links: dict[tuple[str, str], tuple[str, str, np.ndarray | None]] = field(
        default_factory=dict)
