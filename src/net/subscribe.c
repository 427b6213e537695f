/*
 * SUBSCRIBE, and the EVENT frames of subscribed connections.
 *
 * A subscription is a position in the event hub (events.h) plus filters.
 * Events stay in the hub until a subscriber's connection has room for
 * them: they are encoded only while its unsent bytes are under
 * SUB_OUT_HIGH, so a quiet subscriber costs nothing and a slow one costs
 * its position, never a copy of the backlog. An event goes out only once
 * its record is durable (the same release rule as answers) and settled
 * (every event of its record is in the hub), so a subscriber never sees an
 * event a crash could undo, and one that has caught up has every event of
 * the records it saw.
 *
 * Wake-ups: the loop kicks every subscriber of the thread when the hub's
 * head moves, or when the journal reaches the sequence number a subscriber
 * waits for (subs_poll); a subscriber held back by its own output is
 * kicked by its send completions.
 *
 * A subscriber that falls more than SUBSCRIBER_BACKLOG_MAX deliverable
 * events further behind the head than it ever was while its output is
 * full, whose place in the ring was overwritten, or whose unsent bytes
 * pass CONN_OUT_PAUSE_BYTES is cut off. ("Further than it ever was": one
 * that resumes far back in the ring and reads is catching up, not falling
 * behind; its allowance shrinks as it catches up.) A cut-off subscriber
 * takes no more requests, gets the answers it is owed, one EVENT frame
 * with a LOST event naming the first sequence number it did not get, and
 * is closed (after NET_LINGER_MS at most, if it does not read).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/verify.h"
#include "net/internal.h"

static size_t conn_unsent(const net_conn_t *c)
{
    return buf_pending(&c->tx) + c->out.len;
}

/* The highest sequence number whose events may go out: durable and
 * settled. */
static uint64_t sub_limit(const net_thread_t *t)
{
    uint64_t durable = t->durable_failed ? t->durable_seen : net_durable(t);
    uint64_t settled = events_settled(t->net->cfg.events);
    return durable < settled ? durable : settled;
}

/* ---- SUBSCRIBE ---------------------------------------------------------------- */

static void subs_add(net_thread_t *t, net_conn_t *c)
{
    c->sub->index = t->subs_n;
    t->subs[t->subs_n++] = c->slot;
}

void sub_free(net_thread_t *t, net_conn_t *c)
{
    net_sub_t *s = c->sub;
    if (!s)
        return;
    VERIFY(s->index < t->subs_n && t->subs[s->index] == c->slot);
    uint32_t last = t->subs[--t->subs_n];
    t->subs[s->index] = last;
    if (last != c->slot)
        t->conns[last].sub->index = s->index;
    if (s->lost)
        t->cutoffs--;
    free(s);
    c->sub = NULL;
}

/* The subscription asked for, or the result that refuses it. */
static uint8_t sub_start(net_thread_t *t, net_conn_t *c, const proto_subscribe_t *req,
                         uint64_t request_id, events_start_t *st)
{
    events_t *hub = t->net->cfg.events;
    if (req->bad_reserved)
        return ALLOT_INVALID_ARGUMENT;
    if (c->sub || !hub)
        return ALLOT_INVALID_STATE; /* one subscription per connection */
    events_subscribe(hub, req->from_seq, st);
    if (st->result != ALLOT_OK)
        return st->result;
    net_sub_t *s = calloc(1, sizeof *s);
    if (!s)
        return ALLOT_BUSY;
    *s = (net_sub_t){.request_id = request_id, .pos = st->pos, .start_seq = st->start_seq,
                     .filter = *req, .resume_seq = st->start_seq, .behind_min = UINT64_MAX};
    c->sub = s;
    subs_add(t, c);
    return ALLOT_OK;
}

int conn_subscribe(net_thread_t *t, net_conn_t *c, const proto_frame_t *f)
{
    proto_subscribe_t req;
    proto_error_t err;
    if (proto_decode_subscribe(f, &req, &err) != 0) {
        ctr_add(&t->counters.frames_in, 1);
        conn_reject(t, c, f->request_id, &err);
        return 0;
    }
    /* The answer is written here, not by the executor: it waits until the
     * answers to the frames before it are queued, so that it follows them,
     * and so that "from now on" means after them. */
    if (c->frames_inflight > 0)
        return -EAGAIN;
    ctr_add(&t->counters.frames_in, 1);
    uint8_t *p = conn_out_reserve(t, c, PROTO_SUBSCRIBE_RESPONSE_SIZE);
    if (!p)
        return 0;
    events_start_t st = {0};
    uint8_t result = sub_start(t, c, &req, f->request_id, &st);
    events_t *hub = t->net->cfg.events;
    uint64_t oldest = result == ALLOT_OK || result == ALLOT_TOO_OLD ? st.oldest_seq
                      : hub                                          ? events_oldest_seq(hub)
                                                                     : 0;
    size_t w = proto_encode_subscribe_response(p, PROTO_SUBSCRIBE_RESPONSE_SIZE, f->request_id,
                                               result == ALLOT_OK ? st.start_seq : 0, oldest,
                                               result);
    VERIFY(w == PROTO_SUBSCRIBE_RESPONSE_SIZE);
    ctr_add(&t->counters.ops[ALLOT_OP_SUBSCRIBE][result], 1);
    conn_out_commit(t, c, w, 0, false);
    if (log_get_level() >= LOG_DEBUG) {
        char name[96];
        conn_name(t, c, name, sizeof name);
        log_debug("%s: SUBSCRIBE from seq %" PRIu64 " (sku %" PRIu64 ", types 0x%x): %s, "
                  "start seq %" PRIu64 ", oldest %" PRIu64,
                  name, req.from_seq, req.sku, req.types, allot_result_name(result),
                  st.start_seq, oldest);
    }
    return 0;
}

/* ---- cutting off ------------------------------------------------------------- */

/* The first sequence number the subscriber has not got: that of the event
 * at its position, or when that one is not in memory, resume_seq. */
static uint64_t sub_first_missing(const net_thread_t *t, const net_sub_t *s)
{
    eng_event_t ev;
    uint64_t seq = s->resume_seq;
    if (events_read(t->net->cfg.events, s->pos, &ev) == 0)
        seq = ev.seq;
    return seq > s->start_seq ? seq : s->start_seq;
}

static void sub_cut(net_thread_t *t, net_conn_t *c, uint64_t behind, const char *why)
{
    net_sub_t *s = c->sub;
    s->lost = true;
    s->lost_seq = sub_first_missing(t, s);
    char name[96];
    conn_name(t, c, name, sizeof name);
    log_warn("%s: slow subscriber: %s; %" PRIu64 " events behind the newest, %zu bytes "
             "unsent, %" PRIu64 " events sent: sending LOST from seq %" PRIu64 " and closing",
             name, why, behind, conn_unsent(c), s->sent, s->lost_seq);
    /* no more requests: answers owed go out, then LOST, then FIN */
    c->state = CONN_REJECTED;
    c->linger_deadline_ms = t->now_ms + NET_LINGER_MS;
    t->cutoffs++;
    conn_kick(t, c);
}

bool sub_owes(const net_conn_t *c)
{
    return c->sub && c->sub->lost && !c->sub->lost_sent;
}

void sub_emit_lost(net_thread_t *t, net_conn_t *c)
{
    if (!sub_owes(c) || c->frames_inflight > 0)
        return;
    size_t size = proto_event_frame_size(1);
    uint8_t *p = conn_out_reserve(t, c, size);
    if (!p)
        return;
    size_t w = proto_encode_event_lost(p, size, c->sub->request_id, c->sub->lost_seq,
                                       net_real_ms());
    VERIFY(w == size);
    c->sub->lost_sent = true;
    conn_out_commit(t, c, w, 0, false);
}

/* ---- events out ---------------------------------------------------------------- */

static void sub_send(net_thread_t *t, net_conn_t *c, const eng_event_t *evs, size_t n)
{
    if (n == 0)
        return;
    size_t size = proto_event_frame_size(n);
    uint8_t *p = conn_out_reserve(t, c, size);
    if (!p)
        return; /* the connection was aborted */
    size_t w = proto_encode_events(p, size, c->sub->request_id, evs, n);
    VERIFY(w == size);
    c->sub->sent += n;
    conn_out_commit(t, c, w, 0, false);
}

/* Held back by its own output: whether it fell too far behind. The cheap
 * distance to the head counts events not yet durable too; only when that
 * is over the allowance are the deliverable ones counted. */
static void sub_check_backlog(net_thread_t *t, net_conn_t *c, uint64_t limit, uint64_t behind)
{
    const net_sub_t *s = c->sub;
    uint64_t allowed = s->behind_min + SUBSCRIBER_BACKLOG_MAX;
    if (behind <= allowed)
        return;
    uint64_t deliverable = events_limit(t->net->cfg.events, s->pos, limit) - s->pos;
    if (deliverable > allowed) {
        char why[128];
        snprintf(why, sizeof why,
                 "it does not read, and fell more than %u events further behind than its "
                 "best (%" PRIu64 ")",
                 SUBSCRIBER_BACKLOG_MAX, s->behind_min);
        sub_cut(t, c, deliverable, why);
    }
}

/* Why a pump stopped. */
enum pump_stop { PUMP_CAUGHT_UP, PUMP_WAIT_SEQ, PUMP_OUTPUT, PUMP_YIELD, PUMP_LOST };

/* One step: the event at the subscriber's position, or why it stops
 * there. Only a matching event needs room in the output. */
static enum pump_stop sub_step(net_thread_t *t, net_conn_t *c, uint64_t limit,
                               eng_event_t *ev, size_t n)
{
    net_sub_t *s = c->sub;
    int rc = events_read(t->net->cfg.events, s->pos, ev);
    if (rc == -ESTALE)
        return PUMP_LOST;
    if (rc != 0) {
        /* Every event passed had a settled seq, so all the events of its
         * record were below the head: the next one has a later seq. */
        if (s->passed_seq >= s->resume_seq)
            s->resume_seq = s->passed_seq + 1;
        return PUMP_CAUGHT_UP;
    }
    s->resume_seq = ev->seq;
    if (ev->seq > limit) {
        /* not durable yet: the journal's progress wakes us */
        if (t->ev_wait_seq == 0 || ev->seq < t->ev_wait_seq)
            t->ev_wait_seq = ev->seq;
        return PUMP_WAIT_SEQ;
    }
    if (ev->seq >= s->start_seq && proto_subscribe_matches(&s->filter, ev) &&
        conn_unsent(c) + proto_event_frame_size(n + 1) > SUB_OUT_HIGH)
        return PUMP_OUTPUT;
    return PUMP_YIELD; /* taken: the caller decides */
}

static enum pump_stop sub_fill(net_thread_t *t, net_conn_t *c, uint64_t limit)
{
    net_sub_t *s = c->sub;
    eng_event_t evs[ALLOT_EVENT_BATCH_MAX];
    size_t n = 0;
    enum pump_stop why = PUMP_YIELD;
    for (uint32_t scanned = 0; scanned < SUB_SCAN_MAX; scanned++) {
        eng_event_t ev;
        why = sub_step(t, c, limit, &ev, n);
        if (why != PUMP_YIELD)
            break;
        s->pos++;
        s->passed_seq = ev.seq;
        if (ev.seq < s->start_seq || !proto_subscribe_matches(&s->filter, &ev))
            continue;
        evs[n++] = ev;
        if (n == ALLOT_EVENT_BATCH_MAX) {
            sub_send(t, c, evs, n);
            n = 0;
        }
    }
    sub_send(t, c, evs, n);
    return why;
}

void sub_pump(net_thread_t *t, net_conn_t *c)
{
    if (!c->sub || c->sub->lost || c->state != CONN_OPEN)
        return;
    if (conn_unsent(c) >= CONN_OUT_PAUSE_BYTES) {
        char why[96];
        snprintf(why, sizeof why, "its unsent output passed %u bytes", CONN_OUT_PAUSE_BYTES);
        sub_cut(t, c, events_head(t->net->cfg.events) - c->sub->pos, why);
        return;
    }
    uint64_t limit = sub_limit(t);
    enum pump_stop why = sub_fill(t, c, limit);
    net_sub_t *s = c->sub;
    uint64_t behind = events_head(t->net->cfg.events) - s->pos;
    if (behind < s->behind_min)
        s->behind_min = behind;
    switch (why) {
    case PUMP_OUTPUT:
        sub_check_backlog(t, c, limit, behind);
        break;
    case PUMP_YIELD:
        conn_kick(t, c); /* more to look at: after the other connections */
        break;
    case PUMP_LOST:
        sub_cut(t, c, events_head(t->net->cfg.events) - c->sub->pos,
                "its place in the event ring was overwritten");
        break;
    default:
        break;
    }
}

void subs_poll(net_thread_t *t, uint64_t durable)
{
    const events_t *hub = t->net->cfg.events;
    if (!hub || t->subs_n == 0)
        return;
    uint64_t head = events_head(hub);
    uint64_t settled = events_settled(hub);
    uint64_t limit = durable < settled ? durable : settled;
    if (head == t->ev_head_seen && (t->ev_wait_seq == 0 || limit < t->ev_wait_seq))
        return;
    t->ev_head_seen = head;
    t->ev_wait_seq = 0;
    for (uint32_t i = 0; i < t->subs_n; i++)
        conn_kick(t, &t->conns[t->subs[i]]);
}
