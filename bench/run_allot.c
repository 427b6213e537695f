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
        case ALLOT_OP_ORDER_GET: return allot_batch_add_order_get(tc->b, e->order);
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
    const sc_config_t *cfg = &sc->cfg;
    allot_order_spec_t spec = {
        .order = e->order,
        .customer = tc->ctx->customer_base + o->customer + 1u,
        .hold_ms = tc->ctx->hold_ms,
        .max_wait_ms = (o->flags & SC_ORD_MAX_WAIT) ? cfg->max_wait_ms : 0,
        .policy = cfg->policy,
        .flags = (o->flags & SC_ORD_SINGLE) ? ALLOT_PLACE_FLAG_SINGLE_LOCATION : 0,
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
    if (f->opcode == ALLOT_OP_ORDER_GET) {
        f->answer = cmp; /* read by the one it is handed back to */
        return;
    }
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
        for (unsigned k = 0; k < SC_WAIT_LINES_MAX; k++)
            e->alloc[k] = k < res.line_count ? res.allocated[k] : 0;
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
            f->answer = NULL;
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
    const uint16_t *loc;     /* SKU_SET: location and priority; NULL = 0, 0 */
    const uint16_t *prio;
    size_t n;
    sku_state_t *out;        /* SKU_SET at locations: NULL */
    sku_locs_t *locs;        /* SKU_GET: NULL or where locations go */
    int status;              /* first non-OK SKU_SET result, as -EIO */
    uint8_t bad_result;
    uint64_t bad_sku;
} ra_sku_pass_t;

static int ra_sku_fill(tconn_t *tc, ra_sku_pass_t *p, size_t start, size_t n)
{
    int rc = allot_batch_reset(tc->b, p->opcode);
    for (size_t i = start; i < start + n && rc == 0; i++) {
        if (p->opcode == ALLOT_OP_SKU_SET)
            rc = allot_batch_add_sku_set_at(tc->b, p->ids[i], p->loc ? p->loc[i] : 0,
                                            p->prio ? p->prio[i] : 0, p->on_hand[i],
                                            p->limit[i], 0);
        else
            rc = allot_batch_add_sku_get(tc->b, p->ids[i]);
    }
    return rc;
}

static void ra_sku_locs(const allot_sku_result_t *res, sku_locs_t *l)
{
    l->n = res->result == ALLOT_OK ? res->location_count : 0;
    for (unsigned k = 0; k < l->n; k++) {
        const allot_sku_location_t *src = &res->locations[k];
        l->l[k] = (sku_loc_t){.id = src->location, .prio = src->priority,
                              .on_hand = src->on_hand, .allocated = src->allocated};
    }
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
        if (p->out) {
            sku_state_t *s = &p->out[i];
            s->known = res.result == ALLOT_OK;
            s->on_hand = res.on_hand;
            s->allocated = res.allocated;
            s->limit = res.limit;
            s->bo_units = res.backorder_units;
            s->bo_orders = res.backorder_orders;
        }
        if (p->locs)
            ra_sku_locs(&res, &p->locs[i]);
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
    /* SKU_GET answers carry locations: fewer of them fit a frame. */
    size_t per = p->opcode == ALLOT_OP_SKU_GET && tc->sku_batch > ALLOT_SKU_GET_BATCH_MAX
                     ? ALLOT_SKU_GET_BATCH_MAX
                     : tc->sku_batch;
    while (next < p->n || allot_inflight(tc->c) > 0) {
        while (next < p->n && allot_inflight(tc->c) < RA_SKU_FRAMES) {
            size_t n = p->n - next < per ? p->n - next : per;
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
                p->bad_result != ALLOT_CAPACITY ? ""
                : p->loc ? " (a ninth location for the SKU, or the server's table of SKUs "
                           "with locations is full)"
                         : " (the server's SKU table is full: start allotd with a larger "
                           "--skus-max)");
    return p->status;
}

static int ra_read(tconn_t *tc, const uint64_t *ids, size_t n, sku_state_t *out)
{
    ra_sku_pass_t p = {.opcode = ALLOT_OP_SKU_GET, .ids = ids, .n = n, .out = out};
    return ra_sku_run(tc, &p);
}

int run_allot_read_locs(tconn_t *tc, const uint64_t *ids, size_t n, sku_state_t *out,
                        sku_locs_t *locs)
{
    ra_sku_pass_t p = {.opcode = ALLOT_OP_SKU_GET, .ids = ids, .n = n, .out = out, .locs = locs};
    return ra_sku_run(tc, &p);
}

/* Every location of the layout gets what it has allocated plus the stock:
 * one SKU_SET per (SKU, location). */
int run_allot_setup_locs(tconn_t *tc, const scenario_t *s, sku_state_t *before, sku_locs_t *locs)
{
    int rc = run_allot_read_locs(tc, s->sku_ids, s->n_skus, before, locs);
    if (rc < 0)
        return rc;
    size_t m = 0;
    for (size_t i = 0; i < s->n_skus; i++)
        m += s->locs[i].n;
    uint64_t *ids = malloc(m * sizeof *ids), *on_hand = malloc(m * sizeof *on_hand);
    uint32_t *limit = malloc(m * sizeof *limit);
    uint16_t *loc = malloc(m * sizeof *loc), *prio = malloc(m * sizeof *prio);
    rc = ids && on_hand && limit && loc && prio ? 0 : -ENOMEM;
    for (size_t i = 0, j = 0; rc == 0 && i < s->n_skus; i++) {
        const sc_locs_t *lay = &s->locs[i];
        for (unsigned k = 0; k < lay->n; k++, j++) {
            uint64_t held = 0;
            for (unsigned q = 0; before[i].known && q < locs[i].n; q++)
                if (locs[i].l[q].id == lay->id[k])
                    held = locs[i].l[q].allocated;
            ids[j] = s->sku_ids[i];
            on_hand[j] = held + sc_sku_stock(s, i);
            limit[j] = sc_sku_limit(s, i);
            loc[j] = lay->id[k];
            prio[j] = lay->prio[k];
        }
    }
    if (rc == 0) {
        ra_sku_pass_t p = {.opcode = ALLOT_OP_SKU_SET, .ids = ids, .on_hand = on_hand,
                           .limit = limit, .loc = loc, .prio = prio, .n = m};
        rc = ra_sku_run(tc, &p);
    }
    free(ids);
    free(on_hand);
    free(limit);
    free(loc);
    free(prio);
    return rc == 0 ? run_allot_read_locs(tc, s->sku_ids, s->n_skus, before, locs) : rc;
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
