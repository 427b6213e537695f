/*
 * A simulated disk behind the journal's storage interface (storage.h), for
 * tests that must see what a power cut leaves behind. kill -9 cannot: the
 * page cache survives the process, so a journal that never synced would
 * pass.
 *
 * Model. A file has two contents: the current one (what reads see) and the
 * durable one (what survives a power cut). pwritev and allocate change the
 * current content only and are remembered, in order, as unsynced changes;
 * sync and write_sync apply the file's unsynced changes to its durable
 * content. The directory (name -> file) has a current and a durable
 * mapping too: open(create), rename and unlink change the current mapping,
 * sync_dir makes it durable.
 *
 * sim_power_cut() reverts every file to its durable content and the
 * directory to its durable mapping. With a random source it also tears: for
 * each file, a random prefix of its unsynced changes reaches the disk, in
 * order, the last one only partly and with the last 512-byte sector it
 * touched filled with random bytes. (With one unsynced write per file,
 * which is what a journal in sync mode has, that is "the last unsynced
 * write is partly applied with its last sector torn".) After a cut the disk
 * is off: every call fails with -EIO until sim_power_on(), and descriptors
 * opened before the cut stay dead. The process that was using it is gone;
 * the test closes what is left of it, powers on, and recovers.
 *
 * Faults: the Nth call of an operation (counted from when the fault is
 * armed) fails. A failed write (EIO) reaches the current content, as a
 * page cache that took it and a disk that did not; a failed sync drops the
 * file's unsynced changes from what will ever become durable while reads
 * still see them, as Linux does after a failed fsync. A short write applies
 * the first half and fails. A CUT fault cuts the power in the middle of the
 * call (after a write reached the current content, before it is synced),
 * tearing with the random source given when it was armed; CUT_AFTER lets
 * the call complete and cuts the power as it returns, before the caller
 * can do anything with its success. STALL makes a write hang for a while
 * before it fails, as a dying disk does.
 *
 * Space: the disk has a capacity (unlimited by default). allocate, and
 * writes that grow a file, fail with -ENOSPC past it; raising the capacity
 * makes space "return".
 *
 * Thread-safe: one mutex. write_sync takes it twice (write, then sync), so
 * that a power cut from another thread can fall between the two.
 */
#ifndef ALLOT_TEST_SIM_DISK_H
#define ALLOT_TEST_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "journal/storage.h"

#define SIM_SECTOR 512u
#define SIM_CAPACITY_UNLIMITED UINT64_MAX

typedef struct sim_disk sim_disk_t;

enum sim_op {
    SIM_OP_PWRITEV = 0,
    SIM_OP_WRITE_SYNC = 1,
    SIM_OP_SYNC = 2,
    SIM_OP_SYNC_DIR = 3,
    SIM_OP_ALLOCATE = 4,
    SIM_OP_COUNT = 5,
};

enum sim_fault {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_EIO = 1,   /* fail with -EIO (a write reaches the current content) */
    SIM_FAULT_SHORT = 2, /* writes: the first half reaches the current content, -EIO */
    SIM_FAULT_CUT = 3,   /* power cut during the call, then -EIO */
    SIM_FAULT_CUT_AFTER = 4, /* the call completes (0), then the power is cut */
    SIM_FAULT_STALL = 5, /* writes: hang SIM_STALL_MS (a dying disk), then -EIO */
};

#define SIM_STALL_MS 300u

typedef struct sim_stats {
    uint64_t calls[SIM_OP_COUNT];
    uint64_t bytes_written;
    uint64_t faults_fired;
    uint64_t cuts;
    uint32_t open_fds;
    uint32_t files; /* names in the current directory */
} sim_stats_t;

/* splitmix64: the tests' deterministic random source. */
static inline uint64_t sim_rand(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t sim_rand_below(uint64_t *state, uint64_t n)
{
    return sim_rand(state) % n;
}

/* 0 or -ENOMEM. An empty, powered disk. */
int sim_init(sim_disk_t **out);
void sim_deinit(sim_disk_t *s);
/* The storage_t that the journal and recovery use. */
storage_t sim_storage(sim_disk_t *s);
/* A powered copy of s's current and durable state, without descriptors or
 * faults: a checkpoint a test can recover from again and again. */
int sim_clone(sim_disk_t *s, sim_disk_t **out);

/* Arms a fault on the nth call of op from now (1 = the next). One armed
 * fault per operation; nth 0 disarms. For the two CUT faults, rng_seed 0
 * cuts cleanly and any other value tears with it as the random source. */
void sim_fail_nth(sim_disk_t *s, enum sim_op op, uint64_t nth, enum sim_fault fault,
                  uint64_t rng_seed);
void sim_set_capacity(sim_disk_t *s, uint64_t bytes);
/* Bytes the files in the current directory take (their sizes). */
uint64_t sim_used(sim_disk_t *s);

/* Cuts the power: clean when rng is NULL, tearing with it otherwise. */
void sim_power_cut(sim_disk_t *s, uint64_t *rng);
void sim_power_on(sim_disk_t *s);
bool sim_powered(sim_disk_t *s);

/* Offline access for tests, as if a tool edited the disk with the server
 * stopped and synced: changes reach both contents. Names are looked up in
 * the current directory. 0, -ENOENT, -ENOMEM. */
int sim_file_read(sim_disk_t *s, const char *name, uint8_t **buf, size_t *len);
int sim_file_write(sim_disk_t *s, const char *name, const void *buf, size_t len, uint64_t off);
int sim_file_truncate(sim_disk_t *s, const char *name, uint64_t len);
int sim_file_remove(sim_disk_t *s, const char *name);
bool sim_file_exists(sim_disk_t *s, const char *name);
/* Names in the current directory starting with prefix. */
uint32_t sim_file_count(sim_disk_t *s, const char *prefix);

void sim_get_stats(sim_disk_t *s, sim_stats_t *out);

#endif
