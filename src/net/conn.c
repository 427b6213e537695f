/*
 * One connection's life and its answers; its input is in input.c.
 *
 * Output. Answers are encoded into `out` in request order. Each group of
 * answers from one batch carries the batch's journal position and whether
 * it mutated (a gate); net_conn_release() is the one place that lets
 * answers go to the socket, in order, and only those whose gate is open.
 * One send is in flight at a time (`tx`); whatever is released meanwhile
 * waits in `out` and goes in the next send, so pipelined answers are
 * coalesced. The two buffers swap roles after each send.
 *
 * Subscribers (subscribe.c) add EVENT frames to the same queue, after the
 * answers queued before them; events are already durable, so their gates
 * never wait on their own account.
 *
 * Backpressure. A connection whose unsent answers plus the answers its
 * frames in the executor may still add reach CONN_OUT_PAUSE_BYTES is
 * paused: no frame of it is decoded and its recv is cancelled, until its
 * backlog falls under half of that.
 *
 * Close. A connection closes once nothing refers to it any more: no recv
 * or send in flight and no frame in the executor.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/verify.h"
#include "proto/proto.h"
#include "net/internal.h"

#define BUF_MIN_CAP 4096u

/* ---- buffers ------------------------------------------------------------- */

int buf_reserve(net_buf_t *b, size_t total, size_t max)
{
    if (total <= b->cap)
        return 0;
    if (total > max)
        return -EMSGSIZE;
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap < total)
        cap *= 2;
    if (cap > max)
        cap = max;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = (uint32_t)cap;
    return 0;
}

void buf_free(net_buf_t *b)
{
    free(b->p);
    *b = (net_buf_t){0};
}

/* An emptied buffer keeps its memory only if it is small. */
void buf_reset(net_buf_t *b)
{
    b->off = 0;
    b->len = 0;
    if (b->cap > CONN_BUF_KEEP)
        buf_free(b);
}


/* ---- lists of slots ------------------------------------------------------ */

bool slot_list_push(net_slot_list_t *l, uint32_t slot)
{
    if (l->mark[slot])
        return false;
    VERIFY(l->n < l->cap);
    l->mark[slot] = 1;
    l->slots[(l->head + l->n) % l->cap] = slot;
    l->n++;
    return true;
}

bool slot_list_pop(net_slot_list_t *l, uint32_t *slot)
{
    if (l->n == 0)
        return false;
    *slot = l->slots[l->head];
    l->head = (l->head + 1) % l->cap;
    l->n--;
    l->mark[*slot] = 0;
    return true;
}

static int slot_list_init(net_slot_list_t *l, uint32_t cap)
{
    l->slots = calloc(cap, sizeof *l->slots);
    l->mark = calloc(cap, 1);
    l->cap = cap;
    return l->slots && l->mark ? 0 : -ENOMEM;
}

static void slot_list_deinit(net_slot_list_t *l)
{
    free(l->slots);
    free(l->mark);
    *l = (net_slot_list_t){0};
}

/* ---- the table ----------------------------------------------------------- */

int conn_table_init(net_thread_t *t)
{
    uint32_t cap = t->net->cfg.connections_max;
    t->conns_cap = cap;
    /* calloc of this size maps zero pages: untouched slots cost nothing */
    t->conns = calloc(cap, sizeof *t->conns);
    t->free_slots = calloc(cap, sizeof *t->free_slots);
    if (!t->conns || !t->free_slots)
        return -ENOMEM;
    if (slot_list_init(&t->kick, cap) || slot_list_init(&t->starved, cap) ||
        slot_list_init(&t->gated, cap))
        return -ENOMEM;
    t->subs = calloc(cap, sizeof *t->subs);
    return t->subs ? 0 : -ENOMEM;
}

void conn_table_deinit(net_thread_t *t)
{
    for (uint32_t i = 0; t->conns && i < t->conns_hw; i++) {
        net_conn_t *c = &t->conns[i];
        if (c->state == CONN_FREE)
            continue;
        if (close(c->fd) != 0)
            log_debug("close: %s", strerror(errno));
        buf_free(&c->in);
        buf_free(&c->out);
        buf_free(&c->tx);
        free(c->err);
        free(c->sub);
        atomic_fetch_sub(&t->net->conns, 1);
    }
    free(t->conns);
    free(t->subs);
    t->subs = NULL;
    t->subs_n = 0;
    free(t->free_slots);
    slot_list_deinit(&t->kick);
    slot_list_deinit(&t->starved);
    slot_list_deinit(&t->gated);
    t->conns = NULL;
}

net_conn_t *conn_get(net_thread_t *t, uint32_t slot, uint32_t gen)
{
    VERIFY(slot < t->conns_hw);
    net_conn_t *c = &t->conns[slot];
    /* an operation or a batch outliving its connection would be a use
     * after free */
    VERIFY(c->state != CONN_FREE && c->gen == gen);
    return c;
}

net_conn_t *conn_lookup(net_thread_t *t, uint64_t user_data)
{
    return conn_get(t, ud_slot(user_data), ud_gen(user_data));
}

void conn_name(const net_thread_t *t, const net_conn_t *c, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (c->peer.sa.sa_family == AF_INET) {
        if (!inet_ntop(AF_INET, &c->peer.in4.sin_addr, ip, sizeof ip))
            snprintf(ip, sizeof ip, "?");
        port = ntohs(c->peer.in4.sin_port);
    } else if (c->peer.sa.sa_family == AF_INET6) {
        if (!inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, ip, sizeof ip))
            snprintf(ip, sizeof ip, "?");
        port = ntohs(c->peer.in6.sin6_port);
    }
    snprintf(buf, len, "conn %u/%u (%s%s%s:%u)", t->index, c->slot,
             c->peer.sa.sa_family == AF_INET6 ? "[" : "", ip,
             c->peer.sa.sa_family == AF_INET6 ? "]" : "", port);
}

static net_conn_t *conn_alloc(net_thread_t *t)
{
    uint32_t slot;
    if (t->free_n > 0)
        slot = t->free_slots[--t->free_n];
    else if (t->conns_hw < t->conns_cap)
        slot = t->conns_hw++;
    else
        return NULL;
    net_conn_t *c = &t->conns[slot];
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof *c);
    c->slot = slot;
    c->gen = gen;
    c->fd = -1;
    return c;
}

static void conn_close(net_thread_t *t, net_conn_t *c)
{
    char name[96];
    conn_name(t, c, name, sizeof name);
    if (close(c->fd) != 0)
        log_warn("%s: close: %s", name, strerror(errno));
    log_debug("%s: closed", name);
    buf_free(&c->in);
    buf_free(&c->out);
    buf_free(&c->tx);
    free(c->err);
    c->err = NULL;
    sub_free(t, c);
    /* its slot may still sit in a list: whoever pops it finds it free, or
     * serves the connection that reused it, which does no harm */
    if (!c->hello_done)
        t->awaiting_hello--;
    c->state = CONN_FREE;
    t->free_slots[t->free_n++] = c->slot;
    t->live--;
    atomic_fetch_sub(&t->net->conns, 1);
}

/* ---- accept -------------------------------------------------------------- */

static void conn_refuse(net_thread_t *t, int fd, uint32_t open_now)
{
    if (close(fd) != 0)
        log_debug("close: %s", strerror(errno));
    if (t->draining)
        return;
    /* a flood of refusals must not become a flood of log lines */
    if (t->now_ms - t->refused_log_ms < 1000) {
        t->refused_quiet++;
        return;
    }
    log_warn("connection refused and closed: %u open, --connections-max is %u"
             " (%u more refused quietly since the last report)",
             open_now, t->net->cfg.connections_max, t->refused_quiet);
    t->refused_log_ms = t->now_ms;
    t->refused_quiet = 0;
}

static void conn_setup_socket(net_thread_t *t, net_conn_t *c)
{
    int one = 1;
    if (setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
        log_debug("TCP_NODELAY: %s", strerror(errno));
    socklen_t len = sizeof c->peer;
    if (getpeername(c->fd, &c->peer.sa, &len) != 0)
        c->peer.sa.sa_family = AF_UNSPEC; /* already reset: the recv will say */
}

void conn_accepted(net_thread_t *t, int fd)
{
    net_t *n = t->net;
    uint32_t before = atomic_fetch_add(&n->conns, 1);
    if (t->draining || before >= n->cfg.connections_max) {
        atomic_fetch_sub(&n->conns, 1);
        conn_refuse(t, fd, before);
        return;
    }
    net_conn_t *c = conn_alloc(t);
    /* every thread's table holds connections_max, and the count above
     * is global */
    VERIFY(c != NULL);
    c->fd = fd;
    c->state = CONN_OPEN;
    /* An open slot that never says HELLO would hold a place of
     * --connections-max for ever. */
    c->hello_deadline_ms = t->now_ms + (n->cfg.hello_ms ? n->cfg.hello_ms : NET_HELLO_MS);
    t->awaiting_hello++;
    t->live++;
    ctr_add(&t->counters.connections_total, 1);
    conn_setup_socket(t, c);
    if (log_get_level() >= LOG_DEBUG) {
        char name[96];
        conn_name(t, c, name, sizeof name);
        log_debug("%s: accepted (%u open)", name, before + 1);
    }
    conn_kick(t, c);
}

/* ---- aborting, rejecting ------------------------------------------------- */

static void conn_cancel(net_thread_t *t, net_conn_t *c, enum net_tag tag)
{
    struct io_uring_sqe *sqe = net_sqe(t);
    io_uring_prep_cancel64(sqe, conn_ud(tag, c), 0);
    io_uring_sqe_set_data64(sqe, ud_make(TAG_CANCEL, 0, 0));
}

void conn_stop_recv(net_thread_t *t, net_conn_t *c)
{
    if (!c->recv_armed || c->recv_cancelling)
        return;
    conn_cancel(t, c, TAG_RECV);
    c->recv_cancelling = true;
}

void conn_abort(net_thread_t *t, net_conn_t *c, const char *why)
{
    if (c->state == CONN_ABORTED || c->state == CONN_FREE)
        return;
    if (c->state == CONN_LINGER)
        t->lingering--;
    char name[96];
    conn_name(t, c, name, sizeof name);
    log_debug("%s: closing: %s", name, why);
    c->state = CONN_ABORTED;
    c->eof = true;
    free(c->err);
    c->err = NULL;
    /* wakes whatever waits on the socket; ENOTCONN when the peer already
     * reset it, and then nothing waits */
    if (shutdown(c->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
        log_debug("%s: shutdown: %s", name, strerror(errno));
    conn_stop_recv(t, c);
    if (c->send_inflight)
        conn_cancel(t, c, TAG_SEND);
    conn_kick(t, c);
}

void conn_reject(net_thread_t *t, net_conn_t *c, uint64_t request_id,
                 const proto_error_t *err)
{
    if (c->state != CONN_OPEN)
        return;
    char name[96];
    conn_name(t, c, name, sizeof name);
    log_warn("%s: %s%s%s: %s; answering with an ERROR frame and closing", name,
             allot_result_name(err->result), err->result == ALLOT_MALFORMED ? " " : "",
             err->result == ALLOT_MALFORMED ? allot_malformed_name(err->reason) : "",
             err->msg);
    if (err->result == ALLOT_MALFORMED)
        ctr_add(&t->counters.malformed, 1);
    c->err = malloc(sizeof *c->err);
    if (!c->err) {
        conn_abort(t, c, "out of memory for an ERROR frame");
        return;
    }
    c->err->err = *err;
    c->err->request_id = request_id;
    c->state = CONN_REJECTED;
    conn_kick(t, c);
}

/* ---- answers out ---------------------------------------------------------- */

/* Answer bytes this connection owes: unsent, queued, and still in the
 * executor (a bound): what backpressure judges. */
size_t conn_out_load(const net_conn_t *c)
{
    return buf_pending(&c->tx) + c->out.len + c->out_pending;
}

uint8_t *conn_out_reserve(net_thread_t *t, net_conn_t *c, size_t size)
{
    if (c->state == CONN_ABORTED)
        return NULL;
    int rc = buf_reserve(&c->out, (size_t)c->out.len + size, CONN_OUT_MAX);
    if (rc != 0) {
        char name[96];
        conn_name(t, c, name, sizeof name);
        log_error("%s: no room for a %zu-byte answer (%s): closing", name, size,
                  strerror(-rc));
        conn_abort(t, c, "answer backlog");
        return NULL;
    }
    return c->out.p + c->out.len;
}

/* Answers of one batch (or of the server itself, seq 0) join the queue;
 * consecutive ones that leave under the same condition share a gate, and
 * when the gates run out the last one widens (it can only wait longer). */
void conn_out_commit(net_thread_t *t, net_conn_t *c, size_t size, uint64_t seq_needed,
                     bool mutating)
{
    c->out.len += (uint32_t)size;
    net_gate_t *last = c->gates_n > 0 ? &c->gates[c->gates_n - 1] : NULL;
    if (last && (c->gates_n == CONN_GATES ||
                 (last->mutating == mutating && last->seq_needed == seq_needed))) {
        last->end = c->out.len;
        last->mutating |= mutating;
        if (seq_needed > last->seq_needed)
            last->seq_needed = seq_needed;
    } else {
        c->gates[c->gates_n++] =
            (net_gate_t){.end = c->out.len, .mutating = mutating, .seq_needed = seq_needed};
    }
    conn_kick(t, c);
}

void conn_frame_done(net_thread_t *t, net_conn_t *c, uint32_t bound)
{
    VERIFY(c->frames_inflight > 0 && c->out_pending >= bound);
    c->frames_inflight--;
    c->out_pending -= bound;
    conn_kick(t, c);
}

static void conn_send(net_thread_t *t, net_conn_t *c)
{
    struct io_uring_sqe *sqe = net_sqe(t);
    io_uring_prep_send(sqe, c->fd, c->tx.p + c->tx.off, buf_pending(&c->tx), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, conn_ud(TAG_SEND, c));
    c->send_inflight = true;
}

/* Hands the released answers to a send, unless one is in flight: then
 * they go, together with whatever is released meanwhile, in the next. */
static void conn_flush(net_thread_t *t, net_conn_t *c)
{
    if (c->send_inflight || c->released == 0 || c->state == CONN_ABORTED)
        return;
    VERIFY(buf_pending(&c->tx) == 0);
    net_buf_t next = c->tx; /* empty; its memory becomes the new out */
    next.off = 0;
    next.len = 0;
    uint32_t rest = c->out.len - c->released; /* answers still gated */
    if (rest > 0) {
        if (buf_reserve(&next, rest, CONN_OUT_MAX) != 0) {
            conn_abort(t, c, "no memory for gated answers");
            return;
        }
        memcpy(next.p, c->out.p + c->released, rest);
        next.len = rest;
        for (uint32_t i = 0; i < c->gates_n; i++)
            c->gates[i].end -= c->released;
    }
    c->tx = c->out;
    c->tx.off = 0;
    c->tx.len = c->released;
    c->out = next;
    c->released = 0;
    conn_send(t, c);
}

static bool gate_open(const net_gate_t *g, uint64_t durable_seq)
{
    return !g->mutating || g->seq_needed <= durable_seq;
}

/* The one place where answers are released to the socket. In order: an
 * answer never overtakes one before it on the same connection, so a read
 * waits behind a mutation that waits for the journal. */
void net_conn_release(net_thread_t *t, net_conn_t *c, uint64_t durable_seq)
{
    uint32_t k = 0;
    while (k < c->gates_n && gate_open(&c->gates[k], durable_seq))
        k++;
    if (k > 0) {
        c->released = c->gates[k - 1].end;
        c->gates_n -= k;
        memmove(c->gates, c->gates + k, c->gates_n * sizeof c->gates[0]);
    }
    if (c->gates_n > 0)
        slot_list_push(&t->gated, c->slot);
    conn_flush(t, c);
}

/* The journal failed: the mutations in answers still waiting on it may or
 * may not be on disk. They go out as UNAVAILABLE (outcome unknown; a retry
 * with the same ids after a restart is safe); answers to reads go as they
 * are. */
void net_conn_fail_gated(net_thread_t *t, net_conn_t *c)
{
    uint32_t from = c->released;
    for (uint32_t k = 0; k < c->gates_n; k++) {
        int n = proto_patch_unavailable(c->out.p + from, c->gates[k].end - from);
        VERIFY(n >= 0);
        from = c->gates[k].end;
    }
    net_conn_release(t, c, UINT64_MAX);
}

/* The journal moved: answers waiting for it may go. */
void conn_release_gated(net_thread_t *t)
{
    uint32_t n = t->gated.n, slot;
    while (n-- > 0 && slot_list_pop(&t->gated, &slot))
        conn_kick(t, &t->conns[slot]);
}

void conn_on_send(net_thread_t *t, net_conn_t *c, int res)
{
    c->send_inflight = false;
    conn_kick(t, c); /* whatever happened, the connection has a step to take */
    if (res <= 0) {
        char why[64];
        snprintf(why, sizeof why, "send: %s", res == 0 ? "no progress" : strerror(-res));
        conn_abort(t, c, why);
        return;
    }
    c->tx.off += (uint32_t)res;
    VERIFY(c->tx.off <= c->tx.len);
    if (c->tx.off < c->tx.len && c->state != CONN_ABORTED) {
        conn_send(t, c); /* short send: the rest first, order matters */
        return;
    }
    buf_reset(&c->tx);
}

static bool conn_output_done(const net_conn_t *c)
{
    return !c->send_inflight && c->out.len == 0 && c->frames_inflight == 0 && !c->err &&
           !sub_owes(c);
}

/* ---- the state machine ---------------------------------------------------- */

static void conn_service_open(net_thread_t *t, net_conn_t *c)
{
    if (c->paused && conn_out_load(c) < CONN_OUT_PAUSE_BYTES / 2)
        c->paused = false;
    /* a plain recv writes into in: leave it alone until it completes */
    if (t->buf_ring || !c->recv_armed)
        conn_parse_in(t, c);
    if (c->state == CONN_OPEN && (c->paused || t->stalled) && buf_pending(&c->in) > 0)
        conn_stop_recv(t, c);
}

static void conn_emit_error(net_thread_t *t, net_conn_t *c)
{
    if (!c->err || c->frames_inflight > 0)
        return;
    size_t size = ALLOT_FRAME_HEADER_SIZE + ALLOT_ERR_HEAD_SIZE + ALLOT_ERROR_MESSAGE_MAX;
    uint8_t *p = conn_out_reserve(t, c, size);
    if (!p)
        return;
    size_t w = proto_encode_error(p, size, c->err->request_id, &c->err->err);
    VERIFY(w > 0);
    free(c->err);
    c->err = NULL;
    conn_out_commit(t, c, w, 0, false);
}

static void conn_linger(net_thread_t *t, net_conn_t *c)
{
    if (c->eof) {
        conn_abort(t, c, "ERROR sent, peer closed");
        return;
    }
    /* FIN after the ERROR frame; reading on until the peer's FIN keeps
     * its unread requests from turning our close into a reset */
    if (shutdown(c->fd, SHUT_WR) != 0) {
        conn_abort(t, c, "shutdown after ERROR failed");
        return;
    }
    c->state = CONN_LINGER;
    c->linger_deadline_ms = t->now_ms + NET_LINGER_MS;
    t->lingering++;
}

static void conn_maybe_close(net_thread_t *t, net_conn_t *c)
{
    switch (c->state) {
    case CONN_OPEN:
        if (c->eof && conn_output_done(c) && !in_has_frame(&c->in) && !c->recv_armed)
            conn_abort(t, c, "input ended and every answer is sent");
        break;
    case CONN_REJECTED:
        if (conn_output_done(c))
            conn_linger(t, c);
        break;
    case CONN_LINGER:
        if (c->eof)
            conn_abort(t, c, "peer closed after ERROR");
        break;
    default:
        break;
    }
    if (c->state == CONN_ABORTED && !c->recv_armed && !c->send_inflight &&
        c->frames_inflight == 0)
        conn_close(t, c);
}

static void conn_service(net_thread_t *t, net_conn_t *c)
{
    if (c->state == CONN_OPEN)
        conn_service_open(t, c);
    if (c->state == CONN_OPEN && c->sub)
        sub_pump(t, c);
    if (c->state == CONN_REJECTED) {
        conn_emit_error(t, c);
        sub_emit_lost(t, c);
    }
    if (c->state == CONN_OPEN || c->state == CONN_REJECTED) {
        if (t->durable_failed)
            net_conn_fail_gated(t, c);
        else
            net_conn_release(t, c, net_durable(t));
    }
    conn_arm_recv(t, c);
    conn_maybe_close(t, c);
}

void conn_kick(net_thread_t *t, net_conn_t *c)
{
    slot_list_push(&t->kick, c->slot);
}

void conn_run_kicks(net_thread_t *t)
{
    uint32_t slot;
    while (slot_list_pop(&t->kick, &slot)) {
        net_conn_t *c = &t->conns[slot];
        if (c->state != CONN_FREE)
            conn_service(t, c);
    }
}

void conn_unstarve_all(net_thread_t *t)
{
    uint32_t slot;
    while (!t->stalled && slot_list_pop(&t->starved, &slot))
        conn_kick(t, &t->conns[slot]);
}

/* Deadlines: connections that never said HELLO, lingering connections
 * whose peer never closed, cut-off subscribers that do not read their last
 * frames, and the end of the drain. */
void conn_sweep(net_thread_t *t)
{
    for (uint32_t i = 0; i < t->conns_hw; i++) {
        net_conn_t *c = &t->conns[i];
        if (c->state == CONN_LINGER && t->now_ms >= c->linger_deadline_ms)
            conn_abort(t, c, "peer did not close after ERROR");
        else if (c->state == CONN_OPEN && !c->hello_done && t->now_ms >= c->hello_deadline_ms)
            conn_abort(t, c, "no HELLO within the time allowed");
        else if (c->state == CONN_REJECTED && c->sub && c->sub->lost &&
                 t->now_ms >= c->linger_deadline_ms)
            conn_abort(t, c, "cut-off subscriber did not read its last frames in time");
        else if (t->forced && c->state != CONN_FREE)
            conn_abort(t, c, "drain timeout");
    }
}
