/* nbbs.h: NBBS, the non-blocking buddy system, in C11 (a port of impl/nbbs.py).
 *
 * An arena of 2**depth pages of page_size bytes from address start; blocks of 2**order pages,
 * order <= max_order. One 64-bit atomic word per tree node, node 1 the root, index 0 unused,
 * in memory the caller provides (nbbs_words_bytes tells how much), so the words may live in a
 * shared-memory segment. Any number of threads may call nbbs_alloc and nbbs_free at once.
 *
 * Every call returns an nbbs_status: NBBS_OK, NBBS_NO_BLOCK (alloc found nothing), or an error
 * mirroring nbbs.impl.errors (nbbs_status_name gives the Python class name). An error is
 * decided before any word is written, so a refused call leaves the arena as it was.
 */
#ifndef NBBS_H
#define NBBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nbbs_atomics.h"
#include "nbbs_bits.h"

/* The deepest tree (impl/arena.py MAX_DEPTH): 2**29 words, 4 GiB. */
#define NBBS_MAX_DEPTH 28

/* "No hint": the scan starts where this thread's last allocation of the order succeeded. */
#define NBBS_NO_HINT INT64_MIN
/* "Order not given" to nbbs_free: the order is found from the tree (a negative order is an OrderError). */
#define NBBS_ANY_ORDER INT64_MIN

typedef enum nbbs_status {
    NBBS_OK = 0,
    NBBS_NO_BLOCK = 1,              /* alloc: no block could be had (Python: None) */
    NBBS_E_CONFIGURATION = 2,       /* ConfigurationError */
    NBBS_E_ORDER = 3,               /* OrderError */
    NBBS_E_SIZE = 4,                /* SizeError */
    NBBS_E_FOREIGN_ADDRESS = 5,     /* ForeignAddressError */
    NBBS_E_MISALIGNED_ADDRESS = 6,  /* MisalignedAddressError */
    NBBS_E_INTERIOR_ADDRESS = 7,    /* InteriorAddressError */
    NBBS_E_DOUBLE_FREE = 8,         /* DoubleFreeError */
    NBBS_E_WRONG_ORDER = 9          /* WrongOrderError */
} nbbs_status;

/* The nbbs.impl.errors class name of an error status ("" for NBBS_OK and NBBS_NO_BLOCK). */
const char *nbbs_status_name(nbbs_status status);

/* The variant of a bits.VARIANTS name (its nbbs_variant number), or -1 if the port lacks it. */
int nbbs_variant_named(const char *name);

/* An arena handle: process-local (the words it points at may be shared). */
typedef struct nbbs {
    nbbs_word *words;
    uint64_t page_size;
    uint64_t start;
    unsigned depth;
    unsigned max_order;
    unsigned max_level; /* depth - max_order: the highest level climbs and unmarks touch */
    nbbs_variant variant;
    uint64_t id;              /* tells this handle's per-thread scan state from another's */
    _Atomic unsigned next_tid; /* threads are numbered in the order of their first hintless alloc */
} nbbs_t;

/* Bytes of word memory an arena of this depth needs: 8 * 2**(depth + 1) (0 if depth > 28). */
size_t nbbs_words_bytes(unsigned depth);

/* Check the shape without touching memory: NBBS_OK or NBBS_E_CONFIGURATION (as impl/arena.py:
 * depth 0..28, page_size a power of two, max_order 0..depth, start aligned to the largest
 * block; and, unlike Python, the arena must end below 2**64). max_order < 0 means depth. */
nbbs_status nbbs_check_shape(unsigned depth, uint64_t page_size, uint64_t start, int max_order);

/* A new, empty arena over words (nbbs_words_bytes(depth) bytes, 8-byte aligned): zeroes them. */
nbbs_status nbbs_init(nbbs_t *a, void *words, unsigned depth, uint64_t page_size, uint64_t start, int max_order,
                      nbbs_variant variant);

/* A handle on words that are already live (another process's arena, or fresh zero memory). */
nbbs_status nbbs_attach(nbbs_t *a, void *words, unsigned depth, uint64_t page_size, uint64_t start, int max_order,
                        nbbs_variant variant);

/* Allocate 2**order pages: NBBS_OK with *addr set, NBBS_NO_BLOCK, or NBBS_E_ORDER.
 * hint: the first position of the scan on the order's level (taken modulo its width, negative
 * values as Python's %), or NBBS_NO_HINT. */
nbbs_status nbbs_alloc(nbbs_t *a, int64_t order, int64_t hint, uint64_t *addr);

/* The order a block of size bytes needs (the paper's rounding): NBBS_OK or NBBS_E_SIZE. */
nbbs_status nbbs_order_for_bytes(const nbbs_t *a, uint64_t size, unsigned *order);

/* Give back the live block at addr: NBBS_OK or an address/order error (order NBBS_ANY_ORDER:
 * whatever order the live block has). counted releases with a CAS from the word the argument
 * check read: of two frees of one block racing, one gets NBBS_E_DOUBLE_FREE, having written
 * nothing (reference stores, as published). */
nbbs_status nbbs_free(nbbs_t *a, uint64_t addr, int64_t order);

/* The word of node n, read without going through the controlled hooks (for `words`). */
uint64_t nbbs_peek(const nbbs_t *a, uint64_t node);

/* Node count of the word array: 2**(depth + 1) (index 0 unused). */
uint64_t nbbs_node_count(unsigned depth);

/* For tests: apply one transition of nbbs_bits.h (which: see nbbs.c) to w on side s. */
uint64_t nbbs_transition(int variant, int which, uint64_t w, unsigned s);

#endif
