#include "crash_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SERVERS_TRACKED 8

static cu_server_t *servers[SERVERS_TRACKED];
static char last_log[320];
static void (*fail_hook)(void);

void cu_on_fail(void (*fn)(void)) { fail_hook = fn; }

static void track(cu_server_t *s)
{
    for (unsigned i = 0; i < SERVERS_TRACKED; i++)
        if (servers[i] == s)
            return;
    for (unsigned i = 0; i < SERVERS_TRACKED; i++)
        if (!servers[i]) {
            servers[i] = s;
            return;
        }
}

static void dump_log_tail(const char *path, unsigned lines)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    /* keep the last `lines` lines in a ring of offsets */
    long offs[128];
    unsigned n = 0;
    char buf[2048];
    long pos = 0;
    if (lines > 128)
        lines = 128;
    while (fgets(buf, sizeof buf, f)) {
        offs[n++ % lines] = pos;
        pos = ftell(f);
    }
    unsigned first = n > lines ? n - lines : 0;
    fprintf(stderr, "---- allotd log %s, last %u lines ----\n", path, n - first);
    if (n > 0 && fseek(f, offs[first % lines], SEEK_SET) == 0)
        while (fgets(buf, sizeof buf, f))
            fputs(buf, stderr);
    fclose(f);
}

void cu_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (last_log[0])
        dump_log_tail(last_log, 60);
    for (unsigned i = 0; i < SERVERS_TRACKED; i++)
        if (servers[i] && servers[i]->pid > 0)
            kill(servers[i]->pid, SIGKILL);
    if (fail_hook)
        fail_hook();
    exit(1);
}

uint64_t cu_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cu_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cu_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

uint64_t cu_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

uint64_t cu_range(uint64_t *state, uint64_t lo, uint64_t hi)
{
    return lo + cu_rand(state) % (hi - lo + 1);
}

void cu_mkdtemp(char *out, size_t len, const char *tag)
{
    snprintf(out, len, "/tmp/allot-%s-XXXXXX", tag);
    CHECK(mkdtemp(out) != NULL, "mkdtemp: %s", strerror(errno));
}

void cu_rmtree(const char *dir)
{
    CHECK(strncmp(dir, "/tmp/allot-", 11) == 0, "refusing to remove %s", dir);
    const char *argv[] = {"rm", "-rf", "--", dir, NULL};
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        execvp("rm", (char *const *)argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* ---- the server ------------------------------------------------------------------- */

static bool read_port(const char *path, uint16_t *port)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    unsigned p = 0;
    int n = fscanf(f, "%u", &p);
    fclose(f);
    if (n != 1 || p == 0 || p > 65535)
        return false;
    *port = (uint16_t)p;
    return true;
}

static void server_exec(const cu_server_t *s, const char *allotd, const char *const *extra,
                        const char *env)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = allotd;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--port-file";
    argv[n++] = s->port_file;
    argv[n++] = "--data-dir";
    argv[n++] = s->data_dir;
    for (size_t i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        _exit(126);
    if (env && putenv((char *)env) != 0)
        _exit(126);
    execv(allotd, (char *const *)argv);
    _exit(127);
}

int cu_server_start(cu_server_t *s, const char *allotd, const char *work_dir,
                    const char *data_dir, const char *log_path,
                    const char *const *extra, const char *env)
{
    memset(s, 0, sizeof *s);
    snprintf(s->data_dir, sizeof s->data_dir, "%s", data_dir);
    snprintf(s->log_path, sizeof s->log_path, "%s", log_path);
    snprintf(s->port_file, sizeof s->port_file, "%s/port", work_dir);
    snprintf(last_log, sizeof last_log, "%s", log_path);
    CHECK(unlink(s->port_file) == 0 || errno == ENOENT, "unlink %s: %s", s->port_file,
          strerror(errno));
    track(s);
    fflush(stdout);
    fflush(stderr);
    s->pid = fork();
    CHECK(s->pid >= 0, "fork: %s", strerror(errno));
    if (s->pid == 0)
        server_exec(s, allotd, extra, env);
    uint64_t deadline = cu_mono_ms() + 20000;
    while (!read_port(s->port_file, &s->port)) {
        int status;
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        CHECK(r >= 0, "waitpid: %s", strerror(errno));
        if (r == s->pid) {
            s->pid = 0;
            return WIFEXITED(status) ? (WEXITSTATUS(status) ? WEXITSTATUS(status) : 255)
                                     : 128 + WTERMSIG(status);
        }
        CHECK(cu_mono_ms() < deadline, "allotd wrote no port file within 20 s");
        cu_sleep_ms(5);
    }
    return 0;
}

void cu_server_start_retry(cu_server_t *s, const char *allotd, const char *work_dir,
                           const char *data_dir, const char *log_path,
                           const char *const *extra, const char *env)
{
    uint64_t deadline = cu_mono_ms() + 10000;
    for (unsigned tries = 1;; tries++) {
        int rc = cu_server_start(s, allotd, work_dir, data_dir, log_path, extra, env);
        if (rc == 0) {
            if (tries > 1)
                printf("  (allotd started at try %u: the data dir was still locked)\n",
                       tries);
            return;
        }
        CHECK(cu_log_contains(log_path, "is locked") && cu_mono_ms() < deadline,
              "allotd on %s exited with status %d at start-up", data_dir, rc);
        cu_sleep_ms(50);
    }
}

void cu_server_kill9(cu_server_t *s)
{
    CHECK(s->pid > 0, "no server to kill");
    CHECK(kill(s->pid, SIGKILL) == 0, "kill: %s", strerror(errno));
    int status;
    CHECK(waitpid(s->pid, &status, 0) == s->pid, "waitpid: %s", strerror(errno));
    s->pid = 0;
}

int cu_server_wait(cu_server_t *s, int timeout_ms)
{
    uint64_t deadline = cu_mono_ms() + (uint64_t)timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        CHECK(r >= 0, "waitpid: %s", strerror(errno));
        if (r == s->pid)
            break;
        if (cu_mono_ms() >= deadline)
            return INT32_MIN;
        cu_sleep_ms(5);
    }
    s->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

int cu_server_stop(cu_server_t *s, int timeout_ms)
{
    CHECK(s->pid > 0, "no server to stop");
    CHECK(kill(s->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
    int rc = cu_server_wait(s, timeout_ms);
    CHECK(rc != INT32_MIN, "allotd still running %d ms after SIGTERM", timeout_ms);
    return rc;
}

bool cu_log_contains(const char *log_path, const char *needle)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* ---- tools ------------------------------------------------------------------------ */

int cu_run(const char *const *argv, char *out, size_t cap, const char *err_path,
           int timeout_ms)
{
    int pfd[2];
    CHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (dup2(pfd[1], STDOUT_FILENO) < 0)
            _exit(126);
        if (err_path) {
            int fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
                _exit(126);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    uint64_t deadline = cu_mono_ms() + (uint64_t)timeout_ms;
    bool timed_out = false;
    for (;;) {
        uint64_t now = cu_mono_ms();
        if (now >= deadline) {
            timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - now)) <= 0)
            continue;
        char buf[4096];
        ssize_t r = read(pfd[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r;
        if (cap > 0 && len + take > cap - 1)
            take = cap - 1 - len;
        memcpy(out + len, buf, take);
        len += take;
    }
    close(pfd[0]);
    if (cap > 0)
        out[len] = '\0';
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
    if (timed_out || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

bool cu_json_digest(const char *json, uint64_t *digest, uint64_t *seq)
{
    const char *d = strstr(json, "\"state_digest\":\"");
    const char *q = strstr(json, "\"seq\":");
    if (!d || !q)
        return false;
    d += strlen("\"state_digest\":\"");
    char *end;
    errno = 0;
    unsigned long long v = strtoull(d, &end, 16);
    if (errno != 0 || end != d + 16 || *end != '"')
        return false;
    *digest = v;
    q += strlen("\"seq\":");
    v = strtoull(q, &end, 10);
    if (errno != 0 || end == q)
        return false;
    *seq = v;
    return true;
}

void cu_journal_replay(const char *tool, const char *data_dir, uint64_t until_seq,
                       bool no_snapshot, const char *err_path, uint64_t *digest,
                       uint64_t *seq)
{
    char until[32];
    snprintf(until, sizeof until, "%" PRIu64, until_seq);
    const char *argv[10];
    size_t n = 0;
    argv[n++] = tool;
    argv[n++] = "replay";
    argv[n++] = data_dir;
    argv[n++] = "--json";
    if (until_seq) {
        argv[n++] = "--until";
        argv[n++] = until;
    }
    if (no_snapshot)
        argv[n++] = "--no-snapshot";
    argv[n] = NULL;
    static char out[1 << 16];
    int rc = cu_run(argv, out, sizeof out, err_path, 60000);
    CHECK(rc == 0, "allot-journal replay %s%s%s%s exited %d: %s (its stderr: %s)", data_dir,
          until_seq ? " --until " : "", until_seq ? until : "",
          no_snapshot ? " --no-snapshot" : "", rc, out, err_path ? err_path : "-");
    CHECK(cu_json_digest(out, digest, seq), "no state_digest/seq in: %s", out);
}

/* ---- the client ------------------------------------------------------------------- */

allot_conn_t *cu_connect(uint16_t port, uint32_t inflight_max, uint32_t timeout_ms)
{
    allot_config_t cfg;
    allot_config_init(&cfg);
    cfg.port = port;
    cfg.inflight_max = inflight_max;
    cfg.timeout_ms = timeout_ms;
    allot_conn_t *c = NULL;
    int rc = allot_conn_new(&c, &cfg);
    CHECK(rc == 0, "allot_conn_new: %s", strerror(-rc));
    rc = allot_conn_open(c);
    CHECK(rc == 0, "connect to port %u: %s", port, allot_last_error(c));
    return c;
}

void cu_stats(allot_conn_t *c, uint64_t *v)
{
    size_t count = 0;
    int rc = allot_stats(c, v, ALLOT_STAT_COUNT, &count);
    CHECK(rc == 0, "STATS: %s", allot_last_error(c));
    CHECK(count >= ALLOT_STAT_OPS, "STATS gave %zu values", count);
}

#define PIPE_DEPTH 16u

/* Submits batches of one opcode over ids[0..n) and hands each completion
 * with the index of its first element to take(). */
typedef void (*take_fn)(void *ctx, const allot_completion_t *cmp, size_t first);

static void pipelined(allot_conn_t *c, uint16_t opcode, const uint64_t *ids, size_t n,
                      uint32_t per_frame, take_fn take, void *ctx)
{
    allot_batch_t *b = NULL;
    int rc = allot_batch_new(&b, opcode, c);
    CHECK(rc == 0, "allot_batch_new: %s", strerror(-rc));
    size_t next = 0, done = 0;
    uint64_t deadline = cu_mono_ms() + 60000;
    while (done < n) {
        while (next < n && allot_inflight(c) < PIPE_DEPTH) {
            CHECK(allot_batch_reset(b, opcode) == 0, "batch reset");
            size_t first = next;
            for (uint32_t k = 0; k < per_frame && next < n; k++, next++) {
                rc = opcode == ALLOT_OP_ORDER_GET ? allot_batch_add_order_get(b, ids[next])
                                                  : allot_batch_add_sku_get(b, ids[next]);
                if (rc == -ENOSPC)
                    break;
                CHECK(rc == 0, "batch add: %s", strerror(-rc));
            }
            rc = allot_submit(c, b, (void *)(uintptr_t)first, NULL);
            if (rc == -EAGAIN) {
                next = first;
                break;
            }
            CHECK(rc == 0, "submit: %s (%s)", strerror(-rc), allot_last_error(c));
        }
        allot_completion_t cmp[PIPE_DEPTH];
        int got = allot_wait(c, cmp, PIPE_DEPTH, 1000);
        CHECK(got >= 0, "wait: %s", allot_last_error(c));
        for (int i = 0; i < got; i++) {
            CHECK(cmp[i].error == 0, "%s batch failed: %s (%s)", allot_opcode_name(opcode),
                  strerror(-cmp[i].error), allot_last_error(c));
            take(ctx, &cmp[i], (size_t)(uintptr_t)cmp[i].user);
            done += cmp[i].count;
        }
        CHECK(cu_mono_ms() < deadline, "reads did not finish within 60 s");
    }
    allot_batch_free(b);
}

static void take_orders(void *ctx, const allot_completion_t *cmp, size_t first)
{
    cu_order_obs_t *out = ctx;
    allot_reader_t r;
    allot_order_info_t o;
    allot_reader_init(&r, cmp);
    for (size_t i = first; allot_read_order_info(&r, &o) == 1; i++) {
        cu_order_obs_t *ob = &out[i];
        memset(ob, 0, sizeof *ob);
        CHECK(o.line_count <= CU_LINES, "order %" PRIu64 " has %u lines", o.order,
              o.line_count);
        ob->result = o.result;
        ob->state = o.state;
        ob->policy = o.policy;
        ob->line_count = o.line_count;
        ob->customer = o.customer;
        ob->placed_ms = o.placed_ms;
        ob->deadline_ms = o.deadline_ms;
        ob->flags = o.flags;
        for (unsigned k = 0; k < o.line_count; k++) {
            const allot_order_line_t *l = &o.lines[k];
            ob->sku[k] = l->sku;
            ob->requested[k] = l->requested;
            ob->allocated[k] = l->allocated;
            ob->queue_place[k] = l->queue_place;
            CHECK(l->location_count <= ALLOT_LOCATIONS_MAX,
                  "order %" PRIu64 " line %u: %u locations", o.order, k, l->location_count);
            ob->loc_count[k] = l->location_count;
            for (unsigned j = 0; j < l->location_count; j++) {
                ob->loc[k][j] = l->locations[j].location;
                ob->loc_units[k][j] = l->locations[j].units;
            }
        }
    }
}

static void take_skus(void *ctx, const allot_completion_t *cmp, size_t first)
{
    allot_sku_result_t *out = ctx;
    allot_reader_t r;
    allot_reader_init(&r, cmp);
    for (size_t i = first; allot_read_sku(&r, &out[i]) == 1; i++)
        ;
}

void cu_orders_get(allot_conn_t *c, const uint64_t *ids, size_t n, cu_order_obs_t *out)
{
    pipelined(c, ALLOT_OP_ORDER_GET, ids, n, ALLOT_ORDER_GET_BATCH_MAX, take_orders, out);
}

void cu_skus_get(allot_conn_t *c, const uint64_t *ids, size_t n, allot_sku_result_t *out)
{
    pipelined(c, ALLOT_OP_SKU_GET, ids, n, 512, take_skus, out);
}
