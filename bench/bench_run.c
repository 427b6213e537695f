/*
 * allot-bench run: a scenario against a running allotd (or Redis), over
 * the network, with a correctness check at the end.
 *
 * Shape of a run:
 *   1. build the scenario's order templates from the seed (no clock yet);
 *   2. on a control connection, load the SKUs (on_hand = what is allocated
 *      + the scenario's stock) and keep their states as "before";
 *   3. open --connections connections, spread over --threads workers (one
 *      by default: the machine is shared with the server); each worker
 *      drives its connections from one poll(2) loop, keeping --pipeline
 *      frames of up to --batch operations in flight on each;
 *   4. after the warm-up, count and time every answer until --duration (or
 *      --total orders) is reached; then stop placing, send the follow-ups
 *      still queued and collect every answer;
 *   5. wait until every hold the run abandoned is past its deadline, read
 *      every SKU again and check (run_check.c).
 *
 * Orders placed OK get their follow-ups (confirm, cancel, fulfill) from
 * their template's fate, on the connection that placed them, as soon as
 * their answer is in: a follow-up frame goes out once a batch is full or
 * its oldest element has waited RB_FOLLOW_WAIT_NS.
 *
 * Closed loop (default) sends as fast as answers come back; latency is from
 * a frame's send to its answer. Open loop (--rate) schedules PLACE k at
 * start + k / rate and measures each from that intended time, whether or
 * not a frame was free to carry it then, so that a stalled server shows up
 * in the latency instead of silently lowering the offered load. Follow-ups
 * are not part of the schedule: in open loop they go out at once and are
 * timed from their send.
 */
#include "bench.h"
#include "run_loop.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <allot/client.h>

#define RB_CONNECTIONS_DEFAULT 8u
#define RB_PIPELINE_DEFAULT 4u
#define RB_BATCH_DEFAULT 64u
#define RB_CONNECTIONS_MAX 1024u
#define RB_PIPELINE_MAX 4096u
#define RB_THREADS_MAX 16u
#define RB_DURATION_DEFAULT 10.0
#define RB_WARMUP_DEFAULT 1.0
#define RB_CHECK_RETRIES 10         /* a server sweeps expired holds on a tick */
#define RB_CHECK_RETRY_MS 200
#define RB_EXPIRY_MARGIN_MS 100
#define RB_SWEEP_NS_MAX 60000000000u /* expired holds still unswept: give up */

/* ---- options ---------------------------------------------------------------- */

enum {
    OPT_HOST = 256, OPT_PORT, OPT_TARGET, OPT_SCENARIO, OPT_CONNECTIONS, OPT_PIPELINE, OPT_BATCH,
    OPT_THREADS, OPT_DURATION, OPT_TOTAL, OPT_WARMUP, OPT_RATE, OPT_JSON, OPT_BASE, OPT_CUST_BASE,
    OPT_NO_SETUP, OPT_HIST_OUT, OPT_QUIET,
    /* knobs of the scenario: applied over its defaults, in this order */
    OPT_KNOB_FIRST, OPT_SEED = OPT_KNOB_FIRST, OPT_LINES, OPT_QTY, OPT_SKUS, OPT_STOCK, OPT_HOT,
    OPT_HOT_STOCK, OPT_HOT_LIMIT, OPT_HOT_SHARE, OPT_DIST, OPT_CUSTOMERS, OPT_HOLD, OPT_MIX,
    OPT_TEMPLATES, OPT_POLICY, OPT_RESTOCK_EVERY, OPT_RESTOCK_QTY, OPT_MAX_WAIT, OPT_MAX_WAIT_SHARE,
    OPT_ADVANCE_SHARE, OPT_CANCEL_AFTER, OPT_LOCATIONS, OPT_SINGLE_SHARE, OPT_KNOB_END,
};

static const struct option rb_long_opts[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"target", required_argument, NULL, OPT_TARGET},
    {"scenario", required_argument, NULL, OPT_SCENARIO},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"pipeline", required_argument, NULL, OPT_PIPELINE},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"total", required_argument, NULL, OPT_TOTAL},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"rate", required_argument, NULL, OPT_RATE},
    {"json", no_argument, NULL, OPT_JSON},
    {"order-id-base", required_argument, NULL, OPT_BASE},
    {"customer-base", required_argument, NULL, OPT_CUST_BASE},
    {"no-setup", no_argument, NULL, OPT_NO_SETUP},
    {"hist-out", required_argument, NULL, OPT_HIST_OUT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"seed", required_argument, NULL, OPT_SEED},
    {"lines", required_argument, NULL, OPT_LINES},
    {"qty", required_argument, NULL, OPT_QTY},
    {"skus", required_argument, NULL, OPT_SKUS},
    {"stock", required_argument, NULL, OPT_STOCK},
    {"hot", required_argument, NULL, OPT_HOT},
    {"hot-stock", required_argument, NULL, OPT_HOT_STOCK},
    {"hot-limit", required_argument, NULL, OPT_HOT_LIMIT},
    {"hot-share", required_argument, NULL, OPT_HOT_SHARE},
    {"distribution", required_argument, NULL, OPT_DIST},
    {"customers", required_argument, NULL, OPT_CUSTOMERS},
    {"hold-ms", required_argument, NULL, OPT_HOLD},
    {"mix", required_argument, NULL, OPT_MIX},
    {"templates", required_argument, NULL, OPT_TEMPLATES},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"restock-every", required_argument, NULL, OPT_RESTOCK_EVERY},
    {"restock-qty", required_argument, NULL, OPT_RESTOCK_QTY},
    {"max-wait-ms", required_argument, NULL, OPT_MAX_WAIT},
    {"max-wait-share", required_argument, NULL, OPT_MAX_WAIT_SHARE},
    {"advance-share", required_argument, NULL, OPT_ADVANCE_SHARE},
    {"cancel-after-ms", required_argument, NULL, OPT_CANCEL_AFTER},
    {"locations", required_argument, NULL, OPT_LOCATIONS},
    {"single-share", required_argument, NULL, OPT_SINGLE_SHARE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};


static void rb_usage(FILE *f)
{
    fprintf(f,
        "usage: allot-bench run [options]\n\n"
        "Runs a scenario against a running allotd through the client library\n"
        "(or against Redis with --target redis://...), reports throughput and\n"
        "latency, then checks the target's state against what clients were told.\n\n"
        "target and load:\n"
        "  --host H, --port P   allotd's address (default %s:%u)\n"
        "  --target URL         allot://H:P or redis://H:P (Redis 7: stock in hashes,\n"
        "                       Lua scripts via EVALSHA, the same operations)\n"
        "  --connections N      connections (default %u)\n"
        "  --pipeline N         frames in flight per connection (default %u)\n"
        "  --batch N            operations per frame (default %u; Redis: commands\n"
        "                       written together)\n"
        "  --threads N          client threads sharing the connections (default 1)\n"
        "  --duration S         measured seconds (default %.0f)\n"
        "  --total N            stop after N orders (PLACE) instead\n"
        "  --warmup S           seconds run before measuring (default %.0f)\n"
        "  --rate N             open loop: N orders per second in all, latency from\n"
        "                       each order's intended send time (default: closed loop)\n"
        "scenario (a knob given here overrides the scenario's choice):\n"
        "  --scenario S         flash (default), catalog, custom, waitlist or\n"
        "                       multi-location\n"
        "  --seed N             workload seed (default 1)\n"
        "  --skus N             catalogue SKUs          --stock N      units of each\n"
        "  --hot N              hot SKUs                --hot-stock N  units of each\n"
        "  --hot-limit N        units per customer and hot SKU (0 = none)\n"
        "  --hot-share P        percent of lines on hot SKUs\n"
        "  --distribution D     catalogue demand: uniform or zipf:S\n"
        "  --lines N|A-B        lines per order, fixed or uniform in A..B\n"
        "  --qty N|A-B          units per line, fixed or uniform in A..B\n"
        "  --customers N        distinct customers\n"
        "  --hold-ms N          hold of each order; 0 = confirmed at once\n"
        "  --mix M              place=P,confirm=C,cancel=X,fulfill=F: of every P\n"
        "                       orders placed OK, X are cancelled, C confirmed and F\n"
        "                       of those fulfilled; the rest are abandoned (a hold\n"
        "                       then expires in the server)\n"
        "  --templates N        distinct orders generated, reused in a cycle\n"
        "                       (default 1M)\n"
        "  --policy P           all-or-nothing or backorder (the rest of each line\n"
        "                       waits in the SKU's queue; one client thread)\n"
        "waitlist knobs (backorders; allot only):\n"
        "  --restock-every MS   every hot SKU restocked this often (0 = never)\n"
        "  --restock-qty N      units per hot SKU and restock\n"
        "  --max-wait-ms N      the maximum wait of orders that have one\n"
        "  --max-wait-share P   percent of orders with a maximum wait\n"
        "  --advance-share P    percent of the orders to be paid that pay while\n"
        "                       still waiting (CONFIRM of a BACKORDERED order)\n"
        "  --cancel-after-ms N  the cancels of the mix go out N ms after the\n"
        "                       PLACE answer\n"
        "multi-location knobs (allot only):\n"
        "  --locations N|A-B    locations per SKU: location 0 first in allocation\n"
        "                       order, the others among ids 1..15 with priorities\n"
        "                       0..3 (a layout fixed per SKU); --stock units in each\n"
        "  --single-share P     percent of orders with SINGLE_LOCATION lines\n"
        "run:\n"
        "  --order-id-base N    first order id (default: wall clock ms << 20, fresh\n"
        "                       for every run)\n"
        "  --customer-base N    customer ids are N+1.. (default: the order id base)\n"
        "  --no-setup           do not load SKUs and stock (they must exist)\n"
        "  --json               one JSON object on stdout\n"
        "  --hist-out FILE      latency distribution as CSV\n"
        "  --quiet              no progress line\n"
        "  -h, --help           this text\n\n"
        "Scenarios: flash = 100 hot SKUs of 10,000 units, limit 2 per customer, half\n"
        "of all lines, plus 100,000 SKUs of 1,000 units under zipf 0.99; 100,000\n"
        "customers; 2 s holds, 60%% confirmed and shipped, 10%% cancelled, 30%%\n"
        "abandoned. catalog = 1,000,000 SKUs, uniform, stock that never runs out,\n"
        "confirmed at once, 90%% shipped, 10%% cancelled. custom = 100,000 SKUs,\n"
        "uniform, every order shipped: a base for the knobs. waitlist = a sell-out\n"
        "then restocks: 16 hot SKUs of 500 units, limit 2, 3,000 customers, one-line\n"
        "BACKORDER orders; 50 units per hot SKU every 100 ms; 30%% wait 1.5 s at\n"
        "most; of the orders placed, 15%% cancelled 200 ms after the answer, 70%%\n"
        "paid (half of them while waiting), 50%% shipped once complete, the rest\n"
        "left (a hold expires 2 s after the fill); subscribes to the server's\n"
        "events to learn of fills and expiries. multi-location = 20,000 SKUs at\n"
        "2-8 locations of 50 units, zipf 0.99, 1-3 lines of 1-20 units, 20%%\n"
        "SINGLE_LOCATION, holds and fates as flash; every order read back with\n"
        "ORDER_GET to check its lines' locations.\n\n"
        "Exit status: 0 the check passed, 1 it failed or the run broke, 2 bad usage.\n",
        ALLOT_DEFAULT_HOST, ALLOT_DEFAULT_PORT, RB_CONNECTIONS_DEFAULT, RB_PIPELINE_DEFAULT, RB_BATCH_DEFAULT,
        RB_DURATION_DEFAULT, RB_WARMUP_DEFAULT);
}

static int rb_count(const char *name, const char *text, uint64_t lo, uint64_t hi, uint64_t *out)
{
    uint64_t v;
    if (bench_parse_count(text, &v) < 0 || v < lo || v > hi) {
        fprintf(stderr, "allot-bench run: --%s wants a number in %" PRIu64 "..%" PRIu64
                        ", not '%s'\n", name, lo, hi, text);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int rb_seconds(const char *name, const char *text, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= 0.0) || v > 1e6) {
        fprintf(stderr, "allot-bench run: --%s wants seconds, not '%s'\n", name, text);
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int rb_u32(const char *name, const char *text, uint64_t lo, uint64_t hi, uint32_t *out)
{
    uint64_t v;
    int rc = rb_count(name, text, lo, hi, &v);
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

static int rb_knob(sc_config_t *c, int opt, const char *arg)
{
    switch (opt) {
    case OPT_SEED: return rb_count("seed", arg, 0, UINT64_MAX, &c->seed);
    case OPT_LINES:
        if (sc_parse_lines(arg, &c->lines_min, &c->lines_max) == 0)
            return 0;
        fprintf(stderr, "allot-bench run: --lines wants N or A-B within 1..64, not '%s'\n", arg);
        return -EINVAL;
    case OPT_QTY:
        if (sc_parse_range(arg, 1, UINT32_MAX, &c->qty, &c->qty_max) == 0)
            return 0;
        fprintf(stderr, "allot-bench run: --qty wants N or A-B (A >= 1), not '%s'\n", arg);
        return -EINVAL;
    case OPT_LOCATIONS:
        if (sc_parse_range(arg, 1, ALLOT_LOCATIONS_MAX, &c->locs_min, &c->locs_max) == 0)
            return 0;
        fprintf(stderr, "allot-bench run: --locations wants N or A-B within 1..8, not '%s'\n",
                arg);
        return -EINVAL;
    case OPT_POLICY:
        if (strcmp(arg, "all-or-nothing") == 0)
            c->policy = ALLOT_POLICY_ALL_OR_NOTHING;
        else if (strcmp(arg, "backorder") == 0)
            c->policy = ALLOT_POLICY_BACKORDER;
        else {
            fprintf(stderr, "allot-bench run: --policy is all-or-nothing or backorder, not "
                            "'%s'\n", arg);
            return -EINVAL;
        }
        return 0;
    case OPT_RESTOCK_EVERY:
        return rb_u32("restock-every", arg, 0, 3600000, &c->restock_every_ms);
    case OPT_RESTOCK_QTY: return rb_count("restock-qty", arg, 0, UINT64_C(1) << 40, &c->restock_qty);
    case OPT_MAX_WAIT: return rb_u32("max-wait-ms", arg, 0, UINT32_MAX, &c->max_wait_ms);
    case OPT_MAX_WAIT_SHARE: return rb_u32("max-wait-share", arg, 0, 100, &c->max_wait_share);
    case OPT_ADVANCE_SHARE: return rb_u32("advance-share", arg, 0, 100, &c->advance_share);
    case OPT_CANCEL_AFTER: return rb_u32("cancel-after-ms", arg, 0, 3600000, &c->cancel_after_ms);
    case OPT_SINGLE_SHARE: return rb_u32("single-share", arg, 0, 100, &c->single_share);
    case OPT_SKUS: return rb_count("skus", arg, 0, UINT32_MAX, &c->skus);
    case OPT_STOCK: return rb_count("stock", arg, 0, UINT64_C(1) << 50, &c->stock);
    case OPT_HOT: return rb_count("hot", arg, 0, UINT32_MAX, &c->hot);
    case OPT_HOT_STOCK: return rb_count("hot-stock", arg, 0, UINT64_C(1) << 50, &c->hot_stock);
    case OPT_HOT_LIMIT: return rb_u32("hot-limit", arg, 0, UINT32_MAX, &c->hot_limit);
    case OPT_HOT_SHARE: return rb_u32("hot-share", arg, 0, 100, &c->hot_share);
    case OPT_CUSTOMERS: return rb_count("customers", arg, 1, UINT32_MAX, &c->customers);
    case OPT_HOLD: return rb_u32("hold-ms", arg, 0, UINT32_MAX, &c->hold_ms);
    case OPT_TEMPLATES: return rb_count("templates", arg, 1, UINT64_C(1) << 26, &c->templates);
    case OPT_DIST:
        if (wl_parse_distribution(arg, &c->dist, &c->zipf_s) == 0)
            return 0;
        fprintf(stderr, "allot-bench run: --distribution wants uniform or zipf:S, not '%s'\n", arg);
        return -EINVAL;
    case OPT_MIX:
        if (wl_parse_mix(arg, c->mix) == 0)
            return 0;
        fprintf(stderr, "allot-bench run: --mix wants place=P,confirm=C,cancel=X,fulfill=F, "
                        "not '%s'\n", arg);
        return -EINVAL;
    default: return -EINVAL;
    }
}

static int rb_option(rb_opts_t *o, int c, const char *arg)
{
    uint64_t v;
    int rc;
    switch (c) {
    case OPT_HOST: o->host = arg; return 0;
    case OPT_PORT:
        rc = rb_count("port", arg, 1, 65535, &v);
        o->port = (uint16_t)v;
        return rc;
    case OPT_TARGET: o->url = arg; return 0;
    case OPT_CONNECTIONS: return rb_u32("connections", arg, 1, RB_CONNECTIONS_MAX, &o->connections);
    case OPT_PIPELINE: return rb_u32("pipeline", arg, 1, RB_PIPELINE_MAX, &o->pipeline);
    case OPT_BATCH: return rb_u32("batch", arg, 1, ALLOT_BATCH_MAX, &o->batch);
    case OPT_THREADS: return rb_u32("threads", arg, 1, RB_THREADS_MAX, &o->threads);
    case OPT_DURATION: return rb_seconds("duration", arg, &o->duration_s);
    case OPT_WARMUP: return rb_seconds("warmup", arg, &o->warmup_s);
    case OPT_TOTAL: return rb_count("total", arg, 1, UINT64_C(1) << 40, &o->total);
    case OPT_RATE: return rb_count("rate", arg, 1, UINT64_C(1) << 32, &o->rate);
    case OPT_JSON: o->json = true; return 0;
    case OPT_NO_SETUP: o->no_setup = true; return 0;
    case OPT_QUIET: o->quiet = true; return 0;
    case OPT_HIST_OUT: o->hist_out = arg; return 0;
    case OPT_BASE:
        o->have_base = true;
        return rb_count("order-id-base", arg, 1, UINT64_C(1) << 62, &o->order_base);
    case OPT_CUST_BASE:
        o->have_cust_base = true;
        return rb_count("customer-base", arg, 0, UINT64_C(1) << 62, &o->customer_base);
    default: return -EINVAL;
    }
}

/* After getopt: the scenario's defaults, then the knobs in the order of
 * their options (the last of a repeated one wins). */
static int rb_finish_opts(rb_opts_t *o, enum sc_kind kind, const char *const *knobs, bool has_duration)
{
    sc_config_defaults(&o->sc, kind);
    for (int k = OPT_KNOB_FIRST; k < OPT_KNOB_END; k++)
        if (knobs[k - OPT_KNOB_FIRST] && rb_knob(&o->sc, k, knobs[k - OPT_KNOB_FIRST]) < 0)
            return -EINVAL;
    char why[160];
    if (sc_config_check(&o->sc, why, sizeof why) < 0) {
        fprintf(stderr, "allot-bench run: %s\n", why);
        return -EINVAL;
    }
    if (o->total > 0 && !has_duration)
        o->duration_s = 0;
    if (o->duration_s <= 0 && o->total == 0) {
        fprintf(stderr, "allot-bench run: --duration must be above 0 (or give --total)\n");
        return -EINVAL;
    }
    uint64_t frame = ALLOT_FRAME_HEADER_SIZE +
                     (uint64_t)o->batch * (ALLOT_PLACE_HEAD_SIZE + o->sc.lines_max * ALLOT_LINE_SIZE);
    if (frame > ALLOT_FRAME_MAX) {
        fprintf(stderr, "allot-bench run: %u orders of %u lines do not fit one frame (%u bytes): "
                        "lower --batch to %u\n", o->batch, o->sc.lines_max, ALLOT_FRAME_MAX,
                (unsigned)((ALLOT_FRAME_MAX - ALLOT_FRAME_HEADER_SIZE) /
                           (ALLOT_PLACE_HEAD_SIZE + o->sc.lines_max * ALLOT_LINE_SIZE)));
        return -EINVAL;
    }
    if (o->threads > o->connections) {
        fprintf(stderr, "allot-bench run: more --threads than --connections\n");
        return -EINVAL;
    }
    if (target_parse(&o->target, o->url, o->host, o->port) < 0) {
        fprintf(stderr, "allot-bench run: --target wants allot://HOST:PORT or "
                        "redis://HOST:PORT, not '%s'\n", o->url);
        return -EINVAL;
    }
    bool bo = sc_is_backorder(&o->sc);
    if ((bo || o->sc.locs_max > 0) && o->target.ops != &run_allot_ops) {
        fprintf(stderr, "allot-bench run: backorders and locations are allot's: the Redis "
                        "target runs flash, catalog and custom\n");
        return -EINVAL;
    }
    if (bo && o->threads != 1) {
        fprintf(stderr, "allot-bench run: a backorder run has one client thread (--threads 1)\n");
        return -EINVAL;
    }
    if (bo && o->sc.templates > UINT32_MAX / 2u) {
        fprintf(stderr, "allot-bench run: too many --templates\n");
        return -EINVAL;
    }
    if (!o->have_base)
        o->order_base = bench_wall_ms() << 20;
    if (!o->have_cust_base)
        o->customer_base = o->order_base;
    return 0;
}

/* 0 to run, 1 when help was printed, -EINVAL for bad usage. */
static int rb_parse(int argc, char **argv, rb_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->host = ALLOT_DEFAULT_HOST;
    o->port = ALLOT_DEFAULT_PORT;
    o->connections = RB_CONNECTIONS_DEFAULT;
    o->pipeline = RB_PIPELINE_DEFAULT;
    o->batch = RB_BATCH_DEFAULT;
    o->threads = 1;
    o->duration_s = RB_DURATION_DEFAULT;
    o->warmup_s = RB_WARMUP_DEFAULT;
    const char *knobs[OPT_KNOB_END - OPT_KNOB_FIRST] = {NULL};
    enum sc_kind kind = SC_FLASH;
    bool has_duration = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", rb_long_opts, NULL)) != -1) {
        if (c == 'h') {
            rb_usage(stdout);
            return 1;
        }
        if (c == OPT_SCENARIO) {
            if (sc_parse_kind(optarg, &kind) < 0) {
                fprintf(stderr, "allot-bench run: --scenario is flash, catalog, custom, "
                                "waitlist or multi-location, not '%s'\n", optarg);
                return -EINVAL;
            }
            continue;
        }
        if (c >= OPT_KNOB_FIRST && c < OPT_KNOB_END) {
            knobs[c - OPT_KNOB_FIRST] = optarg;
            continue;
        }
        has_duration |= c == OPT_DURATION;
        if (c == '?' || rb_option(o, c, optarg) < 0) {
            if (c == '?')
                fprintf(stderr, "allot-bench run: see --help\n");
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "allot-bench run: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    return rb_finish_opts(o, kind, knobs, has_duration);
}

/* ---- the check ------------------------------------------------------------------------ */


static void rb_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Every hold the run abandoned must be past its deadline, and swept, before
 * the SKUs tell the final truth. */
static int rb_wait_expiries(rb_run_t *run, const rb_result_t *r)
{
    if (r->abandoned == 0)
        return 0;
    uint64_t now = bench_wall_ms();
    uint64_t until = r->max_deadline_ms + RB_EXPIRY_MARGIN_MS;
    if (until > now) {
        if (!run->o->quiet)
            fprintf(stderr, "waiting %.1f s for %" PRIu64 " abandoned holds to expire...\n",
                    (double)(until - now) / 1e3, r->abandoned);
        rb_sleep_ms(until - now);
    }
    /* Sweeps until nothing is waiting (a target that sweeps itself says
     * so at once); each round is short, the wait between them too. */
    uint64_t give_up = bench_now_ns() + RB_SWEEP_NS_MAX;
    while (bench_now_ns() < give_up) {
        int64_t waiting = run->target->ops->housekeep(run->ctl);
        if (waiting == 0)
            return 0;
        if (waiting < 0 && waiting != -EAGAIN)
            return (int)waiting;
        rb_sleep_ms(waiting > 0 ? RB_CHECK_RETRY_MS : 1);
    }
    fprintf(stderr, "allot-bench run: expired holds are still waiting to be swept\n");
    return -ETIMEDOUT;
}

/* What was sold out when the run ended: abandoned holds give their units
 * back when they expire, so the check's own reading comes too late. */
static int rb_read_sold_out(rb_run_t *run, rb_result_t *r)
{
    int rc = run->target->ops->read(run->ctl, run->sc.sku_ids, run->sc.n_skus, run->after);
    for (size_t i = 0; rc == 0 && i < run->sc.n_skus; i++) {
        const sku_state_t *a = &run->after[i];
        if (a->known && a->allocated >= a->on_hand) {
            if (i < run->sc.cfg.hot)
                r->sold_end_hot++;
            else
                r->sold_end_catalog++;
        }
    }
    return rc;
}

/* SKUs as read after the run: with their locations when they have any. */
static int rb_read_after(rb_run_t *run)
{
    if (run->locs_after)
        return run_allot_read_locs(run->ctl, run->sc.sku_ids, run->sc.n_skus, run->after,
                                   run->locs_after);
    return run->target->ops->read(run->ctl, run->sc.sku_ids, run->sc.n_skus, run->after);
}

/* A backorder run's expectations come from its book of orders: what live
 * orders hold, what shipped, what still waits; the restocks it made add to
 * on_hand. Its orders are read back and checked, FIFO too. */
static int rb_wait_expect(rb_run_t *run, rb_result_t *r, chk_input_t *in, uint32_t **bo_orders,
                          uint64_t **bo_units)
{
    rb_wait_t *wt = run->wait;
    size_t n = run->sc.n_skus;
    *bo_orders = calloc(n, sizeof **bo_orders);
    *bo_units = calloc(n, sizeof **bo_units);
    if (!*bo_orders || !*bo_units)
        return -ENOMEM;
    memset(r->alloc_expect, 0, n * sizeof *r->alloc_expect);
    memset(r->hand_expect, 0, n * sizeof *r->hand_expect);
    int rc = wt_expect(&wt->book, r->alloc_expect, r->hand_expect, *bo_orders, *bo_units,
                       &r->cust);
    for (size_t i = 0; i < n; i++)
        r->hand_expect[i] += wt->restocked[i];
    if (rc == 0 && !wt->lost) {
        if (!run->o->quiet)
            fprintf(stderr, "reading back %zu orders...\n", wt->book.len);
        rc = rb_wait_verify(run, r);
    }
    r->surprises += wt->book.st.surprises;
    in->bo_orders_expect = *bo_orders;
    in->bo_units_expect = *bo_units;
    in->order_mismatch = wt->book.mismatch;
    in->fifo_violations = wt->book.fifo;
    in->events_lost = wt->lost;
    in->other_why = wt->lost ? wt->lost_why : wt->book.why;
    return rc;
}

static void rb_loc_expect(const rb_run_t *run, const rb_result_t *r, chk_input_t *in)
{
    in->layout = run->sc.locs;
    in->locs_before = run->locs_before;
    in->locs_after = run->locs_after;
    in->loc_alloc_delta = r->loc.alloc;
    in->loc_hand_delta = r->loc.hand;
    in->loc_skip = r->loc.skip;
    in->line_errors = r->loc.line_errors + r->loc.state_errors;
    in->other_why = r->loc.why;
}

static int rb_check(rb_run_t *run, rb_result_t *r)
{
    int rc = rb_read_sold_out(run, r);
    if (rc == 0)
        rc = rb_wait_expiries(run, r);
    if (rc < 0)
        return rc;
    chk_input_t in = {
        .n_skus = run->sc.n_skus,
        .sku_ids = run->sc.sku_ids,
        .before = run->before,
        .after = run->after,
        .alloc_delta = r->alloc_expect,
        .on_hand_delta = r->hand_expect,
        .customers = run->sc.cfg.hot_limit > 0 && run->sc.cfg.hot > 0 ? &r->cust : NULL,
        .limit = run->sc.cfg.hot_limit,
        .hot = run->sc.cfg.hot,
        .unknown_ops = r->unknown_ops,
    };
    uint32_t *bo_orders = NULL;
    uint64_t *bo_units = NULL;
    if (run->wait)
        rc = rb_wait_expect(run, r, &in, &bo_orders, &bo_units);
    if (r->have_loc)
        rb_loc_expect(run, r, &in);
    /* A server sweeps expired holds on its own tick: a mismatch right at
     * the deadline may be one that has not been swept yet. */
    for (int attempt = 0; rc == 0; attempt++) {
        rc = rb_read_after(run);
        if (rc < 0)
            break;
        run_check(&in, &r->chk);
        if (r->chk.pass || r->chk.oversold || r->chk.unknown_ops || attempt >= RB_CHECK_RETRIES)
            break;
        rb_sleep_ms(RB_CHECK_RETRY_MS);
    }
    r->checked = rc == 0;
    /* The next run against this server must find the queues empty. */
    if (run->wait) {
        int c = rb_wait_cleanup(run, r);
        if (rc == 0)
            rc = c;
    }
    free(bo_orders);
    free(bo_units);
    return rc;
}

/* ---- the mode ---------------------------------------------------------------------------- */

/* Orders waiting in a queue before the run would take this run's stock as
 * it comes back, where no client of the run can see it. */
static int rb_no_waiters(const rb_run_t *run)
{
    for (size_t i = 0; i < run->sc.n_skus; i++) {
        if (run->before[i].bo_orders == 0)
            continue;
        fprintf(stderr, "allot-bench run: SKU %" PRIu64 " has %u orders waiting from an earlier "
                        "run; a backorder run needs empty queues (cancel them, or restart the "
                        "server)\n", run->sc.sku_ids[i], run->before[i].bo_orders);
        return -EBUSY;
    }
    return 0;
}

static int rb_load(rb_run_t *run, const uint64_t *stock, const uint32_t *limit)
{
    const rb_opts_t *o = run->o;
    const scenario_t *sc = &run->sc;
    size_t n = sc->n_skus;
    if (run->locs_before)
        return o->no_setup
                   ? run_allot_read_locs(run->ctl, sc->sku_ids, n, run->before, run->locs_before)
                   : run_allot_setup_locs(run->ctl, sc, run->before, run->locs_before);
    return o->no_setup
               ? run->target->ops->read(run->ctl, sc->sku_ids, n, run->before)
               : run->target->ops->setup(run->ctl, sc->sku_ids, stock, limit, n, run->before);
}

static int rb_prepare(rb_run_t *run)
{
    const rb_opts_t *o = run->o;
    const scenario_t *sc = &run->sc;
    size_t n = sc->n_skus;
    run->before = calloc(n, sizeof *run->before);
    run->after = calloc(n, sizeof *run->after);
    uint64_t *stock = malloc(n * sizeof *stock);
    uint32_t *limit = malloc(n * sizeof *limit);
    int rc = run->before && run->after && stock && limit ? 0 : -ENOMEM;
    if (rc == 0 && sc->locs) {
        run->locs_before = calloc(n, sizeof *run->locs_before);
        run->locs_after = calloc(n, sizeof *run->locs_after);
        if (!run->locs_before || !run->locs_after)
            rc = -ENOMEM;
    }
    if (rc == 0 && run->target->ops == &run_redis_ops) {
        char err[256];
        rc = redis_prepare(run->target, err, sizeof err);
        if (rc < 0)
            fprintf(stderr, "allot-bench run: %s: loading the Lua scripts: %s\n",
                    run->target->url, err);
    }
    if (rc == 0)
        rc = run->target->ops->connect(run->target, &run->ctl, 1, 1);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        stock[i] = sc_sku_stock(sc, i);
        limit[i] = sc_sku_limit(sc, i);
    }
    if (rc == 0 && !o->quiet)
        fprintf(stderr, "%s %zu SKUs on %s...\n", o->no_setup ? "reading" : "loading", n,
                run->target->url);
    if (rc == 0)
        rc = rb_load(run, stock, limit);
    free(stock);
    free(limit);
    if (rc == 0 && sc_is_backorder(&sc->cfg))
        rc = rb_no_waiters(run);
    if (rc == 0 && sc_is_backorder(&sc->cfg))
        rc = rb_wait_open(run);
    return rc;
}

static void rb_cleanup(rb_run_t *run, rb_result_t *r)
{
    if (run->ctl)
        run->target->ops->close(run->ctl);
    rb_wait_close(run);
    redis_release(run->target);
    free(run->before);
    free(run->after);
    free(run->locs_before);
    free(run->locs_after);
    scenario_free(&run->sc);
    free(r->st);
    free(r->alloc_expect);
    free(r->hand_expect);
    tally_free(&r->cust);
    loc_tally_free(&r->loc);
}

int bench_run_main(int argc, char **argv)
{
    rb_opts_t o;
    int prc = rb_parse(argc, argv, &o);
    if (prc != 0)
        return prc > 0 ? 0 : 2;
    rb_run_t run = {.o = &o, .target = &o.target};
    rb_result_t r = {0};
    if (!o.quiet)
        fprintf(stderr, "generating %" PRIu64 " orders of scenario %s (seed %" PRIu64 ")...\n",
                o.sc.templates, sc_kind_name(o.sc.kind), o.sc.seed);
    int rc = scenario_build(&run.sc, &o.sc);
    run.ctx = (run_ctx_t){.sc = &run.sc, .customer_base = o.customer_base, .hold_ms = o.sc.hold_ms};
    o.target.ctx = &run.ctx;
    if (rc == 0)
        rc = rb_prepare(&run);
    if (rc == 0)
        rc = rb_execute(&run, &r);
    if (rc == 0)
        rc = rb_check(&run, &r);
    if (rc < 0)
        fprintf(stderr, "allot-bench run: %s\n", strerror(-rc));
    if (r.st && rc == 0) {
        if (o.json)
            rb_report_json(&run, &r);
        else
            rb_report_text(&run, &r);
        if (r.surprises && !o.quiet)
            fprintf(stderr, "note: %" PRIu64 " answers no correct target gives here "
                            "(replays, unexpected states)\n", r.surprises);
        if (o.hist_out && rb_write_hist(o.hist_out, &r.st->lat) < 0)
            rc = -EIO;
    }
    bool pass = rc == 0 && r.checked && r.chk.pass;
    rb_cleanup(&run, &r);
    return pass ? 0 : 1;
}
