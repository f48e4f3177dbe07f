"""gpuspike.bridge: the network IR and everything symbolic (parsing, integrators, passes)."""
