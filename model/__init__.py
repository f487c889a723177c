"""The executable specification of NBBS: tree arithmetic, status bits, abstract state, invariants."""

from nbbs.model import bits, geometry, spec, tree

__all__ = ["bits", "geometry", "spec", "tree"]
