/*
 * Randomized model test: millions of random operations, in random batches at
 * random times, applied to the engine and to the reference model
 * (model.c). Every answer must match field for field (ORDER_GET's location
 * allocations and queue places, SKU_GET's locations included), and so must
 * the event streams. Two more engines run alongside: a twin with another
 * shard count fed the same operations (same answers, same events, same
 * digest) and a replica rebuilt from the primary's record stream through
 * engine_replay() as it is emitted (every record legal, same events, same
 * digest). Every few thousand operations the whole state is compared and
 * engine_check() runs on all three engines; now and then the primary is
 * written to a snapshot, loaded into a fresh engine (same digest) and that
 * engine carries on as the twin.
 *
 * Reproducible: ALLOT_SEED=<n> sets the seed of every configuration (else
 * each uses its fixed default); ALLOT_MODEL_OPS=<n> sets the operation
 * count. A mismatch names the seed and the operation index.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "engine/engine.h"
#include "model.h"

#if defined(__SANITIZE_ADDRESS__)
#define MT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MT_SANITIZED 1
#endif
#endif
#ifndef MT_SANITIZED
#define MT_SANITIZED 0
#endif
/* Sanitizers make the engine and the model a few times slower. */
#define MT_OPS_DIVISOR (MT_SANITIZED ? 2u : 1u)

#define MT_BATCH_MAX 64u
#define MT_LINES_ROOM (ALLOT_LINES_MAX + 1) /* one over, for the 65-line case */
#define MT_CHECK_EVERY 4096u
#define MT_SNAPSHOT_EVERY 16u /* full checks between snapshot round trips */
#define MT_RECENT 32u
#define MT_SAVED 16u
#define MT_LOC_IDS 10u /* locations 0..9: more than a SKU may have */

/* Outcomes a configuration exists to reach (checked at the end). */
#define MT_EXPECT_CAPACITY 0x01u  /* full SKU and order tables */
#define MT_EXPECT_BACKORDER 0x02u /* waitlists filled, confirmed early, expired */
#define MT_EXPECT_LOCATIONS 0x04u /* split lines, single-location orders, 8 locations */
#define MT_EXPECT_LOC_CAPACITY 0x08u /* no room for another location or split */
#define MT_EXPECT_WAIT_CAPACITY 0x10u /* the waiting table full */
#define MT_EXPECT_QUEUES 0x20u /* lines behind others in a queue, waits run out */

typedef struct mt_config {
    const char *name;
    uint64_t seed;
    uint32_t ops;          /* operations in a Release build */
    uint32_t sku_ids;      /* SKU ops name SKUs 1..sku_ids */
    uint32_t skus_initial; /* SKUs created before the run */
    uint32_t order_ids;    /* order ids 1..order_ids */
    uint32_t customers;
    uint32_t stock_max; /* typical on_hand and restock */
    uint32_t qty_max;   /* typical line qty */
    uint32_t lines_typ; /* typical lines per order */
    uint32_t loc_pct;      /* SKU ops naming a location 0..9 rather than 0 */
    uint32_t backorder_pm; /* PLACEs with the BACKORDER policy, per mille */
    uint32_t single_pct;   /* other PLACEs with SINGLE_LOCATION */
    bool scarce;           /* stock never set huge: SKUs sell out, queues form */
    uint32_t expect;       /* MT_EXPECT_* */
    engine_config_t eng;
    uint32_t twin_shards;
    uint32_t replica_shards;
} mt_config_t;

typedef struct mt_saved {
    eng_op_t op;
    eng_line_t lines[MT_LINES_ROOM];
} mt_saved_t;

/* Events as one implementation emitted them, in order. */
typedef struct mt_events {
    eng_event_t *ev;
    size_t len, cap;
} mt_events_t;

/* A snapshot body in memory. */
typedef struct mt_buf {
    uint8_t *p;
    size_t len, cap;
} mt_buf_t;

/* The outputs of one op slot for one implementation. */
typedef struct mt_out {
    eng_op_t op[MT_BATCH_MAX];
    eng_line_t lines[MT_BATCH_MAX][MT_LINES_ROOM];
    eng_order_detail_t detail[MT_BATCH_MAX];
    eng_loc_view_t locs[MT_BATCH_MAX][ALLOT_LOCATIONS_MAX];
} mt_out_t;

typedef struct mt_run {
    const mt_config_t *cfg;
    uint64_t seed;
    uint64_t rng;
    uint64_t ops_done; /* operations applied before the current batch */
    uint64_t now_ms;   /* the latest time given to the engines */
    uint64_t checks;
    engine_t *eng, *twin, *replica;
    model_t *model;
    uint32_t wait_max_ms; /* longest maximum wait the generator asks for */
    uint32_t *sku_limit;  /* per SKU index: the one limit SKU_SET gives it */

    /* the record stream of the primary */
    uint64_t rec_seq, rec_time_ms, records;
    uint64_t rec_types[REC_TYPE_COUNT];
    char sink_error[512];

    mt_events_t ev_eng, ev_twin, ev_replica, ev_model;
    uint64_t ev_types[ALLOT_EVENT_COUNT];
    mt_buf_t snap;
    uint64_t snapshots;

    uint64_t recent[MT_RECENT]; /* ids of orders placed lately */
    uint32_t recent_len, recent_pos;
    uint64_t recent_bo[MT_RECENT]; /* ... of those, BACKORDERED when placed */
    uint32_t recent_bo_len, recent_bo_pos;
    mt_saved_t saved[MT_SAVED]; /* PLACE requests to send again */
    uint32_t saved_len, saved_pos;

    uint64_t results[ALLOT_OP_COUNT + 1][ALLOT_RESULT_COUNT];
    uint64_t bo_results[ALLOT_RESULT_COUNT]; /* PLACEs with the BACKORDER policy */
    uint64_t replays[ALLOT_OP_COUNT + 1];
    uint64_t expire_calls_expired;
    uint64_t placed_backordered, placed_single, confirmed_early, confirmed_early_again;
    uint64_t refused_waiting[2]; /* EXTEND, FULFILL of a BACKORDERED order */
    uint64_t seen_split_lines, seen_deep_queue, seen_full_locs;

    eng_op_t req[MT_BATCH_MAX];
    eng_line_t req_lines[MT_BATCH_MAX][MT_LINES_ROOM];
    mt_out_t eo, to, mo;
} mt_run_t;

/* ---- randomness and ids ------------------------------------------------- */

static uint64_t rnd64(mt_run_t *r)
{
    uint64_t z = (r->rng += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint32_t rnd(mt_run_t *r, uint32_t n) { return n ? (uint32_t)(rnd64(r) % n) : 0; }

/* Ids are small indices spread over 64 bits (odd multipliers are
 * bijections), so that tables see realistic keys while the test can draw
 * from a small space to make collisions and reuse happen. */
static uint64_t sku_id(uint32_t i) { return i * UINT64_C(0x9E3779B97F4A7C15); }
static uint64_t order_id(uint32_t i) { return i * UINT64_C(0xD1B54A32D192ED03); }
static uint64_t customer_id(uint32_t i) { return i * UINT64_C(0x8CB92BA72F3D8DD7) + 7; }

/* ---- failure reports ---------------------------------------------------- */

static void describe(const eng_op_t *op, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "%s id=%" PRIu64 " customer=%" PRIu64 " amount=%" PRIu64
                     " ms=%u policy=%u lines=%u flags=%u max_wait=%u location=%u"
                     " priority=%u rsv=%u limit=%u",
                     allot_opcode_name(op->opcode), op->id, op->customer, op->amount, op->ms,
                     op->policy, op->line_count, op->place_flags, op->max_wait_ms,
                     op->location, op->priority, op->bad_reserved, op->limit);
    if (op->opcode != ALLOT_OP_PLACE)
        return;
    for (uint32_t i = 0; i < op->line_count && i < 6 && n > 0 && (size_t)n < len; i++)
        n += snprintf(buf + n, len - (size_t)n, " [%" PRIu64 " x%u]", op->lines[i].sku,
                      op->lines[i].qty);
}

#define MT_FAIL(r, ...)                                                        \
    do {                                                                       \
        char msg_[1024];                                                       \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                              \
        cr_log_error("model test %s seed=%" PRIu64 ": %s", (r)->cfg->name,    \
                     (r)->seed, msg_);                                         \
        cr_assert_fail("model test %s seed=%" PRIu64 " (rerun with ALLOT_SEED=%" PRIu64 \
                       "): %s", (r)->cfg->name, (r)->seed, (r)->seed, msg_);   \
    } while (0)

/* ORDER_GET lists a line's locations in no promised order: compare them
 * sorted by (line, location). */
static void sort_allocs(eng_order_detail_t *d)
{
    for (uint32_t i = 1; i < d->alloc_count; i++) {
        eng_alloc_t a = d->allocs[i];
        uint32_t j = i;
        for (; j > 0 && (d->allocs[j - 1].line > a.line ||
                         (d->allocs[j - 1].line == a.line &&
                          d->allocs[j - 1].location > a.location));
             j--)
            d->allocs[j] = d->allocs[j - 1];
        d->allocs[j] = a;
    }
}

/* The fields of ORDER_GET's detail and SKU_GET's locations; NULL when
 * they agree, else what differs (w and g set). */
static const char *compare_extra(const eng_op_t *want, const eng_op_t *got, char *buf,
                                 size_t len, uint64_t *w, uint64_t *g)
{
    if (want->opcode == ALLOT_OP_SKU_GET && want->result == ALLOT_OK) {
        for (uint32_t k = 0; k < want->out_loc_count && k < ALLOT_LOCATIONS_MAX; k++) {
            const eng_loc_view_t *a = &want->locs[k], *b = &got->locs[k];
            if (a->location != b->location || a->priority != b->priority ||
                a->on_hand != b->on_hand || a->allocated != b->allocated) {
                snprintf(buf, len, "locs[%u] (location %u/%u priority %u/%u on_hand/allocated)",
                         k, a->location, b->location, a->priority, b->priority);
                *w = (a->on_hand << 32) | a->allocated;
                *g = (b->on_hand << 32) | b->allocated;
                return buf;
            }
        }
    }
    if (want->opcode != ALLOT_OP_ORDER_GET || want->result != ALLOT_OK)
        return NULL;
    const eng_order_detail_t *a = want->detail, *b = got->detail;
    if (a->order_flags != b->order_flags) {
        *w = a->order_flags, *g = b->order_flags;
        return "detail.order_flags";
    }
    for (uint32_t k = 0; k < want->line_count && k < ALLOT_LINES_MAX; k++)
        if (a->queue_place[k] != b->queue_place[k]) {
            snprintf(buf, len, "detail.queue_place[%u]", k);
            *w = a->queue_place[k], *g = b->queue_place[k];
            return buf;
        }
    if (a->alloc_count != b->alloc_count) {
        *w = a->alloc_count, *g = b->alloc_count;
        return "detail.alloc_count";
    }
    for (uint32_t k = 0; k < a->alloc_count && k < ENG_ALLOCS_MAX; k++) {
        const eng_alloc_t *x = &a->allocs[k], *y = &b->allocs[k];
        if (x->line != y->line || x->location != y->location || x->units != y->units) {
            snprintf(buf, len, "detail.allocs[%u] (line %u/%u location %u/%u units)", k,
                     x->line, y->line, x->location, y->location);
            *w = x->units, *g = y->units;
            return buf;
        }
    }
    return NULL;
}

/* Compares every output field of one op. want and got started as copies
 * of the same request, so a field neither side writes is equal too. */
static void compare_op(mt_run_t *r, size_t i, const eng_op_t *want, const eng_op_t *got,
                       const char *who)
{
    const char *field = NULL;
    uint64_t w = 0, g = 0;
#define CMP(f)                                                                 \
    if (!field && want->f != got->f) {                                         \
        field = #f;                                                            \
        w = (uint64_t)want->f;                                                 \
        g = (uint64_t)got->f;                                                  \
    }
    CMP(result) CMP(state) CMP(flags) CMP(out_policy) CMP(line_count) CMP(out_limit)
    CMP(out_reorder_point) CMP(out_backorder_orders) CMP(out_customer) CMP(out_placed_ms)
    CMP(out_deadline_ms) CMP(out_on_hand) CMP(out_allocated) CMP(out_backorder_units)
    CMP(out_loc_count) CMP(seq)
#undef CMP
    char lf[96];
    for (uint32_t k = 0; !field && k < MT_LINES_ROOM; k++) {
        const eng_line_t *a = &want->lines[k], *b = &got->lines[k];
        if (a->sku != b->sku || a->qty != b->qty || a->allocated != b->allocated) {
            snprintf(lf, sizeof lf, "lines[%u] (sku/qty/allocated)", k);
            field = lf;
            w = ((uint64_t)a->qty << 32) | a->allocated;
            g = ((uint64_t)b->qty << 32) | b->allocated;
        }
    }
    if (!field)
        field = compare_extra(want, got, lf, sizeof lf, &w, &g);
    if (!field)
        return;
    char d[512];
    describe(want, d, sizeof d);
    MT_FAIL(r,
            "op %" PRIu64 " (%s): %s differs, expected %" PRIu64 " (result %s) got %" PRIu64
            " (result %s) at now=%" PRIu64 "; op: %s",
            r->ops_done + i, who, field, w, allot_result_name(want->result), g,
            allot_result_name(got->result), r->now_ms, d);
}

/* What the contract promises of any one SKU answer, whoever gave it. */
static void check_sku_answer(mt_run_t *r, size_t i, const eng_op_t *op)
{
    bool sku_op = op->opcode == ALLOT_OP_SKU_SET || op->opcode == ALLOT_OP_RESTOCK ||
                  op->opcode == ALLOT_OP_ADJUST || op->opcode == ALLOT_OP_SKU_GET;
    if (!sku_op || op->result != ALLOT_OK)
        return;
    if (op->out_allocated > op->out_on_hand ||
        (op->out_backorder_orders == 0) != (op->out_backorder_units == 0))
        MT_FAIL(r, "op %" PRIu64 ": SKU %" PRIu64 " on_hand %" PRIu64 " allocated %" PRIu64
                   " with %u orders waiting for %" PRIu64 " units",
                r->ops_done + i, op->id, op->out_on_hand, op->out_allocated,
                op->out_backorder_orders, op->out_backorder_units);
    if (op->opcode != ALLOT_OP_SKU_GET)
        return;
    uint64_t on_hand = 0, allocated = 0;
    for (uint32_t k = 0; k < op->out_loc_count; k++) {
        const eng_loc_view_t *l = &op->locs[k];
        if (l->allocated > l->on_hand)
            MT_FAIL(r, "op %" PRIu64 ": SKU %" PRIu64 " location %u oversold", r->ops_done + i,
                    op->id, l->location);
        if (k > 0 && (op->locs[k - 1].priority < l->priority ||
                      (op->locs[k - 1].priority == l->priority &&
                       op->locs[k - 1].location >= l->location)))
            MT_FAIL(r, "op %" PRIu64 ": SKU %" PRIu64 " locations out of order", r->ops_done + i,
                    op->id);
        on_hand += l->on_hand;
        allocated += l->allocated;
    }
    if (op->out_loc_count == 0 || op->out_loc_count > ALLOT_LOCATIONS_MAX ||
        on_hand != op->out_on_hand || allocated != op->out_allocated)
        MT_FAIL(r, "op %" PRIu64 ": SKU %" PRIu64 "'s %u locations do not add up to its totals",
                r->ops_done + i, op->id, op->out_loc_count);
}

/* ---- events ------------------------------------------------------------- */

static void on_event(void *ctx, const eng_event_t *ev)
{
    mt_events_t *q = ctx;
    if (q->len == q->cap) {
        size_t cap = q->cap ? 2 * q->cap : 1024;
        eng_event_t *p = realloc(q->ev, cap * sizeof *p);
        if (!p)
            abort(); /* a test that cannot hold its events cannot go on */
        q->ev = p;
        q->cap = cap;
    }
    q->ev[q->len++] = *ev;
}

static void events_free(mt_events_t *q)
{
    free(q->ev);
    memset(q, 0, sizeof *q);
}

static void compare_events(mt_run_t *r, const mt_events_t *want, const mt_events_t *got,
                           const char *who)
{
    size_t n = want->len < got->len ? want->len : got->len;
    size_t k = 0;
    while (k < n && memcmp(&want->ev[k], &got->ev[k], sizeof want->ev[k]) == 0)
        k++;
    if (k == n && want->len == got->len)
        return;
    const eng_event_t *w = k < want->len ? &want->ev[k] : NULL;
    const eng_event_t *g = k < got->len ? &got->ev[k] : NULL;
    char a[200] = "none", b[200] = "none";
#define EVFMT "%s seq=%" PRIu64 " time=%" PRIu64 " sku=%" PRIu64 " order=%" PRIu64 \
              " value=%" PRIu64 " state=%u location=%u"
    if (w)
        snprintf(a, sizeof a, EVFMT, allot_event_name(w->type), w->seq, w->time_ms, w->sku,
                 w->order, w->value, w->state, w->location);
    if (g)
        snprintf(b, sizeof b, EVFMT, allot_event_name(g->type), g->seq, g->time_ms, g->sku,
                 g->order, g->value, g->state, g->location);
#undef EVFMT
    MT_FAIL(r, "after op %" PRIu64 " (%s): event %zu of %zu/%zu differs: expected %s, got %s",
            r->ops_done, who, k, want->len, got->len, a, b);
}

/* The event streams of one step: the engine's must be the model's, and
 * the twin's and the replica's the engine's. */
static void check_events(mt_run_t *r)
{
    compare_events(r, &r->ev_model, &r->ev_eng, "engine vs model");
    compare_events(r, &r->ev_eng, &r->ev_twin, "twin vs engine");
    compare_events(r, &r->ev_eng, &r->ev_replica, "replica vs engine");
    for (size_t k = 0; k < r->ev_eng.len; k++)
        if (r->ev_eng.ev[k].type < ALLOT_EVENT_COUNT)
            r->ev_types[r->ev_eng.ev[k].type]++;
    r->ev_eng.len = r->ev_twin.len = r->ev_replica.len = r->ev_model.len = 0;
}

/* ---- the record stream -------------------------------------------------- */

static void on_record(void *ctx, const eng_record_t *rec)
{
    mt_run_t *r = ctx;
    if (r->sink_error[0])
        return;
    if (rec->seq != r->rec_seq + 1) {
        snprintf(r->sink_error, sizeof r->sink_error, "record seq %" PRIu64 " after %" PRIu64,
                 rec->seq, r->rec_seq);
        return;
    }
    if (rec->time_ms < r->rec_time_ms) {
        snprintf(r->sink_error, sizeof r->sink_error, "record time %" PRIu64 " after %" PRIu64,
                 rec->time_ms, r->rec_time_ms);
        return;
    }
    r->rec_seq = rec->seq;
    r->rec_time_ms = rec->time_ms;
    r->records++;
    if (rec->type < REC_TYPE_COUNT)
        r->rec_types[rec->type]++;
    char why[256] = "";
    if (engine_replay(r->replica, rec, why, sizeof why) != 0)
        snprintf(r->sink_error, sizeof r->sink_error,
                 "replica refused record %" PRIu64 " (%s): %s", rec->seq,
                 eng_record_type_name(rec->type), why);
}

static void check_sink(mt_run_t *r)
{
    if (r->sink_error[0])
        MT_FAIL(r, "after op %" PRIu64 ": %s", r->ops_done, r->sink_error);
}

/* ---- applying ----------------------------------------------------------- */

/* Slot i of out becomes a copy of the request, with its own line, detail
 * and location buffers. */
static void copy_op(mt_out_t *out, size_t i, const eng_op_t *src)
{
    eng_op_t *dst = &out->op[i];
    *dst = *src;
    memcpy(out->lines[i], src->lines, MT_LINES_ROOM * sizeof out->lines[i][0]);
    dst->lines = out->lines[i];
    dst->detail = NULL;
    dst->locs = NULL;
    if (src->opcode == ALLOT_OP_ORDER_GET) {
        /* Only what the answer is compared on: the allocs beyond
         * alloc_count are never read. */
        memset(&out->detail[i], 0, offsetof(eng_order_detail_t, allocs));
        dst->detail = &out->detail[i];
    } else if (src->opcode == ALLOT_OP_SKU_GET) {
        memset(out->locs[i], 0, sizeof out->locs[i]);
        dst->locs = out->locs[i];
    }
}

static void remember(uint64_t *ring, uint32_t *len, uint32_t *pos, uint64_t id)
{
    ring[*pos] = id;
    *pos = (*pos + 1) % MT_RECENT;
    if (*len < MT_RECENT)
        (*len)++;
}

static void tally_order_get(mt_run_t *r, const eng_op_t *op)
{
    const eng_order_detail_t *d = op->detail;
    uint32_t per_line[ALLOT_LINES_MAX] = {0};
    uint64_t units[ALLOT_LINES_MAX] = {0};
    for (uint32_t k = 0; k < d->alloc_count; k++) {
        if (d->allocs[k].line >= op->line_count || d->allocs[k].units == 0)
            MT_FAIL(r, "order %" PRIu64 ": location entry %u names line %u of %u, %u units",
                    op->id, k, d->allocs[k].line, op->line_count, d->allocs[k].units);
        per_line[d->allocs[k].line]++;
        units[d->allocs[k].line] += d->allocs[k].units;
    }
    for (uint32_t k = 0; k < op->line_count; k++) {
        if (units[k] != op->lines[k].allocated)
            MT_FAIL(r, "order %" PRIu64 " line %u: locations hold %" PRIu64 " of %u units",
                    op->id, k, units[k], op->lines[k].allocated);
        r->seen_split_lines += per_line[k] > 1;
        r->seen_deep_queue += d->queue_place[k] > 1;
    }
}

static void tally(mt_run_t *r, const eng_op_t *op)
{
    unsigned code = op->opcode <= ALLOT_OP_COUNT ? op->opcode : 0;
    r->results[code][op->result < ALLOT_RESULT_COUNT ? op->result : 0]++;
    bool replay = op->flags & ALLOT_FLAG_REPLAY;
    if (replay)
        r->replays[code]++;
    if (op->opcode == ALLOT_OP_PLACE && op->policy == ALLOT_POLICY_BACKORDER)
        r->bo_results[op->result < ALLOT_RESULT_COUNT ? op->result : 0]++;
    if (op->result == ALLOT_INVALID_STATE && op->state == ALLOT_STATE_BACKORDERED)
        r->refused_waiting[op->opcode == ALLOT_OP_FULFILL]++;
    if (op->result != ALLOT_OK)
        return;
    if (op->opcode == ALLOT_OP_PLACE && !replay) {
        remember(r->recent, &r->recent_len, &r->recent_pos, op->id);
        if (op->state == ALLOT_STATE_BACKORDERED) {
            remember(r->recent_bo, &r->recent_bo_len, &r->recent_bo_pos, op->id);
            r->placed_backordered++;
        }
        r->placed_single += (op->place_flags & ALLOT_PLACE_FLAG_SINGLE_LOCATION) != 0;
    } else if (op->opcode == ALLOT_OP_CONFIRM && op->state == ALLOT_STATE_BACKORDERED) {
        r->confirmed_early += !replay;
        r->confirmed_early_again += replay;
    } else if (op->opcode == ALLOT_OP_ORDER_GET) {
        tally_order_get(r, op);
    } else if (op->opcode == ALLOT_OP_SKU_GET) {
        r->seen_full_locs += op->out_loc_count == ALLOT_LOCATIONS_MAX;
    }
}

/* Applies req[0..n) at time t to all four implementations and compares. */
static void step(mt_run_t *r, size_t n, uint64_t t)
{
    for (size_t i = 0; i < n; i++) {
        copy_op(&r->eo, i, &r->req[i]);
        copy_op(&r->to, i, &r->req[i]);
        copy_op(&r->mo, i, &r->req[i]);
    }
    engine_apply(r->eng, r->eo.op, n, t);
    check_sink(r);
    engine_apply(r->twin, r->to.op, n, t);
    model_apply(r->model, r->mo.op, n, t);
    for (size_t i = 0; i < n; i++) {
        if (r->req[i].opcode == ALLOT_OP_ORDER_GET) {
            sort_allocs(r->eo.op[i].detail);
            sort_allocs(r->to.op[i].detail);
        }
        compare_op(r, i, &r->mo.op[i], &r->eo.op[i], "engine vs model");
        compare_op(r, i, &r->eo.op[i], &r->to.op[i], "twin vs engine");
        check_sku_answer(r, i, &r->eo.op[i]);
        tally(r, &r->eo.op[i]);
    }
    check_events(r);
    if (t > r->now_ms)
        r->now_ms = t;
    r->ops_done += n;
}

static void expire_step(mt_run_t *r, uint64_t t, uint32_t max)
{
    uint32_t a = engine_expire(r->eng, t, max);
    check_sink(r);
    uint32_t b = engine_expire(r->twin, t, max);
    uint32_t m = model_expire(r->model, t, max);
    if (a != m || b != m)
        MT_FAIL(r, "after op %" PRIu64 ": engine_expire(%" PRIu64 ", %u) expired %u, twin %u, "
                   "model %u", r->ops_done, t, max, a, b, m);
    if (engine_seq(r->eng) != engine_seq(r->twin) ||
        engine_seq(r->eng) != r->rec_seq)
        MT_FAIL(r, "after op %" PRIu64 ": seq %" PRIu64 " twin %" PRIu64 " records %" PRIu64,
                r->ops_done, engine_seq(r->eng), engine_seq(r->twin), r->rec_seq);
    check_events(r);
    r->expire_calls_expired += a;
    if (t > r->now_ms)
        r->now_ms = t;
}

/* ---- random operations -------------------------------------------------- */

static void op_reset(mt_run_t *r, size_t i, uint16_t opcode)
{
    memset(&r->req[i], 0, sizeof r->req[i]);
    memset(r->req_lines[i], 0, sizeof r->req_lines[i]);
    r->req[i].lines = r->req_lines[i];
    r->req[i].opcode = opcode;
}

static uint64_t pick_order(mt_run_t *r)
{
    uint32_t u = rnd(r, 100);
    if (u < 2)
        return 0;
    if (u < 25 && r->recent_bo_len)
        return r->recent_bo[rnd(r, r->recent_bo_len)];
    if (u < 65 && r->recent_len)
        return r->recent[rnd(r, r->recent_len)];
    return order_id(1 + rnd(r, r->cfg->order_ids));
}

/* SKU_SET creates only SKUs 1..sku_ids; the four ids after them stay
 * unknown for good. Returns the SKU's index (sku_id(0) is 0). */
static uint32_t pick_sku(mt_run_t *r, uint16_t opcode)
{
    uint32_t v = rnd(r, 100);
    if (v == 0)
        return 0;
    if (v < 3 && opcode != ALLOT_OP_SKU_SET)
        return r->cfg->sku_ids + 1 + rnd(r, 4);
    return 1 + rnd(r, r->cfg->sku_ids);
}

static uint32_t pick_limit(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    return v < 550 ? 0 : v < 980 ? 1 + rnd(r, r->cfg->qty_max * 3) : (uint32_t)rnd64(r);
}

/* Mostly the SKU's own limit or none, so that limits stay in force long
 * enough to be reached; now and then any limit, lowered below what
 * customers already hold. */
static uint32_t pick_sku_limit(mt_run_t *r, uint32_t k)
{
    uint32_t v = rnd(r, 100);
    if (v < 20 || k > r->cfg->sku_ids)
        return pick_limit(r);
    return v < 45 ? 0 : r->sku_limit[k];
}

static uint16_t pick_location(mt_run_t *r)
{
    return rnd(r, 100) < r->cfg->loc_pct ? (uint16_t)rnd(r, MT_LOC_IDS) : 0;
}

static uint16_t pick_priority(mt_run_t *r)
{
    uint32_t v = rnd(r, 100);
    return v < 45 ? 0 : v < 95 ? (uint16_t)(1 + rnd(r, 4)) : (uint16_t)rnd64(r);
}

static uint32_t pick_line_count(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    if (v < 800)
        return 1 + rnd(r, r->cfg->lines_typ);
    if (v < 970)
        return 1 + rnd(r, 16);
    if (v < 990)
        return 1 + rnd(r, ALLOT_LINES_MAX);
    if (v < 994)
        return ALLOT_LINES_MAX;
    return v < 997 ? ALLOT_LINES_MAX + 1 : 0;
}

static uint32_t pick_qty(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    if (v < 700)
        return 1 + rnd(r, r->cfg->qty_max);
    if (v < 950)
        return 1 + rnd(r, r->cfg->qty_max * 5);
    if (v < 985)
        return 1 + rnd(r, 1000);
    if (v < 990)
        return UINT32_MAX;
    return v < 995 ? 0 : UINT32_MAX - rnd(r, 3);
}

/* A backorder line asks for a few units (one that asks for thousands
 * blocks its queue for good), now and then more. */
static uint32_t pick_backorder_qty(mt_run_t *r)
{
    uint32_t v = rnd(r, 100);
    return v < 85 ? 1 + rnd(r, r->cfg->qty_max) : v < 98 ? 1 + rnd(r, r->cfg->qty_max * 4)
                                                          : pick_qty(r);
}

static void gen_lines(mt_run_t *r, eng_op_t *op)
{
    bool backorder = op->policy == ALLOT_POLICY_BACKORDER;
    /* A few ids past sku_ids are never created: lines for unknown SKUs
     * (fewer of them in backorders, which they reject whole). */
    uint32_t space = r->cfg->sku_ids + (backorder && rnd(r, 10) ? 0 : 4);
    if (space < op->line_count + 4u)
        space = op->line_count + 4u;
    uint32_t n = op->line_count < MT_LINES_ROOM ? op->line_count : MT_LINES_ROOM;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t s;
        bool dup;
        do {
            s = sku_id(1 + rnd(r, space));
            dup = false;
            for (uint32_t j = 0; j < i; j++)
                dup |= op->lines[j].sku == s;
        } while (dup);
        op->lines[i].sku = s;
        op->lines[i].qty = backorder ? pick_backorder_qty(r) : pick_qty(r);
    }
    if (n >= 2 && rnd(r, 100) == 0)
        op->lines[1 + rnd(r, n - 1)].sku = op->lines[0].sku;
    if (n >= 1 && rnd(r, 200) == 0)
        op->lines[rnd(r, n)].sku = 0;
}

static void mutate_place(mt_run_t *r, eng_op_t *op)
{
    switch (rnd(r, 7)) {
    case 0: op->customer ^= 1; break;
    case 1: op->ms = op->ms ? 0 : 1 + rnd(r, (uint32_t)r->cfg->eng.hold_max_ms); break;
    case 2: op->policy ^= 1; break;
    case 3:
        if (op->line_count > 0 && op->line_count <= MT_LINES_ROOM)
            op->lines[rnd(r, op->line_count)].qty += 1;
        break;
    case 4: op->place_flags ^= ALLOT_PLACE_FLAG_SINGLE_LOCATION; break;
    case 5: op->max_wait_ms = op->max_wait_ms ? 0 : 1 + rnd(r, r->wait_max_ms); break;
    default:
        if (op->line_count > 1)
            op->line_count--;
        break;
    }
}

static uint8_t pick_policy(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    if (v < 5)
        return (uint8_t)(3 + rnd(r, 250));
    if (v < 5 + r->cfg->backorder_pm)
        return ALLOT_POLICY_BACKORDER;
    return rnd(r, 2) ? ALLOT_POLICY_PARTIAL : ALLOT_POLICY_ALL_OR_NOTHING;
}

static uint32_t pick_hold(mt_run_t *r, bool backorder)
{
    uint32_t hold_max = (uint32_t)r->cfg->eng.hold_max_ms;
    uint32_t v = rnd(r, 1000);
    if (v < (backorder ? 350u : 400u))
        return 0;
    return v < 970 ? 1 + rnd(r, hold_max)
           : v < 980 ? hold_max
           : v < 990 ? hold_max + 1
           : v < 995 ? UINT32_MAX
                     : 1;
}

/* Flags and maximum wait: SINGLE_LOCATION on plain orders, waits on
 * backorders, and now and then each where it does not belong. */
static void pick_place_extras(mt_run_t *r, eng_op_t *op)
{
    bool backorder = op->policy == ALLOT_POLICY_BACKORDER;
    if (backorder) {
        uint32_t v = rnd(r, 100);
        op->max_wait_ms = v < 45 ? 0 : v < 85 ? 1 + rnd(r, r->wait_max_ms) : 1 + rnd(r, 30);
        if (rnd(r, 100) == 0)
            op->place_flags = ALLOT_PLACE_FLAG_SINGLE_LOCATION;
    } else {
        if (rnd(r, 100) < r->cfg->single_pct)
            op->place_flags = ALLOT_PLACE_FLAG_SINGLE_LOCATION;
        if (rnd(r, 300) == 0)
            op->max_wait_ms = 1 + rnd(r, 1000);
    }
    if (rnd(r, 300) == 0)
        op->place_flags = (uint16_t)(1 + rnd(r, 0xffff));
    if (rnd(r, 300) == 0)
        op->bad_reserved = 1;
}

static void gen_place(mt_run_t *r, size_t i)
{
    op_reset(r, i, ALLOT_OP_PLACE);
    eng_op_t *op = &r->req[i];
    if (r->saved_len && rnd(r, 100) < 12) {
        const mt_saved_t *s = &r->saved[rnd(r, r->saved_len)];
        *op = s->op;
        memcpy(r->req_lines[i], s->lines, sizeof s->lines);
        op->lines = r->req_lines[i];
        if (rnd(r, 100) < 30)
            mutate_place(r, op);
        return;
    }
    uint32_t u = rnd(r, 100);
    if (u < 2)
        op->id = 0;
    else if (u < 20 && r->recent_len)
        op->id = r->recent[rnd(r, r->recent_len)];
    else
        op->id = order_id(1 + rnd(r, r->cfg->order_ids));
    op->customer = customer_id(rnd(r, r->cfg->customers));
    op->policy = pick_policy(r);
    op->line_count = (uint8_t)pick_line_count(r);
    gen_lines(r, op);
    op->ms = pick_hold(r, op->policy == ALLOT_POLICY_BACKORDER);
    pick_place_extras(r, op);
    if (rnd(r, 10) == 0) {
        mt_saved_t *s = &r->saved[r->saved_pos];
        s->op = *op;
        memcpy(s->lines, op->lines, sizeof s->lines);
        r->saved_pos = (r->saved_pos + 1) % MT_SAVED;
        if (r->saved_len < MT_SAVED)
            r->saved_len++;
    }
}

static uint64_t pick_on_hand(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    if (v < 500)
        return rnd(r, r->cfg->stock_max + 1);
    if (v < 850) /* most likely above what is allocated */
        return r->cfg->stock_max + rnd(r, r->cfg->stock_max + 1);
    if (v < 900)
        return rnd(r, 5);
    if (v < 950)
        return rnd(r, r->cfg->stock_max * 4 + 1);
    if (r->cfg->scarce)
        return UNITS_MAX + 1 + rnd(r, 2); /* refused */
    if (v < 965)
        return UNITS_MAX;
    if (v < 980)
        return UNITS_MAX + 1;
    return v < 990 ? UINT32_MAX : UINT64_MAX;
}

static uint64_t pick_restock(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    if (v < 900)
        return 1 + rnd(r, r->cfg->stock_max);
    if (v < 930)
        return 0;
    if (r->cfg->scarce)
        return UNITS_MAX + 1 + rnd(r, 2); /* refused */
    if (v < 960)
        return UNITS_MAX - rnd(r, 4);
    return v < 980 ? UNITS_MAX + rnd(r, 2) : 1 + rnd64(r) % UINT32_MAX;
}

static uint64_t pick_delta(mt_run_t *r)
{
    uint32_t v = rnd(r, 1000);
    int64_t d;
    if (v < 450)
        d = 1 + rnd(r, r->cfg->stock_max);
    else if (v < 900)
        d = -(int64_t)(1 + rnd(r, r->cfg->stock_max));
    else if (v < 920)
        d = 0;
    else if (v < 940)
        return (uint64_t)INT64_MIN;
    else if (v < 955)
        d = r->cfg->scarce ? (int64_t)UNITS_MAX + 1 : (int64_t)UNITS_MAX;
    else if (v < 970)
        d = -(int64_t)UNITS_MAX;
    else if (v < 980)
        d = (int64_t)UNITS_MAX + 1;
    else if (v < 990)
        d = -(int64_t)UNITS_MAX - 1;
    else
        return rnd64(r);
    return (uint64_t)d;
}

static void gen_sku_op(mt_run_t *r, size_t i, uint16_t opcode)
{
    op_reset(r, i, opcode);
    eng_op_t *op = &r->req[i];
    uint32_t k = pick_sku(r, opcode);
    op->id = sku_id(k);
    if (opcode == ALLOT_OP_SKU_GET)
        return;
    if (opcode == ALLOT_OP_SKU_SET) {
        op->amount = pick_on_hand(r);
        op->limit = pick_sku_limit(r, k);
        op->reorder_point = rnd(r, 20);
        op->priority = pick_priority(r);
    } else {
        op->amount = opcode == ALLOT_OP_RESTOCK ? pick_restock(r) : pick_delta(r);
    }
    op->location = pick_location(r);
    if (rnd(r, 200) == 0)
        op->location = (uint16_t)(MT_LOC_IDS + rnd64(r) % (UINT16_MAX - MT_LOC_IDS + 1));
    if (rnd(r, 200) == 0)
        op->bad_reserved = 1;
}

static void gen_order_op(mt_run_t *r, size_t i, uint16_t opcode)
{
    op_reset(r, i, opcode);
    eng_op_t *op = &r->req[i];
    op->id = pick_order(r);
    if (opcode == ALLOT_OP_EXTEND) {
        uint32_t v = rnd(r, 100);
        uint32_t hold_max = (uint32_t)r->cfg->eng.hold_max_ms;
        op->ms = v < 3 ? 0 : v < 90 ? 1 + rnd(r, hold_max) : v < 95 ? hold_max : UINT32_MAX;
        if (rnd(r, 200) == 0)
            op->bad_reserved = 1;
    }
}

static void gen_op(mt_run_t *r, size_t i)
{
    static const uint16_t odd_opcodes[] = {0, ALLOT_OP_HELLO, ALLOT_OP_STATS,
                                           ALLOT_OP_SUBSCRIBE, 99};
    /* Per mille. Where stock is scarce, less comes back and more ships,
     * so that SKUs sell out and waitlists form. */
    bool scarce = r->cfg->scarce;
    uint32_t fulfill = scarce ? 135 : 90, restock = scarce ? 25 : 70;
    uint32_t u = rnd(r, 1000);
    if (u < 420)
        gen_place(r, i);
    else if ((u -= 420) < 120)
        gen_order_op(r, i, ALLOT_OP_CONFIRM);
    else if ((u -= 120) < 70)
        gen_order_op(r, i, ALLOT_OP_CANCEL);
    else if ((u -= 70) < fulfill)
        gen_order_op(r, i, ALLOT_OP_FULFILL);
    else if ((u -= fulfill) < 50)
        gen_order_op(r, i, ALLOT_OP_EXTEND);
    else if ((u -= 50) < 40)
        gen_order_op(r, i, ALLOT_OP_ORDER_GET);
    else if ((u -= 40) < 40)
        gen_sku_op(r, i, ALLOT_OP_SKU_SET);
    else if ((u -= 40) < restock)
        gen_sku_op(r, i, ALLOT_OP_RESTOCK);
    else if ((u -= restock) < 50)
        gen_sku_op(r, i, ALLOT_OP_ADJUST);
    else if ((u -= 50) < 47)
        gen_sku_op(r, i, ALLOT_OP_SKU_GET);
    else
        op_reset(r, i, odd_opcodes[rnd(r, sizeof odd_opcodes / sizeof odd_opcodes[0])]);
}

/* The time of the next batch: mostly small steps (so that deadlines are hit
 * exactly), sometimes past whole holds or the retention window, and now and
 * then a time in the past, which the engine must ignore. */
static uint64_t next_time(mt_run_t *r)
{
    uint64_t hold_max = r->cfg->eng.hold_max_ms, retain = r->cfg->eng.retain_ms;
    uint32_t v = rnd(r, 1000);
    uint64_t d;
    if (v < 300)
        d = 0;
    else if (v < 700)
        d = 1 + rnd(r, 10);
    else if (v < 900)
        d = rnd(r, (uint32_t)hold_max);
    else if (v < 970)
        d = rnd(r, (uint32_t)hold_max * 3);
    else if (v < 990)
        d = retain >= 2 ? retain - 2 + rnd(r, 5) : rnd(r, 5);
    else
        return r->now_ms - (r->now_ms < 1000 ? r->now_ms : 1 + rnd(r, 1000));
    return r->now_ms + d;
}

/* ---- whole-state comparison --------------------------------------------- */

static engine_t *make_engine(const mt_config_t *c, uint32_t shards)
{
    engine_config_t ec = c->eng;
    ec.shards = shards;
    engine_t *e = NULL;
    int rc = engine_init(&e, &ec);
    cr_assert_eq(rc, 0, "engine_init: %d", rc);
    return e;
}

static int buf_write(void *ctx, const void *data, size_t len)
{
    mt_buf_t *b = ctx;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1u << 16;
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

/* The primary's state through a snapshot into a fresh engine: the same
 * digest, and from now on that engine is the twin, so that whatever the
 * digest does not cover (the deadline heap, queue order) is compared
 * through answers. */
static void snapshot_round_trip(mt_run_t *r)
{
    r->snap.len = 0;
    int rc = engine_snapshot_write(r->eng, buf_write, &r->snap);
    if (rc != 0)
        MT_FAIL(r, "after op %" PRIu64 ": engine_snapshot_write: %d", r->ops_done, rc);
    if (engine_snapshot_seq(r->snap.p, r->snap.len) != engine_seq(r->eng))
        MT_FAIL(r, "after op %" PRIu64 ": snapshot says seq %" PRIu64 ", engine %" PRIu64,
                r->ops_done, engine_snapshot_seq(r->snap.p, r->snap.len), engine_seq(r->eng));
    engine_t *fresh = make_engine(r->cfg, r->cfg->twin_shards);
    char why[256] = "";
    rc = engine_snapshot_load(fresh, r->snap.p, r->snap.len, why, sizeof why);
    if (rc != 0)
        MT_FAIL(r, "after op %" PRIu64 ": engine_snapshot_load (%zu bytes): %d %s", r->ops_done,
                r->snap.len, rc, why);
    if (engine_digest(fresh) != engine_digest(r->eng) || engine_seq(fresh) != engine_seq(r->eng) ||
        engine_now(fresh) != engine_now(r->eng))
        MT_FAIL(r, "after op %" PRIu64 ": snapshot loads to digest %016" PRIx64 " seq %" PRIu64
                   ", engine %016" PRIx64 " seq %" PRIu64, r->ops_done, engine_digest(fresh),
                engine_seq(fresh), engine_digest(r->eng), engine_seq(r->eng));
    if (engine_check(fresh, why, sizeof why) != 0)
        MT_FAIL(r, "after op %" PRIu64 ": engine_check of the loaded snapshot: %s", r->ops_done,
                why);
    r->snapshots++;
    engine_deinit(r->twin);
    r->twin = fresh;
    eng_event_sink_t es = {.event = on_event, .ctx = &r->ev_twin};
    engine_set_event_sink(r->twin, &es);
}

static void full_check(mt_run_t *r)
{
    eng_stats_t es, ms;
    engine_stats(r->eng, &es);
    model_stats(r->model, &ms);
    if (es.seq != ms.seq || es.now_ms != ms.now_ms || es.skus != ms.skus ||
        es.orders != ms.orders || es.orders_live != ms.orders_live ||
        es.limit_entries != ms.limit_entries || es.holds_expired != ms.holds_expired)
        MT_FAIL(r,
                "after op %" PRIu64 ": stats differ: seq %" PRIu64 "/%" PRIu64 " now %" PRIu64
                "/%" PRIu64 " skus %" PRIu64 "/%" PRIu64 " orders %" PRIu64 "/%" PRIu64
                " live %" PRIu64 "/%" PRIu64 " limit entries %" PRIu64 "/%" PRIu64
                " expired %" PRIu64 "/%" PRIu64 " (engine/model)",
                r->ops_done, es.seq, ms.seq, es.now_ms, ms.now_ms, es.skus, ms.skus, es.orders,
                ms.orders, es.orders_live, ms.orders_live, es.limit_entries, ms.limit_entries,
                es.holds_expired, ms.holds_expired);
    if (engine_next_deadline(r->eng) != model_next_deadline(r->model))
        MT_FAIL(r, "after op %" PRIu64 ": next deadline %" PRIu64 ", model %" PRIu64,
                r->ops_done, engine_next_deadline(r->eng), model_next_deadline(r->model));

    /* Every SKU and every order id, read through the normal path. */
    uint64_t saved_ops = r->ops_done;
    size_t n = 0;
    uint32_t total = r->cfg->sku_ids + 5 + r->cfg->order_ids;
    for (uint32_t k = 0; k <= total; k++) {
        if (k <= r->cfg->sku_ids + 4) {
            op_reset(r, n, ALLOT_OP_SKU_GET);
            r->req[n].id = sku_id(k + 1);
        } else {
            op_reset(r, n, ALLOT_OP_ORDER_GET);
            r->req[n].id = order_id(k - (r->cfg->sku_ids + 4));
        }
        if (++n == MT_BATCH_MAX || k == total) {
            step(r, n, r->now_ms);
            n = 0;
        }
    }
    r->ops_done = saved_ops;

    char why[256] = "";
    engine_t *engines[3] = {r->eng, r->twin, r->replica};
    static const char *const names[3] = {"engine", "twin", "replica"};
    for (int k = 0; k < 3; k++)
        if (engine_check(engines[k], why, sizeof why) != 0)
            MT_FAIL(r, "after op %" PRIu64 ": engine_check of the %s: %s", r->ops_done,
                    names[k], why);
    uint64_t d = engine_digest(r->eng);
    if (engine_digest(r->twin) != d || engine_digest(r->replica) != d)
        MT_FAIL(r, "after op %" PRIu64 ": digest %016" PRIx64 ", twin %016" PRIx64
                   ", replica %016" PRIx64, r->ops_done, d, engine_digest(r->twin),
                engine_digest(r->replica));
    if (engine_seq(r->replica) != engine_seq(r->eng))
        MT_FAIL(r, "replica at seq %" PRIu64 ", engine at %" PRIu64, engine_seq(r->replica),
                engine_seq(r->eng));
    if (++r->checks % MT_SNAPSHOT_EVERY == 0)
        snapshot_round_trip(r);
}

/* ---- a run -------------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    unsigned long long v = strtoull(s, &end, 0);
    return *end == '\0' ? (uint64_t)v : dflt;
}

/* Every SKU at location 0; in configurations with locations, some also
 * elsewhere, with a priority. */
static void setup_skus(mt_run_t *r)
{
    size_t n = 0;
    for (uint32_t k = 1; k <= r->cfg->skus_initial; k++) {
        uint32_t limit = r->sku_limit[k];
        op_reset(r, n, ALLOT_OP_SKU_SET);
        r->req[n].id = sku_id(k);
        /* A quarter start empty: their first stock may come elsewhere. */
        r->req[n].amount = k % 4 == 0 ? 0 : rnd(r, r->cfg->stock_max + 1);
        r->req[n].limit = limit;
        n++;
        if (k % 4 != 0 && rnd(r, 100) < r->cfg->loc_pct) {
            op_reset(r, n, ALLOT_OP_SKU_SET);
            r->req[n].id = sku_id(k);
            r->req[n].amount = rnd(r, r->cfg->stock_max + 1);
            r->req[n].limit = limit;
            r->req[n].location = (uint16_t)(1 + rnd(r, MT_LOC_IDS - 1));
            r->req[n].priority = pick_priority(r);
            n++;
        }
        if (n + 2 > MT_BATCH_MAX || k == r->cfg->skus_initial) {
            step(r, n, r->now_ms);
            n = 0;
        }
    }
}

static void report(const mt_run_t *r)
{
    char buf[3072];
    int len = snprintf(buf, sizeof buf, "model test %s seed=%" PRIu64 ": %" PRIu64
                       " ops, %" PRIu64 " records, %" PRIu64 " expired, %" PRIu64 " fills, %"
                       PRIu64 " snapshots; placed backordered %" PRIu64 " single-location %"
                       PRIu64 ", confirmed early %" PRIu64 " (again %" PRIu64 "), waits run out %" PRIu64 ", waits cancelled %" PRIu64
                       ", split lines %" PRIu64 ", deep queues %" PRIu64 ", full locations %"
                       PRIu64 ", lapsed at a queue head %" PRIu64 "; events:",
                       r->cfg->name, r->seed, r->ops_done, r->records,
                       r->rec_types[REC_EXPIRE], r->rec_types[REC_FILL], r->snapshots,
                       r->placed_backordered, r->placed_single, r->confirmed_early,
                       r->confirmed_early_again, model_waits_expired(r->model),
                       model_waits_cancelled(r->model), r->seen_split_lines, r->seen_deep_queue,
                       r->seen_full_locs, model_lapsed_at_head(r->model));
    for (unsigned t = 1; t < ALLOT_EVENT_COUNT && len > 0 && (size_t)len < sizeof buf; t++)
        len += snprintf(buf + len, sizeof buf - (size_t)len, " %s=%" PRIu64,
                        allot_event_name(t), r->ev_types[t]);
    len += snprintf(buf + len, sizeof buf - (size_t)len, "; BACKORDER PLACE:");
    for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++)
        if (r->bo_results[res] && (size_t)len < sizeof buf)
            len += snprintf(buf + len, sizeof buf - (size_t)len, " %s=%" PRIu64,
                            allot_result_name(res), r->bo_results[res]);
    static const uint16_t shown[] = {ALLOT_OP_PLACE, ALLOT_OP_CONFIRM, ALLOT_OP_CANCEL,
                                     ALLOT_OP_FULFILL, ALLOT_OP_EXTEND, ALLOT_OP_SKU_SET,
                                     ALLOT_OP_RESTOCK, ALLOT_OP_ADJUST};
    for (size_t k = 0; k < sizeof shown / sizeof shown[0] && len > 0; k++) {
        uint16_t op = shown[k];
        if ((size_t)len >= sizeof buf)
            break;
        len += snprintf(buf + len, sizeof buf - (size_t)len, "; %s:", allot_opcode_name(op));
        for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++)
            if (r->results[op][res] && (size_t)len < sizeof buf)
                len += snprintf(buf + len, sizeof buf - (size_t)len, " %s=%" PRIu64,
                                allot_result_name(res), r->results[op][res]);
        if ((size_t)len < sizeof buf)
            len += snprintf(buf + len, sizeof buf - (size_t)len, " replay=%" PRIu64,
                            r->replays[op]);
    }
    cr_log_info("%s", buf);
}

static void need(mt_run_t *r, bool ok, const char *what)
{
    if (!ok)
        MT_FAIL(r, "never saw %s", what);
}

/* The run must have reached the outcomes it exists to test. */
static void check_coverage(mt_run_t *r)
{
    static const struct {
        uint16_t op;
        uint8_t result;
    } need_results[] = {
        {ALLOT_OP_PLACE, ALLOT_OK},
        {ALLOT_OP_PLACE, ALLOT_INSUFFICIENT_STOCK},
        {ALLOT_OP_PLACE, ALLOT_UNKNOWN_SKU},
        {ALLOT_OP_PLACE, ALLOT_LIMIT_EXCEEDED},
        {ALLOT_OP_PLACE, ALLOT_ORDER_ID_CONFLICT},
        {ALLOT_OP_PLACE, ALLOT_INVALID_ARGUMENT},
        {ALLOT_OP_CONFIRM, ALLOT_OK},
        {ALLOT_OP_CONFIRM, ALLOT_INVALID_STATE},
        {ALLOT_OP_CONFIRM, ALLOT_UNKNOWN_ORDER},
        {ALLOT_OP_CANCEL, ALLOT_OK},
        {ALLOT_OP_CANCEL, ALLOT_INVALID_STATE},
        {ALLOT_OP_FULFILL, ALLOT_OK},
        {ALLOT_OP_FULFILL, ALLOT_INVALID_STATE},
        {ALLOT_OP_EXTEND, ALLOT_OK},
        {ALLOT_OP_EXTEND, ALLOT_INVALID_STATE},
        {ALLOT_OP_SKU_SET, ALLOT_OK},
        {ALLOT_OP_SKU_SET, ALLOT_INSUFFICIENT_STOCK},
        {ALLOT_OP_RESTOCK, ALLOT_UNKNOWN_SKU},
        {ALLOT_OP_ADJUST, ALLOT_INSUFFICIENT_STOCK},
    };
    for (size_t k = 0; k < sizeof need_results / sizeof need_results[0]; k++)
        if (r->results[need_results[k].op][need_results[k].result] == 0)
            MT_FAIL(r, "never saw %s answered %s", allot_opcode_name(need_results[k].op),
                    allot_result_name(need_results[k].result));
    static const uint16_t replayed[] = {ALLOT_OP_PLACE, ALLOT_OP_CONFIRM, ALLOT_OP_CANCEL,
                                        ALLOT_OP_FULFILL};
    for (size_t k = 0; k < sizeof replayed / sizeof replayed[0]; k++)
        if (r->replays[replayed[k]] == 0)
            MT_FAIL(r, "never saw a replay of %s", allot_opcode_name(replayed[k]));
    if (r->rec_types[REC_EXPIRE] == 0 || r->rec_types[REC_RETIRE] == 0 ||
        r->expire_calls_expired == 0)
        MT_FAIL(r, "holds expired %" PRIu64 " (%" PRIu64 " by engine_expire), retire records %"
                   PRIu64, r->rec_types[REC_EXPIRE], r->expire_calls_expired,
                r->rec_types[REC_RETIRE]);
}

/* ... and the issue 7 outcomes its configuration asks for. */
static void check_coverage_issue7(mt_run_t *r)
{
    need(r, r->ev_types[ALLOT_EVENT_HOLD_EXPIRED] && r->ev_types[ALLOT_EVENT_SOLD_OUT] &&
                r->ev_types[ALLOT_EVENT_REORDER_POINT] && r->ev_types[ALLOT_EVENT_RESTOCKED],
         "every kind of stock and expiry event");
    uint32_t x = r->cfg->expect;
    if (x & MT_EXPECT_CAPACITY)
        need(r, r->results[ALLOT_OP_PLACE][ALLOT_CAPACITY] &&
                    r->results[ALLOT_OP_SKU_SET][ALLOT_CAPACITY], "a full table");
    if (x & MT_EXPECT_BACKORDER) {
        need(r, r->placed_backordered > 0, "a PLACE answered BACKORDERED");
        need(r, r->rec_types[REC_FILL] > 0 && r->ev_types[ALLOT_EVENT_BACKORDER_FILLED] > 0,
             "a backorder filled");
        need(r, r->confirmed_early > 0 && r->confirmed_early_again > 0,
             "a backorder confirmed in advance, and that CONFIRM repeated");
        need(r, r->refused_waiting[0] > 0 && r->refused_waiting[1] > 0,
             "EXTEND and FULFILL of a waiting order refused");
        need(r, model_waits_cancelled(r->model) > 0, "a waiting order cancelled");
    }
    if (x & MT_EXPECT_QUEUES) {
        need(r, model_waits_expired(r->model) > 0, "a backorder whose wait ran out");
        need(r, r->seen_deep_queue > 0, "a line second or later in its queue");
    }
    if (x & MT_EXPECT_LOCATIONS) {
        need(r, r->seen_split_lines > 0, "a line split across locations");
        need(r, r->placed_single > 0, "a single-location order placed");
        need(r, r->seen_full_locs > 0, "a SKU with every location in use");
        need(r, r->results[ALLOT_OP_RESTOCK][ALLOT_CAPACITY] +
                        r->results[ALLOT_OP_SKU_SET][ALLOT_CAPACITY] +
                        r->results[ALLOT_OP_ADJUST][ALLOT_CAPACITY] > 0,
             "a location refused for room");
    }
    if (x & (MT_EXPECT_LOC_CAPACITY | MT_EXPECT_WAIT_CAPACITY))
        need(r, r->results[ALLOT_OP_PLACE][ALLOT_CAPACITY] > 0, "a PLACE refused for room");
}

/* Let every hold and wait lapse (expiries free stock that fills waiting
 * orders, which may start holds of their own), then every terminal order
 * age out, and compare once more: only confirmed orders, waiting orders
 * without a maximum wait, and limit counts remain. */
static void run_out(mt_run_t *r)
{
    const mt_config_t *c = r->cfg;
    full_check(r);
    for (int k = 0; k < 64 && model_next_deadline(r->model) != UINT64_MAX; k++) {
        uint64_t t = r->now_ms + c->eng.hold_max_ms + r->wait_max_ms;
        expire_step(r, t, UINT32_MAX);
    }
    expire_step(r, r->now_ms + c->eng.retain_ms, UINT32_MAX);
    full_check(r);
    snapshot_round_trip(r);
    full_check(r);
    eng_stats_t st;
    engine_stats(r->eng, &st);
    if (st.orders != st.orders_live || engine_next_deadline(r->eng) != UINT64_MAX)
        MT_FAIL(r, "at the end %" PRIu64 " orders, %" PRIu64 " live, next deadline %" PRIu64,
                st.orders, st.orders_live, engine_next_deadline(r->eng));
}

/* The three engines and the model, their record and event sinks, and the
 * per-SKU limits. */
static void run_start(mt_run_t *r, const mt_config_t *c)
{
    r->eng = make_engine(c, c->eng.shards);
    r->twin = make_engine(c, c->twin_shards);
    r->replica = make_engine(c, c->replica_shards);
    engine_config_t in_force;
    engine_get_config(r->eng, &in_force);
    cr_assert_eq(model_init(&r->model, &in_force), 0);
    eng_sink_t sink = {.record = on_record, .ctx = r};
    engine_set_sink(r->eng, &sink);
    eng_event_sink_t es = {.event = on_event, .ctx = &r->ev_eng};
    engine_set_event_sink(r->eng, &es);
    es.ctx = &r->ev_twin;
    engine_set_event_sink(r->twin, &es);
    es.ctx = &r->ev_replica;
    engine_set_event_sink(r->replica, &es);
    es.ctx = &r->ev_model;
    model_set_event_sink(r->model, &es);

    r->sku_limit = calloc(c->sku_ids + 1, sizeof *r->sku_limit);
    cr_assert_not_null(r->sku_limit);
    /* A third of the SKUs have a limit, whatever the seed. */
    for (uint32_t k = 1; k <= c->sku_ids; k++)
        r->sku_limit[k] = k % 3 != 1 ? 0 : rnd(r, 50) ? 1 + rnd(r, c->qty_max * 3)
                                                      : (uint32_t)rnd64(r);
}

static void run_model(const mt_config_t *c)
{
    mt_run_t *r = calloc(1, sizeof *r);
    cr_assert_not_null(r);
    r->cfg = c;
    r->seed = env_u64("ALLOT_SEED", c->seed);
    r->rng = r->seed;
    r->wait_max_ms = (uint32_t)c->eng.hold_max_ms * 2;
    uint64_t ops = env_u64("ALLOT_MODEL_OPS", c->ops / MT_OPS_DIVISOR);
    cr_log_info("model test %s: seed=%" PRIu64 " ops=%" PRIu64, c->name, r->seed, ops);
    run_start(r, c);
    r->now_ms = 1000 + rnd(r, 1000);
    setup_skus(r);
    uint64_t next_check = MT_CHECK_EVERY;
    while (r->ops_done < ops) {
        if (rnd(r, 10) == 0) {
            static const uint32_t maxes[] = {0, 1, 2, 3, 4096};
            uint64_t t = next_time(r);
            uint32_t max = maxes[rnd(r, 5)];
            expire_step(r, t, max);
        }
        uint64_t t = next_time(r);
        uint32_t v = rnd(r, 100);
        size_t n = v < 30 ? 1 : v < 80 ? 1 + rnd(r, 16) : 1 + rnd(r, MT_BATCH_MAX);
        for (size_t i = 0; i < n; i++)
            gen_op(r, i);
        step(r, n, t);
        if (r->ops_done >= next_check) {
            full_check(r);
            next_check = r->ops_done + MT_CHECK_EVERY;
        }
    }
    run_out(r);
    report(r);
    check_coverage(r);
    check_coverage_issue7(r);

    engine_deinit(r->eng);
    engine_deinit(r->twin);
    engine_deinit(r->replica);
    model_deinit(r->model);
    events_free(&r->ev_eng);
    events_free(&r->ev_twin);
    events_free(&r->ev_replica);
    events_free(&r->ev_model);
    free(r->snap.p);
    free(r->sku_limit);
    free(r);
}

/* ---- configurations ----------------------------------------------------- */

/* Lines never run out in the model test: even with no block reused across
 * size classes, 128 lines per order suffice. Splits and waiting lines get
 * room for every line of every order unless a configuration says less. */
#define MT_ENGINE(skus, orders, limits, retain, retain_ms_, hold, loc_skus, splits, waiting) \
    {.skus_max = (skus), .shards = 64, .orders_max = (orders),                     \
     .lines_max = (orders) * 128, .limits_max = (limits), .retain_max = (retain),  \
     .retain_ms = (retain_ms_), .hold_max_ms = (hold), .loc_skus_max = (loc_skus), \
     .splits_max = (splits), .waiting_max = (waiting)}
#define MT_ROOMY(orders) (orders) * ALLOT_LINES_MAX

/* A few dozen SKUs, tables with room: sell-outs, limits, holds, some
 * backorders and locations. SKU table large enough for 16 shards, so the
 * twin (1 shard) and the replica (4 shards) lay it out differently. */
static const mt_config_t cfg_default = {
    .name = "default", .seed = 20240601, .ops = 800000, .sku_ids = 48, .skus_initial = 40,
    .order_ids = 900, .customers = 8, .stock_max = 40, .qty_max = 3, .lines_typ = 3,
    .loc_pct = 15, .backorder_pm = 120, .single_pct = 10,
    .expect = MT_EXPECT_BACKORDER | MT_EXPECT_LOCATIONS,
    .eng = MT_ENGINE(4096, 300, 4096, 100, 3000, 1000, 4096, MT_ROOMY(300), MT_ROOMY(300)), .twin_shards = 1,
    .replica_shards = 4,
};

/* Every table small: SKU table full, order table full (retention may fill
 * it), limit table full, the waiting table full, no room for another SKU
 * with locations. */
static const mt_config_t cfg_small = {
    .name = "small_tables", .seed = 777001, .ops = 600000, .sku_ids = 48, .skus_initial = 30,
    .order_ids = 200, .customers = 6, .stock_max = 30, .qty_max = 3, .lines_typ = 3,
    .loc_pct = 20, .backorder_pm = 150, .single_pct = 10, .scarce = true,
    .expect = MT_EXPECT_CAPACITY | MT_EXPECT_WAIT_CAPACITY,
    .eng = MT_ENGINE(40, 48, 20, 48, 800, 400, 6, MT_ROOMY(48), 4),
    .twin_shards = 2, .replica_shards = 1,
};

/* A handful of hot SKUs: constant contention and sell-outs, long
 * waitlists filled by restocks and cancellations. */
static const mt_config_t cfg_hot = {
    .name = "hot_skus", .seed = 4242, .ops = 600000, .sku_ids = 6, .skus_initial = 5,
    .order_ids = 600, .customers = 4, .stock_max = 15, .qty_max = 2, .lines_typ = 2,
    .loc_pct = 30, .backorder_pm = 350, .single_pct = 15, .scarce = true,
    .expect = MT_EXPECT_BACKORDER | MT_EXPECT_QUEUES | MT_EXPECT_LOCATIONS,
    .eng = MT_ENGINE(1024, 200, 64, 30, 1500, 2000, 1024, MT_ROOMY(200), MT_ROOMY(200)), .twin_shards = 1, .replica_shards = 2,
};

/* Wide orders over more SKUs. */
static const mt_config_t cfg_wide = {
    .name = "wide_orders", .seed = 99991, .ops = 400000, .sku_ids = 80, .skus_initial = 70,
    .order_ids = 400, .customers = 10, .stock_max = 200, .qty_max = 5, .lines_typ = 12,
    .loc_pct = 25, .backorder_pm = 60, .single_pct = 20,
    .expect = MT_EXPECT_BACKORDER | MT_EXPECT_LOCATIONS,
    .eng = MT_ENGINE(2048, 128, 2048, 64, 5000, 3000, 2048, MT_ROOMY(128), MT_ROOMY(128)), .twin_shards = 8, .replica_shards = 1,
};

/* Terminal orders forgotten at once: one retained, none kept by age, so
 * expiry and retirement meet in the same engine_expire() call. */
static const mt_config_t cfg_churn = {
    .name = "churn", .seed = 31337, .ops = 300000, .sku_ids = 24, .skus_initial = 20,
    .order_ids = 120, .customers = 5, .stock_max = 20, .qty_max = 3, .lines_typ = 3,
    .loc_pct = 10, .backorder_pm = 120, .single_pct = 10, .scarce = true,
    .expect = MT_EXPECT_BACKORDER | MT_EXPECT_QUEUES,
    .eng = MT_ENGINE(512, 40, 100, 1, 0, 50, 512, MT_ROOMY(40), MT_ROOMY(40)), .twin_shards = 2, .replica_shards = 1,
};

/* Stock spread over many locations with priorities: whole-line and split
 * allocation, single-location orders, the eighth location, and a split
 * table that fills up, with backorders holding splits while they wait. */
static const mt_config_t cfg_locations = {
    .name = "locations", .seed = 5550123, .ops = 400000, .sku_ids = 16, .skus_initial = 16,
    .order_ids = 300, .customers = 6, .stock_max = 12, .qty_max = 6, .lines_typ = 3,
    .loc_pct = 70, .backorder_pm = 60, .single_pct = 30,
    .expect = MT_EXPECT_LOCATIONS | MT_EXPECT_LOC_CAPACITY,
    .eng = MT_ENGINE(256, 100, 256, 40, 2000, 1500, 256, 12, MT_ROOMY(100)), .twin_shards = 4,
    .replica_shards = 1,
};

/* A flash sale with a waitlist: few SKUs sold out most of the time, half
 * the orders backorders, stock coming back from restocks, cancellations
 * and expiries at several locations. */
static const mt_config_t cfg_waitlist = {
    .name = "waitlist", .seed = 8675309, .ops = 400000, .sku_ids = 8, .skus_initial = 8,
    .order_ids = 400, .customers = 12, .stock_max = 10, .qty_max = 3, .lines_typ = 2,
    .loc_pct = 40, .backorder_pm = 500, .single_pct = 10, .scarce = true,
    .expect = MT_EXPECT_BACKORDER | MT_EXPECT_QUEUES | MT_EXPECT_LOCATIONS,
    .eng = MT_ENGINE(512, 250, 512, 60, 2500, 800, 512, MT_ROOMY(250), MT_ROOMY(250)), .twin_shards = 1, .replica_shards = 8,
};

Test(model, default_seed, .timeout = 240) { run_model(&cfg_default); }
Test(model, small_tables, .timeout = 240) { run_model(&cfg_small); }
Test(model, hot_skus, .timeout = 240) { run_model(&cfg_hot); }
Test(model, wide_orders, .timeout = 240) { run_model(&cfg_wide); }
Test(model, churn, .timeout = 240) { run_model(&cfg_churn); }
Test(model, locations, .timeout = 240) { run_model(&cfg_locations); }
Test(model, waitlist, .timeout = 240) { run_model(&cfg_waitlist); }
