/*
 * The executor: one owner thread, one pair of SPSC rings per producer.
 *
 * Hand-off is by pointer through rings of release/acquire indices; the
 * eventfds only wake sleepers and carry no data (sanitizers cannot see
 * synchronisation through them, and nothing relies on it). The owner spins
 * briefly when idle before sleeping, because a wake-up costs more than a
 * short spin at the request rates the server sees under load.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/limits.h"
#include "common/log.h"
#include "common/verify.h"
#include "engine/exec.h"

#define SPIN_ROUNDS 2000u
#define RING_SIZE_DEFAULT 64u
#define TICK_MS_DEFAULT 10u

typedef struct ring {
    _Atomic uint32_t head; /* consumer */
    char pad0[60];
    _Atomic uint32_t tail; /* producer */
    char pad1[60];
    exec_batch_t **slots;
} ring_t;

typedef struct producer {
    ring_t sub;  /* producer -> owner */
    ring_t done; /* owner -> producer */
    int wake_fd;
    uint32_t inflight; /* producer-local */
    char pad[56];
} producer_t;

struct exec {
    engine_t *engine;
    exec_config_t cfg;
    uint32_t mask;
    producer_t *prod;
    pthread_t owner;
    bool started;
    int owner_fd;
    _Atomic bool owner_sleeping;
    _Atomic bool stop;
    uint64_t next_tick_ms;
};

static bool ring_push(ring_t *r, uint32_t mask, exec_batch_t *b)
{
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head > mask)
        return false;
    r->slots[tail & mask] = b;
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return true;
}

static exec_batch_t *ring_pop(ring_t *r, uint32_t mask)
{
    uint32_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head == tail)
        return NULL;
    exec_batch_t *b = r->slots[head & mask];
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return b;
}

static uint64_t realtime_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t exec_clock(const exec_t *x) { return x->cfg.clock_ms(x->cfg.clock_ctx); }

static bool opcode_mutates(uint16_t opcode)
{
    return opcode != ALLOT_OP_SKU_GET && opcode != ALLOT_OP_ORDER_GET &&
           opcode != ALLOT_OP_STATS;
}

static void run_batch(exec_t *x, exec_batch_t *b)
{
    if (b->fn) {
        b->fn(x->engine, b->fn_ctx);
        b->mutating = false;
    } else {
        bool mutating = false;
        for (size_t i = 0; i < b->n && !mutating; i++)
            mutating = opcode_mutates(b->ops[i].opcode);
        b->mutating = mutating;
        uint8_t admit = ALLOT_OK;
        if (x->cfg.admit)
            admit = x->cfg.admit(x->cfg.journal_ctx, b->ops, b->n, EXPIRE_PER_STEP_MAX);
        if (admit == ALLOT_OK)
            engine_apply(x->engine, b->ops, b->n, exec_clock(x));
        else
            engine_refuse(x->engine, b->ops, b->n, admit);
        if (x->cfg.commit)
            x->cfg.commit(x->cfg.journal_ctx);
    }
    /* Every answer in the batch may depend on anything applied so far. */
    b->seq_needed = engine_seq(x->engine);
}

static void tick(exec_t *x)
{
    uint64_t now = exec_clock(x);
    if (now < x->next_tick_ms)
        return;
    x->next_tick_ms = now + x->cfg.tick_ms;
    /* With no room to journal expiries, holds wait for space. */
    if (!x->cfg.admit ||
        x->cfg.admit(x->cfg.journal_ctx, NULL, 0, EXPIRE_PER_STEP_MAX) == ALLOT_OK) {
        uint32_t n = engine_expire(x->engine, now, EXPIRE_PER_STEP_MAX);
        if (x->cfg.commit)
            x->cfg.commit(x->cfg.journal_ctx);
        if (n > 0)
            log_debug("expired %u holds at %llu ms", n, (unsigned long long)now);
    }
    if (x->cfg.tick_hook)
        x->cfg.tick_hook(x->cfg.tick_ctx, x->engine, now);
}

static void wake(int fd)
{
    uint64_t one = 1;
    ssize_t w = write(fd, &one, sizeof one);
    /* EAGAIN means the counter is already non-zero: the reader will wake. */
    VERIFY(w == (ssize_t)sizeof one || errno == EAGAIN);
}

/* One pass over every producer's ring. Returns batches run. */
static uint32_t owner_pass(exec_t *x)
{
    uint32_t total = 0;
    for (unsigned p = 0; p < x->cfg.producers; p++) {
        producer_t *pr = &x->prod[p];
        uint32_t n = 0;
        exec_batch_t *b;
        while ((b = ring_pop(&pr->sub, x->mask)) != NULL) {
            run_batch(x, b);
            /* The done ring has room: a producer never has more than
             * ring_size batches in flight. */
            VERIFY(ring_push(&pr->done, x->mask, b));
            n++;
        }
        if (n > 0)
            wake(pr->wake_fd);
        total += n;
    }
    return total;
}

static void owner_sleep(exec_t *x)
{
    atomic_store(&x->owner_sleeping, true);
    /* Re-check after announcing sleep: a producer that pushed before seeing
     * the flag did not write the eventfd. */
    if (owner_pass(x) > 0 || atomic_load(&x->stop)) {
        atomic_store(&x->owner_sleeping, false);
        return;
    }
    uint64_t now = exec_clock(x);
    int timeout = x->next_tick_ms > now ? (int)(x->next_tick_ms - now) : 0;
    struct pollfd pfd = {.fd = x->owner_fd, .events = POLLIN};
    int rc = poll(&pfd, 1, timeout);
    if (rc > 0) {
        uint64_t v;
        ssize_t r = read(x->owner_fd, &v, sizeof v);
        VERIFY(r == (ssize_t)sizeof v || errno == EAGAIN);
    } else {
        VERIFY(rc == 0 || errno == EINTR);
    }
    atomic_store(&x->owner_sleeping, false);
}

static void *owner_main(void *arg)
{
    exec_t *x = arg;
    uint32_t idle = 0;
    while (!atomic_load(&x->stop)) {
        if (owner_pass(x) > 0) {
            idle = 0;
        } else if (++idle > SPIN_ROUNDS) {
            owner_sleep(x);
            idle = 0;
        }
        tick(x);
    }
    /* Complete whatever was queued before the stop. */
    while (owner_pass(x) > 0) {
    }
    return NULL;
}

int exec_init(exec_t **out, engine_t *e, const exec_config_t *cfg)
{
    *out = NULL;
    if (!e || cfg->producers == 0 || cfg->producers > THREADS_MAX ||
        (cfg->inline_apply && cfg->producers != 1))
        return -EINVAL;
    exec_t *x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->engine = e;
    x->cfg = *cfg;
    if (x->cfg.ring_size == 0)
        x->cfg.ring_size = RING_SIZE_DEFAULT;
    if (x->cfg.tick_ms == 0)
        x->cfg.tick_ms = TICK_MS_DEFAULT;
    if (!x->cfg.clock_ms)
        x->cfg.clock_ms = realtime_ms;
    if ((x->cfg.ring_size & (x->cfg.ring_size - 1)) != 0) {
        free(x);
        return -EINVAL;
    }
    x->mask = x->cfg.ring_size - 1;
    x->owner_fd = -1;
    int rc = -ENOMEM;
    if (posix_memalign((void **)&x->prod, 64, cfg->producers * sizeof *x->prod) != 0)
        goto fail;
    memset(x->prod, 0, cfg->producers * sizeof *x->prod);
    for (unsigned p = 0; p < cfg->producers; p++)
        x->prod[p].wake_fd = -1;
    for (unsigned p = 0; p < cfg->producers; p++) {
        producer_t *pr = &x->prod[p];
        pr->sub.slots = calloc(x->cfg.ring_size, sizeof *pr->sub.slots);
        pr->done.slots = calloc(x->cfg.ring_size, sizeof *pr->done.slots);
        if (!pr->sub.slots || !pr->done.slots)
            goto fail;
        pr->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (pr->wake_fd < 0) {
            rc = -errno;
            goto fail;
        }
    }
    x->owner_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (x->owner_fd < 0) {
        rc = -errno;
        goto fail;
    }
    x->next_tick_ms = exec_clock(x) + x->cfg.tick_ms;
    *out = x;
    return 0;
fail:
    exec_deinit(x);
    return rc;
}

int exec_start(exec_t *x)
{
    if (x->cfg.inline_apply || x->started)
        return 0;
    int rc = pthread_create(&x->owner, NULL, owner_main, x);
    if (rc != 0)
        return -rc;
    x->started = true;
    return 0;
}

void exec_deinit(exec_t *x)
{
    if (!x)
        return;
    if (x->started) {
        atomic_store(&x->stop, true);
        wake(x->owner_fd);
        int rc = pthread_join(x->owner, NULL);
        VERIFY(rc == 0);
    }
    if (x->prod) {
        for (unsigned p = 0; p < x->cfg.producers; p++) {
            free(x->prod[p].sub.slots);
            free(x->prod[p].done.slots);
            if (x->prod[p].wake_fd >= 0)
                close(x->prod[p].wake_fd);
        }
        free(x->prod);
    }
    if (x->owner_fd >= 0)
        close(x->owner_fd);
    free(x);
}

int exec_submit(exec_t *x, unsigned producer, exec_batch_t *b)
{
    VERIFY(producer < x->cfg.producers);
    producer_t *pr = &x->prod[producer];
    if (pr->inflight == x->cfg.ring_size)
        return -EAGAIN;
    if (x->cfg.inline_apply) {
        run_batch(x, b);
        VERIFY(ring_push(&pr->done, x->mask, b));
        pr->inflight++;
        return 0;
    }
    VERIFY(ring_push(&pr->sub, x->mask, b));
    pr->inflight++;
    /* Pairs with the owner's store of owner_sleeping: either it sees our
     * batch on its re-check, or we see it asleep and wake it. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&x->owner_sleeping))
        wake(x->owner_fd);
    return 0;
}

size_t exec_poll(exec_t *x, unsigned producer, exec_batch_t **done, size_t max)
{
    VERIFY(producer < x->cfg.producers);
    producer_t *pr = &x->prod[producer];
    size_t n = 0;
    exec_batch_t *b;
    while (n < max && (b = ring_pop(&pr->done, x->mask)) != NULL) {
        done[n++] = b;
        pr->inflight--;
    }
    return n;
}

int exec_wake_fd(const exec_t *x, unsigned producer)
{
    VERIFY(producer < x->cfg.producers);
    return x->prod[producer].wake_fd;
}

void exec_tick(exec_t *x)
{
    VERIFY(x->cfg.inline_apply);
    tick(x);
}
