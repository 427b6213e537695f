/*
 * A map from non-zero 64-bit ids to 32-bit values: open addressing with
 * linear probing and backward-shift deletion (no tombstones, so a map that
 * sees many inserts and removals stays short-probed). It grows by doubling
 * up to a ceiling fixed at init, so what a journal can make the tool hold
 * is bounded whatever the journal says.
 */
#ifndef ALLOT_JTOOL_IDMAP_H
#define ALLOT_JTOOL_IDMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct idmap_slot {
    uint64_t id; /* 0 = empty */
    uint32_t value;
    uint32_t pad;
} idmap_slot_t;

typedef struct idmap {
    idmap_slot_t *slots;
    uint64_t mask;
    uint64_t count;
    uint64_t count_max; /* ceiling on entries */
} idmap_t;

/* 0 or -ENOMEM. count_max >= 1. */
int idmap_init(idmap_t *m, uint64_t count_max);
void idmap_deinit(idmap_t *m);

/* The value of id, or NULL. */
uint32_t *idmap_get(const idmap_t *m, uint64_t id);
/* Inserts or overwrites. 0, -ENOSPC at the ceiling, -ENOMEM, -EINVAL for
 * id 0. */
int idmap_put(idmap_t *m, uint64_t id, uint32_t value);
/* Removes id; false when it was absent. */
bool idmap_del(idmap_t *m, uint64_t id);

/* Calls fn for every entry, in table order. */
void idmap_each(const idmap_t *m, void (*fn)(void *ctx, uint64_t id, uint32_t value), void *ctx);

#endif
