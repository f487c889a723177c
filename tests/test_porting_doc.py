"""PORTING.md cannot drift: its tables are generated from the code, and its formulas are evaluated."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from nbbs.check.impl_mutants import IMPL_MUTANTS
from nbbs.check.mutants import COUNTED_MUTANTS, TRANSITION_MUTANTS
from nbbs.conform import porting_doc as doc
from nbbs.model import bits

DATA = Path(__file__).parent / "data"


def test_porting_md_is_what_the_code_generates() -> None:
    text = doc.DOC.read_text()
    assert doc.render(text) == text, "run: python -m nbbs.conform.porting_doc"
    assert sorted(doc.block_names(text)) == sorted(doc.SECTIONS)


def test_the_check_mode_fails_on_a_stale_table(tmp_path: Path) -> None:
    stale = tmp_path / "PORTING.md"
    stale.write_text(doc.DOC.read_text().replace("`w + (ONE_R << (W * s))`", "`w + ONE_R`"))
    assert doc.main([str(stale), "--check"]) == 1
    assert doc.main([str(doc.DOC), "--check"]) == 0


def random_word(rng: random.Random, variant: str) -> int:
    """A word of the variant: any five bits, or counted's counts above ``OCC`` (and BUSY)."""
    if not bits.VARIANTS[variant].count_bits:
        return rng.randrange(1 << bits.WORD_BITS)
    c_l, c_r = (rng.choice([0, 1, 2, rng.randrange(1 << bits.COUNT_BITS)]) for _ in range(2))
    low = rng.choice([0, 0, bits.OCC, bits.BUSY])
    return (c_l << (bits.COUNT_SHIFT + bits.COUNT_BITS)) | (c_r << bits.COUNT_SHIFT) | low


def disagreements(formula: doc.Formula, tries: int = 300) -> list[str]:
    """Inputs on which the formula and ``bits.py`` differ."""
    rng = random.Random(formula.name)
    fn = doc.transition(formula)
    wrong = []
    for _ in range(tries):
        values = {
            a: (rng.randrange(2) if a == "s" else random_word(rng, formula.variant)) for a in formula.args
        }
        want, got = fn(*values.values()), doc.evaluate(formula.formula, **values)
        if (bool(want) != bool(got)) if isinstance(want, bool) else want != got:
            wrong.append(f"{values}: bits.py {want}, formula {got}")
    return wrong


@pytest.mark.parametrize("formula", doc.FORMULAS, ids=lambda f: f"{f.variant}-{f.name}")
def test_every_formula_row_agrees_with_bits_py_on_random_words(formula: doc.Formula) -> None:
    assert not disagreements(formula)


def test_a_formula_with_the_wrong_side_is_caught() -> None:
    climb = next(f for f in doc.FORMULAS if f.variant == "counted" and f.name == "climb")
    assert disagreements(dataclasses.replace(climb, formula="w + (ONE_R << (W * (s ^ 1)))"))


def test_a_top_down_node_formula_that_looks_at_one_side_only_is_caught() -> None:
    # top_down_node differs from top_down only in looking at both counts: a port that copied
    # top_down's predicate hands a token up per side, and this row check must say so.
    stops = next(f for f in doc.FORMULAS if f.variant == "top_down_node" and f.name == "climb_stops")
    assert disagreements(dataclasses.replace(stops, formula="(w & (FIELD_R << (W * s))) != 0"))


def test_every_top_down_only_program_counter_is_one_the_step_machine_has() -> None:
    assert set(doc.TOP_DOWN_ONLY) <= set(doc.steps.PC_NAMES)


def test_every_tree_formula_agrees_with_geometry_py() -> None:
    rng = random.Random(0)
    for name, args, formula, fn in doc.GEOMETRY:
        for _ in range(200):
            depth = rng.randrange(1, 29)
            lvl = rng.randrange(depth + 1)
            n = rng.randrange(1 << lvl, 2 << lvl)
            order = rng.randrange(depth + 1)
            values = {"n": n, "l": lvl, "depth": depth, "order": order, "p": rng.randrange(1 << depth)}
            values["a"] = n >> rng.randrange(lvl + 1)
            given = {a: values[a] for a in args}
            assert doc.evaluate(formula, **given) == fn(*given.values()), (name, given)


@pytest.mark.parametrize("variant", doc.DOCUMENTED)
def test_every_program_counter_has_its_access_and_ordering_rows(variant: str) -> None:
    for pc in doc._passed(variant):
        name = doc.steps.PC_NAMES[pc]
        assert name in doc.ROLES and name in doc.ORDERING, name
    assert set(doc.ORDERING) == set(doc.ROLES)


def test_every_checklist_entry_names_a_kept_mutant_counterexample_or_trace() -> None:
    mutants = {*TRANSITION_MUTANTS, *COUNTED_MUTANTS, *IMPL_MUTANTS}
    for m in doc.CHECKLIST:
        if m.kind == "mutant":
            assert m.ref in mutants, m
        else:
            folder = {"counterexample": "counterexamples", "trace": "traces"}[m.kind]
            assert (DATA / folder / m.ref).is_file(), m
