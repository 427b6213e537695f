/*
 * Snapshot bodies: the engine's whole state in the canonical little-endian
 * encodings the digest uses, so that loading a snapshot gives the same
 * digest as the engine that wrote it. The file around the body (temp file,
 * checksum, rename) is the journal's business (src/journal/snapfile.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"

#define SNAP_MAGIC "ALLOTSNP"
#define SNAP_VERSION 1u
#define SNAP_HEAD 72u
#define SNAP_SKU CANON_SKU
#define SNAP_ORDER CANON_ORDER
#define SNAP_LINE CANON_LINE
#define SNAP_LIMIT 24u
#define SNAP_RING 16u
#define SNAP_BUF (64u * 1024u)

typedef struct writer {
    int (*write)(void *ctx, const void *buf, size_t len);
    void *ctx;
    uint8_t buf[SNAP_BUF];
    size_t used;
    int rc;
} writer_t;

static uint8_t *reserve(writer_t *w, size_t n)
{
    if (w->used + n > sizeof w->buf) {
        if (w->rc == 0)
            w->rc = w->write(w->ctx, w->buf, w->used);
        w->used = 0;
    }
    uint8_t *p = w->buf + w->used;
    w->used += n;
    return p;
}

static void put_sku(writer_t *w, const sku_slot_t *s) { canon_sku(reserve(w, SNAP_SKU), s); }

static void put_order(writer_t *w, const orders_t *o, const order_rec_t *r)
{
    canon_order_head(reserve(w, SNAP_ORDER), r);
    const eng_line_t *lines = orders_lines(o, r);
    for (uint32_t i = 0; i < r->line_count; i++)
        canon_line(reserve(w, SNAP_LINE), &lines[i]);
}

int engine_snapshot_write(const engine_t *e, int (*write)(void *ctx, const void *buf, size_t len),
                          void *ctx)
{
    static _Thread_local writer_t w;
    memset(&w, 0, offsetof(writer_t, buf));
    w.write = write;
    w.ctx = ctx;
    w.used = 0;
    const orders_t *o = &e->orders;
    uint8_t *h = reserve(&w, SNAP_HEAD);
    memcpy(h, SNAP_MAGIC, 8);
    allot_put_u32(h + 8, SNAP_VERSION);
    allot_put_u32(h + 12, 0);
    allot_put_u64(h + 16, e->seq);
    allot_put_u64(h + 24, e->now_ms);
    allot_put_u64(h + 32, e->holds_expired);
    allot_put_u64(h + 40, e->inv.count);
    allot_put_u64(h + 48, o->count);
    allot_put_u64(h + 56, e->limits.count);
    allot_put_u64(h + 64, o->ring_len);
    uint64_t nslots = ((uint64_t)1 << e->inv.shard_bits) * e->inv.shard_cap;
    for (uint64_t i = 0; i < nslots; i++)
        if (e->inv.slots[i].sku)
            put_sku(&w, &e->inv.slots[i]);
    for (uint64_t i = 0; i <= o->index_mask; i++)
        if (o->index[i].id)
            put_order(&w, o, &o->recs[o->index[i].rec]);
    for (uint64_t i = 0; i <= e->limits.mask; i++) {
        const limit_slot_t *s = &e->limits.slots[i];
        if (!s->sku)
            continue;
        uint8_t *b = reserve(&w, SNAP_LIMIT);
        allot_put_u64(b, s->customer);
        allot_put_u64(b + 8, s->sku);
        allot_put_u64(b + 16, s->units);
    }
    for (uint32_t k = 0; k < o->ring_len; k++) {
        const retire_ent_t *ent = &o->ring[(o->ring_head + k) % o->ring_cap];
        uint8_t *b = reserve(&w, SNAP_RING);
        allot_put_u64(b, o->recs[ent->rec].id);
        allot_put_u64(b + 8, ent->terminal_ms);
    }
    if (w.rc == 0 && w.used > 0)
        w.rc = write(ctx, w.buf, w.used);
    return w.rc;
}

uint64_t engine_snapshot_seq(const uint8_t *buf, size_t len)
{
    if (len < SNAP_HEAD || memcmp(buf, SNAP_MAGIC, 8) != 0 ||
        allot_get_u32(buf + 8) != SNAP_VERSION)
        return 0;
    return allot_get_u64(buf + 16);
}

#define LOAD_FAIL(...)                                                        \
    do {                                                                      \
        if (why)                                                              \
            snprintf(why, why_len, __VA_ARGS__);                              \
        return -EILSEQ;                                                       \
    } while (0)

static int load_order(engine_t *e, const uint8_t *b, size_t avail, size_t *used, char *why,
                      size_t why_len)
{
    orders_t *o = &e->orders;
    if (avail < SNAP_ORDER)
        LOAD_FAIL("snapshot ends inside an order");
    uint64_t id = allot_get_u64(b);
    uint8_t state = b[48], n = b[50];
    if (id == 0 || n == 0 || n > ALLOT_LINES_MAX || state == ALLOT_STATE_NONE ||
        state >= ALLOT_STATE_REJECTED || avail < SNAP_ORDER + (size_t)n * SNAP_LINE)
        LOAD_FAIL("snapshot order %llu is malformed", (unsigned long long)id);
    bool found;
    uint64_t pos = orders_probe(o, id, hash_u64(id), &found);
    if (found)
        LOAD_FAIL("snapshot holds order %llu twice", (unsigned long long)id);
    if (!orders_has_room(o, n))
        LOAD_FAIL("snapshot has more orders than --orders-max allows");
    order_rec_t *r = orders_insert(o, pos, id, n);
    r->customer = allot_get_u64(b + 8);
    r->placed_ms = allot_get_u64(b + 16);
    r->deadline_ms = allot_get_u64(b + 24);
    r->content_hash = allot_get_u64(b + 32);
    r->limit_mask = allot_get_u64(b + 40);
    r->state = state;
    r->policy = b[49];
    r->hold_flags = b[51];
    eng_line_t *lines = orders_lines(o, r);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *l = b + SNAP_ORDER + i * SNAP_LINE;
        lines[i].sku = allot_get_u64(l);
        lines[i].qty = allot_get_u32(l + 8);
        lines[i].allocated = allot_get_u32(l + 12);
    }
    if (state == ALLOT_STATE_HELD)
        heap_push(o, r);
    if (state_is_live(state))
        o->live++;
    *used = SNAP_ORDER + (size_t)n * SNAP_LINE;
    return 0;
}

#define IN_RING 0x80u /* hold_flags bit, only while a snapshot loads */

static int load_ring(engine_t *e, const uint8_t *p, uint64_t n, char *why, size_t why_len)
{
    orders_t *o = &e->orders;
    if (n > o->ring_cap)
        LOAD_FAIL("snapshot retains more orders than this server's retention allows");
    int rc = 0;
    uint64_t k = 0;
    for (; k < n; k++, p += SNAP_RING) {
        uint64_t id = allot_get_u64(p);
        order_rec_t *r = id ? (order_rec_t *)orders_find(o, id, hash_u64(id)) : NULL;
        if (!r || !state_is_terminal(r->state) || (r->hold_flags & IN_RING)) {
            if (why)
                snprintf(why, why_len,
                         "snapshot retains order %llu, which is not terminal or is "
                         "retained twice",
                         (unsigned long long)id);
            rc = -EILSEQ;
            break;
        }
        r->hold_flags |= IN_RING;
        o->ring[k].rec = orders_rec_index(o, r);
        o->ring[k].id = id;
        o->ring[k].terminal_ms = allot_get_u64(p + 8);
    }
    for (uint64_t i = 0; i < k; i++)
        o->recs[o->ring[i].rec].hold_flags &= (uint8_t)~IN_RING;
    if (rc != 0)
        return rc;
    o->ring_head = 0;
    o->ring_len = (uint32_t)n;
    return 0;
}

int engine_snapshot_load(engine_t *e, const uint8_t *buf, size_t len, char *why, size_t why_len)
{
    if (engine_snapshot_seq(buf, len) == 0)
        LOAD_FAIL("not a snapshot (bad magic or version)");
    if (e->seq != 0 || e->inv.count != 0 || e->orders.count != 0)
        LOAD_FAIL("snapshots load into an empty engine only");
    uint64_t skus = allot_get_u64(buf + 40), orders = allot_get_u64(buf + 48);
    uint64_t limits = allot_get_u64(buf + 56), ring = allot_get_u64(buf + 64);
    const uint8_t *p = buf + SNAP_HEAD, *end = buf + len;
    if (skus > e->inv.count_max || (uint64_t)(end - p) / SNAP_SKU < skus)
        LOAD_FAIL("snapshot holds %llu SKUs; this server allows %llu",
                  (unsigned long long)skus, (unsigned long long)e->inv.count_max);
    for (uint64_t i = 0; i < skus; i++, p += SNAP_SKU) {
        uint64_t sku = allot_get_u64(p);
        bool created;
        sku_slot_t *s = sku ? inv_upsert(&e->inv, sku, hash_u64(sku), &created) : NULL;
        if (!s || !created)
            LOAD_FAIL("snapshot SKU %llu is invalid or repeated", (unsigned long long)sku);
        s->on_hand = allot_get_u64(p + 8);
        s->allocated = allot_get_u64(p + 16);
        s->limit = allot_get_u32(p + 24);
        s->reorder_point = allot_get_u32(p + 28);
        s->backorder_units = allot_get_u64(p + 32);
        s->backorder_orders = allot_get_u32(p + 40);
        s->locations = allot_get_u32(p + 44);
        if (s->allocated > s->on_hand)
            LOAD_FAIL("snapshot SKU %llu is oversold", (unsigned long long)sku);
    }
    for (uint64_t i = 0; i < orders; i++) {
        size_t used;
        int rc = load_order(e, p, (size_t)(end - p), &used, why, why_len);
        if (rc != 0)
            return rc;
        p += used;
    }
    /* Bound each count first: multiplied, a huge one wraps around. */
    uint64_t rest = (uint64_t)(end - p);
    if (limits > rest / SNAP_LIMIT || ring > rest / SNAP_RING ||
        rest != limits * SNAP_LIMIT + ring * SNAP_RING)
        LOAD_FAIL("snapshot length disagrees with its counts");
    for (uint64_t i = 0; i < limits; i++, p += SNAP_LIMIT) {
        uint64_t sku = allot_get_u64(p + 8), units = allot_get_u64(p + 16);
        if (sku == 0 || units == 0 || limits_get(&e->limits, allot_get_u64(p), sku) != 0 ||
            !limits_add(&e->limits, allot_get_u64(p), sku, units))
            LOAD_FAIL("snapshot limit entry %llu is invalid or does not fit",
                      (unsigned long long)i);
    }
    int rc = load_ring(e, p, ring, why, why_len);
    if (rc != 0)
        return rc;
    e->seq = allot_get_u64(buf + 16);
    e->now_ms = allot_get_u64(buf + 24);
    e->holds_expired = allot_get_u64(buf + 32);
    return engine_check(e, why, why_len);
}
