/*
 * A connection's input: bytes from the kernel, frames to batches.
 *
 * With provided buffers, frames are parsed in place and only what must
 * wait (a partial frame, or a backlog while the connection is paused or
 * no batch is free) is copied into the connection's own `in`; later bytes
 * queue behind that backlog, so frames are taken in arrival order. In
 * plain mode the kernel reads straight into `in`. A frame the codec
 * refuses goes to conn_reject(); everything after it is dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/verify.h"
#include "net/internal.h"

#define PLAIN_RECV_MIN 4096u

/* ---- frames in ------------------------------------------------------------- */

static void count_op(net_thread_t *t, unsigned opcode, unsigned result)
{
    if (opcode < ALLOT_OP_COUNT && result < ALLOT_RESULT_COUNT)
        ctr_add(&t->counters.ops[opcode][result], 1);
}

static void conn_hello(net_thread_t *t, net_conn_t *c, const proto_frame_t *f)
{
    const net_t *n = t->net;
    uint32_t version, token_len;
    const uint8_t *token;
    proto_error_t err;

    ctr_add(&t->counters.frames_in, 1);
    if (proto_decode_hello(f, &version, &token, &token_len, &err) != 0) {
        conn_reject(t, c, f->request_id, &err);
        return;
    }
    if (version != ALLOT_PROTOCOL_VERSION) {
        proto_error_set(&err, ALLOT_UNSUPPORTED_VERSION, ALLOT_MAL_NONE,
                        "protocol version %u is not supported; this server speaks %u",
                        version, ALLOT_PROTOCOL_VERSION);
        count_op(t, ALLOT_OP_HELLO, ALLOT_UNSUPPORTED_VERSION);
        conn_reject(t, c, f->request_id, &err);
        return;
    }
    if (n->cfg.token &&
        !proto_token_equal(token, token_len, n->token, n->cfg.token_len)) {
        proto_error_set(&err, ALLOT_UNAUTHORIZED, ALLOT_MAL_NONE,
                        "the HELLO token does not match the server's");
        count_op(t, ALLOT_OP_HELLO, ALLOT_UNAUTHORIZED);
        conn_reject(t, c, f->request_id, &err);
        return;
    }
    size_t size = ALLOT_FRAME_HEADER_SIZE + ALLOT_HELLO_RESP_SIZE;
    uint8_t *p = conn_out_reserve(t, c, size);
    if (!p)
        return;
    size_t w = proto_encode_hello_response(p, size, f->request_id, net_real_ms());
    VERIFY(w == size);
    c->hello_done = true;
    t->awaiting_hello--;
    count_op(t, ALLOT_OP_HELLO, ALLOT_OK);
    conn_out_commit(t, c, w, 0, false);
}

/* Lines a decoded frame took from the batch (proto.h: PLACE lines are
 * consecutive, ORDER_GET op i owns ALLOT_LINES_MAX for its answer). */
static uint32_t lines_taken(uint16_t opcode, const eng_op_t *ops, size_t n)
{
    if (opcode == ALLOT_OP_ORDER_GET)
        return (uint32_t)n * ALLOT_LINES_MAX;
    if (opcode != ALLOT_OP_PLACE)
        return 0;
    uint32_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += ops[i].line_count;
    return lines;
}

/* Lines a frame may need, known from its header alone. */
static size_t lines_wanted(const proto_frame_t *f)
{
    size_t lines = 0;
    if (f->opcode == ALLOT_OP_ORDER_GET)
        lines = (size_t)f->count * ALLOT_LINES_MAX;
    else if (f->opcode == ALLOT_OP_PLACE)
        lines = f->body_len / ALLOT_LINE_SIZE;
    return lines < PROTO_DECODE_LINES_MAX ? lines : PROTO_DECODE_LINES_MAX;
}

static void conn_starve(net_thread_t *t, net_conn_t *c)
{
    if (slot_list_push(&t->starved, c->slot))
        conn_stop_recv(t, c);
}

/* 0 when the frame was taken (or refused), -EAGAIN when no batch has room
 * (or a SUBSCRIBE waits for the answers before it) and the frame must be
 * parsed again later. */
static int conn_request(net_thread_t *t, net_conn_t *c, const proto_frame_t *f)
{
    if (f->opcode == ALLOT_OP_SUBSCRIBE)
        return conn_subscribe(t, c, f);
    size_t ops_want = f->count < PROTO_DECODE_OPS_MAX ? f->count : PROTO_DECODE_OPS_MAX;
    net_batch_t *b = batch_room(t, f->opcode, ops_want, lines_wanted(f));
    if (!b) {
        conn_starve(t, c);
        return -EAGAIN;
    }
    proto_error_t err;
    size_t first = b->xb.n;
    int n = proto_decode_request(f, b->ops + first, PROTO_DECODE_OPS_MAX - first,
                                 b->lines + b->lines_used,
                                 PROTO_DECODE_LINES_MAX - b->lines_used, &err);
    ctr_add(&t->counters.frames_in, 1);
    if (n < 0) {
        conn_reject(t, c, f->request_id, &err);
        return 0;
    }
    uint32_t bound = answer_bound(f->opcode, b->ops + first, (size_t)n);
    batch_add_frame(b, c, f, (uint32_t)n, lines_taken(f->opcode, b->ops + first, (size_t)n),
                    bound);
    c->frames_inflight++;
    c->out_pending += bound;
    return 0;
}

/* Whether frames of c may be decoded now; records why not. */
static bool conn_can_parse(net_thread_t *t, net_conn_t *c)
{
    if (c->state != CONN_OPEN)
        return false;
    if (!c->paused && conn_out_load(c) >= CONN_OUT_PAUSE_BYTES)
        c->paused = true;
    if (c->paused)
        return false;
    if (t->stalled) {
        conn_starve(t, c);
        return false;
    }
    return true;
}

static uint64_t header_request_id(const uint8_t *p, size_t n)
{
    return n >= ALLOT_FRAME_HEADER_SIZE ? allot_get_u64(p + 8) : 0;
}

/* Handles the whole frames in p[0..n) while c may take them. Returns the
 * bytes consumed; all of them once the connection stopped reading. */
static size_t conn_parse(net_thread_t *t, net_conn_t *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (off < n && conn_can_parse(t, c)) {
        proto_frame_t f;
        proto_error_t err;
        ssize_t r = proto_frame_parse(p + off, n - off, &f, &err);
        if (r == 0)
            break;
        if (r < 0) {
            conn_reject(t, c, header_request_id(p + off, n - off), &err);
            break;
        }
        VERIFY((size_t)r <= n - off);
        if (!c->hello_done)
            conn_hello(t, c, &f);
        else if (conn_request(t, c, &f) != 0)
            break;
        off += (size_t)r;
    }
    return c->state == CONN_OPEN ? off : n;
}

/* ---- bytes in ------------------------------------------------------------ */

static int in_append(net_thread_t *t, net_conn_t *c, const uint8_t *p, size_t n)
{
    net_buf_t *in = &c->in;
    if (in->off > 0) {
        memmove(in->p, in->p + in->off, buf_pending(in));
        in->len -= in->off;
        in->off = 0;
    }
    int rc = buf_reserve(in, (size_t)in->len + n, CONN_IN_MAX);
    if (rc != 0) {
        char name[96];
        conn_name(t, c, name, sizeof name);
        log_error("%s: input backlog over %u bytes (%s): closing", name, CONN_IN_MAX,
                  strerror(-rc));
        conn_abort(t, c, "input backlog too large");
        return rc;
    }
    memcpy(in->p + in->len, p, n);
    in->len += (uint32_t)n;
    return 0;
}

/* Bytes that would complete the first frame held in in: 0 when it is
 * whole, or when its length is one the parser will refuse. */
static size_t in_need(const net_buf_t *in)
{
    size_t have = buf_pending(in);
    if (have < ALLOT_FRAME_HEADER_SIZE)
        return ALLOT_FRAME_HEADER_SIZE - have;
    uint32_t len = allot_get_u32(in->p + in->off);
    if (len < ALLOT_FRAME_HEADER_SIZE || len > ALLOT_FRAME_MAX)
        return 0;
    return len > have ? len - have : 0;
}

bool in_has_frame(const net_buf_t *in)
{
    return buf_pending(in) >= ALLOT_FRAME_HEADER_SIZE && in_need(in) == 0;
}

/* Copies from p just what completes the frame that in starts. */
static size_t in_complete(net_thread_t *t, net_conn_t *c, const uint8_t *p, size_t n)
{
    size_t used = 0;
    for (int step = 0; step < 2 && used < n; step++) { /* header, then body */
        size_t need = in_need(&c->in);
        if (need == 0)
            break;
        size_t k = need < n - used ? need : n - used;
        if (in_append(t, c, p + used, k) != 0)
            return n;
        used += k;
    }
    return used;
}

static void in_discard(net_thread_t *t, net_conn_t *c)
{
    if (t->buf_ring) {
        buf_free(&c->in);
    } else {
        /* a plain recv may be reading into it: keep the memory */
        c->in.off = 0;
        c->in.len = 0;
    }
}

void conn_parse_in(net_thread_t *t, net_conn_t *c)
{
    net_buf_t *in = &c->in;
    if (buf_pending(in) == 0)
        return;
    size_t used = conn_parse(t, c, in->p + in->off, buf_pending(in));
    if (c->state != CONN_OPEN) {
        in_discard(t, c);
        return;
    }
    in->off += (uint32_t)used;
    if (in->off == in->len && (t->buf_ring || !c->recv_armed))
        buf_reset(in);
}

/* Bytes in a provided buffer: parse in place behind any backlog. */
static void conn_on_bytes(net_thread_t *t, net_conn_t *c, const uint8_t *p, size_t n)
{
    if (c->state != CONN_OPEN)
        return; /* rejected, lingering or aborted: input is dropped */
    size_t used = 0;
    if (buf_pending(&c->in) > 0) {
        used = in_complete(t, c, p, n);
        conn_parse_in(t, c);
        if (c->state != CONN_OPEN)
            return;
    }
    if (buf_pending(&c->in) == 0)
        used += conn_parse(t, c, p + used, n - used);
    if (c->state == CONN_OPEN && used < n && in_append(t, c, p + used, n - used) == 0 &&
        in_has_frame(&c->in))
        conn_stop_recv(t, c); /* input waits: stop reading until it can go on */
}

/* Plain mode: the kernel wrote n bytes at the end of in. */
static void conn_on_plain_bytes(net_thread_t *t, net_conn_t *c, size_t n)
{
    if (c->state != CONN_OPEN)
        return;
    VERIFY(c->in.len + n <= c->in.cap);
    c->in.len += (uint32_t)n;
    conn_parse_in(t, c);
}

static void conn_recv_error(net_thread_t *t, net_conn_t *c, int res)
{
    if (res == -ENOBUFS) {
        t->enobufs++; /* re-armed by conn_service once buffers are back */
        return;
    }
    if (res == -ECANCELED)
        return;
    if (res == -EINVAL && t->multishot) {
        log_warn("thread %u: multishot recv refused (%s): using single-shot recv",
                 t->index, strerror(-res));
        t->multishot = false;
        return;
    }
    char why[64];
    snprintf(why, sizeof why, "recv: %s", strerror(-res));
    conn_abort(t, c, why);
}

void conn_on_recv(net_thread_t *t, net_conn_t *c, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE)) {
        c->recv_armed = false;
        c->recv_cancelling = false;
    }
    if (flags & IORING_CQE_F_BUFFER) {
        uint16_t bid = (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT);
        if (res > 0)
            conn_on_bytes(t, c, t->bufs + (size_t)bid * NET_BUF_SIZE, (size_t)res);
        net_buf_return(t, bid);
    } else if (res > 0 && !t->buf_ring) {
        conn_on_plain_bytes(t, c, (size_t)res);
    }
    if (res == 0)
        c->eof = true;
    else if (res < 0)
        conn_recv_error(t, c, res);
    conn_kick(t, c);
}

/* ---- reading -------------------------------------------------------------- */

/* Plain mode: room at the end of in for the next recv. */
static int plain_reserve(net_thread_t *t, net_conn_t *c)
{
    net_buf_t *in = &c->in;
    if (in->off > 0) {
        memmove(in->p, in->p + in->off, buf_pending(in));
        in->len -= in->off;
        in->off = 0;
    }
    size_t need = c->state == CONN_OPEN ? in_need(in) : 0;
    if (need < PLAIN_RECV_MIN)
        need = PLAIN_RECV_MIN;
    int rc = buf_reserve(in, (size_t)in->len + need, CONN_IN_MAX);
    if (rc != 0)
        conn_abort(t, c, "no memory for input");
    return rc;
}

/* Whether c should have a recv armed now. A connection held back only
 * because every batch is in use waits among the starved, so that the
 * first completed batch wakes it. */
static bool conn_wants_input(net_thread_t *t, net_conn_t *c)
{
    if (c->recv_armed || c->eof)
        return false;
    switch (c->state) {
    case CONN_OPEN:
        if (c->paused || in_has_frame(&c->in) || t->draining)
            return false;
        if (t->stalled) {
            slot_list_push(&t->starved, c->slot);
            return false;
        }
        return true;
    case CONN_REJECTED:
    case CONN_LINGER:
        return true; /* read and drop, so that closing does not reset the peer */
    default:
        return false;
    }
}

void conn_arm_recv(net_thread_t *t, net_conn_t *c)
{
    if (!conn_wants_input(t, c))
        return;
    if (!t->buf_ring && plain_reserve(t, c) != 0)
        return;
    struct io_uring_sqe *sqe = net_sqe(t);
    if (!t->buf_ring) {
        io_uring_prep_recv(sqe, c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
    } else {
        if (t->multishot)
            io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        else
            io_uring_prep_recv(sqe, c->fd, NULL, NET_BUF_SIZE, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = NET_BGID;
    }
    io_uring_sqe_set_data64(sqe, conn_ud(TAG_RECV, c));
    c->recv_armed = true;
}

void conn_drain(net_thread_t *t, net_conn_t *c)
{
    if (c->state == CONN_LINGER) {
        conn_abort(t, c, "server stopping");
        return;
    }
    c->eof = true;
    conn_stop_recv(t, c);
    conn_kick(t, c);
}

