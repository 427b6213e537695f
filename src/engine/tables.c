/*
 * The engine's fixed-capacity tables. Everything is allocated at init; no
 * operation allocates. Open addressing with linear probing throughout:
 * one probe sequence touches consecutive cache lines, and deletion (orders
 * and limit counts only; SKUs are never deleted) shifts entries back so that
 * no tombstones accumulate.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/log.h"

#include "engine/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define TABLES_ON_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TABLES_ON_HEAP 1
#endif
#endif

#define HUGE_PAGE (2u << 20)

/* The line pool (see "the line pool" below). */
#define LINE_TOP_CLASS (LINE_CLASSES - 1)
#define SUPERBLOCK (1u << LINE_TOP_CLASS)
#define NOT_FREE 0xffu


/* Tables live in their own mappings, backed by transparent huge pages and
 * populated up front: the engine touches them at random, so 4 KiB pages
 * would cost a TLB miss per operation and a page fault on first touch.
 * (Sanitizer builds use the heap so that overflows are caught.) */
void *table_alloc(size_t n, size_t size, bool prefault)
{
    size_t bytes = (n ? n : 1) * size;
#ifdef TABLES_ON_HEAP
    (void)prefault;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    memset(p, 0, bytes);
    return p;
#else
    size_t len = bytes + HUGE_PAGE + 4096;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    uint8_t *base = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    uintptr_t at = ((uintptr_t)base + 4096 + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    uint8_t *p = (uint8_t *)at;
    /* The mapping's base and length sit just below the table. */
    ((size_t *)p)[-1] = len;
    ((uint8_t **)p)[-2] = base;
    if (madvise(p, bytes, MADV_HUGEPAGE) != 0 && errno != EINVAL)
        log_debug("madvise(MADV_HUGEPAGE) failed: %s", strerror(errno));
    /* Touch every page now: start-up pays for the faults, not the first
     * orders of a sale. (Tools that replay a journal skip it: they touch
     * what they need, and only once.) */
    for (size_t off = 0; prefault && off < bytes; off += 4096)
        p[off] = 0;
    return p;
#endif
}

void table_free(void *ptr)
{
    if (!ptr)
        return;
#ifdef TABLES_ON_HEAP
    free(ptr);
#else
    uint8_t *p = ptr;
    size_t len = ((size_t *)p)[-1];
    uint8_t *base = ((uint8_t **)p)[-2];
    int rc = munmap(base, len);
    VERIFY(rc == 0);
#endif
}

static uint64_t pow2_at_least(uint64_t v)
{
    uint64_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* ---- inventory ----------------------------------------------------------- */

int inv_init(inv_t *t, uint32_t skus_max, uint32_t shards, bool prefault)
{
    memset(t, 0, sizeof *t);
    if (skus_max == 0 || skus_max > SKUS_MAX_CEILING || shards == 0 ||
        shards > SHARDS_MAX || (shards & (shards - 1)) != 0)
        return -EINVAL;
    /* Small tables get fewer shards: a shard must be large enough that the
     * spread of a random hash cannot fill one long before the table. */
    while (shards > 1 && skus_max / shards < 256)
        shards >>= 1;
    uint32_t bits = 0;
    while ((1u << bits) < shards)
        bits++;
    uint64_t per = ((uint64_t)skus_max + shards - 1) / shards;
    t->shard_bits = bits;
    t->shard_cap = (uint32_t)(per * 10 / 7 + 16);
    t->shard_fill_max = t->shard_cap - t->shard_cap / 16;
    t->count_max = skus_max;
    t->slots = table_alloc((size_t)shards * t->shard_cap, sizeof(sku_slot_t), prefault);
    t->shard_count = table_alloc(shards, sizeof(uint32_t), prefault);
    if (!t->slots || !t->shard_count) {
        inv_deinit(t);
        return -ENOMEM;
    }
    return 0;
}

void inv_deinit(inv_t *t)
{
    table_free(t->slots);
    table_free(t->shard_count);
    memset(t, 0, sizeof *t);
}

sku_slot_t *inv_find(const inv_t *t, uint64_t sku, uint64_t h)
{
    sku_slot_t *s = inv_home(t, h);
    uint64_t shard = t->shard_bits ? h >> (64 - t->shard_bits) : 0;
    sku_slot_t *first = &t->slots[shard * t->shard_cap];
    sku_slot_t *end = first + t->shard_cap;
    for (uint32_t n = 0; n < t->shard_cap; n++) {
        if (s->sku == sku)
            return s;
        if (s->sku == 0)
            return NULL;
        if (++s == end)
            s = first;
    }
    return NULL;
}

sku_slot_t *inv_upsert(inv_t *t, uint64_t sku, uint64_t h, bool *created)
{
    *created = false;
    uint64_t shard = t->shard_bits ? h >> (64 - t->shard_bits) : 0;
    sku_slot_t *first = &t->slots[shard * t->shard_cap];
    sku_slot_t *end = first + t->shard_cap;
    sku_slot_t *s = inv_home(t, h);
    for (uint32_t n = 0; n < t->shard_cap; n++) {
        if (s->sku == sku)
            return s;
        if (s->sku == 0)
            break;
        if (++s == end)
            s = first;
    }
    if (s->sku != 0 || t->count >= t->count_max ||
        t->shard_count[shard] >= t->shard_fill_max)
        return NULL;
    s->sku = sku;
    s->bo_head = s->bo_tail = NONE32;
    t->shard_count[shard]++;
    t->count++;
    *created = true;
    return s;
}

/* ---- orders -------------------------------------------------------------- */

int orders_init(orders_t *o, uint32_t orders_max, uint32_t lines_max, uint32_t retain_max,
                bool prefault)
{
    memset(o, 0, sizeof *o);
    if (orders_max == 0 || orders_max > ORDERS_MAX_CEILING || lines_max == 0 ||
        retain_max == 0 || retain_max > orders_max)
        return -EINVAL;
    o->recs_max = orders_max;
    o->free_rec = NONE32;
    /* Whole superblocks, at least one. */
    uint64_t rounded = ((uint64_t)lines_max + SUPERBLOCK - 1) / SUPERBLOCK * SUPERBLOCK;
    if (rounded > UINT32_MAX - SUPERBLOCK)
        return -EINVAL;
    o->lines_max = (uint32_t)rounded;
    for (int c = 0; c < LINE_CLASSES; c++)
        o->free_block[c] = NONE32;
    /* The index stays at most half full so probes stay short. */
    uint64_t index_size = pow2_at_least((uint64_t)orders_max * 2);
    o->index_mask = index_size - 1;
    o->ring_cap = retain_max;
    o->recs = table_alloc(orders_max, sizeof(order_rec_t), prefault);
    o->index = table_alloc(index_size, sizeof(order_slot_t), prefault);
    o->lines = table_alloc(o->lines_max, sizeof(eng_line_t), prefault);
    o->free_order = table_alloc(o->lines_max, 1, prefault);
    /* Room for every order to be HELD, plus slack so that stale entries
     * are compacted away in bulk rather than one push at a time. */
    o->heap_cap = orders_max + orders_max / 4 + 64;
    o->heap = table_alloc(o->heap_cap, sizeof(heap_ent_t), prefault);
    o->ring = table_alloc(retain_max, sizeof(retire_ent_t), prefault);
    o->line_split = table_alloc(o->lines_max, sizeof(uint32_t), prefault);
    o->line_wait = table_alloc(o->lines_max, sizeof(uint32_t), prefault);
    if (!o->recs || !o->index || !o->lines || !o->free_order || !o->heap || !o->ring ||
        !o->line_split || !o->line_wait) {
        orders_deinit(o);
        return -ENOMEM;
    }
    memset(o->free_order, NOT_FREE, o->lines_max);
    memset(o->line_split, 0xff, (size_t)o->lines_max * sizeof(uint32_t));
    memset(o->line_wait, 0xff, (size_t)o->lines_max * sizeof(uint32_t));
    return 0;
}

void orders_deinit(orders_t *o)
{
    table_free(o->recs);
    table_free(o->index);
    table_free(o->lines);
    table_free(o->free_order);
    table_free(o->heap);
    table_free(o->ring);
    table_free(o->line_split);
    table_free(o->line_wait);
    memset(o, 0, sizeof *o);
}

uint64_t orders_probe(const orders_t *o, uint64_t id, uint64_t h, bool *found)
{
    uint64_t pos = h & o->index_mask;
    for (;;) {
        uint64_t cur = o->index[pos].id;
        if (cur == id) {
            *found = true;
            return pos;
        }
        if (cur == 0) {
            *found = false;
            return pos;
        }
        pos = (pos + 1) & o->index_mask;
    }
}

/* ---- the line pool: a buddy allocator -------------------------------------
 * Orders take 1..64 lines, stored contiguously. The pool is a row of
 * 64-line superblocks handed out from the top; a block of 2^k lines splits
 * into two buddies on demand and merges back with its buddy when both are
 * free, so no pattern of orders can strand free lines in the wrong sizes.
 * Free blocks are kept in doubly linked lists threaded through their own
 * first line (sku = next, qty = prev); free_order[] marks a free block's
 * first line with its size class. */


static uint32_t line_class(uint32_t n)
{
    uint32_t c = 0;
    while ((1u << c) < n)
        c++;
    return c;
}

static void free_push(orders_t *o, uint32_t ref, uint32_t c)
{
    uint32_t head = o->free_block[c];
    o->lines[ref].sku = head;
    o->lines[ref].qty = NONE32;
    if (head != NONE32)
        o->lines[head].qty = ref;
    o->free_block[c] = ref;
    o->free_order[ref] = (uint8_t)c;
}

static void free_unlink(orders_t *o, uint32_t ref, uint32_t c)
{
    uint32_t next = (uint32_t)o->lines[ref].sku, prev = o->lines[ref].qty;
    if (prev != NONE32)
        o->lines[prev].sku = next;
    else
        o->free_block[c] = next;
    if (next != NONE32)
        o->lines[next].qty = prev;
    o->free_order[ref] = NOT_FREE;
}

static bool lines_available(const orders_t *o, uint32_t n)
{
    for (uint32_t k = line_class(n); k < LINE_CLASSES; k++)
        if (o->free_block[k] != NONE32)
            return true;
    return o->lines_max - o->lines_top >= SUPERBLOCK;
}

static uint32_t lines_take(orders_t *o, uint32_t n)
{
    uint32_t c = line_class(n), k = c;
    while (k < LINE_CLASSES && o->free_block[k] == NONE32)
        k++;
    uint32_t ref;
    if (k < LINE_CLASSES) {
        ref = o->free_block[k];
        free_unlink(o, ref, k);
    } else {
        VERIFY(o->lines_max - o->lines_top >= SUPERBLOCK);
        ref = o->lines_top;
        o->lines_top += SUPERBLOCK;
        k = LINE_TOP_CLASS;
    }
    while (k > c) {
        k--;
        free_push(o, ref + (1u << k), k);
    }
    o->lines_used += n;
    return ref;
}

static void lines_give(orders_t *o, uint32_t ref, uint32_t n)
{
    uint32_t c = line_class(n);
    while (c < LINE_TOP_CLASS) {
        uint32_t buddy = ref ^ (1u << c);
        if (o->free_order[buddy] != c)
            break;
        free_unlink(o, buddy, c);
        ref &= ~(1u << c);
        c++;
    }
    free_push(o, ref, c);
    o->lines_used -= n;
}

bool orders_has_room(const orders_t *o, uint32_t n)
{
    bool rec_room = o->free_rec != NONE32 || o->recs_top < o->recs_max;
    return rec_room && lines_available(o, n);
}

order_rec_t *orders_insert(orders_t *o, uint64_t pos, uint64_t id, uint32_t n)
{
    uint32_t idx = o->free_rec;
    if (idx != NONE32) {
        o->free_rec = o->recs[idx].line_ref;
    } else {
        VERIFY(o->recs_top < o->recs_max);
        idx = o->recs_top++;
    }
    order_rec_t *r = &o->recs[idx];
    memset(r, 0, sizeof *r);
    r->id = id;
    r->line_count = (uint8_t)n;
    r->line_ref = lines_take(o, n);
    VERIFY(o->index[pos].id == 0);
    o->index[pos].id = id;
    o->index[pos].rec = idx;
    o->count++;
    return r;
}

void orders_remove(orders_t *o, order_rec_t *r)
{
    bool found;
    uint64_t pos = orders_probe(o, r->id, hash_u64(r->id), &found);
    VERIFY(found);
    /* Backward-shift deletion: pull later entries of the cluster into the
     * hole when their home position allows it. */
    uint64_t hole = pos;
    uint64_t next = (pos + 1) & o->index_mask;
    while (o->index[next].id != 0) {
        uint64_t home = hash_u64(o->index[next].id) & o->index_mask;
        bool movable = ((next - home) & o->index_mask) >= ((next - hole) & o->index_mask);
        if (movable) {
            o->index[hole] = o->index[next];
            hole = next;
        }
        next = (next + 1) & o->index_mask;
    }
    o->index[hole].id = 0;
    o->index[hole].rec = 0;

    lines_give(o, r->line_ref, r->line_count);
    uint32_t idx = orders_rec_index(o, r);
    memset(r, 0, sizeof *r);
    r->line_ref = o->free_rec;
    o->free_rec = idx;
    o->count--;
}

/* ---- deadline heap ------------------------------------------------------- */

static bool heap_less(const heap_ent_t *a, const heap_ent_t *b)
{
    /* Ties broken by order id so that expiry order is deterministic. */
    if (a->deadline_ms != b->deadline_ms)
        return a->deadline_ms < b->deadline_ms;
    return a->id < b->id;
}

static void heap_down(orders_t *o, uint32_t i)
{
    heap_ent_t *h = o->heap;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < o->heap_len && heap_less(&h[l], &h[m]))
            m = l;
        if (r < o->heap_len && heap_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        heap_ent_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static bool heap_valid(const orders_t *o, const heap_ent_t *ent)
{
    const order_rec_t *r = &o->recs[ent->rec];
    /* The generation makes the newest push the only live entry of an
     * order, even if an EXTEND brings an older deadline back. */
    return r->id == ent->id &&
           (r->state == ALLOT_STATE_HELD || r->state == ALLOT_STATE_BACKORDERED) &&
           r->deadline_ms != 0 && r->deadline_ms == ent->deadline_ms && r->heap_gen == ent->gen;
}

/* Keeps the live entries and rebuilds: exactly one per HELD order is live,
 * so a full heap always shrinks back below orders_max. */
static void heap_compact(orders_t *o)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < o->heap_len; i++)
        if (heap_valid(o, &o->heap[i]))
            o->heap[n++] = o->heap[i];
    o->heap_len = n;
    for (uint32_t i = n / 2; i-- > 0;)
        heap_down(o, i);
}

void heap_push(orders_t *o, order_rec_t *r)
{
    VERIFY((r->state == ALLOT_STATE_HELD || r->state == ALLOT_STATE_BACKORDERED) &&
           r->deadline_ms != 0);
    if (o->heap_len == o->heap_cap)
        heap_compact(o);
    VERIFY(o->heap_len < o->heap_cap);
    heap_ent_t ent = {.deadline_ms = r->deadline_ms, .id = r->id, .rec = orders_rec_index(o, r),
                      .gen = ++r->heap_gen};
    uint32_t i = o->heap_len++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!heap_less(&ent, &o->heap[parent]))
            break;
        o->heap[i] = o->heap[parent];
        i = parent;
    }
    o->heap[i] = ent;
}

void heap_pop(orders_t *o)
{
    VERIFY(o->heap_len > 0);
    o->heap[0] = o->heap[--o->heap_len];
    heap_down(o, 0);
}

order_rec_t *heap_first(orders_t *o)
{
    while (o->heap_len > 0 && !heap_valid(o, &o->heap[0]))
        heap_pop(o);
    return o->heap_len ? &o->recs[o->heap[0].rec] : NULL;
}

/* ---- limit counts -------------------------------------------------------- */

int limits_init(limits_t *l, uint32_t limits_max, bool prefault)
{
    memset(l, 0, sizeof *l);
    if (limits_max == 0 || limits_max > LIMITS_MAX_CEILING)
        return -EINVAL;
    uint64_t size = pow2_at_least((uint64_t)limits_max * 2);
    l->mask = size - 1;
    l->count_max = limits_max;
    l->slots = table_alloc(size, sizeof(limit_slot_t), prefault);
    return l->slots ? 0 : -ENOMEM;
}

void limits_deinit(limits_t *l)
{
    table_free(l->slots);
    memset(l, 0, sizeof *l);
}

static uint64_t limits_probe(const limits_t *l, uint64_t customer, uint64_t sku, bool *found)
{
    uint64_t pos = limit_hash(customer, sku) & l->mask;
    for (;;) {
        const limit_slot_t *s = &l->slots[pos];
        if (s->sku == 0) {
            *found = false;
            return pos;
        }
        if (s->sku == sku && s->customer == customer) {
            *found = true;
            return pos;
        }
        pos = (pos + 1) & l->mask;
    }
}

uint64_t limits_get(const limits_t *l, uint64_t customer, uint64_t sku)
{
    bool found;
    uint64_t pos = limits_probe(l, customer, sku, &found);
    return found ? l->slots[pos].units : 0;
}

bool limits_add(limits_t *l, uint64_t customer, uint64_t sku, uint64_t units)
{
    bool found;
    uint64_t pos = limits_probe(l, customer, sku, &found);
    if (!found) {
        if (l->count >= l->count_max)
            return false;
        l->slots[pos].customer = customer;
        l->slots[pos].sku = sku;
        l->slots[pos].units = 0;
        l->count++;
    }
    l->slots[pos].units += units;
    return true;
}

void limits_sub(limits_t *l, uint64_t customer, uint64_t sku, uint64_t units)
{
    bool found;
    uint64_t pos = limits_probe(l, customer, sku, &found);
    VERIFY(found && l->slots[pos].units >= units);
    l->slots[pos].units -= units;
    if (l->slots[pos].units != 0)
        return;
    uint64_t hole = pos;
    uint64_t next = (pos + 1) & l->mask;
    while (l->slots[next].sku != 0) {
        const limit_slot_t *s = &l->slots[next];
        uint64_t home = limit_hash(s->customer, s->sku) & l->mask;
        if (((next - home) & l->mask) >= ((next - hole) & l->mask)) {
            l->slots[hole] = l->slots[next];
            hole = next;
        }
        next = (next + 1) & l->mask;
    }
    memset(&l->slots[hole], 0, sizeof l->slots[hole]);
    l->count--;
}
