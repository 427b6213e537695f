#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "jtool.h"

int jt_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "allot-journal %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see allot-journal %s --help)\n", cmd);
    return JT_EXIT_USAGE;
}

void jt_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("allot-journal: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int jt_open_dir(const char *dir, storage_t *st, jr_dir_t *d)
{
    memset(d, 0, sizeof *d);
    st->ctx = NULL;
    int rc = storage_file_open_ro(st, dir);
    if (rc != 0) {
        jt_error("cannot open %s: %s", dir, strerror(-rc));
        return rc;
    }
    rc = jr_dir_list(st, d);
    if (rc == -E2BIG)
        jt_error("%s holds more than %u segments or snapshots", dir, STORAGE_LIST_MAX);
    else if (rc != 0)
        jt_error("cannot list %s: %s", dir, strerror(-rc));
    if (rc != 0)
        jt_close_dir(st, d);
    return rc;
}

void jt_close_dir(storage_t *st, jr_dir_t *d)
{
    jr_dir_free(d);
    storage_file_close(st);
}

void jt_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* A reader that closes the pipe is not an error: SIGPIPE is caught (not
 * fatal) and remembered, and the commands stop quietly with exit 0. */
static volatile sig_atomic_t sigpipe_seen;

static void on_sigpipe(int sig)
{
    (void)sig;
    sigpipe_seen = 1;
}

void jt_catch_sigpipe(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigpipe;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        jt_error("cannot catch SIGPIPE: %s", strerror(errno));
}

bool jt_stdout_closed(void) { return sigpipe_seen != 0; }

int jt_finish_stdout(int code)
{
    if (fflush(stdout) == 0 && !ferror(stdout))
        return code;
    if (jt_stdout_closed())
        return code;
    jt_error("writing the output failed: %s", strerror(errno));
    return JT_EXIT_PROBLEM;
}

uint64_t jt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t jt_segments_bytes(const storage_t *st, const jr_dir_t *d, size_t first)
{
    uint64_t total = 0;
    for (size_t i = first; i < d->nsegs; i++) {
        char name[STORAGE_NAME_MAX];
        jr_segment_name(name, d->segs[i]);
        int fd;
        uint64_t size = 0;
        if (st->ops->open(st->ctx, name, false, &fd) != 0)
            continue;
        int rc = st->ops->size(st->ctx, fd, &size);
        int crc = st->ops->close(st->ctx, fd);
        if (rc == 0 && crc == 0)
            total += size;
    }
    return total;
}

uint64_t jt_first_record_ms(const storage_t *st, uint64_t first_seq)
{
    jr_seg_t s;
    jr_item_t it;
    uint64_t t = UINT64_MAX;
    if (jr_seg_open(&s, st, first_seq, 4 * REC_SIZE_MAX) != 0)
        return t;
    if (s.header_ok && jr_seg_next(&s, &it) == 0 && it.kind == JR_RECORD)
        t = it.rec.time_ms;
    jr_seg_close(&s);
    return t;
}
