/*
 * allotd: the allocation server. Parses flags and wires the modules
 * together: engine (state), executor (one owner thread, or inline with one
 * network thread), net (io_uring loops). Everything else lives in them.
 *
 * Exit status: 0 after a clean stop (SIGTERM/SIGINT), 1 when the server
 * cannot start or fails, 2 for bad flags.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/log.h"
#include "engine/engine.h"
#include "engine/exec.h"
#include "journal/journal.h"
#include "journal/recover.h"
#include "journal/snapshotter.h"
#include "net/events.h"
#include "net/net.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 25568u
#define DEFAULT_DATA_DIR "allot-data"
#define SNAPSHOT_EVERY_RECORDS_DEFAULT 50000000u
#define SNAPSHOT_EVERY_MS_DEFAULT (10u * 60u * 1000u)

typedef struct options {
    char host[256];
    uint16_t port;
    unsigned threads;
    const char *data_dir;
    uint32_t skus_max;
    uint32_t orders_max;
    uint32_t limits_max;
    uint32_t loc_skus_max;
    uint32_t splits_max;
    uint32_t waiting_max;
    uint32_t connections_max;
    const char *token_file;
    const char *port_file;
    uint64_t hold_max_ms;
    enum log_level log_level;
    bool compat;
    durability_t durability;
    uint32_t fsync_ms;
    uint32_t segment_mb;
    uint64_t snapshot_every_records;
    uint64_t snapshot_every_ms;
    bool recover_truncate;
    uint32_t hello_ms;
    uint32_t events_retain;
} options_t;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: allotd [options]\n"
        "\n"
        "The allot order allocation server. Clients speak the binary protocol\n"
        "of include/allot/protocol.h over TCP.\n"
        "\n"
        "  --listen HOST:PORT     address to listen on (default %s:%u); port 0\n"
        "                         picks a free port; IPv6 as [::1]:PORT\n"
        "  --port-file F          once listening, write the port number to F\n"
        "  --threads N            network threads, 1..%u (default: the number of\n"
        "                         online CPUs). With 1, operations run on the\n"
        "                         network thread; with more, on one extra thread\n"
        "                         that owns all the state\n"
        "  --connections-max N    open connections, 1..%u (default %u); one more\n"
        "                         is accepted, logged and closed\n"
        "  --skus-max N           SKU table capacity, 1..%u (default %u)\n"
        "  --orders-max N         orders held in memory, 1..%u (default %u)\n"
        "  --limits-max N         per-customer limit counters, 1..%u (default %u):\n"
        "                         one per customer and limited SKU bought\n"
        "  --loc-skus-max N       SKUs stocked anywhere but location 0 alone,\n"
        "                         1..%u (default %u)\n"
        "  --splits-max N         order lines with units away from location 0 or\n"
        "                         waiting, 1..%u (default: every order line the\n"
        "                         order table holds, so never what refuses)\n"
        "  --waiting-max N        backorder lines waiting for stock, all SKUs,\n"
        "                         1..%u (default %u); one SKU's queue holds at\n"
        "                         most %u\n"
        "  --hold-max-ms N        longest a hold may last from placement\n"
        "                         (default %u = 30 min)\n"
        "  --hello-timeout-ms N   close a connection that has not sent HELLO\n"
        "                         within N ms (default %u)\n"
        "  --token-file F         clients must present the contents of F (one\n"
        "                         line, 1..%u bytes, trailing newline ignored) in\n"
        "                         their HELLO; default: no token needed\n"
        "  --data-dir DIR         journal segments and snapshots (default ./%s,\n"
        "                         created if missing); locked while allotd runs\n"
        "  --durability MODE      sync (default): a mutation is answered once its\n"
        "                         journal record is on disk (fdatasync, shared by\n"
        "                         every connection's records); async: answered\n"
        "                         once written, synced every --fsync-ms; none: no\n"
        "                         journal at all, state is lost at exit\n"
        "                         (benchmarking only)\n"
        "  --fsync-ms N           async mode: longest time between syncs (default %u)\n"
        "  --segment-mb N         journal segment size, preallocated (default %u)\n"
        "  --snapshot-every N[s]  snapshot after N journal records, or every N\n"
        "                         seconds with an s suffix (default %u records or\n"
        "                         %u s, whichever comes first; 0 = only at exit)\n"
        "  --recover-truncate     at start-up, cut a corrupt journal at the first\n"
        "                         bad record instead of refusing to start (later\n"
        "                         segments are renamed *.cut, never deleted)\n"
        "  --events-retain N      recent events kept in memory for subscribers,\n"
        "                         1..%u (default %u); a SUBSCRIBE from before\n"
        "                         them is TOO_OLD. Smaller values are for testing\n"
        "  --log-level LEVEL      error, warn, info (default) or debug; logs go to\n"
        "                         stderr\n"
        "  --net-compat           use plain io_uring operations only (no provided\n"
        "                         buffers, no multishot, no special ring flags),\n"
        "                         as on older kernels; for testing\n"
        "  --help                 this text\n"
        "\n"
        "SIGTERM or SIGINT stops accepting, finishes the requests already\n"
        "received and sends their answers (waiting at most %u ms), then exits 0;\n"
        "a second signal closes the remaining connections at once. Subscribers\n"
        "get the events they may have by then, and are closed.\n"
        "Exit status: 0 clean stop, 1 start-up or runtime failure, 2 bad flags.\n",
        DEFAULT_HOST, DEFAULT_PORT, THREADS_MAX, CONNECTIONS_MAX_CEILING,
        CONNECTIONS_MAX_DEFAULT, SKUS_MAX_CEILING, SKUS_MAX_DEFAULT, ORDERS_MAX_CEILING,
        ORDERS_MAX_DEFAULT, LIMITS_MAX_CEILING, LIMITS_MAX_DEFAULT, LOC_SKUS_MAX_CEILING,
        LOC_SKUS_MAX_DEFAULT, SPLITS_MAX_CEILING, WAITING_MAX_CEILING,
        WAITING_MAX_DEFAULT, BACKORDER_QUEUE_MAX, HOLD_MAX_MS_DEFAULT, NET_HELLO_MS,
        ALLOT_TOKEN_MAX,
        DEFAULT_DATA_DIR,
        JOURNAL_FSYNC_MS_DEFAULT, JOURNAL_SEGMENT_DEFAULT >> 20,
        SNAPSHOT_EVERY_RECORDS_DEFAULT, SNAPSHOT_EVERY_MS_DEFAULT / 1000u, EVENTS_RETAIN,
        EVENTS_RETAIN, NET_DRAIN_MS);
}

static void bad_flag(const char *fmt, const char *flag, const char *value)
{
    fprintf(stderr, "allotd: ");
    fprintf(stderr, fmt, flag, value);
    fprintf(stderr, "\nTry 'allotd --help'.\n");
    exit(2);
}

static uint64_t parse_number(const char *flag, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max) {
        char range[64];
        snprintf(range, sizeof range, "%" PRIu64 "..%" PRIu64, min, max);
        fprintf(stderr, "allotd: %s: '%s' is not a number in %s\n", flag, s, range);
        fprintf(stderr, "Try 'allotd --help'.\n");
        exit(2);
    }
    return v;
}

static void parse_listen(options_t *o, const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof o->host)
        bad_flag("%s: '%s' is not HOST:PORT", "--listen", s);
    if (s[0] == '[' && colon[-1] != ']')
        bad_flag("%s: '%s': an IPv6 address goes in brackets, [::1]:PORT", "--listen", s);
    memcpy(o->host, s, (size_t)(colon - s));
    o->host[colon - s] = '\0';
    o->port = (uint16_t)parse_number("--listen port", colon + 1, 0, 65535);
}

static void parse_snapshot_every(options_t *o, const char *s)
{
    char buf[32];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof buf)
        bad_flag("%s: '%s' is not N or Ns", "--snapshot-every", s);
    memcpy(buf, s, n + 1);
    bool seconds = buf[n - 1] == 's';
    if (seconds)
        buf[n - 1] = '\0';
    uint64_t v = parse_number("--snapshot-every", buf, 0, UINT32_MAX);
    o->snapshot_every_records = seconds ? 0 : v;
    o->snapshot_every_ms = seconds ? v * 1000u : 0;
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > (long)THREADS_MAX ? THREADS_MAX : (unsigned)n;
}

enum { OPT_LISTEN = 256, OPT_THREADS, OPT_DATA_DIR, OPT_SKUS, OPT_ORDERS, OPT_CONNS,
       OPT_TOKEN, OPT_LOG, OPT_PORT_FILE, OPT_HOLD, OPT_COMPAT, OPT_HELP, OPT_DURABILITY,
       OPT_FSYNC_MS, OPT_SEGMENT_MB, OPT_SNAPSHOT_EVERY, OPT_RECOVER_TRUNCATE, OPT_LIMITS,
       OPT_HELLO, OPT_EVENTS_RETAIN, OPT_LOC_SKUS, OPT_SPLITS, OPT_WAITING };

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"skus-max", required_argument, NULL, OPT_SKUS},
    {"orders-max", required_argument, NULL, OPT_ORDERS},
    {"limits-max", required_argument, NULL, OPT_LIMITS},
    {"loc-skus-max", required_argument, NULL, OPT_LOC_SKUS},
    {"splits-max", required_argument, NULL, OPT_SPLITS},
    {"waiting-max", required_argument, NULL, OPT_WAITING},
    {"hello-timeout-ms", required_argument, NULL, OPT_HELLO},
    {"connections-max", required_argument, NULL, OPT_CONNS},
    {"token-file", required_argument, NULL, OPT_TOKEN},
    {"log-level", required_argument, NULL, OPT_LOG},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"hold-max-ms", required_argument, NULL, OPT_HOLD},
    {"net-compat", no_argument, NULL, OPT_COMPAT},
    {"help", no_argument, NULL, OPT_HELP},
    {"durability", required_argument, NULL, OPT_DURABILITY},
    {"fsync-ms", required_argument, NULL, OPT_FSYNC_MS},
    {"segment-mb", required_argument, NULL, OPT_SEGMENT_MB},
    {"snapshot-every", required_argument, NULL, OPT_SNAPSHOT_EVERY},
    {"recover-truncate", no_argument, NULL, OPT_RECOVER_TRUNCATE},
    {"events-retain", required_argument, NULL, OPT_EVENTS_RETAIN},
    {NULL, 0, NULL, 0},
};

static void parse_option(options_t *o, int opt, const char *arg)
{
    switch (opt) {
    case OPT_LISTEN: parse_listen(o, arg); break;
    case OPT_THREADS: o->threads = (unsigned)parse_number("--threads", arg, 1, THREADS_MAX); break;
    case OPT_DATA_DIR: o->data_dir = arg; break;
    case OPT_SKUS: o->skus_max = (uint32_t)parse_number("--skus-max", arg, 1, SKUS_MAX_CEILING); break;
    case OPT_ORDERS:
        o->orders_max = (uint32_t)parse_number("--orders-max", arg, 1, ORDERS_MAX_CEILING);
        break;
    case OPT_HELLO:
        o->hello_ms = (uint32_t)parse_number("--hello-timeout-ms", arg, 1, 3600000);
        break;
    case OPT_LIMITS:
        o->limits_max = (uint32_t)parse_number("--limits-max", arg, 1, LIMITS_MAX_CEILING);
        break;
    case OPT_LOC_SKUS:
        o->loc_skus_max =
            (uint32_t)parse_number("--loc-skus-max", arg, 1, LOC_SKUS_MAX_CEILING);
        break;
    case OPT_SPLITS:
        o->splits_max = (uint32_t)parse_number("--splits-max", arg, 1, SPLITS_MAX_CEILING);
        break;
    case OPT_WAITING:
        o->waiting_max = (uint32_t)parse_number("--waiting-max", arg, 1, WAITING_MAX_CEILING);
        break;
    case OPT_CONNS:
        o->connections_max =
            (uint32_t)parse_number("--connections-max", arg, 1, CONNECTIONS_MAX_CEILING);
        break;
    case OPT_TOKEN: o->token_file = arg; break;
    case OPT_LOG:
        if (log_level_parse(arg, &o->log_level) != 0)
            bad_flag("%s: '%s' is not one of error, warn, info, debug", "--log-level", arg);
        break;
    case OPT_PORT_FILE: o->port_file = arg; break;
    case OPT_HOLD: o->hold_max_ms = parse_number("--hold-max-ms", arg, 1, UINT32_MAX); break;
    case OPT_COMPAT: o->compat = true; break;
    case OPT_DURABILITY:
        if (durability_parse(arg, &o->durability) != 0)
            bad_flag("%s: '%s' is not one of sync, async, none", "--durability", arg);
        break;
    case OPT_FSYNC_MS: o->fsync_ms = (uint32_t)parse_number("--fsync-ms", arg, 1, 60000); break;
    case OPT_SEGMENT_MB:
        o->segment_mb = (uint32_t)parse_number("--segment-mb", arg, JOURNAL_SEGMENT_MIN >> 20,
                                               4096);
        break;
    case OPT_SNAPSHOT_EVERY: parse_snapshot_every(o, arg); break;
    case OPT_RECOVER_TRUNCATE: o->recover_truncate = true; break;
    case OPT_EVENTS_RETAIN:
        o->events_retain = (uint32_t)parse_number("--events-retain", arg, 1, EVENTS_RETAIN);
        break;
    case OPT_HELP: usage(stdout); exit(0);
    default:
        fprintf(stderr, "Try 'allotd --help'.\n");
        exit(2);
    }
}

static void parse_args(options_t *o, int argc, char **argv)
{
    *o = (options_t){
        .host = DEFAULT_HOST,
        .port = DEFAULT_PORT,
        .threads = default_threads(),
        .skus_max = SKUS_MAX_DEFAULT,
        .orders_max = ORDERS_MAX_DEFAULT,
        .limits_max = LIMITS_MAX_DEFAULT,
        .loc_skus_max = LOC_SKUS_MAX_DEFAULT,
        .splits_max = 0, /* the engine sizes it to the order lines */
        .waiting_max = WAITING_MAX_DEFAULT,
        .hello_ms = NET_HELLO_MS,
        .connections_max = CONNECTIONS_MAX_DEFAULT,
        .hold_max_ms = HOLD_MAX_MS_DEFAULT,
        .log_level = LOG_INFO,
        .data_dir = DEFAULT_DATA_DIR,
        .durability = DURABILITY_SYNC,
        .fsync_ms = JOURNAL_FSYNC_MS_DEFAULT,
        .segment_mb = JOURNAL_SEGMENT_DEFAULT >> 20,
        .snapshot_every_records = SNAPSHOT_EVERY_RECORDS_DEFAULT,
        .snapshot_every_ms = SNAPSHOT_EVERY_MS_DEFAULT,
        .events_retain = EVENTS_RETAIN,
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1)
        parse_option(o, opt, optarg);
    if (optind < argc)
        bad_flag("%s '%s': allotd takes no arguments", "unexpected", argv[optind]);
}

/* ---- start-up steps -------------------------------------------------------- */

static int read_token(const char *path, uint8_t *token, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        log_error("--token-file %s: %s", path, strerror(errno));
        return -1;
    }
    uint8_t buf[ALLOT_TOKEN_MAX + 3];
    size_t n = fread(buf, 1, sizeof buf, f);
    bool err = ferror(f) != 0;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
        log_warn("--token-file %s is readable by group or others", path);
    if (fclose(f) != 0 || err) {
        log_error("--token-file %s: read error", path);
        return -1;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0 || n > ALLOT_TOKEN_MAX) {
        log_error("--token-file %s: the token must be 1..%u bytes", path, ALLOT_TOKEN_MAX);
        return -1;
    }
    memcpy(token, buf, n);
    *len = n;
    return 0;
}

static int make_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -ENAMETOOLONG;
    for (char *p = buf + 1; ; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !end)
            continue;
        *p = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return -errno;
        if (end)
            break;
        *p = '/';
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Enough descriptors for every connection, listeners and event fds. */
static void raise_nofile(const options_t *o)
{
    rlim_t need = (rlim_t)o->connections_max + 64u + 8u * o->threads;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur >= need)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_cur,
                 strerror(errno));
    if (rl.rlim_cur < need)
        log_warn("open files are limited to %llu: fewer than --connections-max %u "
                 "connections will fit (raise ulimit -n)",
                 (unsigned long long)rl.rlim_cur, o->connections_max);
}

static int write_port_file(const char *path, uint16_t port)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    int rc = fprintf(f, "%u\n", port) < 0 ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    /* rename: a reader sees no file or the whole number, never half */
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0 && unlink(tmp) != 0)
        log_debug("unlink %s: %s", tmp, strerror(errno));
    return rc;
}

/* SIGTERM/SIGINT arrive through a signalfd, blocked in every thread: the
 * threads started later inherit the mask. */
static int signals_setup(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0) {
        log_error("pthread_sigmask: %s", strerror(rc));
        return -1;
    }
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        log_warn("cannot ignore SIGPIPE: %s", strerror(errno));
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        log_error("signalfd: %s", strerror(errno));
    return fd;
}

/* ---- wiring ------------------------------------------------------------------ */

typedef struct server {
    engine_t *engine;
    exec_t *exec;
    net_t *net;
    storage_t storage;
    bool storage_open;
    journal_t *journal;
    snapshotter_t snap;
    events_t *events;
    int signal_fd;
    uint8_t token[ALLOT_TOKEN_MAX];
    size_t token_len;
} server_t;

/* ---- the journal's and the event hub's hooks (ctx: the server) -------------- */

static uint8_t hook_admit(void *ctx, const eng_op_t *ops, size_t n, uint32_t expiries)
{
    const server_t *s = ctx;
    return journal_admit(s->journal, ops, n, expiries);
}

/* After every batch: the hub first, so that an event is settled before
 * its record can be durable (net sends an event once both are true). */
static void hook_commit(void *ctx)
{
    const server_t *s = ctx;
    events_flush(s->events, engine_seq(s->engine));
    if (s->journal)
        journal_commit(s->journal);
}

static uint64_t hook_release_seq(void *ctx)
{
    const server_t *s = ctx;
    return journal_release_seq(s->journal);
}

/* The network loops' wake-up: the journal's progress, or without a
 * journal, new events. */
static int hook_watch(void *ctx, int efd)
{
    const server_t *s = ctx;
    return s->journal ? journal_add_waiter(s->journal, efd) : events_add_waiter(s->events, efd);
}

static bool hook_failed(void *ctx)
{
    const server_t *s = ctx;
    return journal_failed(s->journal);
}

static void hook_tick(void *ctx, engine_t *e, uint64_t now_ms)
{
    snapshotter_tick(ctx, e, now_ms);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void engine_config(engine_config_t *ecfg, const options_t *o)
{
    engine_config_default(ecfg);
    ecfg->skus_max = o->skus_max;
    ecfg->orders_max = o->orders_max;
    ecfg->limits_max = o->limits_max;
    ecfg->loc_skus_max = o->loc_skus_max;
    ecfg->splits_max = o->splits_max;
    ecfg->waiting_max = o->waiting_max;
    ecfg->hold_max_ms = o->hold_max_ms;
    ecfg->prefault = true; /* page faults at start-up, not during a sale */
}

/* Takes the data dir, rebuilds the state from its snapshot and journal. */
static int start_state(server_t *s, const options_t *o)
{
    int rc = storage_file_open(&s->storage, o->data_dir, true);
    if (rc == -EBUSY) {
        log_error("--data-dir %s is locked: another allotd (or allot-journal truncate) is "
                  "using it",
                  o->data_dir);
        return rc;
    }
    if (rc != 0) {
        log_error("--data-dir %s: %s", o->data_dir, strerror(-rc));
        return rc;
    }
    s->storage_open = true;
    engine_config_t ecfg;
    engine_config(&ecfg, o);
    /* The engine derives events while it replays: the records after the
     * snapshot rebuild the recent events subscribers may ask for again. */
    eng_event_sink_t events = events_sink(s->events);
    recover_opts_t ropts = {.truncate_corrupt = o->recover_truncate, .event_sink = &events};
    recover_result_t res;
    rc = recover(&s->storage, &ecfg, &ropts, &s->engine, &res);
    if (rc != 0) {
        log_error("recovery of %s failed: %s; allotd does not start on a journal it cannot "
                  "trust",
                  o->data_dir, res.error);
        return rc;
    }
    double rate = res.replay_seconds > 0 ? (double)res.records / res.replay_seconds / 1e6 : 0;
    log_info("recovered %s: tables and snapshot (sequence %" PRIu64 ") in %.3f s, then %" PRIu64
             " journal records from %" PRIu64 " segment(s) in %.3f s (%.2f M records/s); "
             "next sequence %" PRIu64,
             o->data_dir, res.snapshot_seq, res.setup_seconds, res.records, res.segments,
             res.replay_seconds, rate, res.next_seq);
    events_recovered(s->events, res.snapshot_seq, res.next_seq - 1);
    uint64_t restored = events_appended(s->events);
    log_info("recovery restored %" PRIu64 " event(s) of the records after the snapshot; "
             "%" PRIu64 " kept for subscribers (--events-retain %u), who can resume from "
             "sequence %" PRIu64,
             restored, restored < o->events_retain ? restored : (uint64_t)o->events_retain,
             o->events_retain, events_oldest_seq(s->events));
    if (o->durability == DURABILITY_NONE) {
        log_warn("DURABILITY NONE: nothing is journaled; every mutation from now on is lost "
                 "when allotd stops. For benchmarking only.");
        return 0;
    }
    /* The journal records the limits replay must use: the ones in force. */
    engine_get_config(s->engine, &ecfg);
    journal_config_t jcfg = {
        .storage = s->storage,
        .durability = o->durability,
        .fsync_ms = o->fsync_ms,
        .segment_bytes = (uint64_t)o->segment_mb << 20,
        .buffer_bytes = JOURNAL_BUFFER_DEFAULT,
        .params = {.retain_max = ecfg.retain_max, .retain_ms = ecfg.retain_ms,
                   .hold_max_ms = ecfg.hold_max_ms},
    };
    rc = journal_open(&s->journal, &jcfg, res.next_seq);
    if (rc != 0) {
        log_error("journal: cannot open in %s: %s", o->data_dir, strerror(-rc));
        return rc;
    }
    eng_sink_t sink = journal_sink(s->journal);
    engine_set_sink(s->engine, &sink);
    return 0;
}

static int start_engine(server_t *s, const options_t *o)
{
    int rc = events_init(&s->events, o->events_retain);
    if (rc != 0) {
        log_error("event ring of %u events: %s", o->events_retain, strerror(-rc));
        return rc;
    }
    rc = start_state(s, o);
    if (rc != 0)
        return rc;
    snapshotter_init(&s->snap, o->data_dir, &s->storage, s->journal,
                     o->snapshot_every_records, o->snapshot_every_ms, engine_seq(s->engine),
                     wall_ms());
    exec_config_t xcfg = {
        .producers = o->threads,
        .inline_apply = o->threads == 1,
        .ring_size = NET_BATCHES,
        .tick_ms = NET_TICK_MS,
        .admit = s->journal ? hook_admit : NULL,
        .commit = hook_commit,
        .journal_ctx = s,
        .tick_hook = o->durability == DURABILITY_NONE ? NULL : hook_tick,
        .tick_ctx = &s->snap,
    };
    rc = exec_init(&s->exec, s->engine, &xcfg);
    if (rc == 0)
        rc = exec_start(s->exec);
    if (rc != 0)
        log_error("executor: %s", strerror(-rc));
    return rc;
}

static int start_net(server_t *s, const options_t *o)
{
    net_config_t ncfg = {
        .host = o->host,
        .port = o->port,
        .threads = o->threads,
        .connections_max = o->connections_max,
        .token = s->token_len ? s->token : NULL,
        .token_len = s->token_len,
        .exec = s->exec,
        .exec_inline = o->threads == 1,
        .signal_fd = s->signal_fd,
        .compat = o->compat,
        .hello_ms = o->hello_ms,
        .durable_seq = s->journal ? hook_release_seq : NULL,
        .durable_watch = hook_watch,
        .durable_failed = s->journal ? hook_failed : NULL,
        .durable_ctx = s,
        .events = s->events,
    };
    int rc = net_init(&s->net, &ncfg);
    if (rc != 0)
        return rc;
    char addr[80];
    net_address(s->net, addr, sizeof addr);
    if (o->port_file && (rc = write_port_file(o->port_file, net_port(s->net))) != 0) {
        log_error("--port-file %s: %s", o->port_file, strerror(-rc));
        return rc;
    }
    log_info("listening on %s: %u network thread(s), operations on %s; "
             "skus_max %u, orders_max %u, connections_max %u, hold_max_ms %" PRIu64
             "; %s; data dir %s, durability %s",
             addr, o->threads, o->threads == 1 ? "the network thread" : "an owner thread",
             o->skus_max, o->orders_max, o->connections_max, o->hold_max_ms,
             s->token_len ? "HELLO token required" : "no token required", o->data_dir,
             durability_name(o->durability));
    return 0;
}

/* Order matters: the executor completes what is queued (net's batches stay
 * valid), the journal flushes and syncs everything, then a final snapshot
 * makes the next start-up quick. Returns non-zero if the journal failed. */
static int server_stop(server_t *s)
{
    int failed = 0;
    bool durable = s->journal != NULL;
    if (s->exec)
        exec_deinit(s->exec);
    if (s->journal) {
        int rc = journal_close(s->journal);
        s->journal = NULL;
        s->snap.journal = NULL; /* closed: everything written is durable */
        if (rc != 0) {
            log_error("journal: closed after a failure (%s): what was not acknowledged may "
                      "be lost; a restart recovers what is durable",
                      strerror(-rc));
            failed = 1;
        }
    }
    if (s->engine && s->storage_open && durable && !failed) {
        int rc = snapshotter_final(&s->snap, s->engine);
        if (rc != 0)
            log_warn("snapshot at exit failed: %s; the journal holds everything",
                     strerror(-rc));
    }
    if (s->net)
        net_deinit(s->net);
    engine_deinit(s->engine);
    events_deinit(s->events);
    if (s->storage_open)
        storage_file_close(&s->storage);
    if (s->signal_fd >= 0 && close(s->signal_fd) != 0)
        log_debug("close signalfd: %s", strerror(errno));
    return failed;
}

int main(int argc, char **argv)
{
    options_t o;
    parse_args(&o, argc, argv);
    log_set_level(o.log_level);

    server_t s = {.signal_fd = signals_setup()};
    if (s.signal_fd < 0)
        return 1;
    raise_nofile(&o);
    int rc;
    if ((rc = make_dirs(o.data_dir)) != 0) {
        log_error("--data-dir %s: %s", o.data_dir, strerror(-rc));
        return 1;
    }
    if (o.token_file && read_token(o.token_file, s.token, &s.token_len) != 0)
        return 1;
    rc = start_engine(&s, &o);
    if (rc == 0)
        rc = start_net(&s, &o);
    if (rc == 0)
        rc = net_run(s.net);
    if (rc != 0)
        log_error("allotd: stopping after a failure: %s",
                  rc == -EILSEQ ? "the journal cannot be trusted (see above)" : strerror(-rc));
    if (server_stop(&s) != 0)
        rc = -EIO;
    if (rc == 0)
        log_info("stopped cleanly");
    return rc == 0 ? 0 : 1;
}
