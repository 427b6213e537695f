/*
 * `allot watch`: subscribe, then print events as they arrive until told to
 * stop.
 *
 * Stopping is the normal end, so it exits 0: SIGINT and SIGTERM set a flag
 * (they are blocked except inside ppoll(), so one that arrives between the
 * check and the wait is not lost), and a reader that goes away is noticed
 * either by a failed write (SIGPIPE is ignored, so that is EPIPE) or, with
 * nothing to write, by POLLERR on stdout while waiting. Losing the server
 * is a failure, reported with the --from that resumes without a gap.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

const cli_optspec_t cli_watch_opts[WATCH_NOPTS] = {
    [WATCH_SKU] = {"sku", true, false},
    [WATCH_TYPE] = {"type", true, true},
    [WATCH_FROM] = {"from", true, false},
};

#define WATCH_READ_MAX 256u /* events taken from the handle at a time */

/* A step of the loop returns GO_ON, or the exit status to end with. */
#define GO_ON (-1)

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
    stop_signal = sig;
}

/* A stop signal waiting while the stream keeps the loop from ppoll(). */
static bool stop_pending(void)
{
    sigset_t p;
    return stop_signal != 0 ||
           (sigpending(&p) == 0 &&
            (sigismember(&p, SIGINT) == 1 || sigismember(&p, SIGTERM) == 1));
}

typedef struct watch_req {
    uint64_t sku;
    uint64_t from_seq;
    uint32_t types;
} watch_req_t;

static int watch_args(const cli_cmd_t *cmd, const cli_args_t *a, watch_req_t *w)
{
    const char *sku = a->value[WATCH_SKU], *from = a->value[WATCH_FROM];
    if (sku != NULL) {
        int rc = cli_parse_sku(sku, &w->sku, NULL);
        if (rc != 0)
            return cli_usage_error(cmd, "bad SKU '%s'", sku);
    }
    if (from != NULL && cli_parse_u64(from, &w->from_seq) != 0)
        return cli_usage_error(cmd, "--from must be a decimal sequence number, "
                                    "not '%s'", from);
    for (unsigned i = 0; i < a->nrep; i++)
        if (a->rep_opt[i] == WATCH_TYPE &&
            cli_parse_event_types(a->rep[i], &w->types) != 0)
            return cli_usage_error(cmd, "--type takes hold_expired, "
                                        "backorder_filled, reorder_point, "
                                        "sold_out or restocked, not '%s'",
                                   a->rep[i]);
    return CLI_EXIT_OK;
}

/* SIGINT and SIGTERM set stop_signal and stay blocked but for the wait
 * (*wait_mask); SIGPIPE is ignored. */
static int install_signals(sigset_t *wait_mask)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    struct sigaction ign = sa;
    ign.sa_handler = SIG_IGN;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
        sigaction(SIGPIPE, &ign, NULL) != 0 ||
        sigprocmask(SIG_BLOCK, &stop, wait_mask) != 0) {
        fprintf(stderr, "allot: watch: signals: %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    sigdelset(wait_mask, SIGINT);
    sigdelset(wait_mask, SIGTERM);
    return CLI_EXIT_OK;
}

/* Subscribes; *next_seq is the first seq to come. */
static int subscribe(cli_ctx_t *ctx, const watch_req_t *w, uint64_t *next_seq)
{
    allot_subscription_t s;
    int rc = allot_subscribe(ctx->conn, w->from_seq, w->sku, w->types, &s);
    if (rc != 0)
        return cli_call_failed(ctx, "watch", rc);
    if (s.result == ALLOT_TOO_OLD) {
        fprintf(stderr, "allot: watch: TOO_OLD: the server no longer keeps events "
                        "from seq %" PRIu64 "; the oldest it has is %" PRIu64
                        " (--from %" PRIu64 ", or --from 0 for new events only)\n",
                w->from_seq, s.oldest_seq, s.oldest_seq);
        return CLI_EXIT_RESULT;
    }
    if (s.result != ALLOT_OK) {
        fprintf(stderr, "allot: watch: the server answered %s\n",
                allot_result_name(s.result));
        return CLI_EXIT_RESULT;
    }
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "allot: watching events from seq %" PRIu64
                        " (Ctrl-C stops)\n", s.start_seq);
    *next_seq = s.start_seq;
    return CLI_EXIT_OK;
}

/* Prints n events, flushing after each. A reader that went away is a stop
 * (CLI_EXIT_OK, stdout_closed set); a LOST event ends with a failure. */
static int print_events(cli_ctx_t *ctx, const allot_event_t *e, int n,
                        uint64_t *next_seq)
{
    for (int i = 0; i < n; i++) {
        cli_print_event(ctx, &e[i]);
        if (fflush(stdout) != 0) {
            if (errno == EPIPE) {
                ctx->stdout_closed = true;
                return CLI_EXIT_OK;
            }
            fprintf(stderr, "allot: watch: writing the output: %s\n", strerror(errno));
            return CLI_EXIT_FAIL;
        }
        if (e[i].type == ALLOT_EVENT_LOST) {
            fprintf(stderr, "allot: watch: LOST: the server dropped this subscriber, "
                            "which fell behind; events from seq %" PRIu64 " on were "
                            "not delivered (resume with --from %" PRIu64 ")\n",
                    e[i].seq, e[i].seq);
            return CLI_EXIT_FAIL;
        }
        *next_seq = e[i].seq + 1;
    }
    return GO_ON;
}

/* Waits for the socket, a signal, or the reader of stdout going away. */
static int wait_more(cli_ctx_t *ctx, const sigset_t *wait_mask)
{
    struct pollfd p[2] = {
        {.fd = allot_conn_fd(ctx->conn),
         .events = (short)(POLLIN | (allot_conn_wants_write(ctx->conn) ? POLLOUT : 0))},
        {.fd = STDOUT_FILENO, .events = 0}, /* only POLLERR/POLLHUP */
    };
    int r = ppoll(p, 2, NULL, wait_mask);
    if (r < 0 && errno != EINTR) {
        fprintf(stderr, "allot: watch: ppoll: %s\n", strerror(errno));
        return CLI_EXIT_FAIL;
    }
    if (r > 0 && (p[1].revents & (POLLERR | POLLHUP)) != 0) {
        ctx->stdout_closed = true;
        return CLI_EXIT_OK;
    }
    return GO_ON;
}

/* The connection ended (not by LOST, which print_events() reported). */
static int watch_ended(cli_ctx_t *ctx, int n, uint64_t next_seq)
{
    if (n != -EPIPE)
        fprintf(stderr, "allot: watch: %s (resume with --from %" PRIu64 ")\n",
                allot_last_error(ctx->conn), next_seq);
    return CLI_EXIT_FAIL;
}

static int watch_loop(cli_ctx_t *ctx, uint64_t next_seq, const sigset_t *wait_mask)
{
    allot_event_t e[WATCH_READ_MAX];
    int ex = GO_ON;
    while (ex == GO_ON) {
        if (stop_pending())
            return CLI_EXIT_OK;
        int n = allot_events_poll(ctx->conn, e, WATCH_READ_MAX);
        if (n > 0)
            ex = print_events(ctx, e, n, &next_seq);
        else if (n < 0)
            ex = watch_ended(ctx, n, next_seq);
        else
            ex = wait_more(ctx, wait_mask);
    }
    return ex;
}

int cli_cmd_watch(cli_ctx_t *ctx, const cli_cmd_t *cmd, const cli_args_t *a)
{
    watch_req_t w = {0};
    sigset_t wait_mask;
    uint64_t next_seq = 0;
    int ex = watch_args(cmd, a, &w);
    if (ex == CLI_EXIT_OK)
        ex = install_signals(&wait_mask);
    if (ex == CLI_EXIT_OK)
        ex = cli_connect(ctx);
    if (ex == CLI_EXIT_OK)
        ex = subscribe(ctx, &w, &next_seq);
    if (ex != CLI_EXIT_OK)
        return ex;
    return watch_loop(ctx, next_seq, &wait_mask);
}
