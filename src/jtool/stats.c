/*
 * allot-journal stats: what happened, from the records alone (no engine):
 * records by type, PLACEs by policy and by full or partial allocation,
 * what became of the orders, throughput over time, the SKUs that sold the
 * most, and when each SKU sold out.
 *
 * Sell-outs need every SKU's on_hand and allocated at every PLACE, so
 * stats keeps its own counters: SKU_SET sets on_hand, RESTOCK and ADJUST
 * move it, PLACE adds to allocated, CANCEL and EXPIRE give an order's
 * units back, FULFILL takes them out of both. That needs the allocated
 * lines of every open order: a map from order id to a block in a line
 * pool, forgotten when the order ends, so memory follows the open orders,
 * not the length of the journal. Every table has a ceiling.
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
#define LINE_CLASSES 7u          /* blocks of 1, 2, 4 ... 64 lines */
#define NO_REF UINT32_MAX

static const char stats_help[] =
    "usage: allot-journal stats DIR [--json]\n"
    "\n"
    "Reads the whole journal (read-only; safe while the server runs) and reports:\n"
    "  - records by type\n"
    "  - PLACEs by policy and by full or partial allocation, units requested and\n"
    "    allocated\n"
    "  - outcomes: how many orders were later confirmed, cancelled, fulfilled or\n"
    "    expired, and how many are still open at the end of the journal\n"
    "  - throughput by record time: peak records per second and per minute, and a\n"
    "    table over time (with --json: every second and minute as {t, n}, t in\n"
    "    epoch milliseconds, up to 1048576 entries each)\n"
    "  - the top 10 SKUs by units allocated\n"
    "  - when each SKU sold out: the first PLACE after which its available units\n"
    "    (on_hand - allocated) reached 0, and how often that happened\n"
    "Stock figures start from zero at the journal's first record: for a journal\n"
    "whose early segments were archived, sell-outs are relative to what it holds.\n"
    "\n"
    "  --json   one JSON object\n"
    "\n"
    "Exit status: 0 done, 1 the journal is corrupt or unreadable (the figures up\n"
    "to that point are printed), 2 usage error.\n";

typedef struct sku_stat {
    uint64_t sku;
    int64_t on_hand;
    int64_t allocated;
    uint64_t units;      /* allocated by PLACEs, in total */
    uint64_t orders;     /* PLACE lines that took units */
    uint64_t sold_out_ms, sold_out_seq;
    uint32_t sold_out_count;
} sku_stat_t;

typedef struct pool_line {
    uint64_t sku; /* block header: the line count; free block: next free */
    uint32_t allocated;
    uint32_t cls;
} pool_line_t;

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
    uint64_t unknown_orders;  /* later records of orders placed before the journal */
    uint64_t untracked;       /* orders not followed (a table was full) */
    /* SKUs */
    idmap_t sku_index;
    sku_stat_t *skus;
    size_t nskus, skus_cap;
    /* open orders and their allocated lines */
    idmap_t orders;
    pool_line_t *pool;
    uint32_t pool_top, pool_cap;
    uint32_t free_block[LINE_CLASSES];
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
    return st;
}

static uint32_t block_class(uint32_t n)
{
    uint32_t c = 0;
    while ((UINT32_C(1) << c) < n)
        c++;
    return c;
}

/* A block for n lines (plus its header); NO_REF when the pool is full. */
static uint32_t block_alloc(stats_t *s, uint32_t n)
{
    uint32_t c = block_class(n);
    if (s->free_block[c] != NO_REF) {
        uint32_t ref = s->free_block[c];
        s->free_block[c] = (uint32_t)s->pool[ref].sku;
        return ref;
    }
    uint32_t size = (UINT32_C(1) << c) + 1;
    if ((uint64_t)s->pool_top + size > s->pool_cap) {
        uint64_t cap = s->pool_cap ? (uint64_t)s->pool_cap * 2 : 4096;
        while (cap < (uint64_t)s->pool_top + size)
            cap *= 2;
        if (cap > POOL_MAX)
            return NO_REF;
        pool_line_t *p = realloc(s->pool, cap * sizeof *p);
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

static void on_place(stats_t *s, const eng_record_t *r)
{
    s->by_policy[r->policy < ALLOT_POLICY_COUNT ? r->policy : ALLOT_POLICY_COUNT]++;
    bool full = true;
    uint32_t taken = 0;
    for (uint32_t i = 0; i < r->line_count; i++) {
        s->units_requested += r->lines[i].qty;
        s->units_allocated += r->lines[i].allocated;
        full &= r->lines[i].allocated == r->lines[i].qty;
        taken += r->lines[i].allocated > 0;
    }
    if (full)
        s->place_full++;
    else
        s->place_partial++;
    uint32_t ref = block_alloc(s, taken ? taken : 1);
    if (ref == NO_REF || idmap_put(&s->orders, r->id, ref) != 0) {
        if (ref != NO_REF)
            block_free(s, ref);
        warn_full(s);
        return;
    }
    s->pool[ref].sku = taken;
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->line_count; i++) {
        uint32_t a = r->lines[i].allocated;
        if (a == 0)
            continue;
        s->pool[ref + 1 + k++] = (pool_line_t){.sku = r->lines[i].sku, .allocated = a};
        sku_stat_t *st = sku_get(s, r->lines[i].sku);
        if (!st) {
            warn_full(s);
            continue;
        }
        st->allocated += a;
        st->units += a;
        st->orders++;
        if (st->on_hand - st->allocated <= 0) {
            if (st->sold_out_count++ == 0) {
                st->sold_out_ms = r->time_ms;
                st->sold_out_seq = r->seq;
            }
        }
    }
}

/* CANCEL, EXPIRE (shipped false) and FULFILL (shipped true). */
static void on_end(stats_t *s, const eng_record_t *r, bool shipped)
{
    uint32_t *refp = idmap_get(&s->orders, r->id);
    if (!refp) {
        s->unknown_orders++;
        return;
    }
    uint32_t ref = *refp;
    uint32_t n = (uint32_t)s->pool[ref].sku;
    for (uint32_t k = 0; k < n; k++) {
        const pool_line_t *l = &s->pool[ref + 1 + k];
        sku_stat_t *st = sku_get(s, l->sku);
        if (!st)
            continue;
        st->allocated -= l->allocated;
        if (shipped)
            st->on_hand -= l->allocated;
    }
    block_free(s, ref);
    idmap_del(&s->orders, r->id);
}

static void on_sku(stats_t *s, const eng_record_t *r)
{
    sku_stat_t *st = sku_get(s, r->id);
    if (!st) {
        warn_full(s);
        return;
    }
    if (r->type == REC_SKU_SET)
        st->on_hand = (int64_t)r->amount;
    else
        st->on_hand += (int64_t)r->amount; /* RESTOCK adds; ADJUST's delta is signed */
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
    printf("outcomes       CONFIRMED %" PRIu64 ", CANCELLED %" PRIu64 ", FULFILLED %" PRIu64
           ", EXPIRED %" PRIu64 ", extended %" PRIu64 "; open at the end %" PRIu64 "\n",
           s->by_type[REC_CONFIRM], s->by_type[REC_CANCEL], s->by_type[REC_FULFILL],
           s->by_type[REC_EXPIRE], s->by_type[REC_EXTEND], (uint64_t)s->orders.count);
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
           ",\"units_allocated\":%" PRIu64 "}",
           s->place_full, s->place_partial, s->units_requested, s->units_allocated);
    printf(",\"outcomes\":{\"CONFIRMED\":%" PRIu64 ",\"CANCELLED\":%" PRIu64
           ",\"FULFILLED\":%" PRIu64 ",\"EXPIRED\":%" PRIu64 ",\"EXTENDED\":%" PRIu64
           ",\"open_at_end\":%" PRIu64 ",\"placed_before_journal\":%" PRIu64 "}",
           s->by_type[REC_CONFIRM], s->by_type[REC_CANCEL], s->by_type[REC_FULFILL],
           s->by_type[REC_EXPIRE], s->by_type[REC_EXTEND], (uint64_t)s->orders.count,
           s->unknown_orders);
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
    for (unsigned c = 0; c < LINE_CLASSES; c++)
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
