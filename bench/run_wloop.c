/*
 * What a backorder run adds to the load loop of allot-bench run, all of it
 * in worker 0 (such runs have one client thread): its answers go to the
 * book of orders (run_wait.c) instead of the tallies; a control connection
 * restocks the hot SKUs every --restock-every ms; a subscriber connection
 * receives BACKORDER_FILLED, HOLD_EXPIRED and RESTOCKED events, which move
 * orders the clients asked nothing of. Once the run is over, holds are
 * confirmed rather than left to expire (so that expiries stop feeding
 * fills), the loop waits past the last deadline it knows of, and then
 * restocks a marker SKU by one unit: its RESTOCKED event, being journaled
 * after everything before it, tells that every earlier event has arrived.
 * When a marker passes and nothing else happened meanwhile, the server has
 * nothing more to say about this run's orders.
 *
 * After the loop: every order is read back with ORDER_GET and compared with
 * the book, the FIFO checks run, and the orders still waiting or held are
 * cancelled so that the next run against the server starts with empty
 * queues.
 */
#include "bench.h"
#include "run_worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define RW_TIMEOUT_MS 30000u
#define RW_CTL_FRAMES 8u    /* frames in flight on the control connection */
#define RW_EVENTS 256u      /* events taken per call */
/* The subscriber's read buffer: a few EVENT frames. The library reads as
 * much as its buffer holds into a queue of ALLOT_EVENT_QUEUE_MAX events and
 * ends the subscription when they do not fit; a buffer far below that
 * leaves the rest of a burst in the kernel until it is taken. */
#define RW_SUB_BUFFER (4u * (ALLOT_FRAME_HEADER_SIZE + ALLOT_EVENT_BATCH_MAX * ALLOT_EV_SIZE))

/* ---- hot SKU ids to indexes ------------------------------------------------------- */

static size_t rw_slot(const rb_wait_t *wt, uint64_t id)
{
    size_t i = (size_t)wl_mix64(id) & (wt->hot_cap - 1u);
    while (wt->hot_keys[i] != 0 && wt->hot_keys[i] != id)
        i = (i + 1u) & (wt->hot_cap - 1u);
    return i;
}

/* The index of hot SKU id, or UINT32_MAX. */
static uint32_t rw_hot(const rb_wait_t *wt, uint64_t id)
{
    size_t i = rw_slot(wt, id);
    return wt->hot_keys[i] == id ? wt->hot_vals[i] : UINT32_MAX;
}

/* ---- the book asks, the worker sends ---------------------------------------------- */

static void rw_act(void *ctx, const wt_ord_t *o, uint16_t opcode)
{
    rb_worker_t *w = ctx;
    rb_conn_t *c = &w->conns[o->conn < w->n_conns ? o->conn : 0];
    for (unsigned i = 0; c->dead && i < w->n_conns; i++)
        c = &w->conns[i];
    int q = opcode == ALLOT_OP_CONFIRM ? FQ_CONFIRM
            : opcode == ALLOT_OP_CANCEL ? FQ_CANCEL
                                        : FQ_FULFILL;
    rb_queue(w, c, q, o->order, o->tmpl, o->state);
}

void rb_wl_done(rb_worker_t *w, rb_conn_t *c, const run_frame_t *f)
{
    rb_wait_t *wt = w->run->wait;
    uint16_t ci = (uint16_t)(c - w->conns);
    for (uint16_t i = 0; i < f->n; i++) {
        const run_elem_t *e = &f->elems[i];
        uint64_t wait = 0;
        int rc = f->opcode == ALLOT_OP_PLACE
                     ? wt_on_place(&wt->book, e, ci, f->sent_ns, w->now_ns, rw_act, w, &wait)
                     : wt_on_answer(&wt->book, f->opcode, e, rw_act, w);
        if (rc < 0)
            w->err = rc;
        if (wait)
            hist_record(&w->st->wait, wait);
    }
    wt->activity++;
}

void rb_wl_issued(rb_worker_t *w) { w->run->wait->book.issued = w->seq; }

unsigned rb_wl_fds(rb_worker_t *w, struct pollfd *p)
{
    rb_wait_t *wt = w->run->wait;
    int ctl = allot_conn_fd(wt->ctl), sub = wt->lost ? -1 : allot_conn_fd(wt->sub);
    p[0] = (struct pollfd){.fd = ctl < 0 ? -1 : ctl,
                           .events = (short)(POLLIN | (allot_conn_wants_write(wt->ctl) ? POLLOUT : 0))};
    p[1] = (struct pollfd){.fd = sub < 0 ? -1 : sub, .events = POLLIN};
    return 2;
}

/* ---- the control connection: restocks and markers -------------------------------- */

static int rw_take_restocks(rb_wait_t *wt, const allot_completion_t *cmp, size_t start)
{
    allot_reader_t r;
    allot_sku_result_t res;
    allot_reader_init(&r, cmp);
    uint64_t qty = wt->book.sc->cfg.restock_qty;
    for (size_t i = start; allot_read_sku(&r, &res) == 1; i++) {
        if (res.result != ALLOT_OK)
            continue; /* not applied: nothing to expect */
        wt->restocked[i] += (int64_t)qty;
        wt->restocks++;
        wt->restock_units += qty;
    }
    return 0;
}

static int rw_ctl_poll(rb_worker_t *w)
{
    rb_wait_t *wt = w->run->wait;
    allot_completion_t cmp[RW_CTL_FRAMES];
    for (;;) {
        int n = allot_poll(wt->ctl, cmp, RW_CTL_FRAMES);
        if (n < 0) {
            fprintf(stderr, "allot-bench run: control connection: %s\n", allot_last_error(wt->ctl));
            return n;
        }
        for (int i = 0; i < n; i++) {
            if (cmp[i].error != 0) {
                fprintf(stderr, "allot-bench run: control connection: %s\n",
                        allot_last_error(wt->ctl));
                return cmp[i].error;
            }
            if (cmp[i].user == NULL)
                continue; /* a marker: its event is what counts */
            wt->restock_frames--;
            rw_take_restocks(wt, &cmp[i], (size_t)((uintptr_t)cmp[i].user - 1u));
        }
        if ((unsigned)n < RW_CTL_FRAMES)
            return 0;
    }
}

/* Every hot SKU gets restock_qty units, in as few frames as the server
 * takes; a period whose previous frames are not back yet is skipped. */
static int rw_restock(rb_worker_t *w)
{
    rb_wait_t *wt = w->run->wait;
    const sc_config_t *c = &w->run->sc.cfg;
    if (wt->restock_frames > 0) {
        wt->restocks_skipped++;
        return 0;
    }
    for (uint64_t start = 0; start < c->hot;) {
        int rc = allot_batch_reset(wt->rb, ALLOT_OP_RESTOCK);
        uint64_t i = start;
        for (; i < c->hot && rc == 0; i++) {
            rc = allot_batch_add_restock(wt->rb, w->run->sc.sku_ids[i], c->restock_qty);
            if (rc == 0)
                wt->rs_sent_ns[i] = w->now_ns;
        }
        if (rc == -ENOSPC)
            i--; /* that one goes in the next frame */
        else if (rc < 0)
            return rc;
        rc = allot_submit(wt->ctl, wt->rb, (void *)(uintptr_t)(start + 1u), NULL);
        if (rc == -EAGAIN) {
            wt->restocks_skipped++;
            return 0;
        }
        if (rc < 0)
            return rc;
        wt->restock_frames++;
        start = i;
    }
    return allot_flush(wt->ctl);
}

static int rw_fence(rb_wait_t *wt)
{
    int rc = allot_batch_reset(wt->rb, ALLOT_OP_RESTOCK);
    if (rc == 0)
        rc = allot_batch_add_restock(wt->rb, sc_marker_sku_id(), 1);
    if (rc == 0)
        rc = allot_submit(wt->ctl, wt->rb, NULL, NULL);
    if (rc == -EAGAIN)
        return 0;
    if (rc < 0)
        return rc;
    wt->fences_sent++;
    wt->fence_pending = true;
    wt->fence_activity = wt->activity;
    return allot_flush(wt->ctl);
}

/* ---- events ------------------------------------------------------------------------- */

static void rw_lost(rb_wait_t *wt, const char *why)
{
    if (wt->lost)
        return;
    wt->lost = true;
    snprintf(wt->lost_why, sizeof wt->lost_why, "the event stream broke: %.200s", why);
    fprintf(stderr, "allot-bench run: %s\n", wt->lost_why);
}

/* A restock's latency: from its frame's send to the first fill of the SKU
 * journaled after it (a frame's restocks come first, then their fills). */
static void rw_restock_event(rb_worker_t *w, const allot_event_t *ev)
{
    rb_wait_t *wt = w->run->wait;
    uint32_t i = rw_hot(wt, ev->sku);
    if (ev->type == ALLOT_EVENT_RESTOCKED && i != UINT32_MAX) {
        wt->rs_seq[i] = ev->seq;
        wt->rs_ns[i] = wt->rs_sent_ns[i];
    } else if (ev->type == ALLOT_EVENT_BACKORDER_FILLED && i != UINT32_MAX && wt->rs_seq[i]) {
        if (ev->seq > wt->rs_seq[i] && wt->rs_ns[i] && w->now_ns > wt->rs_ns[i])
            hist_record(&w->st->refill, w->now_ns - wt->rs_ns[i]);
        wt->rs_seq[i] = 0;
    }
}

static void rw_event(rb_worker_t *w, const allot_event_t *ev)
{
    rb_wait_t *wt = w->run->wait;
    wt->events++;
    if (ev->type == ALLOT_EVENT_LOST) {
        char why[160];
        snprintf(why, sizeof why, "the server dropped events from seq %" PRIu64
                                  " on: the subscriber fell behind", ev->seq);
        rw_lost(wt, why);
        return;
    }
    if (ev->type == ALLOT_EVENT_RESTOCKED && ev->sku == sc_marker_sku_id()) {
        wt->fences_seen++;
        return;
    }
    rw_restock_event(w, ev);
    if (ev->type == ALLOT_EVENT_RESTOCKED)
        return;
    wt->activity++;
    uint64_t wait = 0;
    if (wt_on_event(&wt->book, ev, w->now_ns, rw_act, w, &wait) < 0)
        w->err = -ENOMEM;
    if (wait)
        hist_record(&w->st->wait, wait);
}

static void rw_events(rb_worker_t *w)
{
    rb_wait_t *wt = w->run->wait;
    allot_event_t ev[RW_EVENTS];
    int n;
    /* Until the socket is dry: a burst (a crowd whose waits run out
     * together) must not stay in the kernel while the server's backlog
     * for us fills. */
    do {
        n = allot_events_poll(wt->sub, ev, RW_EVENTS);
        if (n == -EPIPE || n == -ENOTCONN) {
            rw_lost(wt, allot_last_error(wt->sub));
            return;
        }
        for (int i = 0; i < n; i++)
            rw_event(w, &ev[i]);
    } while (n > 0 && !wt->lost);
}

int rb_wl_pump(rb_worker_t *w, const struct pollfd *p)
{
    rb_wait_t *wt = w->run->wait;
    const sc_config_t *c = &w->run->sc.cfg;
    int rc = 0;
    if (p[0].revents)
        rc = rw_ctl_poll(w);
    if (!wt->lost && (p[1].revents || allot_events_pending(wt->sub) > 0))
        rw_events(w);
    if (rc == 0 && w->placing && c->restock_every_ms > 0) {
        uint64_t period = (uint64_t)c->restock_every_ms * 1000000u;
        if (w->next_restock_ns == 0)
            w->next_restock_ns = w->run->t0_ns + period;
        if (w->now_ns >= w->next_restock_ns) {
            rc = rw_restock(w);
            w->next_restock_ns += period;
            if (w->next_restock_ns <= w->now_ns)
                w->next_restock_ns = w->now_ns + period;
        }
    }
    return rc;
}

bool rb_wl_quiet(rb_worker_t *w)
{
    rb_wait_t *wt = w->run->wait;
    if (!wt->closed) {
        wt->closed = true;
        wt_close(&wt->book, rw_act, w);
        wt->last_deadline_ms = wt_last_deadline(&wt->book);
        return false;
    }
    if (wt->lost)
        return true; /* nothing can be known: the check fails */
    if (wt->restock_frames > 0 || bench_wall_ms() < wt->last_deadline_ms + RB_QUIET_MARGIN_MS)
        return false;
    if (wt->fence_pending) {
        if (wt->fences_seen < wt->fences_sent)
            return false;
        wt->fence_pending = false;
        if (wt->activity == wt->fence_activity)
            return true;
    }
    int rc = rw_fence(wt);
    if (rc < 0)
        w->err = rc;
    return false;
}

/* ---- before the run -------------------------------------------------------------------- */

static int rw_alloc(rb_wait_t *wt, const scenario_t *sc)
{
    size_t hot = sc->cfg.hot ? sc->cfg.hot : 1;
    wt->hot_cap = 16;
    while (wt->hot_cap < hot * 2u)
        wt->hot_cap <<= 1;
    wt->restocked = calloc(sc->n_skus ? sc->n_skus : 1, sizeof *wt->restocked);
    wt->rs_sent_ns = calloc(hot, sizeof *wt->rs_sent_ns);
    wt->rs_seq = calloc(hot, sizeof *wt->rs_seq);
    wt->rs_ns = calloc(hot, sizeof *wt->rs_ns);
    wt->hot_keys = calloc(wt->hot_cap, sizeof *wt->hot_keys);
    wt->hot_vals = calloc(wt->hot_cap, sizeof *wt->hot_vals);
    if (!wt->restocked || !wt->rs_sent_ns || !wt->rs_seq || !wt->rs_ns || !wt->hot_keys ||
        !wt->hot_vals)
        return -ENOMEM;
    for (uint32_t i = 0; i < sc->cfg.hot; i++) {
        size_t k = rw_slot(wt, sc->sku_ids[i]);
        wt->hot_keys[k] = sc->sku_ids[i];
        wt->hot_vals[k] = i;
    }
    return wt_book_init(&wt->book, sc, 0, sc->cfg.hold_ms);
}

static int rw_connect(const rb_run_t *run, allot_conn_t **out, uint32_t buffer_bytes)
{
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.host = run->target->host;
    cfg.port = run->target->port;
    cfg.timeout_ms = RW_TIMEOUT_MS;
    cfg.inflight_max = RW_CTL_FRAMES * 2u;
    cfg.buffer_bytes = buffer_bytes;
    allot_conn_t *c = NULL;
    int rc = allot_conn_new(&c, &cfg);
    if (rc == 0)
        rc = allot_conn_open(c);
    if (rc < 0 && c)
        fprintf(stderr, "allot-bench run: %s: %s\n", run->target->url, allot_last_error(c));
    if (rc < 0) {
        allot_conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Subscribed to what moves orders, and to restocks (the marker's too). */
static int rw_subscribe(rb_wait_t *wt)
{
    allot_subscription_t sub;
    uint32_t types = ALLOT_EVENT_BIT(ALLOT_EVENT_BACKORDER_FILLED) |
                     ALLOT_EVENT_BIT(ALLOT_EVENT_HOLD_EXPIRED) |
                     ALLOT_EVENT_BIT(ALLOT_EVENT_RESTOCKED);
    int rc = allot_subscribe(wt->sub, 0, 0, types, &sub);
    if (rc < 0) {
        fprintf(stderr, "allot-bench run: SUBSCRIBE: %s (the waitlist needs the server's "
                        "events)\n", allot_last_error(wt->sub));
        return rc;
    }
    if (sub.result != ALLOT_OK) {
        fprintf(stderr, "allot-bench run: SUBSCRIBE answered %s\n", allot_result_name(sub.result));
        return -EIO;
    }
    return 0;
}

int rb_wait_open(rb_run_t *run)
{
    rb_wait_t *wt = calloc(1, sizeof *wt);
    if (!wt)
        return -ENOMEM;
    run->wait = wt;
    int rc = rw_alloc(wt, &run->sc);
    wt->book.order_base = run->o->order_base;
    if (rc == 0)
        rc = rw_connect(run, &wt->ctl, 0);
    if (rc == 0)
        rc = rw_connect(run, &wt->sub, RW_SUB_BUFFER);
    if (rc == 0)
        rc = allot_batch_new(&wt->rb, ALLOT_OP_RESTOCK, wt->ctl);
    allot_sku_result_t res;
    if (rc == 0)
        rc = allot_sku_set(wt->ctl, sc_marker_sku_id(), 0, 0, 0, &res);
    if (rc == 0 && res.result != ALLOT_OK) {
        fprintf(stderr, "allot-bench run: SKU_SET of the marker SKU: %s\n",
                allot_result_name(res.result));
        rc = -EIO;
    }
    if (rc == 0)
        rc = rw_subscribe(wt);
    return rc;
}

void rb_wait_close(rb_run_t *run)
{
    rb_wait_t *wt = run->wait;
    if (!wt)
        return;
    allot_batch_free(wt->rb);
    allot_conn_close(wt->ctl);
    allot_conn_close(wt->sub);
    wt_book_free(&wt->book);
    free(wt->restocked);
    free(wt->rs_sent_ns);
    free(wt->rs_seq);
    free(wt->rs_ns);
    free(wt->hot_keys);
    free(wt->hot_vals);
    free(wt);
    run->wait = NULL;
}

/* ---- after the run ---------------------------------------------------------------------- */

/* Sends ids[] as frames of opcode (up to per elements), RW_CTL_FRAMES in
 * flight, and hands each answered frame to take with the index of its
 * first element. */
typedef int (*rw_take_fn)(void *ctx, const allot_completion_t *cmp, size_t start);

static int rw_stream(allot_conn_t *c, allot_batch_t *b, uint16_t opcode, const uint64_t *ids,
                     size_t n, uint32_t per, rw_take_fn take, void *ctx)
{
    size_t next = 0;
    while (next < n || allot_inflight(c) > 0) {
        while (next < n && allot_inflight(c) < RW_CTL_FRAMES) {
            int rc = allot_batch_reset(b, opcode);
            size_t i = next;
            for (; i < n && i - next < per && rc == 0; i++)
                rc = opcode == ALLOT_OP_ORDER_GET ? allot_batch_add_order_get(b, ids[i])
                                                  : allot_batch_add_cancel(b, ids[i]);
            if (rc == -ENOSPC)
                i--;
            else if (rc < 0)
                return rc;
            rc = allot_submit(c, b, (void *)(uintptr_t)(next + 1u), NULL);
            if (rc == -EAGAIN)
                break;
            if (rc < 0)
                return rc;
            next = i;
        }
        allot_completion_t cmp[RW_CTL_FRAMES];
        int k = allot_wait(c, cmp, RW_CTL_FRAMES, 1000);
        if (k < 0)
            return k;
        for (int j = 0; j < k; j++) {
            int rc = cmp[j].error ? cmp[j].error
                                  : take(ctx, &cmp[j], (size_t)((uintptr_t)cmp[j].user - 1u));
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

typedef struct rw_verify_ctx {
    rb_wait_t *wt;
    const uint64_t *ids;
    wt_queue_t q;
    uint64_t n;
} rw_verify_ctx_t;

static int rw_take_orders(void *arg, const allot_completion_t *cmp, size_t start)
{
    rw_verify_ctx_t *v = arg;
    static allot_order_info_t info; /* 5 KiB */
    allot_reader_t r;
    allot_reader_init(&r, cmp);
    for (size_t i = start; allot_read_order_info(&r, &info) == 1; i++) {
        const wt_ord_t *o = wt_find(&v->wt->book, v->ids[i]);
        int rc = o ? wt_verify(&v->wt->book, o, &info, &v->q) : 0;
        if (rc < 0)
            return rc;
        v->n++;
    }
    return 0;
}

/* Ids of the book's orders; with live_only, those still waiting or held,
 * youngest first. */
static uint64_t *rw_ids(const wt_book_t *b, bool live_only, size_t *n)
{
    uint64_t *ids = malloc((b->len ? b->len : 1) * sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; ids && i < b->cap; i++) {
        const wt_ord_t *o = &b->v[i];
        bool pick = o->order != 0 && (!live_only || o->state == ALLOT_STATE_BACKORDERED ||
                                      o->state == ALLOT_STATE_HELD);
        if (pick)
            ids[k++] = o->order;
    }
    *n = k;
    return ids;
}

int rb_wait_verify(rb_run_t *run, rb_result_t *r)
{
    rb_wait_t *wt = run->wait;
    size_t n;
    uint64_t *ids = rw_ids(&wt->book, false, &n);
    allot_batch_t *b = NULL;
    int rc = ids ? allot_batch_new(&b, ALLOT_OP_ORDER_GET, wt->ctl) : -ENOMEM;
    rw_verify_ctx_t v = {.wt = wt, .ids = ids};
    if (rc == 0)
        rc = rw_stream(wt->ctl, b, ALLOT_OP_ORDER_GET, ids, n, ALLOT_ORDER_GET_BATCH_MAX,
                       rw_take_orders, &v);
    if (rc == 0) {
        wt_queue_check(&wt->book, &v.q);
        rc = wt_fifo_check(&wt->book);
    }
    r->orders_verified = v.n;
    wt_queue_free(&v.q);
    allot_batch_free(b);
    free(ids);
    return rc;
}

static int rw_take_cancels(void *arg, const allot_completion_t *cmp, size_t start)
{
    rb_result_t *r = arg;
    allot_reader_t rd;
    allot_order_result_t res;
    allot_reader_init(&rd, cmp);
    while (allot_read_order(&rd, &res) == 1)
        r->cleanup_cancels += res.result == ALLOT_OK;
    return 0;
}

static int rw_younger(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return a < b ? 1 : a > b ? -1 : 0;
}

/* Youngest first: each cancelled wait held nothing or gives its units to
 * an older one, itself cancelled next, so no fill and no new hold comes of
 * it. Order ids grow with placement on one client thread. */
int rb_wait_cleanup(rb_run_t *run, rb_result_t *r)
{
    rb_wait_t *wt = run->wait;
    size_t n;
    uint64_t *ids = rw_ids(&wt->book, true, &n);
    if (!ids)
        return -ENOMEM;
    qsort(ids, n, sizeof *ids, rw_younger);
    allot_batch_t *b = NULL;
    int rc = allot_batch_new(&b, ALLOT_OP_CANCEL, wt->ctl);
    if (rc == 0)
        rc = rw_stream(wt->ctl, b, ALLOT_OP_CANCEL, ids, n, ALLOT_BATCH_MAX, rw_take_cancels, r);
    allot_batch_free(b);
    free(ids);
    return rc;
}
