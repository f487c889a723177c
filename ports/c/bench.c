/* bench.c: native benchmarks of the C port: counted, top_down and top_down_node vs reference (the
 * published algorithm, the same code) vs a buddy allocator behind one spin lock. Built by nbbs.ports.build("bench");
 * driven by bench/engine_bench.py, which repeats each run and writes bench/results/.
 *
 *   nbbs-bench ALLOCATOR PAGES MAX_ORDER WORKLOAD THREADS PAIRS FILL SEED
 *
 * ALLOCATOR  counted | reference | top_down | top_down_node (bits.VARIANTS names) | locked
 * PAGES      a power of two (the arena; page size 4096, start 0)
 * WORKLOAD   pairs              fill FILL of the pages with order-0 blocks at random (random
 *                               holes), then each thread does PAIRS alloc(0, random hint) + free
 *            linux-scalability  each thread: PAIRS times alloc(0) then free it at once (no hint)
 *            thread-test        each thread: rounds of alloc(0) x BATCH then free them all, until
 *                               PAIRS allocs (BATCH = PAGES / (4 * THREADS))
 *            constant-occupancy fill FILL at random, the blocks dealt to the threads; each thread:
 *                               PAIRS times free one of its blocks at random, alloc(0) (no hint)
 *            contention         contention near the root (issue 12): fill FILL at random, then
 *                               each thread: PAIRS times alloc(order in LO..HI at random) and
 *                               free, keeping its last HOLD blocks (HOLD 0: free at once); the
 *                               hint HINT: random (per alloc), same (0: every thread starts on
 *                               the level's first node) or none (the port's per-thread spread);
 *                               SYNC > 0: the threads meet at a spin barrier every SYNC pairs
 *                               (lockstep, so that their operations start together; the
 *                               barrier's time is in the figures, its atomics are not counted);
 *                               SYNC "access" (the -DNBBS_CONTROLLED build): the threads take
 *                               turns at every word access, round-robin (through the shim's
 *                               hooks), so that every operation is interleaved access by access
 *                               with the others' (the time is then the hand-overs', not the
 *                               algorithm's; the counts are the point)
 *
 *   nbbs-bench ALLOCATOR PAGES MAX_ORDER contention THREADS PAIRS FILL SEED [LO HI HINT HOLD SYNC]
 *
 * (defaults LO = MAX_ORDER - 2, HI = MAX_ORDER - 1, both at least 0, random, 1, 0).
 *
 * Prints one JSON object: the wall time of the timed phase (all threads, started together),
 * ns per pair (wall), CPU ns per pair (the threads' CPU time summed: what a loaded machine's
 * preemptions do not inflate), failed allocs, and with -DNBBS_COUNT_ATOMICS the word accesses
 * per pair; per thread, its pairs, failed allocs, CPU time, the span of its timed loop and its
 * access counts. contention adds what the end-of-run check needs (nbbs.ports.contention checks
 * it with the model's own invariants): the blocks held when the threads stopped (the fill's
 * and each thread's last HOLD), the words then, and the words after main freed them all, with
 * the frees that failed (in the loop a failed free is counted, not fatal: under contention an
 * unsafe variant may hand out blocks that then cannot be freed, and that is a result).
 *
 * The locked buddy: the classic implicit-tree buddy ("longest free order below each node"):
 * alloc descends to the leftmost fitting node, free climbs merging buddies; O(depth) each,
 * under one test-and-test-and-set spin lock. It takes no hint.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nbbs.h"

/* -- the spin-locked buddy ---------------------------------------------------------------------- */

typedef struct locked {
    atomic_flag lock;
    unsigned depth;
    uint8_t *longest; /* per node: 1 + the largest free order in its subtree, 0 if none */
} locked_t;

static unsigned lvl_of(uint64_t n) { return 63u - (unsigned)__builtin_clzll(n); }

static void spin_lock(locked_t *l) {
    while (atomic_flag_test_and_set_explicit(&l->lock, memory_order_acquire))
        __builtin_ia32_pause();
}

static void spin_unlock(locked_t *l) { atomic_flag_clear_explicit(&l->lock, memory_order_release); }

static void locked_init(locked_t *l, unsigned depth) {
    atomic_flag_clear(&l->lock);
    l->depth = depth;
    l->longest = malloc((size_t)2 << depth);
    for (uint64_t n = 1; n < ((uint64_t)2 << depth); n++) l->longest[n] = (uint8_t)(depth - lvl_of(n) + 1);
}

static void locked_fix_up(locked_t *l, uint64_t n) {
    while (n > 1) {
        n >>= 1;
        uint8_t a = l->longest[2 * n], b = l->longest[2 * n + 1], full = (uint8_t)(l->depth - lvl_of(n));
        l->longest[n] = (a == full && b == full) ? (uint8_t)(full + 1) : (a > b ? a : b);
    }
}

static int locked_alloc(locked_t *l, unsigned order, uint64_t *addr) {
    spin_lock(l);
    if (l->longest[1] < order + 1) {
        spin_unlock(l);
        return 0;
    }
    uint64_t n = 1;
    for (unsigned lv = 0; lv < l->depth - order; lv++) n = l->longest[2 * n] >= order + 1 ? 2 * n : 2 * n + 1;
    l->longest[n] = 0;
    locked_fix_up(l, n);
    spin_unlock(l);
    unsigned lv = lvl_of(n);
    *addr = ((n - ((uint64_t)1 << lv)) << (l->depth - lv)) * 4096;
    return 1;
}

static void locked_free(locked_t *l, uint64_t addr, unsigned order) {
    uint64_t page = addr / 4096, lv = l->depth - order;
    uint64_t n = ((uint64_t)1 << lv) + (page >> order);
    spin_lock(l);
    l->longest[n] = (uint8_t)(order + 1);
    locked_fix_up(l, n);
    spin_unlock(l);
}

/* -- one interface over both ------------------------------------------------------------------- */

static int use_locked;
static nbbs_t arena;
static locked_t lk;

static int do_alloc(unsigned order, int64_t hint, uint64_t *addr) {
    if (use_locked) return locked_alloc(&lk, order, addr);
    return nbbs_alloc(&arena, order, hint, addr) == NBBS_OK;
}

static void do_free(uint64_t addr, unsigned order) {
    if (use_locked)
        locked_free(&lk, addr, order);
    else if (nbbs_free(&arena, addr, order) != NBBS_OK)
        abort();
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* -- workloads ---------------------------------------------------------------------------------- */

enum workload { PAIRS, LINUX_SCALABILITY, THREAD_TEST, CONSTANT_OCCUPANCY, CONTENTION };

typedef struct worker {
    pthread_t thread;
    unsigned id;
    uint64_t seed, pairs, failed;
    uint64_t *held; /* constant-occupancy: this thread's blocks; contention: its last HOLD (0: empty slot) */
    unsigned *held_order; /* contention: the order of each held block */
    uint64_t nheld;
    uint64_t free_errors; /* contention: frees the allocator refused */
    double began_ns, ended_ns; /* the span of the timed loop (CLOCK_MONOTONIC): how the threads overlapped */
    uint64_t counts[NBBS_ACC_KINDS];
    double cpu_ns; /* this thread's CPU time in the timed phase (a loaded machine preempts: wall time counts that, CPU time does not) */
} worker_t;

static enum workload workload;
static uint64_t pages;
static unsigned nthreads;
static pthread_barrier_t barrier;
static unsigned lo_order, hi_order, hold, sync_every; /* contention */
enum hint_mode { HINT_RANDOM, HINT_SAME, HINT_NONE };
static enum hint_mode hint_mode;
static _Atomic unsigned arrived; /* contention: threads past the barrier, for the spinning start */

static double now_ns(void);

/* contention, SYNC > 0: a sense-reversing spin barrier (yielding now and then, so that an
 * oversubscribed run makes progress). Not the allocator's atomics: not counted. */
static _Atomic unsigned sync_count, sync_sense;

static void rendezvous(unsigned *sense) {
    *sense ^= 1;
    if (atomic_fetch_add(&sync_count, 1) == nthreads - 1) {
        atomic_store(&sync_count, 0);
        atomic_store(&sync_sense, *sense);
        return;
    }
    for (unsigned spins = 1; atomic_load(&sync_sense) != *sense; spins++)
        if (spins % 64 == 0) sched_yield();
        else __builtin_ia32_pause();
}

/* contention, SYNC "access": one turn token, passed round-robin among the threads still in
 * their loops after each word access. Only the holder writes it (a thread leaving waits for
 * the token, then clears its flag and passes it on), so no hand-over can be lost. Threads the
 * hooks do not know (main: the fill, the final frees) just run. */
static int interleave;
#if defined(NBBS_CONTROLLED)
#define MAX_INTERLEAVED 64
static _Atomic int turn;
static _Atomic int active[MAX_INTERLEAVED];
static _Thread_local int my_turn = -1;

static void wait_turn(void) {
    for (unsigned spins = 1; atomic_load(&turn) != my_turn; spins++)
        if (spins % 64 == 0) sched_yield();
        else __builtin_ia32_pause();
}

static void pass_turn(void) {
    for (unsigned k = 1; k <= nthreads; k++) {
        int t = (int)((my_turn + k) % nthreads);
        if (atomic_load(&active[t])) {
            atomic_store(&turn, t);
            return;
        }
    }
}

static void announce_access(nbbs_access kind, uint64_t node) {
    (void)kind, (void)node;
    if (my_turn >= 0) wait_turn();
}

static void report_access(nbbs_access kind, uint64_t node, uint64_t old, uint64_t new_word) {
    (void)kind, (void)node, (void)old, (void)new_word;
    if (my_turn >= 0) pass_turn();
}

static void join_turns(unsigned id) {
    my_turn = (int)id;
    atomic_store(&active[id], 1);
}

static void leave_turns(void) {
    wait_turn();
    atomic_store(&active[my_turn], 0);
    pass_turn(); /* to the next thread still in, or (none left) back to this one: harmless */
    my_turn = -1;
}
#endif

/* contention: where an alloc of this order starts its scan. */
static int64_t contention_hint(uint64_t *rng, unsigned order) {
    switch (hint_mode) {
    case HINT_SAME: return 0;
    case HINT_NONE: return NBBS_NO_HINT;
    default: return (int64_t)(splitmix(rng) % (pages >> order));
    }
}

/* contention: free a block, 1 if the allocator refused (counted, not fatal: see the top). A held
 * slot keeps its block's order + 1 in held_order, so that 0 means empty (address 0 is a block). */
static uint64_t contention_free(uint64_t addr, unsigned order) {
    return nbbs_free(&arena, addr, order) != NBBS_OK;
}

static void *run(void *arg) {
    worker_t *w = arg;
    uint64_t rng = w->seed, addr, failed = 0;
    uint64_t batch = pages / (4 * nthreads);
    if (batch == 0) batch = 1;
    uint64_t *mine = workload == THREAD_TEST ? malloc(batch * sizeof *mine) : NULL;
    pthread_barrier_wait(&barrier);
#if defined(NBBS_CONTROLLED)
    if (interleave) join_turns(w->id); /* before anyone starts: every thread is in the rotation */
#endif
    if (workload == CONTENTION) {
        /* A barrier wakes its waiters one by one, tens of microseconds apart: long enough for
         * the first to do thousands of pairs alone. So the threads also wait for each other
         * here, running (yielding, so that an oversubscribed run still gets everyone in). */
        atomic_fetch_add(&arrived, 1);
        while (atomic_load(&arrived) < nthreads) sched_yield();
    }
    nbbs_reset_access_counts();
    struct timespec c0, c1;
    w->began_ns = now_ns();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    switch (workload) {
    case PAIRS:
        for (uint64_t i = 0; i < w->pairs; i++) {
            if (do_alloc(0, (int64_t)(splitmix(&rng) % pages), &addr))
                do_free(addr, 0);
            else
                failed++;
        }
        break;
    case LINUX_SCALABILITY:
        for (uint64_t i = 0; i < w->pairs; i++) {
            if (do_alloc(0, NBBS_NO_HINT, &addr))
                do_free(addr, 0);
            else
                failed++;
        }
        break;
    case THREAD_TEST:
        for (uint64_t done = 0; done < w->pairs;) {
            uint64_t got = 0;
            for (uint64_t i = 0; i < batch && done < w->pairs; i++, done++) {
                if (do_alloc(0, NBBS_NO_HINT, &mine[got]))
                    got++;
                else
                    failed++;
            }
            for (uint64_t i = 0; i < got; i++) do_free(mine[i], 0);
        }
        break;
    case CONSTANT_OCCUPANCY:
        for (uint64_t i = 0; i < w->pairs; i++) {
            if (w->nheld == 0) break;
            uint64_t k = splitmix(&rng) % w->nheld;
            do_free(w->held[k], 0);
            if (!do_alloc(0, NBBS_NO_HINT, &w->held[k])) {
                failed++;
                w->held[k] = w->held[--w->nheld];
            }
        }
        break;
    case CONTENTION: {
        unsigned sense = 0;
        for (uint64_t i = 0; i < w->pairs; i++) {
            if (sync_every && i % sync_every == 0) rendezvous(&sense);
            unsigned order = lo_order + (unsigned)(splitmix(&rng) % (hi_order - lo_order + 1));
            int64_t hint = contention_hint(&rng, order);
            if (hold == 0) {
                if (nbbs_alloc(&arena, order, hint, &addr) == NBBS_OK)
                    w->free_errors += contention_free(addr, order);
                else
                    failed++;
                continue;
            }
            uint64_t k = i % hold;
            if (w->held_order[k]) {
                w->free_errors += contention_free(w->held[k], w->held_order[k] - 1);
                w->held_order[k] = 0;
            }
            if (nbbs_alloc(&arena, order, hint, &w->held[k]) == NBBS_OK)
                w->held_order[k] = order + 1;
            else
                failed++;
        }
        break;
    }
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    w->ended_ns = now_ns();
#if defined(NBBS_CONTROLLED)
    if (interleave) leave_turns();
#endif
    w->cpu_ns = (double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(c1.tv_nsec - c0.tv_nsec);
    nbbs_access_counts(w->counts);
    w->failed = failed;
    free(mine);
    return NULL;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Print a JSON array of the words of every node (index 0 unused, printed as 0). */
static void print_words(const char *key) {
    printf(", \"%s\": [", key);
    for (uint64_t n = 0; n < nbbs_node_count(arena.depth); n++)
        printf("%s%llu", n ? ", " : "", (unsigned long long)(n ? nbbs_peek(&arena, n) : 0));
    printf("]");
}

/* The deepest tree whose words contention prints (2**(depth + 1) numbers). */
#define WORDS_DEPTH_MAX 12

int main(int argc, char **argv) {
    if (argc != 9 && !(argc == 14 && !strcmp(argv[4], "contention"))) {
        fprintf(stderr, "usage: %s counted|reference|top_down|top_down_node|locked PAGES MAX_ORDER pairs|linux-scalability|thread-test|"
                        "constant-occupancy|contention THREADS PAIRS FILL SEED [LO HI random|same|none HOLD SYNC|access]\n", argv[0]);
        return 2;
    }
    const char *alloc_name = argv[1], *wl = argv[4];
    pages = strtoull(argv[2], NULL, 10);
    int max_order = atoi(argv[3]);
    nthreads = (unsigned)atoi(argv[5]);
    uint64_t pairs = strtoull(argv[6], NULL, 10);
    double fill = atof(argv[7]);
    uint64_t seed = strtoull(argv[8], NULL, 10);
    unsigned depth = (unsigned)__builtin_ctzll(pages);
    if (pages == 0 || (pages & (pages - 1)) || nthreads == 0 || fill < 0 || fill > 1) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    if (!strcmp(wl, "pairs")) workload = PAIRS;
    else if (!strcmp(wl, "linux-scalability")) workload = LINUX_SCALABILITY;
    else if (!strcmp(wl, "thread-test")) workload = THREAD_TEST;
    else if (!strcmp(wl, "constant-occupancy")) workload = CONSTANT_OCCUPANCY;
    else if (!strcmp(wl, "contention")) workload = CONTENTION;
    else {
        fprintf(stderr, "unknown workload %s\n", wl);
        return 2;
    }
    if (workload == CONTENTION) {
        unsigned top = max_order < 0 ? depth : (unsigned)max_order;
        hi_order = top >= 1 ? top - 1 : 0;
        lo_order = top >= 2 ? top - 2 : 0;
        hint_mode = HINT_RANDOM;
        hold = 1;
        if (argc == 14) {
            lo_order = (unsigned)atoi(argv[9]);
            hi_order = (unsigned)atoi(argv[10]);
            if (!strcmp(argv[11], "same")) hint_mode = HINT_SAME;
            else if (!strcmp(argv[11], "none")) hint_mode = HINT_NONE;
            else if (strcmp(argv[11], "random")) {
                fprintf(stderr, "unknown hint %s (random, same or none)\n", argv[11]);
                return 2;
            }
            hold = (unsigned)atoi(argv[12]);
            interleave = !strcmp(argv[13], "access");
            sync_every = interleave ? 0 : (unsigned)atoi(argv[13]);
        }
#if defined(NBBS_CONTROLLED)
        if (interleave) {
            if (nthreads > MAX_INTERLEAVED) {
                fprintf(stderr, "SYNC access takes at most %d threads\n", MAX_INTERLEAVED);
                return 2;
            }
            nbbs_set_hooks(announce_access, report_access);
        }
#else
        if (interleave) {
            fprintf(stderr, "SYNC access needs the controlled build (build(\"bench\", controlled=True))\n");
            return 2;
        }
#endif
        if (lo_order > hi_order || hi_order > top || !strcmp(alloc_name, "locked")) {
            fprintf(stderr, "contention needs an NBBS variant and 0 <= LO <= HI <= MAX_ORDER\n");
            return 2;
        }
    }
    void *words = NULL;
    if (!strcmp(alloc_name, "locked")) {
        use_locked = 1;
        locked_init(&lk, depth);
    } else {
        int named = nbbs_variant_named(alloc_name);
        if (named < 0) {
            fprintf(stderr, "unknown allocator %s\n", alloc_name);
            return 2;
        }
        nbbs_variant v = (nbbs_variant)named;
        words = aligned_alloc(64, (nbbs_words_bytes(depth) + 63) / 64 * 64);
        if (nbbs_init(&arena, words, depth, 4096, 0, max_order, v) != NBBS_OK) {
            fprintf(stderr, "bad shape\n");
            return 2;
        }
    }

    /* Random holes: take every page, give back a random (1 - FILL) of them. */
    uint64_t rng = seed ^ 0xA5A5A5A5ull, keep = (uint64_t)(fill * (double)pages + 0.5), nkept = 0;
    uint64_t *all = malloc(pages * sizeof *all);
    if (keep > 0) {
        for (uint64_t p = 0; p < pages; p++)
            if (!do_alloc(0, (int64_t)p, &all[p])) abort();
        for (uint64_t i = pages - 1; i > 0; i--) { /* Fisher-Yates: the kept ones are all[0..keep) */
            uint64_t j = splitmix(&rng) % (i + 1), t = all[i];
            all[i] = all[j];
            all[j] = t;
        }
        for (uint64_t i = keep; i < pages; i++) do_free(all[i], 0);
        nkept = keep;
    }

    worker_t *ws = calloc(nthreads, sizeof *ws);
    pthread_barrier_init(&barrier, NULL, nthreads + 1);
    for (unsigned t = 0; t < nthreads; t++) {
        ws[t].id = t;
        ws[t].seed = seed * 1000003 + t;
        ws[t].pairs = pairs;
        if (workload == CONSTANT_OCCUPANCY) { /* deal the kept blocks out */
            ws[t].held = malloc((nkept / nthreads + 1) * sizeof(uint64_t));
            for (uint64_t i = t; i < nkept; i += nthreads) ws[t].held[ws[t].nheld++] = all[i];
        }
        if (workload == CONTENTION && hold > 0) {
            ws[t].held = calloc(hold, sizeof(uint64_t));
            ws[t].held_order = calloc(hold, sizeof(unsigned));
        }
        pthread_create(&ws[t].thread, NULL, run, &ws[t]);
    }
    double t0 = now_ns();
    pthread_barrier_wait(&barrier);
    for (unsigned t = 0; t < nthreads; t++) pthread_join(ws[t].thread, NULL);
    double elapsed = now_ns() - t0;

    uint64_t failed = 0, counts[NBBS_ACC_KINDS] = {0};
    double cpu = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        failed += ws[t].failed;
        cpu += ws[t].cpu_ns;
        for (int k = 0; k < NBBS_ACC_KINDS; k++) counts[k] += ws[t].counts[k];
    }
    uint64_t total = pairs * nthreads;
    printf("{\"allocator\": \"%s\", \"pages\": %llu, \"max_order\": %d, \"workload\": \"%s\", \"threads\": %u, "
           "\"pairs\": %llu, \"fill\": %g, \"seed\": %llu, \"elapsed_ns\": %.0f, \"ns_per_pair\": %.2f, "
           "\"cpu_ns_per_pair\": %.2f, \"failed\": %llu, \"accesses_per_pair\": {",
           alloc_name, (unsigned long long)pages, max_order, wl, nthreads, (unsigned long long)total, fill,
           (unsigned long long)seed, elapsed, total ? elapsed / (double)total : 0.0, total ? cpu / (double)total : 0.0,
           (unsigned long long)failed);
    for (int k = 0; k < NBBS_ACC_KINDS; k++)
        printf("%s\"%s\": %.3f", k ? ", " : "", nbbs_access_name((nbbs_access)k),
               total ? (double)counts[k] / (double)total : 0.0);
    printf("}, \"per_thread\": [");
    for (unsigned t = 0; t < nthreads; t++) {
        printf("%s{\"pairs\": %llu, \"failed\": %llu, \"free_errors\": %llu, \"cpu_ns\": %.0f, \"began_ns\": %.0f, "
               "\"ended_ns\": %.0f, \"accesses\": {",
               t ? ", " : "", (unsigned long long)ws[t].pairs, (unsigned long long)ws[t].failed,
               (unsigned long long)ws[t].free_errors, ws[t].cpu_ns, ws[t].began_ns - t0, ws[t].ended_ns - t0);
        for (int k = 0; k < NBBS_ACC_KINDS; k++)
            printf("%s\"%s\": %llu", k ? ", " : "", nbbs_access_name((nbbs_access)k),
                   (unsigned long long)ws[t].counts[k]);
        printf("}}");
    }
    printf("]");
    if (workload == CONTENTION) {
        /* The end of the run, every thread stopped: what is held, the words, then free it all. */
        printf(", \"lo\": %u, \"hi\": %u, \"hint\": \"%s\", \"hold\": %u, \"sync\": %u, \"interleave\": %s, "
               "\"held\": [",
               lo_order, hi_order, hint_mode == HINT_SAME ? "same" : hint_mode == HINT_NONE ? "none" : "random", hold,
               sync_every, interleave ? "true" : "false");
        int first = 1;
        for (uint64_t i = 0; i < nkept; i++, first = 0) printf("%s[%llu, 0]", first ? "" : ", ", (unsigned long long)all[i]);
        for (unsigned t = 0; t < nthreads; t++)
            for (unsigned k = 0; k < hold; k++)
                if (ws[t].held_order[k]) {
                    printf("%s[%llu, %u]", first ? "" : ", ", (unsigned long long)ws[t].held[k], ws[t].held_order[k] - 1);
                    first = 0;
                }
        printf("]");
        if (depth <= WORDS_DEPTH_MAX) print_words("words");
        uint64_t refused = 0;
        for (uint64_t i = 0; i < nkept; i++) refused += contention_free(all[i], 0);
        for (unsigned t = 0; t < nthreads; t++)
            for (unsigned k = 0; k < hold; k++)
                if (ws[t].held_order[k]) refused += contention_free(ws[t].held[k], ws[t].held_order[k] - 1);
        printf(", \"final_free_errors\": %llu", (unsigned long long)refused);
        if (depth <= WORDS_DEPTH_MAX) print_words("words_after");
    }
    printf("}\n");
    free(words);
    free(all);
    return 0;
}
