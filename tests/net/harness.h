/*
 * A small harness for the server's integration tests: start the real
 * allotd, talk to it over raw sockets with the protocol.h helpers, stop it.
 * Every wait is bounded; a failed check prints where and the server's log.
 */
#ifndef ALLOT_TEST_NET_HARNESS_H
#define ALLOT_TEST_NET_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <allot/protocol.h>

/* ---- checks ---------------------------------------------------------------- */

void check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond))                                                            \
            check_fail(__FILE__, __LINE__, "check failed: " #cond ": " __VA_ARGS__); \
    } while (0)

uint64_t now_ms(void);

/* ---- the server -------------------------------------------------------------- */

typedef struct server {
    pid_t pid;
    uint16_t port;
    char dir[64];
    char log_path[96];
    char data_dir[96];
} server_t;

/* Starts allotd on 127.0.0.1:0 with the given extra arguments (NULL
 * terminated) and waits for its port file. */
void server_start(server_t *s, const char *allotd, const char *const *extra);
/* server_start() with three NULL-terminated argument lists in a row (each
 * may be NULL): a test's defaults, its flags, and one start's extras. */
void server_start_args(server_t *s, const char *allotd, const char *const *common,
                       const char *const *flags, const char *const *more);
/* SIGTERM, then waits up to timeout_ms; returns the exit status (-1 on a
 * signal death; kills and fails on timeout). */
int server_stop(server_t *s, int timeout_ms);
/* server_stop() that must end in exit status 0. */
void server_stop_clean(server_t *s);
/* Waits for the server to exit on its own; same result as server_stop. */
int server_wait(server_t *s, int timeout_ms);
/* VmRSS of the server in KiB. */
long server_rss_kib(const server_t *s);
void server_dump_log(void);
/* Removes the temp dirs of the servers started (after a pass). */
void harness_cleanup(void);

/* ---- frames out ------------------------------------------------------------- */

typedef struct wbuf {
    uint8_t *p;
    size_t len;
    size_t cap;
} wbuf_t;

uint8_t *wb_grow(wbuf_t *w, size_t n);
void wb_free(wbuf_t *w);
size_t frame_begin(wbuf_t *w, uint16_t opcode, uint16_t count, uint64_t request_id);
void frame_end(wbuf_t *w, size_t start);
void put_hello(wbuf_t *w, uint64_t request_id, uint32_t version, const char *token);
void put_sku_set(wbuf_t *w, uint64_t sku, uint64_t on_hand);
void put_place(wbuf_t *w, uint64_t order, uint64_t customer, uint64_t sku, uint32_t qty);
void put_id(wbuf_t *w, uint64_t id);

/* ---- connections --------------------------------------------------------------- */

typedef struct frame {
    uint32_t len;
    uint16_t opcode;
    uint16_t count;
    uint64_t request_id;
    const uint8_t *body;
    size_t body_len;
} frame_t;

typedef struct tconn {
    int fd;
    uint8_t *rbuf;
    size_t rlen, roff, rcap;
    bool eof;
} tconn_t;

int tc_connect(tconn_t *c, uint16_t port); /* 0 or -errno */
/* Connects with a receive buffer of rcvbuf bytes, set before the
 * handshake so that the window stays small: a client that reads slowly. */
void tc_open_rcvbuf(tconn_t *c, uint16_t port, int rcvbuf);
void tc_open(tconn_t *c, uint16_t port);   /* fails the test on error */
void tc_close(tconn_t *c);
void tc_nonblock(tconn_t *c);
void tc_send_all(tconn_t *c, const void *p, size_t n, int timeout_ms);
/* Non-blocking: bytes sent now (0 when the socket is full), -errno. */
ssize_t tc_send_some(tconn_t *c, const void *p, size_t n);
/* Reads what is there (non-blocking fd) into rbuf: bytes, 0 at EOF, -EAGAIN. */
ssize_t tc_fill(tconn_t *c);
/* A whole frame already in rbuf: 1, or 0. */
int tc_take(tconn_t *c, frame_t *f);
/* Waits for the next frame: 1, 0 at EOF, -ETIMEDOUT, -errno. */
int tc_read(tconn_t *c, frame_t *f, int timeout_ms);
/* Expects the peer to close within timeout_ms, with no more frames. */
void tc_expect_eof(tconn_t *c, int timeout_ms);

/* HELLO with the current version and no token; checks the answer. */
void tc_hello(tconn_t *c, uint64_t request_id);
/* Sends one frame built in w and reads its answer, which must carry the
 * same request id and the response bit of opcode. */
void tc_call(tconn_t *c, wbuf_t *w, uint16_t opcode, uint64_t request_id, frame_t *f);

/* STATS values into v[ALLOT_STAT_COUNT]. */
void tc_stats(tconn_t *c, uint64_t request_id, uint64_t *v);
/* SKU result element i of a SKU answer. */
uint8_t sres_result(const frame_t *f, size_t i);
uint64_t sres_u64(const frame_t *f, size_t i, size_t field);

/* An ERROR frame: its result and reason. */
void expect_error(const frame_t *f, uint8_t result, uint8_t reason);

#endif
