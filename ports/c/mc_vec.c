/* mc_vec.c: the hot loops of the vectorized model checker (nbbs.check._mc_vec), a shared library.
 *
 * Not a step machine: every step comes from the tables ``_mc_vec.Tables`` generates from
 * model/steps.py (row = op id * K + word code -> next op id, new word code, done). This file
 * only unpacks a state's fields, looks rows up, re-sorts the op ids (thread symmetry) and packs
 * the successor, exactly as ``Tables.successors``'s numpy code does; and it searches sorted
 * key arrays with sorted queries (galloping, so a lookup costs the log of the gap, not of the
 * array).
 *
 * Keys: ``h`` (uint64) and, when a state needs more than 64 bits, ``hi`` (uint64); the packed
 * fields sit in ``lo`` and ``hi``, and ``h = lo ^ mix(hi)`` (splitmix64's finalizer).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MCV_MAX_FIELDS 128
#define MCV_MAX_THREADS 16

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* The layout and the tables of one configuration (``_mc_vec.Tables``), filled from Python. */
typedef struct {
    int32_t F;             /* fields */
    int32_t tc;            /* column of the first thread's op id (the nodes come first) */
    int32_t T;             /* threads */
    int32_t K;             /* row width: word codes per op */
    int32_t has_hi;
    int32_t _pad;
    const int8_t *word;    /* per field: 0 lo, 1 hi */
    const uint8_t *shift;  /* per field */
    const uint64_t *mask;  /* per field, unshifted */
    const int64_t *mv_cnt; /* per op id: how many ops it may run next */
    const int64_t *mv_off; /* ... where they start in mv_flat */
    const int64_t *mv_flat;
    const uint8_t *bad_move; /* per op id: its moves raise (a bad scenario) */
    const int64_t *acc_col;  /* per op: the field of the node it accesses */
    const int32_t *nxt;      /* [op * K + code]: next op id, -1 a row _mc refuses */
    const int32_t *newc;     /* [op * K + code]: the code of the word left */
    const uint8_t *done;     /* [op * K + code]: the step completes an operation */
    const int32_t *scc;      /* per op id: its strongly connected component among the steps
                                that complete nothing (NULL until the lock-freedom pass) */
} mcv_tables;

static inline uint64_t field(const mcv_tables *t, int f, uint64_t lo, uint64_t hi) {
    return ((t->word[f] ? hi : lo) >> t->shift[f]) & t->mask[f];
}

/* Every successor of states 0..n-1: writes keys, done flags and the source index of each, at
 * most ``cap``, and returns how many, with err[3] = the states whose successors were all
 * written (n, unless cap ran out first: call again from there). Or -1 (a missing row: err[0]
 * = op, err[1] = code, err[2] = source) or -2 (a bad move: err[0] = op id). ``done_out`` and
 * ``src_out`` may be NULL (not wanted). ``intra``: only the steps that complete nothing and
 * keep the stepping thread in its op state's component (``scc``): the only steps a cycle of
 * the lock-freedom pass can take. */
int64_t mcv_expand(const mcv_tables *t, int64_t n, const uint64_t *h_in, const uint64_t *hi_in,
                   uint64_t *h_out, uint64_t *hi_out, uint8_t *done_out, int64_t *src_out,
                   int64_t cap, int64_t *err, int intra) {
    const int tc = t->tc, T = t->T, K = t->K;
    int64_t out = 0;
    uint64_t tid_clear_lo = 0, tid_clear_hi = 0;
    for (int j = 0; j < T; j++) {
        uint64_t m = t->mask[tc + j] << t->shift[tc + j];
        if (t->word[tc + j])
            tid_clear_hi |= m;
        else
            tid_clear_lo |= m;
    }
    err[3] = n;
    for (int64_t s = 0; s < n; s++) {
        int64_t first = out;
        uint64_t hi = t->has_hi ? hi_in[s] : 0;
        uint64_t lo = t->has_hi ? h_in[s] ^ mix(hi) : h_in[s];
        int64_t tids[MCV_MAX_THREADS];
        for (int j = 0; j < T; j++) tids[j] = (int64_t)field(t, tc + j, lo, hi);
        uint64_t base_lo = lo & ~tid_clear_lo, base_hi = hi & ~tid_clear_hi;
        for (int k = 0; k < T; k++) {
            int64_t tid = tids[k];
            if (k && tid == tids[k - 1]) continue; /* the same state as the previous thread */
            if (t->bad_move[tid]) {
                err[0] = tid;
                return -2;
            }
            int64_t cnt = t->mv_cnt[tid], off = t->mv_off[tid];
            for (int64_t m = 0; m < cnt; m++) {
                int64_t op = t->mv_flat[off + m];
                int col = (int)t->acc_col[op];
                uint64_t old = field(t, col, lo, hi);
                int64_t r = op * K + (int64_t)old;
                int32_t nx = t->nxt[r];
                if (nx < 0) {
                    err[0] = op;
                    err[1] = (int64_t)old;
                    err[2] = s;
                    return -1;
                }
                if (intra && (t->done[r] || t->scc[tid] != t->scc[nx])) continue;
                if (out >= cap) {
                    err[3] = s;
                    return first;
                }
                uint64_t change = (old ^ (uint64_t)t->newc[r]) << t->shift[col];
                uint64_t nlo = base_lo, nhi = base_hi;
                if (t->word[col])
                    nhi ^= change;
                else
                    nlo ^= change;
                /* The other threads' ids are sorted: insert the new one in place. */
                int64_t ids[MCV_MAX_THREADS];
                int c = 0;
                int placed = 0;
                for (int j = 0; j < T; j++) {
                    if (j == k) continue;
                    if (!placed && nx <= tids[j]) {
                        ids[c++] = nx;
                        placed = 1;
                    }
                    ids[c++] = tids[j];
                }
                if (!placed) ids[c++] = nx;
                for (int j = 0; j < T; j++) {
                    int f = tc + j;
                    uint64_t v = (uint64_t)ids[j] << t->shift[f];
                    if (t->word[f])
                        nhi |= v;
                    else
                        nlo |= v;
                }
                if (t->has_hi) {
                    h_out[out] = nlo ^ mix(nhi);
                    hi_out[out] = nhi;
                } else {
                    h_out[out] = nlo;
                }
                if (done_out) done_out[out] = t->done[r];
                if (src_out) src_out[out] = s;
                out++;
            }
        }
    }
    return out;
}

/* For each query q[i] (sorted ascending), the first index of run (sorted ascending, length m)
 * whose value is >= q[i]: numpy's searchsorted(run, q, "left"), galloping from the last answer. */
void mcv_lower_bound(const uint64_t *run, int64_t m, const uint64_t *q, int64_t n, int64_t *out) {
    int64_t lo = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t x = q[i];
        /* Gallop: find a bound hi with run[hi] >= x (or m). */
        int64_t step = 1, hi = lo;
        while (hi < m && run[hi] < x) {
            lo = hi + 1;
            hi += step;
            step <<= 1;
        }
        if (hi > m) hi = m;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            if (run[mid] < x)
                lo = mid + 1;
            else
                hi = mid;
        }
        out[i] = lo;
    }
}

/* Merging sorted runs in place: a run of keys (h, hi), ordered by h then hi, ``hi`` absent (w
 * = 0) or 1, 2, 4 or 8 bytes wide. ``a`` has room for na + nb keys; ``b`` (na, nb: their
 * lengths) is merged into it from the back, so no third array is needed. A key in both is
 * kept once: the merged run is the last ``returned`` slots of a's room, moved to its front. */
#define MCV_MERGE(NAME, HT)                                                                      \
    static int64_t NAME(uint64_t *ha, HT *hia, int64_t na, const uint64_t *hb, const HT *hib,   \
                        int64_t nb) {                                                            \
        int64_t i = na - 1, j = nb - 1, o = na + nb;                                             \
        while (j >= 0) {                                                                         \
            int c; /* compare a[i] with b[j]: 1 if a[i] is greater */                            \
            if (i < 0)                                                                           \
                c = -1;                                                                          \
            else if (ha[i] != hb[j])                                                             \
                c = ha[i] > hb[j] ? 1 : -1;                                                      \
            else if (hia && hia[i] != hib[j])                                                    \
                c = hia[i] > hib[j] ? 1 : -1;                                                    \
            else                                                                                 \
                c = 0;                                                                           \
            o--;                                                                                 \
            if (c > 0) {                                                                         \
                ha[o] = ha[i];                                                                   \
                if (hia) hia[o] = hia[i];                                                        \
                i--;                                                                             \
            } else {                                                                             \
                ha[o] = hb[j];                                                                   \
                if (hia) hia[o] = hib[j];                                                        \
                j--;                                                                             \
                if (c == 0) i--; /* the same key: keep one */                                    \
            }                                                                                    \
        }                                                                                        \
        /* a[0..i] are in place already; the merged tail starts at o. */                         \
        int64_t kept = i + 1, tail = na + nb - o;                                                \
        if (o != kept) {                                                                         \
            memmove(ha + kept, ha + o, (size_t)tail * sizeof *ha);                               \
            if (hia) memmove(hia + kept, hia + o, (size_t)tail * sizeof *hia);                   \
        }                                                                                        \
        return kept + tail;                                                                      \
    }

MCV_MERGE(merge0, uint64_t)
MCV_MERGE(merge1, uint8_t)
MCV_MERGE(merge2, uint16_t)
MCV_MERGE(merge4, uint32_t)
MCV_MERGE(merge8, uint64_t)

/* Returns the merged length, or -1 for a width not in {0, 1, 2, 4, 8}. */
int64_t mcv_merge_into(uint64_t *ha, void *hia, int64_t na, const uint64_t *hb, const void *hib,
                       int64_t nb, int w) {
    switch (w) {
    case 0: return merge0(ha, NULL, na, hb, NULL, nb);
    case 1: return merge1(ha, hia, na, hb, hib, nb);
    case 2: return merge2(ha, hia, na, hb, hib, nb);
    case 4: return merge4(ha, hia, na, hb, hib, nb);
    case 8: return merge8(ha, hia, na, hb, hib, nb);
    default: return -1;
    }
}

/* Looking sorted keys up in a sorted run: for each query (ascending by h, then hi), whether the
 * run holds it (found[i]) and where it is or would go (at[i]); galloping from the last answer,
 * so a bucket of queries costs the log of the gaps between them, not of the run. */
#define MCV_FIND(NAME, HT)                                                                       \
    static void NAME(const uint64_t *rh, const HT *rhi, int64_t m, const uint64_t *qh,          \
                     const HT *qhi, int64_t n, uint8_t *found, int64_t *at) {                   \
        int64_t lo = 0;                                                                          \
        for (int64_t i = 0; i < n; i++) {                                                        \
            uint64_t x = qh[i];                                                                  \
            int64_t step = 1, hi = lo;                                                           \
            while (hi < m && rh[hi] < x) {                                                       \
                lo = hi + 1;                                                                     \
                hi += step;                                                                      \
                step <<= 1;                                                                      \
            }                                                                                    \
            if (hi > m) hi = m;                                                                  \
            while (lo < hi) {                                                                    \
                int64_t mid = lo + (hi - lo) / 2;                                                \
                if (rh[mid] < x)                                                                 \
                    lo = mid + 1;                                                                \
                else                                                                             \
                    hi = mid;                                                                    \
            }                                                                                    \
            /* lo: the first key with h >= x; among those with h == x, find hi. */              \
            int64_t j = lo;                                                                      \
            if (rhi)                                                                             \
                while (j < m && rh[j] == x && rhi[j] < qhi[i]) j++;                              \
            found[i] = j < m && rh[j] == x && (!rhi || rhi[j] == qhi[i]);                        \
            at[i] = j;                                                                           \
        }                                                                                        \
    }

MCV_FIND(find0, uint64_t)
MCV_FIND(find1, uint8_t)
MCV_FIND(find2, uint16_t)
MCV_FIND(find4, uint32_t)
MCV_FIND(find8, uint64_t)

/* Returns 0, or -1 for a width not in {0, 1, 2, 4, 8}. */
int mcv_find(const uint64_t *rh, const void *rhi, int64_t m, const uint64_t *qh, const void *qhi,
             int64_t n, int w, uint8_t *found, int64_t *at) {
    switch (w) {
    case 0: find0(rh, NULL, m, qh, NULL, n, found, at); return 0;
    case 1: find1(rh, rhi, m, qh, qhi, n, found, at); return 0;
    case 2: find2(rh, rhi, m, qh, qhi, n, found, at); return 0;
    case 4: find4(rh, rhi, m, qh, qhi, n, found, at); return 0;
    case 8: find8(rh, rhi, m, qh, qhi, n, found, at); return 0;
    default: return -1;
    }
}

/* Lock-freedom, one state at a time: for states 0..n-1, whether a thread can step forever on
 * its own without completing its operation or changing a word. From each thread's op id it
 * follows the rows at the state's words while they complete nothing and leave the word as it
 * was (the words stay the same, so the walk is the thread's whole future while it runs
 * alone), for at most ``limit`` steps; coming back to the op id it started from is a cycle.
 * out[s] = 1 + the thread's slot (0: none); returns the first such state, or -1; or -2 - s
 * for a state whose walk meets a missing row (err[0] = op, err[1] = code). */
int64_t mcv_spin(const mcv_tables *t, int64_t n, const uint64_t *h_in, const uint64_t *hi_in,
                 uint8_t *out, int64_t limit, int64_t *err) {
    const int tc = t->tc, T = t->T, K = t->K;
    int64_t first = -1;
    for (int64_t s = 0; s < n; s++) {
        uint64_t hi = t->has_hi ? hi_in[s] : 0;
        uint64_t lo = t->has_hi ? h_in[s] ^ mix(hi) : h_in[s];
        out[s] = 0;
        int64_t prev = -1;
        for (int k = 0; k < T && !out[s]; k++) {
            int64_t tid = (int64_t)field(t, tc + k, lo, hi);
            if (tid == prev) continue; /* the same op id as the previous thread: the same walk */
            prev = tid;
            int64_t cur = tid;
            for (int64_t i = 0; i < limit; i++) {
                int64_t col = t->acc_col[cur];
                if (col < 0 || t->mv_cnt[cur] != 1 || t->mv_flat[t->mv_off[cur]] != cur) break;
                uint64_t code = field(t, (int)col, lo, hi);
                int64_t r = cur * K + (int64_t)code;
                int32_t nx = t->nxt[r];
                if (nx == -1) break; /* a row _mc refuses: the search reports it */
                if (nx < 0) {
                    err[0] = cur;
                    err[1] = (int64_t)code;
                    return -2 - s;
                }
                if (t->done[r] || (uint64_t)t->newc[r] != code) break;
                cur = nx;
                if (cur == tid) {
                    out[s] = (uint8_t)(1 + k);
                    break;
                }
            }
        }
        if (out[s] && first < 0) first = s;
    }
    return first;
}

/* Rows computed when first reached: the rows (op * K + code) the successors of states 0..n-1
 * need that are not computed yet (nxt = -2), at most ``cap`` (repeats included; the caller
 * makes them unique); returns how many (cap: call again once they are computed). */
int64_t mcv_missing(const mcv_tables *t, int64_t n, const uint64_t *h_in, const uint64_t *hi_in,
                    int64_t *out, int64_t cap) {
    const int tc = t->tc, T = t->T, K = t->K;
    int64_t got = 0;
    for (int64_t s = 0; s < n && got < cap; s++) {
        uint64_t hi = t->has_hi ? hi_in[s] : 0;
        uint64_t lo = t->has_hi ? h_in[s] ^ mix(hi) : h_in[s];
        int64_t prev = -1;
        for (int k = 0; k < T; k++) {
            int64_t tid = (int64_t)field(t, tc + k, lo, hi);
            if (tid == prev || t->bad_move[tid]) continue;
            prev = tid;
            int64_t cnt = t->mv_cnt[tid], off = t->mv_off[tid];
            for (int64_t m = 0; m < cnt && got < cap; m++) {
                int64_t op = t->mv_flat[off + m];
                int64_t r = op * K + (int64_t)field(t, (int)t->acc_col[op], lo, hi);
                if (t->nxt[r] == -2) out[got++] = r;
            }
        }
    }
    return got;
}

/* Properties (a), (c) and quiescence of states 0..n-1, as ``Tables.props``'s numpy expressions
 * compute them: out[s] bit 0: two held blocks overlap, or one overlaps the static set ((a));
 * bit 1: that, or the OCC bits differ from the linearized live blocks plus those in flight
 * ((c)); bit 2: every thread is between operations (quiescent: (b) is judged on those). The
 * lookups are ``Tables``'s property tables: per op id hold, flight, between; per static set
 * its live blocks and the nodes they overlap; per node pair whether they overlap (N x N); per
 * node and word code its OCC bit (N x K); per node its bit. */
void mcv_props(const mcv_tables *t, int64_t n, const uint64_t *h_in, const uint64_t *hi_in,
               const int64_t *hold, const int64_t *flight, const uint8_t *between,
               const uint64_t *static_live, const uint64_t *static_overlap, const uint8_t *overlap,
               const uint64_t *occ, const uint64_t *bit, int64_t N, uint8_t *out) {
    const int tc = t->tc, T = t->T, K = t->K, sc = t->tc + t->T;
    for (int64_t s = 0; s < n; s++) {
        uint64_t hi = t->has_hi ? hi_in[s] : 0;
        uint64_t lo = t->has_hi ? h_in[s] ^ mix(hi) : h_in[s];
        int64_t st = (int64_t)field(t, sc, lo, hi);
        uint64_t so = static_overlap[st], want = static_live[st];
        int64_t holds[MCV_MAX_THREADS];
        int clash = 0, quiet = 1;
        for (int k = 0; k < T; k++) {
            int64_t tid = (int64_t)field(t, tc + k, lo, hi);
            int64_t h = hold[tid];
            holds[k] = h;
            if (h > 0 && ((so >> h) & 1)) clash = 1;
            for (int j = 0; j < k; j++)
                if (overlap[holds[j] * N + h]) clash = 1;
            want |= bit[h > 0 ? h : flight[tid]];
            if (!between[tid]) quiet = 0;
        }
        uint64_t o = 0;
        for (int f = 0; f < tc; f++) o |= occ[(int64_t)(f + 1) * K + (int64_t)field(t, f, lo, hi)];
        out[s] = (uint8_t)(clash | ((clash || o != want) << 1) | (quiet << 2));
    }
}
