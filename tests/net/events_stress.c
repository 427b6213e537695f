/*
 * The event hub under a writer that laps a small ring while readers follow
 * it: every event a reader accepts must be whole (each field is derived
 * from the event's position, so a torn copy shows), in order, and where a
 * subscription said it would be; an overwritten position must be reported,
 * never read. Run in the TSan build too (label stress).
 *
 *   events_stress [retain]
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/events.h"

#define EVENTS_TOTAL 1000000u
#define READERS 2u
#define PER_SEQ 3u /* events per record: several share a sequence number */

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, "events_stress: " __VA_ARGS__);                        \
        fprintf(stderr, "\n");                                                 \
        exit(1);                                                               \
    } while (0)

static events_t *hub;
static _Atomic int writer_done;

static uint64_t seq_of(uint64_t pos) { return pos / PER_SEQ + 1; }

static eng_event_t event_at(uint64_t pos)
{
    return (eng_event_t){.seq = seq_of(pos),
                         .time_ms = pos * 7u + 1u,
                         .sku = pos * 0x9e3779b97f4a7c15ull,
                         .order = pos,
                         .value = ~pos,
                         .type = (uint8_t)(1u + pos % 5u),
                         .state = (uint8_t)(pos % 8u),
                         .location = (uint16_t)pos};
}

static void *writer(void *arg)
{
    (void)arg;
    eng_event_sink_t sink = events_sink(hub);
    for (uint64_t pos = 0; pos < EVENTS_TOTAL; pos++) {
        eng_event_t ev = event_at(pos);
        sink.event(sink.ctx, &ev);
        /* a batch ends between records; then the readers get a chance
         * (two cores, three threads) */
        if (pos % (PER_SEQ * 32u) == PER_SEQ * 32u - 1u) {
            events_flush(hub, seq_of(pos));
            sched_yield();
        }
    }
    events_flush(hub, seq_of(EVENTS_TOTAL - 1));
    atomic_store(&writer_done, 1);
    return NULL;
}

typedef struct stats {
    uint64_t read, stale, too_old, subscribes;
} stats_t;

static void check_event(const eng_event_t *ev, uint64_t pos)
{
    eng_event_t want = event_at(pos);
    if (memcmp(&want, ev, offsetof(eng_event_t, pad)) != 0)
        FAIL("position %llu: torn or wrong event (order %llu, seq %llu)",
             (unsigned long long)pos, (unsigned long long)ev->order,
             (unsigned long long)ev->seq);
}

/* Subscribes from from_seq and checks where it starts. Returns the
 * position, or UINT64_MAX for TOO_OLD. */
static uint64_t subscribe(uint64_t from_seq, stats_t *st)
{
    events_start_t s;
    events_subscribe(hub, from_seq, &s);
    st->subscribes++;
    if (s.result == ALLOT_TOO_OLD) {
        if (from_seq == 0 || from_seq >= s.oldest_seq)
            FAIL("TOO_OLD for from_seq %llu with oldest %llu", (unsigned long long)from_seq,
                 (unsigned long long)s.oldest_seq);
        st->too_old++;
        return UINT64_MAX;
    }
    if (s.result != ALLOT_OK)
        FAIL("subscribe result %u", s.result);
    if (from_seq != 0 && s.start_seq != from_seq)
        FAIL("start_seq %llu for from_seq %llu", (unsigned long long)s.start_seq,
             (unsigned long long)from_seq);
    /* nothing before pos is wanted (positions tell their seq) */
    if (from_seq != 0 && s.pos > 0 && seq_of(s.pos - 1) >= from_seq)
        FAIL("subscription from %llu starts after position %llu of seq %llu",
             (unsigned long long)from_seq, (unsigned long long)(s.pos - 1),
             (unsigned long long)seq_of(s.pos - 1));
    return s.pos;
}

static void *reader(void *arg)
{
    stats_t *st = arg;
    uint64_t pos = subscribe(0, st), last_seq = 0;
    while (!atomic_load(&writer_done) || pos < events_head(hub)) {
        eng_event_t ev;
        int rc = events_read(hub, pos, &ev);
        if (rc == -EAGAIN) {
            sched_yield();
            continue;
        }
        if (rc == -ESTALE) {
            /* lapped: resume from the last seq seen, as a client would */
            st->stale++;
            uint64_t from = last_seq ? last_seq : 1;
            uint64_t p = subscribe(from, st);
            pos = p != UINT64_MAX ? p : subscribe(events_oldest_seq(hub), st);
            if (pos == UINT64_MAX)
                pos = subscribe(0, st);
            continue;
        }
        if (rc != 0)
            FAIL("read rc %d", rc);
        check_event(&ev, pos);
        if (ev.seq < last_seq)
            FAIL("seq went back from %llu to %llu", (unsigned long long)last_seq,
                 (unsigned long long)ev.seq);
        last_seq = ev.seq;
        st->read++;
        pos++;
        /* now and then: the limit of a reader stopped by durability */
        if (st->read % 4096u == 0) {
            uint64_t head = events_head(hub);
            uint64_t lim = events_limit(hub, pos, ev.seq);
            if (lim < pos)
                FAIL("limit %llu below position %llu", (unsigned long long)lim,
                     (unsigned long long)pos);
            /* (a limit at or past the head it saw says "all of them") */
            if (lim < head && events_read(hub, lim, &ev) == 0 && ev.seq <= last_seq)
                FAIL("limit %llu holds seq %llu <= %llu", (unsigned long long)lim,
                     (unsigned long long)ev.seq, (unsigned long long)last_seq);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    uint32_t retain = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 64u;
    if (events_init(&hub, retain) != 0)
        FAIL("events_init(%u)", retain);
    pthread_t w, r[READERS];
    stats_t st[READERS];
    memset(st, 0, sizeof st);
    for (unsigned i = 0; i < READERS; i++)
        if (pthread_create(&r[i], NULL, reader, &st[i]) != 0)
            FAIL("pthread_create");
    if (pthread_create(&w, NULL, writer, NULL) != 0)
        FAIL("pthread_create");
    pthread_join(w, NULL);
    for (unsigned i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    if (events_appended(hub) != EVENTS_TOTAL || events_head(hub) != EVENTS_TOTAL)
        FAIL("appended %llu", (unsigned long long)events_appended(hub));
    uint64_t oldest = events_oldest_seq(hub);
    uint64_t want_oldest = retain < EVENTS_TOTAL ? seq_of(EVENTS_TOTAL - retain - 1) + 1 : 1;
    if (oldest != want_oldest)
        FAIL("oldest seq %llu, expected %llu", (unsigned long long)oldest,
             (unsigned long long)want_oldest);
    for (unsigned i = 0; i < READERS; i++)
        printf("reader %u: %llu events read, %llu times lapped, %llu TOO_OLD, %llu "
               "subscriptions\n",
               i, (unsigned long long)st[i].read, (unsigned long long)st[i].stale,
               (unsigned long long)st[i].too_old, (unsigned long long)st[i].subscribes);
    events_deinit(hub);
    printf("events_stress (ring of %u): passed\n", retain);
    return 0;
}
