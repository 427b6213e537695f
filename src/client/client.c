/*
 * The connection: one non-blocking TCP socket, one write buffer, one read
 * buffer and a ring of request slots.
 *
 * Requests get consecutive ids; the slot of id is slots[id % slots_cap] and
 * a request may only be queued while next_id - head_id < slots_cap, where
 * head_id is the oldest request not yet handed back. That keeps the lookup
 * of an answer's id O(1) and the memory fixed, whatever order the answers
 * arrive in.
 *
 * Answers are checked whole and handed back pointing into the read buffer;
 * the buffer is only compacted at the start of the next collecting call,
 * which is what bounds the lifetime of a completion's body.
 *
 * Every whole frame is vetted once as it arrives (length, response flag),
 * before anything is handed back. EVENT frames are decoded there and then,
 * into the subscription's queue, and their opcode is overwritten with
 * FRAME_TAKEN: the event reader so never waits for answers to be collected,
 * and the collecting calls step over frames already taken. A frame that
 * fails vetting poisons the stream from there on: the frames before it are
 * still handed back, then the handle breaks.
 *
 * Failure is sticky, as in LMDB: once broken, the handle closes its socket,
 * hands every request in flight back failed and refuses new work. A
 * half-understood stream cannot be resynchronised, and a caller that retries
 * on a fresh connection with the same order ids is safe by the protocol's
 * idempotency rules.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* By default each buffer holds the largest frame plus 64 KiB: the read
 * buffer reads ahead into the next answer, the write buffer queues the next
 * request while a large one drains. Queued bytes over FLUSH_BYTES (or half
 * the buffer) are written by allot_submit() itself, so that a caller who
 * submits many frames before collecting keeps the pipe busy. */
#define FLUSH_BYTES (64u * 1024u)

enum conn_state { CONN_NEW, CONN_HANDSHAKE, CONN_OPEN, CONN_BROKEN };

/* PENDING: SUBSCRIBE sent, not answered (its events may already come).
 * ENDED: a LOST event was queued; nothing more is queued after it. */
enum sub_state { SUB_NONE, SUB_PENDING, SUB_ACTIVE, SUB_ENDED };

/* Written over the opcode of an EVENT frame whose events were queued. No
 * frame from the server has it: vetting refuses frames without the
 * response flag. */
#define FRAME_TAKEN 0u

struct slot {
    uint64_t sent_ms;
    void *user;
    int err;          /* this request's own failure (an ERROR frame) */
    uint16_t opcode;
    uint16_t count;
    bool pending;     /* queued and not yet handed back */
};

struct allot_conn {
    int fd;
    enum conn_state state;
    int broken;       /* why the handle broke; 0 while usable */
    bool eof;         /* the peer closed (or recv failed): break once the
                         frames already read are handed back */
    int read_err;
    bool have_info;
    char *host;
    uint16_t port;
    uint32_t timeout_ms;
    size_t token_len;
    uint8_t token[ALLOT_TOKEN_MAX];
    allot_server_info_t info;

    struct slot *slots;
    uint32_t slots_cap;
    uint64_t next_id;
    uint64_t head_id;
    size_t inflight;  /* slots pending */

    uint32_t rcap;    /* bytes of rbuf */
    uint32_t wcap;    /* bytes of wbuf */
    uint32_t flush_bytes;
    uint8_t *rbuf;
    size_t rlen;      /* bytes in rbuf */
    size_t roff;      /* bytes of rbuf already handed back or skipped */
    size_t rscan;     /* bytes of rbuf vetted: roff <= rscan <= rlen */
    bool rbad;        /* the frame at rscan is not valid protocol (the
                         reason is in err): break once roff reaches it */
    uint8_t *wbuf;
    size_t wlen;
    size_t woff;      /* bytes of wbuf already written */

    enum sub_state sub;
    uint64_t sub_id;   /* request id of the SUBSCRIBE */
    allot_event_t *evq; /* ev_cap slots, allocated by subscribing */
    uint32_t ev_cap;
    uint32_t ev_head;
    uint32_t ev_count;
    uint64_t ev_total; /* events ever queued: wakes allot_wait() */

    char err[ALLOT_ERROR_TEXT_MAX];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0; /* cannot fail for CLOCK_MONOTONIC on Linux */
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_err(allot_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_err(allot_conn_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

/* Marks c broken with err (first reason wins) and closes the socket: the
 * server learns at once that nobody reads its answers any more. */
static void conn_break(allot_conn_t *c, int err)
{
    if (c->state == CONN_BROKEN)
        return;
    c->state = CONN_BROKEN;
    c->broken = err;
    if (c->fd >= 0) {
        close(c->fd); /* nothing useful to do about a failed close */
        c->fd = -1;
    }
}

static struct slot *slot_of(allot_conn_t *c, uint64_t id)
{
    return &c->slots[id % c->slots_cap];
}

static void advance_head(allot_conn_t *c)
{
    while (c->head_id < c->next_id && !slot_of(c, c->head_id)->pending)
        c->head_id++;
}

/* ---- configuration and lifecycle --------------------------------------- */

void allot_config_init(allot_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

static int conn_alloc(allot_conn_t *c, const allot_config_t *cfg)
{
    c->host = strdup(cfg->host != NULL ? cfg->host : ALLOT_DEFAULT_HOST);
    c->slots_cap = cfg->inflight_max != 0 ? cfg->inflight_max
                                          : ALLOT_INFLIGHT_MAX_DEFAULT;
    c->slots = calloc(c->slots_cap, sizeof(*c->slots));
    c->rcap = c->wcap = cfg->buffer_bytes != 0 ? cfg->buffer_bytes
                                               : ALLOT_BUFFER_BYTES_DEFAULT;
    c->flush_bytes = c->wcap / 2 < FLUSH_BYTES ? c->wcap / 2 : FLUSH_BYTES;
    c->rbuf = malloc(c->rcap);
    c->wbuf = malloc(c->wcap);
    if (c->host == NULL || c->slots == NULL || c->rbuf == NULL || c->wbuf == NULL)
        return -ENOMEM;
    return 0;
}

int allot_conn_new(allot_conn_t **out, const allot_config_t *cfg)
{
    if (out == NULL || cfg == NULL || cfg->token_len > ALLOT_TOKEN_MAX ||
        (cfg->token_len > 0 && cfg->token == NULL) ||
        cfg->inflight_max > ALLOT_INFLIGHT_MAX_CEILING ||
        (cfg->buffer_bytes != 0 && cfg->buffer_bytes < ALLOT_BUFFER_BYTES_MIN))
        return -EINVAL;
    allot_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->fd = -1;
    c->state = CONN_NEW;
    c->port = cfg->port != 0 ? cfg->port : ALLOT_DEFAULT_PORT;
    c->timeout_ms = cfg->timeout_ms != 0 ? cfg->timeout_ms : ALLOT_TIMEOUT_MS_DEFAULT;
    c->token_len = cfg->token_len;
    if (cfg->token_len > 0)
        memcpy(c->token, cfg->token, cfg->token_len);
    c->next_id = 1;
    c->head_id = 1;
    int rc = conn_alloc(c, cfg);
    if (rc != 0) {
        allot_conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void allot_conn_close(allot_conn_t *c)
{
    if (c == NULL)
        return;
    if (c->fd >= 0)
        close(c->fd); /* the handle is gone either way */
    free(c->host);
    free(c->slots);
    free(c->rbuf);
    free(c->wbuf);
    free(c->evq);
    free(c);
}

void allot__conn_buffers(const allot_conn_t *c, uint32_t *rcap, uint32_t *wcap)
{
    *rcap = c->rcap;
    *wcap = c->wcap;
}

const allot_server_info_t *allot_server_info(const allot_conn_t *c)
{
    return c != NULL && c->have_info ? &c->info : NULL;
}

const char *allot_last_error(const allot_conn_t *c)
{
    return c != NULL ? c->err : "no handle";
}

int allot_conn_status(const allot_conn_t *c)
{
    if (c == NULL)
        return -EINVAL;
    if (c->state == CONN_BROKEN)
        return c->broken;
    return c->state == CONN_OPEN ? 0 : -ENOTCONN;
}

int allot_conn_fd(const allot_conn_t *c)
{
    return c != NULL && c->fd >= 0 ? c->fd : -ENOTCONN;
}

bool allot_conn_wants_write(const allot_conn_t *c)
{
    return c != NULL && c->fd >= 0 && c->wlen > c->woff;
}

bool allot_outcome_unknown(int err)
{
    return err == -ECONNRESET || err == -ETIMEDOUT;
}

size_t allot_inflight(const allot_conn_t *c)
{
    return c != NULL ? c->inflight : 0;
}

/* ---- socket I/O -------------------------------------------------------- */

static void flush_nb(allot_conn_t *c)
{
    while (c->fd >= 0 && c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->woff += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        set_err(c, "send to %s:%u: %s", c->host, (unsigned)c->port,
                n < 0 ? strerror(errno) : "no progress");
        conn_break(c, -ECONNRESET);
        return;
    }
    if (c->woff == c->wlen)
        c->woff = c->wlen = 0;
}

static void read_nb(allot_conn_t *c)
{
    while (c->fd >= 0 && !c->eof && c->rlen < c->rcap) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen,
                         MSG_DONTWAIT);
        if (n > 0) {
            c->rlen += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        c->eof = true;
        c->read_err = n < 0 ? errno : 0;
    }
}

static void rbuf_compact(allot_conn_t *c)
{
    if (c->roff == 0)
        return;
    memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
    c->rlen -= c->roff;
    c->rscan -= c->roff;
    c->roff = 0;
}

/* Copies a frame into the write buffer under the next request id. */
static int queue_frame(allot_conn_t *c, const uint8_t *frame, size_t len,
                       uint16_t opcode, uint16_t count, void *user,
                       uint64_t *request_id)
{
    if (c->next_id - c->head_id >= c->slots_cap)
        return -EAGAIN;
    if (len > c->wcap)
        return -EMSGSIZE;
    if (len > c->wcap - c->wlen) {
        flush_nb(c);
        if (c->state == CONN_BROKEN)
            return -ENOTCONN;
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
        if (len > c->wcap - c->wlen)
            return -EAGAIN;
    }
    uint64_t id = c->next_id++;
    memcpy(c->wbuf + c->wlen, frame, len);
    allot_put_u64(c->wbuf + c->wlen + 8, id);
    c->wlen += len;
    *slot_of(c, id) = (struct slot){
        .sent_ms = now_ms(), .user = user, .opcode = opcode, .count = count,
        .pending = true,
    };
    c->inflight++;
    if (request_id != NULL)
        *request_id = id;
    if (c->wlen - c->woff >= c->flush_bytes)
        flush_nb(c); /* a failure here is reported through the completion */
    return 0;
}

/* ---- answers ----------------------------------------------------------- */

static int error_frame_errno(unsigned result)
{
    if (result == ALLOT_UNAUTHORIZED)
        return -EACCES;
    if (result == ALLOT_UNSUPPORTED_VERSION)
        return -EPROTONOSUPPORT;
    return -EPROTO;
}

/* An ERROR frame: the server refused one frame and is closing. The request
 * it names fails on its own; during the handshake the HELLO is the only
 * request there is, whatever id the server could read. */
static void handle_error_frame(allot_conn_t *c, uint64_t id,
                               const uint8_t *body, size_t len)
{
    if (len < ALLOT_ERR_HEAD_SIZE) {
        set_err(c, "server sent a short ERROR frame (%zu bytes)", len);
        conn_break(c, -ECONNRESET);
        return;
    }
    unsigned result = allot_get_u8(body + ALLOT_ERR_RESULT);
    unsigned reason = allot_get_u8(body + ALLOT_ERR_REASON);
    size_t msg_len = allot_get_u16(body + ALLOT_ERR_MSG_LEN);
    if (msg_len > len - ALLOT_ERR_HEAD_SIZE)
        msg_len = len - ALLOT_ERR_HEAD_SIZE;
    if (msg_len > ALLOT_ERROR_MESSAGE_MAX)
        msg_len = ALLOT_ERROR_MESSAGE_MAX;
    set_err(c, "server refused request %llu: %s%s%s: %.*s",
            (unsigned long long)id, allot_result_name(result),
            reason != 0 ? "/" : "", reason != 0 ? allot_malformed_name(reason) : "",
            (int)msg_len, (const char *)(body + ALLOT_ERR_MSG));
    struct slot *s = NULL;
    if (id >= c->head_id && id < c->next_id && slot_of(c, id)->pending)
        s = slot_of(c, id);
    else if (c->state == CONN_HANDSHAKE && c->inflight > 0)
        s = slot_of(c, c->head_id);
    if (s != NULL)
        s->err = error_frame_errno(result);
    conn_break(c, -ECONNRESET);
}

/* Handles one whole frame. Returns 1 when it filled *out, 0 otherwise (an
 * ignored frame, or the handle broke). */
static int handle_frame(allot_conn_t *c, const uint8_t *f, size_t len,
                        allot_completion_t *out)
{
    uint16_t opcode = allot_get_u16(f + 4);
    uint16_t count = allot_get_u16(f + 6);
    uint64_t id = allot_get_u64(f + 8);
    const uint8_t *body = f + ALLOT_FRAME_HEADER_SIZE;
    size_t body_len = len - ALLOT_FRAME_HEADER_SIZE;
    /* Vetting checked the response flag and took every EVENT frame. */
    uint16_t op = opcode & (uint16_t)~ALLOT_OP_RESPONSE;
    if (op == ALLOT_OP_ERROR) {
        handle_error_frame(c, id, body, body_len);
        return 0;
    }
    struct slot *s = slot_of(c, id);
    if (id < c->head_id || id >= c->next_id || !s->pending || s->opcode != op) {
        set_err(c, "server answered request %llu (opcode %u), which is not "
                   "in flight", (unsigned long long)id, (unsigned)op);
        conn_break(c, -ECONNRESET);
        return 0;
    }
    char why[160];
    if (allot__check_answer(op, s->count, count, body, body_len, why,
                            sizeof(why)) != 0) {
        set_err(c, "invalid answer to request %llu: %s",
                (unsigned long long)id, why);
        s->err = -EPROTO;
        conn_break(c, -ECONNRESET);
        return 0;
    }
    *out = (allot_completion_t){
        .request_id = id, .user = s->user, .error = 0, .opcode = op,
        .count = count, .body = body, .body_len = body_len,
    };
    s->pending = false;
    c->inflight--;
    advance_head(c);
    return 1;
}

/* ---- events ------------------------------------------------------------ */

static void ev_push(allot_conn_t *c, const allot_event_t *ev)
{
    c->evq[(c->ev_head + c->ev_count) % c->ev_cap] = *ev;
    c->ev_count++;
    c->ev_total++;
}

/* Ends the subscription with a LOST of our own at seq, as if the server
 * had cut this subscriber off. The events of one record share its seq and
 * come in one frame, so those of seq already queued are dropped too: a
 * subscriber that resumes from seq then gets each event exactly once. */
static void lose_from(allot_conn_t *c, const allot_event_t *first_lost)
{
    while (c->ev_count > 0) {
        uint32_t last = (c->ev_head + c->ev_count - 1) % c->ev_cap;
        if (c->evq[last].seq != first_lost->seq)
            break;
        c->ev_count--;
    }
    allot_event_t lost = {.seq = first_lost->seq, .time_ms = first_lost->time_ms,
                          .type = ALLOT_EVENT_LOST};
    ev_push(c, &lost);
    c->sub = SUB_ENDED;
}

/* Queues the events of a vetted EVENT frame f, one slot kept for a LOST:
 * the first event that does not fit ends the subscription (lose_from()).
 * 0, or -EPROTO with the reason in err. */
static int take_events(allot_conn_t *c, const uint8_t *f, uint32_t len)
{
    uint16_t count = allot_get_u16(f + 6);
    uint64_t id = allot_get_u64(f + 8);
    char why[120];
    if (c->sub == SUB_NONE || id != c->sub_id) {
        set_err(c, "server sent events for request %llu, which is not a "
                   "subscription", (unsigned long long)id);
        return -EPROTO;
    }
    if (allot__check_events(count, len - ALLOT_FRAME_HEADER_SIZE, why,
                            sizeof(why)) != 0) {
        set_err(c, "invalid %s", why);
        return -EPROTO;
    }
    const uint8_t *p = f + ALLOT_FRAME_HEADER_SIZE;
    for (unsigned i = 0; i < count && c->sub != SUB_ENDED; i++) {
        allot_event_t ev;
        allot__dec_event(p + (size_t)i * ALLOT_EV_SIZE, &ev);
        if (ev.type != ALLOT_EVENT_LOST && c->ev_count + 1 >= c->ev_cap) {
            lose_from(c, &ev);
            break;
        }
        ev_push(c, &ev);
        if (ev.type == ALLOT_EVENT_LOST)
            c->sub = SUB_ENDED;
    }
    return 0;
}

/* ---- frames ------------------------------------------------------------ */

/* Vets the whole frames read since the last call: sane length, response
 * flag; takes EVENT frames. Stops at the first bad frame (rbad). */
static void vet_frames(allot_conn_t *c)
{
    while (!c->rbad && c->rlen - c->rscan >= ALLOT_FRAME_HEADER_SIZE) {
        uint8_t *f = c->rbuf + c->rscan;
        uint32_t len = allot_get_u32(f);
        if (len < ALLOT_FRAME_HEADER_SIZE || len > ALLOT_FRAME_MAX ||
            len > c->rcap) {
            set_err(c, "server sent a frame of %u bytes (limit %u)", len,
                    c->rcap < ALLOT_FRAME_MAX ? c->rcap : ALLOT_FRAME_MAX);
            c->rbad = true;
            return;
        }
        if (c->rlen - c->rscan < len)
            return;
        uint16_t opcode = allot_get_u16(f + 4);
        if ((opcode & ALLOT_OP_RESPONSE) == 0) {
            set_err(c, "server sent opcode %u without the response flag",
                    opcode);
            c->rbad = true;
            return;
        }
        if ((opcode & (uint16_t)~ALLOT_OP_RESPONSE) == ALLOT_OP_EVENT) {
            if (take_events(c, f, len) != 0) {
                c->rbad = true;
                return;
            }
            allot_put_u16(f + 4, FRAME_TAKEN);
        }
        c->rscan += len;
    }
}

/* Steps over the taken frames at the head of the read buffer. */
static void skip_taken(allot_conn_t *c)
{
    while (c->roff < c->rscan &&
           allot_get_u16(c->rbuf + c->roff + 4) == FRAME_TAKEN)
        c->roff += allot_get_u32(c->rbuf + c->roff);
}

/* Breaks c for a bad frame once everything before it was handed back. */
static void check_poisoned(allot_conn_t *c)
{
    if (c->state != CONN_BROKEN && c->rbad && c->roff == c->rscan)
        conn_break(c, -ECONNRESET);
}

/* Hands back whole answers from the read buffer, up to max. */
static size_t parse_frames(allot_conn_t *c, allot_completion_t *out, size_t max)
{
    size_t n = 0;
    vet_frames(c);
    for (;;) {
        skip_taken(c);
        if (n >= max || c->state == CONN_BROKEN || c->roff == c->rscan)
            break;
        const uint8_t *f = c->rbuf + c->roff;
        uint32_t len = allot_get_u32(f);
        c->roff += len;
        n += (size_t)handle_frame(c, f, len, &out[n]);
    }
    check_poisoned(c);
    return n;
}

/* Once broken, every request still in flight is handed back failed. */
static size_t hand_back_failed(allot_conn_t *c, allot_completion_t *out,
                               size_t max)
{
    size_t n = 0;
    for (uint64_t id = c->head_id; id < c->next_id && n < max; id++) {
        struct slot *s = slot_of(c, id);
        if (!s->pending)
            continue;
        out[n++] = (allot_completion_t){
            .request_id = id, .user = s->user,
            .error = s->err != 0 ? s->err : c->broken, .opcode = s->opcode,
        };
        s->pending = false;
        c->inflight--;
    }
    advance_head(c);
    return n;
}

/* Breaks c when its oldest request waited too long; returns ms until that
 * happens otherwise (-1: nothing in flight). */
static int64_t check_request_timeout(allot_conn_t *c, uint64_t now)
{
    if (c->inflight == 0)
        return -1;
    const struct slot *s = slot_of(c, c->head_id);
    uint64_t deadline = s->sent_ms + c->timeout_ms;
    if (now < deadline)
        return (int64_t)(deadline - now);
    if (c->state == CONN_HANDSHAKE)
        set_err(c, "%s:%u: no answer to the handshake within %u ms", c->host,
                (unsigned)c->port, c->timeout_ms);
    else
        set_err(c, "no answer to request %llu within %u ms",
                (unsigned long long)c->head_id, c->timeout_ms);
    conn_break(c, -ETIMEDOUT);
    return 0;
}

static void note_eof(allot_conn_t *c)
{
    if (c->read_err != 0)
        set_err(c, "receive from %s:%u: %s", c->host, (unsigned)c->port,
                strerror(c->read_err));
    else
        set_err(c, "server %s:%u closed the connection", c->host,
                (unsigned)c->port);
    conn_break(c, -ECONNRESET);
}

/* One round: write, read, hand back. Returns completions filled. */
static size_t collect_round(allot_conn_t *c, allot_completion_t *out,
                            size_t max, int64_t *wait_left)
{
    rbuf_compact(c);
    flush_nb(c);
    read_nb(c);
    size_t n = parse_frames(c, out, max);
    /* Frames read before the close are handed back first; the close
     * counts once nothing whole is left. */
    if (c->state != CONN_BROKEN && c->eof && n < max)
        note_eof(c);
    if (c->state != CONN_BROKEN)
        *wait_left = check_request_timeout(c, now_ms());
    if (c->state == CONN_BROKEN)
        n += hand_back_failed(c, out + n, max - n);
    return n;
}

static void wait_io(allot_conn_t *c, int64_t timeout_ms)
{
    struct pollfd pfd = {
        .fd = c->fd,
        .events = (short)(POLLIN | (c->wlen > c->woff ? POLLOUT : 0)),
    };
    if (timeout_ms > INT32_MAX)
        timeout_ms = INT32_MAX;
    /* Readiness and EINTR are both handled by the next round. */
    if (poll(&pfd, 1, (int)timeout_ms) < 0 && errno != EINTR) {
        set_err(c, "poll: %s", strerror(errno));
        conn_break(c, -ECONNRESET);
    }
}

/* Collects up to max completions, waiting up to wait_ms (0: not at all,
 * < 0: without limit) for the first one; with event_wake, returns 0 as
 * soon as events were queued. */
static int collect(allot_conn_t *c, allot_completion_t *out, size_t max,
                   int64_t wait_ms, bool event_wake)
{
    uint64_t start = now_ms();
    uint64_t events_before = c->ev_total;
    for (;;) {
        int64_t request_left = -1;
        size_t n = collect_round(c, out, max, &request_left);
        if (n > 0)
            return (int)n;
        if (c->state == CONN_BROKEN)
            return c->inflight > 0 ? 0 : -ENOTCONN;
        if (wait_ms == 0 || max == 0)
            return 0;
        if (event_wake && c->ev_total != events_before)
            return 0;
        int64_t step = request_left;
        if (wait_ms > 0) {
            int64_t left = (int64_t)(start + (uint64_t)wait_ms) - (int64_t)now_ms();
            if (left <= 0)
                return 0;
            if (step < 0 || left < step)
                step = left;
        }
        wait_io(c, step);
    }
}

int allot_flush(allot_conn_t *c)
{
    if (c == NULL)
        return -EINVAL;
    if (c->state != CONN_OPEN)
        return -ENOTCONN;
    flush_nb(c);
    return c->state == CONN_BROKEN ? c->broken : 0;
}

int allot_poll(allot_conn_t *c, allot_completion_t *out, size_t max)
{
    if (c == NULL || (out == NULL && max > 0))
        return -EINVAL;
    if (c->state == CONN_NEW)
        return -ENOTCONN;
    return collect(c, out, max, 0, false);
}

int allot_wait(allot_conn_t *c, allot_completion_t *out, size_t max,
               int timeout_ms)
{
    if (c == NULL || (out == NULL && max > 0))
        return -EINVAL;
    if (c->state == CONN_NEW)
        return -ENOTCONN;
    return collect(c, out, max, timeout_ms < 0 ? -1 : (int64_t)timeout_ms,
                   true);
}

/* ---- reading events ---------------------------------------------------- */

/* One round of the event reader: write, read, vet (which queues events),
 * but hand back no completion: answers stay for the collecting calls.
 * Returns ms until the oldest request times out (-1: none in flight). */
static int64_t events_round(allot_conn_t *c)
{
    rbuf_compact(c);
    flush_nb(c);
    read_nb(c);
    vet_frames(c);
    skip_taken(c);
    check_poisoned(c);
    /* Answers still unread keep the close from counting, as in
     * collect_round(): they are handed back before the failure. */
    if (c->state != CONN_BROKEN && c->eof && c->roff == c->rscan)
        note_eof(c);
    if (c->state == CONN_BROKEN)
        return -1;
    return check_request_timeout(c, now_ms());
}

/* Waits up to ms (< 0: without limit) for the socket. Returns 1 when a
 * signal interrupted the wait. When nothing more can be read (the server
 * closed, or uncollected answers fill the buffer) it only sleeps, so that
 * the caller does not spin on a readable socket. */
static int events_sleep(allot_conn_t *c, int64_t ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = 0};
    if (!c->eof && c->rlen < c->rcap)
        pfd.events |= POLLIN;
    if (c->wlen > c->woff)
        pfd.events |= POLLOUT;
    if (ms > INT32_MAX)
        ms = INT32_MAX;
    int r = pfd.events != 0 ? poll(&pfd, 1, (int)ms) : poll(NULL, 0, (int)ms);
    if (r < 0 && errno == EINTR)
        return 1;
    if (r < 0) {
        set_err(c, "poll: %s", strerror(errno));
        conn_break(c, -ECONNRESET);
    }
    return 0;
}

static int events_take(allot_conn_t *c, allot_event_t *out, size_t max)
{
    size_t n = 0;
    while (n < max && c->ev_count > 0) {
        out[n++] = c->evq[c->ev_head];
        c->ev_head = (c->ev_head + 1) % c->ev_cap;
        c->ev_count--;
    }
    return (int)n;
}

/* What an empty queue means: more may come (0), or never. */
static int events_end(const allot_conn_t *c)
{
    if (c->sub == SUB_ENDED)
        return -EPIPE;
    if (c->state == CONN_BROKEN)
        return -ENOTCONN;
    return 0;
}

int allot_events_wait(allot_conn_t *c, allot_event_t *out, size_t max,
                      int timeout_ms)
{
    if (c == NULL || (out == NULL && max > 0))
        return -EINVAL;
    if (c->sub == SUB_NONE || c->sub == SUB_PENDING)
        return -ENOENT;
    uint64_t start = now_ms();
    for (;;) {
        int64_t step = -1;
        if (c->state != CONN_BROKEN)
            step = events_round(c);
        if (c->ev_count > 0 || max == 0)
            return events_take(c, out, max);
        int rc = events_end(c);
        if (rc != 0 || timeout_ms == 0)
            return rc;
        if (timeout_ms > 0) {
            int64_t left = (int64_t)(start + (uint64_t)timeout_ms) - (int64_t)now_ms();
            if (left <= 0)
                return 0;
            if (step < 0 || left < step)
                step = left;
        }
        if (events_sleep(c, step))
            return 0;
    }
}

int allot_events_poll(allot_conn_t *c, allot_event_t *out, size_t max)
{
    return allot_events_wait(c, out, max, 0);
}

size_t allot_events_pending(const allot_conn_t *c)
{
    return c != NULL ? c->ev_count : 0;
}

int allot_submit(allot_conn_t *c, const allot_batch_t *b, void *user,
                 uint64_t *request_id)
{
    if (c == NULL || b == NULL)
        return -EINVAL;
    if (c->state != CONN_OPEN)
        return -ENOTCONN;
    if (b->count == 0)
        return -EINVAL;
    if (b->len > c->info.frame_max || b->lines_peak > c->info.lines_max ||
        b->count > allot__count_max(b->opcode, c->info.batch_max) ||
        b->len > c->wcap || b->answer_max > c->rcap)
        return -EMSGSIZE;
    return queue_frame(c, b->buf, b->len, b->opcode, (uint16_t)b->count, user,
                       request_id);
}

/* ---- connecting -------------------------------------------------------- */

static int wait_connected(int fd, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        int err = 0;
        socklen_t err_len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0)
            return -errno;
        return -err;
    }
}

/* A connected non-blocking socket to ai, or -errno. */
static int connect_one(const struct addrinfo *ai, uint64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        rc = errno == EINPROGRESS ? wait_connected(fd, deadline) : -errno;
    int one = 1;
    if (rc == 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        rc = -errno;
    if (rc != 0) {
        close(fd); /* already failing */
        return rc;
    }
    return fd;
}

static int resolve(allot_conn_t *c, struct addrinfo **res)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)c->port);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICSERV,
    };
    int rc = getaddrinfo(c->host, port, &hints, res);
    if (rc == 0)
        return 0;
    set_err(c, "cannot resolve %s: %s", c->host,
            rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
    if (rc == EAI_MEMORY)
        return -ENOMEM;
    return -EHOSTUNREACH;
}

static int tcp_connect(allot_conn_t *c)
{
    struct addrinfo *res = NULL;
    int rc = resolve(c, &res);
    if (rc != 0)
        return rc;
    uint64_t deadline = now_ms() + c->timeout_ms;
    rc = -EHOSTUNREACH;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_one(ai, deadline);
        if (rc >= 0) {
            c->fd = rc;
            rc = 0;
            break;
        }
    }
    freeaddrinfo(res);
    if (rc != 0)
        set_err(c, "connect to %s:%u: %s", c->host, (unsigned)c->port,
                strerror(-rc));
    return rc;
}

static uint32_t clamp_limit(uint32_t v, uint32_t max)
{
    return v < max ? v : max;
}

/* The server's HELLO answer: its version and limits. */
static int take_hello(allot_conn_t *c, const uint8_t *body)
{
    allot_server_info_t *i = &c->info;
    i->version = allot_get_u32(body + ALLOT_HELLO_R_VERSION);
    i->frame_max = clamp_limit(allot_get_u32(body + ALLOT_HELLO_R_FRAME_MAX),
                               ALLOT_FRAME_MAX);
    i->batch_max = clamp_limit(allot_get_u32(body + ALLOT_HELLO_R_BATCH_MAX),
                               ALLOT_BATCH_MAX);
    i->lines_max = clamp_limit(allot_get_u32(body + ALLOT_HELLO_R_LINES_MAX),
                               ALLOT_LINES_MAX);
    i->server_time_ms = allot_get_u64(body + ALLOT_HELLO_R_SERVER_TIME_MS);
    if (i->version != ALLOT_PROTOCOL_VERSION) {
        set_err(c, "server speaks protocol version %u, not %u", i->version,
                ALLOT_PROTOCOL_VERSION);
        return -EPROTONOSUPPORT;
    }
    /* The protocol promises that one maximal order always fits a frame. */
    if (i->batch_max == 0 || i->lines_max == 0 ||
        i->frame_max < ALLOT_FRAME_HEADER_SIZE + ALLOT__PLACE_SIZE(i->lines_max)) {
        set_err(c, "server announced unusable limits: frame_max %u, "
                   "batch_max %u, lines_max %u",
                i->frame_max, i->batch_max, i->lines_max);
        return -EPROTO;
    }
    c->have_info = true;
    return 0;
}

static int handshake(allot_conn_t *c)
{
    uint8_t f[ALLOT_FRAME_HEADER_SIZE + ALLOT_HELLO_REQ_SIZE + ALLOT_TOKEN_MAX];
    size_t len = ALLOT_FRAME_HEADER_SIZE + ALLOT_HELLO_REQ_SIZE + c->token_len;
    allot__put_header(f, (uint32_t)len, ALLOT_OP_HELLO, 0, 0);
    uint8_t *b = f + ALLOT_FRAME_HEADER_SIZE;
    allot_put_u32(b + ALLOT_HELLO_VERSION, ALLOT_PROTOCOL_VERSION);
    allot_put_u32(b + ALLOT_HELLO_TOKEN_LEN, (uint32_t)c->token_len);
    if (c->token_len > 0)
        memcpy(b + ALLOT_HELLO_TOKEN, c->token, c->token_len);
    int rc = queue_frame(c, f, len, ALLOT_OP_HELLO, 0, NULL, NULL);
    if (rc != 0)
        return rc;
    allot_completion_t cmp;
    rc = collect(c, &cmp, 1, -1, false);
    if (rc < 0)
        return rc;
    if (cmp.error != 0)
        return cmp.error;
    return take_hello(c, cmp.body);
}

int allot_conn_open(allot_conn_t *c)
{
    if (c == NULL)
        return -EINVAL;
    if (c->state != CONN_NEW)
        return -EISCONN;
    c->state = CONN_HANDSHAKE;
    int rc = tcp_connect(c);
    if (rc == 0)
        rc = handshake(c);
    if (rc != 0) {
        conn_break(c, rc);
        c->broken = rc; /* the handshake's own verdict, not the close */
        return rc;
    }
    c->state = CONN_OPEN;
    c->err[0] = '\0';
    return 0;
}

int allot_connect(allot_conn_t **out, const allot_config_t *cfg)
{
    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    allot_conn_t *c;
    int rc = allot_conn_new(&c, cfg);
    if (rc != 0)
        return rc;
    rc = allot_conn_open(c);
    if (rc != 0) {
        allot_conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* ---- synchronous calls ------------------------------------------------- */

/* Sends one frame and waits for its answer (or failure) in *cmp. */
static int call(allot_conn_t *c, const uint8_t *frame, size_t len,
                uint16_t opcode, uint16_t count, allot_completion_t *cmp)
{
    if (c->state != CONN_OPEN)
        return -ENOTCONN;
    if (c->inflight > 0)
        return -EBUSY;
    int rc = queue_frame(c, frame, len, opcode, count, NULL, NULL);
    if (rc != 0)
        return rc;
    rc = collect(c, cmp, 1, -1, false);
    if (rc < 0)
        return rc;
    return cmp->error;
}

/* A one-element frame: header, then the element at f + header. */
static size_t frame_one(uint8_t *f, uint16_t opcode, size_t element_size)
{
    size_t len = ALLOT_FRAME_HEADER_SIZE + element_size;
    allot__put_header(f, (uint32_t)len, opcode, 1, 0);
    return len;
}

static int call_sku(allot_conn_t *c, uint8_t *f, uint16_t opcode,
                    size_t element_size, allot_sku_result_t *out)
{
    allot_completion_t cmp;
    int rc = call(c, f, frame_one(f, opcode, element_size), opcode, 1, &cmp);
    if (rc != 0)
        return rc;
    allot_reader_t r;
    allot_reader_init(&r, &cmp);
    return allot_read_sku(&r, out) == 1 ? 0 : -EPROTO;
}

static int call_order(allot_conn_t *c, uint8_t *f, uint16_t opcode,
                      size_t element_size, allot_order_result_t *out)
{
    allot_completion_t cmp;
    int rc = call(c, f, frame_one(f, opcode, element_size), opcode, 1, &cmp);
    if (rc != 0)
        return rc;
    allot_reader_t r;
    allot_reader_init(&r, &cmp);
    return allot_read_order(&r, out) == 1 ? 0 : -EPROTO;
}

int allot_sku_set_at(allot_conn_t *c, uint64_t sku, uint16_t location,
                     uint16_t priority, uint64_t on_hand, uint32_t limit,
                     uint32_t reorder_point, allot_sku_result_t *out)
{
    uint8_t f[ALLOT_FRAME_HEADER_SIZE + ALLOT_SKU_SET_SIZE];
    if (c == NULL || out == NULL)
        return -EINVAL;
    size_t size = allot__enc_sku_set(f + ALLOT_FRAME_HEADER_SIZE, sku, location,
                                     priority, on_hand, limit, reorder_point);
    return call_sku(c, f, ALLOT_OP_SKU_SET, size, out);
}

int allot_sku_set(allot_conn_t *c, uint64_t sku, uint64_t on_hand,
                  uint32_t limit, uint32_t reorder_point,
                  allot_sku_result_t *out)
{
    return allot_sku_set_at(c, sku, 0, 0, on_hand, limit, reorder_point, out);
}

static int stock_call(allot_conn_t *c, uint16_t opcode, uint64_t sku,
                      uint16_t location, uint64_t amount,
                      allot_sku_result_t *out)
{
    uint8_t f[ALLOT_FRAME_HEADER_SIZE + ALLOT_STOCK_SIZE];
    if (c == NULL || out == NULL)
        return -EINVAL;
    size_t size = allot__enc_stock(f + ALLOT_FRAME_HEADER_SIZE, sku, location,
                                   amount);
    return call_sku(c, f, opcode, size, out);
}

int allot_restock_at(allot_conn_t *c, uint64_t sku, uint16_t location,
                     uint64_t qty, allot_sku_result_t *out)
{
    return stock_call(c, ALLOT_OP_RESTOCK, sku, location, qty, out);
}

int allot_restock(allot_conn_t *c, uint64_t sku, uint64_t qty,
                  allot_sku_result_t *out)
{
    return stock_call(c, ALLOT_OP_RESTOCK, sku, 0, qty, out);
}

int allot_adjust_at(allot_conn_t *c, uint64_t sku, uint16_t location,
                    int64_t delta, allot_sku_result_t *out)
{
    /* Two's complement on the wire: the i64 field is the u64 bit pattern. */
    return stock_call(c, ALLOT_OP_ADJUST, sku, location, (uint64_t)delta, out);
}

int allot_adjust(allot_conn_t *c, uint64_t sku, int64_t delta,
                 allot_sku_result_t *out)
{
    return allot_adjust_at(c, sku, 0, delta, out);
}

int allot_sku_get(allot_conn_t *c, uint64_t sku, allot_sku_result_t *out)
{
    uint8_t f[ALLOT_FRAME_HEADER_SIZE + ALLOT_ID_SIZE];
    if (c == NULL || out == NULL)
        return -EINVAL;
    size_t size = allot__enc_id(f + ALLOT_FRAME_HEADER_SIZE, sku);
    return call_sku(c, f, ALLOT_OP_SKU_GET, size, out);
}

int allot_place(allot_conn_t *c, const allot_order_spec_t *order,
                allot_order_result_t *out)
{
    uint8_t f[ALLOT__SYNC_FRAME_MAX];
    if (c == NULL || out == NULL || order == NULL || order->lines == NULL ||
        order->line_count == 0 || order->line_count > ALLOT_LINES_MAX)
        return -EINVAL;
    if (c->have_info && order->line_count > c->info.lines_max)
        return -EINVAL;
    size_t size = allot__enc_place(f + ALLOT_FRAME_HEADER_SIZE, order);
    return call_order(c, f, ALLOT_OP_PLACE, size, out);
}

static int order_id_call(allot_conn_t *c, uint16_t opcode, uint64_t order,
                         allot_order_result_t *out)
{
    uint8_t f[ALLOT_FRAME_HEADER_SIZE + ALLOT_ID_SIZE];
    if (c == NULL || out == NULL)
        return -EINVAL;
    size_t size = allot__enc_id(f + ALLOT_FRAME_HEADER_SIZE, order);
    return call_order(c, f, opcode, size, out);
}

int allot_confirm(allot_conn_t *c, uint64_t order, allot_order_result_t *out)
{
    return order_id_call(c, ALLOT_OP_CONFIRM, order, out);
}

int allot_cancel(allot_conn_t *c, uint64_t order, allot_order_result_t *out)
{
    return order_id_call(c, ALLOT_OP_CANCEL, order, out);
}

int allot_fulfill(allot_conn_t *c, uint64_t order, allot_order_result_t *out)
{
    return order_id_call(c, ALLOT_OP_FULFILL, order, out);
}

int allot_extend(allot_conn_t *c, uint64_t order, uint32_t ms,
                 allot_order_result_t *out)
{
    uint8_t f[ALLOT_FRAME_HEADER_SIZE + ALLOT_EXTEND_SIZE];
    if (c == NULL || out == NULL)
        return -EINVAL;
    size_t size = allot__enc_extend(f + ALLOT_FRAME_HEADER_SIZE, order, ms);
    return call_order(c, f, ALLOT_OP_EXTEND, size, out);
}

int allot_order_get(allot_conn_t *c, uint64_t order, allot_order_info_t *out)
{
    uint8_t f[ALLOT_FRAME_HEADER_SIZE + ALLOT_ID_SIZE];
    if (c == NULL || out == NULL)
        return -EINVAL;
    size_t size = allot__enc_id(f + ALLOT_FRAME_HEADER_SIZE, order);
    allot_completion_t cmp;
    int rc = call(c, f, frame_one(f, ALLOT_OP_ORDER_GET, size),
                  ALLOT_OP_ORDER_GET, 1, &cmp);
    if (rc != 0)
        return rc;
    allot_reader_t r;
    allot_reader_init(&r, &cmp);
    return allot_read_order_info(&r, out) == 1 ? 0 : -EPROTO;
}

int allot_stats(allot_conn_t *c, uint64_t *values, size_t cap, size_t *count)
{
    uint8_t f[ALLOT_FRAME_HEADER_SIZE];
    if (c == NULL || count == NULL || (values == NULL && cap > 0))
        return -EINVAL;
    allot__put_header(f, ALLOT_FRAME_HEADER_SIZE, ALLOT_OP_STATS, 0, 0);
    allot_completion_t cmp;
    int rc = call(c, f, sizeof(f), ALLOT_OP_STATS, 0, &cmp);
    if (rc != 0)
        return rc;
    *count = cmp.count;
    for (size_t i = 0; i < cap && i < cmp.count; i++)
        values[i] = allot_get_u64(cmp.body + 8u * i);
    return 0;
}

/* ---- subscribing ------------------------------------------------------- */

static int subscribe_prepare(allot_conn_t *c)
{
    if (c->state != CONN_OPEN)
        return -ENOTCONN;
    if (c->sub == SUB_ACTIVE || c->sub == SUB_ENDED)
        return -EALREADY;
    if (c->inflight > 0)
        return -EBUSY;
    if (c->evq == NULL) {
        /* Room for a whole read buffer of events on top of the minimum:
         * one read never overflows a queue the caller keeps draining. */
        size_t cap = ALLOT_EVENT_QUEUE_CAP(c->rcap);
        c->ev_cap = (uint32_t)cap;
        c->evq = calloc(cap, sizeof(*c->evq));
    }
    return c->evq != NULL ? 0 : -ENOMEM;
}

int allot_subscribe(allot_conn_t *c, uint64_t from_seq, uint64_t sku,
                    uint32_t types, allot_subscription_t *out)
{
    uint8_t f[ALLOT_FRAME_HEADER_SIZE + ALLOT_SUB_SIZE];
    if (c == NULL || out == NULL)
        return -EINVAL;
    int rc = subscribe_prepare(c);
    if (rc != 0)
        return rc;
    size_t size = allot__enc_subscribe(f + ALLOT_FRAME_HEADER_SIZE, from_seq,
                                       sku, types);
    /* Its events may arrive right behind the answer, and be vetted before
     * the answer is handed back: they are expected from now on. */
    c->sub_id = c->next_id;
    c->sub = SUB_PENDING;
    c->ev_head = c->ev_count = 0;
    allot_completion_t cmp;
    rc = call(c, f, frame_one(f, ALLOT_OP_SUBSCRIBE, size), ALLOT_OP_SUBSCRIBE,
              1, &cmp);
    if (rc != 0) {
        c->sub = SUB_NONE;
        c->ev_count = 0;
        return rc;
    }
    allot__dec_subscription(cmp.body, out);
    if (out->result != ALLOT_OK) {
        c->sub = SUB_NONE;
        c->ev_count = 0;
    } else if (c->sub == SUB_PENDING) {
        c->sub = SUB_ACTIVE;
    }
    return 0;
}
