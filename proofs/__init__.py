"""z3 proofs of the buddy tree's invariants, of the refinement of NBBS's sequential operations,
and of its steps (for the shipped ``counted`` variant: an inductive invariant, one query per
thread and program counter, at the depths and thread counts README.md lists).

``catalogue()`` lists the obligations, ``prove(obligation, variant)`` runs one; the mutants
in ``proofs.mutants`` must each make some obligation fail.
"""

from nbbs.proofs._obligation import Obligation, Proof, prove
from nbbs.proofs._variant import CORRECTED, COUNTED, PUBLISHED, SHIPPED, VARIANTS, Variant
from nbbs.proofs.obligations import catalogue, matching, run_all, verify_tasks

__all__ = [
    "CORRECTED",
    "COUNTED",
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
