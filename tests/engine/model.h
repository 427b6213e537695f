/*
 * A reference implementation of the engine's semantics, written to be
 * obviously right rather than fast: plain arrays and linear search, no
 * hashing, no heap, no code shared with src/engine. The model test runs it
 * side by side with the engine and compares every answer and every event.
 *
 * It takes and answers the engine's own eng_op_t (including ORDER_GET's
 * detail and SKU_GET's locations), so that one comparison function covers
 * both. What it does not model: line pool fragmentation (the model test
 * configures lines_max so that lines never run out) and per-shard fill
 * limits of the SKU table (the configurations keep shards large or single).
 */
#ifndef ALLOT_TEST_MODEL_H
#define ALLOT_TEST_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

typedef struct model model_t;

/* Uses skus_max, orders_max, limits_max, retain_max, retain_ms,
 * hold_max_ms, loc_skus_max, splits_max and waiting_max of cfg, taken as
 * they are (pass the configuration in force: engine_get_config()).
 * 0 or -ENOMEM. */
int model_init(model_t **out, const engine_config_t *cfg);
void model_deinit(model_t *m);

/* Events go to sink as the model derives them; NULL stops them. */
void model_set_event_sink(model_t *m, const eng_event_sink_t *sink);

/* Same contract as engine_apply(): time never goes back, lapsed holds and
 * waits are expired (at most EXPIRE_PER_STEP_MAX) before the batch, and a
 * drain step (at most DRAIN_PER_STEP_MAX fills of waiting lines) runs
 * after that expiry and again after the batch. */
void model_apply(model_t *m, eng_op_t *ops, size_t n, uint64_t now_ms);

/* Same contract as engine_expire(): at most max expiries, a drain step,
 * at most max retirements. */
uint32_t model_expire(model_t *m, uint64_t now_ms, uint32_t max);

/* Fills seq, now_ms, skus, orders, orders_live, limit_entries and
 * holds_expired. */
void model_stats(const model_t *m, eng_stats_t *out);

/* Earliest deadline of a HELD order or of a BACKORDERED order with a
 * maximum wait; UINT64_MAX when none. */
uint64_t model_next_deadline(const model_t *m);

/* Units of sku the customer holds, waits for or bought while the SKU had
 * a limit. */
uint64_t model_limit_used(const model_t *m, uint64_t customer, uint64_t sku);

/* Backorders expired while they waited (their maximum wait ran out). */
uint64_t model_waits_expired(const model_t *m);
/* Backorders cancelled while they waited. */
uint64_t model_waits_cancelled(const model_t *m);

/* How many times the model reached a lapsed order at the head of a queue
 * while handing out returning stock (it expires it first). */
uint64_t model_lapsed_at_head(const model_t *m);

#endif
