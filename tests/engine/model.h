/*
 * A reference implementation of the engine's semantics, written to be
 * obviously right rather than fast: plain arrays and linear search, no
 * hashing, no heap, no code shared with src/engine. The model test runs it
 * side by side with the engine and compares every answer.
 *
 * It takes and answers the engine's own eng_op_t, so that one comparison
 * function covers both. What it does not model: line pool fragmentation
 * (the model test configures lines_max so that lines never run out) and
 * per-shard fill limits of the SKU table (the configurations keep shards
 * large or single).
 */
#ifndef ALLOT_TEST_MODEL_H
#define ALLOT_TEST_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct model model_t;

/* Uses skus_max, orders_max, limits_max, retain_max, retain_ms and
 * hold_max_ms of cfg. 0 or -ENOMEM. */
int model_init(model_t **out, const engine_config_t *cfg);
void model_deinit(model_t *m);

/* Same contract as engine_apply(): time never goes back, lapsed holds are
 * expired (at most EXPIRE_PER_STEP_MAX) before the batch. */
void model_apply(model_t *m, eng_op_t *ops, size_t n, uint64_t now_ms);

/* Same contract as engine_expire(). */
uint32_t model_expire(model_t *m, uint64_t now_ms, uint32_t max);

/* Fills seq, now_ms, skus, orders, orders_live, limit_entries and
 * holds_expired. */
void model_stats(const model_t *m, eng_stats_t *out);

/* Earliest deadline of a HELD order, UINT64_MAX when none. */
uint64_t model_next_deadline(const model_t *m);

/* Units of sku the customer holds or bought while the SKU had a limit. */
uint64_t model_limit_used(const model_t *m, uint64_t customer, uint64_t sku);

#endif
