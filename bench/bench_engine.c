/*
 * allot-bench engine: the engine alone, in process.
 *
 * What is timed is engine_apply() over operations that already sit in
 * memory as eng_op_t: generating them (zipf draws cost more than the engine
 * does) and loading the catalogue happen before the clock starts. With one
 * thread the bench calls engine_apply() directly, batch after batch; with
 * more, each thread is an executor producer that submits its own batches and
 * collects the completions, which is the path the server's network threads
 * take.
 */
#include "bench.h"
#include "workload.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/hist.h"
#include "common/limits.h"
#include "engine/engine.h"
#include "engine/exec.h"

#define EB_OPS_DEFAULT 4000000u
#define EB_SKUS_DEFAULT 1000000u
#define EB_BATCH_DEFAULT 256u
#define EB_STOCK_DEFAULT 1000000000u /* per SKU: no run of this tool drains it */
#define EB_RING_SIZE 32u             /* batches in flight per producer */
#define EB_TICK_MS 100u
#define EB_POLL_MAX 32u

typedef struct eb_opts {
    wl_config_t wl; /* ops is the total over all threads here */
    unsigned threads;
    uint32_t batch;
    uint64_t stock;
    bool json;
    bool check;
} eb_opts_t;

/* One thread's share: its operations, and its lines, which they point to. */
typedef struct eb_stream {
    eng_op_t *ops;
    size_t n_ops;
    eng_line_t *lines;
    size_t n_lines;
    uint64_t by_kind[WL_KIND_COUNT];
} eb_stream_t;

typedef struct eb_result {
    const char *path;
    uint64_t elapsed_ns;
    uint64_t generate_ns;
    uint64_t setup_ns;
    hist_t batch_ns; /* one batch: apply time, or submit to completion */
    uint64_t counts[ALLOT_OP_COUNT][ALLOT_RESULT_COUNT];
    int check_rc; /* engine_check(), when asked */
    char check_why[256];
} eb_result_t;

/* ---- options -------------------------------------------------------------- */

static void eb_usage(FILE *f)
{
    fprintf(f,
            "usage: allot-bench engine [options]\n\n"
            "Throughput of the engine alone: no network, no journal. The SKUs are\n"
            "loaded and every operation is generated before the clock starts; the\n"
            "clock (CLOCK_MONOTONIC) runs while engine_apply() works through them\n"
            "in batches. One thread calls engine_apply() directly; with --threads\n"
            "N > 1, N producer threads drive one engine through the executor.\n\n"
            "  --skus N          SKUs in the catalogue (default %u)\n"
            "  --distribution D  how orders pick SKUs: uniform or zipf:S, S > 0\n"
            "                    (default uniform; zipf alone means zipf:0.99)\n"
            "  --lines N         lines per order, distinct SKUs, 1..%u (default 1)\n"
            "  --qty N           units per line (default 1)\n"
            "  --threads N       1 = direct engine_apply(); 2..%u = executor\n"
            "                    producers, each with its own operations (default 1)\n"
            "  --ops N           operations in total, over all threads (default %u)\n"
            "  --mix M           place=P,confirm=C,cancel=X,fulfill=F, weights\n"
            "                    (default place=100). A confirm, cancel or fulfill\n"
            "                    targets an earlier place of the same thread not yet\n"
            "                    cancelled or fulfilled (UNKNOWN_ORDER if that place\n"
            "                    was refused); without one a place is made instead\n"
            "  --batch N         operations per engine_apply() call or executor\n"
            "                    batch, 1..%u (default %u)\n"
            "  --stock N         units on hand per SKU (default %u)\n"
            "  --customers N     customer ids 1..N, drawn uniformly (default 1M)\n"
            "  --hold-ms N       hold of each PLACE; 0 = confirmed at once (default 0)\n"
            "  --seed N          workload seed (default 1)\n"
            "  --check           run engine_check() on the final state (not timed)\n"
            "  --json            print one JSON object on stdout instead of text\n"
            "  -h, --help        this text\n\n"
            "Numbers take a k, M or G suffix (powers of 1000). Progress goes to\n"
            "stderr. Exit status: 0 ok, 1 failure, 2 bad usage.\n",
            EB_SKUS_DEFAULT, ALLOT_LINES_MAX, THREADS_MAX, EB_OPS_DEFAULT,
            ENGINE_BATCH_MAX, EB_BATCH_DEFAULT, EB_STOCK_DEFAULT);
}

enum {
    OPT_SKUS = 256, OPT_DIST, OPT_LINES, OPT_QTY, OPT_THREADS, OPT_OPS, OPT_MIX,
    OPT_BATCH, OPT_STOCK, OPT_CUSTOMERS, OPT_HOLD, OPT_SEED, OPT_CHECK, OPT_JSON,
};

static const struct option eb_long_opts[] = {
    {"skus", required_argument, NULL, OPT_SKUS},
    {"distribution", required_argument, NULL, OPT_DIST},
    {"lines", required_argument, NULL, OPT_LINES},
    {"qty", required_argument, NULL, OPT_QTY},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"ops", required_argument, NULL, OPT_OPS},
    {"mix", required_argument, NULL, OPT_MIX},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"stock", required_argument, NULL, OPT_STOCK},
    {"customers", required_argument, NULL, OPT_CUSTOMERS},
    {"hold-ms", required_argument, NULL, OPT_HOLD},
    {"seed", required_argument, NULL, OPT_SEED},
    {"check", no_argument, NULL, OPT_CHECK},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* A count option within [lo, hi]. */
static int eb_count_arg(const char *name, const char *text, uint64_t lo, uint64_t hi,
                        uint64_t *out)
{
    uint64_t v;
    if (bench_parse_count(text, &v) < 0 || v < lo || v > hi) {
        fprintf(stderr, "allot-bench engine: --%s wants a number in %" PRIu64 "..%" PRIu64
                        ", not '%s'\n", name, lo, hi, text);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int eb_apply_opt(eb_opts_t *o, int c, const char *arg)
{
    uint64_t v = 0;
    int rc = 0;
    switch (c) {
    case OPT_SKUS: rc = eb_count_arg("skus", arg, 1, SKUS_MAX_CEILING, &o->wl.skus); break;
    case OPT_LINES:
        rc = eb_count_arg("lines", arg, 1, ALLOT_LINES_MAX, &v);
        o->wl.lines = (uint32_t)v;
        break;
    case OPT_QTY:
        rc = eb_count_arg("qty", arg, 1, UINT32_MAX, &v);
        o->wl.qty = (uint32_t)v;
        break;
    case OPT_THREADS:
        rc = eb_count_arg("threads", arg, 1, THREADS_MAX, &v);
        o->threads = (unsigned)v;
        break;
    case OPT_OPS: rc = eb_count_arg("ops", arg, 1, WL_OPS_MAX, &o->wl.ops); break;
    case OPT_BATCH:
        rc = eb_count_arg("batch", arg, 1, ENGINE_BATCH_MAX, &v);
        o->batch = (uint32_t)v;
        break;
    case OPT_STOCK: rc = eb_count_arg("stock", arg, 0, UNITS_MAX, &o->stock); break;
    case OPT_CUSTOMERS: rc = eb_count_arg("customers", arg, 1, UINT64_MAX, &o->wl.customers); break;
    case OPT_HOLD:
        rc = eb_count_arg("hold-ms", arg, 0, UINT32_MAX, &v);
        o->wl.hold_ms = (uint32_t)v;
        break;
    case OPT_SEED: rc = eb_count_arg("seed", arg, 0, UINT64_MAX, &o->wl.seed); break;
    case OPT_DIST:
        rc = wl_parse_distribution(arg, &o->wl.dist, &o->wl.zipf_s);
        if (rc < 0)
            fprintf(stderr, "allot-bench engine: --distribution wants uniform or zipf:S "
                            "with 0 < S <= 100, not '%s'\n", arg);
        break;
    case OPT_MIX:
        rc = wl_parse_mix(arg, o->wl.mix);
        if (rc < 0)
            fprintf(stderr, "allot-bench engine: --mix wants place=P,confirm=C,cancel=X,"
                            "fulfill=F (weights, not all 0), not '%s'\n", arg);
        break;
    case OPT_CHECK: o->check = true; break;
    case OPT_JSON: o->json = true; break;
    default: rc = -EINVAL; break;
    }
    return rc;
}

/* 0 to run, 1 when help was printed, -EINVAL for bad usage. */
static int eb_parse(int argc, char **argv, eb_opts_t *o)
{
    memset(o, 0, sizeof *o);
    wl_config_default(&o->wl);
    o->wl.ops = EB_OPS_DEFAULT;
    o->wl.skus = EB_SKUS_DEFAULT;
    o->threads = 1;
    o->batch = EB_BATCH_DEFAULT;
    o->stock = EB_STOCK_DEFAULT;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", eb_long_opts, NULL)) != -1) {
        if (c == 'h') {
            eb_usage(stdout);
            return 1;
        }
        if (eb_apply_opt(o, c, optarg) < 0) {
            if (c == '?')
                fprintf(stderr, "allot-bench engine: see --help\n");
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "allot-bench engine: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    if (o->wl.lines > o->wl.skus) {
        fprintf(stderr, "allot-bench engine: --lines %u needs at least as many SKUs\n",
                o->wl.lines);
        return -EINVAL;
    }
    if (o->wl.ops < o->threads) {
        fprintf(stderr, "allot-bench engine: fewer --ops than --threads\n");
        return -EINVAL;
    }
    return 0;
}

/* ---- set-up ---------------------------------------------------------------- */

/* Turns one stream's workload into engine operations and frees it. */
static int eb_stream_build(eb_stream_t *s, workload_t *w)
{
    s->n_ops = w->n_ops;
    s->n_lines = w->n_lines;
    s->ops = bench_alloc(s->n_ops * sizeof *s->ops);
    s->lines = bench_alloc(s->n_lines * sizeof *s->lines);
    if (!s->ops || !s->lines)
        return -ENOMEM;
    for (size_t i = 0; i < w->n_lines; i++) {
        s->lines[i].sku = w->lines[i].sku;
        s->lines[i].qty = w->lines[i].qty;
    }
    for (size_t i = 0; i < w->n_ops; i++) {
        const wl_op_t *src = &w->ops[i];
        eng_op_t *op = &s->ops[i];
        op->opcode = src->opcode;
        op->id = src->order;
        if (src->opcode == ALLOT_OP_PLACE) {
            op->policy = ALLOT_POLICY_ALL_OR_NOTHING;
            op->customer = src->customer;
            op->ms = src->hold_ms;
            op->line_count = src->line_count;
            op->lines = s->lines + src->line_off;
        }
    }
    memcpy(s->by_kind, w->by_kind, sizeof s->by_kind);
    workload_free(w);
    return 0;
}

static void eb_streams_free(eb_stream_t *streams, unsigned n)
{
    for (unsigned t = 0; t < n; t++) {
        bench_free(streams[t].ops, streams[t].n_ops * sizeof *streams[t].ops);
        bench_free(streams[t].lines, streams[t].n_lines * sizeof *streams[t].lines);
    }
    free(streams);
}

/* One stream per thread, each with its share of the operations. */
static int eb_generate(const eb_opts_t *o, eb_stream_t **out)
{
    eb_stream_t *streams = calloc(o->threads, sizeof *streams);
    if (!streams)
        return -ENOMEM;
    double mib = (double)o->wl.ops * (double)(sizeof(eng_op_t) + o->wl.lines * sizeof(eng_line_t)) /
                 (1024.0 * 1024.0);
    fprintf(stderr, "generating %" PRIu64 " operations (up to %.0f MiB)...\n", o->wl.ops, mib);
    for (unsigned t = 0; t < o->threads; t++) {
        wl_config_t cfg = o->wl;
        cfg.stream = t;
        cfg.ops = o->wl.ops / o->threads + (t < o->wl.ops % o->threads ? 1u : 0u);
        workload_t w;
        int rc = workload_generate(&w, &cfg);
        if (rc == 0)
            rc = eb_stream_build(&streams[t], &w);
        if (rc < 0) {
            workload_free(&w);
            eb_streams_free(streams, o->threads);
            return rc;
        }
    }
    *out = streams;
    return 0;
}

/* The order table is fixed at init: room for every PLACE, plus slack. */
static int eb_engine_init(engine_t **e, const eb_opts_t *o, const eb_stream_t *streams)
{
    uint64_t places = 0;
    for (unsigned t = 0; t < o->threads; t++)
        places += streams[t].by_kind[WL_PLACE];
    uint64_t orders = places + places / 16u + 1024u;
    /* The engine may keep an order's lines in a block rounded up to a
     * power of two. */
    uint64_t block = 1;
    while (block < o->wl.lines)
        block <<= 1;
    uint64_t lines = orders * block;
    if (orders > ORDERS_MAX_CEILING || lines > UINT32_MAX) {
        fprintf(stderr, "allot-bench engine: %" PRIu64 " orders of %u lines exceed the "
                        "engine's tables; use fewer --ops\n", places, o->wl.lines);
        return -EINVAL;
    }
    engine_config_t cfg;
    engine_config_default(&cfg);
    cfg.skus_max = (uint32_t)o->wl.skus;
    cfg.orders_max = (uint32_t)orders;
    cfg.lines_max = (uint32_t)lines;
    cfg.prefault = true; /* page faults before the clock, not inside it */
    int rc = engine_init(e, &cfg);
    if (rc < 0)
        fprintf(stderr, "allot-bench engine: engine_init: %s\n", strerror(-rc));
    return rc;
}

/* Every SKU gets --stock units, no customer limit, no reorder point. */
static int eb_load_skus(engine_t *e, const eb_opts_t *o, uint64_t now_ms)
{
    eng_op_t *ops = calloc(ENGINE_BATCH_MAX, sizeof *ops);
    if (!ops)
        return -ENOMEM;
    fprintf(stderr, "setting up %" PRIu64 " SKUs with %" PRIu64 " units each...\n",
            o->wl.skus, o->stock);
    int rc = 0;
    for (uint64_t base = 0; base < o->wl.skus && rc == 0; base += ENGINE_BATCH_MAX) {
        size_t n = o->wl.skus - base < ENGINE_BATCH_MAX ? (size_t)(o->wl.skus - base)
                                                         : ENGINE_BATCH_MAX;
        memset(ops, 0, n * sizeof *ops);
        for (size_t i = 0; i < n; i++) {
            ops[i].opcode = ALLOT_OP_SKU_SET;
            ops[i].id = wl_sku_id(base + i);
            ops[i].amount = o->stock;
        }
        engine_apply(e, ops, n, now_ms);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (ops[i].result != ALLOT_OK) {
                fprintf(stderr, "allot-bench engine: SKU_SET of SKU #%" PRIu64 ": %s\n",
                        base + i, allot_result_name(ops[i].result));
                rc = -EIO;
            }
        }
    }
    free(ops);
    return rc;
}

/* ---- the direct path -------------------------------------------------------- */

static void eb_run_direct(engine_t *e, const eb_opts_t *o, eb_stream_t *s, eb_result_t *r)
{
    uint64_t wall0_ms = bench_wall_ms();
    uint64_t t0 = bench_now_ns();
    uint64_t prev = t0;
    for (size_t i = 0; i < s->n_ops; i += o->batch) {
        size_t n = s->n_ops - i < o->batch ? s->n_ops - i : o->batch;
        /* Engine time follows the monotonic clock from a wall-clock start:
         * one clock read per batch serves both. */
        engine_apply(e, s->ops + i, n, wall0_ms + (prev - t0) / 1000000u);
        uint64_t now = bench_now_ns();
        hist_record(&r->batch_ns, now - prev);
        prev = now;
    }
    r->elapsed_ns = prev - t0;
    r->path = "direct";
}

/* ---- the executor path -------------------------------------------------------- */

/* Holds the producers until every one of them exists, then releases them
 * together, so that the clock measures work and not thread creation. */
typedef struct eb_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state; /* 0 wait, 1 go, -1 give up */
} eb_gate_t;

static int eb_gate_wait(eb_gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    while (g->state == 0)
        pthread_cond_wait(&g->cv, &g->mu);
    int state = g->state;
    pthread_mutex_unlock(&g->mu);
    return state;
}

static void eb_gate_open(eb_gate_t *g, int state)
{
    pthread_mutex_lock(&g->mu);
    g->state = state;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

typedef struct eb_worker {
    exec_t *x;
    unsigned id;
    eb_stream_t *stream;
    uint32_t batch;
    eb_gate_t *gate;
    exec_batch_t *batches;
    uint64_t *submitted_ns;
    size_t n_batches;
    hist_t batch_ns;
    int err;
} eb_worker_t;

/* Blocks until the owner says completions are waiting, or briefly at most:
 * the timeout only guards against a wake-up that raced the last poll. */
static int eb_wait_completion(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = poll(&p, 1, 10);
    if (rc < 0)
        return errno == EINTR ? 0 : -errno;
    if (rc > 0 && (p.revents & POLLIN)) {
        uint64_t v;
        ssize_t got = read(fd, &v, sizeof v);
        if (got < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
    }
    return 0;
}

static int eb_worker_loop(eb_worker_t *w)
{
    int fd = exec_wake_fd(w->x, w->id);
    size_t next = 0, done = 0;
    while (done < w->n_batches) {
        while (next < w->n_batches && next - done < EB_RING_SIZE) {
            w->submitted_ns[next] = bench_now_ns();
            int rc = exec_submit(w->x, w->id, &w->batches[next]);
            if (rc == -EAGAIN)
                break;
            if (rc < 0)
                return rc;
            next++;
        }
        exec_batch_t *got[EB_POLL_MAX];
        size_t k = exec_poll(w->x, w->id, got, EB_POLL_MAX);
        if (k == 0) {
            int rc = eb_wait_completion(fd);
            if (rc < 0)
                return rc;
            continue;
        }
        uint64_t now = bench_now_ns();
        for (size_t j = 0; j < k; j++)
            hist_record(&w->batch_ns, now - w->submitted_ns[(uintptr_t)got[j]->user]);
        done += k;
    }
    return 0;
}

static void *eb_worker_main(void *arg)
{
    eb_worker_t *w = arg;
    if (eb_gate_wait(w->gate) > 0)
        w->err = eb_worker_loop(w);
    return NULL;
}

static int eb_worker_prepare(eb_worker_t *w, eb_stream_t *s, uint32_t batch)
{
    w->stream = s;
    w->batch = batch;
    w->n_batches = (s->n_ops + batch - 1) / batch;
    w->batches = calloc(w->n_batches, sizeof *w->batches);
    w->submitted_ns = calloc(w->n_batches, sizeof *w->submitted_ns);
    if (!w->batches || !w->submitted_ns)
        return -ENOMEM;
    for (size_t b = 0; b < w->n_batches; b++) {
        size_t first = b * batch;
        w->batches[b].ops = s->ops + first;
        w->batches[b].n = s->n_ops - first < batch ? s->n_ops - first : batch;
        w->batches[b].user = (void *)(uintptr_t)b;
    }
    hist_init(&w->batch_ns);
    return 0;
}

static void eb_workers_free(eb_worker_t *workers, unsigned n)
{
    for (unsigned t = 0; t < n; t++) {
        free(workers[t].batches);
        free(workers[t].submitted_ns);
    }
    free(workers);
}

/* Starts the threads, releases them together, and waits for them all. */
static int eb_run_threads(eb_worker_t *workers, unsigned n, eb_gate_t *gate, eb_result_t *r)
{
    pthread_t tids[THREADS_MAX];
    unsigned started = 0;
    int rc = 0;
    for (; started < n && rc == 0; started++) {
        rc = -pthread_create(&tids[started], NULL, eb_worker_main, &workers[started]);
        if (rc < 0) {
            fprintf(stderr, "allot-bench engine: pthread_create: %s\n", strerror(-rc));
            break;
        }
    }
    eb_gate_open(gate, rc == 0 ? 1 : -1);
    uint64_t t0 = bench_now_ns();
    for (unsigned t = 0; t < started; t++) {
        int jrc = pthread_join(tids[t], NULL);
        if (jrc != 0 && rc == 0)
            rc = -jrc;
    }
    r->elapsed_ns = bench_now_ns() - t0;
    for (unsigned t = 0; t < started; t++) {
        hist_merge(&r->batch_ns, &workers[t].batch_ns);
        if (workers[t].err < 0 && rc == 0)
            rc = workers[t].err;
    }
    return rc;
}

static int eb_run_exec(engine_t *e, const eb_opts_t *o, eb_stream_t *streams, eb_result_t *r)
{
    unsigned n = o->threads;
    exec_config_t cfg = {
        .producers = n,
        .inline_apply = false,
        .ring_size = EB_RING_SIZE,
        .tick_ms = EB_TICK_MS,
    };
    eb_worker_t *workers = calloc(n, sizeof *workers);
    if (!workers)
        return -ENOMEM;
    exec_t *x = NULL;
    eb_gate_t gate = {
        .mu = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER,
    };
    int rc = 0;
    for (unsigned t = 0; t < n && rc == 0; t++)
        rc = eb_worker_prepare(&workers[t], &streams[t], o->batch);
    if (rc == 0 && (rc = exec_init(&x, e, &cfg)) < 0)
        fprintf(stderr, "allot-bench engine: exec_init: %s\n", strerror(-rc));
    if (rc == 0 && (rc = exec_start(x)) < 0)
        fprintf(stderr, "allot-bench engine: exec_start: %s\n", strerror(-rc));
    if (rc == 0) {
        for (unsigned t = 0; t < n; t++) {
            workers[t].x = x;
            workers[t].id = t;
            workers[t].gate = &gate;
        }
        rc = eb_run_threads(workers, n, &gate, r);
    }
    if (x)
        exec_deinit(x);
    eb_workers_free(workers, n);
    r->path = "executor";
    return rc;
}

/* ---- reporting ---------------------------------------------------------------- */

/* Never 0: a rate of infinity is not JSON. */
static double eb_seconds(const eb_result_t *r)
{
    return (double)(r->elapsed_ns ? r->elapsed_ns : 1u) / 1e9;
}

static void eb_count(const eb_opts_t *o, const eb_stream_t *streams, eb_result_t *r)
{
    for (unsigned t = 0; t < o->threads; t++) {
        for (size_t i = 0; i < streams[t].n_ops; i++) {
            const eng_op_t *op = &streams[t].ops[i];
            if (op->opcode < ALLOT_OP_COUNT && op->result < ALLOT_RESULT_COUNT)
                r->counts[op->opcode][op->result]++;
        }
    }
}

static uint64_t eb_by_result(const eb_result_t *r, unsigned result)
{
    uint64_t n = 0;
    for (unsigned op = 0; op < ALLOT_OP_COUNT; op++)
        n += r->counts[op][result];
    return n;
}

static void eb_json_counts(FILE *f, const eb_result_t *r)
{
    fprintf(f, ",\"results\":{");
    const char *sep = "";
    for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++) {
        uint64_t n = eb_by_result(r, res);
        if (n == 0)
            continue;
        fprintf(f, "%s\"%s\":%" PRIu64, sep, allot_result_name(res), n);
        sep = ",";
    }
    fprintf(f, "},\"by_op\":{");
    sep = "";
    for (unsigned op = 0; op < ALLOT_OP_COUNT; op++) {
        const char *inner = "";
        for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++) {
            if (r->counts[op][res] == 0)
                continue;
            if (*inner == '\0')
                fprintf(f, "%s\"%s\":{", sep, allot_opcode_name(op));
            fprintf(f, "%s\"%s\":%" PRIu64, inner, allot_result_name(res), r->counts[op][res]);
            inner = ",";
            sep = ",";
        }
        if (*inner != '\0')
            fprintf(f, "}");
    }
    fprintf(f, "}");
}

static void eb_report_json(const eb_opts_t *o, const eb_stream_t *streams, const eb_result_t *r,
                           const char *dist)
{
    double secs = eb_seconds(r);
    uint64_t gen[WL_KIND_COUNT] = {0};
    for (unsigned t = 0; t < o->threads; t++)
        for (unsigned k = 0; k < WL_KIND_COUNT; k++)
            gen[k] += streams[t].by_kind[k];
    printf("{\"mode\":\"engine\",\"path\":\"%s\",\"ops_per_sec\":%.0f,\"ops\":%" PRIu64
           ",\"seconds\":%.6f,\"skus\":%" PRIu64 ",\"threads\":%u,\"lines\":%u,\"qty\":%u"
           ",\"distribution\":",
           r->path, (double)o->wl.ops / secs, o->wl.ops, secs, o->wl.skus, o->threads,
           o->wl.lines, o->wl.qty);
    bench_json_string(stdout, dist);
    printf(",\"batch\":%u,\"stock\":%" PRIu64 ",\"customers\":%" PRIu64 ",\"hold_ms\":%u"
           ",\"seed\":%" PRIu64 ",\"mix\":{",
           o->batch, o->stock, o->wl.customers, o->wl.hold_ms, o->wl.seed);
    for (unsigned k = 0; k < WL_KIND_COUNT; k++)
        printf("%s\"%s\":%u", k ? "," : "", wl_kind_name(k), o->wl.mix[k]);
    printf("},\"generated\":{");
    for (unsigned k = 0; k < WL_KIND_COUNT; k++)
        printf("%s\"%s\":%" PRIu64, k ? "," : "", wl_kind_name(k), gen[k]);
    printf("}");
    eb_json_counts(stdout, r);
    const hist_t *h = &r->batch_ns;
    printf(",\"batch_ns\":{\"count\":%" PRIu64 ",\"mean\":%.0f,\"p50\":%" PRIu64
           ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}",
           hist_count(h), hist_mean(h), hist_percentile(h, 50), hist_percentile(h, 99),
           hist_percentile(h, 99.9), hist_max(h));
    printf(",\"generate_seconds\":%.3f,\"setup_seconds\":%.3f", (double)r->generate_ns / 1e9,
           (double)r->setup_ns / 1e9);
    if (o->check)
        printf(",\"check\":%s", r->check_rc == 0 ? "\"ok\"" : "\"failed\"");
    printf("}\n");
}

static void eb_report_text(const eb_opts_t *o, const eb_result_t *r, const char *dist)
{
    double secs = eb_seconds(r);
    printf("engine: %.2f M ops/s, %" PRIu64 " ops in %.3f s; %s path (%u thread%s), "
           "batch %u; %" PRIu64 " SKUs %s, %u line%s/order\n",
           (double)o->wl.ops / secs / 1e6, o->wl.ops, secs,
           strcmp(r->path, "direct") == 0 ? "direct engine_apply" : "executor", o->threads,
           o->threads == 1 ? "" : "s", o->batch, o->wl.skus, dist, o->wl.lines,
           o->wl.lines == 1 ? "" : "s");
    printf("results:");
    for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++) {
        uint64_t n = eb_by_result(r, res);
        if (n)
            printf(" %s %" PRIu64, allot_result_name(res), n);
    }
    const hist_t *h = &r->batch_ns;
    printf("; batch p50 %.1f us, p99 %.1f us, max %.1f us%s\n",
           (double)hist_percentile(h, 50) / 1e3, (double)hist_percentile(h, 99) / 1e3,
           (double)hist_max(h) / 1e3,
           !o->check ? "" : r->check_rc == 0 ? "; engine_check ok" : "; engine_check FAILED");
}

/* ---- the mode --------------------------------------------------------------- */

static int eb_run(const eb_opts_t *o, eb_result_t *r)
{
    eb_stream_t *streams = NULL;
    engine_t *e = NULL;
    uint64_t t0 = bench_now_ns();
    int rc = eb_generate(o, &streams);
    if (rc < 0) {
        fprintf(stderr, "allot-bench engine: generating the workload: %s\n", strerror(-rc));
        return rc;
    }
    uint64_t t1 = bench_now_ns();
    r->generate_ns = t1 - t0;
    rc = eb_engine_init(&e, o, streams);
    if (rc == 0)
        rc = eb_load_skus(e, o, bench_wall_ms());
    r->setup_ns = bench_now_ns() - t1;
    if (rc == 0) {
        fprintf(stderr, "running...\n");
        if (o->threads == 1)
            eb_run_direct(e, o, &streams[0], r);
        else if ((rc = eb_run_exec(e, o, streams, r)) < 0)
            fprintf(stderr, "allot-bench engine: executor run: %s\n", strerror(-rc));
    }
    if (rc == 0 && o->check) {
        fprintf(stderr, "checking the engine's invariants...\n");
        r->check_rc = engine_check(e, r->check_why, sizeof r->check_why);
        if (r->check_rc < 0)
            fprintf(stderr, "allot-bench engine: engine_check: %s\n", r->check_why);
    }
    if (rc == 0) {
        char dist[32];
        wl_format_distribution(dist, sizeof dist, o->wl.dist, o->wl.zipf_s);
        eb_count(o, streams, r);
        if (o->json)
            eb_report_json(o, streams, r, dist);
        else
            eb_report_text(o, r, dist);
    }
    if (e)
        engine_deinit(e);
    eb_streams_free(streams, o->threads);
    return rc < 0 ? rc : r->check_rc;
}

int bench_engine_main(int argc, char **argv)
{
    eb_opts_t o;
    int rc = eb_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    /* The result holds a histogram (58 KiB): keep it off the stack. */
    eb_result_t *r = calloc(1, sizeof *r);
    if (!r) {
        fprintf(stderr, "allot-bench engine: out of memory\n");
        return 1;
    }
    hist_init(&r->batch_ns);
    rc = eb_run(&o, r);
    free(r);
    return rc < 0 ? 1 : 0;
}
