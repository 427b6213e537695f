/*
 * The event hub: the server's memory of recent events, for subscribers.
 *
 * One writer, many readers, no locks. The engine's owner thread (the
 * executor, or the network thread in inline mode) appends every event the
 * engine derives through the engine's event sink, live and while recovery
 * replays the journal; network threads read them for their subscribers.
 * The ring keeps the last `retain` events; the writer never waits for a
 * reader, so a reader that falls a whole ring behind finds its place
 * overwritten (events_read says so) and is told it lost events.
 *
 * Events are numbered by position (the n-th event appended, from 0); they
 * carry the sequence number of the record that caused them, in
 * non-decreasing order. Several events may share a sequence number and most
 * records cause none, so a position is not a sequence number: subscriptions
 * speak sequence numbers (events_subscribe turns one into a position).
 *
 * Publication, and why it is race-free: a slot is six atomic words written
 * and read with relaxed operations, guarded like a sequence lock by two
 * counters. The writer announces a slot it is about to reuse (`claimed`,
 * release) before touching it, writes it, then publishes it (`head`,
 * release). A reader checks the position is below `head` (acquire), copies
 * the words, and then (acquire fence) that `claimed` has not reached the
 * slot's next use; if it has, the copy may be torn and is thrown away.
 * Nothing is ever read without atomics, so ThreadSanitizer sees no race,
 * and appending costs a few plain stores on x86: no work when no events
 * happen, little when they do.
 */
#ifndef ALLOT_NET_EVENTS_H
#define ALLOT_NET_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct events events_t;

/* A ring of `retain` events (1..EVENTS_RETAIN), allocated here. 0,
 * -EINVAL, -ENOMEM. */
int events_init(events_t **out, uint32_t retain);
void events_deinit(events_t *h);

/* ---- the writer: the engine's owner thread -------------------------------- */

/* The sink to give engine_set_event_sink (and recovery). */
eng_event_sink_t events_sink(events_t *h);

/* After recovery: the events of records up to snapshot_seq were not
 * rebuilt (the snapshot holds state, not history), and every record up to
 * last_seq has been replayed. */
void events_recovered(events_t *h, uint64_t snapshot_seq, uint64_t last_seq);

/* Registers an eventfd to write when events_flush finds new events (at
 * most THREADS_MAX). One registering thread; the writer may be running.
 * 0, -ENOSPC. */
int events_add_waiter(events_t *h, int efd);

/* Call between batches (the executor's commit hook, before the journal's
 * commit) with the engine's sequence number: publishes that the events of
 * every record up to seq are in (events_settled), and wakes the waiters if
 * events were appended since the last call. Waiters are for servers
 * without a journal, whose readers are not woken by the journal's
 * progress. */
void events_flush(events_t *h, uint64_t seq);

/* Events appended since start (including recovery). Writer thread, or
 * after the writer stopped. */
uint64_t events_appended(const events_t *h);

/* ---- readers: any thread --------------------------------------------------- */

/* Position of the next event to be appended (acquire). */
uint64_t events_head(const events_t *h);

/* The ring's size. */
uint32_t events_retain(const events_t *h);

/* Every event with a sequence number up to this one has been appended:
 * the engine's at the last events_flush. A reader delivers no event
 * above it, so that it never stops in the middle of a record's events.
 * (An event whose record is durable is settled too: the journal's commit
 * comes after events_flush.) */
uint64_t events_settled(const events_t *h);

/* Lowest from_seq a subscription can start at: every event with a
 * sequence number at or above it is still in the ring (or yet to come). */
uint64_t events_oldest_seq(const events_t *h);

/* Copies event number pos into ev. 0; -EAGAIN when it has not been
 * appended yet; -ESTALE when it was overwritten (the reader lost it). */
int events_read(const events_t *h, uint64_t pos, eng_event_t *ev);

/* Where a subscription starts. */
typedef struct events_start {
    uint8_t result;      /* ALLOT_OK or ALLOT_TOO_OLD */
    uint64_t pos;        /* first position to read */
    uint64_t start_seq;  /* events below this sequence number are skipped */
    uint64_t oldest_seq; /* events_oldest_seq at the time */
} events_start_t;

/* from_seq 0: from now on (start_seq is one past the last record applied
 * and the newest event, so a reconnecting subscriber that asks for it gets
 * exactly what followed). Otherwise every retained event with seq >=
 * from_seq, or TOO_OLD when some of them were dropped. The subscription is
 * then: the events at positions from pos on whose seq is >= start_seq. */
void events_subscribe(const events_t *h, uint64_t from_seq, events_start_t *out);

/* First position at or after pos whose event's seq is above seq, at most
 * head: how far a reader limited to sequence numbers <= seq (the journal's
 * durable one) could go. Overwritten positions count as passable. */
uint64_t events_limit(const events_t *h, uint64_t pos, uint64_t seq);

#endif
