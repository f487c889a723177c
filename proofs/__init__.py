"""z3 proofs of the buddy tree invariants and of NBBS steps."""
