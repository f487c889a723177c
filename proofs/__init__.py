"""z3 proofs of the buddy tree's invariants, of the refinement of NBBS's sequential operations,
and (bounded, see README.md) of its steps.

``catalogue()`` lists the obligations, ``prove(obligation, variant)`` runs one; the mutants
in ``proofs.mutants`` must each make some obligation fail.
"""

from nbbs.proofs._obligation import Obligation, Proof, prove
from nbbs.proofs._variant import PUBLISHED, SHIPPED, VARIANTS, Variant
from nbbs.proofs.obligations import catalogue, matching, run_all, verify_tasks

__all__ = [
    "PUBLISHED",
    "SHIPPED",
    "VARIANTS",
    "Obligation",
    "Proof",
    "Variant",
    "catalogue",
    "matching",
    "prove",
    "run_all",
    "verify_tasks",
]
