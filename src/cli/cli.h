/*
 * The allot CLI: shared context, commands and output.
 */
#ifndef ALLOT_CLI_H
#define ALLOT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <allot/client.h>

#include "args.h"

/* Exit status. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_RESULT = 1, /* the server answered with a result other than OK */
    CLI_EXIT_USAGE = 2,
    CLI_EXIT_FAIL = 3,   /* connection or protocol failure */
};

typedef struct cli_ctx {
    const char *host;
    uint16_t port;
    const char *token_file;
    uint32_t timeout_ms;
    bool json;
    bool stdout_closed; /* the reader of stdout went away: nothing more to
                           write, and no failure (allot watch | head) */
    allot_conn_t *conn;
} cli_ctx_t;

typedef struct cli_cmd cli_cmd_t;

/* A command's handler: parses its arguments, connects, runs, prints.
 * Returns an exit status. */
typedef int (*cli_run_fn)(cli_ctx_t *ctx, const cli_cmd_t *cmd,
                          const cli_args_t *a);

struct cli_cmd {
    const char *name;     /* "restock", or "sku set" */
    const char *synopsis; /* arguments after the name */
    const char *summary;  /* one line for the global help */
    const char *help;     /* the rest of `allot COMMAND --help` */
    const cli_optspec_t *opts;
    unsigned nopts;
    unsigned pos_min;
    unsigned pos_max;
    cli_run_fn run;
};

/* Command table (cmd.c) */
extern const cli_cmd_t cli_cmds[];
extern const unsigned cli_ncmds;

/* Prints "allot: <msg>" and the command's usage line to stderr; returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const cli_cmd_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Connects ctx->conn. Returns CLI_EXIT_OK, CLI_EXIT_USAGE (token file) or
 * CLI_EXIT_FAIL, having printed why. */
int cli_connect(cli_ctx_t *ctx);

/* Reports a failed call (rc < 0) and returns CLI_EXIT_FAIL. */
int cli_call_failed(cli_ctx_t *ctx, const char *what, int rc);

/* import.c */
int cli_cmd_import(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a);

/* watch.c */
enum { WATCH_SKU, WATCH_TYPE, WATCH_FROM, WATCH_NOPTS };
extern const cli_optspec_t cli_watch_opts[WATCH_NOPTS];
int cli_cmd_watch(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a);

/* ---- output (out.c) ---------------------------------------------------- */

/* A compact JSON writer for one object per command. */
typedef struct cli_json {
    FILE *f;
    unsigned depth;
    bool need_comma[8];
} cli_json_t;

void json_open(cli_json_t *j, FILE *f);
void json_close(cli_json_t *j); /* ends the object and the line */
void json_obj(cli_json_t *j, const char *key);   /* key NULL in arrays */
void json_arr(cli_json_t *j, const char *key);
void json_end_obj(cli_json_t *j);
void json_end_arr(cli_json_t *j);
void json_u64(cli_json_t *j, const char *key, uint64_t v);
void json_i64(cli_json_t *j, const char *key, int64_t v);
void json_str(cli_json_t *j, const char *key, const char *v);
void json_bool(cli_json_t *j, const char *key, bool v);

/* "2025-01-31T12:00:00.000Z" for ms since epoch, "none" for 0. */
const char *cli_fmt_time(uint64_t ms, char *buf, size_t len);

/* Prints an answer, human or JSON, and returns CLI_EXIT_OK or
 * CLI_EXIT_RESULT from its result. name is the SKU text when it was
 * hashed, else NULL. */
int cli_print_sku(const cli_ctx_t *ctx, const allot_sku_result_t *r,
                  const char *name);
/* lines/nlines: the PLACE request's lines, NULL/0 for other operations. */
int cli_print_order_result(const cli_ctx_t *ctx, const char *op,
                           const allot_order_result_t *r,
                           const allot_line_t *lines, unsigned nlines);
int cli_print_order_info(const cli_ctx_t *ctx, const allot_order_info_t *o);
/* One event on one line, text or JSON (not flushed). */
void cli_print_event(const cli_ctx_t *ctx, const allot_event_t *e);
int cli_print_stats(const cli_ctx_t *ctx, const uint64_t *v, size_t n);

#endif
