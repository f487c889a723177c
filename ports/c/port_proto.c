/* port_proto.c: PORTING.md's line protocol, version 1, over nbbs.h.
 *
 * Sequential commands (arena, alloc, free, words), stress (real pthreads, CLOCK_MONOTONIC),
 * and in the -DNBBS_CONTROLLED build the controlled mode (spawn, step): one real pthread per
 * logical thread, created on first use and kept for the arena's life; exactly one runs at a
 * time, handed the baton through one mutex and condition variables, stopping at each access
 * the shim announces.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#include "port_proto.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "nbbs.h"

#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

/* The variants this port implements (nbbs_variant_named), in the handshake's and the errors' words. */
#define PORT_VARIANTS_TEXT "counted, reference, top_down, top_down_node"
#define PORT_VARIANTS_FEATURE "counted+reference+top_down+top_down_node"

#define MAX_TOKENS 8
#define MAX_STRESS_THREADS 256
#define MAX_STRESS_RECORDS 50000000ull
#define MAX_LOGICAL 64
#define RESULT_CAP 320

static nbbs_t arena;
static bool have_arena;
static void *words_mem;
static size_t words_len;

/* -- tokens and numbers ---------------------------------------------------------------------- */

/* A decimal integer token: its sign, its magnitude (saturated; big if above 2**64 - 1), and
 * its value modulo 2**64 (what a hint needs: the scan takes it modulo a power of two). */
typedef struct num {
    bool ok, neg, big;
    uint64_t v, wrapped;
} num;

static num parse_num(const char *t) {
    num n = {0};
    if (t == NULL) return n;
    if (*t == '-') n.neg = true, t++;
    if (*t == '\0') return n;
    for (; *t; t++) {
        if (*t < '0' || *t > '9') return n;
        unsigned d = (unsigned)(*t - '0');
        n.wrapped = n.wrapped * 10 + d;
        if (n.v > (UINT64_MAX - d) / 10) n.big = true;
        else n.v = n.v * 10 + d;
    }
    if (n.neg) n.wrapped = 0 - n.wrapped;
    if (n.neg && n.v == 0 && !n.big) n.neg = false; /* -0 */
    n.ok = true;
    return n;
}

static bool is_dash(const char *t) { return t != NULL && strcmp(t, "-") == 0; }

/* An order token as the library takes it: negative stays negative, too big stays too big. */
static int64_t order_value(num o) {
    if (o.neg) return -1;
    if (o.big || o.v > (uint64_t)INT64_MAX) return INT64_MAX;
    return (int64_t)o.v;
}

static int split(char *line, char *tok[MAX_TOKENS + 1]) {
    int n = 0;
    for (char *p = strtok(line, " \t\r\n"); p != NULL; p = strtok(NULL, " \t\r\n")) {
        if (n == MAX_TOKENS) return MAX_TOKENS + 1;
        tok[n++] = p;
    }
    return n;
}

/* -- the operations, replies written as PORTING.md says ---------------------------------------- */

typedef struct op_args {
    bool is_free;
    num a;         /* alloc: order; free: address */
    bool has_b;    /* alloc: a hint; free: an order */
    num b;
} op_args;

/* Parse "alloc ORDER [HINT]" / "free ADDR [ORDER]" from tok[0..n); false: a protocol error. */
static bool parse_op(char **tok, int n, op_args *op, char *why, size_t cap) {
    if (n < 2 || n > 3 || (strcmp(tok[0], "alloc") != 0 && strcmp(tok[0], "free") != 0)) {
        snprintf(why, cap, "expected 'alloc ORDER [HINT]' or 'free ADDR [ORDER]'");
        return false;
    }
    op->is_free = tok[0][0] == 'f';
    op->a = parse_num(tok[1]);
    op->b = (num){0};
    op->has_b = n == 3 && !is_dash(tok[2]);
    if (op->has_b) op->b = parse_num(tok[2]);
    if (!op->a.ok || (op->has_b && !op->b.ok)) {
        snprintf(why, cap, "arguments must be decimal integers (or '-'), got '%s%s%s'", tok[1], n == 3 ? " " : "",
                 n == 3 ? tok[2] : "");
        return false;
    }
    return true;
}

static void fmt_num(char *buf, size_t cap, num x) {
    if (x.big) snprintf(buf, cap, "%s(a number above 2**64)", x.neg ? "-" : "");
    else snprintf(buf, cap, "%s%" PRIu64, x.neg ? "-" : "", x.v);
}

/* Run one operation on the arena: the reply (address, none, ok or error ...) in res. */
static void run_op(const op_args *op, char *res, size_t cap) {
    char a[48], b[48];
    fmt_num(a, sizeof a, op->a);
    fmt_num(b, sizeof b, op->b);
    if (!op->is_free) {
        int64_t hint = NBBS_NO_HINT;
        if (op->has_b) {
            hint = (int64_t)op->b.wrapped;
            if (hint == NBBS_NO_HINT) hint = 0; /* -2**63 is 0 modulo every level's width */
        }
        uint64_t addr = 0;
        nbbs_status st = nbbs_alloc(&arena, order_value(op->a), hint, &addr);
        if (st == NBBS_OK) snprintf(res, cap, "%" PRIu64, addr);
        else if (st == NBBS_NO_BLOCK) snprintf(res, cap, "none");
        else if (op->a.neg) snprintf(res, cap, "error OrderError order must not be negative, got %s", a);
        else snprintf(res, cap, "error OrderError order %s is above the maximum order %u", a, arena.max_order);
        return;
    }
    uint64_t end = arena.start + (arena.page_size << arena.depth);
    nbbs_status st;
    if (op->a.neg || op->a.big) st = NBBS_E_FOREIGN_ADDRESS;
    else st = nbbs_free(&arena, op->a.v, op->has_b ? order_value(op->b) : NBBS_ANY_ORDER);
    switch (st) {
    case NBBS_OK: snprintf(res, cap, "ok"); break;
    case NBBS_E_FOREIGN_ADDRESS:
        snprintf(res, cap, "error ForeignAddressError address %s is outside the arena [%" PRIu64 ", %" PRIu64 ")", a,
                 arena.start, end);
        break;
    case NBBS_E_MISALIGNED_ADDRESS:
        snprintf(res, cap, "error MisalignedAddressError address %s is not on a page boundary or not aligned to order %s",
                 a, op->has_b ? b : "-");
        break;
    case NBBS_E_ORDER: snprintf(res, cap, "error OrderError order %s is not from 0 to %u", b, arena.max_order); break;
    case NBBS_E_INTERIOR_ADDRESS:
        snprintf(res, cap, "error InteriorAddressError address %s is inside a live block, not its start", a);
        break;
    case NBBS_E_WRONG_ORDER:
        snprintf(res, cap, "error WrongOrderError the live block at %s does not have order %s", a, b);
        break;
    default:
        snprintf(res, cap, "error DoubleFreeError no live block starts at %s: double free (or never allocated)", a);
        break;
    }
}

/* -- controlled mode ------------------------------------------------------------------------- */

#ifdef NBBS_CONTROLLED

typedef enum lstate { L_IDLE, L_RUNNING, L_PENDING } lstate;

/* One logical thread of the harness, run by one real pthread. */
typedef struct lthread {
    bool started, has_cmd, go, done, quit;
    pthread_t th;
    pthread_cond_t cv; /* the worker waits here for a command or a go-ahead */
    lstate state;
    op_args op;
    nbbs_access pending_kind;
    uint64_t pending_node;
    bool did;
    nbbs_access did_kind;
    uint64_t did_node, did_old, did_new;
    char result[RESULT_CAP];
} lthread;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t main_cv = PTHREAD_COND_INITIALIZER; /* the main thread waits here */
static lthread logical[MAX_LOGICAL];
static _Thread_local int my_lid = -1;

static void announce(nbbs_access kind, uint64_t node) {
    if (my_lid < 0) return; /* the main thread's sequential commands and stress threads run free */
    lthread *t = &logical[my_lid];
    pthread_mutex_lock(&mu);
    t->pending_kind = kind;
    t->pending_node = node;
    t->state = L_PENDING;
    pthread_cond_signal(&main_cv);
    while (!t->go) pthread_cond_wait(&t->cv, &mu);
    t->go = false;
    t->state = L_RUNNING;
    pthread_mutex_unlock(&mu);
}

static void report(nbbs_access kind, uint64_t node, uint64_t old, uint64_t new_word) {
    if (my_lid < 0) return;
    lthread *t = &logical[my_lid];
    pthread_mutex_lock(&mu);
    t->did = true;
    t->did_kind = kind;
    t->did_node = node;
    t->did_old = old;
    t->did_new = new_word;
    pthread_mutex_unlock(&mu);
}

static void *worker(void *arg) {
    lthread *t = arg;
    my_lid = (int)(t - logical);
    for (;;) {
        pthread_mutex_lock(&mu);
        while (!t->has_cmd && !t->quit) pthread_cond_wait(&t->cv, &mu);
        if (t->quit) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        t->has_cmd = false;
        op_args op = t->op;
        pthread_mutex_unlock(&mu);
        char res[RESULT_CAP];
        run_op(&op, res, sizeof res);
        pthread_mutex_lock(&mu);
        memcpy(t->result, res, sizeof res);
        t->done = true;
        t->state = L_IDLE;
        pthread_cond_signal(&main_cv);
        pthread_mutex_unlock(&mu);
    }
}

/* Wait (holding mu) until thread t stops at its next access or finishes; print which. */
static void await_and_print(lthread *t, int id, FILE *out) {
    while (t->state == L_RUNNING) pthread_cond_wait(&main_cv, &mu);
    if (t->did)
        fprintf(out, "did %d %s %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", id, nbbs_access_name(t->did_kind),
                t->did_node, t->did_old, t->did_new);
    if (t->state == L_PENDING) {
        /* A CAS is announced as "cas" whatever it will do. */
        fprintf(out, "pending %d %s %" PRIu64 "\n", id, nbbs_access_name(t->pending_kind), t->pending_node);
    } else {
        fprintf(out, "done %d %s\n", id, t->result);
    }
}

static bool any_in_flight(void) {
    for (int i = 0; i < MAX_LOGICAL; i++)
        if (logical[i].started && logical[i].state != L_IDLE) return true;
    return false;
}

/* End every logical thread (they belong to the arena being replaced); none may be in flight. */
static void stop_logical(void) {
    for (int i = 0; i < MAX_LOGICAL; i++) {
        lthread *t = &logical[i];
        if (!t->started) continue;
        pthread_mutex_lock(&mu);
        t->quit = true;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&mu);
        pthread_join(t->th, NULL);
        pthread_cond_destroy(&t->cv);
        memset(t, 0, sizeof *t);
    }
}

static int parse_thread(const char *tok, FILE *out) {
    num id = parse_num(tok);
    if (!id.ok || id.neg || id.big || id.v >= MAX_LOGICAL) {
        fprintf(out, "error ProtocolError thread must be a number from 0 to %d, got '%s'\n", MAX_LOGICAL - 1,
                tok ? tok : "");
        return -1;
    }
    return (int)id.v;
}

static void cmd_spawn(char **tok, int n, FILE *out) {
    if (n < 4) {
        fprintf(out, "error ProtocolError expected 'spawn T alloc ORDER [HINT]' or 'spawn T free ADDR [ORDER]'\n");
        return;
    }
    int id = parse_thread(tok[1], out);
    if (id < 0) return;
    op_args op = {0};
    char why[RESULT_CAP];
    if (!parse_op(tok + 2, n - 2, &op, why, sizeof why)) {
        fprintf(out, "error ProtocolError %s\n", why);
        return;
    }
    lthread *t = &logical[id];
    pthread_mutex_lock(&mu);
    if (t->started && t->state != L_IDLE) {
        pthread_mutex_unlock(&mu);
        fprintf(out, "error ProtocolError thread %d is in flight\n", id);
        return;
    }
    if (!t->started) {
        pthread_cond_init(&t->cv, NULL);
        t->started = true;
        t->state = L_IDLE;
        if (pthread_create(&t->th, NULL, worker, t) != 0) {
            t->started = false;
            pthread_mutex_unlock(&mu);
            fprintf(out, "error ProtocolError cannot create a thread\n");
            return;
        }
    }
    t->op = op;
    t->has_cmd = true;
    t->done = t->did = t->go = false;
    t->state = L_RUNNING;
    pthread_cond_signal(&t->cv);
    await_and_print(t, id, out);
    pthread_mutex_unlock(&mu);
}

static void cmd_step(char **tok, int n, FILE *out) {
    if (n != 2) {
        fprintf(out, "error ProtocolError expected 'step T'\n");
        return;
    }
    int id = parse_thread(tok[1], out);
    if (id < 0) return;
    lthread *t = &logical[id];
    pthread_mutex_lock(&mu);
    if (!t->started || t->state != L_PENDING) {
        pthread_mutex_unlock(&mu);
        fprintf(out, "error ProtocolError thread %d has no pending access\n", id);
        return;
    }
    t->did = false;
    t->go = true;
    t->state = L_RUNNING;
    pthread_cond_signal(&t->cv);
    await_and_print(t, id, out);
    pthread_mutex_unlock(&mu);
}

#define CONTROLLED_FEATURE ",controlled"
#else
#define CONTROLLED_FEATURE ""
#endif

/* -- stress ------------------------------------------------------------------------------------ */

typedef struct rec {
    uint64_t call, ret, a, result;
    int64_t order;
    uint32_t thread;
    bool is_free, got; /* got: alloc returned a block */
    nbbs_status st;
} rec;

typedef struct stress_job {
    uint32_t thread;
    uint64_t ops, seed;
    rec *recs;
    uint64_t *held_addr;
    int64_t *held_order;
    pthread_barrier_t *barrier;
    uint64_t counts[NBBS_ACC_KINDS]; /* this thread's word accesses (-DNBBS_COUNT_ATOMICS) */
} stress_job;

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *stress_thread(void *arg) {
    stress_job *j = arg;
    uint64_t rng = j->seed ^ (0xD1B54A32D192ED03ull * (j->thread + 1));
    uint64_t held = 0;
    nbbs_reset_access_counts();
    pthread_barrier_wait(j->barrier);
    for (uint64_t i = 0; i < j->ops; i++) {
        rec *r = &j->recs[i];
        r->thread = j->thread;
        uint64_t x = splitmix(&rng);
        if (held > 0 && (x & 1)) {
            uint64_t k = (x >> 1) % held;
            r->is_free = true;
            r->a = j->held_addr[k];
            r->order = j->held_order[k];
            j->held_addr[k] = j->held_addr[held - 1];
            j->held_order[k] = j->held_order[held - 1];
            held--;
            r->call = now_ns();
            r->st = nbbs_free(&arena, r->a, r->order);
            r->ret = now_ns();
        } else {
            r->order = (int64_t)((x >> 1) % (arena.max_order + 1));
            r->call = now_ns();
            r->st = nbbs_alloc(&arena, r->order, NBBS_NO_HINT, &r->result);
            r->ret = now_ns();
            r->got = r->st == NBBS_OK;
            if (r->got) {
                j->held_addr[held] = r->result;
                j->held_order[held] = r->order;
                held++;
            }
        }
    }
    nbbs_access_counts(j->counts);
    return NULL;
}

static int by_call(const void *x, const void *y) {
    const rec *a = x, *b = y;
    return a->call < b->call ? -1 : a->call > b->call ? 1 : (a->thread > b->thread) - (a->thread < b->thread);
}

static void cmd_stress(char **tok, int n, FILE *out) {
    num th = parse_num(n == 4 ? tok[1] : NULL), ops = parse_num(n == 4 ? tok[2] : NULL);
    num seed = parse_num(n == 4 ? tok[3] : NULL);
    if (!th.ok || !ops.ok || !seed.ok || th.neg || ops.neg || th.big || ops.big || th.v == 0) {
        fprintf(out, "error ProtocolError expected 'stress THREADS OPS SEED' with THREADS >= 1, OPS >= 0\n");
        return;
    }
    if (th.v > MAX_STRESS_THREADS || (ops.v > 0 && th.v > MAX_STRESS_RECORDS / ops.v)) {
        fprintf(out, "error Unsupported at most %d threads and %llu operations in all\n", MAX_STRESS_THREADS,
                MAX_STRESS_RECORDS);
        return;
    }
    uint32_t threads = (uint32_t)th.v;
    uint64_t total = th.v * ops.v;
    rec *recs = calloc(total ? total : 1, sizeof *recs);
    uint64_t *held_addr = malloc((total ? total : 1) * sizeof *held_addr);
    int64_t *held_order = malloc((total ? total : 1) * sizeof *held_order);
    stress_job *jobs = calloc(threads, sizeof *jobs);
    pthread_t *ids = calloc(threads, sizeof *ids);
    if (!recs || !held_addr || !held_order || !jobs || !ids) {
        fprintf(out, "error Unsupported out of memory for %" PRIu64 " records\n", total);
        free(recs), free(held_addr), free(held_order), free(jobs), free(ids);
        return;
    }
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, threads);
    uint32_t made = 0;
    for (; made < threads; made++) {
        jobs[made] = (stress_job){made, ops.v, seed.wrapped, recs + made * ops.v, held_addr + made * ops.v,
                                  held_order + made * ops.v, &barrier, {0}};
        if (pthread_create(&ids[made], NULL, stress_thread, &jobs[made]) != 0) break;
    }
    if (made < threads) {
        /* The barrier waits for all of them: a thread that could not be made would hang it. */
        fprintf(stderr, "stress: could not create thread %u\n", made);
        abort();
    }
    for (uint32_t i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    pthread_barrier_destroy(&barrier);
#ifdef NBBS_COUNT_ATOMICS
    /* Diagnostics go to stderr (the protocol leaves it free): word accesses of the whole run. */
    uint64_t sum[NBBS_ACC_KINDS] = {0};
    for (uint32_t i = 0; i < threads; i++)
        for (int k = 0; k < NBBS_ACC_KINDS; k++) sum[k] += jobs[i].counts[k];
    fprintf(stderr, "stress accesses: ops=%" PRIu64, total);
    for (int k = 0; k < NBBS_ACC_KINDS; k++) fprintf(stderr, " %s=%" PRIu64, nbbs_access_name((nbbs_access)k), sum[k]);
    fprintf(stderr, "\n");
#endif
    qsort(recs, total, sizeof *recs, by_call);
    for (uint64_t i = 0; i < total; i++) {
        rec *r = &recs[i];
        if (r->is_free) {
            fprintf(out, "{\"thread\":%u,\"op\":\"free\",\"args\":[%" PRIu64 ",%" PRId64 "],\"result\":\"%s\"", r->thread,
                    r->a, r->order, r->st == NBBS_OK ? "ok" : nbbs_status_name(r->st));
        } else if (r->got) {
            fprintf(out, "{\"thread\":%u,\"op\":\"alloc\",\"args\":[%" PRId64 "],\"result\":%" PRIu64, r->thread, r->order,
                    r->result);
        } else {
            fprintf(out, "{\"thread\":%u,\"op\":\"alloc\",\"args\":[%" PRId64 "],\"result\":null", r->thread, r->order);
        }
        fprintf(out, ",\"call\":%" PRIu64 ",\"ret\":%" PRIu64 "}\n", r->call, r->ret);
    }
    fprintf(out, "end\n");
    free(recs), free(held_addr), free(held_order), free(jobs), free(ids);
}

/* -- sequential commands ------------------------------------------------------------------------ */

static void cmd_arena(char **tok, int n, FILE *out) {
    if (n != 6) {
        fprintf(out, "error ProtocolError expected 'arena DEPTH PAGE_SIZE START MAX_ORDER VARIANT'\n");
        return;
    }
    const char *variant = tok[5];
    int named = nbbs_variant_named(variant);
    if (named < 0 && (strcmp(variant, "corrected") == 0 || strcmp(variant, "rollback_only") == 0 ||
                      strcmp(variant, "skip_only") == 0 || strcmp(variant, "rollback_skip") == 0 ||
                      strcmp(variant, "rollback_skip_last") == 0 || strcmp(variant, "stop_early") == 0)) {
        fprintf(out, "error Unsupported variant %s is not in this port (it has " PORT_VARIANTS_TEXT ")\n", variant);
        return;
    }
    if (named < 0) {
        fprintf(out, "error ConfigurationError variant must be one of " PORT_VARIANTS_TEXT ", got '%s'\n", variant);
        return;
    }
    nbbs_variant v = (nbbs_variant)named;
    num depth = parse_num(tok[1]), page = parse_num(tok[2]), start = parse_num(tok[3]);
    num mo = is_dash(tok[4]) ? (num){.ok = true, .neg = true, .v = 1} : parse_num(tok[4]);
    bool mo_default = is_dash(tok[4]);
    if (!depth.ok || !page.ok || !start.ok || !mo.ok) {
        fprintf(out, "error ProtocolError arena arguments must be decimal integers (MAX_ORDER may be '-')\n");
        return;
    }
    if (depth.neg || depth.big || depth.v > NBBS_MAX_DEPTH) {
        fprintf(out, "error ConfigurationError depth must be an int from 0 to %d, got %s%s\n", NBBS_MAX_DEPTH,
                depth.neg ? "-" : "", tok[1] + (tok[1][0] == '-'));
        return;
    }
    if (page.neg || page.big || (!mo_default && (mo.neg || mo.big || mo.v > depth.v)) || start.neg || start.big) {
        fprintf(out, "error ConfigurationError page_size, max_order or start out of range: %s %s %s\n", tok[2], tok[4],
                tok[3]);
        return;
    }
    int max_order = mo_default ? -1 : (int)mo.v;
    unsigned d = (unsigned)depth.v;
    if (nbbs_check_shape(d, page.v, start.v, max_order) != NBBS_OK) {
        fprintf(out,
                "error ConfigurationError page_size %s must be a power of two, start %s aligned to the largest block, "
                "and the arena below 2**64\n",
                tok[2], tok[3]);
        return;
    }
#ifdef NBBS_CONTROLLED
    if (any_in_flight()) {
        fprintf(out, "error ProtocolError a thread is in flight on the current arena\n");
        return;
    }
    stop_logical();
#endif
    /* Fresh anonymous memory is zero: attach to it (nbbs_init would touch every page). */
    size_t len = nbbs_words_bytes(d);
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
        fprintf(out, "error ConfigurationError cannot map %zu bytes of words for depth %u\n", len, d);
        return;
    }
    if (have_arena) munmap(words_mem, words_len);
    words_mem = mem;
    words_len = len;
    nbbs_attach(&arena, mem, d, page.v, start.v, max_order, v);
    have_arena = true;
    fprintf(out, "ok\n");
}

static void cmd_words(FILE *out) {
    fprintf(out, "words");
    uint64_t count = nbbs_node_count(arena.depth);
    for (uint64_t i = 0; i < count; i++) fprintf(out, " %" PRIu64, nbbs_peek(&arena, i));
    fprintf(out, "\n");
}

int port_handle(const char *line, FILE *out) {
#ifdef NBBS_CONTROLLED
    static bool hooked;
    if (!hooked) nbbs_set_hooks(announce, report), hooked = true;
#endif
    size_t len = strlen(line);
    char *copy = malloc(len + 1);
    if (copy == NULL) abort();
    memcpy(copy, line, len + 1);
    char *tok[MAX_TOKENS + 1];
    int n = split(copy, tok);
    int quit = 0;
    if (n == 0) {
        fprintf(out, "error ProtocolError empty line\n");
    } else if (n > MAX_TOKENS) {
        fprintf(out, "error ProtocolError too many tokens\n");
    } else if (strcmp(tok[0], "hello") == 0) {
        if (n == 2 && strcmp(tok[1], "1") == 0)
            fprintf(out, "hello 1 name=nbbs-c features=words,stress" CONTROLLED_FEATURE ",variants=" PORT_VARIANTS_FEATURE "\n");
        else fprintf(out, "error ProtocolError this port speaks protocol version 1 only\n");
    } else if (strcmp(tok[0], "quit") == 0) {
        quit = 1;
    } else if (strcmp(tok[0], "arena") == 0) {
        cmd_arena(tok, n, out);
    } else if (strcmp(tok[0], "alloc") == 0 || strcmp(tok[0], "free") == 0 || strcmp(tok[0], "words") == 0 ||
               strcmp(tok[0], "stress") == 0 || strcmp(tok[0], "spawn") == 0 || strcmp(tok[0], "step") == 0) {
        if (!have_arena) {
            fprintf(out, "error ProtocolError no arena yet: send 'arena DEPTH PAGE_SIZE START MAX_ORDER VARIANT'\n");
        } else if (tok[0][0] == 'w') {
            if (n == 1) cmd_words(out);
            else fprintf(out, "error ProtocolError 'words' takes no arguments\n");
        } else if (strcmp(tok[0], "stress") == 0) {
            cmd_stress(tok, n, out);
        } else if (strcmp(tok[0], "spawn") == 0 || strcmp(tok[0], "step") == 0) {
#ifdef NBBS_CONTROLLED
            if (tok[0][1] == 'p') cmd_spawn(tok, n, out);
            else cmd_step(tok, n, out);
#else
            fprintf(out, "error Unsupported controlled mode: build with --controlled\n");
#endif
        } else {
            op_args op = {0};
            char res[RESULT_CAP];
            /* (In the controlled build a logical thread may be stopped at an access meanwhile:
             * this runs on the main thread, which the hooks let through, as one atomic step.) */
            if (!parse_op(tok, n, &op, res, sizeof res)) fprintf(out, "error ProtocolError %s\n", res);
            else {
                run_op(&op, res, sizeof res);
                fprintf(out, "%s\n", res);
            }
        }
    } else {
        fprintf(out, "error ProtocolError unknown command '%s'\n", tok[0]);
    }
    free(copy);
    return quit;
}
