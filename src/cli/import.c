/*
 * `allot import FILE.csv`: SKU_SET rows in pipelined batches.
 *
 * A few batches stay in flight so that reading the file, the network and
 * the server overlap; each in-flight batch remembers the line numbers of
 * its rows, so that a row the server refuses is reported where it is in
 * the file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define IMPORT_BATCH_MAX 1024u
#define IMPORT_WINDOW 8u        /* batches in flight; = the handle's */
#define IMPORT_REPORT_MAX 20u   /* refused rows printed one by one */

typedef struct import {
    cli_ctx_t *ctx;
    const char *path;
    allot_batch_t *batch;
    uint32_t batch_lines[IMPORT_BATCH_MAX];
    uint32_t sent_lines[IMPORT_WINDOW][IMPORT_BATCH_MAX];
    uint32_t sent_count[IMPORT_WINDOW]; /* 0 = window slot free */
    uint64_t rows, ok, bad;
    uint64_t unknown;  /* sent on a handle that failed: outcome unknown */
    uint64_t not_applied;   /* never sent, or refused whole by an ERROR frame */
    uint64_t failed[ALLOT_RESULT_COUNT + 1]; /* last: results we don't know */
    uint64_t failed_total;
    uint64_t reported;
    int conn_err;
} import_t;

static void refused(import_t *im, uint32_t line, const allot_sku_result_t *r)
{
    unsigned k = r->result < ALLOT_RESULT_COUNT ? r->result : ALLOT_RESULT_COUNT;
    im->failed[k]++;
    im->failed_total++;
    if (im->reported++ < IMPORT_REPORT_MAX)
        fprintf(stderr, "%s:%" PRIu32 ": sku %" PRIu64 ": %s\n", im->path, line,
                r->sku, allot_result_name(r->result));
    else if (im->reported == IMPORT_REPORT_MAX + 1)
        fprintf(stderr, "%s: more rows refused; see the summary\n", im->path);
}

static void take_completion(import_t *im, const allot_completion_t *cmp)
{
    unsigned slot = (unsigned)(uintptr_t)cmp->user;
    uint32_t n = im->sent_count[slot];
    im->sent_count[slot] = 0;
    if (cmp->error != 0) {
        if (allot_outcome_unknown(cmp->error))
            im->unknown += n;
        else
            im->not_applied += n;
        if (im->conn_err == 0)
            im->conn_err = cmp->error;
        return;
    }
    allot_reader_t r;
    allot_sku_result_t res;
    allot_reader_init(&r, cmp);
    for (uint32_t i = 0; i < n && allot_read_sku(&r, &res) == 1; i++) {
        if (res.result == ALLOT_OK)
            im->ok++;
        else
            refused(im, im->sent_lines[slot][i], &res);
    }
}

/* Waits for at least one completion (or the failure of the handle). */
static void collect(import_t *im, int timeout_ms)
{
    allot_completion_t cmp[IMPORT_WINDOW];
    int n = allot_wait(im->ctx->conn, cmp, IMPORT_WINDOW, timeout_ms);
    if (n < 0 && im->conn_err == 0)
        im->conn_err = n;
    for (int i = 0; i < n; i++)
        take_completion(im, &cmp[i]);
}

static int free_slot(const import_t *im)
{
    for (unsigned k = 0; k < IMPORT_WINDOW; k++)
        if (im->sent_count[k] == 0)
            return (int)k;
    return -1;
}

/* Submits the current batch; waits for room when the window is full. */
static void send_batch(import_t *im)
{
    uint32_t n = allot_batch_count(im->batch);
    bool sent = false;
    while (n > 0 && !sent && im->conn_err == 0) {
        int k = free_slot(im);
        int rc = k < 0 ? -EAGAIN
                       : allot_submit(im->ctx->conn, im->batch,
                                      (void *)(uintptr_t)k, NULL);
        if (rc == 0) {
            memcpy(im->sent_lines[k], im->batch_lines, n * sizeof(uint32_t));
            im->sent_count[k] = n;
            sent = true;
        } else if (rc == -EAGAIN) {
            collect(im, -1);
        } else {
            im->conn_err = rc;
        }
    }
    if (n > 0 && !sent)
        im->not_applied += n;
    int rc = allot_batch_reset(im->batch, ALLOT_OP_SKU_SET);
    if (rc != 0 && im->conn_err == 0)
        im->conn_err = rc;
}

static void add_row(import_t *im, const cli_csv_row_t *row, uint32_t line)
{
    int rc = allot_batch_add_sku_set(im->batch, row->sku, row->on_hand,
                                     row->limit, row->reorder_point);
    if (rc == -ENOSPC) {
        send_batch(im);
        rc = allot_batch_add_sku_set(im->batch, row->sku, row->on_hand,
                                     row->limit, row->reorder_point);
    }
    if (rc != 0) {
        im->not_applied++;
        return;
    }
    im->batch_lines[allot_batch_count(im->batch) - 1] = line;
}

/* Skips the rest of a line longer than the buffer. */
static void skip_line(FILE *f)
{
    int ch;
    do
        ch = fgetc(f);
    while (ch != EOF && ch != '\n');
}

static void read_rows(import_t *im, FILE *f)
{
    char buf[CLI_CSV_LINE_MAX];
    uint32_t line = 0;
    bool seen = false;
    while (im->conn_err == 0 && fgets(buf, sizeof(buf), f) != NULL) {
        line++;
        size_t len = strlen(buf);
        if (len == sizeof(buf) - 1 && buf[len - 1] != '\n' && !feof(f)) {
            skip_line(f);
            im->rows++;
            im->bad++;
            seen = true;
            fprintf(stderr, "%s:%" PRIu32 ": bad row: longer than %u bytes\n",
                    im->path, line, CLI_CSV_LINE_MAX - 2);
            continue;
        }
        cli_csv_row_t row;
        const char *why;
        enum cli_csv_verdict v = cli_csv_parse(buf, !seen, &row, &why);
        if (v == CLI_CSV_BLANK)
            continue;
        seen = true;
        if (v == CLI_CSV_HEADER)
            continue;
        im->rows++;
        if (v == CLI_CSV_BAD) {
            im->bad++;
            fprintf(stderr, "%s:%" PRIu32 ": bad row: %s\n", im->path, line, why);
            continue;
        }
        add_row(im, &row, line);
    }
}

static void summary_json(const import_t *im)
{
    cli_json_t j;
    json_open(&j, stdout);
    json_str(&j, "file", im->path);
    json_u64(&j, "rows", im->rows);
    json_u64(&j, "ok", im->ok);
    json_u64(&j, "failed", im->failed_total);
    json_obj(&j, "failed_by_result");
    for (unsigned k = 0; k <= ALLOT_RESULT_COUNT; k++)
        if (im->failed[k] != 0)
            json_u64(&j, allot_result_name(k), im->failed[k]);
    json_end_obj(&j);
    json_u64(&j, "bad", im->bad);
    json_u64(&j, "unknown", im->unknown);
    json_u64(&j, "not_applied", im->not_applied);
    json_close(&j);
}

static void summary(const import_t *im)
{
    if (im->ctx->json) {
        summary_json(im);
        return;
    }
    printf("%s: %" PRIu64 " rows read, %" PRIu64 " ok, %" PRIu64
           " failed, %" PRIu64 " bad",
           im->path, im->rows, im->ok, im->failed_total, im->bad);
    if (im->unknown != 0)
        printf(", %" PRIu64 " with unknown outcome", im->unknown);
    if (im->not_applied != 0)
        printf(", %" PRIu64 " not applied", im->not_applied);
    printf("\n");
    for (unsigned k = 0; k <= ALLOT_RESULT_COUNT; k++)
        if (im->failed[k] != 0)
            printf("  failed %-20s %" PRIu64 "\n", allot_result_name(k),
                   im->failed[k]);
}

static int import_run(import_t *im, FILE *f)
{
    read_rows(im, f);
    if (ferror(f) && im->conn_err == 0) {
        fprintf(stderr, "allot: %s: read error\n", im->path);
        return CLI_EXIT_FAIL;
    }
    send_batch(im);
    while (allot_inflight(im->ctx->conn) > 0)
        collect(im, -1);
    summary(im);
    if (im->conn_err != 0)
        return cli_call_failed(im->ctx, "import", im->conn_err);
    return im->failed_total + im->bad > 0 ? CLI_EXIT_RESULT : CLI_EXIT_OK;
}

int cli_cmd_import(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    const char *path = a->pos[0];
    bool use_stdin = strcmp(path, "-") == 0;
    FILE *f = use_stdin ? stdin : fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "allot: %s: %s\n", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    import_t *im = calloc(1, sizeof(*im));
    int ex = im == NULL ? CLI_EXIT_FAIL : cli_connect(ctx);
    if (ex == CLI_EXIT_OK) {
        im->ctx = ctx;
        im->path = use_stdin ? "stdin" : path;
        int rc = allot_batch_new(&im->batch, ALLOT_OP_SKU_SET, ctx->conn);
        if (rc == 0)
            rc = allot_batch_set_count_max(im->batch, IMPORT_BATCH_MAX);
        ex = rc == 0 ? import_run(im, f) : cli_call_failed(ctx, "import", rc);
    }
    if (im != NULL)
        allot_batch_free(im->batch);
    free(im);
    if (!use_stdin)
        fclose(f); /* read-only */
    return ex;
}
