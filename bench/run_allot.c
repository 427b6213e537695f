/*
 * The allot target of allot-bench run: everything goes through the public
 * client library, batches and pipelining included, as an application
 * would use it.
 */
#include "run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <allot/client.h>

#define RA_TIMEOUT_MS 30000u
#define RA_SKU_FRAMES 8u /* SKU frames in flight during set-up and reads */
#define RA_POLL_MAX 32u

struct tconn {
    allot_conn_t *c;
    allot_batch_t *b;
    const run_ctx_t *ctx;
    uint32_t sku_batch; /* elements per SKU frame */
};

static int ra_connect(target_t *t, tconn_t **out, uint32_t pipeline, uint32_t batch)
{
    tconn_t *tc = calloc(1, sizeof *tc);
    if (!tc)
        return -ENOMEM;
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.host = t->host;
    cfg.port = t->port;
    cfg.timeout_ms = RA_TIMEOUT_MS;
    cfg.inflight_max = (pipeline > RA_SKU_FRAMES ? pipeline : RA_SKU_FRAMES) + 1u;
    tc->ctx = t->ctx;
    int rc = allot_conn_new(&tc->c, &cfg);
    if (rc == 0)
        rc = allot_conn_open(tc->c);
    if (rc == 0)
        rc = allot_batch_new(&tc->b, ALLOT_OP_PLACE, tc->c);
    if (rc < 0) {
        if (tc->c)
            fprintf(stderr, "allot-bench run: %s: %s\n", t->url, allot_last_error(tc->c));
        allot_batch_free(tc->b);
        allot_conn_close(tc->c);
        free(tc);
        return rc;
    }
    const allot_server_info_t *info = allot_server_info(tc->c);
    if (batch > info->batch_max) {
        fprintf(stderr, "allot-bench run: --batch %u is over the server's limit of %u\n", batch,
                info->batch_max);
        allot_batch_free(tc->b);
        allot_conn_close(tc->c);
        free(tc);
        return -EINVAL;
    }
    tc->sku_batch = info->batch_max;
    *out = tc;
    return 0;
}

static void ra_close(tconn_t *tc)
{
    if (!tc)
        return;
    allot_batch_free(tc->b);
    allot_conn_close(tc->c);
    free(tc);
}

static int ra_fd(tconn_t *tc) { return allot_conn_fd(tc->c); }
static bool ra_wants_write(tconn_t *tc) { return allot_conn_wants_write(tc->c); }
static int ra_flush(tconn_t *tc) { return allot_flush(tc->c); }
static const char *ra_last_error(tconn_t *tc) { return allot_last_error(tc->c); }
static int64_t ra_housekeep(tconn_t *tc) { return 0; } /* the server expires holds itself */

static int ra_add(tconn_t *tc, uint16_t opcode, const run_elem_t *e)
{
    if (opcode != ALLOT_OP_PLACE) {
        switch (opcode) {
        case ALLOT_OP_CONFIRM: return allot_batch_add_confirm(tc->b, e->order);
        case ALLOT_OP_CANCEL: return allot_batch_add_cancel(tc->b, e->order);
        case ALLOT_OP_FULFILL: return allot_batch_add_fulfill(tc->b, e->order);
        default: return -EINVAL;
        }
    }
    const scenario_t *sc = tc->ctx->sc;
    const sc_order_t *o = &sc->orders[e->tmpl];
    const sc_line_t *l = sc->lines + o->line_off;
    allot_line_t lines[ALLOT_LINES_MAX];
    for (unsigned i = 0; i < o->line_count; i++) {
        lines[i].sku = sc->sku_ids[l[i].sku];
        lines[i].qty = l[i].qty;
    }
    allot_order_spec_t spec = {
        .order = e->order,
        .customer = tc->ctx->customer_base + o->customer + 1u,
        .hold_ms = tc->ctx->hold_ms,
        .policy = ALLOT_POLICY_ALL_OR_NOTHING,
        .lines = lines,
        .line_count = o->line_count,
    };
    return allot_batch_add_place(tc->b, &spec);
}

static int ra_submit(tconn_t *tc, run_frame_t *f)
{
    int rc = allot_batch_reset(tc->b, f->opcode);
    for (uint16_t i = 0; i < f->n && rc == 0; i++)
        rc = ra_add(tc, f->opcode, &f->elems[i]);
    if (rc < 0)
        return rc == -ENOSPC ? -EMSGSIZE : rc;
    return allot_submit(tc->c, tc->b, f, NULL);
}

static void ra_take(const allot_completion_t *cmp, run_frame_t *f)
{
    f->err = cmp->error;
    if (cmp->error != 0)
        return;
    allot_reader_t r;
    allot_reader_init(&r, cmp);
    allot_order_result_t res;
    for (uint16_t i = 0; i < f->n; i++) {
        if (allot_read_order(&r, &res) != 1) {
            f->err = -EPROTO; /* the library checked the count: cannot happen */
            return;
        }
        run_elem_t *e = &f->elems[i];
        e->result = res.result;
        e->state = res.state;
        e->replay = res.replay;
        e->deadline_ms = res.deadline_ms;
    }
}

static int ra_poll(tconn_t *tc, run_done_fn done, void *arg)
{
    allot_completion_t cmp[RA_POLL_MAX];
    int total = 0;
    for (;;) {
        int n = allot_poll(tc->c, cmp, RA_POLL_MAX);
        if (n < 0)
            return total > 0 ? total : n;
        for (int i = 0; i < n; i++) {
            run_frame_t *f = cmp[i].user;
            ra_take(&cmp[i], f);
            done(arg, f);
        }
        total += n;
        /* A full haul may leave whole answers in the buffer, which no
         * readiness event will announce: go again. */
        if ((unsigned)n < RA_POLL_MAX)
            return total;
    }
}

/* ---- SKU set-up and reads ---------------------------------------------------- */

typedef struct ra_sku_pass {
    uint16_t opcode;
    const uint64_t *ids;
    const uint64_t *on_hand; /* SKU_SET */
    const uint32_t *limit;   /* SKU_SET */
    size_t n;
    sku_state_t *out;
    int status;              /* first non-OK SKU_SET result, as -EIO */
    uint8_t bad_result;
    uint64_t bad_sku;
} ra_sku_pass_t;

static int ra_sku_fill(tconn_t *tc, ra_sku_pass_t *p, size_t start, size_t n)
{
    int rc = allot_batch_reset(tc->b, p->opcode);
    for (size_t i = start; i < start + n && rc == 0; i++) {
        if (p->opcode == ALLOT_OP_SKU_SET)
            rc = allot_batch_add_sku_set(tc->b, p->ids[i], p->on_hand[i], p->limit[i], 0);
        else
            rc = allot_batch_add_sku_get(tc->b, p->ids[i]);
    }
    return rc;
}

static int ra_sku_take(ra_sku_pass_t *p, const allot_completion_t *cmp)
{
    if (cmp->error != 0)
        return cmp->error;
    size_t start = (size_t)(uintptr_t)cmp->user;
    allot_reader_t r;
    allot_reader_init(&r, cmp);
    allot_sku_result_t res;
    for (size_t i = start; allot_read_sku(&r, &res) == 1; i++) {
        sku_state_t *s = &p->out[i];
        s->known = res.result == ALLOT_OK;
        s->on_hand = res.on_hand;
        s->allocated = res.allocated;
        s->limit = res.limit;
        bool bad = p->opcode == ALLOT_OP_SKU_SET ? res.result != ALLOT_OK
                                                 : res.result != ALLOT_OK &&
                                                       res.result != ALLOT_UNKNOWN_SKU;
        if (bad && p->status == 0) {
            p->status = -EIO;
            p->bad_result = res.result;
            p->bad_sku = p->ids[i];
        }
    }
    return 0;
}

/* Sends every SKU of the pass in frames, several in flight, and collects
 * the answers into out[]. */
static int ra_sku_run(tconn_t *tc, ra_sku_pass_t *p)
{
    size_t next = 0;
    while (next < p->n || allot_inflight(tc->c) > 0) {
        while (next < p->n && allot_inflight(tc->c) < RA_SKU_FRAMES) {
            size_t n = p->n - next < tc->sku_batch ? p->n - next : tc->sku_batch;
            int rc = ra_sku_fill(tc, p, next, n);
            if (rc == 0)
                rc = allot_submit(tc->c, tc->b, (void *)(uintptr_t)next, NULL);
            if (rc == -EAGAIN)
                break;
            if (rc < 0)
                return rc;
            next += n;
        }
        allot_completion_t cmp[RA_SKU_FRAMES];
        int k = allot_wait(tc->c, cmp, RA_SKU_FRAMES, 1000);
        if (k < 0)
            return k;
        for (int i = 0; i < k; i++) {
            int rc = ra_sku_take(p, &cmp[i]);
            if (rc < 0)
                return rc;
        }
    }
    if (p->status < 0)
        fprintf(stderr, "allot-bench run: %s of SKU %llu: %s%s\n",
                p->opcode == ALLOT_OP_SKU_SET ? "SKU_SET" : "SKU_GET",
                (unsigned long long)p->bad_sku, allot_result_name(p->bad_result),
                p->bad_result == ALLOT_CAPACITY ? " (the server's SKU table is full: "
                                                  "start allotd with a larger --skus-max)"
                                                : "");
    return p->status;
}

static int ra_read(tconn_t *tc, const uint64_t *ids, size_t n, sku_state_t *out)
{
    ra_sku_pass_t p = {.opcode = ALLOT_OP_SKU_GET, .ids = ids, .n = n, .out = out};
    return ra_sku_run(tc, &p);
}

/* on_hand is absolute: what is allocated now (orders of earlier runs) plus
 * the stock the scenario wants available. */
static int ra_setup(tconn_t *tc, const uint64_t *ids, const uint64_t *stock,
                    const uint32_t *limit, size_t n, sku_state_t *before)
{
    int rc = ra_read(tc, ids, n, before);
    if (rc < 0)
        return rc;
    uint64_t *on_hand = malloc((n ? n : 1) * sizeof *on_hand);
    if (!on_hand)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        on_hand[i] = (before[i].known ? before[i].allocated : 0) + stock[i];
    ra_sku_pass_t p = {.opcode = ALLOT_OP_SKU_SET, .ids = ids, .on_hand = on_hand,
                       .limit = limit, .n = n, .out = before};
    rc = ra_sku_run(tc, &p);
    free(on_hand);
    return rc;
}

const target_ops_t run_allot_ops = {
    .name = "allot",
    .connect = ra_connect,
    .close = ra_close,
    .fd = ra_fd,
    .wants_write = ra_wants_write,
    .submit = ra_submit,
    .flush = ra_flush,
    .poll = ra_poll,
    .setup = ra_setup,
    .read = ra_read,
    .housekeep = ra_housekeep,
    .last_error = ra_last_error,
};
