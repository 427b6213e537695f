/*
 * jgen: makes journals for the allot-journal tests and benchmarks, and
 * damages them in controlled ways.
 *
 *   jgen write DIR --records N [--skus K] [--seed S] [--segment-mb M]
 *                  [--digest-every K] [--snapshot-at SEQ] [--retain-max R]
 *                  [--retain-ms MS] [--hold-max-ms H] [--hold-pct P]
 *                  [--backorder-pct B] [--locations L]
 *       Drives a real engine with a random flash-sale mix (SKU_SET, PLACE,
 *       CONFIRM, CANCEL, FULFILL, EXTEND, RESTOCK, ADJUST, and the expiries
 *       and retirements that simulated time brings; P% of PLACEs hold,
 *       default 50) through the real journal (async durability) until N
 *       records are written. With B > 0, B% of PLACEs are BACKORDER (some
 *       with a maximum wait): hot SKUs sell out, orders wait, and restocks,
 *       cancellations and expiries fill them (FILL records). With L > 1
 *       (at most 8), a third of the SKUs are stocked at up to L locations
 *       with priorities, restocks and adjustments name a location, SKU_SET
 *       sometimes resets one, and a quarter of the other PLACEs ask for
 *       single-location lines. Prints
 *       "digest SEQ HEX" after the batch that crosses each multiple of K,
 *       "snapshot SEQ" when it writes one, and "final SEQ HEX" at the end:
 *       the live engine's digests, for replay to match.
 *   jgen locate DIR SEQ        prints "FILE OFFSET SIZE" of record SEQ
 *   jgen tear FILE OFFSET      zeroes FILE from OFFSET to its end; prints
 *                              "zeroed N", the bytes that were not zero
 *   jgen cut FILE SIZE         truncates FILE to SIZE bytes
 *   jgen flip FILE OFFSET BIT  flips one bit
 *   jgen reseq FILE OFFSET SEQ rewrites the record at OFFSET with another
 *                              sequence number and a valid checksum
 *   jgen retype FILE OFFSET T  sets the record's type to T, checksum valid
 *   jgen overalloc FILE OFFSET Q
 *                              makes the PLACE at OFFSET take Q units on its
 *                              first line, checksum valid (an oversell)
 *   jgen relocate FILE OFFSET LOC
 *                              moves the first allocation of the PLACE or
 *                              FILL at OFFSET to location LOC, checksum
 *                              valid (units taken from where they are not)
 *   jgen lock DIR SECONDS      holds DIR's lock as a server does; prints
 *                              "locked" once it has it
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/limits.h"
#include "common/log.h"
#include "journal/journal.h"
#include "journal/reader.h"
#include "journal/recover.h"

#define BATCH 64u
#define WINDOW 65536u          /* recent orders that later ops pick from */
#define START_MS UINT64_C(1795687200000) /* 2026-11-26T10:00:00Z */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * UINT64_C(2685821657736338717);
}

static uint64_t below(uint64_t n) { return rnd() % n; }

static int die(const char *what, int rc)
{
    fprintf(stderr, "jgen: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
    return 1;
}

/* ---- write ------------------------------------------------------------------------------ */

typedef struct gen {
    uint64_t skus, hot;
    uint64_t hold_pct;
    uint64_t backorder_pct;
    uint16_t locations; /* 1: location 0 only */
    uint64_t next_order;
    uint64_t window[WINDOW];
    uint64_t placed;
    uint64_t now_ms;
    eng_op_t ops[BATCH * 2];
    eng_line_t lines[BATCH * 2][3];
} gen_t;

static uint64_t pick_sku(gen_t *g)
{
    /* A few hot SKUs with little stock take a third of the demand: they
     * sell out and come back with restocks. */
    return below(3) == 0 ? 1 + below(g->hot) : 1 + below(g->skus);
}

static uint64_t recent_order(gen_t *g)
{
    uint64_t n = g->placed < WINDOW ? g->placed : WINDOW;
    return n ? g->window[below(n)] : 1;
}

static uint16_t pick_location(gen_t *g) { return (uint16_t)below(g->locations); }

/* BACKORDER for backorder_pct of PLACEs (a third wait at most 5..60 s);
 * with locations, a quarter of the others want single-location lines. */
static void place_options(gen_t *g, eng_op_t *op)
{
    if (g->backorder_pct && below(100) < g->backorder_pct) {
        op->policy = ALLOT_POLICY_BACKORDER;
        op->max_wait_ms = below(3) == 0 ? 5000 + (uint32_t)below(55000) : 0;
        return;
    }
    if (g->locations > 1 && below(4) == 0)
        op->place_flags = ALLOT_PLACE_FLAG_SINGLE_LOCATION;
}

static void make_place(gen_t *g, eng_op_t *op, eng_line_t *lines)
{
    uint32_t n = 1 + (uint32_t)below(3);
    op->opcode = ALLOT_OP_PLACE;
    op->id = ++g->next_order;
    op->customer = 1 + below(5000);
    op->policy = below(5) == 0 ? ALLOT_POLICY_PARTIAL : ALLOT_POLICY_ALL_OR_NOTHING;
    op->ms = below(100) >= g->hold_pct ? 0 : 2000 + (uint32_t)below(28000);
    place_options(g, op);
    op->lines = lines;
    op->line_count = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t sku = pick_sku(g);
        bool dup = false;
        for (uint32_t k = 0; k < op->line_count; k++)
            dup |= lines[k].sku == sku;
        if (dup)
            continue;
        lines[op->line_count++] = (eng_line_t){.sku = sku, .qty = 1 + (uint32_t)below(3)};
    }
}

/* With locations, an ADJUST names one, and a fifth of them become a
 * SKU_SET of that location (absolute on_hand, new priority). */
static void relocate_adjust(gen_t *g, eng_op_t *op)
{
    op->location = pick_location(g);
    if (below(5) != 0)
        return;
    op->opcode = ALLOT_OP_SKU_SET;
    op->amount = below(60);
    op->priority = (uint16_t)below(4);
}

static size_t make_batch(gen_t *g)
{
    size_t n = 0;
    for (unsigned i = 0; i < BATCH; i++) {
        eng_op_t *op = &g->ops[n];
        memset(op, 0, sizeof *op);
        uint64_t r = below(100);
        if (r < 60) {
            make_place(g, op, g->lines[n]);
            /* The order leaving the window is cancelled, so that live
             * orders stay bounded (a no-op if it has ended already). */
            uint64_t slot = g->placed++ % WINDOW;
            uint64_t old = g->window[slot];
            g->window[slot] = op->id;
            if (old) {
                n++;
                op = &g->ops[n];
                memset(op, 0, sizeof *op);
                op->opcode = ALLOT_OP_CANCEL;
                op->id = old;
            }
        } else if (r < 72) {
            op->opcode = ALLOT_OP_CONFIRM;
            op->id = recent_order(g);
        } else if (r < 80) {
            op->opcode = ALLOT_OP_CANCEL;
            op->id = recent_order(g);
        } else if (r < 92) {
            op->opcode = ALLOT_OP_FULFILL;
            op->id = recent_order(g);
        } else if (r < 95) {
            op->opcode = ALLOT_OP_EXTEND;
            op->id = recent_order(g);
            op->ms = 5000 + (uint32_t)below(15000);
        } else if (r < 99) {
            op->opcode = ALLOT_OP_RESTOCK;
            op->id = pick_sku(g);
            op->amount = 10 + below(200);
            if (g->locations > 1)
                op->location = pick_location(g);
        } else {
            op->opcode = ALLOT_OP_ADJUST;
            op->id = pick_sku(g);
            op->amount = (uint64_t)((int64_t)below(26) - 5);
            if (g->locations > 1)
                relocate_adjust(g, op);
        }
        n++;
    }
    return n;
}

/* Admits ops (and the expiries before them) into the journal, waiting
 * while the next segment is being prepared. */
static int admit(journal_t *j, const eng_op_t *ops, size_t n)
{
    for (;;) {
        uint8_t r = journal_admit(j, ops, n, EXPIRE_PER_STEP_MAX);
        if (r == ALLOT_OK)
            return 0;
        if (r != ALLOT_READ_ONLY)
            return -EIO;
        struct timespec ts = {.tv_nsec = 100000};
        nanosleep(&ts, NULL);
    }
}

/* The SKU_SET at ops[n] was location 0's; stocks sku at up to
 * locations - 1 more locations with priorities, within the batch. Returns
 * the index of the last op used. */
static size_t stock_locations(gen_t *g, eng_op_t *ops, size_t n, uint64_t sku)
{
    ops[n].priority = (uint16_t)below(4);
    uint32_t more = 1 + (uint32_t)below(g->locations - 1u);
    for (uint32_t k = 1; k <= more && n + 1 < BATCH * 2; k++) {
        eng_op_t *op = &ops[++n];
        memset(op, 0, sizeof *op);
        op->opcode = ALLOT_OP_SKU_SET;
        op->id = sku;
        op->location = (uint16_t)k;
        op->priority = (uint16_t)below(4);
        op->amount = sku <= g->hot ? 5 + below(15) : 30 + below(300);
        op->limit = ops[n - k].limit;
        op->reorder_point = ops[n - k].reorder_point;
    }
    return n;
}

static int stock_skus(gen_t *g, engine_t *e, journal_t *j)
{
    for (uint64_t s = 1; s <= g->skus;) {
        size_t n = 0;
        for (; n < BATCH && s <= g->skus; n++, s++) {
            eng_op_t *op = &g->ops[n];
            memset(op, 0, sizeof *op);
            op->opcode = ALLOT_OP_SKU_SET;
            op->id = s;
            op->amount = s <= g->hot ? 20 + below(30) : 100 + below(900);
            op->limit = below(10) == 0 ? 5 : 0;
            op->reorder_point = (uint32_t)below(20);
            if (g->locations > 1 && below(3) == 0)
                n = stock_locations(g, g->ops, n, s);
        }
        if (admit(j, g->ops, n) != 0)
            return -EIO;
        engine_apply(e, g->ops, n, g->now_ms);
        journal_commit(j);
    }
    return 0;
}

typedef struct write_opts {
    const char *dir;
    uint64_t records, skus, seed, segment_mb, digest_every, snapshot_at;
    uint32_t retain_max;
    uint64_t retain_ms, hold_max_ms, hold_pct, backorder_pct, locations;
} write_opts_t;

static int run_batches(gen_t *g, engine_t *e, journal_t *j, const storage_t *st,
                       const write_opts_t *o)
{
    uint64_t next_digest = o->digest_every;
    bool snapped = false;
    while (engine_seq(e) < o->records) {
        g->now_ms += below(20);
        if (admit(j, NULL, 0) != 0)
            return -EIO;
        engine_expire(e, g->now_ms, EXPIRE_PER_STEP_MAX);
        size_t n = make_batch(g);
        if (admit(j, g->ops, n) != 0)
            return -EIO;
        engine_apply(e, g->ops, n, g->now_ms);
        journal_commit(j);
        uint64_t seq = engine_seq(e);
        if (o->digest_every && seq >= next_digest) {
            printf("digest %" PRIu64 " %016" PRIx64 "\n", seq, engine_digest(e));
            while (next_digest <= seq)
                next_digest += o->digest_every;
        }
        if (o->snapshot_at && !snapped && seq >= o->snapshot_at) {
            int rc = snapfile_write(st, e, NULL);
            if (rc != 0)
                return rc;
            printf("snapshot %" PRIu64 "\n", seq);
            snapped = true;
        }
    }
    return 0;
}

static int gen_write(const write_opts_t *o)
{
    static gen_t g;
    rng_state = o->seed * 2 + 1;
    g.skus = o->skus;
    g.hold_pct = o->hold_pct;
    g.backorder_pct = o->backorder_pct;
    g.locations = (uint16_t)o->locations;
    g.hot = o->skus / 20 ? o->skus / 20 : 1;
    g.now_ms = START_MS;
    engine_config_t cfg;
    engine_config_default(&cfg);
    cfg.skus_max = (uint32_t)(o->skus * 2 + 1024);
    cfg.orders_max = 1u << 20;
    cfg.retain_max = o->retain_max;
    cfg.retain_ms = o->retain_ms;
    cfg.hold_max_ms = o->hold_max_ms;
    journal_config_t jc = {
        .durability = DURABILITY_ASYNC, .fsync_ms = 1000,
        .segment_bytes = o->segment_mb << 20, .buffer_bytes = JOURNAL_BUFFER_DEFAULT,
        .params = {.retain_max = cfg.retain_max, .retain_ms = cfg.retain_ms,
                   .hold_max_ms = cfg.hold_max_ms},
    };
    int rc = storage_file_open(&jc.storage, o->dir, true);
    if (rc != 0)
        return die("storage", rc);
    engine_t *e;
    journal_t *j = NULL;
    rc = engine_init(&e, &cfg);
    if (rc != 0)
        return die("engine", rc);
    rc = journal_open(&j, &jc, 1);
    if (rc != 0)
        return die("journal", rc);
    eng_sink_t sink = journal_sink(j);
    engine_set_sink(e, &sink);
    rc = stock_skus(&g, e, j);
    if (rc == 0)
        rc = run_batches(&g, e, j, &jc.storage, o);
    int crc = journal_close(j);
    if (rc == 0)
        rc = crc;
    if (rc == 0)
        printf("final %" PRIu64 " %016" PRIx64 "\n", engine_seq(e), engine_digest(e));
    engine_deinit(e);
    storage_file_close(&jc.storage);
    return rc == 0 ? 0 : die("write", rc);
}

static int parse_write(int argc, char **argv)
{
    write_opts_t o = {.dir = argv[0], .skus = 10000, .seed = 1, .segment_mb = 64,
                      .retain_max = 50000, .retain_ms = 60000, .hold_max_ms = 120000,
                      .hold_pct = 50, .locations = 1};
    for (int i = 1; i + 1 < argc; i += 2) {
        uint64_t v = strtoull(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--records") == 0)
            o.records = v;
        else if (strcmp(argv[i], "--skus") == 0)
            o.skus = v;
        else if (strcmp(argv[i], "--seed") == 0)
            o.seed = v;
        else if (strcmp(argv[i], "--segment-mb") == 0)
            o.segment_mb = v;
        else if (strcmp(argv[i], "--digest-every") == 0)
            o.digest_every = v;
        else if (strcmp(argv[i], "--snapshot-at") == 0)
            o.snapshot_at = v;
        else if (strcmp(argv[i], "--retain-max") == 0)
            o.retain_max = (uint32_t)v;
        else if (strcmp(argv[i], "--retain-ms") == 0)
            o.retain_ms = v;
        else if (strcmp(argv[i], "--hold-pct") == 0)
            o.hold_pct = v;
        else if (strcmp(argv[i], "--hold-max-ms") == 0)
            o.hold_max_ms = v;
        else if (strcmp(argv[i], "--backorder-pct") == 0)
            o.backorder_pct = v;
        else if (strcmp(argv[i], "--locations") == 0)
            o.locations = v;
        else
            return die(argv[i], EINVAL);
    }
    if (o.records == 0 || o.skus == 0 || o.segment_mb < 4)
        return die("write needs --records N (and --segment-mb >= 4)", EINVAL);
    if (o.locations < 1 || o.locations > ALLOT_LOCATIONS_MAX || o.backorder_pct > 100)
        return die("--locations is 1..8, --backorder-pct 0..100", EINVAL);
    return gen_write(&o);
}

/* ---- locate ---------------------------------------------------------------------------- */

static int gen_locate(const char *dir, uint64_t seq)
{
    storage_t st;
    jr_dir_t d;
    int rc = storage_file_open_ro(&st, dir);
    if (rc == 0)
        rc = jr_dir_list(&st, &d);
    if (rc != 0)
        return die("locate", rc);
    size_t k = 0;
    for (size_t i = 0; i < d.nsegs; i++)
        if (d.segs[i] <= seq)
            k = i;
    jr_seg_t s;
    static jr_item_t it;
    rc = d.nsegs ? jr_seg_open(&s, &st, d.segs[k], 0) : -ENOENT;
    int out = 1;
    while (rc == 0 && jr_seg_next(&s, &it) == 0 && it.kind == JR_RECORD) {
        if (it.rec.seq == seq) {
            printf("%s %" PRIu64 " %zu\n", s.name, it.off, it.size);
            out = 0;
            break;
        }
    }
    if (rc == 0)
        jr_seg_close(&s);
    jr_dir_free(&d);
    storage_file_close(&st);
    if (out)
        fprintf(stderr, "jgen: record %" PRIu64 " not found\n", seq);
    return out;
}

/* ---- damage ------------------------------------------------------------------------------ */

static int edit_file(const char *path, uint64_t off, int (*fn)(uint8_t *rec, size_t avail,
                                                               uint64_t arg),
                     uint64_t arg)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return die(path, errno);
    uint8_t buf[REC_SIZE_MAX];
    ssize_t n = pread(fd, buf, sizeof buf, (off_t)off);
    int rc = n > 0 ? fn(buf, (size_t)n, arg) : -EIO;
    if (rc == 0 && pwrite(fd, buf, (size_t)n, (off_t)off) != n)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc == 0 ? 0 : die(path, rc);
}

static int do_flip(uint8_t *p, size_t avail, uint64_t bit)
{
    p[0] ^= (uint8_t)(1u << (bit & 7));
    return 0;
}

static rec_bufs_t bufs;

static int do_reseq(uint8_t *p, size_t avail, uint64_t seq)
{
    eng_record_t rec;
    size_t size;
    const char *why;
    if (rec_decode(p, avail, &rec, &bufs, &size, &why) != REC_STATUS_OK)
        return -EILSEQ;
    rec.seq = seq;
    return rec_encode(p, &rec) == size ? 0 : -EILSEQ;
}

static int do_overalloc(uint8_t *p, size_t avail, uint64_t qty)
{
    eng_record_t rec;
    size_t size;
    const char *why;
    if (rec_decode(p, avail, &rec, &bufs, &size, &why) != REC_STATUS_OK || rec.type != REC_PLACE)
        return -EILSEQ;
    bufs.lines[0].qty = bufs.lines[0].allocated = (uint32_t)qty;
    return rec_encode(p, &rec) == size ? 0 : -EILSEQ;
}

static int do_relocate(uint8_t *p, size_t avail, uint64_t loc)
{
    eng_record_t rec;
    size_t size;
    const char *why;
    if (rec_decode(p, avail, &rec, &bufs, &size, &why) != REC_STATUS_OK || rec.alloc_count == 0)
        return -EILSEQ;
    for (uint32_t k = 1; k < rec.alloc_count; k++)
        if (bufs.allocs[k].line == bufs.allocs[0].line && bufs.allocs[k].location == loc)
            return -EINVAL; /* the line has that location already */
    bufs.allocs[0].location = (uint16_t)loc;
    return rec_encode(p, &rec) == size ? 0 : -EILSEQ;
}

static int do_retype(uint8_t *p, size_t avail, uint64_t type)
{
    uint32_t len = allot_get_u32(p);
    if (len < REC_SIZE_MIN || len > avail)
        return -EILSEQ;
    allot_put_u16(p + 4, (uint16_t)type);
    allot_put_u64(p + len - 8, XXH3_64bits(p, len - 8));
    return 0;
}

static int gen_tear(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return die(path, errno);
    off_t end = lseek(fd, 0, SEEK_END);
    static uint8_t zeros[1 << 16], old[1 << 16];
    int rc = end < 0 ? -errno : 0;
    uint64_t changed = 0;
    for (uint64_t at = off; rc == 0 && at < (uint64_t)end;) {
        size_t n = (uint64_t)end - at < sizeof zeros ? (size_t)((uint64_t)end - at) : sizeof zeros;
        if (pread(fd, old, n, (off_t)at) != (ssize_t)n ||
            pwrite(fd, zeros, n, (off_t)at) != (ssize_t)n)
            rc = errno ? -errno : -EIO;
        for (size_t i = 0; rc == 0 && i < n; i++)
            changed += old[i] != 0;
        at += n;
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0)
        printf("zeroed %" PRIu64 "\n", changed);
    return rc == 0 ? 0 : die(path, rc);
}

static int gen_lock(const char *dir, uint64_t seconds)
{
    storage_t st;
    int rc = storage_file_open(&st, dir, true);
    if (rc != 0)
        return die("lock", rc);
    printf("locked\n");
    fflush(stdout);
    sleep((unsigned)seconds);
    storage_file_close(&st);
    return 0;
}

int main(int argc, char **argv)
{
    log_set_level(LOG_WARN);
    if (argc >= 3 && strcmp(argv[1], "write") == 0)
        return parse_write(argc - 2, argv + 2);
    uint64_t a = argc >= 4 ? strtoull(argv[3], NULL, 10) : 0;
    uint64_t b = argc >= 5 ? strtoull(argv[4], NULL, 10) : 0;
    if (argc == 4 && strcmp(argv[1], "locate") == 0)
        return gen_locate(argv[2], a);
    if (argc == 4 && strcmp(argv[1], "tear") == 0)
        return gen_tear(argv[2], a);
    if (argc == 4 && strcmp(argv[1], "cut") == 0)
        return truncate(argv[2], (off_t)a) == 0 ? 0 : die(argv[2], errno);
    if (argc == 5 && strcmp(argv[1], "flip") == 0)
        return edit_file(argv[2], a, do_flip, b);
    if (argc == 5 && strcmp(argv[1], "reseq") == 0)
        return edit_file(argv[2], a, do_reseq, b);
    if (argc == 5 && strcmp(argv[1], "overalloc") == 0)
        return edit_file(argv[2], a, do_overalloc, b);
    if (argc == 5 && strcmp(argv[1], "relocate") == 0)
        return edit_file(argv[2], a, do_relocate, b);
    if (argc == 5 && strcmp(argv[1], "retype") == 0)
        return edit_file(argv[2], a, do_retype, b);
    if (argc == 4 && strcmp(argv[1], "lock") == 0)
        return gen_lock(argv[2], a);
    fprintf(stderr, "usage: jgen write DIR --records N [...] | locate DIR SEQ | tear FILE OFF |"
                    " cut FILE SIZE |"
                    " flip FILE OFF BIT | reseq FILE OFF SEQ | retype FILE OFF TYPE |"
                    " overalloc FILE OFF QTY | relocate FILE OFF LOC |"
                    " lock DIR SECONDS\n");
    return 2;
}
