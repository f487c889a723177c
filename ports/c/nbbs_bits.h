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
 *       0 |  c_L (29 bits) | c_R (29 bits) |OCC| (a block's OCC_L|OCC_R; else 0)   counted
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
typedef enum nbbs_variant { NBBS_COUNTED = 0, NBBS_REFERENCE = 1 } nbbs_variant;

static inline uint64_t nbbs_occ_bit(unsigned s) { return (uint64_t)NBBS_OCC_RIGHT << s; }
static inline uint64_t nbbs_coal_bit(unsigned s) { return (uint64_t)NBBS_COAL_RIGHT << s; }
static inline unsigned nbbs_other(unsigned s) { return s ^ 1u; }

/* counted: one claim on side s, and the field of side s's count. */
static inline uint64_t nbbs_one(unsigned s) { return (uint64_t)1 << (NBBS_COUNT_SHIFT + s * NBBS_COUNT_BITS); }
static inline uint64_t nbbs_field(unsigned s) {
    return ((((uint64_t)1 << NBBS_COUNT_BITS) - 1) << NBBS_COUNT_SHIFT) << (s * NBBS_COUNT_BITS);
}

/* Occupy's expectation: nothing in or under the node (both variants). */
static inline bool nbbs_is_free(uint64_t w) { return w == 0; }

/* The node is an allocated block (or being claimed by an alloc in flight). */
static inline bool nbbs_is_occupied(uint64_t w) { return (w & NBBS_OCC) != 0; }

/* Claim a free node as a block: 0 -> BUSY. */
static inline uint64_t nbbs_occupy(uint64_t w) { return (w & 0) | NBBS_BUSY; }

/* An alloc passes up through side s. reference: set OCC_s, clear COAL_s; counted: count one claim. */
static inline uint64_t nbbs_climb(nbbs_variant v, uint64_t w, unsigned s) {
    if (v == NBBS_COUNTED) return w + nbbs_one(s);
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

/* Unmark may take side s's claim off: counted, side s has a count; reference, COAL_s is still set. */
static inline bool nbbs_unmark_applies(nbbs_variant v, uint64_t w, unsigned s) {
    if (v == NBBS_COUNTED) return (w & nbbs_field(s)) != 0;
    return (w & nbbs_coal_bit(s)) != 0;
}

/* A free (or rollback) takes its claim off side s. reference: clear COAL_s and OCC_s; counted: uncount. */
static inline uint64_t nbbs_unmark(nbbs_variant v, uint64_t w, unsigned s) {
#ifdef NBBS_DEFECT_SET_NOT_CLEAR
    /* DEFECT SET_NOT_CLEAR (the crate's): sets the bits it should clear (counted: ORs the claim
     * in instead of subtracting it). The path stays claimed after the last free: the subtree leaks,
     * and a later alloc of the freed ancestor returns none although the arena is empty. */
    if (v == NBBS_COUNTED) return w | nbbs_one(s);
    return w | (nbbs_coal_bit(s) | nbbs_occ_bit(s));
#else
    if (v == NBBS_COUNTED) return w - nbbs_one(s);
    return w & ~(nbbs_coal_bit(s) | nbbs_occ_bit(s));
#endif
}

/* Unmark stops after this node. reference: the other side is still occupied; counted: never. */
static inline bool nbbs_unmark_stops(nbbs_variant v, uint64_t new_word, unsigned s) {
    if (v == NBBS_COUNTED) return false;
    return (new_word & nbbs_occ_bit(nbbs_other(s))) != 0;
}

/* Whether a free marks before it unmarks: reference does, counted has no mark phase. */
static inline bool nbbs_marks(nbbs_variant v) { return v == NBBS_REFERENCE; }

/* Whether the release is a CAS from the block's word as the free found it (counted: of two
 * frees racing on one block, exactly one gets it; a rollback expects occupy(0)), or the
 * published plain store of release(BUSY) (reference). The bundle flag release_cas of bits.py. */
static inline bool nbbs_release_cas(nbbs_variant v) { return v == NBBS_COUNTED; }

#endif
