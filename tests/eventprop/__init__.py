"""Exact EventProp reference (event-driven simulator, adjoint, finite differences) and its tests."""
