#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/limits.h"
#include "common/verify.h"
#include "journal/format.h"
#include "jtest.h"

#define JT_SKUS 200u

/* ---- configuration -------------------------------------------------------- */

void jt_engine_config(engine_config_t *cfg)
{
    engine_config_default(cfg);
    cfg->skus_max = 512;
    cfg->shards = 4;
    cfg->orders_max = 1u << 14;
    cfg->lines_max = 1u << 17;
    cfg->limits_max = 1u << 14;
    cfg->retain_max = 256;
    cfg->retain_ms = 2000;
    cfg->hold_max_ms = 3000;
}

uint64_t jt_clock_ms(void *ctx) { return atomic_load((_Atomic uint64_t *)ctx); }

void jt_journal_config(journal_config_t *jc, storage_t st, const engine_config_t *ecfg,
                       durability_t d, _Atomic uint64_t *clock)
{
    memset(jc, 0, sizeof *jc);
    jc->storage = st;
    jc->durability = d;
    jc->fsync_ms = 5;
    jc->segment_bytes = JOURNAL_SEGMENT_MIN;
    jc->buffer_bytes = 2u << 20;
    jc->params = (journal_params_t){.retain_max = ecfg->retain_max,
                                    .retain_ms = ecfg->retain_ms,
                                    .hold_max_ms = ecfg->hold_max_ms};
    jc->clock_ms = jt_clock_ms;
    jc->clock_ctx = clock;
}

uint64_t jt_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void jt_sleep_us(unsigned us)
{
    struct timespec ts = {.tv_sec = us / 1000000u, .tv_nsec = (long)(us % 1000000u) * 1000};
    nanosleep(&ts, NULL);
}

/* ---- the record log ------------------------------------------------------ */

void jt_log_init(jt_log_t *l) { memset(l, 0, sizeof *l); }

void jt_log_free(jt_log_t *l)
{
    free(l->bytes);
    free(l->offs);
    memset(l, 0, sizeof *l);
}

static void log_record(void *ctx, const eng_record_t *rec)
{
    jt_log_t *l = ctx;
    VERIFY(rec->seq == l->count + 1);
    size_t n = rec_encoded_size(rec);
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : (1u << 20);
        while (cap < l->len + n)
            cap *= 2;
        uint8_t *b = realloc(l->bytes, cap);
        VERIFY(b != NULL);
        l->bytes = b;
        l->cap = cap;
    }
    if (l->count == l->offs_cap) {
        uint64_t cap = l->offs_cap ? l->offs_cap * 2 : 4096;
        size_t *o = realloc(l->offs, cap * sizeof *o);
        VERIFY(o != NULL);
        l->offs = o;
        l->offs_cap = cap;
    }
    VERIFY(rec_encode(l->bytes + l->len, rec) == n);
    l->offs[l->count++] = l->len;
    l->len += n;
    if (l->next.record)
        l->next.record(l->next.ctx, rec);
}

eng_sink_t jt_log_sink(jt_log_t *l, const eng_sink_t *next)
{
    if (next)
        l->next = *next;
    return (eng_sink_t){.record = log_record, .ctx = l};
}

const uint8_t *jt_log_bytes(const jt_log_t *l, uint64_t seq, size_t *len)
{
    VERIFY(seq >= 1 && seq <= l->count);
    size_t off = l->offs[seq - 1];
    *len = (seq == l->count ? l->len : l->offs[seq]) - off;
    return l->bytes + off;
}

void jt_log_get(const jt_log_t *l, uint64_t seq, eng_record_t *rec, eng_line_t *lines)
{
    /* rec->allocs points here until the next call */
    static _Thread_local rec_bufs_t bufs;
    size_t len, size;
    const uint8_t *b = jt_log_bytes(l, seq, &len);
    const char *why;
    VERIFY(rec_decode(b, len, rec, &bufs, &size, &why) == REC_STATUS_OK && size == len);
    if (rec->line_count) {
        memcpy(lines, bufs.lines, rec->line_count * sizeof *lines);
        rec->lines = lines;
    }
}

int jt_log_replay(const jt_log_t *l, const engine_config_t *cfg, uint64_t upto, engine_t **out,
                  char *why, size_t why_len)
{
    VERIFY(upto <= l->count);
    engine_t *e;
    int rc = engine_init(&e, cfg);
    if (rc != 0)
        return rc;
    eng_record_t rec;
    eng_line_t lines[ALLOT_LINES_MAX];
    for (uint64_t s = 1; s <= upto && rc == 0; s++) {
        jt_log_get(l, s, &rec, lines);
        rc = engine_replay(e, &rec, why, why_len);
    }
    if (rc != 0) {
        engine_deinit(e);
        return rc;
    }
    *out = e;
    return 0;
}

uint64_t jt_log_digest(const jt_log_t *l, const engine_config_t *cfg, uint64_t upto)
{
    engine_t *e;
    char why[200];
    if (jt_log_replay(l, cfg, upto, &e, why, sizeof why) != 0) {
        fprintf(stderr, "jt_log_digest: replay of %" PRIu64 " records failed: %s\n", upto, why);
        return 0;
    }
    uint64_t d = engine_digest(e);
    engine_deinit(e);
    return d;
}

void jt_log_truncate(jt_log_t *l, uint64_t upto)
{
    if (upto >= l->count)
        return;
    l->len = l->offs[upto];
    l->count = upto;
}

void jt_log_type_counts(const jt_log_t *l, uint64_t counts[REC_TYPE_COUNT])
{
    memset(counts, 0, REC_TYPE_COUNT * sizeof counts[0]);
    for (uint64_t s = 1; s <= l->count; s++) {
        size_t len;
        const uint8_t *b = jt_log_bytes(l, s, &len);
        uint16_t type = allot_get_u16(b + 4);
        if (type < REC_TYPE_COUNT)
            counts[type]++;
    }
}

/* ---- the workload ------------------------------------------------------------ */

uint64_t jt_sku_id(uint32_t i) { return 1000u + i; }

void jt_work_init(jt_work_t *w, uint64_t seed, uint32_t skus, enum jt_mix mix)
{
    memset(w, 0, sizeof *w);
    VERIFY(skus >= 2 && skus <= 1024);
    w->rng = seed;
    w->now_ms = JT_START_MS;
    w->skus = skus;
    w->mix = mix;
    w->lines_max = mix == JT_MIX_WIDE ? 48 : 4;
    if (w->lines_max > skus)
        w->lines_max = skus;
    w->next_order = 1;
    for (uint32_t i = 0; i < skus; i++)
        w->perm[i] = i;
}

static uint64_t rnd(jt_work_t *w, uint64_t n) { return sim_rand_below(&w->rng, n); }

static void op_sku_set(jt_work_t *w, eng_op_t *op, uint32_t i)
{
    op->opcode = ALLOT_OP_SKU_SET;
    op->id = jt_sku_id(i);
    bool big = w->mix != JT_MIX_ORDERS;
    op->amount = big ? 1000000 + rnd(w, 1000) : 20 + rnd(w, 300);
    op->limit = !big && rnd(w, 10) < 3 ? (uint32_t)(5 + rnd(w, 40)) : 0;
    op->reorder_point = (uint32_t)rnd(w, 10);
    /* Some SKUs are stocked in more than one warehouse. */
    if (rnd(w, 4) == 0) {
        op->location = (uint16_t)rnd(w, 3);
        op->priority = (uint16_t)rnd(w, 3);
    }
}

static void op_place(jt_work_t *w, eng_op_t *op)
{
    op->opcode = ALLOT_OP_PLACE;
    op->id = w->next_order++;
    op->customer = 1 + rnd(w, 40);
    uint32_t n = 1 + (uint32_t)rnd(w, w->lines_max);
    if (w->mix == JT_MIX_WIDE)
        n = w->lines_max / 2 + (uint32_t)rnd(w, w->lines_max / 2 + 1);
    op->line_count = (uint8_t)n;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = i + (uint32_t)rnd(w, w->skus - i);
        uint32_t t = w->perm[i];
        w->perm[i] = w->perm[k];
        w->perm[k] = t;
        op->lines[i] = (eng_line_t){.sku = jt_sku_id(w->perm[i]),
                                    .qty = 1 + (uint32_t)rnd(w, w->mix == JT_MIX_ORDERS ? 4 : 2)};
    }
    op->policy = w->mix == JT_MIX_WIDE || rnd(w, 10) < 4 ? ALLOT_POLICY_PARTIAL
                                                        : ALLOT_POLICY_ALL_OR_NOTHING;
    op->ms = rnd(w, 2) ? 0 : (uint32_t)(200 + rnd(w, 2500));
    /* Waitlists: a backorder, sometimes with a maximum wait; or lines that
     * must come from one warehouse. */
    uint64_t kind = rnd(w, 20);
    if (w->mix != JT_MIX_WIDE && kind < 3) {
        op->policy = ALLOT_POLICY_BACKORDER;
        op->max_wait_ms = rnd(w, 2) ? 0 : (uint32_t)(500 + rnd(w, 3000));
    } else if (kind == 3) {
        op->place_flags = ALLOT_PLACE_FLAG_SINGLE_LOCATION;
    }
    w->last_place = *op;
    memcpy(w->last_lines, op->lines, n * sizeof op->lines[0]);
    w->have_last = true;
}

static uint64_t some_order(jt_work_t *w)
{
    if (w->known_count == 0 || rnd(w, 100) < 8)
        return w->next_order + 1000000 + rnd(w, 1000);
    uint64_t n = w->known_count < JT_KNOWN_MAX ? w->known_count : JT_KNOWN_MAX;
    return w->known[rnd(w, n)];
}

static void op_stock(jt_work_t *w, eng_op_t *op, bool restock)
{
    op->id = jt_sku_id((uint32_t)rnd(w, w->skus));
    op->location = rnd(w, 4) == 0 ? (uint16_t)rnd(w, 3) : 0;
    if (restock) {
        op->opcode = ALLOT_OP_RESTOCK;
        op->amount = 1 + rnd(w, 50);
    } else {
        op->opcode = ALLOT_OP_ADJUST;
        int64_t d = 1 + (int64_t)rnd(w, 20);
        op->amount = (uint64_t)(rnd(w, 3) == 0 ? -d : d);
    }
}

static void op_mixed(jt_work_t *w, eng_op_t *op)
{
    uint64_t r = rnd(w, 100);
    if (r < 35) {
        op_place(w, op);
    } else if (r < 38 && w->have_last) {
        /* A client's retry: an idempotent replay, or a fresh attempt if the
         * first one was rejected. */
        eng_line_t *lines = op->lines;
        *op = w->last_place;
        op->lines = lines;
        memcpy(lines, w->last_lines, op->line_count * sizeof lines[0]);
    } else if (r < 66) {
        static const uint16_t order_ops[] = {ALLOT_OP_CONFIRM, ALLOT_OP_CONFIRM,
                                             ALLOT_OP_CANCEL,  ALLOT_OP_FULFILL,
                                             ALLOT_OP_FULFILL, ALLOT_OP_EXTEND};
        op->opcode = order_ops[rnd(w, 6)];
        op->id = some_order(w);
        if (op->opcode == ALLOT_OP_EXTEND)
            op->ms = (uint32_t)(100 + rnd(w, 3000));
    } else if (r < 83) {
        op_stock(w, op, r < 76);
    } else if (r < 85) {
        op_sku_set(w, op, (uint32_t)rnd(w, w->skus));
    } else if (r < 92) {
        op->opcode = ALLOT_OP_ORDER_GET;
        op->id = some_order(w);
    } else {
        op->opcode = ALLOT_OP_SKU_GET;
        op->id = jt_sku_id((uint32_t)rnd(w, w->skus));
    }
}

void jt_work_op(jt_work_t *w, eng_op_t *op, eng_line_t *lines)
{
    memset(op, 0, sizeof *op);
    op->lines = lines;
    w->now_ms += rnd(w, 3);
    if (w->setup < w->skus) {
        op_sku_set(w, op, w->setup++);
        return;
    }
    uint64_t r = rnd(w, 100);
    switch (w->mix) {
    case JT_MIX_ORDERS: op_mixed(w, op); break;
    case JT_MIX_STOCK:
        if (r < 90)
            op_stock(w, op, r < 70);
        else
            op_mixed(w, op);
        break;
    case JT_MIX_WIDE:
        if (r < 60) {
            op_place(w, op);
        } else if (r < 90) {
            op->opcode = r < 75 ? ALLOT_OP_FULFILL : ALLOT_OP_CANCEL;
            op->id = some_order(w);
        } else {
            op_stock(w, op, true);
        }
        break;
    }
}

void jt_work_learn(jt_work_t *w, const eng_op_t *op)
{
    if (op->opcode != ALLOT_OP_PLACE || op->result != ALLOT_OK ||
        (op->flags & ALLOT_FLAG_REPLAY))
        return;
    w->known[w->known_count % JT_KNOWN_MAX] = op->id;
    w->known_count++;
}

/* ---- driving ------------------------------------------------------------------ */

static uint8_t admit_wait(journal_t *j, const eng_op_t *ops, size_t n)
{
    uint64_t deadline = jt_monotonic_ms() + JT_WAIT_MS;
    for (;;) {
        uint8_t a = journal_admit(j, ops, n, EXPIRE_PER_STEP_MAX);
        /* READ_ONLY without a full disk: the writer has not prepared the
         * next segment yet. Let it catch up. */
        if (a != ALLOT_READ_ONLY || journal_read_only(j) || jt_monotonic_ms() > deadline)
            return a;
        journal_commit(j);
        jt_sleep_us(100);
    }
}

uint8_t jt_apply(journal_t *j, engine_t *e, eng_op_t *ops, size_t n, uint64_t now_ms)
{
    uint8_t a = admit_wait(j, ops, n);
    if (a == ALLOT_OK)
        engine_apply(e, ops, n, now_ms);
    else
        engine_refuse(e, ops, n, a);
    journal_commit(j);
    return a;
}

uint8_t jt_expire(journal_t *j, engine_t *e, uint64_t now_ms)
{
    uint8_t a = admit_wait(j, NULL, 0);
    if (a == ALLOT_OK) {
        engine_expire(e, now_ms, EXPIRE_PER_STEP_MAX);
        journal_commit(j);
    }
    return a;
}

bool jt_wait_release(journal_t *j, uint64_t seq)
{
    uint64_t deadline = jt_monotonic_ms() + JT_WAIT_MS;
    journal_commit(j);
    while (journal_release_seq(j) < seq) {
        if (journal_failed(j) || jt_monotonic_ms() > deadline)
            return false;
        jt_sleep_us(50);
    }
    return true;
}

int jt_rig_open(jt_rig_t *r, uint64_t seed, durability_t d, enum jt_mix mix)
{
    return jt_rig_open_ex(r, seed, d, mix, SIM_CAPACITY_UNLIMITED);
}

int jt_rig_open_ex(jt_rig_t *r, uint64_t seed, durability_t d, enum jt_mix mix,
                   uint64_t capacity)
{
    memset(r, 0, sizeof *r);
    jt_engine_config(&r->ecfg);
    atomic_store(&r->clock, JT_START_MS);
    int rc = sim_init(&r->sim);
    if (rc != 0)
        return rc;
    sim_set_capacity(r->sim, capacity);
    r->st = sim_storage(r->sim);
    jt_journal_config(&r->jcfg, r->st, &r->ecfg, d, &r->clock);
    rc = journal_open(&r->j, &r->jcfg, 1);
    if (rc == 0)
        rc = engine_init(&r->e, &r->ecfg);
    if (rc != 0)
        return rc;
    jt_log_init(&r->log);
    eng_sink_t js = journal_sink(r->j);
    eng_sink_t tee = jt_log_sink(&r->log, &js);
    engine_set_sink(r->e, &tee);
    jt_work_init(&r->work, seed, JT_SKUS, mix);
    return 0;
}

uint64_t jt_rig_run(jt_rig_t *r, uint64_t nops, uint32_t batch_max)
{
    eng_op_t ops[JT_BATCH_MAX];
    eng_line_t(*lines)[ALLOT_LINES_MAX] = malloc(JT_BATCH_MAX * sizeof *lines);
    VERIFY(lines != NULL && batch_max >= 1 && batch_max <= JT_BATCH_MAX);
    uint64_t done = 0, refused = 0;
    while (done < nops) {
        size_t n = 1 + (size_t)sim_rand_below(&r->work.rng, batch_max);
        if (n > nops - done)
            n = (size_t)(nops - done);
        for (size_t i = 0; i < n; i++)
            jt_work_op(&r->work, &ops[i], lines[i]);
        atomic_store(&r->clock, r->work.now_ms);
        if (jt_apply(r->j, r->e, ops, n, r->work.now_ms) != ALLOT_OK)
            refused++;
        for (size_t i = 0; i < n; i++)
            jt_work_learn(&r->work, &ops[i]);
        if (++r->batches % 8 == 0)
            jt_expire(r->j, r->e, r->work.now_ms);
        done += n;
    }
    free(lines);
    return refused;
}

void jt_rig_run_until_segments(jt_rig_t *r, uint32_t segments)
{
    for (int i = 0; i < 10000 && jt_segment_count(r->sim) < segments; i++)
        jt_rig_run(r, 2000, JT_BATCH_MAX);
}

int jt_rig_close_journal(jt_rig_t *r)
{
    int rc = journal_close(r->j);
    r->j = NULL;
    engine_set_sink(r->e, NULL);
    return rc;
}

void jt_rig_free(jt_rig_t *r)
{
    if (r->j) {
        int rc = journal_close(r->j);
        if (rc != 0)
            fprintf(stderr, "jt_rig_free: the journal closed with %s\n", strerror(-rc));
    }
    engine_deinit(r->e);
    jt_log_free(&r->log);
    sim_deinit(r->sim);
    memset(r, 0, sizeof *r);
}

int jt_recover(sim_disk_t *sim, const engine_config_t *cfg, const recover_opts_t *o,
               engine_t **e, recover_result_t *res)
{
    storage_t st = sim_storage(sim);
    return recover(&st, cfg, o, e, res);
}

/* ---- segments ------------------------------------------------------------------ */

typedef struct seg_list {
    uint64_t seqs[256];
    uint32_t n;
} seg_list_t;

static void seg_cb(void *arg, const char *name)
{
    seg_list_t *l = arg;
    uint64_t v;
    if (journal_parse_segment_name(name, &v) && l->n < 256)
        l->seqs[l->n++] = v;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void seg_list(sim_disk_t *sim, seg_list_t *l)
{
    storage_t st = sim_storage(sim);
    l->n = 0;
    /* A fault armed on the writer thread may cut the power between the
     * caller's check and this listing: an unpowered disk lists nothing. */
    int rc = st.ops->list(st.ctx, seg_cb, l);
    VERIFY(rc == 0 || rc == -EIO);
    qsort(l->seqs, l->n, sizeof l->seqs[0], cmp_u64);
}

uint32_t jt_segment_count(sim_disk_t *sim)
{
    seg_list_t l;
    seg_list(sim, &l);
    return l.n;
}

bool jt_segment_name(sim_disk_t *sim, uint32_t i, char *name, size_t len)
{
    seg_list_t l;
    seg_list(sim, &l);
    if (i >= l.n)
        return false;
    snprintf(name, len, "journal-%020" PRIu64 ".seg", l.seqs[i]);
    return true;
}

size_t jt_record_offsets(const uint8_t *seg, size_t len, size_t *offs, size_t *sizes, size_t max)
{
    size_t n = 0, off = SEG_HEADER_SIZE;
    eng_record_t rec;
    rec_bufs_t bufs;
    while (n < max && off < len) {
        size_t size;
        const char *why;
        if (rec_decode(seg + off, len - off, &rec, &bufs, &size, &why) != REC_STATUS_OK)
            break;
        offs[n] = off;
        sizes[n] = size;
        n++;
        off += size;
    }
    return n;
}
