/* nbbs_bits.h: the status word of a node and every transition NBBS applies to it.
 *
 * A line-by-line mirror of model/bits.py (the one source of truth); tests/test_port_c.py
 * checks every function here against bits.py on many random words, through libnbbs.so.
 *
 *       4       3           2            1          0
 *     +-----+-----------+------------+----------+-----------+
 *     | OCC | COAL_LEFT | COAL_RIGHT | OCC_LEFT | OCC_RIGHT |      reference (published)
 *     +-----+-----------+------------+----------+-----------+
 *
 *      63 | 62 ........ 34 | 33 ........ 5 | 4 | 3 2 1 0
 *       0 |  c_L (29 bits) | c_R (29 bits) |OCC| (a block's OCC_L|OCC_R; else 0)   counted,
 *                                                                                top_down, top_down_node
 *
 * The three counted variants share the word and every transition (bits.top_down and
 * bits.top_down_node are dataclasses.replace of bits.counted); they differ only in two
 * predicates, climb_stops and unmark_stops, and in the order of the climb's accesses (the
 * Transitions.top_down flag, nbbs_top_down here).
 *
 * A side s is 1 for a left child, 0 for a right one (geometry.side): the left bit is the
 * right bit shifted by s, so nothing branches on the side.
 */
#ifndef NBBS_BITS_H
#define NBBS_BITS_H

#include <stdbool.h>
#include <stdint.h>

#define NBBS_OCC 0x10u
#define NBBS_COAL_LEFT 0x08u
#define NBBS_COAL_RIGHT 0x04u
#define NBBS_OCC_LEFT 0x02u
#define NBBS_OCC_RIGHT 0x01u
/* The word of an allocated block. */
#define NBBS_BUSY (NBBS_OCC | NBBS_OCC_LEFT | NBBS_OCC_RIGHT)

/* counted: where the counts start and how wide each is (bits.COUNT_SHIFT, bits.COUNT_BITS). */
#define NBBS_COUNT_SHIFT 5u
#define NBBS_COUNT_BITS 29u

/* The variants a port implements, by bits.VARIANTS name. */
typedef enum nbbs_variant {
    NBBS_COUNTED = 0,
    NBBS_REFERENCE = 1,
    NBBS_TOP_DOWN = 2,      /* bits.top_down: stop_early's counts, claims written from the top down */
    NBBS_TOP_DOWN_NODE = 3, /* bits.top_down_node: top_down with one token per child */
    NBBS_VARIANTS = 4
} nbbs_variant;

/* The word has counts above OCC (bits.counted and the variants made from it): every variant but reference. */
static inline bool nbbs_counts(nbbs_variant v) { return v != NBBS_REFERENCE; }

/* The climb reads up to an anchor, then writes from there down (bits.Transitions.top_down). */
static inline bool nbbs_top_down(nbbs_variant v) { return v == NBBS_TOP_DOWN || v == NBBS_TOP_DOWN_NODE; }

static inline uint64_t nbbs_occ_bit(unsigned s) { return (uint64_t)NBBS_OCC_RIGHT << s; }
static inline uint64_t nbbs_coal_bit(unsigned s) { return (uint64_t)NBBS_COAL_RIGHT << s; }
static inline unsigned nbbs_other(unsigned s) { return s ^ 1u; }

/* counted: one claim on side s, and the field of side s's count. */
static inline uint64_t nbbs_one(unsigned s) { return (uint64_t)1 << (NBBS_COUNT_SHIFT + s * NBBS_COUNT_BITS); }
static inline uint64_t nbbs_field(unsigned s) {
    return ((((uint64_t)1 << NBBS_COUNT_BITS) - 1) << NBBS_COUNT_SHIFT) << (s * NBBS_COUNT_BITS);
}

/* top_down: side s has a claim (bits.stop_early's `claimed`: w & field(s) != 0). */
static inline bool nbbs_side_claimed(uint64_t w, unsigned s) { return (w & nbbs_field(s)) != 0; }

/* top_down_node: the node has a claim on some side (bits.top_down_node's `nonempty`:
 * w & (field_l | field_r) != 0; s only fixes the signature there). */
static inline bool nbbs_nonempty(uint64_t w) { return (w & (nbbs_field(0) | nbbs_field(1))) != 0; }

/* Occupy's expectation: nothing in or under the node (both variants). */
static inline bool nbbs_is_free(uint64_t w) { return w == 0; }

/* The node is an allocated block (or being claimed by an alloc in flight). */
static inline bool nbbs_is_occupied(uint64_t w) { return (w & NBBS_OCC) != 0; }

/* Claim a free node as a block: 0 -> BUSY. */
static inline uint64_t nbbs_occupy(uint64_t w) { return (w & 0) | NBBS_BUSY; }

/* An alloc passes up through side s. reference: set OCC_s, clear COAL_s; counted: count one claim. */
static inline uint64_t nbbs_climb(nbbs_variant v, uint64_t w, unsigned s) {
    if (nbbs_counts(v)) return w + nbbs_one(s);
    return (w | nbbs_occ_bit(s)) & ~nbbs_coal_bit(s);
}

/* reference: what mark ORs into the parent (a fetch-or): COAL_s. */
static inline uint64_t nbbs_mark_mask(unsigned s) { return nbbs_coal_bit(s); }

/* reference: mark stops here, the other side is occupied and not coalescing (old: the word before). */
static inline bool nbbs_buddy_keeps_busy(uint64_t old, unsigned s) {
    unsigned o = nbbs_other(s);
    return (old & (nbbs_occ_bit(o) | nbbs_coal_bit(o))) == nbbs_occ_bit(o);
}

/* A free gives the block back: BUSY -> 0. */
static inline uint64_t nbbs_release(uint64_t w) { return w & 0; }

/* Unmark may take side s's claim off: counted (all three), side s has a count; reference, COAL_s is still set. */
static inline bool nbbs_unmark_applies(nbbs_variant v, uint64_t w, unsigned s) {
    if (nbbs_counts(v)) return nbbs_side_claimed(w, s);
    return (w & nbbs_coal_bit(s)) != 0;
}

/* A free (or rollback) takes its claim off side s. reference: clear COAL_s and OCC_s; counted: uncount. */
static inline uint64_t nbbs_unmark(nbbs_variant v, uint64_t w, unsigned s) {
#ifdef NBBS_DEFECT_SET_NOT_CLEAR
    /* DEFECT SET_NOT_CLEAR (the crate's): sets the bits it should clear (counted: ORs the claim
     * in instead of subtracting it). The path stays claimed after the last free: the subtree leaks,
     * and a later alloc of the freed ancestor returns none although the arena is empty. */
    if (nbbs_counts(v)) return w | nbbs_one(s);
    return w | (nbbs_coal_bit(s) | nbbs_occ_bit(s));
#else
    if (nbbs_counts(v)) return w - nbbs_one(s);
    return w & ~(nbbs_coal_bit(s) | nbbs_occ_bit(s));
#endif
}

/* Unmark stops after this node. reference: the other side is still occupied; counted: never;
 * top_down: side s's count stays non-zero (the node still hands a token up for that side);
 * top_down_node: the node keeps a claim on some side (it still hands its one token up). */
static inline bool nbbs_unmark_stops(nbbs_variant v, uint64_t new_word, unsigned s) {
    switch (v) {
    case NBBS_COUNTED: return false;
    case NBBS_TOP_DOWN: return nbbs_side_claimed(new_word, s);
    case NBBS_TOP_DOWN_NODE: return nbbs_nonempty(new_word);
    default: return (new_word & nbbs_occ_bit(nbbs_other(s))) != 0;
    }
}

/* bits.Transitions.climb_stops, of the word old a climb found on side s. top_down: the anchor
 * test (the side already has a claim, so a token above holds it up) and, below the anchor, a
 * descent's "another claimed this side first" (our token on the parent is one too many);
 * top_down_node: the same with any claim on the node. counted, reference: never. */
static inline bool nbbs_climb_stops(nbbs_variant v, uint64_t old, unsigned s) {
    switch (v) {
    case NBBS_TOP_DOWN: return nbbs_side_claimed(old, s);
    case NBBS_TOP_DOWN_NODE: return nbbs_nonempty(old);
    default: return false;
    }
}

/* Whether a free marks before it unmarks: reference does, the counted variants have no mark phase. */
static inline bool nbbs_marks(nbbs_variant v) { return v == NBBS_REFERENCE; }

/* Whether the release is a CAS from the block's word as the free found it (counted: of two
 * frees racing on one block, exactly one gets it; a rollback expects occupy(0)), or the
 * published plain store of release(BUSY) (reference). The bundle flag release_cas of bits.py. */
static inline bool nbbs_release_cas(nbbs_variant v) { return nbbs_counts(v); }

#endif
