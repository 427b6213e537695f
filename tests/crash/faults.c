/*
 * The server's failure paths, end to end.
 *
 * fsync: allotd runs with ALLOT_FAULT_SYNC_AFTER=K (a test hook of the
 *   file storage: every journal write_sync/sync after the K-th fails with
 *   EIO) while two connections pipeline PLACE and RESTOCK batches. Checks:
 *   the hook announces itself in the log; once a connection has seen an
 *   UNAVAILABLE answer it never sees an OK mutation again; at least one
 *   answer is UNAVAILABLE; allotd exits non-zero on its own; restarted
 *   without the hook it recovers every acknowledged order with its
 *   allocations and every acknowledged restock (an UNAVAILABLE or lost one
 *   may or may not be there, and an order that is there is whole), no SKU
 *   holds more or less than its orders, and it serves mutations again.
 *
 * disk_full: the data dir on a tmpfs of 48 MiB (the test mounts one; without
 *   the right to mount it exits 77, a skip), --segment-mb 4. A filler file
 *   takes the space the next segment would need; big PLACE batches fill
 *   the journal until mutations get READ_ONLY. Checks: mutations of every
 *   kind then get READ_ONLY, reads go on; once the filler is deleted a
 *   mutation is accepted again within 3 s; after a clean stop and a
 *   restart, every acknowledged order and restock is there and no refused
 *   one; the digest survives the restart (and matches allot-journal's
 *   replay when the tool is given).
 *
 * usage: crash_faults --allotd PATH [--journal PATH] --scenario fsync|disk_full
 *                     [--threads N] [--seed N]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "crash_util.h"

static const char *allotd_path;
static const char *journal_path;
static const char *threads = "2";
static const char *const *scenario_flags; /* for every start of the scenario */
static uint64_t seed;

static char work[128], data[256], log_path[192];

/* ---- what the load sent and what came back ------------------------------------- */

enum { A_SENT, A_OK, A_REJECTED, A_UNAVAILABLE, A_READ_ONLY, A_LOST };

#define NSKUS 64u
#define ORDERS_T 200000u

typedef struct ord_t {
    uint64_t id;
    uint8_t answer; /* A_* */
    uint8_t nlines;
    uint8_t first;  /* lines use SKUs first .. first + nlines - 1 (mod NSKUS) */
    uint8_t qty;
    uint32_t alloc; /* per line, when OK */
} ord_t;

typedef struct restock_t {
    uint8_t sku;
    uint8_t answer;
    uint32_t qty;
} restock_t;

static uint64_t sku_ids[NSKUS];
static uint64_t sku_initial[NSKUS];

typedef struct load {
    unsigned index;
    allot_conn_t *conn;
    uint64_t rng;
    ord_t *ords;
    size_t nords;
    restock_t *rs;
    size_t nrs;
    unsigned lines;       /* lines per order */
    unsigned per_frame;
    bool stop_on_read_only;
    bool saw_unavailable; /* on this connection */
    bool saw_read_only;
    uint64_t ok_after_unavailable;
    uint64_t unavailable, read_only, ok, lost;
    char err[256];
} load_t;

typedef struct frame_t {
    uint16_t opcode;
    uint16_t n;
    size_t first; /* index into ords or rs */
    bool used;
} frame_t;

#define DEPTH 6u

static void build(load_t *L, allot_batch_t *b, frame_t *f)
{
    bool restock = cu_range(&L->rng, 0, 4) == 0;
    f->opcode = restock ? ALLOT_OP_RESTOCK : ALLOT_OP_PLACE;
    CHECK(allot_batch_reset(b, f->opcode) == 0, "reset");
    f->n = 0;
    f->first = restock ? L->nrs : L->nords;
    for (unsigned i = 0; i < L->per_frame; i++) {
        int rc;
        if (restock) {
            restock_t *r = &L->rs[L->nrs];
            r->sku = (uint8_t)cu_range(&L->rng, 0, NSKUS - 1);
            r->qty = (uint32_t)cu_range(&L->rng, 1, 9);
            r->answer = A_SENT;
            rc = allot_batch_add_restock(b, sku_ids[r->sku], r->qty);
            if (rc == 0)
                L->nrs++;
        } else {
            CHECK(L->nords < ORDERS_T, "too many orders");
            ord_t *o = &L->ords[L->nords];
            o->id = ((uint64_t)(L->index + 1) << 40) + L->nords + 1;
            o->nlines = (uint8_t)L->lines;
            o->first = (uint8_t)cu_range(&L->rng, 0, NSKUS - 1);
            o->qty = (uint8_t)cu_range(&L->rng, 1, 3);
            o->answer = A_SENT;
            allot_line_t lines[ALLOT_LINES_MAX];
            for (unsigned k = 0; k < o->nlines; k++)
                lines[k] = (allot_line_t){.sku = sku_ids[(o->first + k) % NSKUS], .qty = o->qty};
            allot_order_spec_t spec = {.order = o->id, .customer = 7 + L->index,
                                       .policy = ALLOT_POLICY_ALL_OR_NOTHING, .lines = lines,
                                       .line_count = o->nlines};
            rc = allot_batch_add_place(b, &spec);
            if (rc == 0)
                L->nords++;
        }
        if (rc == -ENOSPC)
            break;
        CHECK(rc == 0, "batch add: %s", strerror(-rc));
        f->n++;
    }
}

static uint8_t classify(load_t *L, uint8_t result)
{
    switch (result) {
    case ALLOT_OK:
        L->ok++;
        if (L->saw_unavailable)
            L->ok_after_unavailable++;
        return A_OK;
    case ALLOT_UNAVAILABLE:
        L->unavailable++;
        L->saw_unavailable = true;
        return A_UNAVAILABLE;
    case ALLOT_READ_ONLY:
        L->read_only++;
        L->saw_read_only = true;
        return A_READ_ONLY;
    default:
        if (!L->err[0])
            snprintf(L->err, sizeof L->err, "unexpected result %s", allot_result_name(result));
        return A_REJECTED;
    }
}

static void take(load_t *L, const allot_completion_t *cmp)
{
    frame_t *f = cmp->user;
    f->used = false;
    if (cmp->error != 0) {
        if (!allot_outcome_unknown(cmp->error) && !L->err[0])
            snprintf(L->err, sizeof L->err, "frame failed: %s", strerror(-cmp->error));
        for (unsigned i = 0; i < f->n; i++) {
            L->lost++;
            if (f->opcode == ALLOT_OP_PLACE)
                L->ords[f->first + i].answer = A_LOST;
            else
                L->rs[f->first + i].answer = A_LOST;
        }
        return;
    }
    allot_reader_t r;
    allot_reader_init(&r, cmp);
    for (unsigned i = 0; i < f->n; i++) {
        if (f->opcode == ALLOT_OP_PLACE) {
            allot_order_result_t o;
            CHECK(allot_read_order(&r, &o) == 1, "short answer");
            ord_t *m = &L->ords[f->first + i];
            CHECK(o.order == m->id, "answer for %" PRIu64 ", asked %" PRIu64, o.order, m->id);
            m->answer = classify(L, o.result);
            if (m->answer == A_OK) {
                CHECK(o.line_count == m->nlines && o.allocated[0] == m->qty,
                      "order %" PRIu64 " OK with %u lines, %u allocated", m->id, o.line_count,
                      o.allocated[0]);
                m->alloc = m->qty;
            }
        } else {
            allot_sku_result_t s;
            CHECK(allot_read_sku(&r, &s) == 1, "short answer");
            L->rs[f->first + i].answer = classify(L, s.result);
        }
    }
}

/* Pipelines until the connection breaks, or (disk_full) until READ_ONLY
 * and everything in flight is answered. */
static void *load_main(void *arg)
{
    load_t *L = arg;
    allot_batch_t *b = NULL;
    int rc = allot_batch_new(&b, ALLOT_OP_PLACE, L->conn);
    CHECK(rc == 0, "batch: %s", strerror(-rc));
    frame_t frames[DEPTH] = {0};
    uint64_t deadline = cu_mono_ms() + 40000;
    for (;;) {
        bool submit = !(L->stop_on_read_only && L->saw_read_only) && !L->err[0] &&
                      cu_mono_ms() < deadline;
        for (unsigned k = 0; submit && k < DEPTH; k++) {
            if (frames[k].used)
                continue;
            build(L, b, &frames[k]);
            rc = allot_submit(L->conn, b, &frames[k], NULL);
            if (rc != 0) {
                /* never queued: not applied */
                for (unsigned i = 0; i < frames[k].n; i++) {
                    if (frames[k].opcode == ALLOT_OP_PLACE)
                        L->ords[frames[k].first + i].answer = A_REJECTED;
                    else
                        L->rs[frames[k].first + i].answer = A_REJECTED;
                }
                submit = false;
                break;
            }
            frames[k].used = true;
        }
        allot_completion_t cmp[DEPTH];
        int n = allot_wait(L->conn, cmp, DEPTH, 50);
        if (n < 0)
            break;
        for (int i = 0; i < n; i++)
            take(L, &cmp[i]);
        if (!submit && allot_inflight(L->conn) == 0)
            break;
    }
    allot_batch_free(b);
    return NULL;
}

/* ---- shared steps ---------------------------------------------------------------- */

static void start(cu_server_t *s, const char *env)
{
    const char *extra[24] = {"--threads", threads, "--skus-max", "1024", "--orders-max", "262144"};
    size_t n = 6;
    for (size_t i = 0; scenario_flags && scenario_flags[i] && n < 22; i++)
        extra[n++] = scenario_flags[i];
    extra[n] = NULL;
    cu_server_start_retry(s, allotd_path, work, data, log_path, extra, env);
}

static void setup_skus(uint16_t port, uint64_t on_hand)
{
    /* one frame: one journal commit (the fsync scenario counts them) */
    allot_conn_t *c = cu_connect(port, 8, 10000);
    allot_batch_t *b = NULL;
    int rc = allot_batch_new(&b, ALLOT_OP_SKU_SET, c);
    CHECK(rc == 0, "batch: %s", strerror(-rc));
    for (unsigned s = 0; s < NSKUS; s++) {
        sku_ids[s] = 5000 + s;
        sku_initial[s] = on_hand;
        CHECK(allot_batch_add_sku_set(b, sku_ids[s], on_hand, 0, 0) == 0, "add SKU_SET");
    }
    CHECK(allot_submit(c, b, NULL, NULL) == 0, "submit: %s", allot_last_error(c));
    allot_completion_t cmp;
    CHECK(allot_wait(c, &cmp, 1, 10000) == 1 && cmp.error == 0, "SKU_SET batch: %s",
          allot_last_error(c));
    allot_reader_t r;
    allot_sku_result_t res;
    allot_reader_init(&r, &cmp);
    for (unsigned s = 0; s < NSKUS; s++)
        CHECK(allot_read_sku(&r, &res) == 1 && res.result == ALLOT_OK, "SKU_SET %u: %s", s,
              allot_result_name(res.result));
    allot_batch_free(b);
    allot_conn_close(c);
}

typedef struct expect {
    int64_t lo[NSKUS], hi[NSKUS]; /* on_hand - initial */
    int64_t alloc[NSKUS];
    size_t acked, present_unknown;
} expect_t;

/* One by one (these orders have up to 64 lines): acknowledged ones are
 * there, refused ones are not, the rest may be; those there are whole. */
static void verify_orders(allot_conn_t *c, const load_t *L, expect_t *e)
{
    for (size_t k = 0; k < L->nords; k++) {
        const ord_t *o = &L->ords[k];
        allot_order_info_t info;
        int rc = allot_order_get(c, o->id, &info);
        CHECK(rc == 0, "ORDER_GET: %s", allot_last_error(c));
        bool exists = info.result == ALLOT_OK;
        if (o->answer == A_OK) {
            CHECK(exists, "acknowledged order %" PRIu64 " is gone (%s)", o->id,
                  allot_result_name(info.result));
            e->acked++;
        } else if (o->answer == A_READ_ONLY || o->answer == A_REJECTED) {
            CHECK(!exists, "order %" PRIu64 " was refused (%s) but exists", o->id,
                  o->answer == A_READ_ONLY ? "READ_ONLY" : "not sent");
        } else if (exists) {
            e->present_unknown++;
        }
        if (!exists)
            continue;
        CHECK(info.state == ALLOT_STATE_CONFIRMED && info.line_count == o->nlines,
              "order %" PRIu64 ": %s, %u lines", o->id, allot_state_name(info.state),
              info.line_count);
        for (unsigned i = 0; i < o->nlines; i++) {
            unsigned s = (o->first + i) % NSKUS;
            CHECK(info.lines[i].sku == sku_ids[s] && info.lines[i].requested == o->qty &&
                      info.lines[i].allocated == o->qty,
                  "order %" PRIu64 " line %u: sku %" PRIu64 " %u/%u", o->id, i,
                  info.lines[i].sku, info.lines[i].allocated, info.lines[i].requested);
            e->alloc[s] += o->qty;
        }
    }
    for (size_t k = 0; k < L->nrs; k++) {
        const restock_t *r = &L->rs[k];
        if (r->answer == A_OK)
            e->lo[r->sku] += r->qty;
        if (r->answer == A_OK || r->answer == A_UNAVAILABLE || r->answer == A_LOST)
            e->hi[r->sku] += r->qty;
    }
}

/* Every SKU holds exactly what its orders hold, and on_hand is what the
 * acknowledged restocks (and maybe the unknown ones) made it. */
static void verify_skus(allot_conn_t *c, const expect_t *e)
{
    allot_sku_result_t skus[NSKUS];
    cu_skus_get(c, sku_ids, NSKUS, skus);
    for (unsigned s = 0; s < NSKUS; s++) {
        const allot_sku_result_t *r = &skus[s];
        CHECK(r->result == ALLOT_OK, "sku %" PRIu64 ": %s", sku_ids[s],
              allot_result_name(r->result));
        CHECK((int64_t)r->allocated == e->alloc[s] && r->allocated <= r->on_hand,
              "sku %" PRIu64 ": allocated %" PRIu64 ", on_hand %" PRIu64 ", orders hold %" PRId64,
              sku_ids[s], r->allocated, r->on_hand, e->alloc[s]);
        int64_t extra = (int64_t)r->on_hand - (int64_t)sku_initial[s];
        CHECK(extra >= e->lo[s] && extra <= e->hi[s],
              "sku %" PRIu64 ": on_hand %" PRIu64 " = initial %" PRIu64 " + %" PRId64
              ", acknowledged restocks give [%" PRId64 ", %" PRId64 "]",
              sku_ids[s], r->on_hand, sku_initial[s], extra, e->lo[s], e->hi[s]);
    }
}

static void verify(uint16_t port, const load_t *loads, unsigned nloads, const char *when)
{
    allot_conn_t *c = cu_connect(port, 32, 30000);
    expect_t e = {0};
    for (unsigned l = 0; l < nloads; l++)
        verify_orders(c, &loads[l], &e);
    verify_skus(c, &e);
    allot_conn_close(c);
    printf("  %s: %zu acknowledged orders all there, %zu with a lost or UNAVAILABLE answer "
           "present; SKUs add up\n",
           when, e.acked, e.present_unknown);
}

/* The server works: a new order and a restock are accepted. */
static void works_again(uint16_t port, uint64_t order_id)
{
    allot_conn_t *c = cu_connect(port, 8, 10000);
    allot_line_t line = {.sku = sku_ids[0], .qty = 1};
    allot_order_spec_t spec = {.order = order_id, .customer = 99, .lines = &line,
                               .line_count = 1};
    allot_order_result_t o;
    int rc = allot_place(c, &spec, &o);
    CHECK(rc == 0 && o.result == ALLOT_OK, "PLACE after the restart: %s",
          rc ? allot_last_error(c) : allot_result_name(o.result));
    allot_sku_result_t s;
    rc = allot_restock(c, sku_ids[1], 5, &s);
    CHECK(rc == 0 && s.result == ALLOT_OK, "RESTOCK after the restart: %s",
          rc ? allot_last_error(c) : allot_result_name(s.result));
    allot_conn_close(c);
}

/* Clean stop; the digest survives a restart and equals the replay's. */
static void stop_and_compare(cu_server_t *srv)
{
    allot_conn_t *c = cu_connect(srv->port, 8, 10000);
    uint64_t v[ALLOT_STAT_COUNT];
    cu_stats(c, v);
    allot_conn_close(c);
    int st = cu_server_stop(srv, 20000);
    CHECK(st == 0, "allotd exited %d after SIGTERM", st);
    if (journal_path) {
        char err[256];
        snprintf(err, sizeof err, "%s/journal-tool.log", work);
        for (int bare = 0; bare < 2; bare++) {
            uint64_t d, s;
            cu_journal_replay(journal_path, data, 0, bare, err, &d, &s);
            CHECK(d == v[ALLOT_STAT_STATE_DIGEST] && s == v[ALLOT_STAT_SEQUENCE],
                  "allot-journal replay%s: %016" PRIx64 " at %" PRIu64 ", server %016" PRIx64
                  " at %" PRIu64,
                  bare ? " --no-snapshot" : "", d, s, v[ALLOT_STAT_STATE_DIGEST],
                  v[ALLOT_STAT_SEQUENCE]);
        }
        printf("  digest %016" PRIx64 " = allot-journal replay (snapshot and bare journal)\n",
               v[ALLOT_STAT_STATE_DIGEST]);
    }
    start(srv, NULL);
    c = cu_connect(srv->port, 8, 10000);
    uint64_t w[ALLOT_STAT_COUNT];
    cu_stats(c, w);
    allot_conn_close(c);
    CHECK(w[ALLOT_STAT_STATE_DIGEST] == v[ALLOT_STAT_STATE_DIGEST] &&
              w[ALLOT_STAT_SEQUENCE] == v[ALLOT_STAT_SEQUENCE],
          "digest %016" PRIx64 " at %" PRIu64 " after the restart, %016" PRIx64 " at %" PRIu64
          " before",
          w[ALLOT_STAT_STATE_DIGEST], w[ALLOT_STAT_SEQUENCE], v[ALLOT_STAT_STATE_DIGEST],
          v[ALLOT_STAT_SEQUENCE]);
    st = cu_server_stop(srv, 20000);
    CHECK(st == 0, "allotd exited %d after SIGTERM", st);
}

static void load_init(load_t *L, unsigned index, uint16_t port, unsigned lines,
                      unsigned per_frame)
{
    memset(L, 0, sizeof *L);
    L->index = index;
    L->rng = seed + 77u * (index + 1);
    L->lines = lines;
    L->per_frame = per_frame;
    L->ords = calloc(ORDERS_T, sizeof *L->ords);
    L->rs = calloc(ORDERS_T, sizeof *L->rs);
    CHECK(L->ords && L->rs, "out of memory");
    L->conn = cu_connect(port, DEPTH, 15000);
}

static void load_free(load_t *L)
{
    allot_conn_close(L->conn);
    free(L->ords);
    free(L->rs);
}

/* ---- fsync -------------------------------------------------------------------------- */

static int scenario_fsync(void)
{
    uint64_t rng = seed;
    unsigned k = (unsigned)cu_range(&rng, 60, 160);
    static char env[64];
    snprintf(env, sizeof env, "ALLOT_FAULT_SYNC_AFTER=%u", k);
    printf("fsync: %s, --threads %s\n", env, threads);
    cu_server_t srv;
    start(&srv, env);
    CHECK(cu_log_contains(log_path, "ALLOT_FAULT_SYNC_AFTER"), "no warning about the test hook");
    setup_skus(srv.port, 1000000);

    load_t loads[2];
    pthread_t tid[2];
    for (unsigned l = 0; l < 2; l++) {
        load_init(&loads[l], l, srv.port, 1 + l, 8);
        CHECK(pthread_create(&tid[l], NULL, load_main, &loads[l]) == 0, "thread");
    }
    for (unsigned l = 0; l < 2; l++)
        CHECK(pthread_join(tid[l], NULL) == 0, "join");
    int st = cu_server_wait(&srv, 15000);
    CHECK(st != INT32_MIN, "allotd still runs 15 s after its journal failed");
    CHECK(st > 0, "allotd exited with %d after its journal failed, expected a failure status", st);
    uint64_t ok = 0, unavailable = 0, lost = 0;
    for (unsigned l = 0; l < 2; l++) {
        load_t *L = &loads[l];
        CHECK(!L->err[0], "connection %u: %s", l, L->err);
        CHECK(L->ok_after_unavailable == 0,
              "connection %u: %" PRIu64 " OK answers after an UNAVAILABLE one", l,
              L->ok_after_unavailable);
        CHECK(L->read_only == 0, "connection %u: READ_ONLY answers", l);
        ok += L->ok;
        unavailable += L->unavailable;
        lost += L->lost;
    }
    printf("  exit status %d; %" PRIu64 " OK, %" PRIu64 " UNAVAILABLE, %" PRIu64
           " lost with the connection\n",
           st, ok, unavailable, lost);
    CHECK(ok > 0, "nothing was acknowledged before the failure");
    CHECK(unavailable > 0, "no answer came back UNAVAILABLE");
    CHECK(cu_log_contains(log_path, "fdatasync failed"), "the log does not say why it stopped");

    start(&srv, NULL);
    verify(srv.port, loads, 2, "after the restart");
    works_again(srv.port, UINT64_C(1) << 50);
    stop_and_compare(&srv);
    for (unsigned l = 0; l < 2; l++)
        load_free(&loads[l]);
    return 0;
}

/* ---- disk_full ------------------------------------------------------------------------ */

static char mnt[160];
static bool mounted;

static void unmount(void)
{
    if (mounted && umount2(mnt, MNT_DETACH) != 0)
        fprintf(stderr, "umount %s: %s\n", mnt, strerror(errno));
    mounted = false;
}

static uint64_t free_bytes(void)
{
    struct statvfs v;
    CHECK(statvfs(mnt, &v) == 0, "statvfs: %s", strerror(errno));
    return (uint64_t)v.f_bavail * v.f_frsize;
}

static uint64_t allocated_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

/* Takes all but keep bytes of the free space. */
static void fill(const char *path, uint64_t keep)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0, "%s: %s", path, strerror(errno));
    uint64_t f = free_bytes();
    CHECK(f > keep, "only %" PRIu64 " bytes free", f);
    int rc = posix_fallocate(fd, 0, (off_t)(f - keep));
    CHECK(rc == 0, "fallocate %s: %s", path, strerror(rc));
    CHECK(close(fd) == 0, "close: %s", strerror(errno));
}

static uint8_t one_mutation(allot_conn_t *c, unsigned kind, uint64_t order)
{
    allot_sku_result_t s;
    allot_order_result_t o;
    int rc;
    switch (kind) {
    case 0: rc = allot_restock(c, sku_ids[2], 1, &s); break;
    case 1: rc = allot_sku_set(c, sku_ids[3], 5000000, 0, 0, &s); break;
    case 2: rc = allot_adjust(c, sku_ids[4], 1, &s); break;
    default: {
        allot_line_t line = {.sku = sku_ids[5], .qty = 1};
        allot_order_spec_t spec = {.order = order, .customer = 5, .lines = &line,
                                   .line_count = 1};
        rc = allot_place(c, &spec, &o);
        break;
    }
    }
    CHECK(rc == 0, "mutation: %s", allot_last_error(c));
    return kind < 3 ? s.result : o.result;
}

static bool mount_tmpfs(void)
{
    snprintf(mnt, sizeof mnt, "%s/mnt", work);
    CHECK(mkdir(mnt, 0755) == 0, "mkdir %s: %s", mnt, strerror(errno));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=48m") != 0) {
        printf("SKIP: cannot mount a tmpfs on %s (%s): the full-disk test needs the right "
               "to mount\n",
               mnt, strerror(errno));
        return false;
    }
    mounted = true;
    cu_on_fail(unmount);
    return true;
}

/* Waits until allotd prepared its next segment, then takes all the space
 * but 1 MiB: the segment after that one cannot be prepared. */
static void leave_no_room(const char *filler)
{
    char prep[320];
    snprintf(prep, sizeof prep, "%s/journal-next.prep", data);
    uint64_t deadline = cu_mono_ms() + 5000;
    while (allocated_bytes(prep) < (4u << 20)) {
        CHECK(cu_mono_ms() < deadline, "the next segment was not prepared within 5 s");
        cu_sleep_ms(10);
    }
    fill(filler, 1u << 20);
    printf("  filler leaves %" PRIu64 " KiB free: the next segment cannot be prepared\n",
           free_bytes() >> 10);
}

/* Big orders, pipelined, until the journal refuses. */
static void fill_journal(load_t *L, uint16_t port)
{
    load_init(L, 0, port, ALLOT_LINES_MAX, 8);
    L->stop_on_read_only = true;
    uint64_t t0 = cu_mono_ms();
    load_main(L);
    CHECK(!L->err[0], "%s", L->err);
    CHECK(L->saw_read_only, "no READ_ONLY after %" PRIu64 " ms and %" PRIu64 " OK mutations",
          cu_mono_ms() - t0, L->ok);
    CHECK(L->lost == 0 && L->unavailable == 0, "%" PRIu64 " lost, %" PRIu64 " UNAVAILABLE",
          L->lost, L->unavailable);
    printf("  READ_ONLY after %" PRIu64 " OK mutations (%" PRIu64 " ms)\n", L->ok,
           cu_mono_ms() - t0);
}

/* The smallest mutations take what is left; then every kind is refused,
 * and reads go on. Returns the restocks (of 1 unit) that were accepted. */
static uint64_t check_read_only(allot_conn_t *c, const load_t *L, uint64_t order)
{
    uint64_t small_ok = 0;
    uint8_t r;
    while ((r = one_mutation(c, 0, 0)) == ALLOT_OK)
        CHECK(++small_ok < 100000, "restocks never refused");
    CHECK(r == ALLOT_READ_ONLY, "restock: %s", allot_result_name(r));
    for (unsigned kind = 0; kind < 4; kind++) {
        r = one_mutation(c, kind, order);
        CHECK(r == ALLOT_READ_ONLY, "mutation %u while the disk is full: %s", kind,
              allot_result_name(r));
    }
    allot_sku_result_t s;
    CHECK(allot_sku_get(c, sku_ids[0], &s) == 0 && s.result == ALLOT_OK, "SKU_GET: %s",
          allot_result_name(s.result));
    allot_order_info_t info;
    CHECK(allot_order_get(c, L->ords[0].id, &info) == 0 && info.result == ALLOT_OK,
          "ORDER_GET of an acknowledged order while READ_ONLY: %s", allot_result_name(info.result));
    uint64_t v[ALLOT_STAT_COUNT];
    cu_stats(c, v);
    CHECK(v[ALLOT_STAT_DURABLE_SEQUENCE] == v[ALLOT_STAT_SEQUENCE],
          "durable %" PRIu64 " < sequence %" PRIu64, v[ALLOT_STAT_DURABLE_SEQUENCE],
          v[ALLOT_STAT_SEQUENCE]);
    return small_ok;
}

/* Frees the space; a restock must be accepted within 3 s. */
static void free_space(allot_conn_t *c, const char *filler)
{
    CHECK(unlink(filler) == 0, "unlink %s: %s", filler, strerror(errno));
    uint64_t t0 = cu_mono_ms();
    uint8_t r;
    while ((r = one_mutation(c, 0, 0)) != ALLOT_OK) {
        CHECK(r == ALLOT_READ_ONLY, "restock: %s", allot_result_name(r));
        CHECK(cu_mono_ms() - t0 < 3000, "still READ_ONLY 3 s after space came back");
        cu_sleep_ms(50);
    }
    printf("  space back: accepted again after %" PRIu64 " ms\n", cu_mono_ms() - t0);
}

static int scenario_disk_full(void)
{
    if (!mount_tmpfs())
        return 77;
    snprintf(data, sizeof data, "%s/data", mnt);
    printf("disk_full: 48 MiB tmpfs at %s, --segment-mb 4, --threads %s\n", mnt, threads);
    static const char *const flags[] = {"--segment-mb", "4", "--snapshot-every", "0", NULL};
    scenario_flags = flags;
    cu_server_t srv;
    start(&srv, NULL);
    setup_skus(srv.port, UINT64_C(1000000000));
    char filler[256];
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    leave_no_room(filler);

    load_t L;
    fill_journal(&L, srv.port);
    allot_conn_t *c = cu_connect(srv.port, 8, 10000);
    uint64_t order = UINT64_C(1) << 52; /* refused while full, placed for real after */
    uint64_t small_ok = check_read_only(c, &L, order);
    free_space(c, filler);
    small_ok++;
    CHECK(one_mutation(c, 3, order) == ALLOT_OK, "PLACE %" PRIu64 " after space came back",
          order);
    allot_conn_close(c);
    /* the model learns what the single calls did */
    sku_initial[2] += small_ok;
    L.ords[L.nords++] = (ord_t){.id = order, .answer = A_OK, .nlines = 1, .first = 5, .qty = 1,
                                .alloc = 1};

    /* nothing acknowledged is lost, nothing refused appears: live, then
     * after a clean stop and restarts */
    verify(srv.port, &L, 1, "live");
    stop_and_compare(&srv);
    start(&srv, NULL);
    verify(srv.port, &L, 1, "after the restarts");
    works_again(srv.port, order + 1);
    int st = cu_server_stop(&srv, 20000);
    CHECK(st == 0, "allotd exited %d after SIGTERM", st);
    load_free(&L);
    unmount();
    return 0;
}

/* ---- main ------------------------------------------------------------------------------ */

static void __attribute__((noreturn)) usage(void)
{
    fprintf(stderr, "usage: crash_faults --allotd PATH [--journal PATH] --scenario "
                    "fsync|disk_full [--threads N] [--seed N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *scenario = NULL;
    bool seeded = false;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--allotd") == 0)
            allotd_path = v;
        else if (strcmp(argv[i - 1], "--journal") == 0)
            journal_path = v[0] ? v : NULL;
        else if (strcmp(argv[i - 1], "--scenario") == 0)
            scenario = v;
        else if (strcmp(argv[i - 1], "--threads") == 0)
            threads = v;
        else if (strcmp(argv[i - 1], "--seed") == 0)
            seed = strtoull(v, NULL, 0), seeded = true;
        else
            usage();
    }
    if (!allotd_path || !scenario)
        usage();
    if (!seeded)
        seed = cu_wall_ms() ^ ((uint64_t)getpid() << 32);
    signal(SIGPIPE, SIG_IGN);
    printf("crash_faults %s: seed %" PRIu64 " (rerun: --seed %" PRIu64 ")%s\n", scenario, seed,
           seed, journal_path ? "" : "; no allot-journal given: no replay comparison");
    cu_mkdtemp(work, sizeof work, "faults");
    snprintf(data, sizeof data, "%s/data", work);
    snprintf(log_path, sizeof log_path, "%s/allotd.log", work);
    int rc;
    if (strcmp(scenario, "fsync") == 0)
        rc = scenario_fsync();
    else if (strcmp(scenario, "disk_full") == 0)
        rc = scenario_disk_full();
    else
        usage();
    if (rc == 0 || rc == 77)
        cu_rmtree(work);
    if (rc == 0)
        printf("crash_faults %s: passed\n", scenario);
    return rc;
}
