#include <errno.h>
#include <stdlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "idmap.h"

#define IDMAP_MIN 1024u

static uint64_t slot_of(const idmap_t *m, uint64_t id)
{
    return XXH3_64bits(&id, sizeof id) & m->mask;
}

int idmap_init(idmap_t *m, uint64_t count_max)
{
    m->count = 0;
    m->count_max = count_max ? count_max : 1;
    m->mask = IDMAP_MIN - 1;
    m->slots = calloc(IDMAP_MIN, sizeof *m->slots);
    return m->slots ? 0 : -ENOMEM;
}

void idmap_deinit(idmap_t *m)
{
    free(m->slots);
    m->slots = NULL;
    m->count = 0;
}

uint32_t *idmap_get(const idmap_t *m, uint64_t id)
{
    if (id == 0)
        return NULL;
    for (uint64_t i = slot_of(m, id);; i = (i + 1) & m->mask) {
        idmap_slot_t *s = &m->slots[i];
        if (s->id == id)
            return &s->value;
        if (s->id == 0)
            return NULL;
    }
}

/* Doubles the table (kept at most half full). */
static int grow(idmap_t *m)
{
    uint64_t size = (m->mask + 1) * 2;
    idmap_slot_t *old = m->slots;
    uint64_t old_size = m->mask + 1;
    idmap_slot_t *slots = calloc(size, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    m->slots = slots;
    m->mask = size - 1;
    for (uint64_t k = 0; k < old_size; k++) {
        if (!old[k].id)
            continue;
        uint64_t i = slot_of(m, old[k].id);
        while (slots[i].id)
            i = (i + 1) & m->mask;
        slots[i] = old[k];
    }
    free(old);
    return 0;
}

int idmap_put(idmap_t *m, uint64_t id, uint32_t value)
{
    if (id == 0)
        return -EINVAL;
    uint32_t *v = idmap_get(m, id);
    if (v) {
        *v = value;
        return 0;
    }
    if (m->count >= m->count_max)
        return -ENOSPC;
    if ((m->count + 1) * 2 > m->mask + 1) {
        int rc = grow(m);
        if (rc != 0)
            return rc;
    }
    uint64_t i = slot_of(m, id);
    while (m->slots[i].id)
        i = (i + 1) & m->mask;
    m->slots[i] = (idmap_slot_t){.id = id, .value = value};
    m->count++;
    return 0;
}

bool idmap_del(idmap_t *m, uint64_t id)
{
    if (id == 0)
        return false;
    uint64_t i = slot_of(m, id);
    while (m->slots[i].id != id) {
        if (m->slots[i].id == 0)
            return false;
        i = (i + 1) & m->mask;
    }
    /* Backward shift: pull later entries of the probe run into the hole
     * unless that would move one before its home slot. */
    uint64_t hole = i;
    for (uint64_t j = (hole + 1) & m->mask; m->slots[j].id; j = (j + 1) & m->mask) {
        uint64_t home = slot_of(m, m->slots[j].id);
        bool movable = ((j - home) & m->mask) >= ((j - hole) & m->mask);
        if (movable) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole] = (idmap_slot_t){0};
    m->count--;
    return true;
}

void idmap_each(const idmap_t *m, void (*fn)(void *ctx, uint64_t id, uint32_t value), void *ctx)
{
    for (uint64_t i = 0; i <= m->mask; i++)
        if (m->slots[i].id)
            fn(ctx, m->slots[i].id, m->slots[i].value);
}
