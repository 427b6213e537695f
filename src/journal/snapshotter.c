#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "journal/recover.h"
#include "journal/snapshotter.h"

#define SNAPSHOTS_KEPT 2u

void snapshotter_init(snapshotter_t *s, const char *dir, storage_t *st, journal_t *j,
                      uint64_t every_records, uint64_t every_ms, uint64_t start_seq,
                      uint64_t now_ms)
{
    memset(s, 0, sizeof *s);
    s->dir = dir;
    s->st = st;
    s->journal = j;
    s->every_records = every_records;
    s->every_ms = every_ms;
    s->last_seq = start_seq;
    s->last_ms = now_ms;
    s->child = -1;
}

typedef struct prune {
    uint64_t seqs[64];
    size_t n;
} prune_t;

static void prune_cb(void *arg, const char *name)
{
    prune_t *p = arg;
    uint64_t seq;
    if (journal_parse_snapshot_name(name, &seq) && p->n < 64)
        p->seqs[p->n++] = seq;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x > y ? -1 : x < y;
}

static void prune_old(const snapshotter_t *s)
{
    prune_t p = {.n = 0};
    if (s->st->ops->list(s->st->ctx, prune_cb, &p) != 0)
        return;
    qsort(p.seqs, p.n, sizeof p.seqs[0], cmp_desc);
    for (size_t i = SNAPSHOTS_KEPT; i < p.n; i++) {
        char name[STORAGE_NAME_MAX];
        snprintf(name, sizeof name, "snapshot-%020" PRIu64 ".snap", p.seqs[i]);
        int rc = s->st->ops->unlink(s->st->ctx, name);
        if (rc != 0)
            log_warn("snapshot: could not remove old %s: %s", name, strerror(-rc));
    }
}

static void publish_if_durable(snapshotter_t *s)
{
    if (!s->pending_seq)
        return;
    if (s->journal && journal_durable_seq(s->journal) < s->pending_seq)
        return;
    int rc = snapfile_publish(s->st, s->pending_seq);
    if (rc != 0)
        log_error("snapshot: publishing snapshot %" PRIu64 " failed: %s; the journal still "
                  "holds everything",
                  s->pending_seq, strerror(-rc));
    else {
        log_info("snapshot: snapshot at sequence %" PRIu64 " is in place", s->pending_seq);
        prune_old(s);
    }
    s->pending_seq = 0;
}

static void reap(snapshotter_t *s)
{
    if (s->child < 0)
        return;
    int status;
    pid_t r = waitpid(s->child, &status, WNOHANG);
    if (r == 0)
        return;
    if (r == s->child && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        s->pending_seq = s->child_seq;
    } else {
        log_error("snapshot: the writer for sequence %" PRIu64 " failed (status %d); "
                  "will try again at the next interval",
                  s->child_seq, status);
    }
    s->child = -1;
}

static void child_main(const snapshotter_t *s, const engine_t *e)
{
    /* The child must not outlive the server, nor hold its lock. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
        _exit(1);
    storage_file_forget_lock(s->st);
    storage_t st;
    int rc = storage_file_open(&st, s->dir, false);
    uint64_t bytes = 0;
    if (rc == 0)
        rc = snapfile_write_temp(&st, e, &bytes);
    if (rc != 0)
        log_error("snapshot: writing sequence %" PRIu64 " failed: %s", engine_seq(e),
                  strerror(-rc));
    _exit(rc == 0 ? 0 : 1);
}

void snapshotter_tick(snapshotter_t *s, const engine_t *e, uint64_t now_ms)
{
    reap(s);
    publish_if_durable(s);
    if (s->child >= 0 || s->pending_seq)
        return;
    uint64_t seq = engine_seq(e);
    bool due = (s->every_records && seq >= s->last_seq + s->every_records) ||
               (s->every_ms && now_ms >= s->last_ms + s->every_ms && seq > s->last_seq);
    if (!due)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        log_error("snapshot: fork failed: %s; will try again", strerror(errno));
        s->last_ms = now_ms;
        return;
    }
    if (pid == 0)
        child_main(s, e);
    log_info("snapshot: writing sequence %" PRIu64 " in process %d", seq, (int)pid);
    s->child = pid;
    s->child_seq = seq;
    s->last_seq = seq;
    s->last_ms = now_ms;
}

int snapshotter_final(snapshotter_t *s, const engine_t *e)
{
    if (s->child >= 0) {
        int status;
        if (waitpid(s->child, &status, 0) == s->child && WIFEXITED(status) &&
            WEXITSTATUS(status) == 0)
            s->pending_seq = s->child_seq;
        s->child = -1;
    }
    publish_if_durable(s);
    if (engine_seq(e) == 0 || engine_seq(e) == s->last_seq)
        return 0;
    uint64_t bytes = 0;
    int rc = snapfile_write(s->st, e, &bytes);
    if (rc == 0) {
        log_info("snapshot: final snapshot at sequence %" PRIu64 " (%" PRIu64 " bytes)",
                 engine_seq(e), bytes);
        prune_old(s);
    }
    return rc;
}
