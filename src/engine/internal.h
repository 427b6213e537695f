/*
 * Engine internals shared by its files: the tables and their helpers.
 * Nothing outside src/engine includes this.
 */
#ifndef ALLOT_ENGINE_INTERNAL_H
#define ALLOT_ENGINE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/limits.h"
#include "common/verify.h"
#include "engine/engine.h"

#define NONE32 UINT32_MAX

/* ---- inventory: sharded open addressing, one cache line per SKU ---------
 * SKUs are never deleted, so a slot's address is stable for the life of the
 * engine: waitlists and location tables can point at it. */
typedef struct sku_slot {
    uint64_t sku; /* 0 = empty */
    uint64_t on_hand;
    uint64_t allocated;
    uint32_t limit;
    uint32_t reorder_point;
    uint64_t backorder_units; /* room for the waitlist */
    uint32_t backorder_orders;
    uint32_t backorder_head;
    uint32_t locations; /* room for out-of-line locations */
    uint32_t reserved;
    uint64_t pad;
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
    uint8_t hold_flags;
    uint32_t reserved;
} order_rec_t;

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
    uint32_t live;       /* HELD or CONFIRMED (BACKORDERED later) */

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
    eng_sink_t sink;
    uint64_t seq;
    uint64_t now_ms;
    uint64_t holds_expired;
};

/* Canonical little-endian encodings of table entries, shared by the state
 * digest and snapshots (digest.c): a snapshot loads back to the digest the
 * engine had because both read the same bytes. */
#define CANON_SKU 48u
#define CANON_ORDER 56u
#define CANON_LINE 16u
void canon_sku(uint8_t out[CANON_SKU], const sku_slot_t *s);
void canon_order_head(uint8_t out[CANON_ORDER], const order_rec_t *r);
void canon_line(uint8_t out[CANON_LINE], const eng_line_t *l);

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
