/*
 * One network thread's io_uring loop.
 *
 * Setup asks for the best ring this kernel gives and steps down on
 * refusal, logging what it got:
 *   ring    SINGLE_ISSUER | DEFER_TASKRUN (completions run only when this
 *           thread waits: no interrupts mid-parse), COOP_TASKRUN,
 *           SUBMIT_ALL, a CQ NET_CQ_ENTRIES deep; then without the task-run
 *           flags; then plain.
 *   input   a provided-buffer ring (liburing 2.3 has no helper for it: the
 *           ring is mmap'ed and registered here) with multishot recv; when
 *           the kernel refuses the ring, plain recv into each connection's
 *           own buffer; when it refuses multishot, single-shot recv.
 *   accept  multishot; single-shot when refused.
 *
 * Each iteration: submit and wait, dispatch every completion by its tag,
 * then run the connections that have work (conn_run_kicks), hand the
 * gathered frames to the executor and take back what it finished, until
 * nothing is left to do without new input. Subscribers are kicked when the
 * event hub or the journal moved for them (subs_poll).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/verify.h"
#include "net/internal.h"

#define CQE_BATCH 256u
#define ACCEPT_RETRY_MS 100u
#define SWEEP_MS 100u
#define FORCE_GRACE_MS 2000u /* after the drain deadline: give up waiting */
#define SETTLE_ROUNDS 64u

uint64_t net_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t net_real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t net_durable(const net_thread_t *t)
{
    const net_config_t *cfg = &t->net->cfg;
    return cfg->durable_seq ? cfg->durable_seq(cfg->durable_ctx) : UINT64_MAX;
}

struct io_uring_sqe *net_sqe(net_thread_t *t)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
    if (sqe)
        return sqe;
    int rc = io_uring_submit(&t->ring);
    sqe = io_uring_get_sqe(&t->ring);
    if (!sqe)
        log_error("thread %u: submission queue stays full (submit: %s)", t->index,
                  rc < 0 ? strerror(-rc) : "ok");
    VERIFY(sqe != NULL);
    return sqe;
}

/* ---- setup --------------------------------------------------------------- */

static const struct ring_mode {
    unsigned flags;
    const char *name;
} ring_modes[] = {
    {IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
         IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
     "single issuer, deferred task run"},
    {IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
     "cooperative task run"},
    {IORING_SETUP_CQSIZE, "plain"},
    {0, "minimal"},
};

static int ring_setup(net_thread_t *t)
{
    size_t first = t->net->cfg.compat ? 2 : 0;
    int rc = -EINVAL;
    for (size_t i = first; i < sizeof ring_modes / sizeof ring_modes[0]; i++) {
        struct io_uring_params p = {.flags = ring_modes[i].flags,
                                    .cq_entries = NET_CQ_ENTRIES};
        rc = io_uring_queue_init_params(NET_SQ_ENTRIES, &t->ring, &p);
        if (rc == 0) {
            t->setup_flags = ring_modes[i].flags;
            log_debug("thread %u: io_uring %s%s", t->index, ring_modes[i].name,
                      p.features & IORING_FEAT_NODROP ? "" : " (completions may drop)");
            if (i > first)
                log_warn("thread %u: io_uring refused the preferred flags: using %s mode",
                         t->index, ring_modes[i].name);
            return 0;
        }
        if (rc != -EINVAL)
            break; /* ENOMEM, EPERM...: stepping down will not help */
    }
    log_error("thread %u: io_uring_queue_init: %s", t->index, strerror(-rc));
    return rc;
}

static int bufring_setup(net_thread_t *t)
{
    size_t ring_bytes = NET_BUF_COUNT * sizeof(struct io_uring_buf);
    size_t buf_bytes = (size_t)NET_BUF_COUNT * NET_BUF_SIZE;
    void *br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
    void *bufs = mmap(NULL, buf_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
    int rc = -ENOMEM;
    if (br == MAP_FAILED || bufs == MAP_FAILED)
        goto fail;
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)br, .ring_entries = NET_BUF_COUNT, .bgid = NET_BGID};
    rc = io_uring_register_buf_ring(&t->ring, &reg, 0);
    if (rc != 0)
        goto fail;
    t->br = br;
    t->bufs = bufs;
    io_uring_buf_ring_init(t->br);
    int mask = io_uring_buf_ring_mask(NET_BUF_COUNT);
    for (unsigned i = 0; i < NET_BUF_COUNT; i++)
        io_uring_buf_ring_add(t->br, t->bufs + (size_t)i * NET_BUF_SIZE, NET_BUF_SIZE,
                              (unsigned short)i, mask, (int)i);
    io_uring_buf_ring_advance(t->br, NET_BUF_COUNT);
    return 0;
fail:
    if (br != MAP_FAILED && munmap(br, ring_bytes) != 0)
        log_debug("munmap: %s", strerror(errno));
    if (bufs != MAP_FAILED && munmap(bufs, buf_bytes) != 0)
        log_debug("munmap: %s", strerror(errno));
    return rc;
}

void net_buf_return(net_thread_t *t, uint16_t bid)
{
    io_uring_buf_ring_add(t->br, t->bufs + (size_t)bid * NET_BUF_SIZE, NET_BUF_SIZE, bid,
                          io_uring_buf_ring_mask(NET_BUF_COUNT), 0);
    io_uring_buf_ring_advance(t->br, 1);
}

static void input_setup(net_thread_t *t)
{
    int rc = t->net->cfg.compat ? -EOPNOTSUPP : bufring_setup(t);
    t->buf_ring = rc == 0;
    t->multishot = rc == 0;
    t->accept_multishot = !t->net->cfg.compat;
    if (rc != 0 && !t->net->cfg.compat)
        log_warn("thread %u: provided buffer ring refused (%s): plain recv into "
                 "per-connection buffers",
                 t->index, strerror(-rc));
    if (t->index != 0)
        return;
    char input[96];
    if (t->buf_ring)
        snprintf(input, sizeof input,
                 "multishot recv into %u x %u KiB provided buffers per thread", NET_BUF_COUNT,
                 NET_BUF_SIZE / 1024u);
    else
        snprintf(input, sizeof input, "single-shot recv into per-connection buffers");
    log_info("io_uring%s: %s ring; %s; %s accept", t->net->cfg.compat ? " (--net-compat)" : "",
             t->setup_flags & IORING_SETUP_DEFER_TASKRUN ? "single-issuer deferred-taskrun"
             : t->setup_flags & IORING_SETUP_COOP_TASKRUN ? "cooperative-taskrun"
                                                          : "plain",
             input, t->accept_multishot ? "multishot" : "single-shot");
}

int net_thread_init(net_thread_t *t)
{
    int rc = ring_setup(t);
    if (rc != 0)
        return rc;
    t->ring_ready = true;
    if (!t->net->cfg.compat) {
        rc = io_uring_register_ring_fd(&t->ring);
        if (rc < 0)
            log_debug("thread %u: register_ring_fd: %s", t->index, strerror(-rc));
    }
    input_setup(t);
    rc = conn_table_init(t);
    if (rc == 0)
        rc = batch_pool_init(t);
    if (rc != 0)
        log_error("thread %u: out of memory for connection tables and batches", t->index);
    t->tick_ts.tv_nsec = (long long)NET_TICK_MS * 1000000;
    t->now_ms = net_mono_ms();
    t->durable_seen = net_durable(t);
    return rc;
}

void net_thread_deinit(net_thread_t *t)
{
    if (t->ring_ready) {
        io_uring_queue_exit(&t->ring); /* cancels whatever is still pending */
        t->ring_ready = false;
    }
    conn_table_deinit(t);
    batch_pool_deinit(t);
    if (t->br && munmap(t->br, NET_BUF_COUNT * sizeof(struct io_uring_buf)) != 0)
        log_debug("munmap: %s", strerror(errno));
    if (t->bufs && munmap(t->bufs, (size_t)NET_BUF_COUNT * NET_BUF_SIZE) != 0)
        log_debug("munmap: %s", strerror(errno));
    t->br = NULL;
    t->bufs = NULL;
}

/* ---- long-lived operations ----------------------------------------------- */

static void arm_accept(net_thread_t *t)
{
    if (t->accept_armed || t->listen_fd < 0 || t->draining)
        return;
    struct io_uring_sqe *sqe = net_sqe(t);
    if (t->accept_multishot)
        io_uring_prep_multishot_accept(sqe, t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, t->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ud_make(TAG_ACCEPT, 0, 0));
    t->accept_armed = true;
}

static void arm_tick(net_thread_t *t)
{
    struct io_uring_sqe *sqe = net_sqe(t);
    io_uring_prep_timeout(sqe, &t->tick_ts, 0, 0);
    io_uring_sqe_set_data64(sqe, ud_make(TAG_TICK, 0, 0));
}

/* Event fds (ours, the executor's, the signalfd) are non-blocking and
 * watched with a multishot poll; the loop reads them itself. */
static void arm_poll(net_thread_t *t, int fd, enum net_tag tag)
{
    struct io_uring_sqe *sqe = net_sqe(t);
    io_uring_prep_poll_multishot(sqe, fd, POLLIN);
    io_uring_sqe_set_data64(sqe, ud_make(tag, 0, 0));
}

static void arm_ctl(net_thread_t *t) { arm_poll(t, t->ctl_fd, TAG_CTRL); }

static void arm_signal(net_thread_t *t) { arm_poll(t, t->net->cfg.signal_fd, TAG_SIGNAL); }

static void arm_durable(net_thread_t *t) { arm_poll(t, t->durable_fd, TAG_DURABLE); }

static void arm_wake(net_thread_t *t)
{
    if (t->wake_armed || t->net->cfg.exec_inline)
        return;
    arm_poll(t, exec_wake_fd(t->net->cfg.exec, t->index), TAG_WAKE);
    t->wake_armed = true;
}

/* ---- completions ----------------------------------------------------------- */

static void close_listener(net_thread_t *t)
{
    if (t->listen_fd < 0)
        return;
    if (close(t->listen_fd) != 0)
        log_warn("thread %u: close listener: %s", t->index, strerror(errno));
    t->listen_fd = -1;
}

static void on_accept(net_thread_t *t, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        t->accept_armed = false;
    if (res >= 0) {
        conn_accepted(t, res);
    } else if (res == -EINVAL && t->accept_multishot) {
        log_warn("thread %u: multishot accept refused: using single-shot accept", t->index);
        t->accept_multishot = false;
    } else if (res != -ECANCELED) {
        /* EMFILE, ENFILE, ENOMEM...: retry later rather than spin */
        log_warn("thread %u: accept: %s; retrying in %u ms", t->index, strerror(-res),
                 ACCEPT_RETRY_MS);
        t->accept_retry_ms = t->now_ms + ACCEPT_RETRY_MS;
    }
    if (t->accept_armed)
        return;
    if (t->draining)
        close_listener(t);
    else if (t->now_ms >= t->accept_retry_ms)
        arm_accept(t);
}

static void drain_begin(net_thread_t *t)
{
    if (t->draining)
        return;
    uint32_t ms = t->net->cfg.drain_ms ? t->net->cfg.drain_ms : NET_DRAIN_MS;
    t->draining = true;
    t->drain_deadline_ms = t->now_ms + ms;
    if (t->index == 0)
        log_info("stopping: no new connections; finishing in-flight work (up to %u ms)", ms);
    if (t->subs_n > 0)
        log_info("thread %u: closing %u subscriber(s) once the events they may have are sent",
                 t->index, t->subs_n);
    if (t->accept_armed) {
        struct io_uring_sqe *sqe = net_sqe(t);
        io_uring_prep_cancel64(sqe, ud_make(TAG_ACCEPT, 0, 0), 0);
        io_uring_sqe_set_data64(sqe, ud_make(TAG_CANCEL, 0, 0));
    } else {
        close_listener(t);
    }
    for (uint32_t i = 0; i < t->conns_hw; i++)
        if (t->conns[i].state != CONN_FREE)
            conn_drain(t, &t->conns[i]);
}

static void drain_force(net_thread_t *t, const char *why)
{
    if (t->forced)
        return;
    t->forced = true;
    if (t->live > 0)
        log_warn("thread %u: %s: closing %u connection(s) with work left", t->index, why,
                 t->live);
    conn_sweep(t);
}

/* A poll completion: log a failure, say whether the poll must be re-armed. */
static bool poll_ended(net_thread_t *t, const char *what, int res, unsigned flags)
{
    if (res < 0 && res != -ECANCELED)
        log_error("thread %u: poll on %s: %s", t->index, what, strerror(-res));
    return !(flags & IORING_CQE_F_MORE);
}

static void on_ctrl(net_thread_t *t, int res, unsigned flags)
{
    uint64_t v;
    if (read(t->ctl_fd, &v, sizeof v) < 0 && errno != EAGAIN)
        log_error("thread %u: control eventfd: %s", t->index, strerror(errno));
    drain_begin(t);
    if (atomic_load(&t->net->stop_requests) > 1)
        drain_force(t, "asked to stop again");
    if (poll_ended(t, "control eventfd", res, flags))
        arm_ctl(t);
}

static void on_signal(net_thread_t *t, int res, unsigned flags)
{
    struct signalfd_siginfo si;
    ssize_t r;
    while ((r = read(t->net->cfg.signal_fd, &si, sizeof si)) == (ssize_t)sizeof si) {
        log_info("signal %s received%s", strsignal((int)si.ssi_signo),
                 atomic_load(&t->net->stop_requests) > 0 ? " again: closing connections now"
                                                         : "");
        net_stop(t->net);
    }
    if (r < 0 && errno != EAGAIN)
        log_error("signalfd read: %s", strerror(errno));
    if (poll_ended(t, "signalfd", res, flags))
        arm_signal(t);
}

/* The answers waiting for the journal are released by settle(), which
 * sees durable_seq move; this only wakes the loop for it. */
static void on_durable(net_thread_t *t, int res, unsigned flags)
{
    uint64_t v;
    if (read(t->durable_fd, &v, sizeof v) < 0 && errno != EAGAIN)
        log_error("thread %u: journal eventfd: %s", t->index, strerror(errno));
    if (poll_ended(t, "journal eventfd", res, flags))
        arm_durable(t);
}

static void on_wake(net_thread_t *t, int res, unsigned flags)
{
    uint64_t v;
    if (read(exec_wake_fd(t->net->cfg.exec, t->index), &v, sizeof v) < 0 && errno != EAGAIN)
        log_error("thread %u: executor eventfd: %s", t->index, strerror(errno));
    if (poll_ended(t, "executor eventfd", res, flags)) {
        t->wake_armed = false;
        arm_wake(t);
    }
}

static void on_tick(net_thread_t *t)
{
    if (t->net->cfg.exec_inline)
        exec_tick(t->net->cfg.exec);
    if (!t->accept_armed && !t->draining && t->now_ms >= t->accept_retry_ms)
        arm_accept(t);
    if (t->draining && t->now_ms >= t->drain_deadline_ms)
        drain_force(t, "drain time is up");
    if (t->now_ms >= t->next_sweep_ms) {
        t->next_sweep_ms = t->now_ms + SWEEP_MS;
        if (t->lingering > 0 || t->awaiting_hello > 0 || t->cutoffs > 0)
            conn_sweep(t);
    }
    arm_tick(t);
}

static void dispatch(net_thread_t *t, const struct io_uring_cqe *cqe)
{
    uint64_t ud = cqe->user_data;
    switch (ud_tag(ud)) {
    case TAG_ACCEPT:
        on_accept(t, cqe->res, cqe->flags);
        break;
    case TAG_RECV:
        conn_on_recv(t, conn_lookup(t, ud), cqe->res, cqe->flags);
        break;
    case TAG_SEND:
        conn_on_send(t, conn_lookup(t, ud), cqe->res);
        break;
    case TAG_CANCEL:
        break;
    case TAG_WAKE:
        on_wake(t, cqe->res, cqe->flags);
        break;
    case TAG_TICK:
        on_tick(t);
        break;
    case TAG_CTRL:
        on_ctrl(t, cqe->res, cqe->flags);
        break;
    case TAG_SIGNAL:
        on_signal(t, cqe->res, cqe->flags);
        break;
    case TAG_DURABLE:
        on_durable(t, cqe->res, cqe->flags);
        break;
    default:
        log_error("thread %u: completion with unknown tag %llx", t->index,
                  (unsigned long long)ud);
        VERIFY(0);
    }
}

static unsigned reap(net_thread_t *t)
{
    unsigned total = 0;
    for (;;) {
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&t->ring, head, cqe)
        {
            dispatch(t, cqe);
            if (++n == CQE_BATCH)
                break;
        }
        if (n == 0)
            return total;
        io_uring_cq_advance(&t->ring, n);
        total += n;
    }
}

/* ---- the loop --------------------------------------------------------------- */

/* Work that needs no new input: connections with something to do, frames
 * for the executor, finished batches. Returns true if some is left. */
/* Once, when the journal fails: answers waiting on it go out UNAVAILABLE,
 * then the server drains and stops with an error. */
static void journal_failed(net_thread_t *t)
{
    const net_config_t *cfg = &t->net->cfg;
    if (t->durable_failed || !cfg->durable_failed || !cfg->durable_failed(cfg->durable_ctx))
        return;
    t->durable_failed = true;
    uint32_t answered = 0;
    for (uint32_t i = 0; i < t->conns_hw; i++) {
        net_conn_t *c = &t->conns[i];
        if (c->state != CONN_FREE && c->gates_n > 0) {
            net_conn_fail_gated(t, c);
            answered++;
        }
    }
    log_error("thread %u: the journal failed: answered UNAVAILABLE on %u connection(s) "
              "waiting for it; stopping",
              t->index, answered);
    net_fail(t->net, -EIO);
}

static bool settle(net_thread_t *t)
{
    for (unsigned round = 0; round < SETTLE_ROUNDS; round++) {
        journal_failed(t);
        uint64_t durable = t->durable_failed ? t->durable_seen : net_durable(t);
        if (durable != t->durable_seen) {
            t->durable_seen = durable;
            conn_release_gated(t);
        }
        subs_poll(t, durable);
        conn_run_kicks(t);
        batch_flush(t);
        size_t done = batch_poll(t);
        if (done == 0 && t->kick.n == 0)
            return false;
    }
    return true;
}

static bool loop_drained(net_thread_t *t)
{
    if (!t->draining || t->live > 0 || t->accept_armed || !batch_idle(t))
        return t->forced && t->now_ms >= t->drain_deadline_ms + FORCE_GRACE_MS &&
               batch_idle(t);
    return true;
}

/* Thread 0 reads the signalfd: it stays until every other loop is done, so
 * that a second signal still reaches a drain that takes its time. */
static bool loop_finished(net_thread_t *t)
{
    if (!loop_drained(t))
        return false;
    return t->index != 0 || atomic_load(&t->net->loops_running) == 1;
}

static void loop_start(net_thread_t *t)
{
    arm_accept(t);
    arm_tick(t);
    arm_ctl(t);
    arm_wake(t);
    if (t->index == 0 && t->net->cfg.signal_fd >= 0)
        arm_signal(t);
    if (t->durable_fd >= 0)
        arm_durable(t);
    if (atomic_load(&t->net->stop_requests) > 0)
        drain_begin(t);
}

void net_thread_loop(net_thread_t *t)
{
    loop_start(t);
    bool busy = false;
    while (!loop_finished(t)) {
        int rc = busy ? io_uring_submit_and_get_events(&t->ring)
                      : io_uring_submit_and_wait(&t->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -EBUSY && rc != -ETIME && rc != -EAGAIN) {
            log_error("thread %u: io_uring_enter: %s", t->index, strerror(-rc));
            net_fail(t->net, rc);
            break;
        }
        t->now_ms = net_mono_ms();
        reap(t);
        busy = settle(t);
    }
    if (!batch_idle(t))
        log_error("thread %u: leaving with executor batches in flight", t->index);
    else if (t->live > 0)
        log_warn("thread %u: leaving %u connection(s) open", t->index, t->live);
}
