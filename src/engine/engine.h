/*
 * The allocation engine: inventory, orders, holds, limits.
 *
 * A deterministic state machine. It does no I/O, reads no clock (time is an
 * argument) and is written by exactly one thread at a time: the executor
 * (src/engine/exec.h) is what makes it safe to drive from many threads, by
 * funnelling every operation through one owner thread. Because one thread
 * applies every mutation, the order in which mutations take effect is the
 * order in which they are numbered and journaled, by construction.
 *
 * Every mutation that changes state is reported, after it took effect, to
 * the record sink as an eng_record_t carrying its sequence number; the
 * journal writes exactly those records. Replaying them through
 * engine_replay() rebuilds the same state (same digest).
 */
#ifndef ALLOT_ENGINE_H
#define ALLOT_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <allot/protocol.h>

typedef struct engine engine_t;

typedef struct engine_config {
    uint32_t skus_max;     /* SKUs the table must hold */
    uint32_t shards;       /* power of two; 0 = SHARDS_DEFAULT */
    uint32_t orders_max;   /* orders in memory, all states */
    uint32_t lines_max;    /* order lines in memory; 0 = 4 * orders_max */
    uint32_t limits_max;   /* (customer, sku) limit counters */
    uint32_t retain_max;   /* terminal orders kept for retries */
    uint64_t retain_ms;    /* ... and for how long */
    uint64_t hold_max_ms;  /* longest hold, from placement */
    uint32_t loc_skus_max; /* SKUs whose stock sits anywhere but location 0 alone */
    uint32_t splits_max;   /* order lines allocated from anywhere but location 0 alone */
    uint32_t waiting_max;  /* order lines waiting in backorder queues, all SKUs */
    bool prefault;         /* touch every table page at init (servers) */
} engine_config_t;

/* Fills cfg with the defaults from limits.h for skus_max / orders_max. */
void engine_config_default(engine_config_t *cfg);

/* One order line. qty is the request; allocated is written by the engine
 * (PLACE results, ORDER_GET). */
typedef struct eng_line {
    uint64_t sku;
    uint32_t qty;
    uint32_t allocated;
} eng_line_t;

/* Units of one order line taken from one location. */
typedef struct eng_alloc {
    uint8_t line;      /* index of the line in its order */
    uint8_t pad;
    uint16_t location;
    uint32_t units;
} eng_alloc_t;

/* Most location allocations one order can carry: every line split across
 * every location of its SKU. */
#define ENG_ALLOCS_MAX (ALLOT_LINES_MAX * ALLOT_LOCATIONS_MAX)

/* ORDER_GET's answer beyond the lines: where each allocated unit sits and
 * each waiting line's place in its SKU's queue. */
typedef struct eng_order_detail {
    uint32_t queue_place[ALLOT_LINES_MAX]; /* 0 = not waiting, 1 = first in line */
    uint16_t alloc_count;                  /* allocs in line order */
    uint8_t order_flags;                   /* ALLOT_ORDER_FLAG_* */
    uint8_t pad;
    eng_alloc_t allocs[ENG_ALLOCS_MAX];
} eng_order_detail_t;

/* One location of a SKU (SKU_GET). */
typedef struct eng_loc_view {
    uint16_t location;
    uint16_t priority;
    uint32_t pad;
    uint64_t on_hand;
    uint64_t allocated;
} eng_loc_view_t;

/* One operation, in and out. The codec fills the inputs for its opcode,
 * engine_apply() fills result and the outputs. */
typedef struct eng_op {
    /* in */
    uint16_t opcode;      /* enum allot_opcode */
    uint8_t policy;       /* PLACE */
    uint8_t line_count;   /* PLACE in; ORDER_GET out */
    uint16_t place_flags; /* PLACE: ALLOT_PLACE_FLAG_* */
    uint16_t location;    /* SKU_SET/RESTOCK/ADJUST */
    uint16_t priority;    /* SKU_SET: of that location; higher is preferred */
    uint32_t ms;          /* PLACE: hold_ms; EXTEND: ms */
    uint32_t max_wait_ms; /* PLACE (BACKORDER) */
    uint32_t limit;       /* SKU_SET */
    uint32_t reorder_point; /* SKU_SET */
    uint64_t id;          /* order id, or sku for SKU ops */
    uint64_t customer;    /* PLACE */
    uint64_t amount;      /* SKU_SET on_hand, RESTOCK qty, ADJUST delta (i64) */
    eng_line_t *lines;    /* PLACE in/out; ORDER_GET out, room for LINES_MAX */
    eng_order_detail_t *detail; /* ORDER_GET out (may be NULL: not filled) */
    eng_loc_view_t *locs; /* SKU_GET out, room for ALLOT_LOCATIONS_MAX (may be NULL) */
    uint8_t bad_reserved; /* the codec saw a non-zero reserved field */

    /* out */
    uint8_t result;       /* enum allot_result */
    uint8_t state;        /* order ops: state after the op */
    uint8_t flags;        /* ALLOT_FLAG_REPLAY */
    uint8_t out_policy;   /* ORDER_GET */
    uint32_t out_limit;       /* SKU ops */
    uint32_t out_reorder_point;
    uint32_t out_backorder_orders;
    uint8_t out_loc_count;    /* SKU_GET: entries written to locs */
    uint64_t out_customer;    /* ORDER_GET */
    uint64_t out_placed_ms;   /* ORDER_GET */
    uint64_t out_deadline_ms; /* order ops: hold deadline, 0 = none */
    uint64_t out_on_hand;     /* SKU ops */
    uint64_t out_allocated;   /* SKU ops */
    uint64_t out_backorder_units;
    uint64_t seq;             /* last sequence number this op observed */
} eng_op_t;

/* ---- journal records ---------------------------------------------------- */

enum eng_record_type {
    REC_SKU_SET = 1,
    REC_RESTOCK = 2,
    REC_ADJUST = 3,
    REC_PLACE = 4,   /* an order stored: what was allocated */
    REC_CONFIRM = 5,
    REC_CANCEL = 6,
    REC_FULFILL = 7,
    REC_EXPIRE = 8,  /* a hold expired (the server's own mutation) */
    REC_RETIRE = 9,  /* terminal orders aged out of the retention window */
    REC_EXTEND = 10, /* a hold's deadline moved */
    REC_FILL = 11,   /* returning stock went to a waiting order line */
    REC_TYPE_COUNT = 12,
};

const char *eng_record_type_name(unsigned type);

/* What one mutation did. Points into engine memory: valid only during the
 * sink callback. */
typedef struct eng_record {
    uint64_t seq;
    uint64_t time_ms;
    uint16_t type;
    uint8_t policy;     /* PLACE */
    uint8_t line_count; /* PLACE */
    uint32_t limit;     /* SKU_SET */
    uint32_t reorder_point; /* SKU_SET */
    uint32_t count;     /* RETIRE: orders retired */
    uint64_t id;        /* sku (SKU_SET, RESTOCK, ADJUST) or order id */
    uint64_t customer;  /* PLACE */
    uint64_t amount;    /* SKU_SET on_hand, RESTOCK qty, ADJUST delta, FILL units */
    uint64_t deadline_ms; /* PLACE: hold or wait deadline; EXTEND; FILL: after it */
    uint64_t content_hash; /* PLACE: identifies the request for idempotency */
    const eng_line_t *lines; /* PLACE: requested and allocated */
    uint16_t location;  /* SKU_SET, RESTOCK, ADJUST */
    uint16_t priority;  /* SKU_SET */
    uint16_t place_flags; /* PLACE */
    uint16_t alloc_count; /* PLACE, FILL: entries in allocs */
    uint32_t hold_ms;   /* PLACE (BACKORDER): the hold that starts once complete */
    uint8_t line;       /* FILL: the order line filled */
    uint8_t state;      /* FILL: the order's state after it */
    uint8_t pad[2];
    /* PLACE, FILL: where the allocated units sit, in line order; empty when
     * every unit comes from location 0. */
    const eng_alloc_t *allocs;
} eng_record_t;

typedef struct eng_sink {
    void (*record)(void *ctx, const eng_record_t *rec);
    void *ctx;
} eng_sink_t;

/* ---- events ------------------------------------------------------------- */

/* Something a subscriber wants to know, caused by the record numbered seq.
 * Events are a pure function of the journal: the engine derives them both
 * live and when it replays records, so a restart rebuilds them. */
typedef struct eng_event {
    uint64_t seq;
    uint64_t time_ms;
    uint64_t sku;
    uint64_t order;    /* 0 for SKU events */
    uint64_t value;    /* see enum allot_event in protocol.h */
    uint8_t type;      /* enum allot_event */
    uint8_t state;     /* order events: the order's state after */
    uint16_t location; /* RESTOCKED */
    uint32_t pad;
} eng_event_t;

typedef struct eng_event_sink {
    void (*event)(void *ctx, const eng_event_t *ev);
    void *ctx;
} eng_event_sink_t;

/* ---- lifecycle ---------------------------------------------------------- */

/* 0, -EINVAL for a bad config, -ENOMEM. All memory is allocated here. */
int engine_init(engine_t **out, const engine_config_t *cfg);
void engine_deinit(engine_t *e);
void engine_set_sink(engine_t *e, const eng_sink_t *sink);
/* Events go here, live and during engine_replay(); NULL stops them. */
void engine_set_event_sink(engine_t *e, const eng_event_sink_t *sink);
/* The configuration in force, defaults filled in and caps applied. */
void engine_get_config(const engine_t *e, engine_config_t *out);

/* ---- operations --------------------------------------------------------- */

/* Applies ops[0..n) in order at time now_ms (clamped so that engine time
 * never goes backwards). Looks ahead to prefetch table slots. */
void engine_apply(engine_t *e, eng_op_t *ops, size_t n, uint64_t now_ms);

/* Answers the reads among ops[0..n) and gives every other op `result`
 * without applying it (the journal cannot take mutations now). Expires
 * nothing. */
void engine_refuse(engine_t *e, eng_op_t *ops, size_t n, uint8_t result);

/* Expires at most max holds whose deadline is <= now_ms and retires at most
 * max terminal orders older than the retention window. Returns the number of
 * holds expired. */
uint32_t engine_expire(engine_t *e, uint64_t now_ms, uint32_t max);

/* Earliest deadline of a HELD order, UINT64_MAX when nothing is held.
 * (Not const: it drops lapsed heap entries on the way, which changes no
 * state that matters.) */
uint64_t engine_next_deadline(engine_t *e);

/* ---- replay ------------------------------------------------------------- */

/* Applies one journal record. Checks that the record is legal at this point
 * (sequence follows, no oversell, state transition allowed, limits kept) and
 * returns 0, or -EILSEQ with a description in why (may be NULL). */
int engine_replay(engine_t *e, const eng_record_t *rec, char *why, size_t why_len);

/* Starts the cache misses engine_replay(rec) will take, one level of the
 * lookup chain per stage (0..REPLAY_PREFETCH_STAGES-1). A hint: run stage 0
 * several records ahead, and each later stage closer to the replay. */
#define REPLAY_PREFETCH_STAGES 4u
void engine_replay_prefetch(const engine_t *e, const eng_record_t *rec, unsigned stage);

/* ---- inspection --------------------------------------------------------- */

typedef struct eng_stats {
    uint64_t seq;
    uint64_t now_ms;
    uint64_t skus;
    uint64_t orders;
    uint64_t orders_live;
    uint64_t limit_entries;
    uint64_t holds_expired;
    uint64_t lines_used;
    uint64_t skus_max;
    uint64_t orders_max;
} eng_stats_t;

void engine_stats(const engine_t *e, eng_stats_t *out);

/* XXH3 digest of everything that decides future results; independent of
 * the shard count and of the history that led to the state. */
uint64_t engine_digest(const engine_t *e);

/* Full check of the invariants (0 <= allocated <= on_hand, allocations
 * equal live orders' lines, limit counts equal the orders' units). Slow:
 * for tests and tools. 0 or -EILSEQ with why filled. */
int engine_check(const engine_t *e, char *why, size_t why_len);

/* Visit every SKU / every order held in memory, in table order. */
typedef struct eng_sku_view {
    uint64_t sku;
    uint64_t on_hand;
    uint64_t allocated;
    uint32_t limit;
    uint32_t reorder_point;
    uint64_t backorder_units;
    uint32_t backorder_orders;
    uint8_t loc_count;
    eng_loc_view_t locs[ALLOT_LOCATIONS_MAX];
} eng_sku_view_t;

typedef struct eng_order_view {
    uint64_t id;
    uint64_t customer;
    uint64_t placed_ms;
    uint64_t deadline_ms;
    uint64_t terminal_ms;
    uint64_t content_hash;
    uint8_t state;
    uint8_t policy;
    uint8_t line_count;
    uint8_t order_flags; /* ALLOT_ORDER_FLAG_* */
    uint32_t hold_ms;
    const eng_line_t *lines;
    uint16_t alloc_count;
    const eng_alloc_t *allocs; /* valid during the callback */
} eng_order_view_t;

void engine_each_sku(const engine_t *e, void (*fn)(void *ctx, const eng_sku_view_t *v), void *ctx);
void engine_each_order(const engine_t *e, void (*fn)(void *ctx, const eng_order_view_t *v), void *ctx);

uint64_t engine_seq(const engine_t *e);
uint64_t engine_now(const engine_t *e);
/* Resume numbering and time after recovery. */
void engine_set_seq(engine_t *e, uint64_t seq);
void engine_set_now(engine_t *e, uint64_t now_ms);

#endif

/* ---- snapshots ---------------------------------------------------------- */

/* Streams the whole state (docs/journal.md, "Snapshot") to write(), which
 * returns 0 or -errno. Read-only on the engine. */
int engine_snapshot_write(const engine_t *e, int (*write)(void *ctx, const void *buf, size_t len),
                          void *ctx);
/* Loads a snapshot body (buf, len: checksum already verified by the caller)
 * into a fresh engine. 0, or -EILSEQ / -ENOSPC with why filled. */
int engine_snapshot_load(engine_t *e, const uint8_t *buf, size_t len, char *why, size_t why_len);
/* The sequence number a snapshot body covers, or 0 when it is not one. */
uint64_t engine_snapshot_seq(const uint8_t *buf, size_t len);
