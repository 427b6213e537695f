/*
 * The load loop of allot-bench run: workers, each driving its connections
 * from one poll(2) loop; the tallies built from answers; the statistics of
 * the measured window. See bench_run.c for the shape of a run.
 */
#include "bench.h"
#include "run_worker.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <allot/client.h>

/* ---- follow-up queues -------------------------------------------------------------- */

/* Room for one more item. Only queues fed by events outgrow their sizing
 * (see rb_conn_init): those double, as the alternative is corrupt tallies. */
static void fq_push(fq_t *q, const fq_item_t *it)
{
    if (q->len == q->cap) {
        size_t cap = q->cap * 2u;
        fq_item_t *v = malloc(cap * sizeof *v);
        if (!v) {
            fprintf(stderr, "allot-bench run: out of memory for follow-ups\n");
            abort();
        }
        for (size_t i = 0; i < q->len; i++)
            v[i] = q->v[(q->head + i) % q->cap];
        free(q->v);
        q->v = v;
        q->cap = cap;
        q->head = 0;
    }
    q->v[(q->head + q->len) % q->cap] = *it;
    q->len++;
}

static const fq_item_t *fq_front(const fq_t *q) { return &q->v[q->head]; }

static void fq_pop(fq_t *q)
{
    q->head = (q->head + 1u) % q->cap;
    q->len--;
}

/* Takes back the n items just popped: nothing was pushed since, so they
 * are still in their slots. */
static void fq_unpop(fq_t *q, size_t n)
{
    q->head = (q->head + q->cap - n % q->cap) % q->cap;
    q->len += n;
}

static const uint16_t fq_opcode[FQ_COUNT] = {ALLOT_OP_CONFIRM, ALLOT_OP_CANCEL, ALLOT_OP_FULFILL,
                                             ALLOT_OP_ORDER_GET};

/* ---- workers ----------------------------------------------------------------------- */

static int rb_conn_init(rb_conn_t *c, const rb_opts_t *o)
{
    size_t per_frame = o->batch;
    c->frames = calloc(o->pipeline, sizeof *c->frames);
    c->elems = calloc((size_t)o->pipeline * per_frame, sizeof *c->elems);
    /* Each answered PLACE or CONFIRM queues at most one follow-up; placing
     * stops at fq_soft, so a queue never holds more than fq_soft plus what
     * all the frames in flight can add. */
    c->fq_soft = 4u * (size_t)o->pipeline * per_frame;
    size_t cap = c->fq_soft + (size_t)o->pipeline * per_frame + 1u;
    for (int k = 0; k < FQ_COUNT; k++) {
        c->fq[k].v = malloc(cap * sizeof *c->fq[k].v);
        c->fq[k].cap = cap;
        if (!c->fq[k].v)
            return -ENOMEM;
    }
    if (sc_is_backorder(&o->sc))
        c->fq[FQ_CANCEL].delay_ns = (uint64_t)o->sc.cancel_after_ms * 1000000u;
    if (!c->frames || !c->elems)
        return -ENOMEM;
    for (uint32_t i = 0; i < o->pipeline; i++) {
        run_frame_t *f = &c->frames[i];
        f->cap = (uint16_t)per_frame;
        f->elems = c->elems + (size_t)i * per_frame;
        f->next = c->free;
        c->free = f;
    }
    return 0;
}

static void rb_conn_deinit(rb_conn_t *c, const target_t *t)
{
    if (c->t)
        t->ops->close(c->t);
    free(c->frames);
    free(c->elems);
    for (int k = 0; k < FQ_COUNT; k++)
        free(c->fq[k].v);
}

/* Follow-ups waiting to go out; delayed cancels do not hold placing back. */
static size_t rb_fq_total(const rb_conn_t *c)
{
    size_t n = 0;
    for (int k = 0; k < FQ_COUNT; k++)
        n += c->fq[k].delay_ns ? 0 : c->fq[k].len;
    return n;
}

static size_t rb_fq_all(const rb_conn_t *c)
{
    size_t n = 0;
    for (int k = 0; k < FQ_COUNT; k++)
        n += c->fq[k].len;
    return n;
}

/* ---- tallies from answers ------------------------------------------------------------ */

/* Units of template tmpl move: alloc on every line, hand too when shipped,
 * cust on hot lines, abandoned units apart. */
static void rb_tally(rb_worker_t *w, uint32_t tmpl, int64_t alloc, int64_t hand, int64_t cust,
                     int64_t abandon)
{
    const scenario_t *sc = &w->run->sc;
    const sc_order_t *o = &sc->orders[tmpl];
    const sc_line_t *l = sc->lines + o->line_off;
    for (unsigned i = 0; i < o->line_count; i++) {
        int64_t q = l[i].qty;
        rb_sku_tally_t *t = &w->skus[l[i].sku];
        t->alloc += alloc * q;
        t->hand += hand * q;
        t->abandon += abandon * q;
        if (w->track_cust && l[i].sku < sc->cfg.hot && (cust || abandon)) {
            uint64_t key = tally_key(o->customer, l[i].sku, sc->cfg.hot);
            if (tally_add(&w->cust, key, cust * q, abandon * q) < 0)
                w->err = -ENOMEM;
        }
    }
}

static void rb_abandon(rb_worker_t *w, uint32_t tmpl, uint64_t deadline_ms)
{
    rb_tally(w, tmpl, 0, 0, 0, 1);
    w->abandoned++;
    uint64_t d = deadline_ms ? deadline_ms : bench_wall_ms() + w->run->ctx.hold_ms;
    if (d > w->max_deadline_ms)
        w->max_deadline_ms = d;
}

void rb_queue(rb_worker_t *w, rb_conn_t *c, int q, uint64_t order, uint32_t tmpl, uint8_t state)
{
    fq_item_t it = {.order = order, .enq_ns = w->now_ns, .tmpl = tmpl, .prev_state = state};
    fq_push(&c->fq[q], &it);
}

static void rb_follow(rb_worker_t *w, rb_conn_t *c, int q, const run_elem_t *e, uint8_t state)
{
    rb_queue(w, c, q, e->order, e->tmpl, state);
}

/* Multi-location: the order is read back once its clients are done. */
static void rb_read_back(rb_worker_t *w, rb_conn_t *c, const run_elem_t *e, uint8_t state)
{
    if (w->track_loc)
        rb_follow(w, c, FQ_ORDER_GET, e, state);
}

static void rb_placed(rb_worker_t *w, rb_conn_t *c, const run_elem_t *e)
{
    if (e->result != ALLOT_OK)
        return; /* refused: nothing changed */
    if (e->replay || (e->state != ALLOT_STATE_HELD && e->state != ALLOT_STATE_CONFIRMED)) {
        w->surprises++;
        return;
    }
    rb_tally(w, e->tmpl, 1, 0, 1, 0);
    bool held = e->state == ALLOT_STATE_HELD;
    switch (w->run->sc.orders[e->tmpl].fate) {
    case FATE_CANCEL: rb_follow(w, c, FQ_CANCEL, e, e->state); break;
    case FATE_CONFIRM:
        if (held)
            rb_follow(w, c, FQ_CONFIRM, e, e->state);
        else
            rb_read_back(w, c, e, e->state);
        break;
    case FATE_FULFILL: rb_follow(w, c, held ? FQ_CONFIRM : FQ_FULFILL, e, e->state); break;
    default:
        if (held)
            rb_abandon(w, e->tmpl, e->deadline_ms);
        rb_read_back(w, c, e, e->state);
        break;
    }
}

/* The order of e went from e->prev_state to now. */
static void rb_moved(rb_worker_t *w, rb_conn_t *c, const run_elem_t *e, uint8_t now)
{
    uint8_t prev = e->prev_state;
    bool live = prev == ALLOT_STATE_HELD || prev == ALLOT_STATE_CONFIRMED;
    if (live && (now == ALLOT_STATE_CANCELLED || now == ALLOT_STATE_EXPIRED)) {
        rb_tally(w, e->tmpl, -1, 0, -1, 0);
        if (now == ALLOT_STATE_CANCELLED)
            rb_read_back(w, c, e, now);
    } else if (prev == ALLOT_STATE_CONFIRMED && now == ALLOT_STATE_FULFILLED) {
        rb_tally(w, e->tmpl, -1, -1, 0, 0);
        rb_read_back(w, c, e, now);
    } else if (prev == ALLOT_STATE_HELD && now == ALLOT_STATE_CONFIRMED) {
        if (w->run->sc.orders[e->tmpl].fate == FATE_FULFILL)
            rb_follow(w, c, FQ_FULFILL, e, ALLOT_STATE_CONFIRMED);
        else
            rb_read_back(w, c, e, now);
    } else if (prev == ALLOT_STATE_HELD && now == ALLOT_STATE_HELD) {
        rb_abandon(w, e->tmpl, 0); /* not taken on (BUSY...): it will expire */
    } else if (prev != now) {
        w->surprises++;
        w->unknown_ops++;
    }
}

static void rb_followed(rb_worker_t *w, rb_conn_t *c, uint16_t opcode, const run_elem_t *e)
{
    uint8_t now;
    if (e->result == ALLOT_OK)
        now = opcode == ALLOT_OP_CONFIRM  ? ALLOT_STATE_CONFIRMED
              : opcode == ALLOT_OP_CANCEL ? ALLOT_STATE_CANCELLED
                                          : ALLOT_STATE_FULFILLED;
    else if (e->result == ALLOT_INVALID_STATE)
        now = e->state;
    else
        now = e->prev_state; /* not taken on: nothing changed */
    if (e->replay)
        w->surprises++;
    rb_moved(w, c, e, now);
}

/* ---- statistics ---------------------------------------------------------------------- */

static void rb_count_frame(rb_worker_t *w, const run_frame_t *f, uint64_t done_ns)
{
    rb_run_t *run = w->run;
    bool open = run->o->rate > 0;
    uint64_t answered = 0, ok = 0;
    for (uint16_t i = 0; i < f->n; i++) {
        const run_elem_t *e = &f->elems[i];
        if (f->opcode == ALLOT_OP_PLACE) {
            answered++;
            ok += e->result == ALLOT_OK;
        }
        bool measured = done_ns >= run->measure_ns && done_ns <= run->end_ns;
        if (open) {
            uint64_t lat = done_ns - e->due_ns;
            if (w->tick)
                hist_record(w->tick, lat);
            if (measured)
                hist_record(&w->st->lat, lat);
        }
        if (!measured)
            continue;
        rb_stats_t *st = w->st;
        st->counts[f->opcode][e->result < ALLOT_RESULT_COUNT ? e->result : ALLOT_UNAVAILABLE]++;
        st->ops++;
        if (f->opcode == ALLOT_OP_PLACE) {
            unsigned lines = run->sc.orders[e->tmpl].line_count;
            st->orders++;
            st->lines += lines;
            if (e->result == ALLOT_OK) {
                st->orders_ok++;
                st->lines_ok += lines;
                st->backordered += e->state == ALLOT_STATE_BACKORDERED;
            }
        }
    }
    if (!open) {
        /* Every operation of a frame waited the same: send to answer. */
        uint64_t lat = done_ns - f->sent_ns;
        if (w->tick)
            hist_record_n(w->tick, lat, f->n);
        if (done_ns >= run->measure_ns && done_ns <= run->end_ns)
            hist_record_n(&w->st->lat, lat, f->n);
    }
    if (done_ns >= run->measure_ns && done_ns <= run->end_ns)
        w->st->frames++;
    atomic_fetch_add_explicit(&run->answered, answered, memory_order_relaxed);
    atomic_fetch_add_explicit(&run->answered_ok, ok, memory_order_relaxed);
    atomic_fetch_add_explicit(&run->frames, 1, memory_order_relaxed);
}

/* ORDER_GET answers of a multi-location run: each order's lines checked and
 * where its units sit tallied. */
static void rb_read_answers(rb_worker_t *w, run_frame_t *f)
{
    allot_reader_t r;
    allot_reader_init(&r, f->answer);
    static _Thread_local allot_order_info_t info; /* 5 KiB: off the stack */
    for (uint16_t i = 0; i < f->n; i++) {
        run_elem_t *e = &f->elems[i];
        if (allot_read_order_info(&r, &info) != 1) {
            w->unknown_ops++; /* the library checked the count: cannot happen */
            continue;
        }
        e->result = info.result;
        e->state = info.state;
        loc_take(&w->loc, &w->run->sc, e->tmpl, e->order, e->prev_state, &info);
    }
}

typedef struct rb_done_ctx {
    rb_worker_t *w;
    rb_conn_t *c;
} rb_done_ctx_t;

/* A frame came back: statistics, tallies, follow-ups; the frame is free. */
static void rb_done(void *arg, run_frame_t *f)
{
    rb_done_ctx_t *d = arg;
    rb_worker_t *w = d->w;
    rb_conn_t *c = d->c;
    if (f->err != 0) {
        w->unknown_ops += f->n;
        c->dead = true;
    } else if (f->opcode == ALLOT_OP_ORDER_GET) {
        rb_read_answers(w, f);
        rb_count_frame(w, f, w->now_ns);
    } else if (w->run->wait) {
        rb_count_frame(w, f, w->now_ns);
        rb_wl_done(w, c, f);
    } else {
        rb_count_frame(w, f, w->now_ns);
        for (uint16_t i = 0; i < f->n; i++) {
            if (f->opcode == ALLOT_OP_PLACE)
                rb_placed(w, c, &f->elems[i]);
            else
                rb_followed(w, c, f->opcode, &f->elems[i]);
        }
    }
    c->inflight--;
    f->next = c->free;
    c->free = f;
}

/* ---- sending ------------------------------------------------------------------------- */

/* A follow-up frame goes out full, or when no order is due to take the
 * frame instead, or once its oldest element has waited long enough. */
static uint16_t rb_follow_cap(const run_frame_t *f, int k)
{
    return k == FQ_ORDER_GET && f->cap > ALLOT_ORDER_GET_BATCH_MAX ? ALLOT_ORDER_GET_BATCH_MAX
                                                                   : f->cap;
}

/* A delayed queue's item is due once its delay has passed. */
static bool rb_item_due(const rb_worker_t *w, const fq_t *q, const fq_item_t *it)
{
    return w->now_ns - it->enq_ns >= q->delay_ns;
}

static bool rb_follow_ready(const rb_worker_t *w, const fq_t *q, int k, uint64_t due)
{
    if (q->len == 0)
        return false;
    if (q->delay_ns)
        return rb_item_due(w, q, fq_front(q));
    uint32_t full = k == FQ_ORDER_GET && w->run->o->batch > ALLOT_ORDER_GET_BATCH_MAX
                        ? ALLOT_ORDER_GET_BATCH_MAX
                        : w->run->o->batch;
    return q->len >= full || due == 0 || w->now_ns - fq_front(q)->enq_ns >= RB_FOLLOW_WAIT_NS;
}

static void rb_fill_follow(rb_worker_t *w, run_frame_t *f, int k, fq_t *q)
{
    f->opcode = fq_opcode[k];
    f->n = 0;
    uint16_t cap = rb_follow_cap(f, k);
    while (q->len > 0 && f->n < cap) {
        const fq_item_t *it = fq_front(q);
        if (q->delay_ns && !rb_item_due(w, q, it))
            break;
        run_elem_t *e = &f->elems[f->n++];
        memset(e, 0, sizeof *e);
        e->order = it->order;
        e->tmpl = it->tmpl;
        e->prev_state = it->prev_state;
        e->due_ns = w->now_ns; /* follow-ups are not scheduled: from send */
        fq_pop(q);
    }
}

/* Orders due now: all of a batch in closed loop; in open loop those whose
 * intended time has come. */
static uint64_t rb_places_due(const rb_worker_t *w)
{
    const rb_opts_t *o = w->run->o;
    if (o->rate == 0)
        return o->batch;
    uint64_t elapsed = w->now_ns - w->run->t0_ns;
    uint64_t due = elapsed / w->rate_gap_ns + 1u;
    return due > w->seq ? due - w->seq : 0;
}

static void rb_fill_place(rb_worker_t *w, run_frame_t *f, uint64_t n)
{
    const rb_run_t *run = w->run;
    unsigned threads = run->o->threads;
    f->opcode = ALLOT_OP_PLACE;
    f->n = 0;
    while (f->n < n && f->n < f->cap) {
        run_elem_t *e = &f->elems[f->n++];
        memset(e, 0, sizeof *e);
        e->order = run->o->order_base + w->seq * threads + w->id + 1u;
        e->tmpl = (uint32_t)(w->tmpl++ % run->sc.n_orders);
        e->due_ns = run->t0_ns + w->seq * w->rate_gap_ns;
        w->seq++;
    }
}

/* Takes a free frame, fills it with follow-ups or orders, submits it.
 * Returns 1 when a frame went out, 0 when there was nothing to send, or a
 * negative errno. */
static int rb_send_one(rb_worker_t *w, rb_conn_t *c)
{
    run_frame_t *f = c->free;
    const target_t *t = w->run->target;
    uint64_t due = w->placing && rb_fq_total(c) < c->fq_soft ? rb_places_due(w) : 0;
    uint64_t total = w->run->o->total;
    if (total > 0) {
        uint64_t placed = atomic_load_explicit(&w->run->placed, memory_order_relaxed);
        due = placed < total ? (due < total - placed ? due : total - placed) : 0;
    }
    int k;
    for (k = 0; k < FQ_COUNT; k++)
        if (rb_follow_ready(w, &c->fq[k], k, due))
            break;
    if (k < FQ_COUNT)
        rb_fill_follow(w, f, k, &c->fq[k]);
    else if (due > 0)
        rb_fill_place(w, f, due);
    else
        return 0;
    f->sent_ns = w->now_ns;
    /* Off the free list before the target links it into its own queue. */
    c->free = f->next;
    f->next = NULL;
    int rc = t->ops->submit(c->t, f);
    if (rc == -EAGAIN) {
        /* The target's buffers are full: the frame goes out later, as it
         * is, once answers have been read. */
        f->next = c->free;
        c->free = f;
        if (k < FQ_COUNT) {
            fq_unpop(&c->fq[k], f->n);
        } else {
            w->seq -= f->n;
            w->tmpl -= f->n;
        }
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "allot-bench run: submitting a frame: %s (%s)\n", strerror(-rc),
                t->ops->last_error(c->t));
        w->unknown_ops += f->n;
        c->dead = true;
        f->next = c->free;
        c->free = f;
        return rc;
    }
    if (f->opcode == ALLOT_OP_PLACE) {
        atomic_fetch_add_explicit(&w->run->placed, f->n, memory_order_relaxed);
        if (w->run->wait)
            rb_wl_issued(w);
    }
    c->inflight++;
    c->dirty = true;
    return 1;
}

static void rb_fill(rb_worker_t *w, rb_conn_t *c)
{
    while (!c->dead && c->free && rb_send_one(w, c) > 0) {
    }
    if (c->dirty && !c->dead) {
        int rc = w->run->target->ops->flush(c->t);
        if (rc < 0 && rc != -EAGAIN)
            c->dead = true;
        c->dirty = false;
    }
}

/* ---- the loop -------------------------------------------------------------------------- */

static bool rb_placing(rb_worker_t *w)
{
    rb_run_t *run = w->run;
    if (atomic_load_explicit(&run->stop, memory_order_relaxed))
        return false;
    if (w->now_ns >= run->end_ns)
        return false;
    if (run->o->total > 0 &&
        atomic_load_explicit(&run->placed, memory_order_relaxed) >= run->o->total)
        return false;
    return true;
}

static bool rb_idle(const rb_worker_t *w)
{
    for (unsigned i = 0; i < w->n_conns; i++) {
        const rb_conn_t *c = &w->conns[i];
        if (!c->dead && (c->inflight > 0 || rb_fq_all(c) > 0))
            return false;
    }
    return true;
}

/* How long the loop may sleep: until the next order is due in open loop
 * (to the microsecond: a millisecond of lateness would show as latency),
 * else briefly, as follow-ups come due and the clock is watched. */
static uint64_t rb_wait_ns(const rb_worker_t *w)
{
    const rb_opts_t *o = w->run->o;
    uint64_t cap = (uint64_t)RB_POLL_MS_MAX * 1000000u;
    if (o->rate > 0 && w->placing) {
        uint64_t next = w->run->t0_ns + w->seq * w->rate_gap_ns;
        if (next <= w->now_ns)
            return 0;
        return next - w->now_ns < cap ? next - w->now_ns : cap;
    }
    return 1000000u;
}

static int rb_wait(rb_worker_t *w)
{
    const target_t *t = w->run->target;
    unsigned n = 0;
    for (unsigned i = 0; i < w->n_conns; i++) {
        rb_conn_t *c = &w->conns[i];
        int fd = c->dead ? -1 : t->ops->fd(c->t);
        w->pfds[i].fd = fd;
        w->pfds[i].events = (short)(POLLIN | (fd >= 0 && t->ops->wants_write(c->t) ? POLLOUT : 0));
        w->pfds[i].revents = 0;
        n += fd >= 0;
    }
    unsigned extra = w->run->wait && w->id == 0 ? rb_wl_fds(w, w->pfds + w->n_conns) : 0;
    if (n == 0 && extra == 0)
        return 0;
    uint64_t ns = rb_wait_ns(w);
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    int rc = ppoll(w->pfds, w->n_conns + extra, &ts, NULL);
    if (rc < 0 && errno != EINTR)
        return -errno;
    w->now_ns = bench_now_ns();
    for (unsigned i = 0; i < w->n_conns; i++) {
        rb_conn_t *c = &w->conns[i];
        if (c->dead || w->pfds[i].revents == 0)
            continue;
        rb_done_ctx_t d = {.w = w, .c = c};
        int k = t->ops->poll(c->t, rb_done, &d);
        if (k < 0) {
            fprintf(stderr, "allot-bench run: connection %u: %s\n", i, t->ops->last_error(c->t));
            c->dead = true;
        }
    }
    return extra ? rb_wl_pump(w, w->pfds + w->n_conns) : 0;
}

static void rb_progress(rb_worker_t *w)
{
    rb_run_t *run = w->run;
    if (w->now_ns < w->next_tick_ns)
        return;
    uint64_t a = atomic_load_explicit(&run->answered, memory_order_relaxed);
    uint64_t ok = atomic_load_explicit(&run->answered_ok, memory_order_relaxed);
    uint64_t fr = atomic_load_explicit(&run->frames, memory_order_relaxed);
    double secs = (double)(w->now_ns - run->t0_ns) / 1e9;
    char more[96] = "";
    if (run->wait) {
        /* One client thread: the book is this thread's. */
        const wt_stats_t *b = &run->wait->book.st;
        snprintf(more, sizeof more, "  backordered/s %6" PRIu64 "  fill units/s %6" PRIu64,
                 b->backordered - w->tick_bo, b->fill_units - w->tick_fills);
        w->tick_bo = b->backordered;
        w->tick_fills = b->fill_units;
    }
    if (!run->o->quiet)
        fprintf(stderr, "%6.1f s%s  orders/s %9" PRIu64 "  ok/s %8" PRIu64 "  frames/s %8" PRIu64
                        "  p99 %8.1f us%s\n",
                secs, w->now_ns < run->measure_ns ? " (warm-up)" : "", a - w->tick_answered,
                ok - w->tick_ok, fr - w->tick_frames, (double)hist_percentile(w->tick, 99) / 1e3,
                more);
    w->tick_answered = a;
    w->tick_ok = ok;
    w->tick_frames = fr;
    hist_reset(w->tick);
    w->next_tick_ns += 1000000000u;
}

/* Worker 0 sweeps the target's expired holds when it needs a client to:
 * a round every RB_HOUSEKEEP_NS, advanced on every turn of the loop while
 * it is under way. */
static int rb_housekeep(rb_worker_t *w)
{
    rb_run_t *run = w->run;
    if (w->id != 0 || (!w->housekeeping && w->now_ns < w->next_housekeep_ns))
        return 0;
    int64_t rc = run->target->ops->housekeep(run->ctl);
    w->housekeeping = rc == -EAGAIN;
    if (rc == -EAGAIN)
        return 0;
    w->next_housekeep_ns = w->now_ns + RB_HOUSEKEEP_NS;
    if (rc < 0) {
        fprintf(stderr, "allot-bench run: sweeping expired holds: %s\n",
                run->target->ops->last_error(run->ctl));
        return (int)rc;
    }
    return 0;
}

static int rb_loop(rb_worker_t *w)
{
    rb_run_t *run = w->run;
    w->now_ns = bench_now_ns();
    w->next_tick_ns = run->t0_ns + 1000000000u;
    for (;;) {
        w->now_ns = bench_now_ns();
        w->placing = rb_placing(w);
        for (unsigned i = 0; i < w->n_conns; i++)
            rb_fill(w, &w->conns[i]);
        if (!w->placing && rb_idle(w) && (!run->wait || rb_wl_quiet(w)))
            return 0;
        if (w->now_ns > run->end_ns && w->now_ns - run->end_ns > RB_DRAIN_NS) {
            fprintf(stderr, "allot-bench run: answers still missing %.0f s after the end\n",
                    (double)RB_DRAIN_NS / 1e9);
            return -ETIMEDOUT;
        }
        int rc = rb_wait(w);
        if (rc == 0)
            rc = rb_housekeep(w);
        if (rc < 0)
            return rc;
        if (w->err < 0)
            return w->err;
        if (w->tick)
            rb_progress(w);
        for (unsigned i = 0; i < w->n_conns; i++)
            if (w->conns[i].dead && !atomic_exchange(&run->stop, 1))
                fprintf(stderr, "allot-bench run: a connection broke: stopping\n");
    }
}

static void *rb_worker_main(void *arg)
{
    rb_worker_t *w = arg;
    int gate;
    while ((gate = atomic_load(&w->run->gate)) == 0) {
        struct timespec ts = {.tv_nsec = 100000};
        nanosleep(&ts, NULL); /* an early wake-up only loops once more */
    }
    if (gate > 0)
        w->err = rb_loop(w);
    return NULL;
}

/* ---- set-up of workers ------------------------------------------------------------------ */

static int rb_worker_init(rb_worker_t *w, rb_run_t *run, unsigned id)
{
    const rb_opts_t *o = run->o;
    memset(w, 0, sizeof *w);
    w->id = id;
    w->run = run;
    w->n_conns = o->connections / o->threads + (id < o->connections % o->threads ? 1u : 0u);
    w->conns = calloc(w->n_conns, sizeof *w->conns);
    w->pfds = calloc(w->n_conns + 2u, sizeof *w->pfds);
    size_t n = run->sc.n_skus;
    w->skus = calloc(n, sizeof *w->skus);
    w->st = calloc(1, sizeof *w->st);
    if (!w->conns || !w->pfds || !w->skus || !w->st)
        return -ENOMEM;
    hist_init(&w->st->lat);
    hist_init(&w->st->wait);
    hist_init(&w->st->refill);
    w->track_loc = run->sc.locs != NULL;
    if (w->track_loc && loc_tally_init(&w->loc, n) < 0)
        return -ENOMEM;
    if (id == 0) {
        w->tick = malloc(sizeof *w->tick);
        if (!w->tick)
            return -ENOMEM;
        hist_init(w->tick);
    }
    /* A backorder run's limits follow from its book of orders. */
    w->track_cust = run->sc.cfg.hot > 0 && run->sc.cfg.hot_limit > 0 && !run->wait;
    if (w->track_cust && tally_init(&w->cust, 1u << 16) < 0)
        return -ENOMEM;
    if (o->rate > 0)
        w->rate_gap_ns = (uint64_t)(1e9 * o->threads / (double)o->rate);
    if (o->rate > 0 && w->rate_gap_ns == 0)
        w->rate_gap_ns = 1;
    /* Workers start in different places of the template cycle. */
    w->tmpl = run->sc.n_orders / o->threads * id;
    for (unsigned i = 0; i < w->n_conns; i++) {
        int rc = rb_conn_init(&w->conns[i], o);
        if (rc == 0)
            rc = run->target->ops->connect(run->target, &w->conns[i].t, o->pipeline, o->batch);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void rb_worker_deinit(rb_worker_t *w)
{
    for (unsigned i = 0; w->conns && i < w->n_conns; i++)
        rb_conn_deinit(&w->conns[i], w->run->target);
    free(w->conns);
    free(w->pfds);
    free(w->skus);
    free(w->st);
    free(w->tick);
    tally_free(&w->cust);
    loc_tally_free(&w->loc);
}

/* Worker 0 runs on the calling thread; the others on their own, released
 * together once they all exist, with the clock started. */
static int rb_run_workers(rb_run_t *run, rb_worker_t *ws, unsigned n)
{
    const rb_opts_t *o = run->o;
    unsigned started = 0;
    int rc = 0;
    for (unsigned i = 1; i < n; i++) {
        rc = -pthread_create(&ws[i].tid, NULL, rb_worker_main, &ws[i]);
        if (rc < 0) {
            fprintf(stderr, "allot-bench run: pthread_create: %s\n", strerror(-rc));
            break;
        }
        started++;
    }
    run->t0_ns = bench_now_ns();
    run->measure_ns = run->t0_ns + (uint64_t)(o->warmup_s * 1e9);
    run->end_ns = o->duration_s > 0 ? run->measure_ns + (uint64_t)(o->duration_s * 1e9)
                                    : UINT64_MAX;
    atomic_store(&run->gate, rc == 0 ? 1 : -1);
    if (rc == 0)
        ws[0].err = rb_loop(&ws[0]);
    for (unsigned i = 1; i <= started; i++) {
        int j = pthread_join(ws[i].tid, NULL);
        if (j != 0 && rc == 0)
            rc = -j;
    }
    for (unsigned i = 0; i < n && rc == 0; i++)
        if (ws[i].err < 0)
            rc = ws[i].err;
    return rc;
}

static int rb_merge(rb_run_t *run, rb_worker_t *ws, unsigned n, rb_result_t *r)
{
    size_t skus = run->sc.n_skus;
    r->st = calloc(1, sizeof *r->st);
    r->alloc_expect = calloc(skus, sizeof *r->alloc_expect);
    r->hand_expect = calloc(skus, sizeof *r->hand_expect);
    if (!r->st || !r->alloc_expect || !r->hand_expect || tally_init(&r->cust, 1024) < 0)
        return -ENOMEM;
    hist_init(&r->st->lat);
    hist_init(&r->st->wait);
    hist_init(&r->st->refill);
    r->have_loc = run->sc.locs != NULL;
    if (r->have_loc && loc_tally_init(&r->loc, skus) < 0)
        return -ENOMEM;
    for (unsigned t = 0; t < n; t++) {
        const rb_worker_t *w = &ws[t];
        for (size_t i = 0; i < skus; i++) {
            r->alloc_expect[i] += w->skus[i].alloc - w->skus[i].abandon;
            r->hand_expect[i] += w->skus[i].hand;
        }
        if (w->track_cust && tally_merge(&r->cust, &w->cust) < 0)
            return -ENOMEM;
        hist_merge(&r->st->lat, &w->st->lat);
        hist_merge(&r->st->wait, &w->st->wait);
        hist_merge(&r->st->refill, &w->st->refill);
        r->st->backordered += w->st->backordered;
        if (r->have_loc)
            loc_tally_merge(&r->loc, &w->loc);
        for (unsigned op = 0; op < ALLOT_OP_COUNT; op++)
            for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++)
                r->st->counts[op][res] += w->st->counts[op][res];
        r->st->frames += w->st->frames;
        r->st->orders += w->st->orders;
        r->st->orders_ok += w->st->orders_ok;
        r->st->lines += w->st->lines;
        r->st->lines_ok += w->st->lines_ok;
        r->st->ops += w->st->ops;
        r->unknown_ops += w->unknown_ops;
        r->abandoned += w->abandoned;
        r->surprises += w->surprises;
        if (w->max_deadline_ms > r->max_deadline_ms)
            r->max_deadline_ms = w->max_deadline_ms;
    }
    return 0;
}

int rb_execute(rb_run_t *run, rb_result_t *r)
{
    const rb_opts_t *o = run->o;
    rb_worker_t *ws = calloc(o->threads, sizeof *ws);
    if (!ws)
        return -ENOMEM;
    int rc = 0;
    unsigned inited = 0;
    for (; inited < o->threads && rc == 0; inited++)
        rc = rb_worker_init(&ws[inited], run, inited);
    if (rc == 0) {
        rc = rb_run_workers(run, ws, o->threads);
        /* With --total alone the window closes with the last answer. */
        uint64_t last = bench_now_ns();
        uint64_t end = run->end_ns < last ? run->end_ns : last;
        r->seconds = end > run->measure_ns ? (double)(end - run->measure_ns) / 1e9 : 0.0;
    }
    if (rc == 0)
        rc = rb_merge(run, ws, o->threads, r);
    for (unsigned t = 0; t < inited; t++)
        rb_worker_deinit(&ws[t]);
    free(ws);
    return rc;
}

