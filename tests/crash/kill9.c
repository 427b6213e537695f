/*
 * kill -9 under load, again and again, on the same data dir.
 *
 * A "life" is one data dir. Its first round creates the SKUs; every round
 * then starts allotd on the dir (sync durability, small tables, 1 or 2
 * network threads, sometimes frequent snapshots), drives a mixed load from
 * several connections — PLACE all-or-nothing and partial, with and without
 * holds, CONFIRM, CANCEL, FULFILL, EXTEND, RESTOCK, ADJUST, SKU_SET — on a
 * few hot SKUs with per-customer limits and on cold ones, records every
 * answer, and kills the server with SIGKILL after a random delay. It then
 * restarts allotd on the same dir and checks, against what was
 * acknowledged:
 *
 *   - every acknowledged order exists with the same customer, lines and
 *     allocations, in a state that the acknowledged history (plus the one
 *     request that may have been in flight for it, plus hold expiry)
 *     allows; a PLACE acknowledged as rejected left no order; a PLACE whose
 *     answer was lost may or may not exist, but if it does it is whole;
 *   - every SKU's allocated equals the sum over its live orders exactly,
 *     0 <= allocated <= on_hand, on_hand equals what the acknowledged
 *     SKU_SET / RESTOCK / ADJUST / FULFILL imply (within what requests in
 *     flight at the kill could add), and its settings are the acknowledged
 *     ones; no customer holds more of a limited SKU than its limit;
 *   - the live state digest (STATS) equals the digest allot-journal
 *     computes by replaying the data dir after a clean stop (SIGTERM), from
 *     the snapshots and from the bare journal, and the digest the next
 *     round's server reports after its start.
 *
 * Each cold SKU is touched by one connection only, and a SKU_SET on it is
 * sent only while nothing else on it is in flight (and nothing is sent on
 * it until the SKU_SET is answered): absolute and relative changes then
 * never race, so on_hand stays exactly predictable. Each order's requests
 * come from one connection, one at a time.
 *
 * usage: crash_kill9 --allotd PATH [--journal PATH] [--seed N] [--lives N]
 *                    [--rounds N] [--budget-s N]
 * Reproduce a run with the seed it prints (the kill moment and thread
 * interleaving still vary).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crash_util.h"

#define HOT 4u
#define COLD_PER_THREAD 6u
#define THREADS_MAX_T 4u
#define SKUS_T (HOT + COLD_PER_THREAD * THREADS_MAX_T)
#define LINES_T 3u
#define DEPTH 16u        /* frames in flight per connection: enough that the
                            server is busy when the kill comes */
#define BATCH_T 16u      /* elements per frame */
#define CUSTOMERS 40u
#define HOT_LIMIT 6u
#define PLACE_BUDGET 20000u /* PLACEs per round, so the orders table never fills */
#define PLACE_PACE_MS 1500u /* ... released evenly over this time, so that the
                               load is still busy when the kill comes */
#define ORDERS_MAX "131072"
#define HOLD_LONG_MS 600000u
#define NO_SKU UINT16_MAX

/* ---- the model ------------------------------------------------------------- */

typedef struct sku_m {
    uint64_t id;       /* hot SKUs first, then each connection's cold ones */
    int64_t anchor;    /* on_hand exactly, at the last anchor point */
    uint32_t limit, reorder;
    bool set_pending;  /* owner: a SKU_SET is in flight */
    bool set_unknown;  /* a SKU_SET's answer was lost at the kill */
    uint64_t set_on_hand;
    uint32_t set_limit, set_reorder;
} sku_m_t;

/* One connection's view of one SKU since its anchor. */
typedef struct thr_sku {
    int64_t delta;     /* acknowledged RESTOCK and ADJUST */
    int64_t fulfilled; /* units shipped by acknowledged FULFILLs */
    int64_t lo, hi;    /* what lost RESTOCK/ADJUST answers may have added */
    uint32_t inflight; /* requests touching it */
} thr_sku_t;

enum { P_NONE, P_OK, P_REJECTED, P_UNKNOWN };

typedef struct ord_m {
    uint64_t id, customer;
    uint64_t deadline;        /* acknowledged, HELD only */
    uint32_t hold_ms;
    uint8_t policy, nlines;
    uint8_t place;            /* P_* */
    uint8_t state;            /* acknowledged (or checked) state */
    uint8_t pending;          /* opcode in flight */
    uint8_t unknown_op;       /* opcode whose answer was lost */
    uint16_t sidx[LINES_T];   /* SKU index, NO_SKU for an unknown SKU */
    uint64_t sku[LINES_T];
    uint32_t qty[LINES_T], alloc[LINES_T];
} ord_m_t;

typedef struct frame_m {
    uint16_t opcode;
    uint16_t n;
    uint32_t idx[BATCH_T]; /* order index, or SKU index */
    int64_t amount[BATCH_T];
    uint32_t limit[BATCH_T], reorder[BATCH_T];
    bool used;
} frame_m_t;

struct life;

typedef struct thr {
    unsigned index;
    struct life *life;
    pthread_t tid;
    uint64_t rng;
    allot_conn_t *conn;
    allot_batch_t *batch;
    ord_m_t *ords;
    size_t nords, cap;
    uint32_t *live; /* indices of orders that may be HELD or CONFIRMED */
    size_t nlive, live_cap;
    thr_sku_t sk[SKUS_T];
    uint64_t next_order;
    frame_m_t frames[DEPTH];
    uint64_t answered, unknown;
    char err[512];
} thr_t;

typedef struct life {
    unsigned index;
    unsigned nthreads;
    char work[128], data[192], log[192];
    sku_m_t skus[SKUS_T];
    unsigned nskus;
    thr_t thr[THREADS_MAX_T];
    atomic_uint placed;
    uint64_t load_start_ms;
    atomic_bool killed;
    uint64_t last_digest, last_seq; /* at the last clean stop */
    bool have_last;
} life_t;

static const char *allotd_path;
static const char *journal_path;

#define TFAIL(t, ...)                                                           \
    do {                                                                        \
        if (!(t)->err[0])                                                       \
            snprintf((t)->err, sizeof (t)->err, __VA_ARGS__);                   \
    } while (0)

/* ---- load: building requests ------------------------------------------------ */

static ord_m_t *new_order(thr_t *t)
{
    if (t->nords == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4096;
        t->ords = realloc(t->ords, t->cap * sizeof *t->ords);
        CHECK(t->ords != NULL, "out of memory");
    }
    ord_m_t *o = &t->ords[t->nords++];
    memset(o, 0, sizeof *o);
    return o;
}

static void live_push(thr_t *t, uint32_t k)
{
    if (t->nlive == t->live_cap) {
        t->live_cap = t->live_cap ? t->live_cap * 2 : 4096;
        t->live = realloc(t->live, t->live_cap * sizeof *t->live);
        CHECK(t->live != NULL, "out of memory");
    }
    t->live[t->nlive++] = k;
}

static unsigned cold_sku(unsigned thread, unsigned k)
{
    return HOT + thread * COLD_PER_THREAD + k;
}

static bool sku_usable(const thr_t *t, unsigned s)
{
    return !t->life->skus[s].set_pending;
}

static void touch_skus(thr_t *t, const ord_m_t *o, int d)
{
    for (unsigned i = 0; i < o->nlines; i++)
        if (o->sidx[i] != NO_SKU)
            t->sk[o->sidx[i]].inflight += (uint32_t)d;
}

/* PLACEs are released evenly over the pace time (see PLACE_PACE_MS). */
static bool place_allowed(life_t *L)
{
    uint64_t spent = cu_mono_ms() - L->load_start_ms;
    uint64_t allowed = spent >= PLACE_PACE_MS ? PLACE_BUDGET : PLACE_BUDGET * spent / PLACE_PACE_MS;
    if (atomic_load(&L->placed) >= allowed)
        return false;
    atomic_fetch_add(&L->placed, 1);
    return true;
}

/* 1..3 distinct lines: hot SKUs, this connection's cold ones, and now and
 * then a SKU nobody created. */
static void pick_lines(thr_t *t, ord_m_t *o)
{
    unsigned want = (unsigned)cu_range(&t->rng, 1, LINES_T);
    for (unsigned tries = 0; o->nlines < want && tries < 12; tries++) {
        uint16_t s = NO_SKU;
        uint64_t id = 0xdead0000u + cu_range(&t->rng, 0, 3);
        if (cu_range(&t->rng, 0, 49) != 0) {
            s = cu_range(&t->rng, 0, 9) < 6
                    ? (uint16_t)cu_range(&t->rng, 0, HOT - 1)
                    : (uint16_t)cold_sku(t->index,
                                         (unsigned)cu_range(&t->rng, 0, COLD_PER_THREAD - 1));
            if (!sku_usable(t, s))
                continue;
            id = t->life->skus[s].id;
        }
        bool dup = false;
        for (unsigned i = 0; i < o->nlines; i++)
            dup |= o->sku[i] == id;
        if (dup)
            continue;
        o->sidx[o->nlines] = s;
        o->sku[o->nlines] = id;
        o->qty[o->nlines] = (uint32_t)cu_range(&t->rng, 1, 4);
        o->nlines++;
    }
}

/* An order: all-or-nothing or partial, with no hold, a short one (it may
 * expire during the round) or a long one. */
static bool add_place(thr_t *t, frame_m_t *f)
{
    if (!place_allowed(t->life))
        return false;
    ord_m_t *o = new_order(t);
    o->id = t->next_order++;
    o->customer = 1 + cu_range(&t->rng, 0, CUSTOMERS - 1);
    o->policy = cu_range(&t->rng, 0, 9) < 6 ? ALLOT_POLICY_ALL_OR_NOTHING : ALLOT_POLICY_PARTIAL;
    unsigned h = (unsigned)cu_range(&t->rng, 0, 9);
    o->hold_ms = h < 4 ? 0 : h < 7 ? (uint32_t)cu_range(&t->rng, 150, 1500) : HOLD_LONG_MS;
    pick_lines(t, o);
    if (o->nlines == 0) {
        t->nords--;
        return false;
    }
    allot_line_t lines[LINES_T];
    for (unsigned i = 0; i < o->nlines; i++)
        lines[i] = (allot_line_t){.sku = o->sku[i], .qty = o->qty[i]};
    allot_order_spec_t spec = {.order = o->id, .customer = o->customer, .hold_ms = o->hold_ms,
                               .policy = o->policy, .lines = lines, .line_count = o->nlines};
    int rc = allot_batch_add_place(t->batch, &spec);
    CHECK(rc == 0, "add PLACE: %s", strerror(-rc));
    o->place = P_UNKNOWN; /* until answered */
    o->pending = ALLOT_OP_PLACE;
    touch_skus(t, o, 1);
    f->idx[f->n++] = (uint32_t)(t->nords - 1);
    return true;
}

/* A live order fit for opcode, with nothing in flight. */
static ord_m_t *pick_live(thr_t *t, uint16_t opcode, uint32_t *k_out)
{
    for (unsigned tries = 0; tries < 8 && t->nlive > 0; tries++) {
        size_t j = (size_t)cu_range(&t->rng, 0, t->nlive - 1);
        uint32_t k = t->live[j];
        ord_m_t *o = &t->ords[k];
        if (o->state != ALLOT_STATE_HELD && o->state != ALLOT_STATE_CONFIRMED) {
            t->live[j] = t->live[--t->nlive];
            continue;
        }
        if (o->pending)
            continue;
        bool ok = opcode == ALLOT_OP_CANCEL ||
                  (opcode == ALLOT_OP_FULFILL ? o->state == ALLOT_STATE_CONFIRMED
                                              : o->state == ALLOT_STATE_HELD);
        for (unsigned i = 0; ok && i < o->nlines; i++)
            ok = o->sidx[i] == NO_SKU || sku_usable(t, o->sidx[i]);
        if (ok) {
            *k_out = k;
            return o;
        }
    }
    return NULL;
}

static bool add_order_op(thr_t *t, frame_m_t *f, uint16_t opcode)
{
    uint32_t k;
    ord_m_t *o = pick_live(t, opcode, &k);
    if (!o)
        return false;
    int rc;
    uint32_t ms = 0;
    switch (opcode) {
    case ALLOT_OP_CONFIRM: rc = allot_batch_add_confirm(t->batch, o->id); break;
    case ALLOT_OP_CANCEL: rc = allot_batch_add_cancel(t->batch, o->id); break;
    case ALLOT_OP_FULFILL: rc = allot_batch_add_fulfill(t->batch, o->id); break;
    default:
        ms = (uint32_t)cu_range(&t->rng, 500, 120000);
        rc = allot_batch_add_extend(t->batch, o->id, ms);
        break;
    }
    CHECK(rc == 0, "add %s: %s", allot_opcode_name(opcode), strerror(-rc));
    o->pending = (uint8_t)opcode;
    touch_skus(t, o, 1);
    f->amount[f->n] = ms;
    f->idx[f->n++] = k;
    return true;
}

static bool add_sku_op(thr_t *t, frame_m_t *f, uint16_t opcode)
{
    life_t *L = t->life;
    unsigned s;
    if (opcode == ALLOT_OP_SKU_SET || cu_range(&t->rng, 0, 1) == 0)
        s = cold_sku(t->index, (unsigned)cu_range(&t->rng, 0, COLD_PER_THREAD - 1));
    else
        s = (unsigned)cu_range(&t->rng, 0, HOT - 1);
    if (!sku_usable(t, s))
        return false;
    sku_m_t *m = &L->skus[s];
    int rc;
    if (opcode == ALLOT_OP_SKU_SET) {
        /* absolute: only while nothing else on this SKU is in flight */
        if (t->sk[s].inflight != 0)
            return false;
        f->amount[f->n] = (int64_t)cu_range(&t->rng, 0, 80);
        f->limit[f->n] = cu_range(&t->rng, 0, 2) == 0 ? (uint32_t)cu_range(&t->rng, 2, 8) : 0;
        f->reorder[f->n] = (uint32_t)cu_range(&t->rng, 0, 5);
        rc = allot_batch_add_sku_set(t->batch, m->id, (uint64_t)f->amount[f->n], f->limit[f->n],
                                     f->reorder[f->n]);
        m->set_pending = true;
    } else if (opcode == ALLOT_OP_RESTOCK) {
        f->amount[f->n] = (int64_t)cu_range(&t->rng, 1, s < HOT ? 12 : 6);
        rc = allot_batch_add_restock(t->batch, m->id, (uint64_t)f->amount[f->n]);
    } else {
        int64_t d = (int64_t)cu_range(&t->rng, 0, 8) - 3;
        f->amount[f->n] = d == 0 ? 1 : d;
        rc = allot_batch_add_adjust(t->batch, m->id, f->amount[f->n]);
    }
    CHECK(rc == 0, "add %s: %s", allot_opcode_name(opcode), strerror(-rc));
    t->sk[s].inflight++;
    f->idx[f->n++] = s;
    return true;
}

static uint16_t pick_opcode(thr_t *t)
{
    unsigned r = (unsigned)cu_range(&t->rng, 0, 99);
    if (r < 42)
        return ALLOT_OP_PLACE;
    if (r < 54)
        return ALLOT_OP_CONFIRM;
    if (r < 62)
        return ALLOT_OP_CANCEL;
    if (r < 74)
        return ALLOT_OP_FULFILL;
    if (r < 77)
        return ALLOT_OP_EXTEND;
    if (r < 88)
        return ALLOT_OP_RESTOCK;
    if (r < 94)
        return ALLOT_OP_ADJUST;
    return ALLOT_OP_SKU_SET;
}

static bool build_frame(thr_t *t, frame_m_t *f)
{
    uint16_t opcode = pick_opcode(t);
    CHECK(allot_batch_reset(t->batch, opcode) == 0, "batch reset");
    f->opcode = opcode;
    f->n = 0;
    unsigned want = (unsigned)cu_range(&t->rng, 1, BATCH_T);
    for (unsigned i = 0; i < want; i++) {
        bool added;
        switch (opcode) {
        case ALLOT_OP_PLACE: added = add_place(t, f); break;
        case ALLOT_OP_CONFIRM:
        case ALLOT_OP_CANCEL:
        case ALLOT_OP_FULFILL:
        case ALLOT_OP_EXTEND: added = add_order_op(t, f, opcode); break;
        default: added = add_sku_op(t, f, opcode); break;
        }
        if (!added)
            break;
    }
    return f->n > 0;
}

/* ---- load: answers ----------------------------------------------------------- */

static void place_answer(thr_t *t, ord_m_t *o, const allot_order_result_t *r)
{
    if (r->result == ALLOT_OK) {
        if (r->replay || r->line_count != o->nlines)
            TFAIL(t, "PLACE %" PRIu64 ": replay %d, %u lines", o->id, r->replay, r->line_count);
        o->place = P_OK;
        o->state = r->state;
        o->deadline = r->deadline_ms;
        bool held = o->hold_ms != 0;
        if (r->state != (held ? ALLOT_STATE_HELD : ALLOT_STATE_CONFIRMED))
            TFAIL(t, "PLACE %" PRIu64 " OK in state %s", o->id, allot_state_name(r->state));
        for (unsigned i = 0; i < o->nlines; i++) {
            o->alloc[i] = r->allocated[i];
            if (o->alloc[i] > o->qty[i] ||
                (o->policy == ALLOT_POLICY_ALL_OR_NOTHING && o->alloc[i] != o->qty[i]) ||
                (o->sidx[i] == NO_SKU && o->alloc[i] != 0))
                TFAIL(t, "PLACE %" PRIu64 " line %u: %u of %u allocated", o->id, i,
                      o->alloc[i], o->qty[i]);
        }
        live_push(t, (uint32_t)(o - t->ords));
        return;
    }
    if (r->result == ALLOT_INSUFFICIENT_STOCK || r->result == ALLOT_LIMIT_EXCEEDED ||
        r->result == ALLOT_UNKNOWN_SKU) {
        o->place = P_REJECTED;
        o->state = ALLOT_STATE_REJECTED;
        return;
    }
    TFAIL(t, "PLACE %" PRIu64 ": unexpected %s", o->id, allot_result_name(r->result));
}

static void fulfilled_units(thr_t *t, const ord_m_t *o)
{
    for (unsigned i = 0; i < o->nlines; i++)
        if (o->sidx[i] != NO_SKU)
            t->sk[o->sidx[i]].fulfilled += o->alloc[i];
}

static void order_op_answer(thr_t *t, ord_m_t *o, uint16_t opcode, const allot_order_result_t *r)
{
    const char *name = allot_opcode_name(opcode);
    if (r->result == ALLOT_UNKNOWN_ORDER) {
        TFAIL(t, "%s %" PRIu64 ": UNKNOWN_ORDER for an acknowledged order", name, o->id);
        return;
    }
    if (r->result == ALLOT_OK && !r->replay) {
        uint8_t want = opcode == ALLOT_OP_CONFIRM   ? ALLOT_STATE_CONFIRMED
                       : opcode == ALLOT_OP_CANCEL  ? ALLOT_STATE_CANCELLED
                       : opcode == ALLOT_OP_FULFILL ? ALLOT_STATE_FULFILLED
                                                    : ALLOT_STATE_HELD;
        if (r->state != want)
            TFAIL(t, "%s %" PRIu64 " OK in state %s", name, o->id, allot_state_name(r->state));
        if (opcode == ALLOT_OP_FULFILL)
            fulfilled_units(t, o);
        o->state = r->state;
        o->deadline = r->deadline_ms;
        return;
    }
    /* Only the hold can have moved under us: it expired, or an EXTEND
     * found it at the hold maximum. */
    bool expired = r->result == ALLOT_INVALID_STATE && r->state == ALLOT_STATE_EXPIRED &&
                   o->state == ALLOT_STATE_HELD;
    bool capped = r->result == ALLOT_INVALID_STATE && opcode == ALLOT_OP_EXTEND &&
                  r->state == ALLOT_STATE_HELD;
    if (!expired && !capped) {
        TFAIL(t, "%s %" PRIu64 " (acknowledged %s): %s%s, state %s", name, o->id,
              allot_state_name(o->state), allot_result_name(r->result),
              r->replay ? " (replay)" : "", allot_state_name(r->state));
        return;
    }
    o->state = r->state;
}

static void sku_answer(thr_t *t, const frame_m_t *f, unsigned i, const allot_sku_result_t *r)
{
    unsigned s = f->idx[i];
    sku_m_t *m = &t->life->skus[s];
    thr_sku_t *ts = &t->sk[s];
    const char *name = allot_opcode_name(f->opcode);
    if (r->sku != m->id)
        TFAIL(t, "%s answer for sku %" PRIu64 ", asked %" PRIu64, name, r->sku, m->id);
    if (r->allocated > r->on_hand)
        TFAIL(t, "%s sku %" PRIu64 ": allocated %" PRIu64 " > on_hand %" PRIu64, name, m->id,
              r->allocated, r->on_hand);
    switch (f->opcode) {
    case ALLOT_OP_SKU_SET:
        /* Nothing else on this SKU was in flight: the answer is exact. */
        if (r->result != ALLOT_OK && r->result != ALLOT_INSUFFICIENT_STOCK)
            TFAIL(t, "SKU_SET %" PRIu64 ": %s", m->id, allot_result_name(r->result));
        if (r->result == ALLOT_OK && ((int64_t)r->on_hand != f->amount[i] ||
                                      r->limit != f->limit[i] || r->reorder_point != f->reorder[i]))
            TFAIL(t, "SKU_SET %" PRIu64 " OK but on_hand %" PRIu64, m->id, r->on_hand);
        m->anchor = (int64_t)r->on_hand;
        m->limit = r->limit;
        m->reorder = r->reorder_point;
        ts->delta = ts->fulfilled = ts->lo = ts->hi = 0;
        m->set_pending = false;
        break;
    case ALLOT_OP_RESTOCK:
        if (r->result != ALLOT_OK)
            TFAIL(t, "RESTOCK %" PRIu64 ": %s", m->id, allot_result_name(r->result));
        ts->delta += f->amount[i];
        break;
    default:
        if (r->result == ALLOT_OK)
            ts->delta += f->amount[i];
        else if (r->result != ALLOT_INSUFFICIENT_STOCK || f->amount[i] > 0)
            TFAIL(t, "ADJUST %" PRIu64 " %+" PRId64 ": %s", m->id, f->amount[i],
                  allot_result_name(r->result));
        break;
    }
}

/* The frame's answers were lost: each element may or may not have applied. */
static void frame_unknown(thr_t *t, frame_m_t *f)
{
    for (unsigned i = 0; i < f->n; i++) {
        t->unknown++;
        if (f->opcode == ALLOT_OP_PLACE || f->opcode == ALLOT_OP_CONFIRM ||
            f->opcode == ALLOT_OP_CANCEL || f->opcode == ALLOT_OP_FULFILL ||
            f->opcode == ALLOT_OP_EXTEND) {
            ord_m_t *o = &t->ords[f->idx[i]];
            touch_skus(t, o, -1);
            o->pending = 0;
            if (f->opcode != ALLOT_OP_PLACE)
                o->unknown_op = (uint8_t)f->opcode;
            continue;
        }
        unsigned s = f->idx[i];
        sku_m_t *m = &t->life->skus[s];
        thr_sku_t *ts = &t->sk[s];
        ts->inflight--;
        int64_t a = f->amount[i];
        if (f->opcode == ALLOT_OP_SKU_SET) {
            m->set_pending = false;
            m->set_unknown = true;
            m->set_on_hand = (uint64_t)a;
            m->set_limit = f->limit[i];
            m->set_reorder = f->reorder[i];
        } else {
            ts->lo += a < 0 ? a : 0;
            ts->hi += a > 0 ? a : 0;
        }
    }
}

static void frame_answered(thr_t *t, frame_m_t *f, const allot_completion_t *cmp)
{
    if (cmp->count != f->n)
        TFAIL(t, "%s: %u answers to %u elements", allot_opcode_name(f->opcode), cmp->count, f->n);
    allot_reader_t r;
    allot_reader_init(&r, cmp);
    for (unsigned i = 0; i < f->n; i++) {
        t->answered++;
        if (f->opcode == ALLOT_OP_RESTOCK || f->opcode == ALLOT_OP_ADJUST ||
            f->opcode == ALLOT_OP_SKU_SET) {
            allot_sku_result_t s;
            if (allot_read_sku(&r, &s) != 1) {
                TFAIL(t, "short SKU answer");
                return;
            }
            t->sk[f->idx[i]].inflight--;
            sku_answer(t, f, i, &s);
            continue;
        }
        allot_order_result_t o;
        if (allot_read_order(&r, &o) != 1) {
            TFAIL(t, "short order answer");
            return;
        }
        ord_m_t *m = &t->ords[f->idx[i]];
        if (o.order != m->id)
            TFAIL(t, "answer for order %" PRIu64 ", asked %" PRIu64, o.order, m->id);
        touch_skus(t, m, -1);
        m->pending = 0;
        if (f->opcode == ALLOT_OP_PLACE)
            place_answer(t, m, &o);
        else
            order_op_answer(t, m, f->opcode, &o);
    }
}

static void take(thr_t *t, const allot_completion_t *cmp)
{
    frame_m_t *f = cmp->user;
    f->used = false;
    if (cmp->error == 0) {
        frame_answered(t, f, cmp);
        return;
    }
    if (!allot_outcome_unknown(cmp->error))
        TFAIL(t, "%s frame: %s", allot_opcode_name(f->opcode), strerror(-cmp->error));
    if (!atomic_load(&t->life->killed))
        TFAIL(t, "%s frame failed before the kill: %s", allot_opcode_name(f->opcode),
              allot_last_error(t->conn));
    frame_unknown(t, f);
}

static void *load_main(void *arg)
{
    thr_t *t = arg;
    for (;;) {
        bool submitting = !atomic_load(&t->life->killed) && !t->err[0];
        for (unsigned k = 0; submitting && k < DEPTH; k++) {
            frame_m_t *f = &t->frames[k];
            if (f->used)
                continue;
            if (!build_frame(t, f))
                continue;
            int rc = allot_submit(t->conn, t->batch, f, NULL);
            if (rc == 0) {
                f->used = true;
                continue;
            }
            /* Not queued, so not applied; "maybe applied" covers it. */
            if (rc != -ENOTCONN || !atomic_load(&t->life->killed))
                TFAIL(t, "submit: %s (%s)", strerror(-rc), allot_last_error(t->conn));
            frame_unknown(t, f);
            submitting = false;
        }
        allot_completion_t cmp[DEPTH];
        int n = allot_wait(t->conn, cmp, DEPTH, 20);
        if (n < 0)
            break; /* broken, nothing left in flight */
        for (int i = 0; i < n; i++)
            take(t, &cmp[i]);
        if ((atomic_load(&t->life->killed) || t->err[0]) && allot_inflight(t->conn) == 0)
            break;
    }
    return NULL;
}

/* ---- checks after the restart ------------------------------------------------ */

typedef struct check {
    uint64_t *ids;
    ord_m_t **ords;
    cu_order_obs_t *obs;
    size_t n;
    allot_sku_result_t skus[SKUS_T];
    int64_t alloc_sum[SKUS_T];
    int64_t shipped_unknown[SKUS_T]; /* units of FULFILLs whose answer was lost */
    uint32_t limit_use[CUSTOMERS + 1][HOT];
    size_t lost_present, lost_absent; /* PLACEs whose answer was lost */
} check_t;

/* Reads every order and SKU with nothing applied in between: the journal's
 * sequence number must not move while reading (lapsed holds expire on
 * their own, so this may take a few tries). */
static void read_state(life_t *L, uint16_t port, check_t *c)
{
    allot_conn_t *conn = cu_connect(port, 32, 30000);
    uint64_t ids[SKUS_T];
    for (unsigned s = 0; s < L->nskus; s++)
        ids[s] = L->skus[s].id;
    uint64_t v1[ALLOT_STAT_COUNT], v2[ALLOT_STAT_COUNT];
    for (unsigned tries = 1;; tries++) {
        cu_stats(conn, v1);
        cu_orders_get(conn, c->ids, c->n, c->obs);
        cu_skus_get(conn, ids, L->nskus, c->skus);
        cu_stats(conn, v2);
        if (v1[ALLOT_STAT_SEQUENCE] == v2[ALLOT_STAT_SEQUENCE])
            break;
        CHECK(tries < 100, "the state kept changing while it was read (%u tries)", tries);
        cu_sleep_ms(30);
    }
    allot_conn_close(conn);
}

static bool expirable(const cu_order_obs_t *ob, uint64_t now)
{
    /* the server's clock never runs behind ours by more than a little */
    return ob->deadline_ms != 0 && ob->deadline_ms <= now + 2000;
}

static void check_content(const ord_m_t *o, const cu_order_obs_t *ob)
{
    CHECK(ob->customer == o->customer && ob->policy == o->policy &&
              ob->line_count == o->nlines,
          "order %" PRIu64 ": customer %" PRIu64 "/%" PRIu64 ", policy %u/%u, lines %u/%u", o->id,
          ob->customer, o->customer, ob->policy, o->policy, ob->line_count, o->nlines);
    for (unsigned i = 0; i < o->nlines; i++) {
        CHECK(ob->sku[i] == o->sku[i] && ob->requested[i] == o->qty[i],
              "order %" PRIu64 " line %u: sku %" PRIu64 " x %u, sent %" PRIu64 " x %u", o->id, i,
              ob->sku[i], ob->requested[i], o->sku[i], o->qty[i]);
        CHECK(ob->allocated[i] <= o->qty[i] &&
                  (o->policy != ALLOT_POLICY_ALL_OR_NOTHING || ob->allocated[i] == o->qty[i]),
              "order %" PRIu64 " line %u: %u of %u allocated", o->id, i, ob->allocated[i], o->qty[i]);
    }
}

static uint8_t after_op(uint8_t state, uint8_t op)
{
    if (op == ALLOT_OP_CONFIRM && state == ALLOT_STATE_HELD)
        return ALLOT_STATE_CONFIRMED;
    if (op == ALLOT_OP_CANCEL && (state == ALLOT_STATE_HELD || state == ALLOT_STATE_CONFIRMED))
        return ALLOT_STATE_CANCELLED;
    if (op == ALLOT_OP_FULFILL && state == ALLOT_STATE_CONFIRMED)
        return ALLOT_STATE_FULFILLED;
    return state;
}

/* The states the acknowledged history allows: the acknowledged one, an
 * expiry of a hold, and the effect of the request whose answer was lost. */
static bool state_allowed(const ord_m_t *o, const cu_order_obs_t *ob, uint64_t now)
{
    uint8_t base[2] = {o->state, o->state};
    unsigned nb = 1;
    if (o->state == ALLOT_STATE_HELD && expirable(ob, now))
        base[nb++] = ALLOT_STATE_EXPIRED;
    for (unsigned i = 0; i < nb; i++) {
        if (ob->state == base[i])
            return true;
        if (o->unknown_op && ob->state == after_op(base[i], o->unknown_op))
            return true;
    }
    return false;
}

/* A PLACE whose answer was lost, and that did apply: whole, and as placed. */
static void check_lost_place(const ord_m_t *o, const cu_order_obs_t *ob, uint64_t now)
{
    bool held = o->hold_ms != 0;
    CHECK(ob->state == (held ? ALLOT_STATE_HELD : ALLOT_STATE_CONFIRMED) ||
              (held && ob->state == ALLOT_STATE_EXPIRED && expirable(ob, now)),
          "order %" PRIu64 " (answer lost) in state %s", o->id, allot_state_name(ob->state));
    CHECK(!held || ob->deadline_ms == ob->placed_ms + o->hold_ms,
          "order %" PRIu64 ": deadline %" PRIu64 ", placed %" PRIu64 " + %u", o->id,
          ob->deadline_ms, ob->placed_ms, o->hold_ms);
}

/* An acknowledged order: its allocations as acknowledged, its state one the
 * acknowledged history allows, its deadline unless an EXTEND was lost. */
static void check_acked(check_t *c, const ord_m_t *o, const cu_order_obs_t *ob, uint64_t now)
{
    for (unsigned i = 0; i < o->nlines; i++)
        CHECK(ob->allocated[i] == o->alloc[i],
              "order %" PRIu64 " line %u: %u allocated, acknowledged %u", o->id, i,
              ob->allocated[i], o->alloc[i]);
    CHECK(state_allowed(o, ob, now),
          "order %" PRIu64 ": state %s, acknowledged %s, lost answer to %s, deadline %" PRIu64
          " (now %" PRIu64 ")",
          o->id, allot_state_name(ob->state), allot_state_name(o->state),
          o->unknown_op ? allot_opcode_name(o->unknown_op) : "none", ob->deadline_ms, now);
    if (ob->state == ALLOT_STATE_HELD && o->state == ALLOT_STATE_HELD &&
        o->unknown_op != ALLOT_OP_EXTEND)
        CHECK(ob->deadline_ms == o->deadline,
              "order %" PRIu64 ": deadline %" PRIu64 ", acknowledged %" PRIu64, o->id,
              ob->deadline_ms, o->deadline);
    if (ob->state == ALLOT_STATE_FULFILLED && o->state != ALLOT_STATE_FULFILLED)
        for (unsigned i = 0; i < o->nlines; i++)
            if (o->sidx[i] != NO_SKU)
                c->shipped_unknown[o->sidx[i]] += ob->allocated[i];
}

static void check_order(check_t *c, size_t k, uint64_t now)
{
    const ord_m_t *o = c->ords[k];
    const cu_order_obs_t *ob = &c->obs[k];
    if (o->place == P_REJECTED) {
        CHECK(ob->result == ALLOT_UNKNOWN_ORDER,
              "order %" PRIu64 " was rejected when placed, but exists (%s)", o->id,
              allot_state_name(ob->state));
        return;
    }
    if (o->place == P_UNKNOWN && ob->result == ALLOT_UNKNOWN_ORDER) {
        c->lost_absent++; /* its PLACE may not have applied */
        return;
    }
    CHECK(ob->result == ALLOT_OK, "acknowledged order %" PRIu64 " (%s) is gone: %s", o->id,
          allot_state_name(o->state), allot_result_name(ob->result));
    check_content(o, ob);
    if (o->place == P_UNKNOWN) {
        c->lost_present++;
        check_lost_place(o, ob, now);
    } else {
        check_acked(c, o, ob, now);
    }
    /* what the SKUs and the limits must add up to */
    bool live = ob->state == ALLOT_STATE_HELD || ob->state == ALLOT_STATE_CONFIRMED;
    bool counts = live || ob->state == ALLOT_STATE_FULFILLED;
    for (unsigned i = 0; i < o->nlines; i++) {
        if (o->sidx[i] == NO_SKU)
            continue;
        if (live)
            c->alloc_sum[o->sidx[i]] += ob->allocated[i];
        if (counts && o->sidx[i] < HOT)
            c->limit_use[o->customer][o->sidx[i]] += ob->allocated[i];
    }
}

static void check_sku(life_t *L, check_t *c, unsigned s)
{
    const sku_m_t *m = &L->skus[s];
    const allot_sku_result_t *r = &c->skus[s];
    CHECK(r->result == ALLOT_OK && r->sku == m->id, "sku %" PRIu64 ": %s", m->id,
          allot_result_name(r->result));
    CHECK(r->allocated <= r->on_hand, "sku %" PRIu64 ": allocated %" PRIu64 " > on_hand %" PRIu64,
          m->id, r->allocated, r->on_hand);
    CHECK((int64_t)r->allocated == c->alloc_sum[s],
          "sku %" PRIu64 ": allocated %" PRIu64 ", its live orders hold %" PRId64, m->id,
          r->allocated, c->alloc_sum[s]);
    int64_t expect = m->anchor - c->shipped_unknown[s], lo = 0, hi = 0;
    for (unsigned t = 0; t < L->nthreads; t++) {
        expect += L->thr[t].sk[s].delta - L->thr[t].sk[s].fulfilled;
        lo += L->thr[t].sk[s].lo;
        hi += L->thr[t].sk[s].hi;
    }
    int64_t got = (int64_t)r->on_hand;
    if (m->set_unknown && got == (int64_t)m->set_on_hand && r->limit == m->set_limit &&
        r->reorder_point == m->set_reorder)
        return; /* the lost SKU_SET applied (nothing else was in flight on it) */
    CHECK(got - expect >= lo && got - expect <= hi,
          "sku %" PRIu64 ": on_hand %" PRId64 ", acknowledged changes give %" PRId64
          " + [%" PRId64 ", %" PRId64 "] (lost SKU_SET: %d)",
          m->id, got, expect, lo, hi, m->set_unknown);
    CHECK(r->limit == m->limit && r->reorder_point == m->reorder,
          "sku %" PRIu64 ": limit %u reorder %u, acknowledged %u %u", m->id, r->limit,
          r->reorder_point, m->limit, m->reorder);
}

/* After a pass, what the server holds is the model's new starting point. */
static void resolve(life_t *L, check_t *c)
{
    for (size_t k = 0; k < c->n; k++) {
        ord_m_t *o = c->ords[k];
        const cu_order_obs_t *ob = &c->obs[k];
        bool exists = ob->result == ALLOT_OK;
        o->place = exists ? P_OK : P_REJECTED;
        o->state = exists ? ob->state : ALLOT_STATE_REJECTED;
        o->deadline = ob->state == ALLOT_STATE_HELD ? ob->deadline_ms : 0;
        o->unknown_op = 0;
        o->pending = 0;
        for (unsigned i = 0; exists && i < o->nlines; i++)
            o->alloc[i] = ob->allocated[i];
    }
    for (unsigned s = 0; s < L->nskus; s++) {
        sku_m_t *m = &L->skus[s];
        m->anchor = (int64_t)c->skus[s].on_hand;
        m->limit = c->skus[s].limit;
        m->reorder = c->skus[s].reorder_point;
        m->set_pending = m->set_unknown = false;
    }
    for (unsigned t = 0; t < L->nthreads; t++) {
        thr_t *th = &L->thr[t];
        memset(th->sk, 0, sizeof th->sk);
        th->nlive = 0;
        for (size_t k = 0; k < th->nords; k++)
            if (th->ords[k].state == ALLOT_STATE_HELD || th->ords[k].state == ALLOT_STATE_CONFIRMED)
                live_push(th, (uint32_t)k);
    }
}

static void check_state(life_t *L, uint16_t port, size_t *orders_out, size_t *lost_present,
                        size_t *lost_absent)
{
    check_t *c = calloc(1, sizeof *c);
    CHECK(c != NULL, "out of memory");
    size_t n = 0;
    for (unsigned t = 0; t < L->nthreads; t++)
        n += L->thr[t].nords;
    c->ids = calloc(n + 1, sizeof *c->ids);
    c->ords = calloc(n + 1, sizeof *c->ords);
    c->obs = calloc(n + 1, sizeof *c->obs);
    CHECK(c->ids && c->ords && c->obs, "out of memory");
    for (unsigned t = 0; t < L->nthreads; t++)
        for (size_t k = 0; k < L->thr[t].nords; k++) {
            c->ords[c->n] = &L->thr[t].ords[k];
            c->ids[c->n++] = L->thr[t].ords[k].id;
        }
    read_state(L, port, c);
    uint64_t now = cu_wall_ms();
    for (size_t k = 0; k < c->n; k++)
        check_order(c, k, now);
    for (unsigned s = 0; s < L->nskus; s++)
        check_sku(L, c, s);
    for (unsigned cu = 1; cu <= CUSTOMERS; cu++)
        for (unsigned s = 0; s < HOT; s++)
            CHECK(c->limit_use[cu][s] <= L->skus[s].limit,
                  "customer %u holds %u of sku %" PRIu64 ", limit %u", cu, c->limit_use[cu][s],
                  L->skus[s].id, L->skus[s].limit);
    resolve(L, c);
    *orders_out = c->n;
    *lost_present = c->lost_present;
    *lost_absent = c->lost_absent;
    free(c->ids);
    free(c->ords);
    free(c->obs);
    free(c);
}

/* ---- rounds ---------------------------------------------------------------- */

static void life_setup(life_t *L, uint16_t port, uint64_t *rng)
{
    allot_conn_t *c = cu_connect(port, 8, 10000);
    L->nskus = HOT + COLD_PER_THREAD * L->nthreads;
    for (unsigned s = 0; s < L->nskus; s++) {
        sku_m_t *m = &L->skus[s];
        memset(m, 0, sizeof *m);
        m->id = s < HOT ? 100 + s : 1000 + s;
        uint64_t on_hand = s < HOT ? cu_range(rng, 100, 400) : cu_range(rng, 10, 60);
        uint32_t limit = s < HOT ? HOT_LIMIT : cu_range(rng, 0, 1) ? 4 : 0;
        uint32_t reorder = (uint32_t)cu_range(rng, 0, 10);
        allot_sku_result_t r;
        int rc = allot_sku_set(c, m->id, on_hand, limit, reorder, &r);
        CHECK(rc == 0 && r.result == ALLOT_OK, "SKU_SET %" PRIu64 ": %s", m->id,
              rc ? allot_last_error(c) : allot_result_name(r.result));
        m->anchor = (int64_t)on_hand;
        m->limit = limit;
        m->reorder = reorder;
    }
    allot_conn_close(c);
}

typedef struct round_cfg {
    uint64_t seed;
    const char *threads;
    const char *snapshot;
    unsigned delay_ms;
} round_cfg_t;

static void start_server(life_t *L, cu_server_t *s, const round_cfg_t *rc)
{
    const char *extra[] = {"--threads", rc->threads, "--durability", "sync",
                           "--skus-max", "256", "--orders-max", ORDERS_MAX,
                           "--segment-mb", "4", "--snapshot-every", rc->snapshot,
                           NULL};
    cu_server_start_retry(s, allotd_path, L->work, L->data, L->log, extra, NULL);
}

/* The digest must survive the clean stop: the next start reports it again
 * (unless holds expired at start-up, which moves the sequence). */
static void check_restart_digest(life_t *L, uint16_t port)
{
    if (!L->have_last)
        return;
    allot_conn_t *c = cu_connect(port, 8, 10000);
    uint64_t v[ALLOT_STAT_COUNT];
    cu_stats(c, v);
    allot_conn_close(c);
    if (v[ALLOT_STAT_SEQUENCE] == L->last_seq)
        CHECK(v[ALLOT_STAT_STATE_DIGEST] == L->last_digest,
              "digest %016" PRIx64 " after a clean restart, %016" PRIx64 " before (seq %" PRIu64 ")",
              v[ALLOT_STAT_STATE_DIGEST], L->last_digest, L->last_seq);
}

static void start_load(life_t *L, uint16_t port, uint64_t seed)
{
    atomic_store(&L->killed, false);
    atomic_store(&L->placed, 0);
    L->load_start_ms = cu_mono_ms();
    for (unsigned t = 0; t < L->nthreads; t++) {
        thr_t *th = &L->thr[t];
        th->rng = seed ^ (UINT64_C(0x51) * (t + 1));
        th->err[0] = '\0';
        th->answered = th->unknown = 0;
        th->conn = cu_connect(port, DEPTH, 15000);
        int rc = allot_batch_new(&th->batch, ALLOT_OP_PLACE, th->conn);
        CHECK(rc == 0, "batch: %s", strerror(-rc));
        memset(th->frames, 0, sizeof th->frames);
    }
    for (unsigned t = 0; t < L->nthreads; t++)
        CHECK(pthread_create(&L->thr[t].tid, NULL, load_main, &L->thr[t]) == 0, "thread");
}

static void stop_load(life_t *L, uint64_t *answered, uint64_t *unknown)
{
    for (unsigned t = 0; t < L->nthreads; t++) {
        thr_t *th = &L->thr[t];
        CHECK(pthread_join(th->tid, NULL) == 0, "join");
        CHECK(!th->err[0], "connection %u: %s", t, th->err);
        *answered += th->answered;
        *unknown += th->unknown;
        allot_batch_free(th->batch);
        th->batch = NULL;
        allot_conn_close(th->conn);
        th->conn = NULL;
    }
}

static void compare_digests(life_t *L, uint64_t digest, uint64_t seq)
{
    if (!journal_path)
        return;
    char err[256];
    snprintf(err, sizeof err, "%s/journal-tool.log", L->work);
    for (int bare = 0; bare < 2; bare++) {
        uint64_t d, s;
        cu_journal_replay(journal_path, L->data, 0, bare, err, &d, &s);
        if (s != seq) /* holds expired during the stop: compare at the same point */
            cu_journal_replay(journal_path, L->data, seq, bare, err, &d, &s);
        CHECK(s == seq && d == digest,
              "allot-journal replay%s: digest %016" PRIx64 " at seq %" PRIu64
              ", the server said %016" PRIx64 " at seq %" PRIu64,
              bare ? " --no-snapshot" : "", d, s, digest, seq);
    }
}

static void run_round(life_t *L, unsigned round, const round_cfg_t *rc, uint64_t *rng)
{
    cu_server_t srv;
    start_server(L, &srv, rc);
    if (round == 0)
        life_setup(L, srv.port, rng);
    check_restart_digest(L, srv.port);

    uint64_t answered = 0, unknown = 0;
    uint64_t t0 = cu_mono_ms();
    start_load(L, srv.port, rc->seed);
    cu_sleep_ms(rc->delay_ms);
    atomic_store(&L->killed, true);
    cu_server_kill9(&srv);
    stop_load(L, &answered, &unknown);
    uint64_t t1 = cu_mono_ms();

    start_server(L, &srv, rc);
    size_t orders = 0, present = 0, absent = 0;
    check_state(L, srv.port, &orders, &present, &absent);
    allot_conn_t *c = cu_connect(srv.port, 8, 10000);
    uint64_t v[ALLOT_STAT_COUNT];
    cu_stats(c, v);
    allot_conn_close(c);
    int st = cu_server_stop(&srv, 20000);
    CHECK(st == 0, "allotd exited %d after SIGTERM", st);
    compare_digests(L, v[ALLOT_STAT_STATE_DIGEST], v[ALLOT_STAT_SEQUENCE]);
    L->last_digest = v[ALLOT_STAT_STATE_DIGEST];
    L->last_seq = v[ALLOT_STAT_SEQUENCE];
    L->have_last = true;
    printf("life %u round %u: seed %016" PRIx64 ", --threads %s --snapshot-every %s, kill after "
           "%u ms (%" PRIu64 " ms of load): %" PRIu64 " answers, %" PRIu64 " lost (PLACEs: %zu "
           "applied, %zu not); %zu orders checked, seq %" PRIu64 ", digest %016" PRIx64 "%s\n",
           L->index, round, rc->seed, rc->threads, rc->snapshot, rc->delay_ms, t1 - t0, answered,
           unknown, present, absent, orders, v[ALLOT_STAT_SEQUENCE], v[ALLOT_STAT_STATE_DIGEST],
           journal_path ? " = allot-journal" : "");
    fflush(stdout);
}

static void __attribute__((noreturn)) usage(void)
{
    fprintf(stderr, "usage: crash_kill9 --allotd PATH [--journal PATH] [--seed N] [--lives N] "
                    "[--rounds N] [--budget-s N]\n");
    exit(2);
}

typedef struct opts {
    uint64_t seed;
    unsigned lives, rounds, budget_s;
} opts_t;

static void parse_args(int argc, char **argv, opts_t *o)
{
    bool seeded = false;
    *o = (opts_t){.lives = 4, .rounds = 5, .budget_s = 60};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--allotd") == 0)
            allotd_path = v;
        else if (strcmp(argv[i - 1], "--journal") == 0)
            journal_path = v[0] ? v : NULL;
        else if (strcmp(argv[i - 1], "--seed") == 0)
            o->seed = strtoull(v, NULL, 0), seeded = true;
        else if (strcmp(argv[i - 1], "--lives") == 0)
            o->lives = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(argv[i - 1], "--rounds") == 0)
            o->rounds = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(argv[i - 1], "--budget-s") == 0)
            o->budget_s = (unsigned)strtoul(v, NULL, 10);
        else
            usage();
    }
    if (!allotd_path || o->lives == 0 || o->rounds == 0)
        usage();
    if (!seeded)
        o->seed = cu_wall_ms() ^ ((uint64_t)getpid() << 32);
}

/* The time left is shared by the rounds left: on a slow machine the load
 * phases get shorter (each round's overhead is what it is). */
typedef struct pace {
    uint64_t start_ms, budget_ms, overhead_ms;
    unsigned done, total;
} pace_t;

static unsigned paced_delay(const pace_t *p, unsigned delay_ms)
{
    uint64_t spent = cu_mono_ms() - p->start_ms;
    uint64_t left = p->budget_ms > spent ? p->budget_ms - spent : 0;
    uint64_t per_round = left / (p->total - p->done);
    uint64_t overhead = p->done ? p->overhead_ms / p->done : 1000;
    uint64_t room = per_round > overhead + 20 ? per_round - overhead : 20;
    return delay_ms < room ? delay_ms : (unsigned)room;
}

static void run_life(life_t *L, unsigned index, unsigned rounds, uint64_t *rng, pace_t *pace)
{
    memset(L, 0, sizeof *L);
    L->index = index;
    L->nthreads = 3 + (unsigned)cu_range(rng, 0, 1);
    for (unsigned t = 0; t < L->nthreads; t++) {
        L->thr[t].index = t;
        L->thr[t].life = L;
        L->thr[t].next_order = ((uint64_t)(t + 1) << 32) + 1;
    }
    cu_mkdtemp(L->work, sizeof L->work, "kill9");
    snprintf(L->data, sizeof L->data, "%s/data", L->work);
    snprintf(L->log, sizeof L->log, "%s/allotd.log", L->work);
    for (unsigned r = 0; r < rounds; r++) {
        static const char *const snaps[] = {"5000000", "300", "2000", "1s"};
        round_cfg_t rc = {
            .seed = cu_rand(rng),
            .threads = (r + index) % 2 ? "1" : "2",
            .snapshot = snaps[cu_range(rng, 0, 3)],
            .delay_ms = cu_range(rng, 0, 9) == 0 ? (unsigned)cu_range(rng, 5, 40)
                                                 : (unsigned)cu_range(rng, 100, 1500),
        };
        rc.delay_ms = paced_delay(pace, rc.delay_ms);
        uint64_t t0 = cu_mono_ms();
        run_round(L, r, &rc, rng);
        pace->overhead_ms += cu_mono_ms() - t0 - rc.delay_ms;
        pace->done++;
    }
    for (unsigned t = 0; t < L->nthreads; t++) {
        free(L->thr[t].ords);
        free(L->thr[t].live);
    }
    cu_rmtree(L->work);
}

int main(int argc, char **argv)
{
    opts_t o;
    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    printf("crash_kill9: seed %" PRIu64 " (rerun: --seed %" PRIu64 "), %u lives x %u rounds%s\n",
           o.seed, o.seed, o.lives, o.rounds,
           journal_path ? "" : "; no allot-journal given: digests are not compared with a replay");
    fflush(stdout);
    pace_t pace = {.start_ms = cu_mono_ms(), .budget_ms = (uint64_t)o.budget_s * 1000u,
                   .total = o.lives * o.rounds};
    uint64_t rng = o.seed;
    static life_t L;
    for (unsigned l = 0; l < o.lives; l++)
        run_life(&L, l, o.rounds, &rng, &pace);
    printf("crash_kill9: %u rounds passed in %.1f s (seed %" PRIu64 ")\n", pace.done,
           (double)(cu_mono_ms() - pace.start_ms) / 1000.0, o.seed);
    return 0;
}
