/*
 * kill -9 under load, again and again, on the same data dir.
 *
 * A "life" is one data dir. Its first round creates the SKUs; every round
 * then starts allotd on the dir (sync durability, small tables, 1 or 2
 * network threads, sometimes frequent snapshots), drives a mixed load from
 * several connections — PLACE all-or-nothing and partial, with and without
 * holds, with and without SINGLE_LOCATION; BACKORDER orders with and
 * without a maximum wait; CONFIRM (of backorders still waiting too),
 * CANCEL (of waiting orders too), FULFILL, EXTEND, RESTOCK, ADJUST,
 * SKU_SET — on a few hot SKUs with per-customer limits, on cold ones, on
 * SKUs with waitlists that sell out and get restocked, and on SKUs stocked
 * at 2 to 4 locations with priorities; records every answer, and kills the
 * server with SIGKILL after a random delay. It then restarts allotd on the
 * same dir and checks, against what was acknowledged:
 *
 *   - every acknowledged order exists with the same customer and lines, in
 *     a state that the acknowledged history (plus the one request that may
 *     have been in flight for it, plus hold expiry) allows; a PLACE
 *     acknowledged as rejected left no order; a PLACE whose answer was lost
 *     may or may not exist, but if it does it is whole. Plain orders hold
 *     exactly what was acknowledged. A BACKORDER order may have been filled
 *     since (fills answer no one): it holds at least what was acknowledged
 *     and at most what it asked for, and its state is one that fills,
 *     expiries and the lost request, in any order, lead to;
 *   - per order line: the units by location add up to the allocation (one
 *     location for a SINGLE_LOCATION order), and a line has a queue place
 *     exactly while its BACKORDERED order misses units of it;
 *   - every SKU's allocated equals the sum over its live orders exactly,
 *     and so does each location's; 0 <= allocated <= on_hand per location;
 *     the locations add up to the totals and come in priority order; each
 *     location's on_hand equals what the acknowledged SKU_SET / RESTOCK /
 *     ADJUST / FULFILL imply (within what requests in flight at the kill
 *     could add; the units a FULFILL took from a location are read from
 *     the order), and the settings are the acknowledged ones; no customer
 *     holds more than the limit of a SKU whose limit never changes (all but
 *     the cold ones; a backorder's waiting units count);
 *   - waitlists: a SKU's queue depth and waiting units equal what the
 *     waiting lines of all orders (the test knows every order it sent) add
 *     up to, its queue places are 1..depth, and nothing is available while
 *     its queue is not empty; first come, first served: while an order
 *     whose PLACE was answered before another PLACE was sent still waits,
 *     the later order got no unit of that SKU and waits behind it;
 *   - the live state digest (STATS) equals the digest allot-journal
 *     computes by replaying the data dir after a clean stop (SIGTERM), from
 *     the snapshots and from the bare journal, and the digest the next
 *     round's server reports after its start.
 *
 * Each cold or multi-location ("own") SKU is touched by one connection
 * only, and a SKU_SET on it is sent only while nothing else on it is in
 * flight (and nothing is sent on it until the SKU_SET is answered):
 * absolute and relative changes then never race, so each location's
 * on_hand stays exactly predictable. Hot and shared waitlist SKUs get
 * relative changes only. Each order's requests come from one connection,
 * one at a time. Requests of different connections are ordered only
 * through one atomic counter: an answer taken (counter bumped) before a
 * request was sent (counter read) was applied before that request.
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
#define WAIT_SHARED 2u     /* waitlist SKUs every connection uses */
#define OWN_PER_THREAD 3u  /* multi-location SKUs of one connection; the
                              first of them has a waitlist */
#define THREADS_MAX_T 4u
#define SKUS_T (HOT + WAIT_SHARED + (COLD_PER_THREAD + OWN_PER_THREAD) * THREADS_MAX_T)
#define LOC_T 4u           /* locations of one SKU */
#define LOC_IDS 8u         /* ... drawn from 0..LOC_IDS-1 */
#define LINES_T 3u
#define DEPTH 16u        /* frames in flight per connection: enough that the
                            server is busy when the kill comes */
#define BATCH_T 16u      /* elements per frame */
#define CUSTOMERS 40u
#define HOT_LIMIT 6u
#define BO_PCT 25u       /* PLACEs that are BACKORDER orders */
#define WAIT_TARGET 60u  /* units waiting for a SKU before it is restocked */
#define PLACE_BUDGET 20000u /* PLACEs per round, so the orders table never fills */
#define PLACE_PACE_MS 1500u /* ... released evenly over this time, so that the
                               load is still busy when the kill comes */
#define ORDERS_MAX "131072"
#define HOLD_LONG_MS 600000u
#define NO_SKU UINT16_MAX

/* ---- the model ------------------------------------------------------------- */

enum { K_HOT, K_COLD, K_WAIT, K_OWN };

typedef struct sku_m {
    uint64_t id;       /* hot SKUs, each connection's cold ones, the shared
                          waitlist ones, each connection's own ones */
    uint8_t kind;      /* K_* */
    bool waitable;     /* BACKORDER orders wait for it */
    uint8_t nloc;
    uint16_t loc[LOC_T], prio[LOC_T];
    int64_t lanchor[LOC_T]; /* each location's on_hand exactly, at its anchor */
    uint64_t ltick[LOC_T];  /* ... taken at this tick (see life_t.tick) */
    int64_t anchor;    /* on_hand exactly, at the last anchor point */
    uint32_t limit, reorder;
    bool set_pending;  /* owner: a SKU_SET is in flight */
    bool set_unknown;  /* a SKU_SET's answer was lost at the kill */
    uint8_t set_li;    /* ... at this location */
    uint16_t set_prio;
    uint64_t set_on_hand;
    uint32_t set_limit, set_reorder;
} sku_m_t;

/* One connection's view of one SKU since its anchor. */
typedef struct thr_sku {
    int64_t delta;     /* acknowledged RESTOCK and ADJUST */
    int64_t fulfilled; /* units shipped by acknowledged FULFILLs */
    int64_t lo, hi;    /* what lost RESTOCK/ADJUST answers may have added */
    int64_t ldelta[LOC_T], llo[LOC_T], lhi[LOC_T]; /* the same by location */
    uint32_t inflight; /* requests touching it */
} thr_sku_t;

enum { P_NONE, P_OK, P_REJECTED, P_UNKNOWN };

typedef struct ord_m {
    uint64_t id, customer;
    uint64_t deadline;        /* acknowledged, HELD only */
    uint64_t sent_tick;       /* the counter when its PLACE was sent */
    uint64_t ack_tick;        /* ... when its PLACE was answered OK (or
                                 found applied), 0 = not yet */
    uint64_t ful_tick;        /* ... when its FULFILL was answered OK */
    uint32_t hold_ms, max_wait_ms;
    uint16_t flags;           /* ALLOT_PLACE_FLAG_* sent */
    uint8_t policy, nlines;
    uint8_t place;            /* P_* */
    uint8_t state;            /* acknowledged (or checked) state */
    bool early;               /* a CONFIRM was acknowledged while BACKORDERED */
    bool quits;               /* load: may be cancelled while it waits */
    uint8_t pending;          /* opcode in flight */
    uint8_t unknown_op;       /* opcode whose answer was lost */
    uint16_t sidx[LINES_T];   /* SKU index, NO_SKU for an unknown SKU */
    uint64_t sku[LINES_T];
    uint32_t qty[LINES_T], alloc[LINES_T]; /* alloc: at least, for a backorder */
} ord_m_t;

typedef struct frame_m {
    uint16_t opcode;
    uint16_t n;
    uint32_t idx[BATCH_T]; /* order index, or SKU index */
    int64_t amount[BATCH_T];
    uint32_t limit[BATCH_T], reorder[BATCH_T];
    uint8_t li[BATCH_T];   /* location index in the SKU's model */
    uint16_t prio[BATCH_T];
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
    uint32_t *live; /* indices of orders that may be HELD, CONFIRMED or BACKORDERED */
    size_t nlive, live_cap;
    thr_sku_t sk[SKUS_T];
    uint64_t next_order;
    frame_m_t frames[DEPTH];
    uint64_t answered, unknown, backordered;
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
    _Atomic uint64_t tick;             /* orders answers before requests */
    _Atomic uint64_t bo_seen[SKUS_T];  /* units waiting, last seen */
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

static unsigned cold_sku(unsigned thread, unsigned k)
{
    return HOT + thread * COLD_PER_THREAD + k;
}

static unsigned wait_sku(const life_t *L, unsigned k)
{
    return HOT + L->nthreads * COLD_PER_THREAD + k;
}

static unsigned own_sku(const life_t *L, unsigned thread, unsigned k)
{
    return wait_sku(L, WAIT_SHARED) + thread * OWN_PER_THREAD + k;
}

/* The counter read before a request is sent... */
static uint64_t tick_now(life_t *L) { return atomic_load(&L->tick); }

/* ... and bumped after an answer is taken: ack <= sent orders the two. */
static uint64_t tick_mark(life_t *L) { return atomic_fetch_add(&L->tick, 1) + 1; }

static int loc_index(const sku_m_t *m, uint16_t loc)
{
    for (unsigned i = 0; i < m->nloc; i++)
        if (m->loc[i] == loc)
            return (int)i;
    return -1;
}

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

static bool state_live(uint8_t state)
{
    return state == ALLOT_STATE_HELD || state == ALLOT_STATE_CONFIRMED ||
           state == ALLOT_STATE_BACKORDERED;
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

/* A plain order line: hot SKUs, this connection's cold and own ones, and the
 * shared waitlist ones (where it gets nothing while orders wait). */
static unsigned pick_plain_sku(thr_t *t)
{
    const life_t *L = t->life;
    unsigned r = (unsigned)cu_range(&t->rng, 0, 99);
    if (r < 48)
        return (unsigned)cu_range(&t->rng, 0, HOT - 1);
    if (r < 78)
        return cold_sku(t->index, (unsigned)cu_range(&t->rng, 0, COLD_PER_THREAD - 1));
    if (r < 92)
        return own_sku(L, t->index, (unsigned)cu_range(&t->rng, 0, OWN_PER_THREAD - 1));
    return wait_sku(L, (unsigned)cu_range(&t->rng, 0, WAIT_SHARED - 1));
}

/* A BACKORDER line: the shared waitlist SKUs and this connection's own one. */
static unsigned pick_wait_sku(thr_t *t)
{
    unsigned r = (unsigned)cu_range(&t->rng, 0, WAIT_SHARED);
    return r < WAIT_SHARED ? wait_sku(t->life, r) : own_sku(t->life, t->index, 0);
}

/* Distinct lines (1..3, or 1..2 for a backorder), and now and then a SKU
 * nobody created. */
static void pick_lines(thr_t *t, ord_m_t *o, bool backorder)
{
    unsigned want = (unsigned)cu_range(&t->rng, 1, backorder ? 2 : LINES_T);
    for (unsigned tries = 0; o->nlines < want && tries < 12; tries++) {
        uint16_t s = NO_SKU;
        uint64_t id = 0xdead0000u + cu_range(&t->rng, 0, 3);
        if (cu_range(&t->rng, 0, 49) != 0) {
            s = (uint16_t)(backorder ? pick_wait_sku(t) : pick_plain_sku(t));
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

/* Hold and wait of an order. A short hold (it may expire during the round)
 * goes with a short wait for a backorder: the fills and expiries a kill
 * leaves pending then end within seconds (see read_state). */
static void pick_times(thr_t *t, ord_m_t *o, bool backorder)
{
    unsigned h = (unsigned)cu_range(&t->rng, 0, 9);
    bool short_hold = h >= 4 && h < 7;
    o->hold_ms = h < 4 ? 0 : short_hold ? (uint32_t)cu_range(&t->rng, 150, 1500) : HOLD_LONG_MS;
    if (!backorder)
        return;
    unsigned w = (unsigned)cu_range(&t->rng, 0, 9);
    if (short_hold || w < 5)
        o->max_wait_ms = (uint32_t)cu_range(&t->rng, 200, 2500);
    else if (w < 7)
        o->max_wait_ms = (uint32_t)cu_range(&t->rng, 60000, 600000);
}

/* An order: all-or-nothing or partial (some never split across locations)
 * or a backorder, with no hold, a short one or a long one. */
static bool add_place(thr_t *t, frame_m_t *f)
{
    if (!place_allowed(t->life))
        return false;
    ord_m_t *o = new_order(t);
    o->id = t->next_order++;
    o->customer = 1 + cu_range(&t->rng, 0, CUSTOMERS - 1);
    unsigned kind = (unsigned)cu_range(&t->rng, 0, 99);
    bool backorder = kind < BO_PCT;
    o->policy = backorder               ? ALLOT_POLICY_BACKORDER
                : kind < BO_PCT + 51u   ? ALLOT_POLICY_ALL_OR_NOTHING
                                        : ALLOT_POLICY_PARTIAL;
    pick_times(t, o, backorder);
    o->quits = backorder && cu_range(&t->rng, 0, 4) == 0; /* most wait on */
    if (!backorder && cu_range(&t->rng, 0, 3) == 0)
        o->flags = ALLOT_PLACE_FLAG_SINGLE_LOCATION;
    pick_lines(t, o, backorder);
    if (o->nlines == 0) {
        t->nords--;
        return false;
    }
    allot_line_t lines[LINES_T];
    for (unsigned i = 0; i < o->nlines; i++)
        lines[i] = (allot_line_t){.sku = o->sku[i], .qty = o->qty[i]};
    allot_order_spec_t spec = {.order = o->id, .customer = o->customer, .hold_ms = o->hold_ms,
                               .max_wait_ms = o->max_wait_ms, .policy = o->policy,
                               .flags = o->flags, .lines = lines, .line_count = o->nlines};
    int rc = allot_batch_add_place(t->batch, &spec);
    CHECK(rc == 0, "add PLACE: %s", strerror(-rc));
    o->place = P_UNKNOWN; /* until answered */
    o->pending = ALLOT_OP_PLACE;
    o->sent_tick = tick_now(t->life);
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
        /* a backorder confirmed in advance that waits on has nothing left
         * to be asked until the next round learns where it is */
        bool idle = o->state == ALLOT_STATE_BACKORDERED && o->early && !o->quits;
        if (!state_live(o->state) || (idle && !o->pending)) {
            t->live[j] = t->live[--t->nlive];
            continue;
        }
        if (o->pending)
            continue;
        bool ok;
        switch (opcode) {
        case ALLOT_OP_CANCEL: ok = o->state != ALLOT_STATE_BACKORDERED || o->quits; break;
        case ALLOT_OP_FULFILL: ok = o->state == ALLOT_STATE_CONFIRMED; break;
        case ALLOT_OP_CONFIRM: /* a waiting backorder is confirmed in advance */
            ok = o->state == ALLOT_STATE_HELD || (o->state == ALLOT_STATE_BACKORDERED && !o->early);
            break;
        default: ok = o->state == ALLOT_STATE_HELD; break;
        }
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

/* SKU_SET: this connection's cold and own SKUs; RESTOCK and ADJUST: any
 * SKU it may use, but a waitlist is restocked only once enough units wait
 * for it: its queue hovers around that depth. */
static unsigned pick_stock_sku(thr_t *t, uint16_t opcode)
{
    const life_t *L = t->life;
    unsigned r = (unsigned)cu_range(&t->rng, 0, 99), s;
    if (opcode == ALLOT_OP_SKU_SET)
        return r < 70 ? cold_sku(t->index, (unsigned)cu_range(&t->rng, 0, COLD_PER_THREAD - 1))
                      : own_sku(L, t->index, (unsigned)cu_range(&t->rng, 0, OWN_PER_THREAD - 1));
    if (r < 35)
        s = cold_sku(t->index, (unsigned)cu_range(&t->rng, 0, COLD_PER_THREAD - 1));
    else if (r < 70)
        s = (unsigned)cu_range(&t->rng, 0, HOT - 1);
    else if (r < 85)
        s = wait_sku(L, (unsigned)cu_range(&t->rng, 0, WAIT_SHARED - 1));
    else
        s = own_sku(L, t->index, (unsigned)cu_range(&t->rng, 0, OWN_PER_THREAD - 1));
    if (opcode == ALLOT_OP_RESTOCK && L->skus[s].waitable &&
        atomic_load_explicit(&L->bo_seen[s], memory_order_relaxed) < WAIT_TARGET)
        s = (unsigned)cu_range(&t->rng, 0, HOT - 1);
    return s;
}

static int add_sku_set(thr_t *t, frame_m_t *f, const sku_m_t *m)
{
    unsigned i = f->n;
    if (m->kind != K_OWN) {
        f->amount[i] = (int64_t)cu_range(&t->rng, 0, 80);
        f->limit[i] = cu_range(&t->rng, 0, 2) == 0 ? (uint32_t)cu_range(&t->rng, 2, 8) : 0;
        f->reorder[i] = (uint32_t)cu_range(&t->rng, 0, 5);
        return allot_batch_add_sku_set(t->batch, m->id, (uint64_t)f->amount[i], f->limit[i],
                                       f->reorder[i]);
    }
    /* One location's stock and priority; the limit stays (limits are
     * checked against it). */
    f->amount[i] = (int64_t)cu_range(&t->rng, 0, 20);
    f->limit[i] = m->limit;
    f->reorder[i] = (uint32_t)cu_range(&t->rng, 0, 5);
    f->prio[i] = (uint16_t)cu_range(&t->rng, 0, 5);
    return allot_batch_add_sku_set_at(t->batch, m->id, m->loc[f->li[i]], f->prio[i],
                                      (uint64_t)f->amount[i], f->limit[i], f->reorder[i]);
}

static bool add_sku_op(thr_t *t, frame_m_t *f, uint16_t opcode)
{
    life_t *L = t->life;
    unsigned s = pick_stock_sku(t, opcode);
    if (!sku_usable(t, s))
        return false;
    sku_m_t *m = &L->skus[s];
    bool at = m->kind == K_WAIT || m->kind == K_OWN;
    unsigned i = f->n;
    f->li[i] = (uint8_t)cu_range(&t->rng, 0, m->nloc - 1u);
    f->prio[i] = 0;
    uint16_t loc = m->loc[f->li[i]];
    int rc;
    if (opcode == ALLOT_OP_SKU_SET) {
        /* absolute: only while nothing else on this SKU is in flight */
        if (t->sk[s].inflight != 0)
            return false;
        rc = add_sku_set(t, f, m);
        m->set_pending = true;
    } else if (opcode == ALLOT_OP_RESTOCK) {
        /* a waitlist a little at a time (see pick_stock_sku) */
        uint64_t most = m->waitable ? 4 : m->kind == K_HOT ? 12 : m->kind == K_COLD ? 6 : 8;
        f->amount[i] = (int64_t)cu_range(&t->rng, 1, most);
        rc = at ? allot_batch_add_restock_at(t->batch, m->id, loc, (uint64_t)f->amount[i])
                : allot_batch_add_restock(t->batch, m->id, (uint64_t)f->amount[i]);
    } else {
        int64_t d = (int64_t)cu_range(&t->rng, 0, 8) - 3;
        if (m->waitable && atomic_load_explicit(&L->bo_seen[s], memory_order_relaxed) == 0)
            d = -1 - (int64_t)cu_range(&t->rng, 0, 2); /* shrinkage, toward a sell-out */
        f->amount[i] = d == 0 ? 1 : d;
        rc = at ? allot_batch_add_adjust_at(t->batch, m->id, loc, f->amount[i])
                : allot_batch_add_adjust(t->batch, m->id, f->amount[i]);
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

/* ---- backorders: what may have happened to one ---------------------------- */

/* Fills and expiries answer no one: a backorder acknowledged in one state
 * may since be in any state they lead to. */
typedef struct bo_st {
    uint8_t state;
    bool early; /* confirmed in advance */
} bo_st_t;

#define BO_STATES_MAX 24u

static void bo_add(bo_st_t *set, unsigned *n, uint8_t state, bool early)
{
    for (unsigned i = 0; i < *n; i++)
        if (set[i].state == state && set[i].early == early)
            return;
    CHECK(*n < BO_STATES_MAX, "more backorder states than expected");
    set[(*n)++] = (bo_st_t){.state = state, .early = early};
}

/* What a backorder becomes once nothing waits. */
static uint8_t bo_complete(const ord_m_t *o, bool early)
{
    return early || o->hold_ms == 0 ? ALLOT_STATE_CONFIRMED : ALLOT_STATE_HELD;
}

/* Adds s and what it comes to on its own: filled (then HELD, or CONFIRMED),
 * and EXPIRED when its wait or its hold runs out. */
static void bo_reach(const ord_m_t *o, bo_st_t s, bo_st_t *set, unsigned *n)
{
    bo_add(set, n, s.state, s.early);
    if (s.state == ALLOT_STATE_BACKORDERED) {
        uint8_t done = bo_complete(o, s.early);
        bo_add(set, n, done, s.early);
        if (done == ALLOT_STATE_HELD || o->max_wait_ms != 0)
            bo_add(set, n, ALLOT_STATE_EXPIRED, s.early);
    } else if (s.state == ALLOT_STATE_HELD) {
        bo_add(set, n, ALLOT_STATE_EXPIRED, s.early);
    }
}

/* The answer op gets from an order in state s, and the state after it. */
typedef struct bo_ans {
    uint8_t result;
    bool replay;
    bo_st_t after;
} bo_ans_t;

static bo_ans_t bo_op(bo_st_t s, uint8_t op)
{
    bo_ans_t a = {.result = ALLOT_INVALID_STATE, .replay = false, .after = s};
    bool waits = s.state == ALLOT_STATE_BACKORDERED;
    bool again = (op == ALLOT_OP_CONFIRM &&
                  (s.state == ALLOT_STATE_CONFIRMED || (waits && s.early))) ||
                 (op == ALLOT_OP_CANCEL && s.state == ALLOT_STATE_CANCELLED) ||
                 (op == ALLOT_OP_FULFILL && s.state == ALLOT_STATE_FULFILLED);
    if (again) {
        a.result = ALLOT_OK;
        a.replay = true;
        return a;
    }
    switch (op) {
    case ALLOT_OP_CONFIRM:
        if (s.state == ALLOT_STATE_HELD)
            a.after.state = ALLOT_STATE_CONFIRMED;
        else if (waits)
            a.after.early = true; /* it keeps waiting, paid */
        else
            return a;
        break;
    case ALLOT_OP_CANCEL:
        if (!state_live(s.state))
            return a;
        a.after.state = ALLOT_STATE_CANCELLED;
        break;
    case ALLOT_OP_FULFILL:
        if (s.state != ALLOT_STATE_CONFIRMED)
            return a;
        a.after.state = ALLOT_STATE_FULFILLED;
        break;
    default: /* EXTEND */
        if (s.state != ALLOT_STATE_HELD)
            return a;
        break;
    }
    a.result = ALLOT_OK;
    return a;
}

/* Every state the acknowledged history allows: the acknowledged one (for a
 * PLACE whose answer was lost, the one it was placed in), what fills and
 * expiries lead to, and the lost request applied anywhere in between. */
static unsigned bo_allowed(const ord_m_t *o, bo_st_t *set)
{
    unsigned n = 0;
    if (o->place == P_UNKNOWN)
        bo_reach(o, (bo_st_t){.state = ALLOT_STATE_BACKORDERED, .early = false}, set, &n);
    else
        bo_reach(o, (bo_st_t){.state = o->state, .early = o->early}, set, &n);
    if (o->unknown_op) {
        unsigned before = n;
        for (unsigned i = 0; i < before; i++)
            bo_reach(o, bo_op(set[i], o->unknown_op).after, set, &n);
    }
    return n;
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
        o->ack_tick = tick_mark(t->life);
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

/* A backorder takes what is there and waits for the rest; only what can
 * never come (an unknown SKU, more than the limit) is refused. */
static void bo_place_answer(thr_t *t, ord_m_t *o, const allot_order_result_t *r)
{
    if (r->result == ALLOT_OK) {
        if (r->replay || r->line_count != o->nlines)
            TFAIL(t, "PLACE %" PRIu64 ": replay %d, %u lines", o->id, r->replay, r->line_count);
        bool waits = false;
        for (unsigned i = 0; i < o->nlines; i++) {
            o->alloc[i] = r->allocated[i];
            if (o->alloc[i] > o->qty[i] || o->sidx[i] == NO_SKU)
                TFAIL(t, "backorder %" PRIu64 " line %u: %u of %u allocated", o->id, i,
                      o->alloc[i], o->qty[i]);
            waits |= o->alloc[i] < o->qty[i];
        }
        uint8_t want = waits ? ALLOT_STATE_BACKORDERED : bo_complete(o, false);
        if (r->state != want || (waits && (r->deadline_ms != 0) != (o->max_wait_ms != 0)))
            TFAIL(t, "backorder %" PRIu64 " OK in state %s, deadline %" PRIu64 " (wait %u ms)",
                  o->id, allot_state_name(r->state), r->deadline_ms, o->max_wait_ms);
        o->place = P_OK;
        o->state = r->state;
        o->deadline = r->deadline_ms;
        o->ack_tick = tick_mark(t->life);
        t->backordered += waits;
        live_push(t, (uint32_t)(o - t->ords));
        return;
    }
    bool unknown = false, limited = false;
    for (unsigned i = 0; i < o->nlines; i++) {
        unknown |= o->sidx[i] == NO_SKU;
        limited |= o->sidx[i] != NO_SKU && t->life->skus[o->sidx[i]].limit != 0;
    }
    if ((r->result == ALLOT_UNKNOWN_SKU && unknown) ||
        (r->result == ALLOT_LIMIT_EXCEEDED && limited)) {
        o->place = P_REJECTED;
        o->state = ALLOT_STATE_REJECTED;
        return;
    }
    TFAIL(t, "backorder %" PRIu64 ": unexpected %s", o->id, allot_result_name(r->result));
}

static void fulfilled_units(thr_t *t, ord_m_t *o)
{
    for (unsigned i = 0; i < o->nlines; i++)
        if (o->sidx[i] != NO_SKU)
            t->sk[o->sidx[i]].fulfilled += o->alloc[i];
    o->ful_tick = tick_mark(t->life);
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

/* A backorder's answer must be what one of the states it may be in by now
 * gets; it also tells where it is: HELD or CONFIRMED means complete. */
static void bo_op_answer(thr_t *t, ord_m_t *o, uint16_t opcode, const allot_order_result_t *r)
{
    bo_st_t set[BO_STATES_MAX];
    unsigned n = 0;
    bo_reach(o, (bo_st_t){.state = o->state, .early = o->early}, set, &n);
    bool match = false;
    for (unsigned i = 0; i < n && !match; i++) {
        bo_ans_t a = bo_op(set[i], (uint8_t)opcode);
        match = (a.result == r->result && a.replay == r->replay && a.after.state == r->state) ||
                /* an EXTEND that found the hold at its maximum */
                (opcode == ALLOT_OP_EXTEND && set[i].state == ALLOT_STATE_HELD &&
                 r->result == ALLOT_INVALID_STATE && !r->replay && r->state == ALLOT_STATE_HELD);
    }
    if (!match) {
        TFAIL(t, "%s backorder %" PRIu64 " (acknowledged %s%s): %s%s, state %s",
              allot_opcode_name(opcode), o->id, allot_state_name(o->state),
              o->early ? ", confirmed in advance" : "", allot_result_name(r->result),
              r->replay ? " (replay)" : "", allot_state_name(r->state));
        return;
    }
    if (opcode == ALLOT_OP_CONFIRM && r->state == ALLOT_STATE_BACKORDERED)
        o->early = true;
    if (r->state == ALLOT_STATE_HELD || r->state == ALLOT_STATE_CONFIRMED ||
        r->state == ALLOT_STATE_FULFILLED)
        for (unsigned i = 0; i < o->nlines; i++)
            o->alloc[i] = o->qty[i];
    if (opcode == ALLOT_OP_FULFILL && r->result == ALLOT_OK && !r->replay)
        fulfilled_units(t, o);
    o->state = r->state;
    o->deadline = r->deadline_ms;
}

static void sku_set_answer(thr_t *t, const frame_m_t *f, unsigned i, const allot_sku_result_t *r)
{
    unsigned s = f->idx[i];
    sku_m_t *m = &t->life->skus[s];
    thr_sku_t *ts = &t->sk[s];
    /* Nothing else on this SKU was in flight: the answer is exact. */
    if (r->result != ALLOT_OK && r->result != ALLOT_INSUFFICIENT_STOCK)
        TFAIL(t, "SKU_SET %" PRIu64 ": %s", m->id, allot_result_name(r->result));
    bool whole = m->nloc == 1; /* its on_hand is this location's */
    if (r->result == ALLOT_OK && ((whole && (int64_t)r->on_hand != f->amount[i]) ||
                                  r->limit != f->limit[i] || r->reorder_point != f->reorder[i]))
        TFAIL(t, "SKU_SET %" PRIu64 " OK but on_hand %" PRIu64, m->id, r->on_hand);
    m->anchor = (int64_t)r->on_hand;
    m->limit = r->limit;
    m->reorder = r->reorder_point;
    ts->delta = ts->fulfilled = ts->lo = ts->hi = 0;
    if (r->result == ALLOT_OK) {
        unsigned li = f->li[i];
        m->lanchor[li] = f->amount[i];
        m->prio[li] = f->prio[i];
        m->ltick[li] = tick_mark(t->life);
        ts->ldelta[li] = ts->llo[li] = ts->lhi[li] = 0;
    }
    m->set_pending = false;
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
    if (!m->waitable && (r->backorder_orders != 0 || r->backorder_units != 0))
        TFAIL(t, "%s sku %" PRIu64 ": %u orders wait, but no backorder was sent", name, m->id,
              r->backorder_orders);
    if (m->waitable)
        atomic_store_explicit(&t->life->bo_seen[s], r->backorder_units, memory_order_relaxed);
    switch (f->opcode) {
    case ALLOT_OP_SKU_SET: sku_set_answer(t, f, i, r); break;
    case ALLOT_OP_RESTOCK:
        if (r->result != ALLOT_OK)
            TFAIL(t, "RESTOCK %" PRIu64 ": %s", m->id, allot_result_name(r->result));
        ts->delta += f->amount[i];
        ts->ldelta[f->li[i]] += f->amount[i];
        break;
    default:
        if (r->result == ALLOT_OK) {
            ts->delta += f->amount[i];
            ts->ldelta[f->li[i]] += f->amount[i];
        } else if (r->result != ALLOT_INSUFFICIENT_STOCK || f->amount[i] > 0) {
            TFAIL(t, "ADJUST %" PRIu64 " %+" PRId64 ": %s", m->id, f->amount[i],
                  allot_result_name(r->result));
        }
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
        unsigned s = f->idx[i], li = f->li[i];
        sku_m_t *m = &t->life->skus[s];
        thr_sku_t *ts = &t->sk[s];
        ts->inflight--;
        int64_t a = f->amount[i];
        if (f->opcode == ALLOT_OP_SKU_SET) {
            m->set_pending = false;
            m->set_unknown = true;
            m->set_li = (uint8_t)li;
            m->set_prio = f->prio[i];
            m->set_on_hand = (uint64_t)a;
            m->set_limit = f->limit[i];
            m->set_reorder = f->reorder[i];
        } else {
            ts->lo += a < 0 ? a : 0;
            ts->hi += a > 0 ? a : 0;
            ts->llo[li] += a < 0 ? a : 0;
            ts->lhi[li] += a > 0 ? a : 0;
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
        bool bo = m->policy == ALLOT_POLICY_BACKORDER;
        if (f->opcode == ALLOT_OP_PLACE && bo)
            bo_place_answer(t, m, &o);
        else if (f->opcode == ALLOT_OP_PLACE)
            place_answer(t, m, &o);
        else if (bo)
            bo_op_answer(t, m, f->opcode, &o);
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
    int64_t loc_alloc[SKUS_T][LOC_T];   /* live orders' units by location */
    int64_t loc_shipped[SKUS_T][LOC_T]; /* units FULFILLs took from a location
                                           since its anchor */
    int64_t shipped_unknown[SKUS_T]; /* units of FULFILLs whose answer was lost */
    uint32_t limit_use[CUSTOMERS + 1][SKUS_T];
    uint32_t waiting[SKUS_T];        /* order lines with a queue place */
    uint64_t waiting_units[SKUS_T];
    size_t lost_present, lost_absent; /* PLACEs whose answer was lost */
} check_t;

/* Reads every order and SKU with nothing applied in between: the journal's
 * sequence number must not move while reading (lapsed holds expire on
 * their own, and so do waits, and stock they give back fills waiting
 * orders, so this may take a few tries). */
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

/* Where each line's units sit: locations of its SKU, each once, adding up
 * to the allocation; one location when the order asked for that. Only a
 * backorder waits or is confirmed in advance. */
static void check_lines(const life_t *L, const ord_m_t *o, const cu_order_obs_t *ob)
{
    bool bo = o->policy == ALLOT_POLICY_BACKORDER;
    CHECK(bo || ob->flags == 0, "order %" PRIu64 " (%s): flags %#x", o->id,
          o->policy == ALLOT_POLICY_PARTIAL ? "partial" : "all-or-nothing", ob->flags);
    for (unsigned i = 0; i < o->nlines; i++) {
        CHECK(bo || ob->queue_place[i] == 0,
              "order %" PRIu64 " line %u (not a backorder) waits at %u", o->id, i,
              ob->queue_place[i]);
        CHECK(ob->loc_count[i] <= 1 || !(o->flags & ALLOT_PLACE_FLAG_SINGLE_LOCATION),
              "order %" PRIu64 " line %u (SINGLE_LOCATION): units at %u locations", o->id, i,
              ob->loc_count[i]);
        uint64_t sum = 0;
        for (unsigned j = 0; j < ob->loc_count[i]; j++) {
            uint16_t loc = ob->loc[i][j];
            CHECK(o->sidx[i] != NO_SKU && loc_index(&L->skus[o->sidx[i]], loc) >= 0 &&
                      ob->loc_units[i][j] > 0,
                  "order %" PRIu64 " line %u: %u units at location %u, not one of sku %" PRIu64
                  "'s", o->id, i, ob->loc_units[i][j], loc, o->sku[i]);
            for (unsigned k = 0; k < j; k++)
                CHECK(ob->loc[i][k] != loc, "order %" PRIu64 " line %u: location %u twice", o->id,
                      i, loc);
            sum += ob->loc_units[i][j];
        }
        CHECK(sum == ob->allocated[i],
              "order %" PRIu64 " line %u: %u allocated, its locations hold %" PRIu64, o->id, i,
              ob->allocated[i], sum);
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

/* A line waits exactly while its BACKORDERED order misses units of it, and
 * a complete order misses none. */
static void check_bo_lines(const ord_m_t *o, const cu_order_obs_t *ob)
{
    bool waiting = ob->state == ALLOT_STATE_BACKORDERED, waits = false, complete = true;
    for (unsigned i = 0; i < o->nlines; i++) {
        uint32_t a = ob->allocated[i], qp = ob->queue_place[i];
        CHECK(o->place != P_OK || a >= o->alloc[i],
              "backorder %" PRIu64 " line %u: %u allocated, acknowledged %u", o->id, i, a,
              o->alloc[i]);
        CHECK(waiting ? (qp != 0) == (a < o->qty[i]) : qp == 0,
              "backorder %" PRIu64 " line %u (%s): %u of %u allocated, queue place %u", o->id, i,
              allot_state_name(ob->state), a, o->qty[i], qp);
        waits |= qp != 0;
        complete &= a == o->qty[i];
    }
    bool done = ob->state == ALLOT_STATE_HELD || ob->state == ALLOT_STATE_CONFIRMED ||
                ob->state == ALLOT_STATE_FULFILLED;
    CHECK(!waiting || waits, "backorder %" PRIu64 " is BACKORDERED with no line waiting", o->id);
    CHECK(!done || complete, "backorder %" PRIu64 " is %s but misses units", o->id,
          allot_state_name(ob->state));
}

/* A backorder, acknowledged or not: at least what was acknowledged, a state
 * the history allows once fills and expiries are added, deadlines that
 * follow from its wait and hold. */
static void check_backorder(check_t *c, const ord_m_t *o, const cu_order_obs_t *ob, uint64_t now)
{
    check_bo_lines(o, ob);
    bool waiting = ob->state == ALLOT_STATE_BACKORDERED;
    bool early = ob->flags & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE;
    bo_st_t set[BO_STATES_MAX];
    unsigned n = bo_allowed(o, set);
    bool ok = false;
    for (unsigned i = 0; i < n; i++)
        ok |= set[i].state == ob->state && (!waiting || set[i].early == early);
    if (ob->state == ALLOT_STATE_EXPIRED)
        ok &= expirable(ob, now);
    CHECK(ok,
          "backorder %" PRIu64 ": state %s%s, acknowledged %s%s (PLACE %s), lost answer to %s, "
          "deadline %" PRIu64 " (now %" PRIu64 ")",
          o->id, allot_state_name(ob->state), early ? " confirmed in advance" : "",
          allot_state_name(o->state), o->early ? " confirmed in advance" : "",
          o->place == P_OK ? "answered" : "lost",
          o->unknown_op ? allot_opcode_name(o->unknown_op) : "none", ob->deadline_ms, now);
    uint64_t wait_end = o->max_wait_ms ? ob->placed_ms + o->max_wait_ms : 0;
    CHECK(!waiting || ob->deadline_ms == wait_end,
          "backorder %" PRIu64 ": waits until %" PRIu64 ", placed %" PRIu64 " + %u", o->id,
          ob->deadline_ms, ob->placed_ms, o->max_wait_ms);
    if (ob->state == ALLOT_STATE_HELD && o->unknown_op != ALLOT_OP_EXTEND) {
        /* as acknowledged, or since filled: its hold started then */
        bool exact = o->place == P_OK && o->state == ALLOT_STATE_HELD;
        CHECK(exact ? ob->deadline_ms == o->deadline
                    : ob->deadline_ms >= ob->placed_ms + o->hold_ms,
              "backorder %" PRIu64 ": held until %" PRIu64 ", placed %" PRIu64 " + %u, "
              "acknowledged %" PRIu64, o->id, ob->deadline_ms, ob->placed_ms, o->hold_ms,
              o->deadline);
    }
    if (ob->state == ALLOT_STATE_FULFILLED && o->state != ALLOT_STATE_FULFILLED)
        for (unsigned i = 0; i < o->nlines; i++)
            if (o->sidx[i] != NO_SKU)
                c->shipped_unknown[o->sidx[i]] += ob->allocated[i];
}

/* What the SKUs, their locations, their queues and the limits must add up to. */
static void tally_order(const life_t *L, check_t *c, const ord_m_t *o, const cu_order_obs_t *ob)
{
    bool live = state_live(ob->state);
    bool counts = live || ob->state == ALLOT_STATE_FULFILLED;
    bool bo = o->policy == ALLOT_POLICY_BACKORDER;
    /* when its units left their locations (see sku_m_t.ltick) */
    uint64_t ful = ob->state != ALLOT_STATE_FULFILLED ? 0
                   : o->state == ALLOT_STATE_FULFILLED ? o->ful_tick
                                                       : UINT64_MAX;
    for (unsigned i = 0; i < o->nlines; i++) {
        unsigned s = o->sidx[i];
        if (s == NO_SKU)
            continue;
        const sku_m_t *m = &L->skus[s];
        if (live)
            c->alloc_sum[s] += ob->allocated[i];
        /* a backorder counts what it asked for from the start */
        if (counts && m->kind != K_COLD)
            c->limit_use[o->customer][s] += bo ? o->qty[i] : ob->allocated[i];
        if (ob->queue_place[i]) {
            c->waiting[s]++;
            c->waiting_units[s] += o->qty[i] - ob->allocated[i];
        }
        for (unsigned j = 0; j < ob->loc_count[i]; j++) {
            int li = loc_index(m, ob->loc[i][j]);
            if (live)
                c->loc_alloc[s][li] += ob->loc_units[i][j];
            if (ful > m->ltick[li])
                c->loc_shipped[s][li] += ob->loc_units[i][j];
        }
    }
}

static void check_order(const life_t *L, check_t *c, size_t k, uint64_t now)
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
    check_lines(L, o, ob);
    if (o->place == P_UNKNOWN)
        c->lost_present++;
    if (o->policy == ALLOT_POLICY_BACKORDER)
        check_backorder(c, o, ob, now);
    else if (o->place == P_UNKNOWN)
        check_lost_place(o, ob, now);
    else
        check_acked(c, o, ob, now);
    tally_order(L, c, o, ob);
}

/* On_hand as the acknowledged changes imply (the SKU as a whole). */
static void check_sku_total(const life_t *L, const check_t *c, unsigned s)
{
    const sku_m_t *m = &L->skus[s];
    const allot_sku_result_t *r = &c->skus[s];
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

/* Whether a lost SKU_SET explains location li as it is. */
static bool set_explains(const sku_m_t *m, const allot_sku_result_t *r, unsigned li,
                         const allot_sku_location_t *e)
{
    return m->set_unknown && m->set_li == li && e->on_hand == m->set_on_hand &&
           e->priority == m->set_prio && r->limit == m->set_limit &&
           r->reorder_point == m->set_reorder;
}

/* One location against the model: its priority, and its on_hand from the
 * anchor, the acknowledged changes and what FULFILLs took from it. */
static bool check_location(const life_t *L, const check_t *c, unsigned s, unsigned li,
                           const allot_sku_location_t *e)
{
    const sku_m_t *m = &L->skus[s];
    if (set_explains(m, &c->skus[s], li, e))
        return true;
    int64_t expect = m->lanchor[li] - c->loc_shipped[s][li], lo = 0, hi = 0;
    for (unsigned t = 0; t < L->nthreads; t++) {
        expect += L->thr[t].sk[s].ldelta[li];
        lo += L->thr[t].sk[s].llo[li];
        hi += L->thr[t].sk[s].lhi[li];
    }
    int64_t got = (int64_t)e->on_hand;
    CHECK(got - expect >= lo && got - expect <= hi,
          "sku %" PRIu64 " location %u: on_hand %" PRId64 ", acknowledged changes give %" PRId64
          " + [%" PRId64 ", %" PRId64 "] (lost SKU_SET: %d)",
          m->id, e->location, got, expect, lo, hi, m->set_unknown);
    CHECK(e->priority == m->prio[li], "sku %" PRIu64 " location %u: priority %u, acknowledged %u",
          m->id, e->location, e->priority, m->prio[li]);
    return false;
}

/* The locations: the stocked ones, in priority order, each within
 * 0 <= allocated <= on_hand, holding what the live orders say, adding up
 * to the totals. */
static void check_locations(const life_t *L, const check_t *c, unsigned s)
{
    const sku_m_t *m = &L->skus[s];
    const allot_sku_result_t *r = &c->skus[s];
    char got[160] = "", want[80] = "";
    for (unsigned j = 0, n = 0; j < r->location_count && n < sizeof got; j++)
        n += (unsigned)snprintf(got + n, sizeof got - n, " %u:%" PRIu64 "/%" PRIu64 "@%u",
                                r->locations[j].location, r->locations[j].allocated,
                                r->locations[j].on_hand, r->locations[j].priority);
    for (unsigned j = 0, n = 0; j < m->nloc && n < sizeof want; j++)
        n += (unsigned)snprintf(want + n, sizeof want - n, " %u@%u", m->loc[j], m->prio[j]);
    CHECK(r->location_count == m->nloc,
          "sku %" PRIu64 ": locations%s (allocated/on_hand@priority), stocked at%s", m->id, got,
          want);
    uint64_t on_hand = 0, allocated = 0;
    bool seen[LOC_T] = {false}, set_applied = false;
    for (unsigned j = 0; j < r->location_count; j++) {
        const allot_sku_location_t *e = &r->locations[j];
        int li = loc_index(m, e->location);
        CHECK(li >= 0 && !seen[li], "sku %" PRIu64 ": location %u unknown or listed twice", m->id,
              e->location);
        seen[li] = true;
        const allot_sku_location_t *p = j ? &r->locations[j - 1] : NULL;
        CHECK(!p || p->priority > e->priority ||
                  (p->priority == e->priority && p->location < e->location),
              "sku %" PRIu64 ": location %u (priority %u) listed after %u (priority %u)", m->id,
              e->location, e->priority, p->location, p->priority);
        CHECK(e->allocated <= e->on_hand && (int64_t)e->allocated == c->loc_alloc[s][li],
              "sku %" PRIu64 " location %u: allocated %" PRIu64 " of %" PRIu64
              ", its live orders hold %" PRId64, m->id, e->location, e->allocated, e->on_hand,
              c->loc_alloc[s][li]);
        on_hand += e->on_hand;
        allocated += e->allocated;
        set_applied |= check_location(L, c, s, (unsigned)li, e);
    }
    CHECK(on_hand == r->on_hand && allocated == r->allocated,
          "sku %" PRIu64 ": locations hold %" PRIu64 "/%" PRIu64 ", totals %" PRIu64 "/%" PRIu64,
          m->id, allocated, on_hand, r->allocated, r->on_hand);
    CHECK(set_applied || (r->limit == m->limit && r->reorder_point == m->reorder),
          "sku %" PRIu64 ": limit %u reorder %u, acknowledged %u %u", m->id, r->limit,
          r->reorder_point, m->limit, m->reorder);
}

static void check_sku(const life_t *L, const check_t *c, unsigned s)
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
    CHECK(r->backorder_orders == c->waiting[s] && r->backorder_units == c->waiting_units[s],
          "sku %" PRIu64 ": %u orders wait for %" PRIu64 " units; the orders say %u for %" PRIu64,
          m->id, r->backorder_orders, r->backorder_units, c->waiting[s], c->waiting_units[s]);
    CHECK(r->backorder_orders == 0 || r->allocated == r->on_hand,
          "sku %" PRIu64 ": %u orders wait, yet %" PRIu64 " units are available", m->id,
          r->backorder_orders, r->on_hand - r->allocated);
    check_locations(L, c, s);
    if (m->kind != K_OWN) /* an own SKU's SKU_SET sets one location of several */
        check_sku_total(L, c, s);
}

/* ---- first come, first served -------------------------------------------- */

typedef struct wline {
    uint64_t ack, sent; /* ticks of its order's PLACE (ack UINT64_MAX: unknown) */
    uint32_t place;     /* queue place */
    uint32_t k;         /* order */
} wline_t;

static int wline_by_ack(const void *a, const void *b)
{
    const wline_t *x = a, *y = b;
    return x->ack < y->ack ? -1 : x->ack > y->ack;
}

/* refs[0..n): the lines (order << 2 | line) of existing orders on s. While
 * a line waits, no order placed after its PLACE was answered got a unit of
 * s, and every such order that waits too waits behind it. Queue places are
 * 1..depth. */
static void check_fifo(const life_t *L, const check_t *c, unsigned s, const uint32_t *refs,
                       size_t n)
{
    const sku_m_t *m = &L->skus[s];
    wline_t *w = malloc((n + 1) * sizeof *w);
    uint32_t *best = malloc((n + 1) * sizeof *best);
    uint8_t *seen = calloc(n + 2, 1);
    CHECK(w && best && seen, "out of memory");
    size_t nw = 0;
    uint64_t first = UINT64_MAX, first_id = 0;
    for (size_t j = 0; j < n; j++) {
        const ord_m_t *o = c->ords[refs[j] >> 2];
        uint32_t qp = c->obs[refs[j] >> 2].queue_place[refs[j] & 3];
        if (!qp)
            continue;
        uint64_t ack = o->ack_tick ? o->ack_tick : UINT64_MAX;
        w[nw++] = (wline_t){.ack = ack, .sent = o->sent_tick, .place = qp, .k = refs[j] >> 2};
        if (ack < first) {
            first = ack;
            first_id = o->id;
        }
    }
    for (size_t j = 0; j < nw; j++) {
        CHECK(w[j].place <= nw && !seen[w[j].place],
              "sku %" PRIu64 ": queue place %u twice or past the %zu waiting lines", m->id,
              w[j].place, nw);
        seen[w[j].place] = 1;
    }
    for (size_t j = 0; j < n; j++) {
        const ord_m_t *o = c->ords[refs[j] >> 2];
        uint32_t got = c->obs[refs[j] >> 2].allocated[refs[j] & 3];
        CHECK(o->sent_tick < first || got == 0,
              "sku %" PRIu64 ": order %" PRIu64 " got %u units, but was placed after order %" PRIu64
              " (still waiting) was acknowledged", m->id, o->id, got, first_id);
    }
    qsort(w, nw, sizeof *w, wline_by_ack);
    for (size_t j = 0; j < nw; j++)
        best[j] = j && best[j - 1] > w[j].place ? best[j - 1] : w[j].place;
    for (size_t j = 0; j < nw; j++) {
        /* the lines acknowledged before this one was sent: w[0..lo) */
        size_t lo = 0, hi = nw;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (w[mid].ack <= w[j].sent)
                lo = mid + 1;
            else
                hi = mid;
        }
        CHECK(lo == 0 || best[lo - 1] < w[j].place,
              "sku %" PRIu64 ": order %" PRIu64 " waits at place %u, an order acknowledged before "
              "it was sent waits at %u", m->id, c->ords[w[j].k]->id, w[j].place, best[lo - 1]);
    }
    free(w);
    free(best);
    free(seen);
}

static void check_waitlists(const life_t *L, const check_t *c)
{
    size_t count[SKUS_T] = {0};
    uint32_t *refs[SKUS_T] = {NULL};
    for (int pass = 0; pass < 2; pass++) {
        size_t fill[SKUS_T] = {0};
        for (size_t k = 0; k < c->n; k++) {
            const ord_m_t *o = c->ords[k];
            if (c->obs[k].result != ALLOT_OK)
                continue;
            for (unsigned i = 0; i < o->nlines; i++) {
                unsigned s = o->sidx[i];
                if (s == NO_SKU || !L->skus[s].waitable)
                    continue;
                if (pass == 0)
                    count[s]++;
                else
                    refs[s][fill[s]++] = (uint32_t)(k << 2 | i);
            }
        }
        for (unsigned s = 0; pass == 0 && s < L->nskus; s++) {
            refs[s] = malloc((count[s] + 1) * sizeof *refs[s]);
            CHECK(refs[s] != NULL, "out of memory");
        }
    }
    for (unsigned s = 0; s < L->nskus; s++) {
        if (L->skus[s].waitable)
            check_fifo(L, c, s, refs[s], count[s]);
        free(refs[s]);
    }
}

/* After a pass, what the server holds is the model's new starting point. */
static void resolve(life_t *L, check_t *c)
{
    /* Whatever applied before the kill comes before what is sent next. */
    uint64_t t0 = tick_mark(L);
    for (size_t k = 0; k < c->n; k++) {
        ord_m_t *o = c->ords[k];
        const cu_order_obs_t *ob = &c->obs[k];
        bool exists = ob->result == ALLOT_OK;
        o->place = exists ? P_OK : P_REJECTED;
        o->state = exists ? ob->state : ALLOT_STATE_REJECTED;
        o->deadline = ob->state == ALLOT_STATE_HELD ? ob->deadline_ms : 0;
        o->early = exists && (ob->flags & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE);
        o->unknown_op = 0;
        o->pending = 0;
        if (!exists)
            continue;
        if (!o->ack_tick)
            o->ack_tick = t0;
        if (ob->state == ALLOT_STATE_FULFILLED && !o->ful_tick)
            o->ful_tick = t0;
        for (unsigned i = 0; i < o->nlines; i++)
            o->alloc[i] = ob->allocated[i];
    }
    for (unsigned s = 0; s < L->nskus; s++) {
        sku_m_t *m = &L->skus[s];
        const allot_sku_result_t *r = &c->skus[s];
        m->anchor = (int64_t)r->on_hand;
        m->limit = r->limit;
        m->reorder = r->reorder_point;
        m->set_pending = m->set_unknown = false;
        for (unsigned j = 0; j < r->location_count; j++) {
            int li = loc_index(m, r->locations[j].location);
            m->lanchor[li] = (int64_t)r->locations[j].on_hand;
            m->prio[li] = r->locations[j].priority;
            m->ltick[li] = tick_mark(L);
        }
        atomic_store(&L->bo_seen[s], r->backorder_units);
    }
    for (unsigned t = 0; t < L->nthreads; t++) {
        thr_t *th = &L->thr[t];
        memset(th->sk, 0, sizeof th->sk);
        th->nlive = 0;
        for (size_t k = 0; k < th->nords; k++)
            if (state_live(th->ords[k].state))
                live_push(th, (uint32_t)k);
    }
}

typedef struct check_sum {
    size_t orders, lost_present, lost_absent, waiting;
} check_sum_t;

static void check_state(life_t *L, uint16_t port, check_sum_t *sum)
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
        check_order(L, c, k, now);
    for (unsigned s = 0; s < L->nskus; s++)
        check_sku(L, c, s);
    check_waitlists(L, c);
    for (unsigned cu = 1; cu <= CUSTOMERS; cu++)
        for (unsigned s = 0; s < L->nskus; s++)
            CHECK(L->skus[s].kind == K_COLD || L->skus[s].limit == 0 ||
                      c->limit_use[cu][s] <= L->skus[s].limit,
                  "customer %u holds %u of sku %" PRIu64 ", limit %u", cu, c->limit_use[cu][s],
                  L->skus[s].id, L->skus[s].limit);
    resolve(L, c);
    sum->orders = c->n;
    sum->lost_present = c->lost_present;
    sum->lost_absent = c->lost_absent;
    sum->waiting = 0;
    for (unsigned s = 0; s < L->nskus; s++)
        sum->waiting += c->waiting[s];
    free(c->ids);
    free(c->ords);
    free(c->obs);
    free(c);
}
/* ---- rounds ---------------------------------------------------------------- */

/* Location 0 (a SKU's stock in several locations always has it) and n - 1
 * other distinct ids, with random priorities. */
static void pick_locations(sku_m_t *m, uint64_t *rng, unsigned n)
{
    uint16_t ids[LOC_IDS - 1];
    for (uint16_t id = 1; id < LOC_IDS; id++)
        ids[id - 1] = id;
    m->loc[0] = 0;
    m->prio[0] = (uint16_t)cu_range(rng, 0, 5);
    for (unsigned i = 1; i < n; i++) {
        unsigned j = i - 1 + (unsigned)cu_range(rng, 0, LOC_IDS - 1 - i);
        uint16_t tmp = ids[i - 1];
        ids[i - 1] = ids[j];
        ids[j] = tmp;
        m->loc[i] = ids[i - 1];
        m->prio[i] = (uint16_t)cu_range(rng, 0, 5);
    }
    m->nloc = (uint8_t)n;
}

/* The kinds of SKU (see the top of this file): hot and cold ones at
 * location 0, two shared waitlists (one at location 0 alone, one at four
 * locations), and per connection three own ones at 2 to 4 locations, the
 * first with a waitlist. Waitlists start nearly sold out. */
static void sku_design(life_t *L, unsigned s, uint64_t *rng, sku_m_t *m)
{
    unsigned wait0 = wait_sku(L, 0), own0 = own_sku(L, 0, 0);
    memset(m, 0, sizeof *m);
    m->id = s < HOT ? 100 + s : 1000 + s;
    m->kind = s < HOT ? K_HOT : s < wait0 ? K_COLD : s < own0 ? K_WAIT : K_OWN;
    m->reorder = (uint32_t)cu_range(rng, 0, 10);
    unsigned lo = 10, hi = 60;
    if (m->kind == K_HOT) {
        lo = 100, hi = 400;
        m->limit = HOT_LIMIT;
    } else if (m->kind == K_COLD) {
        m->limit = cu_range(rng, 0, 1) ? 4 : 0;
    } else if (m->kind == K_WAIT) {
        m->waitable = true;
        lo = 1, hi = 5;
        m->limit = 0;
        if (s != wait0)
            pick_locations(m, rng, LOC_T);
    } else {
        m->waitable = (s - own0) % OWN_PER_THREAD == 0;
        lo = m->waitable ? 1 : 5, hi = m->waitable ? 6 : 30;
        /* limits count fulfilled units for ever: a limited waitlist soon
         * refuses most backorders, so few have one */
        m->limit = m->waitable ? (cu_range(rng, 0, 3) == 0 ? 12 : 0) : cu_range(rng, 0, 1) ? 5 : 0;
        pick_locations(m, rng, (unsigned)cu_range(rng, 2, LOC_T));
    }
    if (m->nloc == 0) {
        m->nloc = 1; /* location 0, priority 0 */
        if (m->kind == K_WAIT)
            lo = 5, hi = 15;
    }
    /* at least one unit in each, location 0 included */
    for (unsigned i = 0; i < m->nloc; i++) {
        m->lanchor[i] = (int64_t)cu_range(rng, lo, hi);
        m->anchor += m->lanchor[i];
    }
}

static void life_setup(life_t *L, uint16_t port, uint64_t *rng)
{
    allot_conn_t *c = cu_connect(port, 8, 10000);
    L->nskus = own_sku(L, L->nthreads, 0);
    for (unsigned s = 0; s < L->nskus; s++) {
        sku_m_t *m = &L->skus[s];
        sku_design(L, s, rng, m);
        for (unsigned i = 0; i < m->nloc; i++) {
            allot_sku_result_t r;
            uint64_t on_hand = (uint64_t)m->lanchor[i];
            int rc = m->kind == K_HOT || m->kind == K_COLD
                         ? allot_sku_set(c, m->id, on_hand, m->limit, m->reorder, &r)
                         : allot_sku_set_at(c, m->id, m->loc[i], m->prio[i], on_hand, m->limit,
                                            m->reorder, &r);
            CHECK(rc == 0 && r.result == ALLOT_OK, "SKU_SET %" PRIu64 " at %u: %s", m->id,
                  m->loc[i], rc ? allot_last_error(c) : allot_result_name(r.result));
        }
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
        th->answered = th->unknown = th->backordered = 0;
        th->conn = cu_connect(port, DEPTH, 15000);
        int rc = allot_batch_new(&th->batch, ALLOT_OP_PLACE, th->conn);
        CHECK(rc == 0, "batch: %s", strerror(-rc));
        memset(th->frames, 0, sizeof th->frames);
    }
    for (unsigned t = 0; t < L->nthreads; t++)
        CHECK(pthread_create(&L->thr[t].tid, NULL, load_main, &L->thr[t]) == 0, "thread");
}

static void stop_load(life_t *L, uint64_t *answered, uint64_t *unknown, uint64_t *backordered)
{
    for (unsigned t = 0; t < L->nthreads; t++) {
        thr_t *th = &L->thr[t];
        CHECK(pthread_join(th->tid, NULL) == 0, "join");
        CHECK(!th->err[0], "connection %u: %s", t, th->err);
        *answered += th->answered;
        *unknown += th->unknown;
        *backordered += th->backordered;
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

    uint64_t answered = 0, unknown = 0, backordered = 0;
    uint64_t t0 = cu_mono_ms();
    start_load(L, srv.port, rc->seed);
    cu_sleep_ms(rc->delay_ms);
    atomic_store(&L->killed, true);
    cu_server_kill9(&srv);
    stop_load(L, &answered, &unknown, &backordered);
    uint64_t t1 = cu_mono_ms();

    start_server(L, &srv, rc);
    check_sum_t sum;
    check_state(L, srv.port, &sum);
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
           "applied, %zu not), %" PRIu64 " backorders waited; %zu orders checked, %zu lines "
           "waiting, seq %" PRIu64 ", digest %016" PRIx64 "%s\n",
           L->index, round, rc->seed, rc->threads, rc->snapshot, rc->delay_ms, t1 - t0, answered,
           unknown, sum.lost_present, sum.lost_absent, backordered, sum.orders, sum.waiting,
           v[ALLOT_STAT_SEQUENCE], v[ALLOT_STAT_STATE_DIGEST],
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
