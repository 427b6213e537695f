/*
 * allot-journal stats: what happened, from the records alone (no engine):
 * records by type, PLACEs by policy and by full, partial or waiting
 * allocation, what became of the orders, backorders filled, throughput
 * over time, the SKUs that sold the most, and when each SKU sold out.
 *
 * Sell-outs need every SKU's on_hand and allocated at every PLACE and
 * FILL, so stats keeps its own counters: SKU_SET sets on_hand (of one
 * location), RESTOCK and ADJUST move it, PLACE and FILL add to allocated,
 * CANCEL and EXPIRE give an order's units back, FULFILL takes them out of
 * both. That needs the lines of every open order (a FILL names a line, not
 * a SKU) and, where its units sit anywhere but location 0, their
 * locations (a later SKU_SET of a location sets that location's on_hand,
 * so what FULFILL took from it must be known): a map from order id to a
 * block in an entry pool, forgotten when the order ends, so memory follows
 * the open orders, not the length of the journal. SKUs stocked away from
 * location 0 get a block of per-location on_hand. Every table has a
 * ceiling.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common/limits.h"
#include "idmap.h"
#include "jtool.h"

#define TOP_SKUS 10u
#define SOLD_OUT_SHOWN 20u
#define BUCKETS_MAX (1u << 20)   /* per-second and per-minute entries kept */
#define TABLE_ROWS_MAX 30u       /* rows of the text throughput table */
#define POOL_MAX (UINT32_C(1) << 31)
#define LOC_BLOCKS_MAX (UINT32_C(1) << 24)
/* Blocks of 2^c entries plus a header: an order's lines and, when its
 * units sit anywhere but location 0, one entry per (line, location). */
#define ENTRY_CLASSES 11u
#define ENTRIES_MAX (ALLOT_LINES_MAX + ALLOT_LINES_MAX * ALLOT_LOCATIONS_MAX)
#define NO_REF UINT32_MAX

_Static_assert((UINT32_C(1) << (ENTRY_CLASSES - 1)) >= ENTRIES_MAX, "the largest block fits");

static const char stats_help[] =
    "usage: allot-journal stats DIR [--json]\n"
    "\n"
    "Reads the whole journal (read-only; safe while the server runs) and reports:\n"
    "  - records by type\n"
    "  - PLACEs by policy and by full or partial allocation, units requested and\n"
    "    allocated; how many BACKORDER PLACEs left lines waiting, and how many\n"
    "    took units from other locations than 0\n"
    "  - FILLs: waiting lines given stock that came back, the units, and how\n"
    "    many orders a FILL completed\n"
    "  - outcomes: how many orders were later confirmed, cancelled, fulfilled or\n"
    "    expired, went BACKORDERED, were completed by FILLs, and how many are\n"
    "    still open at the end of the journal\n"
    "  - throughput by record time: peak records per second and per minute, and a\n"
    "    table over time (with --json: every second and minute as {t, n}, t in\n"
    "    epoch milliseconds, up to 1048576 entries each)\n"
    "  - the top 10 SKUs by units allocated, by PLACEs and FILLs (a FILL names\n"
    "    its order's line; the SKU is that line's, known from the PLACE)\n"
    "  - when each SKU sold out: the first PLACE or FILL after which its\n"
    "    available units (on_hand - allocated, over all its locations) reached 0,\n"
    "    and how often that happened\n"
    "Stock figures start from zero at the journal's first record: for a journal\n"
    "whose early segments were archived, sell-outs are relative to what it holds,\n"
    "and the FILLs of orders placed before it are counted but not attributed to\n"
    "a SKU.\n"
    "\n"
    "  --json   one JSON object\n"
    "\n"
    "Exit status: 0 done, 1 the journal is corrupt or unreadable (the figures up\n"
    "to that point are printed), 2 usage error.\n";

typedef struct sku_stat {
    uint64_t sku;
    int64_t on_hand;
    int64_t allocated;
    uint64_t units;      /* allocated by PLACEs and FILLs, in total */
    uint64_t orders;     /* order lines that took units */
    uint64_t sold_out_ms, sold_out_seq;
    uint32_t sold_out_count;
    uint32_t locs;       /* its loc_block_t, NO_REF while its stock is all at location 0 */
} sku_stat_t;

/* on_hand by location of a SKU stocked away from location 0 (the engine
 * refuses a ninth location, so a journal that names one is damaged and
 * that location is left out). */
typedef struct loc_block {
    uint16_t id[ALLOT_LOCATIONS_MAX];
    int64_t on_hand[ALLOT_LOCATIONS_MAX];
    uint32_t n;
} loc_block_t;

/* One entry of an order's block: the header (sku = line count, allocated
 * = allocation entries, cls = size class), then a line (sku, allocated
 * units), then an allocation (sku = line << 16 | location, allocated =
 * units). A free block's header keeps the next free block in sku. */
typedef struct pool_entry {
    uint64_t sku;
    uint32_t allocated;
    uint32_t cls;
} pool_entry_t;

typedef struct bucket {
    uint64_t t; /* ms at the bucket's start */
    uint64_t n;
} bucket_t;

typedef struct buckets {
    uint64_t width_ms;
    bucket_t *v;
    size_t n, cap;
    bool truncated;
    bucket_t cur, peak;
    bool have_cur;
} buckets_t;

typedef struct stats {
    bool json;
    uint64_t records, first_seq, last_seq, first_ms, last_ms;
    uint64_t by_type[REC_TYPE_COUNT];
    uint64_t by_policy[ALLOT_POLICY_COUNT + 1];
    uint64_t place_full, place_partial, units_requested, units_allocated;
    uint64_t place_waiting;   /* BACKORDER PLACEs with a waiting line */
    uint64_t place_located;   /* PLACEs with units from other locations than 0 */
    uint64_t fill_units, fill_completed, fill_located;
    uint64_t unknown_orders;  /* later records of orders placed before the journal */
    uint64_t untracked;       /* orders not followed (a table was full) */
    /* SKUs */
    idmap_t sku_index;
    sku_stat_t *skus;
    size_t nskus, skus_cap;
    loc_block_t *locs;
    uint32_t nlocs, locs_cap;
    /* open orders: their lines and where their units sit */
    idmap_t orders;
    pool_entry_t *pool;
    uint32_t pool_top, pool_cap;
    uint32_t free_block[ENTRY_CLASSES];
    bool full_warned;
    buckets_t per_second, per_minute;
} stats_t;

/* ---- tables ----------------------------------------------------------------------- */

static sku_stat_t *sku_get(stats_t *s, uint64_t sku)
{
    uint32_t *ix = idmap_get(&s->sku_index, sku);
    if (ix)
        return &s->skus[*ix];
    if (s->nskus == s->skus_cap) {
        size_t cap = s->skus_cap ? s->skus_cap * 2 : 1024;
        if (cap > SKUS_MAX_CEILING)
            return NULL;
        sku_stat_t *v = realloc(s->skus, cap * sizeof *v);
        if (!v)
            return NULL;
        s->skus = v;
        s->skus_cap = cap;
    }
    if (idmap_put(&s->sku_index, sku, (uint32_t)s->nskus) != 0)
        return NULL;
    sku_stat_t *st = &s->skus[s->nskus++];
    memset(st, 0, sizeof *st);
    st->sku = sku;
    st->locs = NO_REF;
    return st;
}

/* st's block of locations, made on first need with all of its stock so far
 * at location 0; NULL when the table is full. */
static loc_block_t *locs_of(stats_t *s, sku_stat_t *st)
{
    if (st->locs != NO_REF)
        return &s->locs[st->locs];
    if (s->nlocs == s->locs_cap) {
        uint32_t cap = s->locs_cap ? s->locs_cap * 2 : 256;
        loc_block_t *v = cap <= LOC_BLOCKS_MAX ? realloc(s->locs, cap * sizeof *v) : NULL;
        if (!v)
            return NULL;
        s->locs = v;
        s->locs_cap = cap;
    }
    st->locs = s->nlocs++;
    loc_block_t *b = &s->locs[st->locs];
    *b = (loc_block_t){.id = {0}, .on_hand = {st->on_hand}, .n = 1};
    return b;
}

/* The on_hand counter of location loc, added if new; NULL when the SKU has
 * all its locations already. */
static int64_t *loc_on_hand(loc_block_t *b, uint16_t loc)
{
    for (uint32_t i = 0; i < b->n; i++)
        if (b->id[i] == loc)
            return &b->on_hand[i];
    if (b->n == ALLOT_LOCATIONS_MAX)
        return NULL;
    b->id[b->n] = loc;
    b->on_hand[b->n] = 0;
    return &b->on_hand[b->n++];
}

static uint32_t block_class(uint32_t n)
{
    uint32_t c = 0;
    while ((UINT32_C(1) << c) < n)
        c++;
    return c;
}

/* A block for n entries (plus its header); NO_REF when the pool is full. */
static uint32_t block_alloc(stats_t *s, uint32_t n)
{
    uint32_t c = block_class(n);
    if (c >= ENTRY_CLASSES)
        return NO_REF;
    if (s->free_block[c] != NO_REF) {
        uint32_t ref = s->free_block[c];
        s->free_block[c] = (uint32_t)s->pool[ref].sku;
        s->pool[ref].cls = c;
        return ref;
    }
    uint32_t size = (UINT32_C(1) << c) + 1;
    if ((uint64_t)s->pool_top + size > s->pool_cap) {
        uint64_t cap = s->pool_cap ? (uint64_t)s->pool_cap * 2 : 4096;
        while (cap < (uint64_t)s->pool_top + size)
            cap *= 2;
        if (cap > POOL_MAX)
            return NO_REF;
        pool_entry_t *p = realloc(s->pool, cap * sizeof *p);
        if (!p)
            return NO_REF;
        s->pool = p;
        s->pool_cap = (uint32_t)cap;
    }
    uint32_t ref = s->pool_top;
    s->pool_top += size;
    s->pool[ref].cls = c;
    return ref;
}

static void block_free(stats_t *s, uint32_t ref)
{
    uint32_t c = s->pool[ref].cls;
    s->pool[ref].sku = s->free_block[c];
    s->free_block[c] = ref;
}

static uint32_t block_room(const stats_t *s, uint32_t ref)
{
    return UINT32_C(1) << s->pool[ref].cls;
}

static void warn_full(stats_t *s)
{
    s->untracked++;
    if (s->full_warned)
        return;
    s->full_warned = true;
    jt_error("warning: too many open orders or SKUs to follow; stock and sell-out figures "
             "leave some orders out");
}

/* ---- throughput ------------------------------------------------------------------------ */

static void bucket_close(buckets_t *b)
{
    if (!b->have_cur)
        return;
    if (b->cur.n > b->peak.n)
        b->peak = b->cur;
    if (b->n == b->cap && !b->truncated) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        bucket_t *v = cap <= BUCKETS_MAX ? realloc(b->v, cap * sizeof *v) : NULL;
        if (v) {
            b->v = v;
            b->cap = cap;
        } else {
            b->truncated = true;
        }
    }
    if (b->n < b->cap)
        b->v[b->n++] = b->cur;
}

static void bucket_add(buckets_t *b, uint64_t t_ms)
{
    uint64_t t = t_ms - t_ms % b->width_ms;
    if (!b->have_cur || t != b->cur.t) {
        bucket_close(b);
        b->cur = (bucket_t){.t = t, .n = 0};
        b->have_cur = true;
    }
    b->cur.n++;
}

/* ---- the records ------------------------------------------------------------------------ */

static uint32_t order_line_count(const stats_t *s, uint32_t ref)
{
    return (uint32_t)s->pool[ref].sku;
}

/* A PLACE or FILL gave units of sku to an order line. */
static void take_units(stats_t *s, const eng_record_t *r, uint64_t sku, uint32_t units,
                       bool first_units)
{
    sku_stat_t *st = sku_get(s, sku);
    if (!st) {
        warn_full(s);
        return;
    }
    st->allocated += units;
    st->units += units;
    st->orders += first_units;
    if (st->on_hand - st->allocated <= 0 && st->sold_out_count++ == 0) {
        st->sold_out_ms = r->time_ms;
        st->sold_out_seq = r->seq;
    }
}

static void on_place(stats_t *s, const eng_record_t *r)
{
    s->by_policy[r->policy < ALLOT_POLICY_COUNT ? r->policy : ALLOT_POLICY_COUNT]++;
    bool full = true;
    for (uint32_t i = 0; i < r->line_count; i++) {
        s->units_requested += r->lines[i].qty;
        s->units_allocated += r->lines[i].allocated;
        full &= r->lines[i].allocated == r->lines[i].qty;
    }
    if (full)
        s->place_full++;
    else
        s->place_partial++;
    s->place_waiting += jt_place_waits(r);
    s->place_located += r->alloc_count > 0;
    uint32_t n = r->line_count, na = r->alloc_count;
    uint32_t ref = block_alloc(s, n + na);
    if (ref == NO_REF || idmap_put(&s->orders, r->id, ref) != 0) {
        if (ref != NO_REF)
            block_free(s, ref);
        warn_full(s);
        return;
    }
    s->pool[ref].sku = n;
    s->pool[ref].allocated = na;
    for (uint32_t i = 0; i < n; i++)
        s->pool[ref + 1 + i] = (pool_entry_t){.sku = r->lines[i].sku,
                                              .allocated = r->lines[i].allocated};
    for (uint32_t k = 0; k < na; k++)
        s->pool[ref + 1 + n + k] =
            (pool_entry_t){.sku = (uint64_t)r->allocs[k].line << 16 | r->allocs[k].location,
                           .allocated = r->allocs[k].units};
    for (uint32_t i = 0; i < n; i++)
        if (r->lines[i].allocated)
            take_units(s, r, r->lines[i].sku, r->lines[i].allocated, true);
}

/* Adds units at (line, loc) to the allocation entries of block ref. */
static void merge_alloc(stats_t *s, uint32_t ref, uint32_t line, uint16_t loc, uint32_t units)
{
    uint32_t n = order_line_count(s, ref), na = s->pool[ref].allocated;
    uint64_t key = (uint64_t)line << 16 | loc;
    pool_entry_t *a = &s->pool[ref + 1 + n];
    for (uint32_t k = 0; k < na; k++)
        if (a[k].sku == key) {
            a[k].allocated += units;
            return;
        }
    a[na] = (pool_entry_t){.sku = key, .allocated = units};
    s->pool[ref].allocated = na + 1;
}

/* Notes where a FILL's units sit when the order's or the FILL's units are
 * anywhere but location 0 (until then, none are kept: all is at 0). The
 * block may move (*refp follows). false when the pool is full. */
static bool fill_locations(stats_t *s, uint32_t *refp, const eng_record_t *r)
{
    uint32_t ref = *refp, n = order_line_count(s, ref), na = s->pool[ref].allocated;
    if (na == 0 && r->alloc_count == 0)
        return true;
    eng_alloc_t add[ALLOT_LOCATIONS_MAX];
    uint32_t cursor = 0, k = jt_line_locations(r, r->line, &cursor, add);
    uint32_t need = n + na + k + (na == 0 ? n : 0);
    if (need > block_room(s, ref)) {
        uint32_t grown = block_alloc(s, need);
        if (grown == NO_REF)
            return false;
        uint32_t cls = s->pool[grown].cls;
        memcpy(&s->pool[grown], &s->pool[ref], (1 + (size_t)n + na) * sizeof s->pool[0]);
        s->pool[grown].cls = cls;
        block_free(s, ref);
        *refp = ref = grown;
    }
    for (uint32_t i = 0; na == 0 && i < n; i++)
        if (s->pool[ref + 1 + i].allocated)
            merge_alloc(s, ref, i, 0, s->pool[ref + 1 + i].allocated);
    for (uint32_t j = 0; j < k; j++)
        merge_alloc(s, ref, r->line, add[j].location, add[j].units);
    return true;
}

static void on_fill(stats_t *s, const eng_record_t *r)
{
    s->fill_units += r->amount;
    s->fill_completed += r->state != ALLOT_STATE_BACKORDERED;
    s->fill_located += r->alloc_count > 0;
    uint32_t *refp = idmap_get(&s->orders, r->id);
    if (!refp) {
        s->unknown_orders++;
        return;
    }
    if (r->line >= order_line_count(s, *refp))
        return; /* replay refuses it; the figures leave it out */
    if (!fill_locations(s, refp, r))
        warn_full(s);
    pool_entry_t *l = &s->pool[*refp + 1 + r->line];
    bool first = l->allocated == 0;
    l->allocated += (uint32_t)r->amount;
    take_units(s, r, l->sku, (uint32_t)r->amount, first);
}

/* What FULFILL ships from the locations of a SKU stocked away from 0. */
static void ship_from(stats_t *s, uint64_t sku, uint16_t loc, uint32_t units)
{
    uint32_t *ix = idmap_get(&s->sku_index, sku);
    if (!ix || s->skus[*ix].locs == NO_REF)
        return;
    int64_t *at = loc_on_hand(&s->locs[s->skus[*ix].locs], loc);
    if (at)
        *at -= units;
}

/* CANCEL, EXPIRE (shipped false) and FULFILL (shipped true). */
static void on_end(stats_t *s, const eng_record_t *r, bool shipped)
{
    uint32_t *refp = idmap_get(&s->orders, r->id);
    if (!refp) {
        s->unknown_orders++;
        return;
    }
    uint32_t ref = *refp, n = order_line_count(s, ref), na = s->pool[ref].allocated;
    for (uint32_t i = 0; i < n; i++) {
        const pool_entry_t *l = &s->pool[ref + 1 + i];
        uint32_t *ix = l->allocated ? idmap_get(&s->sku_index, l->sku) : NULL;
        if (!ix)
            continue;
        sku_stat_t *st = &s->skus[*ix];
        st->allocated -= l->allocated;
        if (shipped)
            st->on_hand -= l->allocated;
        if (shipped && na == 0)
            ship_from(s, l->sku, 0, l->allocated);
    }
    for (uint32_t k = 0; shipped && k < na; k++) {
        const pool_entry_t *a = &s->pool[ref + 1 + n + k];
        uint32_t line = (uint32_t)(a->sku >> 16);
        if (line < n)
            ship_from(s, s->pool[ref + 1 + line].sku, (uint16_t)a->sku, a->allocated);
    }
    block_free(s, ref);
    idmap_del(&s->orders, r->id);
}

/* SKU_SET sets one location's on_hand; RESTOCK and ADJUST move it. */
static void on_sku(stats_t *s, const eng_record_t *r)
{
    sku_stat_t *st = sku_get(s, r->id);
    if (!st) {
        warn_full(s);
        return;
    }
    int64_t *at = NULL;
    if (r->location != 0 || st->locs != NO_REF) {
        loc_block_t *b = locs_of(s, st);
        at = b ? loc_on_hand(b, r->location) : NULL;
        if (!at) {
            warn_full(s);
            return;
        }
    }
    int64_t amount = (int64_t)r->amount; /* ADJUST's delta is signed */
    if (r->type == REC_SKU_SET) {
        st->on_hand += amount - (at ? *at : st->on_hand);
        if (at)
            *at = amount;
    } else {
        st->on_hand += amount;
        if (at)
            *at += amount;
    }
}

static int stats_record(void *ctx, const eng_record_t *r, const char *file, uint64_t off,
                        size_t size)
{
    stats_t *s = ctx;
    if (s->records++ == 0) {
        s->first_seq = r->seq;
        s->first_ms = r->time_ms;
    }
    s->last_seq = r->seq;
    s->last_ms = r->time_ms;
    s->by_type[r->type < REC_TYPE_COUNT ? r->type : 0]++;
    bucket_add(&s->per_second, r->time_ms);
    bucket_add(&s->per_minute, r->time_ms);
    switch (r->type) {
    case REC_SKU_SET:
    case REC_RESTOCK:
    case REC_ADJUST: on_sku(s, r); break;
    case REC_PLACE: on_place(s, r); break;
    case REC_FILL: on_fill(s, r); break;
    case REC_CANCEL:
    case REC_EXPIRE: on_end(s, r, false); break;
    case REC_FULFILL: on_end(s, r, true); break;
    case REC_CONFIRM:
    case REC_EXTEND:
        if (!idmap_get(&s->orders, r->id))
            s->unknown_orders++;
        break;
    default: break;
    }
    return 0;
}

/* ---- reports ------------------------------------------------------------------------------ */

/* The TOP_SKUS SKUs with the most units allocated, best first. */
static size_t top_skus(const stats_t *s, const sku_stat_t **top)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nskus; i++) {
        const sku_stat_t *st = &s->skus[i];
        if (st->units == 0)
            continue;
        size_t k = n < TOP_SKUS ? n++ : TOP_SKUS;
        if (k == TOP_SKUS) {
            if (st->units <= top[TOP_SKUS - 1]->units)
                continue;
            k = TOP_SKUS - 1;
        }
        while (k > 0 && top[k - 1]->units < st->units) {
            top[k] = top[k - 1];
            k--;
        }
        top[k] = st;
    }
    return n;
}

static int cmp_sold_out(const void *a, const void *b)
{
    const sku_stat_t *x = *(const sku_stat_t *const *)a, *y = *(const sku_stat_t *const *)b;
    return x->sold_out_seq < y->sold_out_seq ? -1 : x->sold_out_seq > y->sold_out_seq;
}

/* The SKUs that sold out, in the order they did. */
static const sku_stat_t **sold_out_list(const stats_t *s, size_t *n)
{
    *n = 0;
    const sku_stat_t **v = malloc((s->nskus + 1) * sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; i < s->nskus; i++)
        if (s->skus[i].sold_out_count)
            v[(*n)++] = &s->skus[i];
    qsort(v, *n, sizeof *v, cmp_sold_out);
    return v;
}

/* Records and records/s over time, at most TABLE_ROWS_MAX rows: from the
 * per-second counts for a journal shorter than half an hour, else from
 * the per-minute ones. A row's rate is over the part of it the journal
 * covers. */
static void print_table(const stats_t *s)
{
    bool by_second = !s->per_second.truncated && s->last_ms - s->first_ms < 30 * 60000;
    const buckets_t *b = by_second ? &s->per_second : &s->per_minute;
    if (b->n == 0)
        return;
    uint64_t width = b->width_ms, first = b->v[0].t;
    uint64_t units = (b->v[b->n - 1].t - first) / width + 1;
    uint64_t per_row = (units + TABLE_ROWS_MAX - 1) / TABLE_ROWS_MAX;
    uint64_t rows[TABLE_ROWS_MAX] = {0}, max = 0;
    size_t nrows = (size_t)((units + per_row - 1) / per_row);
    for (size_t i = 0; i < b->n; i++)
        rows[(b->v[i].t - first) / width / per_row] += b->v[i].n;
    for (size_t i = 0; i < nrows; i++)
        max = rows[i] > max ? rows[i] : max;
    printf("  %-24s %12s %12s\n", "from", "records", "records/s");
    for (size_t i = 0; i < nrows; i++) {
        uint64_t from = first + i * per_row * width, to = from + per_row * width;
        uint64_t lo = from > s->first_ms ? from : s->first_ms;
        uint64_t hi = to < s->last_ms + 1 ? to : s->last_ms + 1;
        double secs = hi > lo ? (double)(hi - lo) / 1000.0 : 0.001;
        char t[JT_TIME_TEXT], bar[41];
        jt_format_time(from, t);
        size_t w = max ? (size_t)(rows[i] * 40 / max) : 0;
        memset(bar, '#', w);
        bar[w] = '\0';
        printf("  %-24s %12" PRIu64 " %12.0f %s\n", t, rows[i], (double)rows[i] / secs, bar);
    }
    printf("  (each row spans %" PRIu64 " %s)\n", per_row, by_second ? "s" : "min");
}

static void print_text(const stats_t *s)
{
    char a[JT_TIME_TEXT], b[JT_TIME_TEXT];
    jt_format_time(s->first_ms, a);
    jt_format_time(s->last_ms, b);
    printf("records        %" PRIu64 " (seq %" PRIu64 " .. %" PRIu64 ")\n", s->records,
           s->first_seq, s->last_seq);
    printf("time           %s .. %s (%.3f s)\n", a, b,
           (double)(s->last_ms - s->first_ms) / 1000.0);
    printf("by type       ");
    for (unsigned t = 1; t < REC_TYPE_COUNT; t++)
        printf(" %s %" PRIu64, eng_record_type_name(t), s->by_type[t]);
    printf("\nPLACE          %" PRIu64 ": ", s->by_type[REC_PLACE]);
    for (unsigned p = 0; p < ALLOT_POLICY_COUNT; p++)
        printf("%s %" PRIu64 ", ", allot_policy_name(p), s->by_policy[p]);
    printf("full %" PRIu64 ", partial %" PRIu64 "; units requested %" PRIu64
           ", allocated %" PRIu64 "\n",
           s->place_full, s->place_partial, s->units_requested, s->units_allocated);
    printf("               %" PRIu64 " left lines waiting (BACKORDERED), %" PRIu64
           " took units from other locations than 0\n",
           s->place_waiting, s->place_located);
    printf("FILL           %" PRIu64 ": %" PRIu64 " units to waiting lines, %" PRIu64
           " from other locations than 0; %" PRIu64 " orders completed\n",
           s->by_type[REC_FILL], s->fill_units, s->fill_located, s->fill_completed);
    printf("outcomes       CONFIRMED %" PRIu64 ", CANCELLED %" PRIu64 ", FULFILLED %" PRIu64
           ", EXPIRED %" PRIu64 ", extended %" PRIu64 ", BACKORDERED %" PRIu64
           ", completed by FILL %" PRIu64 "; open at the end %" PRIu64 "\n",
           s->by_type[REC_CONFIRM], s->by_type[REC_CANCEL], s->by_type[REC_FULFILL],
           s->by_type[REC_EXPIRE], s->by_type[REC_EXTEND], s->place_waiting, s->fill_completed,
           (uint64_t)s->orders.count);
    if (s->unknown_orders)
        printf("               %" PRIu64 " records concern orders placed before this journal\n",
               s->unknown_orders);
    jt_format_time(s->per_second.peak.t, a);
    jt_format_time(s->per_minute.peak.t, b);
    printf("peak           %" PRIu64 " records/s at %s; %" PRIu64 " records in the minute "
           "from %s\n",
           s->per_second.peak.n, a, s->per_minute.peak.n, b);
    printf("throughput\n");
    print_table(s);
    const sku_stat_t *top[TOP_SKUS];
    size_t ntop = top_skus(s, top);
    printf("top SKUs by units allocated\n");
    for (size_t i = 0; i < ntop; i++)
        printf("  %2zu. sku %" PRIu64 ": %" PRIu64 " units in %" PRIu64 " orders\n", i + 1,
               top[i]->sku, top[i]->units, top[i]->orders);
    size_t nsold;
    const sku_stat_t **sold = sold_out_list(s, &nsold);
    printf("sold out       %zu SKUs\n", nsold);
    for (size_t i = 0; sold && i < nsold && i < SOLD_OUT_SHOWN; i++) {
        jt_format_time(sold[i]->sold_out_ms, a);
        printf("  sku %" PRIu64 " at %s (seq %" PRIu64 ")%s", sold[i]->sku, a,
               sold[i]->sold_out_seq, sold[i]->sold_out_count > 1 ? "," : "\n");
        if (sold[i]->sold_out_count > 1)
            printf(" %" PRIu32 " times in all\n", sold[i]->sold_out_count);
    }
    if (nsold > SOLD_OUT_SHOWN)
        printf("  ... and %zu more (--json lists them all)\n", nsold - SOLD_OUT_SHOWN);
    free(sold);
}

static void print_buckets(const char *key, const buckets_t *b)
{
    printf(",\"%s\":[", key);
    for (size_t i = 0; i < b->n; i++)
        printf("%s{\"t\":%" PRIu64 ",\"n\":%" PRIu64 "}", i ? "," : "", b->v[i].t, b->v[i].n);
    printf("],\"%s_truncated\":%s", key, b->truncated ? "true" : "false");
}

static void print_json(const stats_t *s)
{
    printf("{\"records\":%" PRIu64 ",\"first_seq\":%" PRIu64 ",\"last_seq\":%" PRIu64
           ",\"first_ms\":%" PRIu64 ",\"last_ms\":%" PRIu64 ",\"by_type\":{",
           s->records, s->first_seq, s->last_seq, s->first_ms, s->last_ms);
    for (unsigned t = 1; t < REC_TYPE_COUNT; t++)
        printf("%s\"%s\":%" PRIu64, t > 1 ? "," : "", eng_record_type_name(t), s->by_type[t]);
    printf("},\"place\":{\"by_policy\":{");
    for (unsigned p = 0; p < ALLOT_POLICY_COUNT; p++)
        printf("%s\"%s\":%" PRIu64, p ? "," : "", allot_policy_name(p), s->by_policy[p]);
    printf("},\"full\":%" PRIu64 ",\"partial\":%" PRIu64 ",\"units_requested\":%" PRIu64
           ",\"units_allocated\":%" PRIu64 ",\"waiting\":%" PRIu64 ",\"located\":%" PRIu64 "}",
           s->place_full, s->place_partial, s->units_requested, s->units_allocated,
           s->place_waiting, s->place_located);
    printf(",\"fill\":{\"records\":%" PRIu64 ",\"units\":%" PRIu64 ",\"located\":%" PRIu64
           ",\"completed\":%" PRIu64 "}",
           s->by_type[REC_FILL], s->fill_units, s->fill_located, s->fill_completed);
    printf(",\"outcomes\":{\"CONFIRMED\":%" PRIu64 ",\"CANCELLED\":%" PRIu64
           ",\"FULFILLED\":%" PRIu64 ",\"EXPIRED\":%" PRIu64 ",\"EXTENDED\":%" PRIu64
           ",\"BACKORDERED\":%" PRIu64 ",\"FILLED\":%" PRIu64
           ",\"open_at_end\":%" PRIu64 ",\"placed_before_journal\":%" PRIu64 "}",
           s->by_type[REC_CONFIRM], s->by_type[REC_CANCEL], s->by_type[REC_FULFILL],
           s->by_type[REC_EXPIRE], s->by_type[REC_EXTEND], s->place_waiting, s->fill_completed,
           (uint64_t)s->orders.count, s->unknown_orders);
    printf(",\"throughput\":{\"peak_per_second\":{\"t\":%" PRIu64 ",\"n\":%" PRIu64
           "},\"peak_per_minute\":{\"t\":%" PRIu64 ",\"n\":%" PRIu64 "}",
           s->per_second.peak.t, s->per_second.peak.n, s->per_minute.peak.t,
           s->per_minute.peak.n);
    print_buckets("per_second", &s->per_second);
    print_buckets("per_minute", &s->per_minute);
    printf("},\"top_skus\":[");
    const sku_stat_t *top[TOP_SKUS];
    size_t ntop = top_skus(s, top);
    for (size_t i = 0; i < ntop; i++)
        printf("%s{\"sku\":%" PRIu64 ",\"units\":%" PRIu64 ",\"orders\":%" PRIu64 "}",
               i ? "," : "", top[i]->sku, top[i]->units, top[i]->orders);
    printf("],\"sold_out\":[");
    size_t nsold;
    const sku_stat_t **sold = sold_out_list(s, &nsold);
    for (size_t i = 0; sold && i < nsold; i++)
        printf("%s{\"sku\":%" PRIu64 ",\"t\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"times\":%" PRIu32
               "}",
               i ? "," : "", sold[i]->sku, sold[i]->sold_out_ms, sold[i]->sold_out_seq,
               sold[i]->sold_out_count);
    free(sold);
    printf("]}\n");
}

/* ---- the command ----------------------------------------------------------------------------- */

static int stats_init(stats_t *s)
{
    memset(s, 0, sizeof *s);
    for (unsigned c = 0; c < ENTRY_CLASSES; c++)
        s->free_block[c] = NO_REF;
    s->per_second.width_ms = 1000;
    s->per_minute.width_ms = 60000;
    if (idmap_init(&s->sku_index, SKUS_MAX_CEILING) != 0 ||
        idmap_init(&s->orders, ORDERS_MAX_CEILING) != 0)
        return -ENOMEM;
    return 0;
}

static void stats_deinit(stats_t *s)
{
    idmap_deinit(&s->sku_index);
    idmap_deinit(&s->orders);
    free(s->skus);
    free(s->locs);
    free(s->pool);
    free(s->per_second.v);
    free(s->per_minute.v);
}

static const jt_optspec_t stats_spec[] = {{"json", JT_FLAG}};

int jt_cmd_stats(int argc, char **argv)
{
    jt_args_t *a = malloc(sizeof *a);
    stats_t *s = calloc(1, sizeof *s);
    char err[200];
    int code = JT_EXIT_OK;
    if (!a || !s || stats_init(s) != 0) {
        jt_error("out of memory");
        code = JT_EXIT_PROBLEM;
    } else if (jt_split(argc, argv, stats_spec, 1, a, err, sizeof err) != 0) {
        code = jt_usage_error("stats", "%s", err);
    } else if (a->help) {
        fputs(stats_help, stdout);
    } else if (!a->dir) {
        code = jt_usage_error("stats", "DIR is missing");
    } else {
        s->json = a->given[0];
        storage_t st;
        jr_dir_t d;
        if (jt_open_dir(a->dir, &st, &d) != 0) {
            code = JT_EXIT_PROBLEM;
        } else {
            jt_walk_opts_t wo = {.what = "stats"};
            jt_walk_result_t res;
            int rc = jt_walk(&st, &d, &wo, stats_record, s, &res);
            jt_close_dir(&st, &d);
            if (rc != 0 || res.corrupt || res.problems)
                code = JT_EXIT_PROBLEM;
            bucket_close(&s->per_second);
            bucket_close(&s->per_minute);
            if (s->json)
                print_json(s);
            else
                print_text(s);
        }
    }
    if (s)
        stats_deinit(s);
    free(a);
    free(s);
    return jt_finish_stdout(code);
}
