#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static server_t *current;
static char dirs[8][64]; /* temp dirs to remove once the test passed */
static unsigned dirs_n;

void harness_cleanup(void)
{
    for (unsigned i = 0; i < dirs_n; i++) {
        /* our own mkdtemp directories: log, port file, data dir */
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirs[i]);
        if (system(cmd) != 0)
            fprintf(stderr, "harness: could not remove %s\n", dirs[i]);
    }
    dirs_n = 0;
}

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void server_dump_log(void)
{
    if (!current)
        return;
    FILE *f = fopen(current->log_path, "r");
    if (!f)
        return;
    char line[1024];
    unsigned n = 0;
    fprintf(stderr, "---- allotd log (%s), first 200 lines ----\n", current->log_path);
    while (n++ < 200 && fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

void check_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    server_dump_log();
    if (current && current->pid > 0)
        kill(current->pid, SIGKILL);
    exit(1);
}

/* ---- the server --------------------------------------------------------------- */

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

static void server_exec(server_t *s, const char *allotd, const char *const *extra,
                        const char *port_file)
{
    const char *argv[64];
    size_t n = 0;
    argv[n++] = allotd;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    argv[n++] = "--data-dir";
    argv[n++] = s->data_dir;
    for (size_t i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    int fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
        _exit(126);
    execv(allotd, (char *const *)argv);
    _exit(127);
}

void server_start_args(server_t *s, const char *allotd, const char *const *common,
                       const char *const *flags, const char *const *more)
{
    enum { ARGS_MAX = 64 };
    const char *args[ARGS_MAX];
    size_t n = 0;
    const char *const *lists[3] = {common, flags, more};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; lists[l] && lists[l][i]; i++) {
            CHECK(n + 1 < ARGS_MAX, "too many allotd arguments");
            args[n++] = lists[l][i];
        }
    args[n] = NULL;
    server_start(s, allotd, args);
}

void server_stop_clean(server_t *s)
{
    int status = server_stop(s, 15000);
    CHECK(status == 0, "allotd exit status %d after SIGTERM", status);
}

void server_start(server_t *s, const char *allotd, const char *const *extra)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/allot-net-XXXXXX");
    CHECK(mkdtemp(s->dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(s->log_path, sizeof s->log_path, "%s/allotd.log", s->dir);
    snprintf(s->data_dir, sizeof s->data_dir, "%s/data", s->dir);
    if (dirs_n < 8)
        memcpy(dirs[dirs_n++], s->dir, sizeof s->dir);
    char port_file[96];
    snprintf(port_file, sizeof port_file, "%s/port", s->dir);
    current = s;
    s->pid = fork();
    CHECK(s->pid >= 0, "fork: %s", strerror(errno));
    if (s->pid == 0)
        server_exec(s, allotd, extra, port_file);
    uint64_t deadline = now_ms() + 10000;
    while (!read_port(port_file, &s->port)) {
        int status;
        CHECK(waitpid(s->pid, &status, WNOHANG) == 0, "allotd exited at start-up");
        CHECK(now_ms() < deadline, "no port file after 10 s");
        usleep(5000);
    }
}

int server_stop(server_t *s, int timeout_ms)
{
    CHECK(kill(s->pid, SIGTERM) == 0, "kill: %s", strerror(errno));
    return server_wait(s, timeout_ms);
}

int server_wait(server_t *s, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    int status;
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        CHECK(r >= 0, "waitpid: %s", strerror(errno));
        if (r == s->pid)
            break;
        CHECK(now_ms() < deadline, "allotd still running after %d ms", timeout_ms);
        usleep(5000);
    }
    s->pid = 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "allotd died of signal %d\n", WTERMSIG(status));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long server_rss_kib(const server_t *s)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)s->pid);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "%s: %s", path, strerror(errno));
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    CHECK(kib > 0, "no VmRSS in %s", path);
    return kib;
}

/* ---- frames out --------------------------------------------------------------- */

uint8_t *wb_grow(wbuf_t *w, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4096;
        while (cap < w->len + n)
            cap *= 2;
        w->p = realloc(w->p, cap);
        CHECK(w->p != NULL, "out of memory");
        w->cap = cap;
    }
    uint8_t *p = w->p + w->len;
    memset(p, 0, n);
    w->len += n;
    return p;
}

void wb_free(wbuf_t *w)
{
    free(w->p);
    memset(w, 0, sizeof *w);
}

size_t frame_begin(wbuf_t *w, uint16_t opcode, uint16_t count, uint64_t request_id)
{
    size_t start = w->len;
    uint8_t *h = wb_grow(w, ALLOT_FRAME_HEADER_SIZE);
    allot_put_u16(h + 4, opcode);
    allot_put_u16(h + 6, count);
    allot_put_u64(h + 8, request_id);
    return start;
}

void frame_end(wbuf_t *w, size_t start)
{
    allot_put_u32(w->p + start, (uint32_t)(w->len - start));
}

void put_hello(wbuf_t *w, uint64_t request_id, uint32_t version, const char *token)
{
    size_t tl = token ? strlen(token) : 0;
    size_t start = frame_begin(w, ALLOT_OP_HELLO, 0, request_id);
    uint8_t *p = wb_grow(w, ALLOT_HELLO_REQ_SIZE + tl);
    allot_put_u32(p + ALLOT_HELLO_VERSION, version);
    allot_put_u32(p + ALLOT_HELLO_TOKEN_LEN, (uint32_t)tl);
    if (tl)
        memcpy(p + ALLOT_HELLO_TOKEN, token, tl);
    frame_end(w, start);
}

void put_sku_set(wbuf_t *w, uint64_t sku, uint64_t on_hand)
{
    uint8_t *p = wb_grow(w, ALLOT_SKU_SET_SIZE);
    allot_put_u64(p + ALLOT_SKU_SET_SKU, sku);
    allot_put_u64(p + ALLOT_SKU_SET_ON_HAND, on_hand);
}

void put_place(wbuf_t *w, uint64_t order, uint64_t customer, uint64_t sku, uint32_t qty)
{
    uint8_t *p = wb_grow(w, ALLOT_PLACE_HEAD_SIZE + ALLOT_LINE_SIZE);
    allot_put_u64(p + ALLOT_PLACE_ORDER, order);
    allot_put_u64(p + ALLOT_PLACE_CUSTOMER, customer);
    allot_put_u8(p + ALLOT_PLACE_POLICY, ALLOT_POLICY_ALL_OR_NOTHING);
    allot_put_u8(p + ALLOT_PLACE_LINES, 1);
    p += ALLOT_PLACE_HEAD_SIZE;
    allot_put_u64(p + ALLOT_LINE_SKU, sku);
    allot_put_u32(p + ALLOT_LINE_QTY, qty);
}

void put_id(wbuf_t *w, uint64_t id)
{
    allot_put_u64(wb_grow(w, ALLOT_ID_SIZE), id);
}

/* ---- connections ------------------------------------------------------------------ */

static int tc_connect_buf(tconn_t *c, uint16_t port, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -errno;
    if (rcvbuf > 0 && setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) != 0) {
        int e = -errno;
        close(c->fd);
        c->fd = -1;
        return e;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = -errno;
        close(c->fd);
        c->fd = -1;
        return e;
    }
    int one = 1;
    CHECK(setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "nodelay");
    tc_nonblock(c);
    return 0;
}

int tc_connect(tconn_t *c, uint16_t port)
{
    return tc_connect_buf(c, port, 0);
}

void tc_open_rcvbuf(tconn_t *c, uint16_t port, int rcvbuf)
{
    int rc = tc_connect_buf(c, port, rcvbuf);
    CHECK(rc == 0, "connect to port %u: %s", port, strerror(-rc));
}

void tc_open(tconn_t *c, uint16_t port)
{
    int rc = tc_connect(c, port);
    CHECK(rc == 0, "connect to port %u: %s", port, strerror(-rc));
}

void tc_close(tconn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

void tc_nonblock(tconn_t *c)
{
    int fl = fcntl(c->fd, F_GETFL);
    CHECK(fl >= 0 && fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) == 0, "O_NONBLOCK");
}

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, timeout_ms);
    return r < 0 ? -errno : r;
}

ssize_t tc_send_some(tconn_t *c, const void *p, size_t n)
{
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0)
        return errno == EAGAIN ? 0 : -errno;
    return w;
}

void tc_send_all(tconn_t *c, const void *p, size_t n, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = tc_send_some(c, b, n);
        CHECK(w >= 0, "send: %s", strerror((int)-w));
        b += w;
        n -= (size_t)w;
        if (n > 0) {
            CHECK(now_ms() < deadline, "send stuck for %d ms", timeout_ms);
            wait_fd(c->fd, POLLOUT, 10);
        }
    }
}

ssize_t tc_fill(tconn_t *c)
{
    if (c->roff > 0 && c->roff == c->rlen)
        c->roff = c->rlen = 0;
    if (c->rcap - c->rlen < 65536) {
        if (c->roff > 0) {
            memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
            c->rlen -= c->roff;
            c->roff = 0;
        }
        if (c->rcap - c->rlen < 65536) {
            c->rcap = c->rcap ? c->rcap * 2 : 1 << 20;
            c->rbuf = realloc(c->rbuf, c->rcap);
            CHECK(c->rbuf != NULL, "out of memory");
        }
    }
    ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
    if (r < 0)
        return -errno;
    if (r == 0)
        c->eof = true;
    c->rlen += (size_t)r;
    return r;
}

int tc_take(tconn_t *c, frame_t *f)
{
    size_t have = c->rlen - c->roff;
    const uint8_t *p = c->rbuf + c->roff;
    if (have < ALLOT_FRAME_HEADER_SIZE)
        return 0;
    uint32_t len = allot_get_u32(p);
    CHECK(len >= ALLOT_FRAME_HEADER_SIZE && len <= ALLOT_FRAME_MAX, "server frame_len %u", len);
    if (have < len)
        return 0;
    f->len = len;
    f->opcode = allot_get_u16(p + 4);
    f->count = allot_get_u16(p + 6);
    f->request_id = allot_get_u64(p + 8);
    f->body = p + ALLOT_FRAME_HEADER_SIZE;
    f->body_len = len - ALLOT_FRAME_HEADER_SIZE;
    c->roff += len;
    return 1;
}

int tc_read(tconn_t *c, frame_t *f, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (tc_take(c, f))
            return 1;
        if (c->eof)
            return 0;
        ssize_t r = tc_fill(c);
        if (r == -EAGAIN) {
            uint64_t now = now_ms();
            if (now >= deadline)
                return -ETIMEDOUT;
            wait_fd(c->fd, POLLIN, (int)(deadline - now));
        } else if (r < 0) {
            return (int)r;
        }
    }
}

void tc_expect_eof(tconn_t *c, int timeout_ms)
{
    frame_t f;
    int r = tc_read(c, &f, timeout_ms);
    CHECK(r == 0 || r == -ECONNRESET, "expected the server to close, got %s",
          r == 1 ? "a frame" : strerror(-r));
}

void tc_call(tconn_t *c, wbuf_t *w, uint16_t opcode, uint64_t request_id, frame_t *f)
{
    tc_send_all(c, w->p, w->len, 5000);
    int r = tc_read(c, f, 5000);
    CHECK(r == 1, "no answer to %s request %llu: %s", allot_opcode_name(opcode),
          (unsigned long long)request_id, r == 0 ? "closed" : strerror(-r));
    if (f->opcode == (ALLOT_OP_ERROR | ALLOT_OP_RESPONSE) && f->body_len >= ALLOT_ERR_HEAD_SIZE)
        CHECK(0, "ERROR frame %s: %.*s", allot_result_name(f->body[0]),
              (int)(f->body_len - ALLOT_ERR_HEAD_SIZE), (const char *)f->body + ALLOT_ERR_MSG);
    CHECK(f->opcode == (opcode | ALLOT_OP_RESPONSE), "answer opcode 0x%x to %s", f->opcode,
          allot_opcode_name(opcode));
    CHECK(f->request_id == request_id, "answer request id %llu, expected %llu",
          (unsigned long long)f->request_id, (unsigned long long)request_id);
}

void tc_hello(tconn_t *c, uint64_t request_id)
{
    wbuf_t w = {0};
    put_hello(&w, request_id, ALLOT_PROTOCOL_VERSION, NULL);
    frame_t f;
    tc_call(c, &w, ALLOT_OP_HELLO, request_id, &f);
    CHECK(f.body_len == ALLOT_HELLO_RESP_SIZE, "HELLO answer of %zu bytes", f.body_len);
    CHECK(allot_get_u32(f.body + ALLOT_HELLO_R_VERSION) == ALLOT_PROTOCOL_VERSION, "version");
    wb_free(&w);
}

void tc_stats(tconn_t *c, uint64_t request_id, uint64_t *v)
{
    wbuf_t w = {0};
    frame_end(&w, frame_begin(&w, ALLOT_OP_STATS, 0, request_id));
    frame_t f;
    tc_call(c, &w, ALLOT_OP_STATS, request_id, &f);
    CHECK(f.count >= ALLOT_STAT_COUNT && f.body_len == 8u * f.count, "STATS count %u", f.count);
    for (size_t i = 0; i < ALLOT_STAT_COUNT; i++)
        v[i] = allot_get_u64(f.body + 8 * i);
    wb_free(&w);
}

/* SKU results are 48 bytes, each followed by its location entries (SKU_GET). */
static const uint8_t *sres_at(const frame_t *f, size_t i)
{
    size_t off = 0;
    for (size_t k = 0;; k++) {
        CHECK(off + ALLOT_SRES_SIZE <= f->body_len, "SKU answer too short for element %zu", i);
        if (k == i)
            return f->body + off;
        off += ALLOT_SRES_SIZE + (size_t)f->body[off + ALLOT_SRES_LOCATIONS] * ALLOT_SLOC_SIZE;
    }
}

uint8_t sres_result(const frame_t *f, size_t i)
{
    return sres_at(f, i)[ALLOT_SRES_RESULT];
}

uint64_t sres_u64(const frame_t *f, size_t i, size_t field)
{
    return allot_get_u64(sres_at(f, i) + field);
}

void expect_error(const frame_t *f, uint8_t result, uint8_t reason)
{
    CHECK(f->opcode == (ALLOT_OP_ERROR | ALLOT_OP_RESPONSE), "expected an ERROR frame, got 0x%x",
          f->opcode);
    CHECK(f->body_len >= ALLOT_ERR_HEAD_SIZE, "ERROR body of %zu bytes", f->body_len);
    uint16_t msg_len = allot_get_u16(f->body + ALLOT_ERR_MSG_LEN);
    CHECK(f->body_len == ALLOT_ERR_HEAD_SIZE + msg_len && msg_len > 0, "ERROR message length");
    CHECK(f->body[ALLOT_ERR_RESULT] == result, "ERROR result %s, expected %s",
          allot_result_name(f->body[ALLOT_ERR_RESULT]), allot_result_name(result));
    CHECK(f->body[ALLOT_ERR_REASON] == reason, "ERROR reason %s, expected %s (%.*s)",
          allot_malformed_name(f->body[ALLOT_ERR_REASON]), allot_malformed_name(reason),
          (int)msg_len, (const char *)f->body + ALLOT_ERR_MSG);
}
