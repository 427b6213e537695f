/*
 * The event hub (events.h): a single-writer ring read under a sequence
 * lock. See the header for the protocol between writer and readers.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/verify.h"
#include "net/events.h"

#define SLOT_WORDS 6u
#define SUBSCRIBE_TRIES 8u /* a reader racing a writer that laps the ring */

typedef struct slot {
    _Atomic uint64_t w[SLOT_WORDS];
} slot_t;

struct events {
    /* shared: written by the writer, read by everyone */
    _Atomic uint64_t head;       /* positions [0, head) are published */
    _Atomic uint64_t claimed;    /* positions [0, claimed) have a slot taken */
    _Atomic uint64_t oldest_seq; /* see events_oldest_seq */
    _Atomic uint64_t mark_seq;   /* highest sequence number known appended */
    _Atomic uint64_t settled_seq; /* every event up to this seq is appended */
    char pad0[24];
    /* the writer's own */
    uint64_t next;
    uint64_t oldest;
    uint64_t mark;
    uint64_t flushed;
    /* registered by the main thread while the writer may already run */
    int waiters[THREADS_MAX];
    _Atomic unsigned waiters_n;
    /* fixed */
    uint32_t cap;
    slot_t *ring;
};

int events_init(events_t **out, uint32_t retain)
{
    *out = NULL;
    if (retain == 0 || retain > EVENTS_RETAIN)
        return -EINVAL;
    events_t *h = calloc(1, sizeof *h);
    if (!h)
        return -ENOMEM;
    /* calloc of this size maps zero pages: the ring costs what it holds */
    h->ring = calloc(retain, sizeof *h->ring);
    if (!h->ring) {
        free(h);
        return -ENOMEM;
    }
    h->cap = retain;
    h->oldest = 1;
    atomic_init(&h->oldest_seq, 1);
    *out = h;
    return 0;
}

void events_deinit(events_t *h)
{
    if (!h)
        return;
    free(h->ring);
    free(h);
}

/* ---- the writer ------------------------------------------------------------ */

static void slot_pack(const eng_event_t *ev, uint64_t w[SLOT_WORDS])
{
    w[0] = ev->seq;
    w[1] = ev->time_ms;
    w[2] = ev->sku;
    w[3] = ev->order;
    w[4] = ev->value;
    w[5] = (uint64_t)ev->type | (uint64_t)ev->state << 8 | (uint64_t)ev->location << 16;
}

static void slot_unpack(const uint64_t w[SLOT_WORDS], eng_event_t *ev)
{
    *ev = (eng_event_t){
        .seq = w[0],
        .time_ms = w[1],
        .sku = w[2],
        .order = w[3],
        .value = w[4],
        .type = (uint8_t)w[5],
        .state = (uint8_t)(w[5] >> 8),
        .location = (uint16_t)(w[5] >> 16),
    };
}

static void set_oldest(events_t *h, uint64_t seq)
{
    if (seq <= h->oldest)
        return;
    h->oldest = seq;
    atomic_store_explicit(&h->oldest_seq, seq, memory_order_relaxed);
}

static void events_append(void *ctx, const eng_event_t *ev)
{
    events_t *h = ctx;
    uint64_t pos = h->next;
    slot_t *s = &h->ring[pos % h->cap];
    /* events come in the order of the records that caused them */
    VERIFY(ev->seq >= h->mark);
    if (pos >= h->cap) {
        /* the event this slot held is dropped: from now on a subscription
         * must start after its sequence number */
        uint64_t dropped = atomic_load_explicit(&s->w[0], memory_order_relaxed);
        set_oldest(h, dropped + 1);
    }
    /* Release: a reader that sees the claim also sees the oldest_seq that
     * goes with it. The fence orders the claim before the slot's words. */
    atomic_store_explicit(&h->claimed, pos + 1, memory_order_release);
    atomic_thread_fence(memory_order_release);
    uint64_t w[SLOT_WORDS];
    slot_pack(ev, w);
    for (unsigned i = 0; i < SLOT_WORDS; i++)
        atomic_store_explicit(&s->w[i], w[i], memory_order_relaxed);
    h->next = pos + 1;
    if (ev->seq > h->mark) {
        h->mark = ev->seq;
        atomic_store_explicit(&h->mark_seq, ev->seq, memory_order_relaxed);
    }
    atomic_store_explicit(&h->head, pos + 1, memory_order_release);
}

eng_event_sink_t events_sink(events_t *h)
{
    return (eng_event_sink_t){.event = events_append, .ctx = h};
}

void events_recovered(events_t *h, uint64_t snapshot_seq, uint64_t last_seq)
{
    set_oldest(h, snapshot_seq + 1);
    if (last_seq > h->mark) {
        h->mark = last_seq;
        atomic_store_explicit(&h->mark_seq, last_seq, memory_order_relaxed);
    }
    atomic_store_explicit(&h->settled_seq, h->mark, memory_order_release);
    h->flushed = h->next;
}

int events_add_waiter(events_t *h, int efd)
{
    unsigned n = atomic_load_explicit(&h->waiters_n, memory_order_relaxed);
    if (n == THREADS_MAX)
        return -ENOSPC;
    h->waiters[n] = efd;
    /* release: the writer that sees the count sees the fd */
    atomic_store_explicit(&h->waiters_n, n + 1, memory_order_release);
    return 0;
}

void events_flush(events_t *h, uint64_t seq)
{
    /* Between batches no record is half applied: every event of every
     * record up to seq is in. */
    atomic_store_explicit(&h->settled_seq, seq > h->mark ? seq : h->mark,
                          memory_order_release);
    if (h->flushed == h->next)
        return;
    h->flushed = h->next;
    uint64_t one = 1;
    unsigned n = atomic_load_explicit(&h->waiters_n, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        /* EAGAIN: the counter is already set and the reader will wake */
        if (write(h->waiters[i], &one, sizeof one) < 0 && errno != EAGAIN)
            log_error("events: eventfd write: %s", strerror(errno));
}

uint64_t events_appended(const events_t *h) { return h->next; }

/* ---- readers ----------------------------------------------------------------- */

uint64_t events_head(const events_t *h)
{
    return atomic_load_explicit(&h->head, memory_order_acquire);
}

uint32_t events_retain(const events_t *h) { return h->cap; }

uint64_t events_settled(const events_t *h)
{
    return atomic_load_explicit(&h->settled_seq, memory_order_acquire);
}

uint64_t events_oldest_seq(const events_t *h)
{
    return atomic_load_explicit(&h->oldest_seq, memory_order_acquire);
}

int events_read(const events_t *h, uint64_t pos, eng_event_t *ev)
{
    if (pos >= atomic_load_explicit(&h->head, memory_order_acquire))
        return -EAGAIN;
    const slot_t *s = &h->ring[pos % h->cap];
    uint64_t w[SLOT_WORDS];
    for (unsigned i = 0; i < SLOT_WORDS; i++)
        w[i] = atomic_load_explicit(&s->w[i], memory_order_relaxed);
    /* Pairs with the writer's release fence: if any word came from a later
     * use of the slot, its claim is visible now. */
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&h->claimed, memory_order_relaxed) > pos + h->cap)
        return -ESTALE;
    slot_unpack(w, ev);
    return 0;
}

/* First position in [lo, hi) whose event has seq >= want (hi if none).
 * -ESTALE when a probe was overwritten. */
static int search(const events_t *h, uint64_t lo, uint64_t hi, uint64_t want, uint64_t *out)
{
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        eng_event_t ev;
        int rc = events_read(h, mid, &ev);
        if (rc != 0)
            return -ESTALE; /* hi <= head: only an overwrite fails */
        if (ev.seq >= want)
            hi = mid;
        else
            lo = mid + 1;
    }
    *out = lo;
    return 0;
}

/* The lowest position still readable: claimed - cap, or 0. */
static uint64_t readable_from(const events_t *h)
{
    uint64_t claimed = atomic_load_explicit(&h->claimed, memory_order_acquire);
    return claimed > h->cap ? claimed - h->cap : 0;
}

/* From now on: after every record applied so far (settled) and every event
 * appended so far (mark_seq, read after head, so it covers the event at
 * pos - 1 or a later one). Events at or after pos with a smaller seq are
 * skipped by start_seq, so that the subscription is exactly "seq >=
 * start_seq", which is what a reconnecting subscriber asks for again. */
static void subscribe_now(const events_t *h, events_start_t *out)
{
    uint64_t settled = events_settled(h);
    out->pos = events_head(h);
    uint64_t mark = atomic_load_explicit(&h->mark_seq, memory_order_acquire);
    out->start_seq = (mark > settled ? mark : settled) + 1;
    uint64_t oldest = events_oldest_seq(h);
    if (out->start_seq < oldest)
        out->start_seq = oldest;
    out->oldest_seq = oldest;
    out->result = ALLOT_OK;
}

void events_subscribe(const events_t *h, uint64_t from_seq, events_start_t *out)
{
    if (from_seq == 0) {
        subscribe_now(h, out);
        return;
    }
    for (unsigned tries = 0; tries < SUBSCRIBE_TRIES; tries++) {
        uint64_t lo = readable_from(h); /* acquire: oldest_seq is as new */
        uint64_t oldest = events_oldest_seq(h);
        *out = (events_start_t){.result = ALLOT_TOO_OLD, .oldest_seq = oldest};
        if (from_seq < oldest)
            return;
        uint64_t pos;
        if (search(h, lo, events_head(h), from_seq, &pos) != 0)
            continue;
        /* Positions below lo were dropped before we looked: their sequence
         * numbers are all below oldest <= from_seq, so none is wanted. */
        *out = (events_start_t){
            .result = ALLOT_OK, .pos = pos, .start_seq = from_seq, .oldest_seq = oldest};
        return;
    }
    /* the writer lapped the ring on every try: far too fast to follow */
    out->oldest_seq = events_oldest_seq(h);
}

uint64_t events_limit(const events_t *h, uint64_t pos, uint64_t seq)
{
    uint64_t hi = events_head(h), lo = pos, lim;
    uint64_t readable = readable_from(h);
    if (lo < readable)
        lo = readable;
    if (lo >= hi)
        return hi;
    if (seq == UINT64_MAX || search(h, lo, hi, seq + 1, &lim) != 0)
        return hi;
    return lim;
}
