/* nbbs.c: NBBS in C11, access for access the same as impl/nbbs.py and model/steps.py.
 *
 * Word transitions come from nbbs_bits.h (the mirror of model/bits.py), every shared access
 * goes through nbbs_atomics.h; the tree arithmetic below mirrors model/geometry.py:
 *
 *     level 0                 1
 *                       /           \
 *     level 1         2               3          parent(n) = n >> 1   side(n) = (n & 1) ^ 1
 *                   /   \           /   \        level(n) = floor(log2 n)
 *     level 2      4     5         6     7       first_page(n) = (n - 2**l) << (depth - l)
 *
 * Defect flags (-DNBBS_DEFECT_<NAME>) break one thing each, for the harness to find
 * (ports/c/README.md lists them); each is marked DEFECT where it acts.
 */
#include "nbbs.h"

#include <string.h>

nbbs_announce_hook nbbs_announce_ = NULL;
nbbs_report_hook nbbs_report_ = NULL;
_Thread_local uint64_t nbbs_counts_[NBBS_ACC_KINDS];

void nbbs_set_hooks(nbbs_announce_hook announce, nbbs_report_hook report) {
    nbbs_announce_ = announce;
    nbbs_report_ = report;
}

void nbbs_access_counts(uint64_t out[NBBS_ACC_KINDS]) { memcpy(out, nbbs_counts_, sizeof nbbs_counts_); }

void nbbs_reset_access_counts(void) { memset(nbbs_counts_, 0, sizeof nbbs_counts_); }

const char *nbbs_access_name(nbbs_access kind) {
    static const char *const names[NBBS_ACC_KINDS] = {"load", "cas", "cas_fail", "fetch_or", "fetch_and", "store"};
    return (unsigned)kind < NBBS_ACC_KINDS ? names[kind] : "?";
}

static const char *const variant_names[NBBS_VARIANTS] = {"counted", "reference", "top_down", "top_down_node"};

int nbbs_variant_named(const char *name) {
    for (int v = 0; v < NBBS_VARIANTS; v++)
        if (strcmp(name, variant_names[v]) == 0) return v;
    return -1;
}

const char *nbbs_status_name(nbbs_status status) {
    switch (status) {
    case NBBS_E_CONFIGURATION: return "ConfigurationError";
    case NBBS_E_ORDER: return "OrderError";
    case NBBS_E_SIZE: return "SizeError";
    case NBBS_E_FOREIGN_ADDRESS: return "ForeignAddressError";
    case NBBS_E_MISALIGNED_ADDRESS: return "MisalignedAddressError";
    case NBBS_E_INTERIOR_ADDRESS: return "InteriorAddressError";
    case NBBS_E_DOUBLE_FREE: return "DoubleFreeError";
    case NBBS_E_WRONG_ORDER: return "WrongOrderError";
    default: return "";
    }
}

/* -- tree arithmetic (model/geometry.py) ----------------------------------------------------- */

static inline uint64_t parent(uint64_t n) { return n >> 1; }
static inline unsigned side(uint64_t n) { return (unsigned)((n & 1) ^ 1); }
/* (Node 0 only under NARROW_INDEX, whose wrapped index may reach it: level 0, not undefined.) */
static inline unsigned level(uint64_t n) { return n ? 63u - (unsigned)__builtin_clzll(n) : 0; }
static inline uint64_t first_node(unsigned lvl) { return (uint64_t)1 << lvl; }
static inline uint64_t width(unsigned lvl) { return (uint64_t)1 << lvl; }

static inline uint64_t first_page(unsigned depth, uint64_t n) {
    unsigned l = level(n);
    return (n - first_node(l)) << (depth - l);
}

/* The node of order o whose block starts at (or contains) page. */
static inline uint64_t node_of(unsigned depth, uint64_t page, unsigned o) {
    unsigned lvl = depth - o;
#ifdef NBBS_DEFECT_WRONG_SHIFT
    /* DEFECT WRONG_SHIFT: shifts the page by the level instead of the order. Right only where
     * level == order or page 0: a free of another block looks at the wrong node and is
     * refused (DoubleFreeError, InteriorAddressError), or frees a block it was not given. */
    return first_node(lvl) + (page >> lvl);
#else
    return first_node(lvl) + (page >> o);
#endif
}

/* The first node of level lvl right of a's subtree: where a scan goes on after a failed climb. */
static inline uint64_t after_subtree(uint64_t a, unsigned lvl) { return (a + 1) << (lvl - level(a)); }

uint64_t nbbs_node_count(unsigned depth) { return (uint64_t)2 << depth; }

size_t nbbs_words_bytes(unsigned depth) {
    if (depth > NBBS_MAX_DEPTH) return 0;
    return (size_t)nbbs_node_count(depth) * sizeof(nbbs_word);
}

/* -- the arena ---------------------------------------------------------------------------------- */

static _Atomic uint64_t next_arena_id = 1;

nbbs_status nbbs_check_shape(unsigned depth, uint64_t page_size, uint64_t start, int max_order) {
    if (depth > NBBS_MAX_DEPTH) return NBBS_E_CONFIGURATION;
    if (page_size == 0 || (page_size & (page_size - 1)) != 0) return NBBS_E_CONFIGURATION;
    if (max_order > (int)depth) return NBBS_E_CONFIGURATION;
    unsigned top = max_order < 0 ? depth : (unsigned)max_order;
    unsigned page_shift = (unsigned)__builtin_ctzll(page_size);
    if (page_shift + depth > 63) return NBBS_E_CONFIGURATION; /* the arena must fit 64-bit addresses */
    uint64_t largest = page_size << top, size = page_size << depth;
    if (start % largest != 0) return NBBS_E_CONFIGURATION;
    if (start > UINT64_MAX - size + 1) return NBBS_E_CONFIGURATION;
    return NBBS_OK;
}

nbbs_status nbbs_attach(nbbs_t *a, void *words, unsigned depth, uint64_t page_size, uint64_t start, int max_order,
                        nbbs_variant variant) {
    nbbs_status st = nbbs_check_shape(depth, page_size, start, max_order);
    if (st != NBBS_OK) return st;
    if ((unsigned)variant >= NBBS_VARIANTS) return NBBS_E_CONFIGURATION;
    a->words = (nbbs_word *)words;
    a->page_size = page_size;
    a->start = start;
    a->depth = depth;
    a->max_order = max_order < 0 ? depth : (unsigned)max_order;
    a->max_level = depth - a->max_order;
    a->variant = variant;
    a->id = atomic_fetch_add(&next_arena_id, 1);
    atomic_init(&a->next_tid, 0);
    return NBBS_OK;
}

nbbs_status nbbs_init(nbbs_t *a, void *words, unsigned depth, uint64_t page_size, uint64_t start, int max_order,
                      nbbs_variant variant) {
    nbbs_status st = nbbs_attach(a, words, depth, page_size, start, max_order, variant);
    if (st != NBBS_OK) return st;
    for (uint64_t i = 0; i < nbbs_node_count(depth); i++) atomic_init(&a->words[i], 0);
    return NBBS_OK;
}

uint64_t nbbs_peek(const nbbs_t *a, uint64_t node) {
    return atomic_load_explicit(&a->words[node], memory_order_seq_cst);
}

static inline uint64_t address(const nbbs_t *a, uint64_t n) {
#ifdef NBBS_DEFECT_IGNORE_START
    /* DEFECT IGNORE_START: the address is the offset, start forgotten (the crate's defect).
     * With start != 0 alloc hands out addresses outside the arena, which free then refuses. */
    return first_page(a->depth, n) * a->page_size;
#else
    return a->start + first_page(a->depth, n) * a->page_size;
#endif
}

/* -- per-thread scan state -----------------------------------------------------------------------
 * impl/nbbs.py keeps, per thread and allocator, a thread number (in the order of the threads'
 * first hintless allocs) and per level where its last allocation succeeded. Here: a few slots
 * per thread, keyed by the handle's id; a thread using more arenas than slots starts afresh on
 * the one evicted (a new number, spread again). */

#define NBBS_SLOTS 8

typedef struct scan_state {
    uint64_t arena_id; /* 0: slot unused */
    unsigned tid;
    int64_t last[NBBS_MAX_DEPTH + 1]; /* -1: not yet chosen */
} scan_state;

static _Thread_local scan_state slots[NBBS_SLOTS];
static _Thread_local unsigned next_slot;

static scan_state *scan_state_of(nbbs_t *a) {
    for (unsigned i = 0; i < NBBS_SLOTS; i++)
        if (slots[i].arena_id == a->id) return &slots[i];
    scan_state *s = &slots[next_slot++ % NBBS_SLOTS];
    s->arena_id = a->id;
    s->tid = atomic_fetch_add(&a->next_tid, 1);
    for (unsigned l = 0; l <= NBBS_MAX_DEPTH; l++) s->last[l] = -1;
    return s;
}

/* Thread tid's first position on a level of 2**lvl nodes: tid's low lvl bits reversed
 * (impl/nbbs.py _spread): threads 0, 1, 2, 3 start at 0, 1/2, 1/4, 3/4 of the level. */
static uint64_t spread(unsigned tid, unsigned lvl) {
    uint64_t t = tid & (width(lvl) - 1), r = 0;
    for (unsigned i = 0; i < lvl; i++) r |= ((t >> i) & 1) << (lvl - 1 - i);
    return r;
}

/* -- the algorithm (impl/nbbs.py, model/steps.py) ---------------------------------------------- */

static bool free_node(nbbs_t *a, uint64_t n, unsigned top_level);

/* Climb from n up to max_level, counting (reference: setting) n's claim in each ancestor.
 * Returns 0, or the occupied ancestor that stopped the climb (steps.py C_LOAD, C_CAS). */
static uint64_t climb(nbbs_t *a, uint64_t n) {
    uint64_t child = n;
    while (level(child) > a->max_level) {
        uint64_t p = parent(child);
        unsigned s = side(child);
        for (;;) {
            uint64_t cur = nbbs_load(a->words, p);
            if (nbbs_is_occupied(cur)) return p;
            uint64_t new_word = nbbs_climb(a->variant, cur, s);
            if (new_word == cur) break;
#if defined(NBBS_DEFECT_STORE_CLIMB)
            /* DEFECT STORE_CLIMB: a plain store where the climb needs a CAS. A claim counted
             * (or an OCC set) by another thread between the load and the store is lost:
             * an ancestor then looks free above a live block, and two blocks overlap. */
            nbbs_store(a->words, p, new_word);
            break;
#elif defined(NBBS_DEFECT_NO_CAS_RETRY)
            /* DEFECT NO_CAS_RETRY: the CAS's failure is ignored, not retried. A climb that
             * races with another access to the same ancestor leaves its claim uncounted. */
            (void)nbbs_cas(a->words, p, cur, new_word);
            break;
#else
            if (nbbs_cas(a->words, p, cur, new_word)) break;
#endif
        }
        child = p;
    }
    return 0;
}

/* reference: announce the coalescing from child up to the first ancestor the buddy keeps busy. */
static void mark(nbbs_t *a, uint64_t child, unsigned top_level) {
    while (level(child) > top_level) {
        uint64_t p = parent(child);
        unsigned s = side(child);
        uint64_t old = nbbs_fetch_or(a->words, p, nbbs_mark_mask(s));
        child = p;
        if (nbbs_buddy_keeps_busy(old, s)) return;
    }
}

/* Take n's claim off its path up to top_level (steps.py F_ULOAD, F_UCAS). counted uncounts
 * every ancestor; reference clears while its COAL bit is there, stopping at a busy buddy. */
static void unmark(nbbs_t *a, uint64_t n, unsigned top_level) {
    uint64_t child = n;
    while (level(child) > top_level) {
        uint64_t p = parent(child);
        unsigned s = side(child);
        uint64_t new_word;
        for (;;) {
            uint64_t cur = nbbs_load(a->words, p);
            if (!nbbs_unmark_applies(a->variant, cur, s)) return;
            new_word = nbbs_unmark(a->variant, cur, s);
            if (nbbs_cas(a->words, p, cur, new_word)) break;
        }
        if (nbbs_unmark_stops(a->variant, new_word, s)) return;
        child = p;
    }
}

/* Release block n, whose word was found to be `expected`: counted CASes it to release(expected)
 * and fails if another free released it first; reference stores release(BUSY), as published. */
static bool release(nbbs_t *a, uint64_t n, uint64_t expected) {
#ifdef NBBS_DEFECT_STORE_RELEASE
    /* DEFECT STORE_RELEASE: counted releases with a plain store (model/steps.py's F_RELEASE
     * before release_cas): of two frees of one block racing, both pass the check and both
     * succeed, each taking a claim off the path: the counts go wrong and a block above can be
     * handed out twice. */
    (void)expected;
    nbbs_store(a->words, n, nbbs_release(NBBS_BUSY));
    return true;
#else
    if (nbbs_release_cas(a->variant)) return nbbs_cas(a->words, n, expected, nbbs_release(expected));
    nbbs_store(a->words, n, nbbs_release(NBBS_BUSY));
    return true;
#endif
}

/* An alloc's rollback of n, bounded below the ancestor that failed its climb: mark
 * (reference), release (expecting the word its own occupy wrote), unmark. False if the release
 * lost, which only a free of n by another thread (a double free of a block nobody was given)
 * can cause: the alloc then gives up, as model/steps.py's rollback does. */
static bool free_node(nbbs_t *a, uint64_t n, unsigned top_level) {
    if (nbbs_marks(a->variant)) mark(a, n, top_level);
    if (!release(a, n, nbbs_occupy(0))) return false;
    unmark(a, n, top_level);
    return true;
}

/* The top_down climb (impl/nbbs.py _climb_top_down; steps.py C_LOAD, D_CAS, D_LOAD, U_LOAD,
 * U_CAS), for top_down and top_down_node. Two passes:
 *
 *   ascend   loads only, from n's parent up to the *anchor*: the first ancestor whose word
 *            already shows a claim (climb_stops: the side's count for top_down, either count
 *            for top_down_node), or the one at max_level. An occupied ancestor fails the alloc
 *            having written nothing but n.
 *   descend  load + CAS from the anchor back down to n's parent, adding one claim at each.
 *            A count thus becomes non-zero only after the token holding it up above exists,
 *            which is the whole safety argument (ALGORITHM.md §1.4.2): nothing is ever read
 *            as "held up above" before it is.
 *
 * Returns 0 on success; else the occupied node that stopped the climb, with *wrote telling
 * whether the descent had counted the path above it (the rollback must then uncount from it
 * up, the free's loop). Every access is seq_cst (nbbs_atomics.h): the anchor test, the
 * "joined" test and the "anchor gone" test are decisions on a loaded or CASed word, argued by
 * the model checker and z3 over one total order of accesses; weaker orders would allow
 * executions (store buffering between an ascent's loads and another thread's descent CASes)
 * that no interleaving shows and that nothing of ours has checked. */
static uint64_t climb_top_down(nbbs_t *a, uint64_t n, bool *wrote) {
    nbbs_variant v = a->variant;
    uint64_t child = n;
    *wrote = false;
    while (level(child) > a->max_level) {
        /* Ascend (C_LOAD): a load of the parent decides fail, go up, or turn at the anchor.
         * seq_cst: "go up" and "fail" rest on this load alone (a stale "claimed" is caught by
         * the anchor's CAS below, but nothing re-reads a node we pass by). */
        uint64_t p = parent(child);
        unsigned s = side(child);
        uint64_t cur = nbbs_load(a->words, p);
        if (nbbs_is_occupied(cur)) return p;
        if (level(p) > a->max_level && !nbbs_climb_stops(v, cur, s)) {
            child = p;
            continue;
        }
        unsigned top = level(p);
        /* Descend: count every node from the anchor (level top) down to n's parent. */
        uint64_t x;
        for (;;) {
            x = parent(child);
            s = side(child);
            /* D_CAS: from the word just loaded; only a word without OCC gets here. seq_cst:
             * the count it makes non-zero is what other ascents anchor on with a plain load,
             * trusting the token this thread wrote above it first; that order (above before
             * below) is what the proofs rely on, and they assume one total order of accesses. */
            if (!nbbs_cas(a->words, x, cur, nbbs_climb(v, cur, s))) {
                cur = nbbs_load(a->words, x); /* D_LOAD, seq_cst: decides rollback or re-ascent */
                if (nbbs_is_occupied(cur)) {
                    *wrote = level(x) != top;
                    return x;
                }
                /* The anchor's claims left while our CAS failed: it holds nothing up any more,
                 * so climbing from there again is the only way to find a token above. */
                if (level(x) == top && top > a->max_level && !nbbs_climb_stops(v, cur, s)) break;
                continue;
            }
#ifdef NBBS_DEFECT_KEEP_SURPLUS
            /* DEFECT KEEP_SURPLUS: a descent that joins a side another descent claimed first keeps
             * its claim on the parent. That token is one too many: after both blocks are freed
             * the parent still counts a claim, so nothing above it can be allocated again (a
             * block lost for good; the model's test_a_top_down_descent_that_never_gives_back_a_
             * surplus_claim_loses_blocks). Only two descents racing show it. */
            if (false) {
#else
            if (level(x) != top && nbbs_climb_stops(v, cur, s)) {
#endif
                /* Another descent claimed this side (node) first: it handed a token up to
                 * parent(x) already, so ours there is one too many. Take it back (U_LOAD,
                 * U_CAS): the invariant counts a join's surplus as a token in flight. */
                uint64_t q = parent(x);
                unsigned sq = side(x);
                for (;;) {
                    /* U_LOAD only supplies the CAS's expected word (relaxed would do; the shim
                     * has one order); U_CAS gives a claim back, as an unmark does. */
                    uint64_t u = nbbs_load(a->words, q);
                    if (nbbs_cas(a->words, q, u, nbbs_unmark(v, u, sq))) break;
                }
            }
            if (child == n) return 0; /* the CAS on n's parent was the last: the alloc took effect */
            /* Down one level (D_LOAD of the node just below x on n's path; seq_cst, as above). */
            child = n >> (level(n) - (level(child) + 1));
            cur = nbbs_load(a->words, parent(child));
            if (nbbs_is_occupied(cur)) {
                *wrote = true;
                return parent(child);
            }
        }
        child = x; /* ascend again from the old anchor */
    }
    return 0;
}

#ifdef NBBS_DEFECT_NARROW_INDEX
/* DEFECT NARROW_INDEX: a 16-bit node index in the scan. From depth 16 on, the nodes of the
 * deepest level (2**16 and up) wrap to small indices: order-0 allocs occupy inner nodes. */
typedef uint16_t scan_index;
#else
typedef uint64_t scan_index;
#endif

/* Scan level lvl once round-robin from the start position; the node occupied and climbed, or 0. */
static uint64_t alloc_node(nbbs_t *a, unsigned lvl, int64_t hint) {
    uint64_t first = first_node(lvl), size = width(lvl);
    scan_state *st = NULL;
    uint64_t pos;
    if (hint == NBBS_NO_HINT) {
        st = scan_state_of(a);
        if (st->last[lvl] < 0) st->last[lvl] = (int64_t)spread(st->tid, lvl);
        pos = (uint64_t)st->last[lvl];
    } else {
        /* Python's hint % size: non-negative for a negative hint too (size is a power of two). */
        pos = (uint64_t)hint & (size - 1);
    }
    uint64_t scanned = 0;
    while (scanned < size) {
        scan_index n = (scan_index)(first + pos);
        uint64_t cur = nbbs_load(a->words, n);
        if (nbbs_is_free(cur) && nbbs_cas(a->words, n, cur, nbbs_occupy(cur))) {
            bool top_down = nbbs_top_down(a->variant), wrote = false;
            uint64_t failed = top_down ? climb_top_down(a, n, &wrote) : climb(a, n);
            if (failed == 0) {
                if (st != NULL) st->last[lvl] = (int64_t)pos;
                return n;
            }
            /* Undo below the occupied ancestor, then skip its whole subtree. */
            if (!top_down) {
                if (!free_node(a, n, level(failed) + 1)) return 0;
            } else {
                /* top_down: release n (expecting occupy's word), then, if the descent counted
                 * the path above failed, uncount from failed up as a free does. */
                if (!release(a, n, nbbs_occupy(0))) return 0;
                if (wrote) unmark(a, failed, a->max_level);
            }
            uint64_t nxt = after_subtree(failed, lvl) - first;
            scanned += nxt - pos;
            pos = nxt & (size - 1);
        } else {
            scanned += 1;
            pos = (pos + 1) & (size - 1);
        }
    }
    return 0;
}

nbbs_status nbbs_alloc(nbbs_t *a, int64_t order, int64_t hint, uint64_t *addr) {
    /* Kept under NO_ARG_CHECKS too: without it the level below would be out of the tree. */
    if (order < 0 || order > (int64_t)a->max_order) return NBBS_E_ORDER;
    uint64_t n = alloc_node(a, a->depth - (unsigned)order, hint);
    if (n == 0) return NBBS_NO_BLOCK;
    *addr = address(a, n);
    return NBBS_OK;
}

nbbs_status nbbs_order_for_bytes(const nbbs_t *a, uint64_t size, unsigned *order) {
    if (size == 0) return NBBS_E_SIZE;
    uint64_t pages = size / a->page_size + (size % a->page_size != 0);
    unsigned o = pages <= 1 ? 0 : 64u - (unsigned)__builtin_clzll(pages - 1);
    if (o > a->max_order) return NBBS_E_SIZE;
    *order = o;
    return NBBS_OK;
}

nbbs_status nbbs_free(nbbs_t *a, uint64_t addr, int64_t order) {
    uint64_t size = a->page_size << a->depth;
#ifdef NBBS_DEFECT_NO_ARG_CHECKS
    /* DEFECT NO_ARG_CHECKS: free trusts its caller (the crate's defect). The address is only
     * wrapped into the arena (for memory safety) and the node given, or the first occupied one
     * found, or else the page itself, is freed: a double free, a foreign or interior address
     * or a wrong order corrupts the counts and frees blocks someone holds. */
    uint64_t page = ((addr - a->start) & (size - 1)) / a->page_size;
    uint64_t n = 0, w = NBBS_BUSY;
    if (order >= 0 && order <= (int64_t)a->max_order) {
        n = node_of(a->depth, page, (unsigned)order);
    } else {
        for (int o = (int)a->max_order; o >= 0 && n == 0; o--) {
            uint64_t m = node_of(a->depth, page, (unsigned)o);
            uint64_t x = nbbs_load(a->words, m);
            if (nbbs_is_occupied(x)) n = m, w = x;
        }
        if (n == 0) n = node_of(a->depth, page, 0);
    }
#else
    if (addr < a->start || addr - a->start >= size) return NBBS_E_FOREIGN_ADDRESS;
    uint64_t offset = addr - a->start;
    if (offset % a->page_size != 0) return NBBS_E_MISALIGNED_ADDRESS;
    uint64_t page = offset / a->page_size;
    bool given = order != NBBS_ANY_ORDER;
    if (given && (order < 0 || order > (int64_t)a->max_order)) return NBBS_E_ORDER;
    if (given && (page & (((uint64_t)1 << order) - 1)) != 0) return NBBS_E_MISALIGNED_ADDRESS;
    /* Largest order first (impl/arena.py block_to_free): a live block's ancestors are never
     * occupied, while a page under it may be, for an instant, by an alloc about to roll back. */
    uint64_t n = 0, w = 0;
    for (int o = (int)a->max_order; o >= 0; o--) {
        uint64_t m = node_of(a->depth, page, (unsigned)o);
        uint64_t x = nbbs_load(a->words, m);
        if (!nbbs_is_occupied(x)) continue;
        if (first_page(a->depth, m) != page) return NBBS_E_INTERIOR_ADDRESS;
        if (given && o != order) return NBBS_E_WRONG_ORDER;
        n = m, w = x;
        break;
    }
    if (n == 0) return NBBS_E_DOUBLE_FREE;
#endif
    if (nbbs_marks(a->variant)) mark(a, n, a->max_level);
    /* counted: a CAS from the word the check read, so of two racing frees one is refused,
     * having written nothing. (reference stores, as published: both would succeed.) */
    if (!release(a, n, w)) return NBBS_E_DOUBLE_FREE;
    unmark(a, n, a->max_level);
    return NBBS_OK;
}

/* -- transitions, for the test against model/bits.py ------------------------------------------ */

uint64_t nbbs_transition(int variant, int which, uint64_t w, unsigned s) {
    if (variant < 0 || variant >= NBBS_VARIANTS) return UINT64_MAX;
    nbbs_variant v = (nbbs_variant)variant;
    switch (which) {
    case 0: return nbbs_is_free(w);
    case 1: return nbbs_is_occupied(w);
    case 2: return nbbs_occupy(w);
    case 3: return nbbs_climb(v, w, s);
    case 4: return nbbs_mark_mask(s);
    case 5: return nbbs_buddy_keeps_busy(w, s);
    case 6: return nbbs_release(w);
    case 7: return nbbs_unmark_applies(v, w, s);
    case 8: return nbbs_unmark(v, w, s);
    case 9: return nbbs_unmark_stops(v, w, s);
    case 10: return nbbs_marks(v);
    case 11: return nbbs_release_cas(v);
    case 12: return nbbs_climb_stops(v, w, s);
    case 13: return nbbs_top_down(v);
    default: return UINT64_MAX;
    }
}
