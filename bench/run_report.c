/*
 * The report of allot-bench run: text for people, one JSON object for
 * scripts (bench/compare.sh reads it), the latency distribution as CSV.
 */
#include "bench.h"
#include "run_loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <allot/client.h>

/* ---- reporting ------------------------------------------------------------------------- */

static double rb_rate(uint64_t n, double secs) { return secs > 0 ? (double)n / secs : 0.0; }

static void rb_lines_text(const sc_config_t *c, char *buf, size_t len)
{
    if (c->lines_min == c->lines_max)
        snprintf(buf, len, "%u", c->lines_min);
    else
        snprintf(buf, len, "%u-%u", c->lines_min, c->lines_max);
}

static uint64_t rb_by_result(const rb_stats_t *st, unsigned res)
{
    uint64_t n = 0;
    for (unsigned op = 0; op < ALLOT_OP_COUNT; op++)
        n += st->counts[op][res];
    return n;
}

static void rb_json_counts(const rb_stats_t *st)
{
    printf(",\"results\":{");
    const char *sep = "";
    for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++) {
        uint64_t n = rb_by_result(st, res);
        if (n) {
            printf("%s\"%s\":%" PRIu64, sep, allot_result_name(res), n);
            sep = ",";
        }
    }
    printf("},\"by_op\":{");
    sep = "";
    for (unsigned op = 0; op < ALLOT_OP_COUNT; op++) {
        const char *inner = "";
        for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++) {
            if (st->counts[op][res] == 0)
                continue;
            if (*inner == '\0')
                printf("%s\"%s\":{", sep, allot_opcode_name(op));
            printf("%s\"%s\":%" PRIu64, inner, allot_result_name(res), st->counts[op][res]);
            inner = ",";
            sep = ",";
        }
        if (*inner != '\0')
            printf("}");
    }
    printf("}");
}

static void rb_json_config(const rb_run_t *run)
{
    const rb_opts_t *o = run->o;
    const sc_config_t *c = &run->sc.cfg;
    char lines[24], dist[32];
    /* A number when fixed, "A-B" for a range. */
    if (c->lines_min == c->lines_max)
        snprintf(lines, sizeof lines, "%u", c->lines_min);
    else
        snprintf(lines, sizeof lines, "\"%u-%u\"", c->lines_min, c->lines_max);
    wl_format_distribution(dist, sizeof dist, c->dist, c->zipf_s);
    printf("{\"mode\":\"run\",\"scenario\":\"%s\",\"target\":", sc_kind_name(c->kind));
    bench_json_string(stdout, run->target->url);
    printf(",\"target_kind\":\"%s\",\"connections\":%u,\"pipeline\":%u,\"batch\":%u,"
           "\"threads\":%u,\"lines\":%s,\"qty\":%u,\"duration\":%.3f,\"warmup\":%.3f,"
           "\"total\":%" PRIu64 ",\"rate\":%" PRIu64 ",\"loop\":\"%s\",\"seed\":%" PRIu64
           ",\"order_id_base\":%" PRIu64 ",\"customer_base\":%" PRIu64 ",\"skus\":%" PRIu64
           ",\"stock\":%" PRIu64 ",\"hot\":%" PRIu64 ",\"hot_stock\":%" PRIu64
           ",\"hot_limit\":%u,\"hot_share\":%u,\"distribution\":\"%s\",\"customers\":%" PRIu64
           ",\"hold_ms\":%u,\"templates\":%" PRIu64 ",\"mix\":{",
           run->target->ops->name, o->connections, o->pipeline, o->batch, o->threads, lines,
           c->qty, o->duration_s, o->warmup_s, o->total, o->rate, o->rate ? "open" : "closed",
           c->seed, o->order_base, o->customer_base, c->skus, c->stock, c->hot, c->hot_stock,
           c->hot_limit, c->hot_share, dist, c->customers, c->hold_ms, c->templates);
    for (unsigned k = 0; k < WL_KIND_COUNT; k++)
        printf("%s\"%s\":%u", k ? "," : "", wl_kind_name(k), c->mix[k]);
    printf("},\"policy\":\"%s\",\"qty_max\":%u", allot_policy_name(c->policy),
           c->qty_max > c->qty ? c->qty_max : c->qty);
    if (sc_is_backorder(c))
        printf(",\"restock_every_ms\":%u,\"restock_qty\":%" PRIu64 ",\"max_wait_ms\":%u"
               ",\"max_wait_share\":%u,\"advance_share\":%u,\"cancel_after_ms\":%u",
               c->restock_every_ms, c->restock_qty, c->max_wait_ms, c->max_wait_share,
               c->advance_share, c->cancel_after_ms);
    if (c->locs_max > 0)
        printf(",\"locations_min\":%u,\"locations_max\":%u,\"single_share\":%u",
               c->locs_min, c->locs_max, c->single_share);
}

/* count, p50, p90, p99, max of h in unit (ns per unit). */
static void rb_json_hist(const char *name, const hist_t *h, double unit)
{
    printf(",\"%s\":{\"count\":%" PRIu64 ",\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f"
           ",\"max\":%.3f}",
           name, hist_count(h), (double)hist_percentile(h, 50) / unit,
           (double)hist_percentile(h, 90) / unit, (double)hist_percentile(h, 99) / unit,
           (double)hist_max(h) / unit);
}

static void rb_json_wait(const rb_run_t *run, const rb_result_t *r)
{
    const rb_wait_t *wt = run->wait;
    const wt_stats_t *w = &wt->book.st;
    printf(",\"waitlist\":{\"placed_ok\":%" PRIu64 ",\"backordered\":%" PRIu64
           ",\"fills\":%" PRIu64 ",\"fill_units\":%" PRIu64 ",\"completed\":%" PRIu64
           ",\"expired_waiting\":%" PRIu64 ",\"expired_held\":%" PRIu64
           ",\"cancelled_waiting\":%" PRIu64 ",\"advance_confirms\":%" PRIu64
           ",\"closing_confirms\":%" PRIu64 ",\"restocks\":%" PRIu64 ",\"restock_units\":%" PRIu64
           ",\"restock_periods_skipped\":%" PRIu64 ",\"events\":%" PRIu64
           ",\"orders_verified\":%" PRIu64 ",\"orders_forgotten\":%" PRIu64
           ",\"fifo_checked\":%" PRIu64 ",\"cleanup_cancels\":%" PRIu64,
           w->placed_ok, w->backordered, w->fill_events, w->fill_units, w->completed,
           w->expired_waiting, w->expired_held, w->cancelled_waiting, w->advance_confirms,
           w->closing_confirms, wt->restocks, wt->restock_units, wt->restocks_skipped, wt->events,
           r->orders_verified, wt->book.retired, wt->book.fifo_checked, r->cleanup_cancels);
    rb_json_hist("wait_ms", &r->st->wait, 1e6);
    rb_json_hist("restock_to_fill_us", &r->st->refill, 1e3);
    printf("}");
}

static void rb_json_locs(const rb_result_t *r)
{
    const loc_tally_t *l = &r->loc;
    printf(",\"locations\":{\"orders_read\":%" PRIu64 ",\"orders_unread\":%" PRIu64
           ",\"lines_read\":%" PRIu64 ",\"split_lines\":%" PRIu64
           ",\"single_location_orders\":%" PRIu64 ",\"line_errors\":%" PRIu64
           ",\"state_errors\":%" PRIu64 "}",
           l->orders_read, l->orders_unread, l->lines_read, l->split_lines, l->single_orders,
           l->line_errors, l->state_errors);
}

void rb_report_json(const rb_run_t *run, const rb_result_t *r)
{
    const rb_stats_t *st = r->st;
    const hist_t *h = &st->lat;
    double s = r->seconds;
    rb_json_config(run);
    printf(",\"seconds\":%.3f,\"orders_per_sec\":%.0f,\"ok_orders_per_sec\":%.0f"
           ",\"lines_per_sec\":%.0f,\"ok_lines_per_sec\":%.0f,\"frames_per_sec\":%.0f"
           ",\"ops_per_sec\":%.0f,\"orders\":%" PRIu64 ",\"ok_orders\":%" PRIu64
           ",\"frames\":%" PRIu64 ",\"ops\":%" PRIu64,
           s, rb_rate(st->orders, s), rb_rate(st->orders_ok, s), rb_rate(st->lines, s),
           rb_rate(st->lines_ok, s), rb_rate(st->frames, s), rb_rate(st->ops, s), st->orders,
           st->orders_ok, st->frames, st->ops);
    printf(",\"backordered\":%" PRIu64 ",\"backordered_per_sec\":%.0f", st->backordered,
           rb_rate(st->backordered, s));
    rb_json_counts(st);
    if (run->wait)
        rb_json_wait(run, r);
    if (r->have_loc)
        rb_json_locs(r);
    printf(",\"latency_ns\":{\"count\":%" PRIu64 ",\"mean\":%.0f,\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
           ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}",
           hist_count(h), hist_mean(h), hist_percentile(h, 50), hist_percentile(h, 90),
           hist_percentile(h, 99), hist_percentile(h, 99.9), hist_max(h));
    const chk_report_t *k = &r->chk;
    printf(",\"sold_out\":{\"hot\":%" PRIu64 ",\"hot_skus\":%" PRIu64 ",\"catalog\":%" PRIu64
           ",\"catalog_skus\":%" PRIu64 ",\"hot_after_expiry\":%" PRIu64
           ",\"catalog_after_expiry\":%" PRIu64 "}",
           r->sold_end_hot, run->sc.cfg.hot, r->sold_end_catalog, run->sc.cfg.skus,
           k->sold_out_hot, k->sold_out_catalog);
    printf(",\"check\":{\"skus\":%" PRIu64 ",\"oversold\":%" PRIu64 ",\"alloc_mismatch\":%" PRIu64
           ",\"on_hand_mismatch\":%" PRIu64 ",\"over_limit\":%" PRIu64 ",\"unknown_skus\":%" PRIu64
           ",\"unknown_ops\":%" PRIu64 ",\"units_allocated\":%" PRId64 ",\"units_fulfilled\":%" PRId64
           ",\"abandoned_holds\":%" PRIu64 ",\"customer_pairs\":%zu",
           k->skus_checked, k->oversold, k->alloc_mismatch, k->on_hand_mismatch, k->over_limit,
           k->unknown_skus, k->unknown_ops, k->units_allocated, k->units_fulfilled, r->abandoned,
           r->cust.len);
    printf(",\"backorder_mismatch\":%" PRIu64 ",\"order_mismatch\":%" PRIu64
           ",\"fifo_violations\":%" PRIu64 ",\"events_lost\":%" PRIu64
           ",\"locations_checked\":%" PRIu64 ",\"location_oversold\":%" PRIu64
           ",\"location_mismatch\":%" PRIu64 ",\"location_sum_mismatch\":%" PRIu64
           ",\"location_skus_skipped\":%" PRIu64 ",\"line_errors\":%" PRIu64 ",\"why\":",
           k->bo_mismatch, k->order_mismatch, k->fifo_violations, k->events_lost,
           k->locs_checked, k->loc_oversold, k->loc_mismatch, k->loc_sum_mismatch,
           k->loc_skipped, k->line_errors);
    bench_json_string(stdout, k->why);
    printf("},\"verdict\":\"%s\"}\n", r->checked && k->pass ? "pass" : "fail");
}

static void rb_text_wait(const rb_run_t *run, const rb_result_t *r)
{
    const rb_wait_t *wt = run->wait;
    const wt_stats_t *w = &wt->book.st;
    const hist_t *h = &r->st->wait, *f = &r->st->refill;
    printf("waitlist: %" PRIu64 " orders placed OK, %" PRIu64 " of them backordered (%.0f/s "
           "measured); %" PRIu64 " restocks of %" PRIu64 " units; %" PRIu64 " fills of %" PRIu64
           " units completed %" PRIu64 " orders; %" PRIu64 " waits ran out, %" PRIu64
           " cancelled, %" PRIu64 " holds expired\n",
           w->placed_ok, w->backordered, rb_rate(r->st->backordered, r->seconds), wt->restocks,
           wt->restock_units, w->fill_events, w->fill_units, w->completed, w->expired_waiting,
           w->cancelled_waiting, w->expired_held);
    printf("wait, PLACE sent to the fill completing it (%" PRIu64 " orders): p50 %.1f ms, "
           "p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
           hist_count(h), (double)hist_percentile(h, 50) / 1e6, (double)hist_percentile(h, 90) / 1e6,
           (double)hist_percentile(h, 99) / 1e6, (double)hist_max(h) / 1e6);
    printf("restock sent to its first fill event (%" PRIu64 "): p50 %.0f us, p99 %.0f us, "
           "max %.0f us\n",
           hist_count(f), (double)hist_percentile(f, 50) / 1e3, (double)hist_percentile(f, 99) / 1e3,
           (double)hist_max(f) / 1e3);
    printf("orders read back: %" PRIu64 " (%" PRIu64 " already forgotten by the server); "
           "FIFO checked for %" PRIu64 " fills and placements; %" PRIu64
           " waits cancelled after the check\n",
           r->orders_verified, wt->book.retired, wt->book.fifo_checked, r->cleanup_cancels);
}

static void rb_text_locs(const rb_result_t *r)
{
    const loc_tally_t *l = &r->loc;
    printf("locations: %" PRIu64 " orders read back (%" PRIu64 " forgotten before), %" PRIu64
           " lines, %" PRIu64 " split across locations, %" PRIu64 " SINGLE_LOCATION orders; "
           "%" PRIu64 " (SKU, location) pairs checked\n",
           l->orders_read, l->orders_unread, l->lines_read, l->split_lines, l->single_orders,
           r->chk.locs_checked);
}

void rb_report_text(const rb_run_t *run, const rb_result_t *r)
{
    const rb_opts_t *o = run->o;
    const rb_stats_t *st = r->st;
    const hist_t *h = &st->lat;
    const chk_report_t *k = &r->chk;
    double s = r->seconds;
    char lines[16];
    rb_lines_text(&run->sc.cfg, lines, sizeof lines);
    printf("run: scenario %s against %s; %u connection%s x pipeline %u x batch %u, %s line%s "
           "per order, %s loop, %.1f s measured, seed %" PRIu64 "\n",
           sc_kind_name(run->sc.cfg.kind), run->target->url, o->connections,
           o->connections == 1 ? "" : "s", o->pipeline, o->batch, lines,
           strcmp(lines, "1") == 0 ? "" : "s", o->rate ? "open" : "closed", s, run->sc.cfg.seed);
    printf("throughput: %.0f orders/s (%.0f OK/s), %.0f lines/s, %.0f frames/s, %.0f ops/s\n",
           rb_rate(st->orders, s), rb_rate(st->orders_ok, s), rb_rate(st->lines, s),
           rb_rate(st->frames, s), rb_rate(st->ops, s));
    printf("results:");
    for (unsigned res = 0; res < ALLOT_RESULT_COUNT; res++)
        if (rb_by_result(st, res))
            printf(" %s %" PRIu64, allot_result_name(res), rb_by_result(st, res));
    printf("\nlatency per operation: p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, "
           "max %.1f us\n",
           (double)hist_percentile(h, 50) / 1e3, (double)hist_percentile(h, 90) / 1e3,
           (double)hist_percentile(h, 99) / 1e3, (double)hist_percentile(h, 99.9) / 1e3,
           (double)hist_max(h) / 1e3);
    printf("sold out at the end: %" PRIu64 " of %" PRIu64 " hot SKUs, %" PRIu64 " of %" PRIu64
           " catalogue SKUs (%" PRIu64 " and %" PRIu64 " once the %" PRIu64
           " abandoned holds expired)\n",
           r->sold_end_hot, run->sc.cfg.hot, r->sold_end_catalog, run->sc.cfg.skus,
           k->sold_out_hot, k->sold_out_catalog, r->abandoned);
    /* A waitlist's on_hand also grows by its restocks. */
    uint64_t restocked = run->wait ? run->wait->restock_units : 0;
    printf("units: %" PRId64 " more allocated, %" PRId64 " shipped\n", k->units_allocated,
           k->units_fulfilled + (int64_t)restocked);
    if (run->wait)
        rb_text_wait(run, r);
    if (r->have_loc)
        rb_text_locs(r);
    if (r->checked && k->pass)
        printf("check: PASS: %" PRIu64 " SKUs, no oversell, allocated and on_hand moved exactly "
               "as clients were told, %zu customer/SKU pairs within the limit%s%s\n",
               k->skus_checked, r->cust.len,
               run->wait ? "; queues hold what clients know waits, every order as its clients "
                           "know it, first come first served"
                         : "",
               r->have_loc ? "; per location too, every line's locations by the rules" : "");
    else
        printf("check: FAIL: %s\n", r->checked ? k->why : "the run did not complete");
}

int rb_write_hist(const char *path, const hist_t *h)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "allot-bench run: %s: %s\n", path, strerror(errno));
        return -errno;
    }
    int rc = hist_write_csv(f, h);
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc < 0)
        fprintf(stderr, "allot-bench run: writing %s failed\n", path);
    return rc;
}

