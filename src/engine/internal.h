/*
 * Engine internals shared by its files: the tables and their helpers.
 * Nothing outside src/engine includes this.
 */
#ifndef ALLOT_ENGINE_INTERNAL_H
#define ALLOT_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/limits.h"
#include "common/verify.h"
#include "engine/engine.h"

#define NONE32 UINT32_MAX

/* Zeroed table memory (huge pages, prefaulted when asked), and its free. */
void *table_alloc(size_t n, size_t size, bool prefault);
void table_free(void *ptr);

/* ---- inventory: sharded open addressing, one cache line per SKU ---------
 * SKUs are never deleted, so a slot's address is stable for the life of the
 * engine: waitlists and location tables can point at it. */
typedef struct sku_slot {
    uint64_t sku; /* 0 = empty */
    uint64_t on_hand;   /* all locations */
    uint64_t allocated; /* all locations */
    uint32_t limit;
    uint32_t reorder_point;
    uint64_t backorder_units;  /* units the queue waits for */
    uint32_t backorder_orders; /* waiting lines in the queue (one per order) */
    uint32_t bo_head;          /* wait node, NONE32 when the queue is empty */
    uint32_t bo_tail;
    uint32_t locs;     /* location block + 1; 0 = everything at location 0 */
    uint16_t prio0;    /* location 0's priority while it has no block */
    uint16_t pad16;    /* SKU_PENDING; not state: derived from the rest */
    uint32_t pad32;
} __attribute__((aligned(64))) sku_slot_t;

_Static_assert(sizeof(sku_slot_t) == 64, "one SKU per cache line");

typedef struct inv {
    sku_slot_t *slots;    /* shards * shard_cap */
    uint32_t shard_bits;  /* shards = 1 << shard_bits */
    uint32_t shard_cap;   /* slots per shard */
    uint32_t shard_fill_max; /* refuse inserts into a shard this full */
    uint32_t *shard_count;
    uint64_t count;
    uint64_t count_max;
} inv_t;

int inv_init(inv_t *t, uint32_t skus_max, uint32_t shards, bool prefault);
void inv_deinit(inv_t *t);

static inline uint64_t hash_u64(uint64_t v) { return XXH3_64bits(&v, sizeof v); }

static inline sku_slot_t *inv_home(const inv_t *t, uint64_t h)
{
    uint64_t shard = t->shard_bits ? h >> (64 - t->shard_bits) : 0;
    uint64_t pos = ((h & 0xffffffffu) * t->shard_cap) >> 32;
    return &t->slots[shard * t->shard_cap + pos];
}

/* Finds sku (hash h); NULL when absent. */
sku_slot_t *inv_find(const inv_t *t, uint64_t sku, uint64_t h);
/* Finds or inserts; NULL when the table (or the shard) is full. */
sku_slot_t *inv_upsert(inv_t *t, uint64_t sku, uint64_t h, bool *created);

/* ---- orders: a record slab, an id index, a line pool, a deadline heap ---- */

typedef struct order_rec {
    uint64_t id;
    uint64_t customer;
    uint64_t placed_ms;
    uint64_t deadline_ms; /* hold deadline while HELD; 0 = none */
    uint64_t content_hash;
    uint64_t limit_mask;  /* lines whose units count toward a limit */
    uint32_t line_ref;    /* first line in the pool; next free when free */
    uint32_t heap_gen;    /* stamps this order's one live heap entry */
    uint8_t state;
    uint8_t policy;
    uint8_t line_count;
    uint8_t hold_flags;   /* ORDER_CONFIRMED_EARLY */
    uint32_t hold_ms;     /* BACKORDER: the hold that starts once complete */
} order_rec_t;

#define ORDER_CONFIRMED_EARLY ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE
/* Some line of the order has a split. Derived, not state (the digest and
 * snapshots leave it out): it spares the common order the lookups in the
 * split array when it is released or retired. */
#define ORDER_SPLIT 0x02u
#define ORDER_FLAGS_STATE ORDER_CONFIRMED_EARLY

_Static_assert(sizeof(order_rec_t) == 64, "one order per cache line");

/* A hold in the deadline heap. Entries are never removed when an order
 * stops being HELD or gets a new deadline: they go stale, and are dropped
 * when they reach the top or when the heap is compacted. That keeps
 * CONFIRM and CANCEL away from the heap entirely. */
typedef struct heap_ent {
    uint64_t deadline_ms;
    uint64_t id;
    uint32_t rec;
    uint32_t gen; /* live only while it equals the record's heap_gen */
} heap_ent_t;

typedef struct order_slot {
    uint64_t id; /* 0 = empty */
    uint32_t rec;
    uint32_t pad;
} order_slot_t;

typedef struct retire_ent {
    uint64_t terminal_ms;
    uint64_t id; /* so that the next victims can be prefetched */
    uint32_t rec;
    uint32_t pad;
} retire_ent_t;

#define LINE_CLASSES 7 /* blocks of 1, 2, 4 ... 64 lines */
_Static_assert((1u << (LINE_CLASSES - 1)) == ALLOT_LINES_MAX, "line classes");

typedef struct orders {
    order_rec_t *recs;
    uint32_t recs_max;
    uint32_t recs_top;   /* never-used records start here */
    uint32_t free_rec;   /* free list through line_ref */
    uint32_t count;      /* records in use */
    uint32_t live;       /* HELD, CONFIRMED or BACKORDERED */

    order_slot_t *index;
    uint64_t index_mask; /* index size - 1, power of two */

    eng_line_t *lines;
    uint32_t lines_max;
    uint32_t lines_top;
    uint32_t lines_used;
    uint32_t free_block[LINE_CLASSES];
    uint8_t *free_order; /* per line: size class of a free block starting here */

    struct heap_ent *heap; /* min-heap on (deadline, id); may hold stale entries */
    uint32_t heap_len, heap_cap;

    retire_ent_t *ring; /* terminal orders, oldest first */
    uint32_t ring_cap, ring_head, ring_len;

    /* Per line, parallel to lines[]: its location split (NONE32 = every
     * unit from location 0) and its wait node (NONE32 = not waiting). */
    uint32_t *line_split;
    uint32_t *line_wait;
} orders_t;

int orders_init(orders_t *o, uint32_t orders_max, uint32_t lines_max, uint32_t retain_max,
                bool prefault);
void orders_deinit(orders_t *o);

/* Index position of id: its slot when present (*found), else the empty slot
 * where it would go. */
uint64_t orders_probe(const orders_t *o, uint64_t id, uint64_t h, bool *found);
static inline order_rec_t *orders_find(const orders_t *o, uint64_t id, uint64_t h)
{
    bool found;
    uint64_t pos = orders_probe(o, id, h, &found);
    return found ? &o->recs[o->index[pos].rec] : NULL;
}
/* true when a new order with n lines fits (record, lines and index room). */
bool orders_has_room(const orders_t *o, uint32_t n);
/* Takes a record and a line block; the caller checked room. */
order_rec_t *orders_insert(orders_t *o, uint64_t pos, uint64_t id, uint32_t n);
/* Removes a terminal order from the index and frees it. */
void orders_remove(orders_t *o, order_rec_t *r);
static inline uint32_t orders_rec_index(const orders_t *o, const order_rec_t *r)
{
    return (uint32_t)(r - o->recs);
}
static inline eng_line_t *orders_lines(const orders_t *o, const order_rec_t *r)
{
    return &o->lines[r->line_ref];
}

/* Adds r (HELD) with its current deadline. */
void heap_push(orders_t *o, order_rec_t *r);
/* The HELD order with the earliest (deadline, id), dropping stale entries
 * on the way; NULL when none. */
order_rec_t *heap_first(orders_t *o);
/* Removes the top entry (after heap_first returned it). */
void heap_pop(orders_t *o);
/* ---- locations, splits and waitlists (stock.c) ---------------------------
 * A SKU stocked anywhere but location 0 alone gets a block: its locations
 * sorted by (priority desc, id asc), the order allocation walks them in. */
typedef struct loc_block {
    uint64_t on_hand[ALLOT_LOCATIONS_MAX];
    uint64_t allocated[ALLOT_LOCATIONS_MAX];
    uint16_t id[ALLOT_LOCATIONS_MAX];
    uint16_t prio[ALLOT_LOCATIONS_MAX];
    uint32_t n;
} loc_block_t;

/* Where an order line's units sit, when not all at location 0. */
typedef struct split {
    uint32_t units[ALLOT_LOCATIONS_MAX];
    uint16_t loc[ALLOT_LOCATIONS_MAX];
    uint32_t n; /* next free split while free */
} split_t;

/* A waiting order line in its SKU's FIFO queue. */
typedef struct wait_node {
    uint32_t rec;
    uint32_t next; /* next free node while free */
    uint32_t prev;
    uint8_t line;
    uint8_t pad[3];
} wait_node_t;

typedef struct stock {
    loc_block_t *blocks;
    uint32_t blocks_max, blocks_used;
    split_t *splits;
    uint32_t splits_max, splits_top, splits_used, splits_free;
    wait_node_t *nodes;
    uint32_t nodes_max, nodes_top, nodes_used, nodes_free;
    /* SKUs whose returned stock waits for a drain step (slot indices). */
    uint32_t *pend, *pend_tmp;
    uint32_t pend_cap, pend_head, pend_len;
} stock_t;

#define SKU_PENDING 0x1u /* sku_slot_t.pad16: in the pending ring */

int stock_init(stock_t *st, uint32_t blocks_max, uint32_t splits_max, uint32_t nodes_max);
void stock_deinit(stock_t *st);

struct engine;
/* A SKU's locations in allocation order (an unblocked SKU has location 0
 * alone). Returns how many. */
uint32_t stock_locations(const struct engine *e, const sku_slot_t *s,
                         eng_loc_view_t out[ALLOT_LOCATIONS_MAX]);
/* Available units at one location (0 when the SKU has no such location). */
uint64_t stock_loc_available(const struct engine *e, const sku_slot_t *s, uint16_t id);
/* The most units one location can give. */
uint64_t stock_single_max(const struct engine *e, const sku_slot_t *s);
/* Whether location id exists or can be added (8 per SKU, blocks left). */
bool stock_loc_room(const struct engine *e, const sku_slot_t *s, uint16_t id);
/* Location counters; each creates the location (priority 0) when new, after
 * stock_loc_room said it may, and keeps the SKU's totals. */
void stock_loc_add(struct engine *e, sku_slot_t *s, uint16_t id, uint64_t units);
void stock_loc_sub(struct engine *e, sku_slot_t *s, uint16_t id, uint64_t units);
void stock_loc_set(struct engine *e, sku_slot_t *s, uint16_t id, uint64_t on_hand,
                   uint16_t priority);
/* Where want units of a line should come from (see docs/design.md): one
 * location that fills it whole, else priority order. Changes nothing. */
uint32_t stock_plan(const struct engine *e, const sku_slot_t *s, uint8_t line, uint64_t want,
                    bool single, eng_alloc_t *out);
/* Whether the allocations a[0..n) of one SKU fit its locations now. */
bool stock_fits(const struct engine *e, const sku_slot_t *s, const eng_alloc_t *a, uint32_t n);
/* Takes them (allocated += units per location and in total) and records
 * them in the split of global line gl. Returns whether the line has a
 * split. */
bool stock_take(struct engine *e, sku_slot_t *s, uint32_t gl, uint32_t before,
                const eng_alloc_t *a, uint32_t n);
/* Gives back everything global line gl holds; shipped units also leave
 * on_hand. may_split false: the line has no split (ORDER_SPLIT unset). */
void stock_give(struct engine *e, sku_slot_t *s, uint32_t gl, uint32_t allocated, bool shipped,
                bool may_split);
/* The allocations of global line gl (index line of its order). */
uint32_t stock_line_allocs(const struct engine *e, uint32_t gl, uint8_t line,
                           uint32_t allocated, eng_alloc_t *out);
/* Whether a line needing a split could get one. */
bool stock_split_room(const struct engine *e, uint32_t n);
void stock_split_free(struct engine *e, uint32_t gl);
/* Gives global line gl a split now (with its allocated units at location
 * 0), so that later fills never need one: a waiting line's. */
void stock_split_reserve(struct engine *e, uint32_t gl, uint32_t allocated);

/* Snapshot loading: false when the entry does not fit or repeats. */
bool stock_split_put(struct engine *e, uint32_t gl, uint16_t loc, uint32_t units);
bool stock_block_load(struct engine *e, sku_slot_t *s, const eng_loc_view_t *locs, uint32_t n);

/* Stock came back to s: its queue gets it at the next drain step
 * (engine.c). */
void drain_mark(struct engine *e, sku_slot_t *s);

/* Waitlists. */
bool stock_wait_room(const struct engine *e, const sku_slot_t *s);
void stock_wait_push(struct engine *e, sku_slot_t *s, uint32_t rec, uint8_t line,
                     uint64_t units);
/* Takes global line gl out of its SKU's queue; units it still waited for. */
void stock_wait_remove(struct engine *e, sku_slot_t *s, uint32_t gl, uint64_t units);
/* 1-based place of global line gl in its queue. */
uint32_t stock_wait_place(const struct engine *e, const sku_slot_t *s, uint32_t gl);

/* ---- per-customer limit counts ------------------------------------------ */

typedef struct limit_slot {
    uint64_t customer;
    uint64_t sku; /* 0 = empty */
    uint64_t units;
} limit_slot_t;

typedef struct limits {
    limit_slot_t *slots;
    uint64_t mask;
    uint32_t count;
    uint32_t count_max;
} limits_t;

static inline uint64_t limit_hash(uint64_t customer, uint64_t sku)
{
    uint64_t key[2] = {customer, sku};
    return XXH3_64bits(key, sizeof key);
}
static inline const limit_slot_t *limits_home(const limits_t *l, uint64_t customer,
                                              uint64_t sku)
{
    return &l->slots[limit_hash(customer, sku) & l->mask];
}

int limits_init(limits_t *l, uint32_t limits_max, bool prefault);
void limits_deinit(limits_t *l);
uint64_t limits_get(const limits_t *l, uint64_t customer, uint64_t sku);
/* Adds units; false (nothing changed) when a new entry would not fit. */
bool limits_add(limits_t *l, uint64_t customer, uint64_t sku, uint64_t units);
/* Subtracts units (the entry must hold them); drops the entry at zero. */
void limits_sub(limits_t *l, uint64_t customer, uint64_t sku, uint64_t units);

/* ---- the engine ---------------------------------------------------------- */

struct engine {
    engine_config_t cfg;
    inv_t inv;
    orders_t orders;
    limits_t limits;
    stock_t stock;
    eng_sink_t sink;
    eng_event_sink_t events;
    bool replaying; /* journaled effects only: no fills of their own */
    uint64_t seq;
    uint64_t now_ms;
    uint64_t holds_expired;
};

/* Canonical little-endian encodings of table entries, shared by the state
 * digest and snapshots (digest.c): a snapshot loads back to the digest the
 * engine had because both read the same bytes. */
#define CANON_SKU 48u
#define CANON_LOC 24u
#define CANON_ORDER 64u
#define CANON_LINE 16u
#define CANON_SPLIT 8u
#define CANON_WAIT 24u
void canon_sku(uint8_t out[CANON_SKU], const struct engine *e, const sku_slot_t *s);
/* Location i of s's block. */
void canon_loc(uint8_t out[CANON_LOC], const struct engine *e, const sku_slot_t *s, uint32_t i);
/* splits: entries of the order's lines that have a split (canon_splits). */
void canon_order_head(uint8_t out[CANON_ORDER], const order_rec_t *r, uint32_t splits);
void canon_line(uint8_t out[CANON_LINE], const eng_line_t *l);
/* The split entries of r's lines that have one, into out (room for
 * ENG_ALLOCS_MAX): line, location, units. Returns how many. */
uint32_t canon_splits(const struct engine *e, const order_rec_t *r, eng_alloc_t *out);
void canon_split(uint8_t out[CANON_SPLIT], const eng_alloc_t *a);
/* A waiting line: sku, order, line. */
void canon_wait(uint8_t out[CANON_WAIT], uint64_t sku, uint64_t order, uint8_t line);
static inline uint32_t sku_loc_count(const struct engine *e, const sku_slot_t *s);

static inline uint32_t sku_loc_count(const struct engine *e, const sku_slot_t *s)
{
    return s->locs ? e->stock.blocks[s->locs - 1].n : 0;
}

static inline bool state_is_live(uint8_t s)
{
    return s == ALLOT_STATE_HELD || s == ALLOT_STATE_CONFIRMED ||
           s == ALLOT_STATE_BACKORDERED;
}
static inline bool state_is_terminal(uint8_t s)
{
    return s == ALLOT_STATE_FULFILLED || s == ALLOT_STATE_CANCELLED ||
           s == ALLOT_STATE_EXPIRED;
}

#endif
