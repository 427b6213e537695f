/*
 * Shared pieces of the crash and fault tests: checks that fail loudly (with
 * the server's log), allotd started on a data dir of the test's choosing,
 * killed or stopped, tools run with their output captured, and a few
 * client-library conveniences. Every wait is bounded.
 */
#ifndef ALLOT_TEST_CRASH_UTIL_H
#define ALLOT_TEST_CRASH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <allot/client.h>

/* ---- checks ----------------------------------------------------------------- */

void cu_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond))                                                                \
            cu_fail(__FILE__, __LINE__, "check failed: " #cond ": " __VA_ARGS__);   \
    } while (0)

/* Called by cu_fail() before it exits (unmounts, for instance). */
void cu_on_fail(void (*fn)(void));

uint64_t cu_mono_ms(void);
uint64_t cu_wall_ms(void);
void cu_sleep_ms(unsigned ms);

/* splitmix64: small, seedable, good enough to pick test actions. */
uint64_t cu_rand(uint64_t *state);
/* Uniform in [lo, hi]. */
uint64_t cu_range(uint64_t *state, uint64_t lo, uint64_t hi);

/* A fresh directory /tmp/allot-<tag>-XXXXXX (path into out). */
void cu_mkdtemp(char *out, size_t len, const char *tag);
/* rm -rf of a directory this test made. */
void cu_rmtree(const char *dir);

/* ---- the server --------------------------------------------------------------- */

typedef struct cu_server {
    pid_t pid;
    uint16_t port;
    char data_dir[256];
    char log_path[320];
    char port_file[320];
} cu_server_t;

/* Starts allotd --listen 127.0.0.1:0 --port-file <work>/port --data-dir
 * data_dir plus extra (NULL-terminated), its stderr appended to log_path,
 * with env ("NAME=VALUE") added to its environment when not NULL. Returns
 * 0 once it listens, or its exit status (> 0) when it stopped at start-up;
 * fails the test after 20 s. */
int cu_server_start(cu_server_t *s, const char *allotd, const char *work_dir,
                    const char *data_dir, const char *log_path,
                    const char *const *extra, const char *env);
/* As cu_server_start(), but a start refused because the data dir is still
 * locked (a snapshot writer of a killed server may outlive it for a
 * moment) is tried again for up to 10 s. Any other failure fails. */
void cu_server_start_retry(cu_server_t *s, const char *allotd, const char *work_dir,
                           const char *data_dir, const char *log_path,
                           const char *const *extra, const char *env);
void cu_server_kill9(cu_server_t *s);
/* SIGTERM, then waits: the exit status (-signal if killed by one); fails
 * the test after timeout_ms. */
int cu_server_stop(cu_server_t *s, int timeout_ms);
/* Waits for an exit on its own: the exit status, or INT32_MIN on timeout
 * (the server still runs). */
int cu_server_wait(cu_server_t *s, int timeout_ms);
/* True when log_path contains needle. */
bool cu_log_contains(const char *log_path, const char *needle);

/* Runs argv, stdout into out (NUL-terminated, truncated to cap), stderr
 * appended to err_path (or inherited when NULL). Returns the exit status,
 * or -1 on a signal or timeout. */
int cu_run(const char *const *argv, char *out, size_t cap, const char *err_path,
           int timeout_ms);

/* "state_digest":"<16 hex>" and "seq":N of a JSON object. */
bool cu_json_digest(const char *json, uint64_t *digest, uint64_t *seq);

/* Replays data_dir with allot-journal (JSON); until_seq 0 = all, and
 * no_snapshot replays from empty. Fails the test unless the tool exits 0
 * with a digest. */
void cu_journal_replay(const char *tool, const char *data_dir, uint64_t until_seq,
                       bool no_snapshot, const char *err_path, uint64_t *digest,
                       uint64_t *seq);

/* ---- the client ----------------------------------------------------------------- */

/* Connects or fails the test. */
allot_conn_t *cu_connect(uint16_t port, uint32_t inflight_max, uint32_t timeout_ms);
/* STATS into v[ALLOT_STAT_COUNT] or fails the test. */
void cu_stats(allot_conn_t *c, uint64_t *v);

/* A short form of an order as ORDER_GET sees it (tests send <= 4 lines). */
#define CU_LINES 4
typedef struct cu_order_obs {
    uint8_t result;
    uint8_t state;
    uint8_t policy;
    uint8_t line_count;
    uint8_t flags;                       /* ALLOT_ORDER_FLAG_* */
    uint64_t customer;
    uint64_t placed_ms;
    uint64_t deadline_ms;
    uint64_t sku[CU_LINES];
    uint32_t requested[CU_LINES];
    uint32_t allocated[CU_LINES];
    uint32_t queue_place[CU_LINES];      /* 0 = not waiting */
    uint8_t loc_count[CU_LINES];         /* where the allocated units sit */
    uint16_t loc[CU_LINES][ALLOT_LOCATIONS_MAX];
    uint32_t loc_units[CU_LINES][ALLOT_LOCATIONS_MAX];
} cu_order_obs_t;

/* ORDER_GET of n ids, pipelined; fails the test on any error. */
void cu_orders_get(allot_conn_t *c, const uint64_t *ids, size_t n, cu_order_obs_t *out);
/* SKU_GET of n ids, pipelined. */
void cu_skus_get(allot_conn_t *c, const uint64_t *ids, size_t n, allot_sku_result_t *out);

#endif
