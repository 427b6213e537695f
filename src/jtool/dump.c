/*
 * allot-journal dump: one record per line, for people (text) or tools
 * (jsonl, csv), filtered. Streams: one chunk buffer, plus a bounded set of
 * followed orders when --sku or --customer is given.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "idmap.h"
#include "jtool.h"

#define FOLLOW_MAX (1u << 22) /* orders followed at once by --sku/--customer */

static const char dump_help[] =
    "usage: allot-journal dump DIR [--format text|jsonl|csv] [--order ID...]\n"
    "                          [--sku SKU...] [--customer ID...] [--type TYPE...]\n"
    "                          [--from SEQ|TIME] [--to SEQ|TIME]\n"
    "\n"
    "Prints the journal's records, one per line, in sequence order. Read-only:\n"
    "safe while the server runs.\n"
    "\n"
    "  --format F     text (default): for people, times in ISO 8601 UTC with\n"
    "                 milliseconds, type, state and policy names, order lines as\n"
    "                 sku:qty/allocated.\n"
    "                 jsonl: one JSON object per line (ids as integers, the PLACE\n"
    "                 content hash as 16 hex digits).\n"
    "                 csv: a header row, then seq,time_ms,time,type,sku,order,\n"
    "                 customer,amount,limit,reorder_point,policy,state,deadline_ms,\n"
    "                 count,lines; amount is SKU_SET's on_hand, RESTOCK's qty or\n"
    "                 ADJUST's signed delta; lines is \"sku:qty:allocated;...\".\n"
    "  --type TYPE    only records of these types: SKU_SET RESTOCK ADJUST PLACE\n"
    "                 CONFIRM CANCEL FULFILL EXPIRE RETIRE EXTEND (any case).\n"
    "  --order ID     only the records of these orders.\n"
    "  --sku SKU      SKU_SET/RESTOCK/ADJUST of these SKUs, PLACEs with a line for\n"
    "                 one of them, and the later records of those orders.\n"
    "                 SKU: a number, \"#text\" or text (hashed with XXH3, as the\n"
    "                 CLI does).\n"
    "  --customer ID  PLACEs of these customers and the later records of those\n"
    "                 orders (SKU records never match).\n"
    "  --from P       records at or after P; --to P: at or before P. P is a\n"
    "                 sequence number (a plain number), an ISO 8601 time\n"
    "                 (2026-11-26T10:00:00Z, 2026-11-26T10:00:00.250Z; no zone\n"
    "                 means UTC), or @MS for epoch milliseconds.\n"
    "\n"
    "Lists: repeat the option, separate values with commas, or list them after\n"
    "the option (then put DIR first). Different options must all match; values of\n"
    "one option are alternatives. --sku and --customer follow up to 4194304 open\n"
    "orders at once and read the journal from its start, so that the PLACE of an\n"
    "order is seen before its later records.\n"
    "\n"
    "The dump stops at a torn tail (noted on stderr) or at corruption (named on\n"
    "stderr; exit 1; run verify). A gap in the sequence numbers is named on stderr\n"
    "and the dump goes on (exit 1). It stops quietly, exit 0, when the reader of\n"
    "a pipe goes away (| head).\n"
    "\n"
    "Exit status: 0 done, 1 a problem in the journal or an I/O error, 2 usage\n"
    "error.\n";

enum dump_format { FMT_TEXT, FMT_JSONL, FMT_CSV };

enum dump_opt { O_FORMAT, O_ORDER, O_SKU, O_CUSTOMER, O_TYPE, O_FROM, O_TO, O_COUNT };

static const jt_optspec_t dump_spec[O_COUNT] = {
    [O_FORMAT] = {"format", JT_VALUE}, [O_ORDER] = {"order", JT_LIST},
    [O_SKU] = {"sku", JT_LIST},        [O_CUSTOMER] = {"customer", JT_LIST},
    [O_TYPE] = {"type", JT_LIST},      [O_FROM] = {"from", JT_VALUE},
    [O_TO] = {"to", JT_VALUE},
};

typedef struct dump {
    enum dump_format fmt;
    jt_filter_t filter;
    bool follows;
    idmap_t followed;
    bool follow_full_warned;
    uint64_t printed;
    FILE *out;
} dump_t;

/* ---- formats ------------------------------------------------------------------------ */

static void print_text(FILE *f, const eng_record_t *r)
{
    char t[JT_TIME_TEXT];
    jt_format_time(r->time_ms, t);
    fprintf(f, "#%" PRIu64 " %s %s", r->seq, t, eng_record_type_name(r->type));
    switch (r->type) {
    case REC_SKU_SET:
        fprintf(f, " sku=%" PRIu64 " on_hand=%" PRIu64 " limit=%" PRIu32 " reorder_point=%" PRIu32,
                r->id, r->amount, r->limit, r->reorder_point);
        break;
    case REC_RESTOCK: fprintf(f, " sku=%" PRIu64 " qty=%" PRIu64, r->id, r->amount); break;
    case REC_ADJUST: fprintf(f, " sku=%" PRIu64 " delta=%+" PRId64, r->id, (int64_t)r->amount); break;
    case REC_PLACE:
        fprintf(f, " order=%" PRIu64 " customer=%" PRIu64 " policy=%s state=%s", r->id,
                r->customer, allot_policy_name(r->policy), allot_state_name(jt_record_state(r)));
        if (r->deadline_ms) {
            jt_format_time(r->deadline_ms, t);
            fprintf(f, " deadline=%s", t);
        }
        fputs(" lines=", f);
        for (uint32_t i = 0; i < r->line_count; i++)
            fprintf(f, "%s%" PRIu64 ":%" PRIu32 "/%" PRIu32, i ? "," : "", r->lines[i].sku,
                    r->lines[i].qty, r->lines[i].allocated);
        break;
    case REC_EXTEND:
        jt_format_time(r->deadline_ms, t);
        fprintf(f, " order=%" PRIu64 " deadline=%s", r->id, t);
        break;
    case REC_RETIRE: fprintf(f, " count=%" PRIu32, r->count); break;
    default:
        fprintf(f, " order=%" PRIu64 " state=%s", r->id, allot_state_name(jt_record_state(r)));
        break;
    }
    fputc('\n', f);
}

static void print_jsonl(FILE *f, const eng_record_t *r)
{
    char t[JT_TIME_TEXT];
    jt_format_time(r->time_ms, t);
    fprintf(f, "{\"seq\":%" PRIu64 ",\"time_ms\":%" PRIu64 ",\"time\":\"%s\",\"type\":\"%s\"",
            r->seq, r->time_ms, t, eng_record_type_name(r->type));
    switch (r->type) {
    case REC_SKU_SET:
        fprintf(f, ",\"sku\":%" PRIu64 ",\"on_hand\":%" PRIu64 ",\"limit\":%" PRIu32
                   ",\"reorder_point\":%" PRIu32,
                r->id, r->amount, r->limit, r->reorder_point);
        break;
    case REC_RESTOCK: fprintf(f, ",\"sku\":%" PRIu64 ",\"qty\":%" PRIu64, r->id, r->amount); break;
    case REC_ADJUST:
        fprintf(f, ",\"sku\":%" PRIu64 ",\"delta\":%" PRId64, r->id, (int64_t)r->amount);
        break;
    case REC_PLACE:
        fprintf(f, ",\"order\":%" PRIu64 ",\"customer\":%" PRIu64
                   ",\"policy\":\"%s\",\"state\":\"%s\",\"deadline_ms\":%" PRIu64
                   ",\"content_hash\":\"%016" PRIx64 "\",\"lines\":[",
                r->id, r->customer, allot_policy_name(r->policy),
                allot_state_name(jt_record_state(r)), r->deadline_ms, r->content_hash);
        for (uint32_t i = 0; i < r->line_count; i++)
            fprintf(f, "%s{\"sku\":%" PRIu64 ",\"qty\":%" PRIu32 ",\"allocated\":%" PRIu32 "}",
                    i ? "," : "", r->lines[i].sku, r->lines[i].qty, r->lines[i].allocated);
        fputc(']', f);
        break;
    case REC_EXTEND:
        fprintf(f, ",\"order\":%" PRIu64 ",\"deadline_ms\":%" PRIu64, r->id, r->deadline_ms);
        break;
    case REC_RETIRE: fprintf(f, ",\"count\":%" PRIu32, r->count); break;
    default:
        fprintf(f, ",\"order\":%" PRIu64 ",\"state\":\"%s\"", r->id,
                allot_state_name(jt_record_state(r)));
        break;
    }
    fputs("}\n", f);
}

static const char csv_header[] = "seq,time_ms,time,type,sku,order,customer,amount,limit,"
                                 "reorder_point,policy,state,deadline_ms,count,lines\n";

static void print_csv(FILE *f, const eng_record_t *r)
{
    char t[JT_TIME_TEXT];
    jt_format_time(r->time_ms, t);
    fprintf(f, "%" PRIu64 ",%" PRIu64 ",%s,%s,", r->seq, r->time_ms, t,
            eng_record_type_name(r->type));
    switch (r->type) {
    case REC_SKU_SET:
        fprintf(f, "%" PRIu64 ",,,%" PRIu64 ",%" PRIu32 ",%" PRIu32 ",,,,,\n", r->id, r->amount,
                r->limit, r->reorder_point);
        return;
    case REC_RESTOCK: fprintf(f, "%" PRIu64 ",,,%" PRIu64 ",,,,,,,\n", r->id, r->amount); return;
    case REC_ADJUST:
        fprintf(f, "%" PRIu64 ",,,%" PRId64 ",,,,,,,\n", r->id, (int64_t)r->amount);
        return;
    case REC_PLACE:
        fprintf(f, ",%" PRIu64 ",%" PRIu64 ",,,,%s,%s,%" PRIu64 ",,", r->id, r->customer,
                allot_policy_name(r->policy), allot_state_name(jt_record_state(r)),
                r->deadline_ms);
        for (uint32_t i = 0; i < r->line_count; i++)
            fprintf(f, "%s%" PRIu64 ":%" PRIu32 ":%" PRIu32, i ? ";" : "", r->lines[i].sku,
                    r->lines[i].qty, r->lines[i].allocated);
        fputc('\n', f);
        return;
    case REC_EXTEND:
        fprintf(f, ",%" PRIu64 ",,,,,,%s,%" PRIu64 ",,\n", r->id,
                allot_state_name(ALLOT_STATE_HELD), r->deadline_ms);
        return;
    case REC_RETIRE: fprintf(f, ",,,,,,,,,%" PRIu32 ",\n", r->count); return;
    default:
        fprintf(f, ",%" PRIu64 ",,,,,,%s,,,\n", r->id, allot_state_name(jt_record_state(r)));
        return;
    }
}

/* ---- the walk ----------------------------------------------------------------------- */

/* Is rec about an order followed since its PLACE? Forgets orders once they
 * end, so that the set holds open orders only. */
static bool follow(dump_t *dm, const eng_record_t *rec)
{
    if (!dm->follows || !jt_record_is_order(rec->type))
        return false;
    if (rec->type == REC_PLACE) {
        if (jt_filter_place_selected(&dm->filter, rec)) {
            int rc = idmap_put(&dm->followed, rec->id, 1);
            if (rc != 0 && !dm->follow_full_warned) {
                jt_error("warning: more than %u open orders followed; the later records of "
                         "some orders will be missing from the dump",
                         FOLLOW_MAX);
                dm->follow_full_warned = true;
            }
        }
        return false;
    }
    bool followed = idmap_get(&dm->followed, rec->id) != NULL;
    if (followed &&
        (rec->type == REC_CANCEL || rec->type == REC_FULFILL || rec->type == REC_EXPIRE))
        idmap_del(&dm->followed, rec->id);
    return followed;
}

static int dump_record(void *ctx, const eng_record_t *rec, const char *file, uint64_t off,
                       size_t size)
{
    dump_t *dm = ctx;
    bool followed = follow(dm, rec);
    bool past;
    jt_filter_in_range(&dm->filter, rec, &past);
    if (past)
        return 1;
    if (!jt_filter_match(&dm->filter, rec, followed))
        return 0;
    switch (dm->fmt) {
    case FMT_TEXT: print_text(dm->out, rec); break;
    case FMT_JSONL: print_jsonl(dm->out, rec); break;
    case FMT_CSV: print_csv(dm->out, rec); break;
    }
    dm->printed++;
    return ferror(dm->out) ? 1 : 0;
}

/* ---- options ------------------------------------------------------------------------- */

static int parse_list(const jt_args_t *a, int opt, bool as_sku, uint64_t *ids, size_t *n)
{
    for (size_t i = 0; i < a->nlist[opt]; i++) {
        int rc = jt_parse_ids(a->list[opt][i], as_sku, ids, n);
        if (rc == -E2BIG)
            return jt_usage_error("dump", "too many values for --%s (at most %u)",
                                  dump_spec[opt].name, JT_IDS_MAX);
        if (rc != 0)
            return jt_usage_error("dump", "--%s: '%s' is not %s", dump_spec[opt].name,
                                  a->list[opt][i], as_sku ? "a SKU" : "a number");
    }
    return 0;
}

static int parse_dump_args(const jt_args_t *a, dump_t *dm)
{
    const char *fmt = a->value[O_FORMAT];
    if (!fmt || strcmp(fmt, "text") == 0)
        dm->fmt = FMT_TEXT;
    else if (strcmp(fmt, "jsonl") == 0)
        dm->fmt = FMT_JSONL;
    else if (strcmp(fmt, "csv") == 0)
        dm->fmt = FMT_CSV;
    else
        return jt_usage_error("dump", "--format must be text, jsonl or csv, not '%s'", fmt);
    jt_filter_t *f = &dm->filter;
    int rc = parse_list(a, O_ORDER, false, f->orders, &f->norders);
    if (rc == 0)
        rc = parse_list(a, O_SKU, true, f->skus, &f->nskus);
    if (rc == 0)
        rc = parse_list(a, O_CUSTOMER, false, f->customers, &f->ncustomers);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < a->nlist[O_TYPE]; i++) {
        char bad[64];
        if (jt_parse_types(a->list[O_TYPE][i], &f->types, bad, sizeof bad) != 0)
            return jt_usage_error("dump",
                                  "--type: unknown record type '%s' (SKU_SET RESTOCK ADJUST "
                                  "PLACE CONFIRM CANCEL FULFILL EXPIRE RETIRE EXTEND)",
                                  bad);
    }
    if (a->value[O_FROM] && jt_parse_point(a->value[O_FROM], &f->from) != 0)
        return jt_usage_error("dump", "--from: '%s' is neither a sequence number nor an "
                                      "ISO 8601 time",
                              a->value[O_FROM]);
    if (a->value[O_TO] && jt_parse_point(a->value[O_TO], &f->to) != 0)
        return jt_usage_error("dump", "--to: '%s' is neither a sequence number nor an "
                                      "ISO 8601 time",
                              a->value[O_TO]);
    dm->follows = jt_filter_follows(f);
    return 0;
}

int jt_cmd_dump(int argc, char **argv)
{
    jt_args_t *a = malloc(sizeof *a);
    dump_t *dm = calloc(1, sizeof *dm);
    if (!a || !dm) {
        free(a);
        free(dm);
        jt_error("out of memory");
        return JT_EXIT_PROBLEM;
    }
    char err[200];
    int code = JT_EXIT_OK;
    if (jt_split(argc, argv, dump_spec, O_COUNT, a, err, sizeof err) != 0)
        code = jt_usage_error("dump", "%s", err);
    else if (a->help)
        fputs(dump_help, stdout);
    else if (!a->dir)
        code = jt_usage_error("dump", "DIR is missing");
    else
        code = parse_dump_args(a, dm);
    if (code != JT_EXIT_OK || a->help) {
        free(a);
        free(dm);
        return jt_finish_stdout(code);
    }
    storage_t st;
    jr_dir_t d;
    if (idmap_init(&dm->followed, FOLLOW_MAX) != 0 || jt_open_dir(a->dir, &st, &d) != 0) {
        idmap_deinit(&dm->followed);
        free(a);
        free(dm);
        return JT_EXIT_PROBLEM;
    }
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    dm->out = stdout;
    if (dm->fmt == FMT_CSV)
        fputs(csv_header, stdout);
    /* Following orders needs their PLACEs: read from the start then. */
    jt_walk_opts_t wo = {.what = "dump"};
    if (!dm->follows && dm->filter.from.kind == JT_POINT_SEQ)
        wo.from_seq = dm->filter.from.value;
    if (!dm->follows && dm->filter.from.kind == JT_POINT_TIME)
        wo.from_ms = dm->filter.from.value;
    jt_walk_result_t res;
    int rc = jt_walk(&st, &d, &wo, dump_record, dm, &res);
    if (rc != 0 || res.corrupt || res.problems)
        code = JT_EXIT_PROBLEM;
    if (rc != 0 && !res.stopped)
        jt_error("dump failed: %s", strerror(-rc));
    idmap_deinit(&dm->followed);
    jt_close_dir(&st, &d);
    free(a);
    free(dm);
    return jt_finish_stdout(code);
}
