"""The status word of a tree node and every transition NBBS applies to it, written once.

One word per node; in the published algorithm, five bits::

      4       3           2            1          0
    +-----+-----------+------------+----------+-----------+
    | OCC | COAL_LEFT | COAL_RIGHT | OCC_LEFT | OCC_RIGHT |
    +-----+-----------+------------+----------+-----------+

    OCC         the node itself is an allocated block
    COAL_LEFT   a free is coalescing up through the left child  (COAL_RIGHT: the right one)
    OCC_LEFT    something in the left child's subtree is taken  (OCC_RIGHT: the right one)

An allocated block's word is ``BUSY = OCC | OCC_LEFT | OCC_RIGHT``: its subtree counts as
fully taken, so nobody descends into it.

A *side* selects the child-side bits in a parent: ``s = 1`` for the left child, ``s = 0`` for
the right one (``geometry.side``). Because the left bit is the right bit shifted by one,
``occ_bit(s) = OCC_RIGHT << s`` and ``coal_bit(s) = COAL_RIGHT << s``: no branch on the side.

``counted`` (``counted(width)``, below) keeps ``OCC`` and ``BUSY`` and puts two counts of
claims above these five bits instead of the ``COAL``/``OCC`` side bits; the shipped variant,
``top_down_node`` (``DEFAULT_VARIANT``), keeps ``counted``'s words and writes its claims from
the top down (``top_down``, ``top_down_node``, below).

Every function here is a pure expression over ``&``, ``|``, ``^``, ``~``, ``<<``, ``==`` (and
``+``, ``-`` for the counts), so it runs on Python ints (the allocator, the model checker) and
on z3 bit-vectors of ``word_bits`` bits (the proofs) unchanged. Predicates return a ``bool`` on ints and a z3
``BoolRef`` on bit-vectors. Nothing here branches on a value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OCC = 0x10
COAL_LEFT = 0x08
COAL_RIGHT = 0x04
OCC_LEFT = 0x02
OCC_RIGHT = 0x01

BUSY = OCC | OCC_LEFT | OCC_RIGHT
"""The word of an allocated block."""

WORD_BITS = 5
WORD_MASK = (1 << WORD_BITS) - 1

NAMES = (
    (OCC, "OCC"),
    (COAL_LEFT, "COAL_L"),
    (COAL_RIGHT, "COAL_R"),
    (OCC_LEFT, "OCC_L"),
    (OCC_RIGHT, "OCC_R"),
)


# -- selecting a child's bits ------------------------------------------------------------


def occ_bit(s: int) -> int:
    """The OCC_* bit of side ``s`` (1 = left, 0 = right)."""
    return OCC_RIGHT << s


def coal_bit(s: int) -> int:
    """The COAL_* bit of side ``s`` (1 = left, 0 = right)."""
    return COAL_RIGHT << s


def other(s: int) -> int:
    """The opposite side."""
    return s ^ 1


# -- predicates ---------------------------------------------------------------------------


def is_free(w: int) -> bool:
    """Occupy's expectation: the word is all zero, nothing in or under the node."""
    return w == 0


def is_unclaimed(w: int) -> bool:
    """Occupy's expectation when a stale COAL bit is allowed: nothing in or under the node.

    A word holding only COAL bits is left by a free whose mark came after the path was
    cleared; nobody below needs the node, so an alloc may take it (its occupy drops the bits).
    """
    return w & BUSY == 0


def is_occupied(w: int) -> bool:
    """The node is an allocated block (or being claimed by an alloc in flight)."""
    return w & OCC != 0


def side_occupied(w: int, s: int) -> bool:
    """Side ``s``'s subtree holds something allocated."""
    return w & occ_bit(s) != 0


def side_coalescing(w: int, s: int) -> bool:
    """A free is coalescing up through side ``s``."""
    return w & coal_bit(s) != 0


def buddy_keeps_busy(old: int, s: int) -> bool:
    """Mark stops here: the other side is occupied and not coalescing, so this node stays taken.

    Assumes ``old`` is the word before the mark of side ``s``.
    """
    o = other(s)
    return old & (occ_bit(o) | coal_bit(o)) == occ_bit(o)


def unmark_applies(w: int, s: int) -> bool:
    """Unmark may clear side ``s``: its COAL bit is still set (nobody re-claimed the path)."""
    return side_coalescing(w, s)


def rollback_continues(w: int, s: int) -> bool:
    """A rollback that reached its bound goes on above it: the word above the bound is no block
    and shows side ``s`` occupied, by a climb whose free handed the rest of the path to us."""
    return w & (OCC | occ_bit(s)) == occ_bit(s)


def side_cleared(w: int, s: int) -> bool:
    """Unmark finds side ``s`` neither coalescing nor occupied: another free's unmark cleared it
    for us (an alloc re-claiming the path would have set OCC), so our marks above still wait."""
    return w & (coal_bit(s) | occ_bit(s)) == 0


def never(w: int, s: int) -> bool:
    """The published rollback: it never goes above its bound."""
    return w != w


def unmark_stops(new: int, s: int) -> bool:
    """Unmark stops after this node: the other side is still occupied after clearing side ``s``."""
    return side_occupied(new, other(s))


# -- transitions (old word -> new word) -----------------------------------------------------


def occupy(w: int) -> int:
    """Claim a free node as a block. Assumes ``is_free(w)``; ensures the word is ``BUSY``."""
    return (w & 0) | BUSY


def climb(w: int, s: int) -> int:
    """An alloc passes up through side ``s``: set its OCC bit, clear its COAL bit, keep the rest."""
    return (w | occ_bit(s)) & ~coal_bit(s)


def mark_mask(s: int) -> int:
    """What mark ORs into the parent (a fetch-or): side ``s``'s COAL bit."""
    return coal_bit(s)


def mark(w: int, s: int) -> int:
    """A free starts coalescing through side ``s``: set its COAL bit only."""
    return w | mark_mask(s)


def release(w: int) -> int:
    """A free gives the block back: ``BUSY`` becomes zero (a store, so ``w`` only fixes the type)."""
    return w & 0


def unmark(w: int, s: int) -> int:
    """A free finishes coalescing through side ``s``: clear its COAL and OCC bits, keep the rest.

    Applied only when ``unmark_applies(w, s)``.
    """
    return w & ~(coal_bit(s) | occ_bit(s))


@dataclass(frozen=True)
class Transitions:
    """The word transitions one allocator runs, bundled so a checker can swap in a mutant.

    The allocator, the step machine and the proofs all read their transitions from such a
    bundle; ``PUBLISHED`` is the one written above.
    """

    is_free: Callable[[int], bool] = is_free
    is_occupied: Callable[[int], bool] = is_occupied
    occupy: Callable[[int], int] = occupy
    climb: Callable[[int, int], int] = climb
    mark_mask: Callable[[int], int] = mark_mask
    buddy_keeps_busy: Callable[[int, int], bool] = buddy_keeps_busy
    release: Callable[[int], int] = release
    unmark_applies: Callable[[int, int], bool] = unmark_applies
    unmark: Callable[[int, int], int] = unmark
    unmark_stops: Callable[[int, int], bool] = unmark_stops
    side_claimed: Callable[[int, int], bool] = side_occupied
    """Whether the word shows a claim (when quiescent: a live block) under side ``s``: the side's
    ``OCC_*`` bit, or (``counted``) its count. ``live_blocks`` descends only where it holds."""
    unmark_skips: Callable[[int, int], bool] = never
    """Whether unmark, finding its COAL bit gone, goes on above (``corrected``) instead of stopping."""
    rollback_continues: Callable[[int, int], bool] = never
    """Whether a rollback goes on above its bound (``corrected``) given the word above it."""
    climb_stops: Callable[[int, int], bool] = never
    """Whether a climb whose CAS on side ``s`` succeeded over the word ``old`` stops there, the
    alloc done (``stop_early``: the side was already claimed); ``never``: it goes on to
    ``max_level``."""
    rollback_extends: bool = False
    """Whether a rollback that would go on at its bound looks above it at all: ``False``
    for the published algorithm, which makes no access there."""

    release_last: bool = False
    """Whether a free releases its block after its unmark instead of before it."""

    release_cas: bool = False
    """Whether the release is a CAS from the block's word (as the free found it) to ``release``
    of it, which fails if another free released the block first (``counted``), or the published
    plain store of ``release(BUSY)`` (the five-bit variants, kept as published)."""

    top_down: bool = False
    """Whether the climb only *reads* up to the first ancestor whose side is already claimed (or
    ``max_level``), then writes its claims from there back down (``top-down``, ALGORITHM.md
    §1.4.2): a count is made non-zero only under an ancestor that already holds it up."""

    marks: bool = True
    """Whether a free marks (announces its coalescing with COAL bits) before it unmarks. The
    ``counted`` variant has no mark phase: its unmark alone gives the path back."""

    word_bits: int = WORD_BITS
    """How many bits a word uses: 5 here, ``5 + 2 * width`` for ``counted(width)``."""

    count_bits: int = 0
    """The width of one side's count (``counted``); 0 for the five-bit variants."""

    node_ok: Callable[..., Any] | None = None
    """The quiescent invariant of an inner node, ``node_ok(w, wl, wr, logic)``, when the words
    mean something else than in the five-bit variants (``tree.node_ok``); None: that one."""

    show: Callable[[int], str] = lambda w: show(w)
    """A word in binary with its fields named, for counterexamples."""

    at_width: Callable[[int], Transitions] | None = None
    """The same variant with ``width``-bit counts (the model checker's narrow words), for the
    variants with counts; None for the five-bit ones."""

    def mark(self, w: int, s: int) -> int:
        """The word after this bundle's mark of side ``s`` (the fetch-or of ``mark_mask``)."""
        return w | self.mark_mask(s)


PUBLISHED = Transitions()

CORRECTED = Transitions(
    is_free=is_unclaimed,
    unmark_skips=side_cleared,
    rollback_continues=rollback_continues,
    rollback_extends=True,
    release_last=True,
)
"""The algorithm we ship (``ALGORITHM.md``): the published transitions plus four repairs.

1. A rollback finishes the free a climb handed to it: when its mark reaches its bound and
   would go on, it loads the failed ancestor and, if that is no block but shows our side
   occupied, CAS-marks it and carries on marking as a free; its unmark goes on up to
   ``max_level`` like a free's (``rollback_continues``, ``rollback_extends``).
2. An unmark that finds its side neither coalescing nor occupied (another free's unmark
   cleared it for us) goes on above instead of stopping (``unmark_skips``).
3. A free releases its block after its unmark, not before (``release_last``): nobody can
   re-claim the path through the block while the unmark runs.
4. Occupy accepts a word holding only COAL bits (``is_unclaimed``): a mark that came after
   the path was cleared leaves one, and nothing below needs the node.
"""

ROLLBACK_ONLY = Transitions(rollback_continues=rollback_continues, rollback_extends=True)
"""A rejected candidate: repair 1 alone."""

SKIP_ONLY = Transitions(unmark_skips=side_cleared)
"""A rejected candidate: repair 2 alone."""

ROLLBACK_SKIP = Transitions(
    unmark_skips=side_cleared, rollback_continues=rollback_continues, rollback_extends=True
)
"""A rejected candidate: repairs 1 and 2."""

ROLLBACK_SKIP_LAST = Transitions(
    unmark_skips=side_cleared, rollback_continues=rollback_continues, rollback_extends=True, release_last=True
)
"""A rejected candidate: repairs 1, 2 and 3."""

# -- the counted variant ----------------------------------------------------------------------

COUNT_SHIFT = 5
"""Where the counts start: above the five bits, of which ``counted`` uses ``OCC`` (and a
block's ``OCC_LEFT | OCC_RIGHT``) only."""

COUNT_BITS = 29
"""The allocator's count width: a side counts at most 2**27 pages (``MAX_DEPTH = 28``) plus
one claim per thread in flight, and ``5 + 2 * 29 = 63`` bits fit a signed 64-bit word."""


def counted(width: int = COUNT_BITS) -> Transitions:
    """The ``counted`` variant with ``width``-bit counts: no COAL licence, so no ABA on one.

    Above ``OCC`` a word holds two counts, ``c_R`` in bits ``5 .. 5+width-1`` and ``c_L`` in
    the ``width`` bits above: how many *claims* pass through each child, a claim being a
    block below (held, or occupied by an alloc in flight) whose alloc has climbed this far
    and whose free or rollback has not yet come back down past here::

        occupy      0 -> BUSY                       (CAS; only a word with no claim and no OCC)
        climb       w -> w + one(s)                 (CAS, at every ancestor up to max_level,
                                                     failing at an occupied one)
        release     BUSY -> 0                       (CAS from the word the free found, so of
                                                     two racing frees of a block one fails)
        unmark      w -> w - one(s)                 (CAS, at every ancestor the claim climbed)

    A free releases its block, then unmarks its whole path; a rollback the part it climbed.
    There is nothing to mark: a count says how many claims remain, so the last one out
    leaves zero without being told, and no free can consume another's licence. Occupying
    needs the whole word zero, climbing needs ``OCC`` clear, both in one word, so a block and
    a claim through it exclude each other (``ALGORITHM.md``). The cost: every alloc and
    free writes every ancestor up to ``max_level`` (the published climb skips words that
    already show its side taken, the published free stops at a busy buddy), and wider words.

    The model checker and the proofs use small widths (enough for their trees and threads);
    the allocator uses ``COUNT_BITS``. A count never goes below zero or reaches
    ``2**width`` when the width suffices (the checker asserts it on every state it visits).
    """
    field_r = ((1 << width) - 1) << COUNT_SHIFT
    one_r = 1 << COUNT_SHIFT

    def one(s: int) -> int:
        return one_r << (s * width)

    def field(s: int) -> int:
        return field_r << (s * width)

    def climb_counted(w: int, s: int) -> int:
        """An alloc's claim passes up through side ``s``: count it."""
        return w + one(s)

    def unmark_counted(w: int, s: int) -> int:
        """A free's (or rollback's) claim leaves side ``s``: uncount it."""
        return w - one(s)

    def claimed(w: int, s: int) -> bool:
        """Side ``s`` has a claim to give back (always, when the counts are right)."""
        return w & field(s) != 0

    def node_ok_counted(w: int, wl: int, wr: int, logic: Any) -> Any:
        """Quiescent: a block has nothing below it; otherwise each side counts the blocks below."""
        occupied = w & OCC != 0
        low = OCC | COAL_LEFT | COAL_RIGHT | OCC_LEFT | OCC_RIGHT
        field_l = field(1)
        # c_L(w) = [left child is a block] + c_L(wl) + c_R(wl), compared in c_L's place;
        # c_R likewise, shifted up into c_L's place so no right shift is needed.
        left_sum = (wl & field_l) + ((wl & field_r) << width)
        right_sum = (wr & field_l) + ((wr & field_r) << width)
        return logic.and_(
            logic.implies(occupied, logic.and_(w == BUSY, wl == 0, wr == 0)),
            logic.implies(
                logic.not_(occupied),
                logic.and_(
                    w & low == 0,
                    logic.implies(wl & OCC != 0, w & field_l == one(1)),
                    logic.implies(wl & OCC == 0, w & field_l == left_sum),
                    logic.implies(wr & OCC != 0, w & field_r == one_r),
                    logic.implies(wr & OCC == 0, (w & field_r) << width == right_sum),
                ),
            ),
        )

    def show_counted(w: int) -> str:
        c_l, c_r = (w >> (COUNT_SHIFT + width)) & ((1 << width) - 1), (w >> COUNT_SHIFT) & ((1 << width) - 1)
        if w == BUSY:
            return "BUSY"
        low = "|".join(name for bit, name in NAMES if w & bit)
        return (low + " " if low else "") + f"L={c_l} R={c_r}"

    return Transitions(
        climb=climb_counted,
        unmark_applies=claimed,
        side_claimed=claimed,
        unmark=unmark_counted,
        unmark_stops=never,
        marks=False,
        release_cas=True,
        word_bits=COUNT_SHIFT + 2 * width,
        count_bits=width,
        node_ok=node_ok_counted,
        show=show_counted,
        at_width=counted,
    )


COUNTED = counted()
"""``counted(COUNT_BITS)`` (ALGORITHM.md §1): the variant with the most complete proof (the
default until ``top_down_node``)."""


def _count_fields(width: int) -> tuple[int, int, int]:
    """Where side ``s``'s count sits in a ``width``-bit counted word: (c_R's mask, c_L's mask,
    one claim on the right)."""
    field_r = ((1 << width) - 1) << COUNT_SHIFT
    return field_r, field_r << width, 1 << COUNT_SHIFT


def _handed_up_ok(w: Any, wl: Any, wr: Any, width: int, handed_up: Callable[..., Any], logic: Any) -> Any:
    """The quiescent node of a variant whose counts are what the children hand up: a block has
    nothing below it; otherwise no status bit, and each side's count is ``handed_up(child,
    that count's field in w, one claim there)``."""
    field_r, field_l, one_r = _count_fields(width)
    occupied = w & OCC != 0
    low = OCC | COAL_LEFT | COAL_RIGHT | OCC_LEFT | OCC_RIGHT
    return logic.and_(
        logic.implies(occupied, logic.and_(w == BUSY, wl == 0, wr == 0)),
        logic.implies(
            logic.not_(occupied),
            logic.and_(
                w & low == 0,
                handed_up(wl, w & field_l, one_r << width),
                handed_up(wr, w & field_r, one_r),
            ),
        ),
    )


def stop_early(width: int = COUNT_BITS) -> Transitions:
    """The naive *stop-early* ``counted``: cheap near the root, and unsafe (ALGORITHM.md §1.4).

    The words are ``counted``'s; a count now says how many of the child's claims were handed
    up, as in a scalable non-zero indicator without its "arrival in progress" state::

        climb       w -> w + one(s), then stop (the alloc is done) if c_s(w) was not zero
        unmark      w -> w - one(s), then stop if c_s stays non-zero

    Quiescent (``node_ok``): ``c_s(w) = [child s is a block] + [c_L(child) > 0] + [c_R(child) > 0]``.
    The climb trusts a non-zero count to be held up above by whoever made it non-zero, but
    that claim may still be climbing (and fail and roll back): a block is handed out with
    nothing above its parent, and a larger block is occupied over it.
    """
    base = counted(width)
    field_r, field_l, _ = _count_fields(width)

    def claimed(w: int, s: int) -> bool:
        """Side ``s`` has a claim (before a climb: someone else holds the path up above)."""
        return w & (field_r << (s * width)) != 0

    def node_ok_stop_early(w: int, wl: int, wr: int, logic: Any) -> Any:
        """Quiescent: a block has nothing below it; otherwise each side counts the child's
        non-zero sides, or one if the child is a block."""

        def handed_up(c: int, own: int, one: int) -> Any:
            # own = c's count field in w; one = one claim there.
            cl, cr = c & field_l != 0, c & field_r != 0
            return logic.and_(
                logic.implies(c & OCC != 0, own == one),
                logic.implies(logic.and_(c & OCC == 0, cl, cr), own == one + one),
                logic.implies(logic.and_(c & OCC == 0, logic.not_(cl), logic.not_(cr)), own == 0),
                logic.implies(logic.and_(c & OCC == 0, logic.not_(cl == cr)), own == one),
            )

        return _handed_up_ok(w, wl, wr, width, handed_up, logic)

    return dataclasses.replace(
        base,
        climb_stops=claimed,
        unmark_stops=claimed,
        node_ok=node_ok_stop_early,
        at_width=stop_early,
    )


STOP_EARLY = stop_early()
"""A rejected candidate: ``counted`` stopping its climb and its unmark early (issue 12)."""


def top_down(width: int = COUNT_BITS) -> Transitions:
    """``stop-early``'s words and transitions, with the claims written from the top down.

    The climb *reads* from the candidate's parent up to the *anchor*: the first ancestor
    whose side count is already non-zero (or the one at ``max_level``), failing at an
    occupied one having written nothing. It then *descends*, adding one at the anchor and
    at every node below it on the path (load, CAS). A count therefore becomes non-zero only
    after the claim that holds it up above was written, and (the free being ``stop-early``'s,
    bottom-up) stops being held up only after it is zero again: a non-zero count always has
    claims above it all the way to ``max_level``. A descent that finds a side already claimed
    by another has one claim too many above it and takes it back (one CAS on the parent); one
    that finds a node occupied takes back what it wrote above (the free's uncounting from
    there) and releases its candidate. Quiescent words are ``stop-early``'s.
    """
    return dataclasses.replace(stop_early(width), top_down=True, at_width=top_down)


TOP_DOWN = top_down()
"""Issue 12's candidate: ``stop-early`` made safe by writing the claims from the top down."""


def top_down_node(width: int = COUNT_BITS) -> Transitions:
    """``top-down`` with one token per *child* instead of one per child's side: cheaper.

    A side's count is ``[child is a block] + [child has any claim]``: a child's second side
    becoming claimed hands nothing up. So the anchor is the first ancestor with a claim on
    *either* side, a descent takes its claim back where the node already had any claim, and
    the free stops where the node keeps any claim. A page whose buddy is held anchors at its
    parent: the alloc counts one word, the free uncounts one (the published algorithm makes
    one more read-modify-write there).
    """
    field_r, field_l, _ = _count_fields(width)

    def nonempty(w: int, s: int) -> bool:
        """The node has a claim on some side (``s`` only fixes the signature)."""
        return w & (field_l | field_r) != 0

    def node_ok_node(w: int, wl: int, wr: int, logic: Any) -> Any:
        """Quiescent: a block has nothing below it; otherwise each side counts one for its
        child if the child is a block or has any claim."""

        def handed_up(c: int, own: int, one: int) -> Any:
            busy = c & OCC != 0
            some = c & (field_l | field_r) != 0
            return logic.and_(
                logic.implies(logic.or_(busy, some), own == one),
                logic.implies(logic.and_(logic.not_(busy), logic.not_(some)), own == 0),
            )

        return _handed_up_ok(w, wl, wr, width, handed_up, logic)

    return dataclasses.replace(
        top_down(width),
        climb_stops=nonempty,
        unmark_stops=nonempty,
        node_ok=node_ok_node,
        at_width=top_down_node,
    )


TOP_DOWN_NODE = top_down_node()
"""``top-down`` with a token per child rather than per child's side (ALGORITHM.md §1.4.3)."""

VARIANTS: dict[str, Transitions] = {
    "reference": PUBLISHED,
    "corrected": CORRECTED,
    "rollback_only": ROLLBACK_ONLY,
    "skip_only": SKIP_ONLY,
    "rollback_skip": ROLLBACK_SKIP,
    "rollback_skip_last": ROLLBACK_SKIP_LAST,
    "counted": COUNTED,
    "stop_early": STOP_EARLY,
    "top_down": TOP_DOWN,
    "top_down_node": TOP_DOWN_NODE,
}
"""The algorithms one may run, by name: ``reference`` is the published one (DESIGN.md),
``top_down_node`` the one we ship (ALGORITHM.md §1.4.3, §1.4.5), ``counted`` the one with the
most complete proof (§1); the others are the candidates on the way (``corrected`` the
five-bit repair), kept so their counterexamples replay."""

DEFAULT_VARIANT = "top_down_node"
"""The variant the allocator (and every checker, unless told) runs: the shipped one (issue 12,
ALGORITHM.md §1.4.5). It was ``counted`` until the switch; ``counted`` stays selectable."""

_OLD_NAMES = {"nbbs": "counted", **{k.replace("_", "-"): k for k in VARIANTS if "_" in k}}
"""Spellings used before the names were unified: ``rollback-only``, and ``nbbs``, which meant
``counted`` (the shipped variant then; not the default since the switch to ``top_down_node``)."""


def unknown_variant(name: object) -> str:
    """Why ``name`` is not a key of ``VARIANTS``: the known names, and the new name of an old spelling."""
    known = ", ".join(sorted(VARIANTS))
    new = _OLD_NAMES.get(name) if isinstance(name, str) else None
    if new is not None:
        return (
            f"unknown variant {name!r}: variant names are spelled with underscores (the shipped one is "
            f"{DEFAULT_VARIANT!r}); did you mean {new!r}? Known: {known}"
        )
    return f"unknown variant {name!r}; known: {known}"


def show(w: int) -> str:
    """A word in binary with its set bits named, e.g. ``10011 OCC|OCC_L|OCC_R``.

    A word wider than five bits is a ``counted``-layout word (every counting variant's,
    ``COUNT_BITS``-bit counts) and is shown with its counts, e.g. ``L=2 R=1``.
    """
    if w >> WORD_BITS:
        return COUNTED.show(w)
    names = "|".join(name for bit, name in NAMES if w & bit) or "-"
    return f"{w:05b} {names}"
