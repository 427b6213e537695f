/*
 * The simulated disk itself: every crash test is only as good as its
 * model of what survives a power cut, so the model is pinned down here.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "sim_disk.h"

static sim_disk_t *sim;
static storage_t st;

static void setup(void)
{
    cr_assert_eq(sim_init(&sim), 0);
    st = sim_storage(sim);
}

static void teardown(void) { sim_deinit(sim); }

TestSuite(sim_disk, .init = setup, .fini = teardown, .timeout = 30);

static int open_file(const char *name, bool create)
{
    int fd = -1;
    cr_assert_eq(st.ops->open(st.ctx, name, create, &fd), 0, "open %s", name);
    return fd;
}

static int write_at(int fd, const void *buf, size_t len, uint64_t off, bool sync)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    return sync ? st.ops->write_sync(st.ctx, fd, &iov, 1, off)
                : st.ops->pwritev(st.ctx, fd, &iov, 1, off);
}

static void expect_content(const char *name, const void *want, size_t len)
{
    uint8_t *buf;
    size_t n;
    cr_assert_eq(sim_file_read(sim, name, &buf, &n), 0, "%s missing", name);
    cr_assert_eq(n, len, "%s: %zu bytes, want %zu", name, n, len);
    cr_assert(memcmp(buf, want, len) == 0, "%s: content differs", name);
    free(buf);
}

static void reboot(uint64_t *rng)
{
    sim_power_cut(sim, rng);
    cr_assert_not(sim_powered(sim));
    sim_power_on(sim);
}

/* A durable file "a" holding "hello". */
static int durable_hello(void)
{
    int fd = open_file("a", true);
    cr_assert_eq(write_at(fd, "hello", 5, 0, true), 0);
    cr_assert_eq(st.ops->sync_dir(st.ctx), 0);
    return fd;
}

Test(sim_disk, write_sync_survives_a_cut)
{
    durable_hello();
    reboot(NULL);
    expect_content("a", "hello", 5);
}

Test(sim_disk, unsynced_write_is_lost)
{
    int fd = durable_hello();
    cr_assert_eq(write_at(fd, "XYZ", 3, 8, false), 0);
    expect_content("a", "hello\0\0\0XYZ", 11); /* reads see it */
    reboot(NULL);
    expect_content("a", "hello", 5);
}

Test(sim_disk, sync_makes_writes_and_allocation_durable)
{
    int fd = durable_hello();
    cr_assert_eq(write_at(fd, "XYZ", 3, 1, false), 0);
    cr_assert_eq(st.ops->allocate(st.ctx, fd, 16), 0);
    cr_assert_eq(st.ops->sync(st.ctx, fd), 0);
    reboot(NULL);
    expect_content("a", "hXYZo\0\0\0\0\0\0\0\0\0\0\0", 16);
}

Test(sim_disk, creation_needs_sync_dir)
{
    int fd = open_file("b", true);
    cr_assert_eq(write_at(fd, "data", 4, 0, true), 0);
    reboot(NULL);
    cr_assert_not(sim_file_exists(sim, "b"), "a file created without sync_dir survived");
}

Test(sim_disk, rename_and_unlink_need_sync_dir)
{
    durable_hello();
    cr_assert_eq(st.ops->rename(st.ctx, "a", "c"), 0);
    cr_assert(sim_file_exists(sim, "c"));
    reboot(NULL);
    cr_assert(sim_file_exists(sim, "a") && !sim_file_exists(sim, "c"));

    cr_assert_eq(st.ops->rename(st.ctx, "a", "c"), 0);
    cr_assert_eq(st.ops->sync_dir(st.ctx), 0);
    reboot(NULL);
    cr_assert(!sim_file_exists(sim, "a") && sim_file_exists(sim, "c"));
    expect_content("c", "hello", 5);

    cr_assert_eq(st.ops->unlink(st.ctx, "c"), 0);
    cr_assert_not(sim_file_exists(sim, "c"));
    reboot(NULL);
    cr_assert(sim_file_exists(sim, "c"), "an unlink without sync_dir survived");
}

Test(sim_disk, the_disk_is_dead_until_power_on)
{
    int fd = durable_hello();
    sim_power_cut(sim, NULL);
    int fd2;
    uint64_t size;
    cr_assert_eq(st.ops->open(st.ctx, "a", false, &fd2), -EIO);
    cr_assert_eq(write_at(fd, "x", 1, 0, true), -EIO);
    cr_assert_eq(st.ops->sync_dir(st.ctx), -EIO);
    sim_power_on(sim);
    /* The old process's descriptors stay dead; closing them is harmless. */
    cr_assert_eq(st.ops->size(st.ctx, fd, &size), -EIO);
    cr_assert_eq(st.ops->close(st.ctx, fd), 0);
    fd2 = open_file("a", false);
    cr_assert_eq(st.ops->size(st.ctx, fd2, &size), 0);
    cr_assert_eq(size, 5);
    cr_assert_eq(st.ops->close(st.ctx, fd2), 0);
    cr_assert_eq(st.ops->close(st.ctx, fd2), -EBADF, "a double close goes unnoticed");
}

/* The tear: a prefix of the write's sectors, the last of them random. */
Test(sim_disk, a_cut_tears_the_last_sector_of_an_unsynced_write)
{
    enum { SIZE = 8 * SIM_SECTOR, OFF = 100, LEN = 3000 };
    uint8_t data[LEN];
    memset(data, 0xAB, sizeof data);
    unsigned nothing = 0, torn = 0, whole = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        sim_disk_t *d;
        cr_assert_eq(sim_init(&d), 0);
        storage_t s = sim_storage(d);
        int fd;
        cr_assert_eq(s.ops->open(s.ctx, "f", true, &fd), 0);
        cr_assert_eq(s.ops->allocate(s.ctx, fd, SIZE), 0);
        cr_assert_eq(s.ops->sync(s.ctx, fd), 0);
        cr_assert_eq(s.ops->sync_dir(s.ctx), 0);
        struct iovec iov = {.iov_base = data, .iov_len = LEN};
        cr_assert_eq(s.ops->pwritev(s.ctx, fd, &iov, 1, OFF), 0);
        uint64_t rng = seed;
        sim_power_cut(d, &rng);
        sim_power_on(d);
        uint8_t *b;
        size_t n;
        cr_assert_eq(sim_file_read(d, "f", &b, &n), 0);
        cr_assert_eq(n, SIZE);
        size_t last = 0; /* one past the last byte that is not zero */
        for (size_t i = 0; i < SIZE; i++)
            if (b[i])
                last = i + 1;
        for (size_t i = 0; i < OFF; i++)
            cr_assert_eq(b[i], 0, "seed %lu: byte %zu before the write changed", seed, i);
        if (last == 0) {
            nothing++;
        } else {
            size_t sector = (last - 1) / SIM_SECTOR;
            size_t good_end = sector * SIM_SECTOR > OFF ? sector * SIM_SECTOR : OFF;
            for (size_t i = OFF; i < good_end; i++)
                cr_assert_eq(b[i], 0xAB, "seed %lu: byte %zu before the torn sector", seed, i);
            bool intact = true;
            for (size_t i = good_end; i < last; i++)
                intact &= b[i] == 0xAB;
            if (intact && last == OFF + LEN)
                whole++;
            else if (!intact)
                torn++;
        }
        free(b);
        sim_deinit(d);
    }
    cr_assert(nothing > 0 && torn > 0 && whole > 0,
              "outcomes: nothing %u, torn %u, whole %u", nothing, torn, whole);
}

Test(sim_disk, failed_write_sync_never_becomes_durable)
{
    int fd = durable_hello();
    sim_fail_nth(sim, SIM_OP_WRITE_SYNC, 2, SIM_FAULT_EIO, 0);
    cr_assert_eq(write_at(fd, "1", 1, 5, true), 0);
    cr_assert_eq(write_at(fd, "2", 1, 6, true), -EIO);
    cr_assert_eq(write_at(fd, "3", 1, 7, true), 0);
    expect_content("a", "hello123", 8); /* the page cache has it */
    reboot(NULL);
    /* ...the disk does not, although a later sync succeeded. */
    expect_content("a", "hello1\0" "3", 8);
    sim_stats_t s;
    sim_get_stats(sim, &s);
    cr_assert_eq(s.faults_fired, 1);
}

Test(sim_disk, failed_sync_drops_what_it_covered)
{
    int fd = durable_hello();
    sim_fail_nth(sim, SIM_OP_SYNC, 1, SIM_FAULT_EIO, 0);
    cr_assert_eq(write_at(fd, "!", 1, 0, false), 0);
    cr_assert_eq(st.ops->sync(st.ctx, fd), -EIO);
    cr_assert_eq(st.ops->sync(st.ctx, fd), 0, "a retried sync succeeds ...");
    reboot(NULL);
    expect_content("a", "hello", 5); /* ... and means nothing */
}

Test(sim_disk, short_write_applies_half)
{
    int fd = durable_hello();
    sim_fail_nth(sim, SIM_OP_WRITE_SYNC, 1, SIM_FAULT_SHORT, 0);
    cr_assert_eq(write_at(fd, "ABCDEFGH", 8, 5, true), -EIO);
    expect_content("a", "helloABCD", 9);
}

Test(sim_disk, cut_fault_fires_inside_the_call)
{
    int fd = durable_hello();
    sim_fail_nth(sim, SIM_OP_WRITE_SYNC, 1, SIM_FAULT_CUT, 7);
    cr_assert_eq(write_at(fd, "world", 5, 5, true), -EIO);
    cr_assert_not(sim_powered(sim));
    sim_power_on(sim);
    uint8_t *b;
    size_t n;
    cr_assert_eq(sim_file_read(sim, "a", &b, &n), 0);
    cr_assert(n >= 5 && memcmp(b, "hello", 5) == 0);
    free(b);
}

Test(sim_disk, cut_after_lets_the_call_complete)
{
    int fd = durable_hello();
    sim_fail_nth(sim, SIM_OP_WRITE_SYNC, 1, SIM_FAULT_CUT_AFTER, 0);
    cr_assert_eq(write_at(fd, "world", 5, 5, true), 0, "the call itself succeeds");
    cr_assert_not(sim_powered(sim));
    cr_assert_eq(write_at(fd, "!", 1, 10, true), -EIO, "nothing after it does");
    sim_power_on(sim);
    expect_content("a", "helloworld", 10);

    cr_assert_eq(st.ops->rename(st.ctx, "a", "b"), 0);
    sim_fail_nth(sim, SIM_OP_SYNC_DIR, 1, SIM_FAULT_CUT_AFTER, 0);
    cr_assert_eq(st.ops->sync_dir(st.ctx), 0);
    sim_power_on(sim);
    cr_assert(sim_file_exists(sim, "b") && !sim_file_exists(sim, "a"));
}

Test(sim_disk, capacity_refuses_then_returns)
{
    sim_set_capacity(sim, 8192);
    int a = open_file("a", true), b = open_file("b", true);
    cr_assert_eq(st.ops->allocate(st.ctx, a, 4096), 0);
    cr_assert_eq(st.ops->allocate(st.ctx, b, 8192), -ENOSPC);
    cr_assert_eq(st.ops->allocate(st.ctx, b, 4096), 0);
    cr_assert_eq(sim_used(sim), 8192);
    cr_assert_eq(write_at(a, "x", 1, 4095, true), 0, "a write inside the allocation");
    cr_assert_eq(write_at(a, "x", 1, 4096, true), -ENOSPC, "a write that grows the file");
    sim_set_capacity(sim, SIM_CAPACITY_UNLIMITED);
    cr_assert_eq(st.ops->allocate(st.ctx, b, 1 << 20), 0);
}

Test(sim_disk, clone_is_a_separate_disk)
{
    int fd = durable_hello();
    cr_assert_eq(write_at(fd, "!", 1, 5, false), 0);
    sim_disk_t *c;
    cr_assert_eq(sim_clone(sim, &c), 0);
    sim_power_cut(c, NULL);
    sim_power_on(c);
    uint8_t *b;
    size_t n;
    cr_assert_eq(sim_file_read(c, "a", &b, &n), 0);
    cr_assert(n == 5 && memcmp(b, "hello", 5) == 0);
    free(b);
    expect_content("a", "hello!", 6);
    sim_deinit(c);
}

Test(sim_disk, listing_sees_the_current_directory)
{
    durable_hello();
    open_file("journal-x", true);
    cr_assert_eq(sim_file_count(sim, "journal-"), 1);
    cr_assert_eq(sim_file_count(sim, ""), 2);
    cr_assert_eq(sim_file_remove(sim, "a"), 0);
    reboot(NULL);
    cr_assert_eq(sim_file_count(sim, ""), 0);
}

/* A writer thread appends with write_sync while the test cuts the power:
 * what survives is a prefix of what was written, up to one torn sector. */
typedef struct appender {
    storage_t st;
    int fd;
    uint64_t acked; /* bytes whose write_sync returned 0 */
} appender_t;

static void *append_main(void *arg)
{
    appender_t *a = arg;
    uint8_t chunk[700];
    for (uint64_t off = 0;; off += sizeof chunk) {
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (uint8_t)(1 + (off + i) % 251);
        struct iovec iov = {.iov_base = chunk, .iov_len = sizeof chunk};
        if (a->st.ops->write_sync(a->st.ctx, a->fd, &iov, 1, off) != 0)
            return NULL;
        __atomic_store_n(&a->acked, off + sizeof chunk, __ATOMIC_RELEASE);
    }
}

Test(sim_disk, concurrent_writer_and_cut)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        sim_disk_t *d;
        cr_assert_eq(sim_init(&d), 0);
        appender_t a = {.st = sim_storage(d)};
        cr_assert_eq(a.st.ops->open(a.st.ctx, "f", true, &a.fd), 0);
        cr_assert_eq(a.st.ops->sync_dir(a.st.ctx), 0);
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, append_main, &a), 0);
        while (__atomic_load_n(&a.acked, __ATOMIC_ACQUIRE) < seed * 2000)
            sched_yield();
        uint64_t acked = __atomic_load_n(&a.acked, __ATOMIC_ACQUIRE);
        uint64_t rng = seed;
        sim_power_cut(d, &rng);
        cr_assert_eq(pthread_join(t, NULL), 0);
        sim_power_on(d);
        uint8_t *b;
        size_t n;
        cr_assert_eq(sim_file_read(d, "f", &b, &n), 0);
        cr_assert_geq(n, acked, "seed %lu: %zu bytes survived, %lu were synced", seed, n, acked);
        for (size_t i = 0; i < acked; i++)
            cr_assert_eq(b[i], (uint8_t)(1 + i % 251), "seed %lu: byte %zu", seed, i);
        free(b);
        sim_deinit(d);
    }
}
