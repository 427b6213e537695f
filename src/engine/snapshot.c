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
#define SNAP_VERSION 2u
#define SNAP_HEAD 80u
#define SNAP_LOC CANON_LOC
#define SNAP_SPLIT CANON_SPLIT
#define SNAP_WAIT CANON_WAIT
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

static void put_sku(writer_t *w, const engine_t *e, const sku_slot_t *s)
{
    canon_sku(reserve(w, SNAP_SKU), e, s);
    for (uint32_t i = 0; i < sku_loc_count(e, s); i++)
        canon_loc(reserve(w, SNAP_LOC), e, s, i);
}

static void put_order(writer_t *w, const engine_t *e, const order_rec_t *r)
{
    eng_alloc_t splits[ENG_ALLOCS_MAX];
    uint32_t ns = canon_splits(e, r, splits);
    canon_order_head(reserve(w, SNAP_ORDER), r, ns);
    const eng_line_t *lines = orders_lines(&e->orders, r);
    for (uint32_t i = 0; i < r->line_count; i++)
        canon_line(reserve(w, SNAP_LINE), &lines[i]);
    for (uint32_t i = 0; i < ns; i++)
        canon_split(reserve(w, SNAP_SPLIT), &splits[i]);
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
    allot_put_u64(h + 72, e->stock.nodes_used);
    uint64_t nslots = ((uint64_t)1 << e->inv.shard_bits) * e->inv.shard_cap;
    for (uint64_t i = 0; i < nslots; i++)
        if (e->inv.slots[i].sku)
            put_sku(&w, e, &e->inv.slots[i]);
    for (uint64_t i = 0; i <= o->index_mask; i++)
        if (o->index[i].id)
            put_order(&w, e, &o->recs[o->index[i].rec]);
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
    /* Waitlists last, each SKU's in queue order: loading pushes them back
     * in the same order. */
    for (uint64_t i = 0; i < nslots; i++) {
        const sku_slot_t *s = &e->inv.slots[i];
        if (!s->sku)
            continue;
        for (uint32_t idx = s->bo_head; idx != NONE32; idx = e->stock.nodes[idx].next) {
            const wait_node_t *nd = &e->stock.nodes[idx];
            canon_wait(reserve(&w, SNAP_WAIT), s->sku, o->recs[nd->rec].id, nd->line);
        }
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

/* Rebuilds the splits of r's lines. The SKUs' location counters came with
 * the SKUs, so nothing is taken from them here; engine_check() compares the
 * two at the end. */
static int load_splits(engine_t *e, order_rec_t *r, const uint8_t *p, uint32_t ns, char *why,
                       size_t why_len)
{
    const eng_line_t *lines = orders_lines(&e->orders, r);
    for (uint32_t k = 0; k < ns; k++, p += SNAP_SPLIT) {
        eng_alloc_t a = {.line = p[0], .location = allot_get_u16(p + 2),
                         .units = allot_get_u32(p + 4)};
        uint32_t gl = r->line_ref + a.line;
        if (a.line >= r->line_count || a.units == 0 || a.units > lines[a.line].allocated)
            LOAD_FAIL("snapshot order %llu has a bad location split", (unsigned long long)r->id);
        r->hold_flags |= ORDER_SPLIT;
        if (!stock_split_put(e, gl, a.location, a.units))
            LOAD_FAIL("snapshot order %llu has a bad location split, or more splits than "
                      "this server allows",
                      (unsigned long long)r->id);
    }
    return 0;
}

static int load_order(engine_t *e, const uint8_t *b, size_t avail, size_t *used, char *why,
                      size_t why_len)
{
    orders_t *o = &e->orders;
    if (avail < SNAP_ORDER)
        LOAD_FAIL("snapshot ends inside an order");
    uint64_t id = allot_get_u64(b);
    uint8_t state = b[48], n = b[50];
    uint32_t ns = allot_get_u16(b + 56);
    size_t size = SNAP_ORDER + (size_t)n * SNAP_LINE + (size_t)ns * SNAP_SPLIT;
    if (id == 0 || n == 0 || n > ALLOT_LINES_MAX || state == ALLOT_STATE_NONE ||
        state >= ALLOT_STATE_REJECTED || b[49] >= ALLOT_POLICY_COUNT || ns > ENG_ALLOCS_MAX ||
        avail < size)
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
    r->hold_flags = b[51] & ORDER_FLAGS_STATE;
    r->hold_ms = allot_get_u32(b + 52);
    eng_line_t *lines = orders_lines(o, r);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *l = b + SNAP_ORDER + i * SNAP_LINE;
        lines[i].sku = allot_get_u64(l);
        lines[i].qty = allot_get_u32(l + 8);
        lines[i].allocated = allot_get_u32(l + 12);
    }
    int rc = load_splits(e, r, b + SNAP_ORDER + (size_t)n * SNAP_LINE, ns, why, why_len);
    if (rc != 0)
        return rc;
    if ((state == ALLOT_STATE_HELD || state == ALLOT_STATE_BACKORDERED) && r->deadline_ms)
        heap_push(o, r);
    if (state_is_live(state))
        o->live++;
    *used = size;
    return 0;
}

/* One SKU and its locations. Its queue counts start at zero: the waitlist
 * section pushes the waiting lines back and check_queue_counts() compares. */
static int load_sku(engine_t *e, const uint8_t *p, size_t avail, const uint8_t **next,
                    char *why, size_t why_len)
{
    if (avail < SNAP_SKU)
        LOAD_FAIL("snapshot ends inside a SKU");
    uint64_t sku = allot_get_u64(p);
    uint32_t nloc = p[46];
    if (nloc > ALLOT_LOCATIONS_MAX || avail < SNAP_SKU + (size_t)nloc * SNAP_LOC)
        LOAD_FAIL("snapshot SKU %llu is malformed", (unsigned long long)sku);
    bool created;
    sku_slot_t *s = sku ? inv_upsert(&e->inv, sku, hash_u64(sku), &created) : NULL;
    if (!s || !created)
        LOAD_FAIL("snapshot SKU %llu is invalid or repeated", (unsigned long long)sku);
    s->on_hand = allot_get_u64(p + 8);
    s->allocated = allot_get_u64(p + 16);
    s->limit = allot_get_u32(p + 24);
    s->reorder_point = allot_get_u32(p + 28);
    s->prio0 = allot_get_u16(p + 44);
    if (s->allocated > s->on_hand)
        LOAD_FAIL("snapshot SKU %llu is oversold", (unsigned long long)sku);
    if (nloc > 0) {
        eng_loc_view_t locs[ALLOT_LOCATIONS_MAX];
        for (uint32_t i = 0; i < nloc; i++) {
            const uint8_t *l = p + SNAP_SKU + i * SNAP_LOC;
            locs[i] = (eng_loc_view_t){.location = allot_get_u16(l),
                                       .priority = allot_get_u16(l + 2),
                                       .on_hand = allot_get_u64(l + 8),
                                       .allocated = allot_get_u64(l + 16)};
        }
        if (s->prio0 != 0 || !stock_block_load(e, s, locs, nloc))
            LOAD_FAIL("snapshot SKU %llu has bad locations (or more than this server allows)",
                      (unsigned long long)sku);
    }
    *next = p + SNAP_SKU + (size_t)nloc * SNAP_LOC;
    return 0;
}

static int load_wait(engine_t *e, const uint8_t *p, char *why, size_t why_len)
{
    uint64_t sku = allot_get_u64(p), id = allot_get_u64(p + 8);
    uint8_t line = p[16];
    sku_slot_t *s = sku ? inv_find(&e->inv, sku, hash_u64(sku)) : NULL;
    order_rec_t *r = id ? orders_find(&e->orders, id, hash_u64(id)) : NULL;
    if (!s || !r || r->state != ALLOT_STATE_BACKORDERED || line >= r->line_count)
        LOAD_FAIL("snapshot waitlist names order %llu, which cannot wait for sku %llu",
                  (unsigned long long)id, (unsigned long long)sku);
    const eng_line_t *l = &e->orders.lines[r->line_ref + line];
    if (l->sku != sku || l->allocated >= l->qty ||
        e->orders.line_wait[r->line_ref + line] != NONE32 || !stock_wait_room(e, s))
        LOAD_FAIL("snapshot waitlist entry of order %llu is invalid or repeated",
                  (unsigned long long)id);
    uint32_t gl = r->line_ref + line;
    if (e->orders.line_split[gl] == NONE32 && !stock_split_room(e, 1))
        LOAD_FAIL("snapshot has more location splits than this server allows");
    stock_wait_push(e, s, orders_rec_index(&e->orders, r), line, l->qty - l->allocated);
    stock_split_reserve(e, gl, l->allocated);
    r->hold_flags |= ORDER_SPLIT;
    return 0;
}

/* The queue counts a snapshot states for each SKU must be what its
 * waitlist section rebuilt. */
static int check_queue_counts(const engine_t *e, const uint8_t *p, uint64_t skus, char *why,
                              size_t why_len)
{
    for (uint64_t i = 0; i < skus; i++) {
        uint64_t sku = allot_get_u64(p);
        const sku_slot_t *s = inv_find(&e->inv, sku, hash_u64(sku));
        VERIFY(s);
        if (s->backorder_units != allot_get_u64(p + 32) ||
            s->backorder_orders != allot_get_u32(p + 40))
            LOAD_FAIL("snapshot SKU %llu queue counts disagree with its waitlist",
                      (unsigned long long)sku);
        p += SNAP_SKU + (size_t)p[46] * SNAP_LOC;
    }
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
    uint64_t waits = allot_get_u64(buf + 72);
    const uint8_t *p = buf + SNAP_HEAD, *end = buf + len;
    if (skus > e->inv.count_max || (uint64_t)(end - p) / SNAP_SKU < skus)
        LOAD_FAIL("snapshot holds %llu SKUs; this server allows %llu",
                  (unsigned long long)skus, (unsigned long long)e->inv.count_max);
    for (uint64_t i = 0; i < skus; i++) {
        int rc = load_sku(e, p, (size_t)(end - p), &p, why, why_len);
        if (rc != 0)
            return rc;
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
    if (limits > rest / SNAP_LIMIT || ring > rest / SNAP_RING || waits > rest / SNAP_WAIT ||
        rest != limits * SNAP_LIMIT + ring * SNAP_RING + waits * SNAP_WAIT)
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
    p += ring * SNAP_RING;
    for (uint64_t i = 0; i < waits; i++, p += SNAP_WAIT)
        if ((rc = load_wait(e, p, why, why_len)) != 0)
            return rc;
    rc = check_queue_counts(e, buf + SNAP_HEAD, skus, why, why_len);
    if (rc != 0)
        return rc;
    /* Stock that came back before the snapshot but was not yet given to
     * the waiting orders goes to them at the next drain step. */
    uint64_t nslots = ((uint64_t)1 << e->inv.shard_bits) * e->inv.shard_cap;
    for (uint64_t i = 0; i < nslots; i++)
        if (e->inv.slots[i].sku)
            drain_mark(e, &e->inv.slots[i]);
    e->seq = allot_get_u64(buf + 16);
    e->now_ms = allot_get_u64(buf + 24);
    e->holds_expired = allot_get_u64(buf + 32);
    return engine_check(e, why, why_len);
}
