#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/verify.h"
#include "journal/journal.h"

#define ROTATIONS_MAX 64u /* segments the ring can span, at most */
#define PREP_NAME "journal-next.prep"
#define NO_SPACE_RETRY_MS 1000u
#define ADMIT_WAIT_US_MAX 200000u /* for a segment still being prepared */

typedef struct rotation {
    uint64_t pos;       /* ring position where the new segment starts */
    uint64_t first_seq;
} rotation_t;

struct journal {
    journal_config_t cfg;
    uint8_t *ring;
    uint64_t ring_mask;

    /* owner thread only */
    uint64_t head;     /* bytes appended */
    uint64_t last_seq; /* of the last record appended */
    uint64_t seg_used; /* bytes of the current segment, header included */

    /* owner -> writer */
    _Atomic uint64_t sealed_pos;
    _Atomic uint64_t sealed_seq;
    rotation_t rot[ROTATIONS_MAX];
    _Atomic uint32_t rot_tail; /* owner */
    _Atomic uint32_t rot_head; /* writer */

    /* writer -> everyone */
    _Atomic uint64_t flushed_pos;
    _Atomic uint64_t written_seq;
    _Atomic uint64_t durable_seq;
    _Atomic bool next_ready;
    _Atomic bool no_space;
    _Atomic bool failed;
    _Atomic bool stop;
    _Atomic bool writer_sleeping;
    int error;

    /* writer thread only */
    int cur_fd, prep_fd;
    uint64_t cur_off;
    uint64_t last_sync_ms;
    uint64_t prep_retry_ms;
    uint64_t unsynced_seq;

    int wake_fd;
    int waiters[JOURNAL_WAITERS_MAX];
    _Atomic uint32_t nwaiters;
    pthread_t writer;
    bool started;
};

static const char *const durability_names[] = {"sync", "async", "none"};

const char *durability_name(durability_t d)
{
    return (unsigned)d < 3 ? durability_names[d] : "unknown";
}

int durability_parse(const char *s, durability_t *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, durability_names[i]) == 0) {
            *out = (durability_t)i;
            return 0;
        }
    return -1;
}

static uint64_t realtime_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t jclock(const journal_t *j) { return j->cfg.clock_ms(j->cfg.clock_ctx); }

static void segment_name(char *out, size_t len, uint64_t first_seq)
{
    snprintf(out, len, "journal-%020" PRIu64 ".seg", first_seq);
}

static void notify(int fd)
{
    uint64_t one = 1;
    ssize_t w = write(fd, &one, sizeof one);
    VERIFY(w == (ssize_t)sizeof one || errno == EAGAIN);
}

static void notify_waiters(journal_t *j)
{
    uint32_t n = atomic_load_explicit(&j->nwaiters, memory_order_acquire);
    for (uint32_t i = 0; i < n; i++)
        notify(j->waiters[i]);
}

/* Sticky: after this nothing is acknowledged again. */
static void fail(journal_t *j, const char *what, int err)
{
    if (atomic_load(&j->failed))
        return;
    j->error = err;
    log_error("journal: %s failed: %s; no further mutation will be acknowledged, "
              "answers waiting on the journal get UNAVAILABLE",
              what, strerror(-err));
    atomic_store(&j->failed, true);
    notify_waiters(j);
}

/* ---- writer thread -------------------------------------------------------- */

static int write_header(journal_t *j, int fd, uint64_t first_seq)
{
    uint8_t hdr[SEG_HEADER_SIZE];
    seg_header_t h = {.version = JOURNAL_VERSION, .first_seq = first_seq,
                      .created_ms = jclock(j), .segment_size = j->cfg.segment_bytes,
                      .params = j->cfg.params};
    seg_header_encode(hdr, &h);
    return storage_write_all(&j->cfg.storage, fd, hdr, sizeof hdr, 0);
}

/* Prepares the next segment ahead of need, off the critical path. */
static void prepare_next(journal_t *j)
{
    if (atomic_load(&j->next_ready) || j->prep_fd >= 0)
        return;
    if (atomic_load(&j->rot_head) != atomic_load(&j->rot_tail))
        return; /* the prepared file is still about to be renamed */
    uint64_t now = jclock(j);
    if (now < j->prep_retry_ms)
        return;
    const storage_t *st = &j->cfg.storage;
    int fd;
    int rc = st->ops->open(st->ctx, PREP_NAME, true, &fd);
    if (rc == 0) {
        rc = st->ops->allocate(st->ctx, fd, j->cfg.segment_bytes);
        if (rc != 0 && st->ops->close(st->ctx, fd) != 0)
            log_warn("journal: closing %s after a failed allocation failed", PREP_NAME);
    }
    if (rc == -ENOSPC) {
        if (!atomic_load(&j->no_space))
            log_error("journal: no space for the next %" PRIu64 " MiB segment; mutations "
                      "get READ_ONLY until space returns (retrying every %u ms)",
                      j->cfg.segment_bytes >> 20, NO_SPACE_RETRY_MS);
        atomic_store(&j->no_space, true);
        j->prep_retry_ms = now + NO_SPACE_RETRY_MS;
        return;
    }
    if (rc != 0) {
        fail(j, "preparing the next segment", rc);
        return;
    }
    if (atomic_load(&j->no_space))
        log_info("journal: space is back; accepting mutations again");
    atomic_store(&j->no_space, false);
    j->prep_fd = fd;
    atomic_store_explicit(&j->next_ready, true, memory_order_release);
}

/* Moves from the current segment to the prepared one. */
static int switch_segment(journal_t *j, uint64_t first_seq)
{
    const storage_t *st = &j->cfg.storage;
    VERIFY(j->prep_fd >= 0);
    char name[STORAGE_NAME_MAX];
    segment_name(name, sizeof name, first_seq);
    /* The header is durable before the name is: a crash in between leaves
     * a prepared file, never a segment without its header, which recovery
     * would refuse. */
    int rc = write_header(j, j->prep_fd, first_seq);
    if (rc == 0)
        rc = st->ops->sync(st->ctx, j->prep_fd);
    if (rc == 0)
        rc = st->ops->rename(st->ctx, PREP_NAME, name);
    if (rc == 0)
        rc = st->ops->sync_dir(st->ctx);
    if (rc != 0)
        return rc;
    rc = st->ops->close(st->ctx, j->cur_fd);
    j->cur_fd = j->prep_fd;
    j->prep_fd = -1;
    j->cur_off = SEG_HEADER_SIZE;
    log_info("journal: segment %s started", name);
    return rc;
}

/* Writes ring bytes [from, to) at the current segment offset. */
static int write_range(journal_t *j, uint64_t from, uint64_t to, bool sync)
{
    if (from == to)
        return sync ? j->cfg.storage.ops->sync(j->cfg.storage.ctx, j->cur_fd) : 0;
    struct iovec iov[2];
    int n = 0;
    uint64_t size = j->ring_mask + 1;
    uint64_t a = from & j->ring_mask;
    uint64_t len = to - from;
    uint64_t first = len < size - a ? len : size - a;
    iov[n++] = (struct iovec){.iov_base = j->ring + a, .iov_len = first};
    if (first < len)
        iov[n++] = (struct iovec){.iov_base = j->ring, .iov_len = len - first};
    const storage_t *st = &j->cfg.storage;
    int rc = sync ? st->ops->write_sync(st->ctx, j->cur_fd, iov, n, j->cur_off)
                  : st->ops->pwritev(st->ctx, j->cur_fd, iov, n, j->cur_off);
    if (rc == 0)
        j->cur_off += len;
    return rc;
}

/* One group: everything sealed since the last flush, across rotations. */
static int flush_group(journal_t *j, uint64_t to, bool sync)
{
    uint64_t from = atomic_load(&j->flushed_pos);
    for (;;) {
        uint32_t rh = atomic_load(&j->rot_head);
        if (rh == atomic_load_explicit(&j->rot_tail, memory_order_acquire))
            break;
        rotation_t r = j->rot[rh % ROTATIONS_MAX];
        if (r.pos > to)
            break;
        /* The old segment is finished: sync it whatever the mode. */
        int rc = write_range(j, from, r.pos, true);
        if (rc == 0)
            rc = switch_segment(j, r.first_seq);
        if (rc != 0)
            return rc;
        from = r.pos;
        atomic_store(&j->rot_head, rh + 1);
    }
    return write_range(j, from, to, sync);
}

static void writer_wait(journal_t *j, int timeout_ms)
{
    atomic_store(&j->writer_sleeping, true);
    if (atomic_load(&j->sealed_pos) != atomic_load(&j->flushed_pos) || atomic_load(&j->stop)) {
        atomic_store(&j->writer_sleeping, false);
        return;
    }
    struct pollfd p = {.fd = j->wake_fd, .events = POLLIN};
    int rc = poll(&p, 1, timeout_ms);
    if (rc > 0) {
        uint64_t v;
        ssize_t r = read(j->wake_fd, &v, sizeof v);
        VERIFY(r == (ssize_t)sizeof v || errno == EAGAIN);
    }
    atomic_store(&j->writer_sleeping, false);
}

static void writer_sync_async(journal_t *j)
{
    /* async mode: written data becomes durable at least every fsync_ms */
    uint64_t now = jclock(j);
    uint64_t written = atomic_load(&j->written_seq);
    if (written == atomic_load(&j->durable_seq) || now < j->last_sync_ms + j->cfg.fsync_ms)
        return;
    int rc = j->cfg.storage.ops->sync(j->cfg.storage.ctx, j->cur_fd);
    if (rc != 0) {
        fail(j, "fdatasync", rc);
        return;
    }
    j->last_sync_ms = now;
    atomic_store(&j->durable_seq, written);
}

static void *writer_main(void *arg)
{
    journal_t *j = arg;
    bool sync = j->cfg.durability == DURABILITY_SYNC;
    while (!atomic_load(&j->failed)) {
        prepare_next(j);
        uint64_t seq = atomic_load_explicit(&j->sealed_seq, memory_order_acquire);
        uint64_t pos = atomic_load_explicit(&j->sealed_pos, memory_order_acquire);
        if (pos == atomic_load(&j->flushed_pos)) {
            /* A publish between our two loads left a newer sequence number
             * whose bytes went out with the last flush: claim it now, or
             * its answers would wait for the next publish. */
            if (seq > atomic_load(&j->written_seq)) {
                atomic_store(&j->written_seq, seq);
                if (sync)
                    atomic_store(&j->durable_seq, seq);
                notify_waiters(j);
            }
            if (!sync)
                writer_sync_async(j);
            if (atomic_load(&j->stop))
                break;
            writer_wait(j, sync ? 100 : (int)j->cfg.fsync_ms);
            continue;
        }
        int rc = flush_group(j, pos, sync);
        if (rc != 0) {
            fail(j, sync ? "journal write + fdatasync" : "journal write", rc);
            break;
        }
        atomic_store_explicit(&j->flushed_pos, pos, memory_order_release);
        atomic_store(&j->written_seq, seq);
        if (sync)
            atomic_store(&j->durable_seq, seq);
        else
            writer_sync_async(j);
        notify_waiters(j);
    }
    if (!atomic_load(&j->failed)) {
        /* Shutdown: whatever the mode, what was written is synced. */
        int rc = j->cfg.storage.ops->sync(j->cfg.storage.ctx, j->cur_fd);
        if (rc != 0)
            fail(j, "final fdatasync", rc);
        else
            atomic_store(&j->durable_seq, atomic_load(&j->written_seq));
        notify_waiters(j);
    }
    return NULL;
}

/* ---- owner thread ---------------------------------------------------------- */

static void publish(journal_t *j)
{
    /* Position before sequence: a writer that reads the sequence first sees
     * at least the bytes that hold it. */
    atomic_store_explicit(&j->sealed_pos, j->head, memory_order_release);
    atomic_store_explicit(&j->sealed_seq, j->last_seq, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&j->writer_sleeping))
        notify(j->wake_fd);
}

void journal_commit(journal_t *j)
{
    if (j->head != atomic_load_explicit(&j->sealed_pos, memory_order_relaxed))
        publish(j);
}

/* Waits for the writer to free ring space. The engine thread stalls here
 * only when the disk cannot keep up with it. */
static bool wait_ring_space(journal_t *j, size_t len)
{
    uint64_t size = j->ring_mask + 1;
    if (j->head + len - atomic_load(&j->flushed_pos) <= size)
        return true;
    publish(j);
    while (j->head + len - atomic_load_explicit(&j->flushed_pos, memory_order_acquire) > size) {
        if (atomic_load(&j->failed))
            return false;
        struct timespec ts = {.tv_nsec = 50 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

static void ring_copy(journal_t *j, const uint8_t *src, size_t len)
{
    uint64_t size = j->ring_mask + 1;
    uint64_t a = j->head & j->ring_mask;
    size_t first = len < size - a ? len : (size_t)(size - a);
    memcpy(j->ring + a, src, first);
    memcpy(j->ring, src + first, len - first);
    j->head += len;
}

static void sink_record(void *ctx, const eng_record_t *rec)
{
    journal_t *j = ctx;
    size_t len = rec_encoded_size(rec);
    VERIFY(rec->seq == j->last_seq + 1);
    if (j->seg_used + len > j->cfg.segment_bytes) {
        /* journal_admit made sure the next segment was ready. */
        VERIFY(atomic_load_explicit(&j->next_ready, memory_order_acquire));
        uint32_t t = atomic_load(&j->rot_tail);
        VERIFY(t - atomic_load(&j->rot_head) < ROTATIONS_MAX);
        j->rot[t % ROTATIONS_MAX] = (rotation_t){.pos = j->head, .first_seq = rec->seq};
        atomic_store_explicit(&j->rot_tail, t + 1, memory_order_release);
        atomic_store(&j->next_ready, false);
        j->seg_used = SEG_HEADER_SIZE;
    }
    if (!wait_ring_space(j, len)) {
        /* Failed: nothing will be acknowledged anyway. The record is
         * dropped but numbered, so that the rest of the batch can finish
         * and the server answer UNAVAILABLE instead of aborting here. */
        j->last_seq = rec->seq;
        return;
    }
    uint64_t at = j->head & j->ring_mask;
    if (at + len <= j->ring_mask + 1) {
        /* the usual case: encoded in place, no copy */
        VERIFY(rec_encode(j->ring + at, rec) == len);
        j->head += len;
    } else {
        uint8_t buf[REC_SIZE_MAX]; /* the record wraps around the ring's end */
        VERIFY(rec_encode(buf, rec) == len);
        ring_copy(j, buf, len);
    }
    j->seg_used += len;
    j->last_seq = rec->seq;
}

eng_sink_t journal_sink(journal_t *j)
{
    return (eng_sink_t){.record = sink_record, .ctx = j};
}

/* The most bytes a batch can journal: each op's own record (the largest a
 * PLACE of its lines can take) and an expiry of the lapsed order it may
 * touch; the expiry step's records and a RETIRE; and the two drain steps
 * of the batch, each at most DRAIN_PER_STEP_MAX FILL records (stock that
 * comes back never fills waiting orders inline, see the engine's drain). */
static size_t worst_bytes(const eng_op_t *ops, size_t n, uint32_t expiries)
{
    const size_t small = REC_SMALL_SIZE_MAX;
    size_t total = (size_t)expiries * small + small + 2u * DRAIN_PER_STEP_MAX * small;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].opcode == ALLOT_OP_PLACE)
            total += rec_place_size_max(ops[i].line_count) + 2 * small; /* + RETIRE */
        else
            total += 2 * small;
    }
    return total;
}

uint8_t journal_admit(journal_t *j, const eng_op_t *ops, size_t n, uint32_t expiries)
{
    if (atomic_load(&j->failed))
        return ALLOT_UNAVAILABLE;
    size_t need = worst_bytes(ops, n, expiries);
    VERIFY(need <= j->cfg.segment_bytes - SEG_HEADER_SIZE && need <= j->ring_mask + 1);
    if (j->seg_used + need <= j->cfg.segment_bytes)
        return ALLOT_OK;
    /* The next segment may still be in preparation right after a
     * rotation: wait for it a little rather than refuse with free disk.
     * READ_ONLY is for a disk that is full. */
    for (uint32_t waited_us = 0; waited_us < ADMIT_WAIT_US_MAX; waited_us += 50) {
        if (atomic_load_explicit(&j->next_ready, memory_order_acquire))
            return ALLOT_OK;
        if (atomic_load(&j->no_space) || atomic_load(&j->failed))
            break;
        publish(j); /* the writer may be waiting for work to wake up */
        struct timespec ts = {.tv_nsec = 50 * 1000};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&j->failed))
        return ALLOT_UNAVAILABLE;
    return atomic_load_explicit(&j->next_ready, memory_order_acquire) ? ALLOT_OK
                                                                       : ALLOT_READ_ONLY;
}

/* ---- lifecycle -------------------------------------------------------------- */

int journal_open(journal_t **out, const journal_config_t *cfg, uint64_t next_seq)
{
    *out = NULL;
    if (cfg->durability == DURABILITY_NONE || cfg->segment_bytes < JOURNAL_SEGMENT_MIN ||
        cfg->buffer_bytes < 2 * ALLOT_FRAME_MAX * 4 ||
        (cfg->buffer_bytes & (cfg->buffer_bytes - 1)) != 0 || next_seq == 0)
        return -EINVAL;
    char name[STORAGE_NAME_MAX] = "";
    journal_t *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    j->cfg = *cfg;
    if (!j->cfg.clock_ms)
        j->cfg.clock_ms = realtime_ms;
    if (j->cfg.fsync_ms == 0)
        j->cfg.fsync_ms = JOURNAL_FSYNC_MS_DEFAULT;
    j->cur_fd = j->prep_fd = j->wake_fd = -1;
    j->ring_mask = cfg->buffer_bytes - 1;
    int rc = -ENOMEM;
    j->ring = aligned_alloc(4096, cfg->buffer_bytes);
    if (!j->ring)
        goto fail;
    j->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (j->wake_fd < 0) {
        rc = -errno;
        goto fail;
    }
    const storage_t *st = &j->cfg.storage;
    segment_name(name, sizeof name, next_seq);
    /* Built under the temporary name and renamed once its header is
     * durable, as at every rotation: a crash never leaves a segment without
     * a header, which recovery would refuse. */
    rc = st->ops->open(st->ctx, PREP_NAME, true, &j->cur_fd);
    if (rc == 0)
        rc = st->ops->allocate(st->ctx, j->cur_fd, cfg->segment_bytes);
    if (rc == 0)
        rc = write_header(j, j->cur_fd, next_seq);
    if (rc == 0)
        rc = st->ops->sync(st->ctx, j->cur_fd);
    if (rc == 0)
        rc = st->ops->rename(st->ctx, PREP_NAME, name);
    if (rc == 0)
        rc = st->ops->sync_dir(st->ctx);
    if (rc != 0) {
        log_error("journal: cannot create segment %s: %s", name, strerror(-rc));
        goto fail;
    }
    j->cur_off = SEG_HEADER_SIZE;
    j->seg_used = SEG_HEADER_SIZE;
    j->last_seq = next_seq - 1;
    atomic_store(&j->sealed_seq, next_seq - 1);
    atomic_store(&j->written_seq, next_seq - 1);
    atomic_store(&j->durable_seq, next_seq - 1);
    j->last_sync_ms = jclock(j);
    rc = pthread_create(&j->writer, NULL, writer_main, j);
    if (rc != 0) {
        rc = -rc;
        goto fail;
    }
    j->started = true;
    *out = j;
    return 0;
fail:
    if (j->cur_fd >= 0 && j->cfg.storage.ops->close(j->cfg.storage.ctx, j->cur_fd) != 0)
        log_warn("journal: closing %s failed", name);
    if (j->wake_fd >= 0)
        close(j->wake_fd);
    free(j->ring);
    free(j);
    return rc;
}

int journal_close(journal_t *j)
{
    if (!j)
        return 0;
    if (j->started) {
        journal_commit(j);
        atomic_store(&j->stop, true);
        notify(j->wake_fd);
        int rc = pthread_join(j->writer, NULL);
        VERIFY(rc == 0);
    }
    const storage_t *st = &j->cfg.storage;
    if (j->cur_fd >= 0 && st->ops->close(st->ctx, j->cur_fd) != 0)
        log_warn("journal: closing the current segment failed");
    if (j->prep_fd >= 0 && st->ops->close(st->ctx, j->prep_fd) != 0)
        log_warn("journal: closing the prepared segment failed");
    int err = atomic_load(&j->failed) ? (j->error ? j->error : -EIO) : 0;
    close(j->wake_fd);
    free(j->ring);
    free(j);
    return err;
}

uint64_t journal_release_seq(const journal_t *j)
{
    return j->cfg.durability == DURABILITY_SYNC ? atomic_load(&j->durable_seq)
                                                : atomic_load(&j->written_seq);
}

uint64_t journal_durable_seq(const journal_t *j) { return atomic_load(&j->durable_seq); }
bool journal_failed(const journal_t *j) { return atomic_load(&j->failed); }
bool journal_read_only(const journal_t *j) { return atomic_load(&j->no_space); }

int journal_add_waiter(journal_t *j, int efd)
{
    uint32_t n = atomic_load(&j->nwaiters);
    if (n >= JOURNAL_WAITERS_MAX)
        return -ENOSPC;
    j->waiters[n] = efd;
    atomic_store_explicit(&j->nwaiters, n + 1, memory_order_release);
    return 0;
}
