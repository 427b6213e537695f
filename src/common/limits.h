/*
 * Every fixed limit of allot in one place. Wire limits live in the public
 * protocol header; the ones here bound the server's own tables and queues.
 * The _Static_asserts at the bottom tie them together.
 */
#ifndef ALLOT_LIMITS_H
#define ALLOT_LIMITS_H

#include <allot/protocol.h>

/* Units: on_hand, allocated and every amount stay below 2^53 so that they
 * survive a round trip through JSON doubles in the tools. */
#define UNITS_MAX ((UINT64_C(1) << 53) - 1)

/* Engine tables: defaults and hard ceilings (capacity is fixed at start). */
#define SKUS_MAX_DEFAULT (1u << 20)
#define SKUS_MAX_CEILING (1u << 28)
#define ORDERS_MAX_DEFAULT (1u << 20)
#define ORDERS_MAX_CEILING (1u << 28)
#define LIMITS_MAX_DEFAULT (1u << 20)
#define LIMITS_MAX_CEILING (1u << 28)
#define SHARDS_DEFAULT 64u
#define SHARDS_MAX 4096u

/* Terminal orders kept for idempotent retries: by count and by age. */
#define RETAIN_MAX_DEFAULT (1u << 18)
#define RETAIN_MS_DEFAULT (60u * 60u * 1000u)

/* Holds: the longest a hold may last from placement. */
#define HOLD_MAX_MS_DEFAULT (30u * 60u * 1000u)

/* Locations: SKUs with stock anywhere but location 0 alone get an
 * out-of-line block of ALLOT_LOCATIONS_MAX counters (so that 10 M
 * single-location SKUs stay one cache line each); order lines allocated
 * from such SKUs get an out-of-line split. Both tables are fixed at start. */
#define LOC_SKUS_MAX_DEFAULT (1u << 16)
#define LOC_SKUS_MAX_CEILING (1u << 24)
#define SPLITS_MAX_CEILING (1u << 26)

/* Backorders: order lines waiting for stock, across all SKUs, and in one
 * SKU's queue (a longer queue answers CAPACITY). */
#define WAITING_MAX_DEFAULT (1u << 18)
#define WAITING_MAX_CEILING (1u << 26)
#define BACKORDER_QUEUE_MAX (1u << 16)
/* Waiting lines one drain step fills (the engine runs one before and one
 * after every batch, and one per expiry tick): bounds what a batch may
 * journal. */
#define DRAIN_PER_STEP_MAX 256u

/* Events kept in memory for subscribers that reconnect (older ones are
 * TOO_OLD), and a subscriber's unsent events before it is cut off. */
#define EVENTS_RETAIN (1u << 18)
#define SUBSCRIBER_BACKLOG_MAX (1u << 14)

/* Work done by one expire() step, so that a backlog of expiries never
 * stalls the engine for long. */
#define EXPIRE_PER_STEP_MAX 4096u

/* Engine batches: ops applied per engine_apply() call by the executor. */
#define ENGINE_BATCH_MAX ALLOT_BATCH_MAX

/* Server. */
#define CONNECTIONS_MAX_DEFAULT 16384u
#define CONNECTIONS_MAX_CEILING 65536u
#define THREADS_MAX 64u
#define CONN_OUT_PAUSE_BYTES (1u << 20) /* stop reading a client above this */

/* Network threads (src/net). */
#define NET_BUF_SIZE (16u * 1024u) /* one provided receive buffer */
#define NET_BUF_COUNT 512u         /* provided buffers per thread, power of two */
#define NET_BATCHES 8u             /* exec batches in flight per thread, power of two */
#define NET_SQ_ENTRIES 1024u
#define NET_CQ_ENTRIES (8u * NET_SQ_ENTRIES) /* completions outnumber submissions */
#define NET_TICK_MS 10u            /* hold expiry (inline executor), deadlines */
#define NET_DRAIN_MS 5000u         /* SIGTERM: longest wait for in-flight work */
#define NET_LINGER_MS 2000u        /* after an ERROR frame: wait for the peer to close */
#define NET_HELLO_MS 10000u        /* a connection must say HELLO within this */
/* A connection's input copy: a partial frame, plus what arrived while it
 * was paused. Reading stops at the first completion that finds it paused;
 * what the kernel had already received for it by then came in provided
 * buffers, so it is at most one buffer ring. */
#define CONN_IN_MAX (ALLOT_FRAME_MAX + NET_BUF_COUNT * NET_BUF_SIZE)
#define CONN_BUF_KEEP (64u * 1024u) /* a drained buffer larger than this is freed */

_Static_assert((SHARDS_DEFAULT & (SHARDS_DEFAULT - 1)) == 0, "shards: power of two");
_Static_assert((SHARDS_MAX & (SHARDS_MAX - 1)) == 0, "shards: power of two");
_Static_assert(ALLOT_LINES_MAX <= 64, "an order's lines fit a 64-bit mask");
_Static_assert((NET_BUF_COUNT & (NET_BUF_COUNT - 1)) == 0, "buffer ring: power of two");
_Static_assert((NET_BATCHES & (NET_BATCHES - 1)) == 0, "exec ring: power of two");
_Static_assert(CONN_IN_MAX >= ALLOT_FRAME_MAX + 2 * NET_BUF_SIZE,
               "a connection's input holds a whole frame and more");
_Static_assert(CONN_OUT_PAUSE_BYTES >= 2 * ALLOT_FRAME_MAX,
               "a paused connection can still hold a whole answer");
_Static_assert((uint64_t)UINT32_MAX * ALLOT_LINES_MAX < UNITS_MAX,
               "one order's units cannot overflow a counter");

#endif
