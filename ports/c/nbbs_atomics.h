/* nbbs_atomics.h: the atomics shim, the only place the status words are touched.
 *
 * Five accesses, as impl/atomics.py's Words protocol: load, cas, fetch_or, fetch_and, store.
 *
 * Normal build: C11 <stdatomic.h>. Every access is memory_order_seq_cst; the reason for each
 * is at its function and in ports/c/README.md ("Memory ordering"). In short: the model checker
 * and the z3 step invariant prove the algorithm over interleavings of single accesses, i.e.
 * under one total order of all word accesses; C11 promises exactly that only when every
 * access to the words is seq_cst. On x86-64 this costs nothing over acquire/release except
 * on the one plain store (the rollback's release: an xchg instead of a mov).
 *
 * -DNBBS_CONTROLLED: PORTING.md's controlled mode. Before each access the shim calls the
 * announce hook (kind, node), which may block until the harness says go; after it, the
 * report hook (kind, node, old, new). A CAS is announced as NBBS_ACC_CAS and reported as
 * NBBS_ACC_CAS or NBBS_ACC_CAS_FAIL. The hooks are per process (nbbs_set_hooks); a thread
 * the hooks do not know (the protocol's main thread, stress threads) just runs.
 *
 * -DNBBS_COUNT_ATOMICS: per-thread counters of accesses by kind (nbbs_access_counts).
 */
#ifndef NBBS_ATOMICS_H
#define NBBS_ATOMICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef _Atomic uint64_t nbbs_word;

/* The access kinds, named as PORTING.md's KIND tokens (nbbs_access_name). */
typedef enum nbbs_access {
    NBBS_ACC_LOAD = 0,
    NBBS_ACC_CAS = 1,
    NBBS_ACC_CAS_FAIL = 2,
    NBBS_ACC_FETCH_OR = 3,
    NBBS_ACC_FETCH_AND = 4,
    NBBS_ACC_STORE = 5,
    NBBS_ACC_KINDS = 6
} nbbs_access;

const char *nbbs_access_name(nbbs_access kind);

/* Controlled mode's hooks: announce blocks until the access may run; report sees its effect. */
typedef void (*nbbs_announce_hook)(nbbs_access kind, uint64_t node);
typedef void (*nbbs_report_hook)(nbbs_access kind, uint64_t node, uint64_t old, uint64_t new_word);
void nbbs_set_hooks(nbbs_announce_hook announce, nbbs_report_hook report);

/* This thread's access counts by kind (all zero unless built with -DNBBS_COUNT_ATOMICS). */
void nbbs_access_counts(uint64_t out[NBBS_ACC_KINDS]);
void nbbs_reset_access_counts(void);

#if defined(NBBS_CONTROLLED)
extern nbbs_announce_hook nbbs_announce_;
extern nbbs_report_hook nbbs_report_;
#define NBBS_ANNOUNCE_(kind, node) \
    do { \
        if (nbbs_announce_) nbbs_announce_((kind), (node)); \
    } while (0)
#define NBBS_REPORT_(kind, node, old, new_word) \
    do { \
        if (nbbs_report_) nbbs_report_((kind), (node), (old), (new_word)); \
    } while (0)
#else
#define NBBS_ANNOUNCE_(kind, node) ((void)0)
#define NBBS_REPORT_(kind, node, old, new_word) ((void)0)
#endif

#if defined(NBBS_COUNT_ATOMICS)
extern _Thread_local uint64_t nbbs_counts_[NBBS_ACC_KINDS];
#define NBBS_COUNT_(kind) (nbbs_counts_[(kind)]++)
#else
#define NBBS_COUNT_(kind) ((void)0)
#endif

/* load: seq_cst. Several decisions rest on a load alone, with no CAS to validate them: the
 * scan skipping a busy node, the climb failing at an occupied ancestor, unmark stopping, the
 * free's argument check. The proofs argue each against one total order of accesses; with
 * acquire loads C11 allows store buffering (two threads each write a word, then both read the
 * other's old word), an outcome no interleaving shows and no checker of ours has examined. */
static inline uint64_t nbbs_load(nbbs_word *words, uint64_t node) {
    NBBS_ANNOUNCE_(NBBS_ACC_LOAD, node);
    uint64_t w = atomic_load_explicit(&words[node], memory_order_seq_cst);
    NBBS_COUNT_(NBBS_ACC_LOAD);
    NBBS_REPORT_(NBBS_ACC_LOAD, node, w, w);
    return w;
}

/* cas: seq_cst on success and failure. Occupy's CAS must at least acquire (it takes a block
 * over from the free that released it: the previous owner's writes to the block's memory
 * happen before the new owner's); the free's release CAS must at least release (the owner's
 * writes happen before the next owner's occupy). Climb and unmark CASes carry the counts
 * every other decision reads, so they are seq_cst like the loads. A failed CAS is a load. */
static inline bool nbbs_cas(nbbs_word *words, uint64_t node, uint64_t expected, uint64_t new_word) {
    NBBS_ANNOUNCE_(NBBS_ACC_CAS, node);
    uint64_t old = expected;
    bool ok = atomic_compare_exchange_strong_explicit(&words[node], &old, new_word, memory_order_seq_cst,
                                                      memory_order_seq_cst);
    NBBS_COUNT_(ok ? NBBS_ACC_CAS : NBBS_ACC_CAS_FAIL);
    NBBS_REPORT_(ok ? NBBS_ACC_CAS : NBBS_ACC_CAS_FAIL, node, old, ok ? new_word : old);
    return ok;
}

/* fetch_or: seq_cst. The published mark: its result decides where the mark stops. */
static inline uint64_t nbbs_fetch_or(nbbs_word *words, uint64_t node, uint64_t mask) {
    NBBS_ANNOUNCE_(NBBS_ACC_FETCH_OR, node);
    uint64_t old = atomic_fetch_or_explicit(&words[node], mask, memory_order_seq_cst);
    NBBS_COUNT_(NBBS_ACC_FETCH_OR);
    NBBS_REPORT_(NBBS_ACC_FETCH_OR, node, old, old | mask);
    return old;
}

/* fetch_and: seq_cst. Unused by both variants today; kept so the shim is the whole protocol. */
static inline uint64_t nbbs_fetch_and(nbbs_word *words, uint64_t node, uint64_t mask) {
    NBBS_ANNOUNCE_(NBBS_ACC_FETCH_AND, node);
    uint64_t old = atomic_fetch_and_explicit(&words[node], mask, memory_order_seq_cst);
    NBBS_COUNT_(NBBS_ACC_FETCH_AND);
    NBBS_REPORT_(NBBS_ACC_FETCH_AND, node, old, old & mask);
    return old;
}

/* store: seq_cst. The rollback's release of the node its own occupy took: at least release
 * (nothing was written to the block, but the scan that follows must not be reordered before
 * it), and seq_cst for the same reason as the loads. The old word is reported for the
 * controlled mode only (a store has none; the report reads it first, one thread running). */
static inline void nbbs_store(nbbs_word *words, uint64_t node, uint64_t value) {
    NBBS_ANNOUNCE_(NBBS_ACC_STORE, node);
#if defined(NBBS_CONTROLLED)
    uint64_t old = atomic_load_explicit(&words[node], memory_order_relaxed);
#endif
    atomic_store_explicit(&words[node], value, memory_order_seq_cst);
    NBBS_COUNT_(NBBS_ACC_STORE);
    NBBS_REPORT_(NBBS_ACC_STORE, node, old, value);
}

#endif
