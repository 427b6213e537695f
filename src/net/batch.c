/*
 * Executor batches of one network thread.
 *
 * Frames decoded in one loop iteration, from any of the thread's
 * connections, share a batch: pipelined single-op frames cost the executor
 * one hand-off per iteration, not one per frame. Each batch remembers, per
 * frame, which connection and request it answers and which ops are its.
 *
 * The NET_BATCHES batches form a ring used in order: [b_done, b_sent) are
 * in the executor, [b_sent, b_alloc) are sealed and waiting for room in
 * the executor's ring (or the last one is open and filling). The executor
 * completes a producer's batches in submission order, so they come back in
 * ring order. When all are in use, input waits (t->stalled) and resumes
 * when a batch completes: nothing spins.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/verify.h"
#include "net/internal.h"

/* The answers of ORDER_GET and SKU_GET need room beyond lines: a batch has
 * room for one frame of each at its largest, which keeps a batch's memory
 * at a few hundred KiB. */
#define NET_BATCH_DETAILS ALLOT_ORDER_GET_BATCH_MAX
#define NET_BATCH_LOCS (ALLOT_SKU_GET_BATCH_MAX * ALLOT_LOCATIONS_MAX)

static net_batch_t *batch_at(net_thread_t *t, uint32_t i)
{
    return &t->batches[i & (NET_BATCHES - 1)];
}

int batch_pool_init(net_thread_t *t)
{
    for (unsigned i = 0; i < NET_BATCHES; i++) {
        net_batch_t *b = &t->batches[i];
        /* large callocs are mapped lazily: a batch costs what it touches */
        b->ops = calloc(PROTO_DECODE_OPS_MAX, sizeof *b->ops);
        b->lines = calloc(PROTO_DECODE_LINES_MAX, sizeof *b->lines);
        b->frames = calloc(PROTO_DECODE_OPS_MAX, sizeof *b->frames);
        b->details = calloc(NET_BATCH_DETAILS, sizeof *b->details);
        b->locs = calloc(NET_BATCH_LOCS, sizeof *b->locs);
        if (!b->ops || !b->lines || !b->frames || !b->details || !b->locs)
            return -ENOMEM;
    }
    return 0;
}

void batch_pool_deinit(net_thread_t *t)
{
    for (unsigned i = 0; i < NET_BATCHES; i++) {
        free(t->batches[i].ops);
        free(t->batches[i].lines);
        free(t->batches[i].frames);
        free(t->batches[i].details);
        free(t->batches[i].locs);
    }
}

static void stats_fn(engine_t *e, void *ctx)
{
    net_batch_t *b = ctx;
    engine_stats(e, &b->est);
    b->digest = engine_digest(e);
}

static net_batch_t *batch_new(net_thread_t *t, bool stats)
{
    net_batch_t *b = batch_at(t, t->b_alloc++);
    b->xb = (exec_batch_t){.ops = b->ops, .user = b};
    if (stats) {
        b->xb.fn = stats_fn;
        b->xb.fn_ctx = b;
    }
    b->frames_n = 0;
    b->lines_used = 0;
    b->details_used = 0;
    b->locs_used = 0;
    b->stats = stats;
    return b;
}

/* Room for a frame: its ops and lines, and the answer buffers of reads
 * (an ORDER_GET op owns a detail, a SKU_GET op its locations). A fresh
 * batch holds any one frame, since the codec caps every count. */
static bool batch_fits(const net_batch_t *b, uint16_t opcode, size_t ops, size_t lines)
{
    size_t details = opcode == ALLOT_OP_ORDER_GET ? ops : 0;
    size_t locs = opcode == ALLOT_OP_SKU_GET ? ops * ALLOT_LOCATIONS_MAX : 0;

    return !b->stats && b->frames_n < PROTO_DECODE_OPS_MAX &&
           b->xb.n + ops <= PROTO_DECODE_OPS_MAX &&
           b->lines_used + lines <= PROTO_DECODE_LINES_MAX &&
           b->details_used + details <= NET_BATCH_DETAILS &&
           b->locs_used + locs <= NET_BATCH_LOCS;
}

/* Hands sealed batches to the executor, in order, while it has room. */
static void batch_submit(net_thread_t *t)
{
    while (t->b_sent < t->b_alloc) {
        net_batch_t *b = batch_at(t, t->b_sent);
        if (b == t->open)
            break;
        int rc = exec_submit(t->net->cfg.exec, t->index, &b->xb);
        if (rc == -EAGAIN)
            break; /* its ring is full: retried after completions */
        VERIFY(rc == 0);
        t->b_sent++;
    }
}

net_batch_t *batch_room(net_thread_t *t, uint16_t opcode, size_t ops, size_t lines)
{
    bool stats = opcode == ALLOT_OP_STATS;
    if (t->open && !stats && batch_fits(t->open, opcode, ops, lines))
        return t->open;
    t->open = NULL; /* sealed: a fresh batch holds any one frame */
    batch_submit(t);
    if (t->b_alloc - t->b_done == NET_BATCHES) {
        t->stalled = true;
        return NULL;
    }
    net_batch_t *b = batch_new(t, stats);
    if (!stats)
        t->open = b; /* a STATS batch carries one frame and is sealed */
    return b;
}

/* Points the frame's reads at the batch's answer buffers (the codec leaves
 * them NULL). A detail is cleared because the engine fills only what the
 * order has. */
static void batch_attach_answers(net_batch_t *b, uint16_t opcode, eng_op_t *ops, uint32_t n)
{
    if (opcode == ALLOT_OP_ORDER_GET) {
        VERIFY(b->details_used + n <= NET_BATCH_DETAILS);
        for (uint32_t i = 0; i < n; i++) {
            eng_order_detail_t *d = &b->details[b->details_used++];
            memset(d->queue_place, 0, sizeof d->queue_place);
            d->alloc_count = 0;
            d->order_flags = 0;
            ops[i].detail = d;
        }
    } else if (opcode == ALLOT_OP_SKU_GET) {
        VERIFY(b->locs_used + (size_t)n * ALLOT_LOCATIONS_MAX <= NET_BATCH_LOCS);
        for (uint32_t i = 0; i < n; i++) {
            ops[i].locs = &b->locs[b->locs_used];
            b->locs_used += ALLOT_LOCATIONS_MAX;
        }
    }
}

void batch_add_frame(net_batch_t *b, const net_conn_t *c, const proto_frame_t *f,
                     uint32_t n_ops, uint32_t n_lines, uint32_t bound)
{
    VERIFY(b->frames_n < PROTO_DECODE_OPS_MAX);
    batch_attach_answers(b, f->opcode, b->ops + b->xb.n, n_ops);
    b->frames[b->frames_n++] = (net_frame_ref_t){
        .slot = c->slot,
        .gen = c->gen,
        .request_id = f->request_id,
        .first = (uint32_t)b->xb.n,
        .count = n_ops,
        .bound = bound,
        .opcode = f->opcode,
    };
    b->xb.n += n_ops;
    b->lines_used += n_lines;
}

/* End of an iteration: whatever was gathered goes to the executor. */
void batch_flush(net_thread_t *t)
{
    t->open = NULL;
    batch_submit(t);
}

bool batch_idle(const net_thread_t *t)
{
    return t->b_done == t->b_alloc;
}

/* Most answer bytes a frame can produce, before the engine ran: what the
 * connection's backpressure accounts for while the frame is in flight. */
uint32_t answer_bound(uint16_t opcode, const eng_op_t *ops, size_t n)
{
    size_t bound = ALLOT_FRAME_HEADER_SIZE;
    switch (opcode) {
    case ALLOT_OP_PLACE:
        for (size_t i = 0; i < n; i++)
            bound += ALLOT_ORES_HEAD_SIZE + (((size_t)ops[i].line_count * 4u + 7u) & ~7u);
        break;
    case ALLOT_OP_ORDER_GET:
        bound += n * (ALLOT_OGET_HEAD_SIZE +
                      ALLOT_LINES_MAX * (ALLOT_OLINE_SIZE +
                                         ALLOT_LOCATIONS_MAX * ALLOT_OLOC_SIZE));
        break;
    case ALLOT_OP_SKU_GET:
        bound += n * (ALLOT_SRES_SIZE + ALLOT_LOCATIONS_MAX * ALLOT_SLOC_SIZE);
        break;
    case ALLOT_OP_SUBSCRIBE:
        bound += ALLOT_SUBR_SIZE;
        break;
    case ALLOT_OP_STATS:
        bound += 8u * ALLOT_STAT_COUNT;
        break;
    default:
        bound += n * ALLOT_SRES_SIZE; /* the largest fixed result */
        break;
    }
    return (uint32_t)bound;
}

/* ---- completions ---------------------------------------------------------- */

static uint64_t sum(net_t *n, size_t offset)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < n->cfg.threads; i++) {
        if (!n->threads[i])
            continue;
        const _Atomic uint64_t *v =
            (const _Atomic uint64_t *)((const char *)&n->threads[i]->counters + offset);
        total += atomic_load_explicit(v, memory_order_relaxed);
    }
    return total;
}

static void stats_values(net_thread_t *t, const net_batch_t *b, uint64_t *v)
{
    net_t *n = t->net;
    uint64_t durable = net_durable(t);
    v[ALLOT_STAT_STATE_DIGEST] = b->digest;
    v[ALLOT_STAT_SEQUENCE] = b->est.seq;
    /* no journal yet: nothing is on disk, whatever "durable" lets through */
    v[ALLOT_STAT_DURABLE_SEQUENCE] = durable == UINT64_MAX ? 0 : durable;
    v[ALLOT_STAT_NOW_MS] = b->est.now_ms;
    v[ALLOT_STAT_SKUS] = b->est.skus;
    v[ALLOT_STAT_ORDERS] = b->est.orders;
    v[ALLOT_STAT_ORDERS_LIVE] = b->est.orders_live;
    v[ALLOT_STAT_LIMIT_ENTRIES] = b->est.limit_entries;
    v[ALLOT_STAT_CONNECTIONS] = atomic_load(&n->conns);
    v[ALLOT_STAT_CONNECTIONS_TOTAL] = sum(n, offsetof(net_counters_t, connections_total));
    v[ALLOT_STAT_FRAMES_IN] = sum(n, offsetof(net_counters_t, frames_in));
    v[ALLOT_STAT_MALFORMED] = sum(n, offsetof(net_counters_t, malformed));
    v[ALLOT_STAT_HOLDS_EXPIRED] = b->est.holds_expired;
    v[ALLOT_STAT_SKUS_MAX] = b->est.skus_max;
    v[ALLOT_STAT_ORDERS_MAX] = b->est.orders_max;
    for (unsigned op = 0; op < ALLOT_OP_COUNT; op++)
        for (unsigned r = 0; r < ALLOT_RESULT_COUNT; r++)
            v[ALLOT_STAT_OPS + op * ALLOT_RESULT_COUNT + r] =
                sum(n, offsetof(net_counters_t, ops[op][r]));
}

static size_t encode_stats(net_thread_t *t, net_conn_t *c, const net_batch_t *b,
                           const net_frame_ref_t *fr)
{
    uint64_t v[ALLOT_STAT_COUNT];
    stats_values(t, b, v);
    size_t size = ALLOT_FRAME_HEADER_SIZE + 8u * ALLOT_STAT_COUNT;
    uint8_t *p = conn_out_reserve(t, c, size);
    if (!p)
        return 0;
    size_t w = proto_encode_stats(p, size, fr->request_id, v, ALLOT_STAT_COUNT);
    VERIFY(w == size);
    ctr_add(&t->counters.ops[ALLOT_OP_STATS][ALLOT_OK], 1);
    return w;
}

static size_t encode_ops(net_thread_t *t, net_conn_t *c, const net_frame_ref_t *fr,
                         const eng_op_t *ops)
{
    for (uint32_t i = 0; i < fr->count; i++) {
        unsigned r = ops[i].result;
        if (fr->opcode < ALLOT_OP_COUNT && r < ALLOT_RESULT_COUNT)
            ctr_add(&t->counters.ops[fr->opcode][r], 1);
    }
    if (fr->count == 0 && fr->opcode < ALLOT_OP_COUNT)
        ctr_add(&t->counters.ops[fr->opcode][ALLOT_OK], 1); /* STATS: no elements */
    size_t size = proto_response_size(fr->opcode, ops, fr->count);
    VERIFY(size > 0 && size <= fr->bound);
    uint8_t *p = conn_out_reserve(t, c, size);
    if (!p)
        return 0;
    size_t w = proto_encode_response(p, size, fr->opcode, fr->request_id, ops, fr->count);
    VERIFY(w == size);
    return w;
}

static void batch_complete(net_thread_t *t, net_batch_t *b)
{
    for (uint32_t i = 0; i < b->frames_n; i++) {
        const net_frame_ref_t *fr = &b->frames[i];
        net_conn_t *c = conn_get(t, fr->slot, fr->gen);
        size_t w = b->stats ? encode_stats(t, c, b, fr)
                            : encode_ops(t, c, fr, b->ops + fr->first);
        if (w > 0)
            conn_out_commit(t, c, w, b->xb.seq_needed, b->xb.mutating);
        conn_frame_done(t, c, fr->bound);
    }
    b->frames_n = 0;
}

/* Takes the executor's completed batches, queues their answers. Returns
 * how many completed. */
size_t batch_poll(net_thread_t *t)
{
    exec_batch_t *done[NET_BATCHES];
    size_t n = exec_poll(t->net->cfg.exec, t->index, done, NET_BATCHES);
    for (size_t i = 0; i < n; i++) {
        net_batch_t *b = done[i]->user;
        VERIFY(b == batch_at(t, t->b_done) && t->b_done != t->b_sent);
        batch_complete(t, b);
        t->b_done++;
    }
    if (n > 0) {
        t->stalled = false;
        batch_submit(t);
        conn_unstarve_all(t);
    }
    return n;
}
