/*
 * allot-journal replay: the state at a point of the journal, rebuilt by
 * the engine's own code. recover() does the work in dry-run mode, so that
 * the tool replays exactly as the server recovers: the same snapshot
 * choice, the same record checks, and engine_replay(), which proves every
 * record legal at its point (no oversell, allowed transitions, limits).
 *
 * The engine must forget and clamp as the server did, so its retention
 * and hold parameters come from the journal's segment headers. Table sizes
 * are the tool's choice: large enough is all that matters, and when they
 * are not, the replay runs again with larger tables.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "common/limits.h"
#include "jtool.h"
#include "journal/recover.h"

#define RETRIES_MAX 4u
#define REPLAY_PROGRESS_EVERY 65536u

static const char replay_help[] =
    "usage: allot-journal replay DIR [--until SEQ|TIME] [--json] [--sku SKU...]\n"
    "                            [--order ID...] [--no-snapshot]\n"
    "                            [--skus-max N] [--orders-max N] [--limits-max N]\n"
    "\n"
    "Rebuilds the state of the server from DIR with the engine's own code, as\n"
    "recovery does (newest usable snapshot, then the journal after it), without\n"
    "changing anything (safe while the server runs). Every record is checked at\n"
    "its point: no oversell, only allowed state transitions, per-customer limits\n"
    "kept, sequence and time in order; the full invariant check runs at the end.\n"
    "\n"
    "Prints the state digest (16 hex digits; over the whole journal it equals the\n"
    "live server's state_digest), the last sequence number and time, the records\n"
    "replayed, SKUs, orders in memory and live orders, and the state of each SKU\n"
    "and order asked for.\n"
    "\n"
    "  --until P       stop after this point: a sequence number (a plain number),\n"
    "                  an ISO 8601 time (2026-11-26T10:00:00Z; records at that time\n"
    "                  are included) or @MS (epoch milliseconds)\n"
    "  --json          one JSON object (state_digest, seq, time_ms, records, ...)\n"
    "  --sku SKU       show these SKUs: on_hand, allocated, available, limit,\n"
    "                  reorder point, the lines waiting for it and their units,\n"
    "                  and its locations (location:on_hand/allocated@priority,\n"
    "                  shown in text when there is more than location 0)\n"
    "                  (SKU: a number, \"#text\" or text, hashed as the CLI does)\n"
    "  --order ID      show these orders: state, customer, policy, whether it was\n"
    "                  confirmed in advance, its deadline (a hold's, or when a\n"
    "                  BACKORDERED order stops waiting), lines, and where each\n"
    "                  line's units sit ([location:units,...] in text, when not\n"
    "                  all at location 0)\n"
    "  --no-snapshot   ignore snapshots: replay the whole journal from empty\n"
    "  --skus-max N, --orders-max N, --limits-max N\n"
    "                  engine table sizes (defaults 1048576 each; the replay\n"
    "                  retries with doubled tables when the journal needs more)\n"
    "\n"
    "Retention (retain_max, retain_ms) and the longest hold come from the header\n"
    "of the newest segment at or before the --until point, as the server wrote\n"
    "them. A torn tail ends the replay at the last whole record, as at start-up.\n"
    "\n"
    "Exit status: 0 the replay and the final check passed; 1 a record broke an\n"
    "invariant (its sequence number and why are printed), the journal is corrupt,\n"
    "or the final check failed; 2 usage error.\n";

enum replay_opt {
    O_UNTIL, O_JSON, O_SKU, O_ORDER, O_NO_SNAPSHOT, O_SKUS_MAX, O_ORDERS_MAX, O_LIMITS_MAX,
    O_COUNT
};

static const jt_optspec_t replay_spec[O_COUNT] = {
    [O_UNTIL] = {"until", JT_VALUE},         [O_JSON] = {"json", JT_FLAG},
    [O_SKU] = {"sku", JT_LIST},              [O_ORDER] = {"order", JT_LIST},
    [O_NO_SNAPSHOT] = {"no-snapshot", JT_FLAG}, [O_SKUS_MAX] = {"skus-max", JT_VALUE},
    [O_ORDERS_MAX] = {"orders-max", JT_VALUE}, [O_LIMITS_MAX] = {"limits-max", JT_VALUE},
};

typedef struct replay {
    bool json;
    jt_point_t until;
    bool no_snapshot;
    uint64_t skus[JT_IDS_MAX];
    size_t nskus;
    uint64_t orders[JT_IDS_MAX];
    size_t norders;
    engine_config_t cfg;
    /* progress, and the last record replayed (the failing one follows it) */
    jt_progress_t progress;
    uint64_t first_seq, last_seq_est;
    uint64_t last_seq, last_ms, count;
    char torn[STORAGE_NAME_MAX + 32]; /* "FILE offset N" of a torn tail, or "" */
} replay_t;

/* ---- options --------------------------------------------------------------------- */

static int table_size(const jt_args_t *a, int opt, uint32_t ceiling, uint32_t *out)
{
    if (!a->value[opt])
        return 0;
    uint64_t v;
    if (jt_parse_u64(a->value[opt], &v) != 0 || v == 0 || v > ceiling)
        return jt_usage_error("replay", "--%s must be a number from 1 to %u", replay_spec[opt].name,
                              ceiling);
    *out = (uint32_t)v;
    return 0;
}

static int parse_replay_args(const jt_args_t *a, replay_t *r)
{
    r->json = a->given[O_JSON];
    r->no_snapshot = a->given[O_NO_SNAPSHOT];
    if (a->value[O_UNTIL]) {
        if (jt_parse_point(a->value[O_UNTIL], &r->until) != 0)
            return jt_usage_error("replay", "--until: '%s' is neither a sequence number nor an "
                                            "ISO 8601 time",
                                  a->value[O_UNTIL]);
        if (r->until.kind == JT_POINT_SEQ && r->until.value == 0)
            return jt_usage_error("replay", "--until 0: sequence numbers start at 1");
    }
    for (size_t i = 0; i < a->nlist[O_SKU]; i++)
        if (jt_parse_ids(a->list[O_SKU][i], true, r->skus, &r->nskus) != 0)
            return jt_usage_error("replay", "--sku: '%s' is not a SKU (or too many)",
                                  a->list[O_SKU][i]);
    for (size_t i = 0; i < a->nlist[O_ORDER]; i++)
        if (jt_parse_ids(a->list[O_ORDER][i], false, r->orders, &r->norders) != 0)
            return jt_usage_error("replay", "--order: '%s' is not an order id (or too many)",
                                  a->list[O_ORDER][i]);
    engine_config_default(&r->cfg);
    int rc = table_size(a, O_SKUS_MAX, SKUS_MAX_CEILING, &r->cfg.skus_max);
    if (rc == 0)
        rc = table_size(a, O_ORDERS_MAX, ORDERS_MAX_CEILING, &r->cfg.orders_max);
    if (rc == 0)
        rc = table_size(a, O_LIMITS_MAX, LIMITS_MAX_CEILING, &r->cfg.limits_max);
    return rc;
}

/* ---- engine parameters from the journal ------------------------------------------------ */

/* The segment whose header applies at the --until point: the newest one
 * that starts at or before it. */
static size_t params_segment(const storage_t *st, const jr_dir_t *d, const jt_point_t *until)
{
    size_t k = d->nsegs - 1;
    if (until->kind == JT_POINT_SEQ) {
        while (k > 0 && d->segs[k] > until->value)
            k--;
    } else if (until->kind == JT_POINT_TIME) {
        while (k > 0 && jt_first_record_ms(st, d->segs[k]) > until->value)
            k--;
    }
    return k;
}

static bool read_params(const storage_t *st, uint64_t first_seq, journal_params_t *p)
{
    jr_seg_t s;
    if (jr_seg_open(&s, st, first_seq, 4 * REC_SIZE_MAX) != 0)
        return false;
    bool ok = s.header_ok;
    if (ok)
        *p = s.header.params;
    jr_seg_close(&s);
    return ok;
}

/* Fills the engine's retention and hold parameters from the journal. */
static void journal_params(replay_t *r, const storage_t *st, const jr_dir_t *d)
{
    journal_params_t p = {0};
    size_t k = params_segment(st, d, &r->until);
    bool found = false;
    for (size_t i = k + 1; i-- > 0 && !found;)
        found = read_params(st, d->segs[i], &p);
    if (!found) {
        jt_error("warning: no readable segment header; retention and hold limits are the "
                 "defaults, the digest may differ from the server's");
        return;
    }
    for (size_t i = 0; i < d->nsegs; i++) {
        journal_params_t q;
        if (read_params(st, d->segs[i], &q) &&
            (q.retain_max != p.retain_max || q.retain_ms != p.retain_ms ||
             q.hold_max_ms != p.hold_max_ms)) {
            jt_error("warning: segments disagree on retention or hold limits (the server was "
                     "restarted with other settings); using those of journal-%020" PRIu64 ".seg",
                     d->segs[k]);
            break;
        }
    }
    r->cfg.retain_max = p.retain_max ? p.retain_max : 1;
    r->cfg.retain_ms = p.retain_ms;
    if (p.hold_max_ms == 0 || p.hold_max_ms > UINT32_MAX)
        jt_error("warning: the segment header's hold limit (%" PRIu64 " ms) is out of range; "
                 "using the default",
                 p.hold_max_ms);
    else
        r->cfg.hold_max_ms = p.hold_max_ms;
    /* The engine caps retention at its order table: keep the table larger,
     * so that the journal's retention is the one that applies. */
    if (r->cfg.orders_max < r->cfg.retain_max)
        r->cfg.orders_max = r->cfg.retain_max;
}

/* ---- --until TIME ---------------------------------------------------------------------- */

/* The last record at or before ms: its sequence number, or 0 when the
 * journal has none. recover() picks its snapshot by sequence number, so a
 * time is turned into one first (a snapshot taken after that time must
 * not be used). */
static int time_to_seq(const storage_t *st, const jr_dir_t *d, uint64_t ms, uint64_t *seq)
{
    *seq = 0;
    size_t k = d->nsegs;
    while (k > 0 && jt_first_record_ms(st, d->segs[k - 1]) > ms)
        k--;
    if (k == 0)
        return 0;
    jr_seg_t s;
    int rc = jr_seg_open(&s, st, d->segs[k - 1], 0);
    if (rc != 0)
        return rc;
    jr_item_t *it = malloc(sizeof *it);
    rc = it ? 0 : -ENOMEM;
    while (rc == 0 && (rc = jr_seg_next(&s, it)) == 0 && it->kind == JR_RECORD &&
           it->rec.time_ms <= ms)
        *seq = it->rec.seq;
    free(it);
    jr_seg_close(&s);
    return rc;
}

/* Recovery stops quietly at a torn tail (it would cut it); the report says
 * so. Fills text with "FILE offset N" when the last segment ends torn. */
static void find_torn_tail(const storage_t *st, const jr_dir_t *d, char *text, size_t len)
{
    text[0] = '\0';
    jr_seg_t s;
    jr_item_t *it = malloc(sizeof *it);
    if (!it || jr_seg_open(&s, st, d->segs[d->nsegs - 1], 0) != 0) {
        free(it);
        return;
    }
    int rc;
    while ((rc = jr_seg_next(&s, it)) == 0 && it->kind == JR_RECORD)
        continue;
    uint64_t found;
    if (rc == 0 && (it->kind == JR_BAD || it->kind == JR_JUNK) &&
        jr_seg_resync(&s, jr_resync_from(it), &found) == 0)
        snprintf(text, len, "%s offset %" PRIu64, s.name, it->off);
    jr_seg_close(&s);
    free(it);
}

/* ---- the replay ------------------------------------------------------------------------- */

static void on_replayed(void *ctx, const eng_record_t *rec)
{
    replay_t *r = ctx;
    r->last_seq = rec->seq;
    r->last_ms = rec->time_ms;
    if (++r->count % REPLAY_PROGRESS_EVERY == 0 && r->progress.tty) {
        uint64_t span = r->last_seq_est > r->first_seq ? r->last_seq_est - r->first_seq : 0;
        r->progress.total = span;
        jt_progress_update(&r->progress, rec->seq - r->first_seq, r->count);
    }
}

/* Did the replay fail only because the tables are too small? */
static bool capacity_error(const char *error)
{
    return strstr(error, "tables smaller") || strstr(error, "CAPACITY");
}

static bool grow_tables(engine_config_t *cfg)
{
    if (cfg->skus_max >= SKUS_MAX_CEILING && cfg->orders_max >= ORDERS_MAX_CEILING &&
        cfg->limits_max >= LIMITS_MAX_CEILING)
        return false;
    cfg->skus_max = cfg->skus_max >= SKUS_MAX_CEILING / 2 ? SKUS_MAX_CEILING : cfg->skus_max * 2;
    cfg->orders_max =
        cfg->orders_max >= ORDERS_MAX_CEILING / 2 ? ORDERS_MAX_CEILING : cfg->orders_max * 2;
    cfg->limits_max =
        cfg->limits_max >= LIMITS_MAX_CEILING / 2 ? LIMITS_MAX_CEILING : cfg->limits_max * 2;
    return true;
}

static int run_recover(replay_t *r, const storage_t *st, const jr_dir_t *d, engine_t **e,
                       recover_result_t *res)
{
    recover_opts_t o = {
        .dry_run = true,
        .skip_snapshots = r->no_snapshot,
        .until_seq = r->until.kind == JT_POINT_SEQ ? r->until.value : 0,
        /* recover() reads 0 as "no limit"; the epoch itself holds nothing. */
        .until_ms = r->until.kind == JT_POINT_TIME ? (r->until.value ? r->until.value : 1) : 0,
        .on_record = on_replayed,
        .ctx = r,
    };
    if (r->until.kind == JT_POINT_TIME) {
        int rc = time_to_seq(st, d, r->until.value, &o.until_seq);
        if (rc != 0) {
            snprintf(res->error, sizeof res->error, "cannot read the journal: %s",
                     strerror(-rc));
            return rc;
        }
        /* Nothing at or before that time: the empty state, no snapshot. */
        if (o.until_seq == 0)
            o.skip_snapshots = true;
    }
    for (unsigned attempt = 0;; attempt++) {
        r->last_seq = r->last_ms = r->count = 0;
        int rc = recover(st, &r->cfg, &o, e, res);
        if (rc == 0 || !capacity_error(res->error) || attempt == RETRIES_MAX ||
            !grow_tables(&r->cfg))
            return rc;
        jt_progress_end(&r->progress);
        jt_error("the engine tables are too small for this journal; replaying again with "
                 "%u SKUs, %u orders, %u limit entries",
                 r->cfg.skus_max, r->cfg.orders_max, r->cfg.limits_max);
    }
}

/* ---- output ------------------------------------------------------------------------------ */

typedef struct found_sku {
    bool found;
    eng_sku_view_t v;
} found_sku_t;

typedef struct found_order {
    bool found;
    eng_order_view_t v;
    eng_line_t lines[ALLOT_LINES_MAX];
    eng_alloc_t allocs[ENG_ALLOCS_MAX];
} found_order_t;

typedef struct finder {
    const replay_t *r;
    found_sku_t *skus;
    found_order_t *orders;
} finder_t;

static void find_sku(void *ctx, const eng_sku_view_t *v)
{
    finder_t *f = ctx;
    for (size_t i = 0; i < f->r->nskus; i++)
        if (f->r->skus[i] == v->sku)
            f->skus[i] = (found_sku_t){.found = true, .v = *v};
}

static void find_order(void *ctx, const eng_order_view_t *v)
{
    finder_t *f = ctx;
    for (size_t i = 0; i < f->r->norders; i++) {
        if (f->r->orders[i] != v->id)
            continue;
        found_order_t *o = &f->orders[i];
        o->found = true;
        o->v = *v;
        memcpy(o->lines, v->lines, v->line_count * sizeof *o->lines);
        o->v.lines = o->lines;
        o->v.alloc_count = v->alloc_count <= ENG_ALLOCS_MAX ? v->alloc_count : 0;
        memcpy(o->allocs, v->allocs, o->v.alloc_count * sizeof *o->allocs);
        o->v.allocs = o->allocs;
    }
}

/* The deadline that applies in an order's state: a hold's, or how long a
 * backorder may still wait; 0 for none. */
static uint64_t order_deadline(const eng_order_view_t *v)
{
    return v->state == ALLOT_STATE_HELD || v->state == ALLOT_STATE_BACKORDERED ? v->deadline_ms
                                                                               : 0;
}

static void text_sku(const eng_sku_view_t *v)
{
    printf("sku %" PRIu64 ": on_hand %" PRIu64 " allocated %" PRIu64 " available %" PRIu64
           " limit %" PRIu32 " reorder_point %" PRIu32,
           v->sku, v->on_hand, v->allocated, v->on_hand - v->allocated, v->limit,
           v->reorder_point);
    if (v->backorder_orders)
        printf(" backorder %" PRIu32 " lines waiting for %" PRIu64 " units", v->backorder_orders,
               v->backorder_units);
    /* Locations only when there is more to say than location 0 at priority 0. */
    if (v->loc_count > 1 || (v->loc_count == 1 && (v->locs[0].location || v->locs[0].priority))) {
        fputs(" locations", stdout);
        for (uint32_t i = 0; i < v->loc_count && i < ALLOT_LOCATIONS_MAX; i++)
            printf("%s%" PRIu16 ":%" PRIu64 "/%" PRIu64 "@%" PRIu16, i ? "," : " ",
                   v->locs[i].location, v->locs[i].on_hand, v->locs[i].allocated,
                   v->locs[i].priority);
    }
    fputc('\n', stdout);
}

static void text_order(const eng_order_view_t *v)
{
    char t[JT_TIME_TEXT];
    jt_format_time(v->placed_ms, t);
    printf("order %" PRIu64 ": %s customer %" PRIu64 " policy %s placed %s", v->id,
           allot_state_name(v->state), v->customer, allot_policy_name(v->policy), t);
    if (v->order_flags & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE)
        fputs(" confirmed in advance", stdout);
    if (order_deadline(v)) {
        jt_format_time(v->deadline_ms, t);
        printf(" %s %s", v->state == ALLOT_STATE_BACKORDERED ? "wait_deadline" : "deadline", t);
    }
    if (v->hold_ms && v->state == ALLOT_STATE_BACKORDERED)
        printf(" hold_ms %" PRIu32, v->hold_ms);
    fputs(" lines ", stdout);
    uint32_t a = 0;
    for (uint32_t k = 0; k < v->line_count; k++) {
        printf("%s%" PRIu64 ":%" PRIu32 "/%" PRIu32, k ? "," : "", v->lines[k].sku,
               v->lines[k].qty, v->lines[k].allocated);
        /* Where the units sit, unless all are at location 0. */
        uint32_t first = a;
        bool elsewhere = false;
        for (; a < v->alloc_count && v->allocs[a].line == k; a++)
            elsewhere |= v->allocs[a].location != 0;
        for (uint32_t j = first; elsewhere && j < a; j++)
            printf("%s%" PRIu16 ":%" PRIu32, j == first ? "[" : ",", v->allocs[j].location,
                   v->allocs[j].units);
        if (elsewhere)
            fputc(']', stdout);
    }
    fputc('\n', stdout);
}

static void json_sku(const found_sku_t *k)
{
    const eng_sku_view_t *v = &k->v;
    printf(",\"on_hand\":%" PRIu64 ",\"allocated\":%" PRIu64 ",\"available\":%" PRIu64
           ",\"limit\":%" PRIu32 ",\"reorder_point\":%" PRIu32 ",\"backorder_orders\":%" PRIu32
           ",\"backorder_units\":%" PRIu64 ",\"locations\":[",
           v->on_hand, v->allocated, v->on_hand - v->allocated, v->limit, v->reorder_point,
           v->backorder_orders, v->backorder_units);
    for (uint32_t i = 0; i < v->loc_count && i < ALLOT_LOCATIONS_MAX; i++)
        printf("%s{\"location\":%" PRIu16 ",\"priority\":%" PRIu16 ",\"on_hand\":%" PRIu64
               ",\"allocated\":%" PRIu64 "}",
               i ? "," : "", v->locs[i].location, v->locs[i].priority, v->locs[i].on_hand,
               v->locs[i].allocated);
    fputc(']', stdout);
}

static void json_order(const eng_order_view_t *v)
{
    printf(",\"state\":\"%s\",\"customer\":%" PRIu64 ",\"policy\":\"%s\",\"placed_ms\":%" PRIu64
           ",\"deadline_ms\":%" PRIu64 ",\"order_flags\":%" PRIu8
           ",\"confirmed_in_advance\":%s,\"hold_ms\":%" PRIu32 ",\"lines\":[",
           allot_state_name(v->state), v->customer, allot_policy_name(v->policy), v->placed_ms,
           order_deadline(v), v->order_flags,
           v->order_flags & ALLOT_ORDER_FLAG_CONFIRMED_IN_ADVANCE ? "true" : "false", v->hold_ms);
    uint32_t a = 0;
    for (uint32_t k = 0; k < v->line_count; k++) {
        printf("%s{\"sku\":%" PRIu64 ",\"qty\":%" PRIu32 ",\"allocated\":%" PRIu32
               ",\"locations\":[",
               k ? "," : "", v->lines[k].sku, v->lines[k].qty, v->lines[k].allocated);
        for (uint32_t first = a; a < v->alloc_count && v->allocs[a].line == k; a++)
            printf("%s{\"location\":%" PRIu16 ",\"units\":%" PRIu32 "}", a == first ? "" : ",",
                   v->allocs[a].location, v->allocs[a].units);
        fputs("]}", stdout);
    }
    fputc(']', stdout);
}

static void print_text(const replay_t *r, const engine_t *e, const recover_result_t *res,
                       const finder_t *f, const char *check)
{
    eng_stats_t s;
    engine_stats(e, &s);
    char t[JT_TIME_TEXT];
    jt_format_time(s.now_ms, t);
    printf("state_digest   %016" PRIx64 "\n", engine_digest(e));
    printf("last seq       %" PRIu64 " at %s\n", s.seq, t);
    if (res->snapshot_seq)
        printf("records        %" PRIu64 " replayed after the snapshot at seq %" PRIu64 "\n",
               res->records, res->snapshot_seq);
    else
        printf("records        %" PRIu64 " replayed from the start\n", res->records);
    if (r->until.kind == JT_POINT_SEQ && s.seq < r->until.value)
        printf("note           the journal ends at seq %" PRIu64 ", before --until %" PRIu64
               "\n",
               s.seq, r->until.value);
    if (r->torn[0])
        printf("note           torn tail at %s: not replayed, as the server will cut it at "
               "start-up\n",
               r->torn);
    printf("speed          %.2f M records/s replayed (%.3f s; tables %.3f s)\n",
           res->replay_seconds > 0 ? (double)res->records / res->replay_seconds / 1e6 : 0.0,
           res->replay_seconds, res->setup_seconds);
    printf("skus           %" PRIu64 "\n", s.skus);
    printf("orders         %" PRIu64 " in memory, %" PRIu64 " live\n", s.orders, s.orders_live);
    printf("limit entries  %" PRIu64 "\n", s.limit_entries);
    printf("check          %s\n", check);
    for (size_t i = 0; i < r->nskus; i++) {
        const found_sku_t *k = &f->skus[i];
        if (!k->found) {
            printf("sku %" PRIu64 ": unknown\n", r->skus[i]);
            continue;
        }
        text_sku(&k->v);
    }
    for (size_t i = 0; i < r->norders; i++) {
        const found_order_t *o = &f->orders[i];
        if (!o->found) {
            printf("order %" PRIu64 ": not in memory (never placed, rejected, or retired)\n",
                   r->orders[i]);
            continue;
        }
        text_order(&o->v);
    }
}

static void print_json(const replay_t *r, const engine_t *e, const recover_result_t *res,
                       const finder_t *f, const char *check)
{
    eng_stats_t s;
    engine_stats(e, &s);
    char t[JT_TIME_TEXT];
    jt_format_time(s.now_ms, t);
    printf("{\"state_digest\":\"%016" PRIx64 "\",\"seq\":%" PRIu64 ",\"time_ms\":%" PRIu64
           ",\"time\":\"%s\",\"records\":%" PRIu64 ",\"snapshot_seq\":%" PRIu64
           ",\"segments\":%" PRIu64 ",\"skus\":%" PRIu64 ",\"orders\":%" PRIu64
           ",\"orders_live\":%" PRIu64 ",\"limit_entries\":%" PRIu64
           ",\"holds_expired\":%" PRIu64 ",\"replay_seconds\":%.6f,\"setup_seconds\":%.6f"
           ",\"check\":",
           engine_digest(e), s.seq, s.now_ms, t, res->records, res->snapshot_seq, res->segments,
           s.skus, s.orders, s.orders_live, s.limit_entries, s.holds_expired,
           res->replay_seconds, res->setup_seconds);
    jt_json_str(stdout, check);
    fputs(",\"torn_tail\":", stdout);
    if (r->torn[0])
        jt_json_str(stdout, r->torn);
    else
        fputs("null", stdout);
    fputs(",\"selected_skus\":[", stdout);
    for (size_t i = 0; i < r->nskus; i++) {
        const found_sku_t *k = &f->skus[i];
        printf("%s{\"sku\":%" PRIu64 ",\"found\":%s", i ? "," : "", r->skus[i],
               k->found ? "true" : "false");
        if (k->found)
            json_sku(k);
        fputc('}', stdout);
    }
    fputs("],\"selected_orders\":[", stdout);
    for (size_t i = 0; i < r->norders; i++) {
        const found_order_t *o = &f->orders[i];
        printf("%s{\"order\":%" PRIu64 ",\"found\":%s", i ? "," : "", r->orders[i],
               o->found ? "true" : "false");
        if (o->found)
            json_order(&o->v);
        fputc('}', stdout);
    }
    fputs("]}\n", stdout);
}

static void print_failure(const replay_t *r, const recover_result_t *res)
{
    /* The failing record is the one after the last replayed. */
    uint64_t seq = r->last_seq ? r->last_seq + 1 : res->snapshot_seq + 1;
    if (r->json) {
        printf("{\"error\":");
        jt_json_str(stdout, res->error);
        printf(",\"seq\":%" PRIu64 ",\"records\":%" PRIu64 ",\"last_good_seq\":%" PRIu64 "}\n",
               seq, r->count, r->last_seq);
    } else {
        printf("replay stopped at seq %" PRIu64 ": %s\n", seq, res->error);
        printf("records        %" PRIu64 " replayed before it (last good seq %" PRIu64 ")\n",
               r->count, r->last_seq);
    }
}

static int replay_dir(replay_t *r, const char *dir)
{
    storage_t st;
    jr_dir_t d;
    if (jt_open_dir(dir, &st, &d) != 0)
        return JT_EXIT_PROBLEM;
    if (d.nsegs == 0) {
        jt_close_dir(&st, &d);
        jt_error("%s holds no journal segment (journal-*.seg)", dir);
        return JT_EXIT_PROBLEM;
    }
    journal_params(r, &st, &d);
    r->first_seq = d.segs[0];
    r->last_seq_est = d.nsegs > 1 ? d.segs[d.nsegs - 1] + (d.segs[d.nsegs - 1] - d.segs[0]) /
                                                              (d.nsegs - 1)
                                  : 0;
    if (r->until.kind == JT_POINT_SEQ &&
        (r->last_seq_est == 0 || r->until.value < r->last_seq_est))
        r->last_seq_est = r->until.value;
    jt_progress_start(&r->progress, "replay", 0, d.nsegs > 1);
    engine_t *e = NULL;
    recover_result_t *res = calloc(1, sizeof *res);
    int rc = res ? run_recover(r, &st, &d, &e, res) : -ENOMEM;
    if (rc == 0 && r->until.kind == JT_POINT_NONE)
        find_torn_tail(&st, &d, r->torn, sizeof r->torn);
    jt_progress_end(&r->progress);
    jt_close_dir(&st, &d);
    int code = JT_EXIT_OK;
    if (rc != 0) {
        if (res && rc == -EILSEQ)
            print_failure(r, res);
        else
            jt_error("replay failed: %s", res ? res->error : strerror(-rc));
        free(res);
        return JT_EXIT_PROBLEM;
    }
    char why[256] = "ok";
    if (engine_check(e, why, sizeof why) != 0)
        code = JT_EXIT_PROBLEM;
    finder_t f = {.r = r, .skus = calloc(r->nskus + 1, sizeof *f.skus),
                  .orders = calloc(r->norders + 1, sizeof *f.orders)};
    if (!f.skus || !f.orders) {
        code = JT_EXIT_PROBLEM;
        jt_error("out of memory");
    } else {
        if (r->nskus)
            engine_each_sku(e, find_sku, &f);
        if (r->norders)
            engine_each_order(e, find_order, &f);
        if (r->json)
            print_json(r, e, res, &f, why);
        else
            print_text(r, e, res, &f, why);
    }
    free(f.skus);
    free(f.orders);
    free(res);
    engine_deinit(e);
    return code;
}

int jt_cmd_replay(int argc, char **argv)
{
    jt_args_t *a = malloc(sizeof *a);
    replay_t *r = calloc(1, sizeof *r);
    int code = JT_EXIT_OK;
    char err[200];
    if (!a || !r) {
        jt_error("out of memory");
        code = JT_EXIT_PROBLEM;
    } else if (jt_split(argc, argv, replay_spec, O_COUNT, a, err, sizeof err) != 0) {
        code = jt_usage_error("replay", "%s", err);
    } else if (a->help) {
        fputs(replay_help, stdout);
    } else if (!a->dir) {
        code = jt_usage_error("replay", "DIR is missing");
    } else {
        code = parse_replay_args(a, r);
        if (code == JT_EXIT_OK)
            code = replay_dir(r, a->dir);
    }
    free(a);
    free(r);
    return jt_finish_stdout(code);
}
