/*
 * allot client library, for protocol version 1.
 *
 * One allot_conn_t is one TCP connection to allotd. It offers two ways to
 * talk to the server:
 *
 *   - synchronous calls, one per operation (allot_place(), allot_sku_get(),
 *     ...): send one request, wait for its answer, decode it;
 *   - a pipelined API for load generators: build frames of many elements
 *     with allot_batch_t, allot_submit() many of them without waiting, then
 *     collect the answers with allot_poll() or allot_wait().
 *
 * A handle may also subscribe to the server's live events (allot_subscribe())
 * and read them as they arrive (allot_events_poll(), allot_events_wait())
 * while it goes on sending requests of either kind.
 *
 * Conventions
 *
 *   Every function that can fail returns 0 (or a count) on success and a
 *   negative errno value on failure. Business outcomes (insufficient stock,
 *   unknown order, limit exceeded...) are NOT failures: the call returns 0
 *   and the server's enum allot_result is in the output's `result` field.
 *
 *   A handle is not thread-safe: use it from one thread at a time. Separate
 *   handles are independent. The library has no global state, installs no
 *   signal handlers and never raises SIGPIPE (it sends with MSG_NOSIGNAL).
 *
 * Timeouts
 *
 *   Every request must be answered within the handle's timeout_ms, counted
 *   from the moment it was queued. When the oldest unanswered request runs
 *   past it, the handle is broken (see below) with -ETIMEDOUT.
 *
 * Failures and retries
 *
 *   A handle breaks when the server closes the connection, on an I/O error,
 *   on a timeout, when the server answers with something that is not valid
 *   protocol, or when it sends an ERROR frame. Then:
 *     - every request still in flight completes with an outcome-unknown
 *       error, -ECONNRESET (connection lost or unusable) or -ETIMEDOUT: the
 *       server may or may not have applied it;
 *     - the request an ERROR frame names completes with -EPROTO (-EACCES for
 *       UNAUTHORIZED, -EPROTONOSUPPORT for UNSUPPORTED_VERSION): the server
 *       refused that frame and applied none of it;
 *     - a request whose answer is not valid protocol completes with -EPROTO
 *       too, but its outcome is unknown (allot_last_error() tells the two
 *       apart);
 *     - every later call that would send something returns -ENOTCONN, and
 *       allot_last_error() says what happened. Close the handle and connect
 *       again; a broken handle never reconnects by itself.
 *   Retrying after an outcome-unknown error is safe when the same order ids
 *   are used: PLACE with an order id the server already applied, and
 *   CONFIRM, CANCEL and FULFILL of an order already in the target state,
 *   answer with the original outcome marked as a replay
 *   (allot_order_result_t.replay) and change nothing. RESTOCK and ADJUST are
 *   NOT idempotent (they add); SKU_SET is (it sets absolute values).
 */
#ifndef ALLOT_CLIENT_H
#define ALLOT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <allot/protocol.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ALLOT_DEFAULT_HOST "127.0.0.1"
#define ALLOT_DEFAULT_PORT 25568u
#define ALLOT_TIMEOUT_MS_DEFAULT 5000u
#define ALLOT_INFLIGHT_MAX_DEFAULT 64u   /* frames, pipelined API */
#define ALLOT_INFLIGHT_MAX_CEILING 65536u
#define ALLOT_ERROR_TEXT_MAX 256u        /* bytes of allot_last_error() */
#define ALLOT_BUFFER_BYTES_DEFAULT (ALLOT_FRAME_MAX + 64u * 1024u)
#define ALLOT_BUFFER_BYTES_MIN 8192u     /* the handshake and every
                                            synchronous call fit */

typedef struct allot_conn allot_conn_t;
typedef struct allot_batch allot_batch_t;

/* ---- SKU ids ----------------------------------------------------------- */

/* The SKU id of a string SKU: XXH3_64bits over strlen(name) bytes. Stable
 * across versions and platforms (XXH3's output is frozen). name must not be
 * NULL. */
uint64_t allot_sku_id(const char *name);

/* Same over len bytes that need not be NUL-terminated. */
uint64_t allot_sku_id_bytes(const void *name, size_t len);

/* snake_case name of a stat index below ALLOT_STAT_OPS ("state_digest",
 * "orders_live", ...); NULL for ALLOT_STAT_OPS and above. Static storage. */
const char *allot_stat_name(unsigned stat);

/* ---- connections ------------------------------------------------------- */

typedef struct allot_config {
    const char *host;      /* name or address; NULL = ALLOT_DEFAULT_HOST */
    uint16_t port;         /* 0 = ALLOT_DEFAULT_PORT */
    const void *token;     /* HELLO token; NULL or token_len 0 = none */
    size_t token_len;      /* at most ALLOT_TOKEN_MAX */
    uint32_t timeout_ms;   /* connect, handshake and every request;
                              0 = ALLOT_TIMEOUT_MS_DEFAULT */
    uint32_t inflight_max; /* frames in flight at once; 0 = default */
    uint32_t buffer_bytes; /* size of the read buffer and of the write
                              buffer each; 0 = ALLOT_BUFFER_BYTES_DEFAULT.
                              Smaller buffers (for many connections) bound
                              the frames: a request, and the largest answer
                              it could get, must each fit one buffer */
} allot_config_t;

/* What the server said in its HELLO answer. frame_max, batch_max and
 * lines_max are already clamped to the protocol's own limits, so a request
 * within them is within both. */
typedef struct allot_server_info {
    uint32_t version;
    uint32_t frame_max;
    uint32_t batch_max;
    uint32_t lines_max;
    uint64_t server_time_ms; /* wall clock at the handshake, ms since epoch */
} allot_server_info_t;

/* Fills cfg with the defaults above (all zero/NULL). */
void allot_config_init(allot_config_t *cfg);

/* Allocates a handle (buffers included; nothing more is allocated later)
 * and copies cfg, host and token: they need not outlive the call. No I/O.
 * Returns 0 and *out, -EINVAL (cfg NULL, token over ALLOT_TOKEN_MAX,
 * inflight_max over ALLOT_INFLIGHT_MAX_CEILING, buffer_bytes below
 * ALLOT_BUFFER_BYTES_MIN) or -ENOMEM. */
int allot_conn_new(allot_conn_t **out, const allot_config_t *cfg);

/* Resolves the host, connects (TCP_NODELAY) within timeout_ms, then does
 * the HELLO handshake within timeout_ms more. Returns:
 *   0                 connected; allot_server_info() is valid
 *   -EISCONN          already opened once (a handle connects only once)
 *   -EHOSTUNREACH     the host name could not be resolved
 *   -ECONNREFUSED, -ENETUNREACH, ...  the connect(2) error of the last
 *                     address tried
 *   -ETIMEDOUT        no connection or no answer within timeout_ms
 *   -ECONNRESET       the server closed the connection during the handshake
 *   -EACCES           the server refused the token (UNAUTHORIZED)
 *   -EPROTONOSUPPORT  the server does not speak version 1
 *   -EPROTO           any other ERROR frame, or an answer that is not valid
 *                     protocol
 *   -ENOMEM, -EMFILE  resources
 * On failure the handle is broken: allot_last_error() has the reason,
 * including the server's own message when it sent one. */
int allot_conn_open(allot_conn_t *c);

/* allot_conn_new() + allot_conn_open(). On failure *out is NULL and the
 * handle is already closed; use the two calls above to read the reason. */
int allot_connect(allot_conn_t **out, const allot_config_t *cfg);

/* Closes the socket and frees everything, buffers handed out included.
 * Requests in flight are abandoned (their outcome is unknown). NULL is a
 * no-op. */
void allot_conn_close(allot_conn_t *c);

/* The server's HELLO answer; NULL before a successful allot_conn_open().
 * Valid until allot_conn_close(). */
const allot_server_info_t *allot_server_info(const allot_conn_t *c);

/* A human-readable description of the last failure on c, "" if none.
 * Points into c: valid until the next call on c. */
const char *allot_last_error(const allot_conn_t *c);

/* 0 while usable; else the negative errno that broke the handle. */
int allot_conn_status(const allot_conn_t *c);

/* The socket, for waiting on several handles with poll(2) (wait for
 * POLLIN, and POLLOUT when allot_conn_wants_write() is true), then call
 * allot_poll(). Never read, write or close it yourself. -ENOTCONN when
 * there is none. */
int allot_conn_fd(const allot_conn_t *c);
bool allot_conn_wants_write(const allot_conn_t *c);

/* True for -ECONNRESET and -ETIMEDOUT: the server may or may not have
 * applied the request. (-EPROTO from an invalid answer is unknown too; see
 * the top of this file.) */
bool allot_outcome_unknown(int err);

/* ---- results ----------------------------------------------------------- */

/* One location of a SKU's stock, as SKU_GET reports it. */
typedef struct allot_sku_location {
    uint16_t location;         /* the location id; 0 is the default one */
    uint16_t priority;         /* higher is allocated from first */
    uint64_t on_hand;
    uint64_t allocated;
    uint64_t available;        /* on_hand - allocated (0 if the server ever
                                  reported allocated > on_hand) */
} allot_sku_location_t;

/* The answer to SKU_SET, RESTOCK, ADJUST and SKU_GET. Counters are those
 * after the operation, summed over the SKU's locations; with a result other
 * than ALLOT_OK they are whatever the server reported (zero for an unknown
 * SKU). */
typedef struct allot_sku_result {
    uint64_t sku;
    uint64_t on_hand;
    uint64_t allocated;
    uint64_t available;        /* on_hand - allocated (0 if the server's
                                  answer ever had allocated > on_hand) */
    uint64_t backorder_units;  /* units waiting in the SKU's backorder queue */
    uint32_t limit;            /* per customer, 0 = none */
    uint32_t reorder_point;
    uint32_t backorder_orders; /* orders in that queue (its depth) */
    uint8_t result;            /* enum allot_result */
    uint8_t location_count;    /* locations[] entries: only a SKU_GET
                                  answered OK has any (at least one) */
    allot_sku_location_t locations[ALLOT_LOCATIONS_MAX]; /* highest
                                  priority first, then lower id */
} allot_sku_result_t;

/* The answer to PLACE, CONFIRM, EXTEND, CANCEL and FULFILL. */
typedef struct allot_order_result {
    uint64_t order;
    uint64_t deadline_ms;      /* hold deadline (ms since epoch), 0 = none */
    uint8_t result;            /* enum allot_result */
    uint8_t state;             /* enum allot_state after the operation */
    bool replay;               /* an idempotent replay: nothing changed */
    uint8_t line_count;        /* allocated[] entries: a PLACE answered OK */
    uint32_t allocated[ALLOT_LINES_MAX]; /* per request line, in order */
} allot_order_result_t;

/* Where some of an order line's allocated units sit. */
typedef struct allot_line_location {
    uint16_t location;
    uint32_t units;
} allot_line_location_t;

typedef struct allot_order_line {
    uint64_t sku;
    uint32_t requested;
    uint32_t allocated;        /* held now; requested - allocated waits when
                                  queue_place is not 0 */
    uint32_t queue_place;      /* 0 = not waiting; 1 = first in the SKU's
                                  backorder queue, 2 = second, ... */
    uint8_t location_count;    /* locations[] entries */
    allot_line_location_t locations[ALLOT_LOCATIONS_MAX]; /* the allocated
                                  units by location, as the server lists
                                  them */
} allot_order_line_t;

/* The answer to ORDER_GET. For an unknown order result is
 * ALLOT_UNKNOWN_ORDER, state ALLOT_STATE_NONE and line_count 0. */
typedef struct allot_order_info {
    uint64_t order;
    uint64_t customer;
    uint64_t placed_ms;
    uint64_t deadline_ms;      /* hold deadline; for a BACKORDERED order the
                                  end of its maximum wait; 0 = none */
    uint8_t result;
    uint8_t state;
    uint8_t policy;            /* enum allot_policy */
    uint8_t line_count;
    uint8_t flags;             /* ALLOT_ORDER_FLAG_* */
    allot_order_line_t lines[ALLOT_LINES_MAX];
} allot_order_info_t;

/* One order line of a PLACE request. */
typedef struct allot_line {
    uint64_t sku;
    uint32_t qty;
} allot_line_t;

/* A PLACE request. lines is read during the call only. Fields left zero
 * (as designated initializers leave them) are the defaults. */
typedef struct allot_order_spec {
    uint64_t order;            /* client-chosen id, the idempotency key */
    uint64_t customer;
    uint32_t hold_ms;          /* 0 = CONFIRMED at once (for BACKORDER: once
                                  complete) */
    uint32_t max_wait_ms;      /* BACKORDER only: the order expires when it
                                  is still waiting after this long; 0 = it
                                  waits for ever. Not 0 with another policy
                                  is INVALID_ARGUMENT */
    uint8_t policy;            /* enum allot_policy: ALL_OR_NOTHING, PARTIAL
                                  or BACKORDER (each line takes what is
                                  available, the rest waits in the SKU's
                                  FIFO queue; state BACKORDERED) */
    uint16_t flags;            /* ALLOT_PLACE_FLAG_*: SINGLE_LOCATION never
                                  splits a line across locations (not with
                                  BACKORDER: INVALID_ARGUMENT) */
    const allot_line_t *lines;
    uint32_t line_count;       /* 1 .. server's lines_max */
} allot_order_spec_t;

/* ---- events ------------------------------------------------------------ */

/* One event of a subscription (see allot_subscribe()). Which fields mean
 * something depends on the type (enum allot_event in protocol.h):
 *   HOLD_EXPIRED      sku, order, value = units released, state EXPIRED
 *   BACKORDER_FILLED  sku, order, value = units filled, state after
 *   REORDER_POINT     sku, value = available (fell to the reorder point)
 *   SOLD_OUT          sku, value = 0
 *   RESTOCKED         sku, location, value = units added
 *   LOST              seq = the first event this handle did not get; no
 *                     event follows it (see allot_events_poll())
 * A type this header does not know is handed back as it came. */
typedef struct allot_event_record {
    uint64_t seq;              /* journal sequence number of its cause */
    uint64_t time_ms;          /* ms since epoch */
    uint64_t sku;
    uint64_t order;
    uint64_t value;
    uint8_t type;              /* enum allot_event */
    uint8_t state;             /* enum allot_state, or 0 */
    uint16_t location;
} allot_event_t;

/* The bit of an event type in allot_subscribe()'s types mask. */
#define ALLOT_EVENT_BIT(type) (UINT32_C(1) << (type))

/* Events a handle keeps unread (see allot_events_poll()). */
#define ALLOT_EVENT_QUEUE_MAX 4096u
/* A subscribed handle queues this many events: the minimum above plus a
 * read buffer's worth, so that one read never overflows a queue its
 * caller keeps draining. */
#define ALLOT_EVENT_QUEUE_CAP(buffer_bytes) \
    (ALLOT_EVENT_QUEUE_MAX + (buffer_bytes) / ALLOT_EV_SIZE)

/* The answer to SUBSCRIBE. */
typedef struct allot_subscription {
    uint64_t start_seq;        /* events with seq >= start_seq follow */
    uint64_t oldest_seq;       /* the oldest seq the server can still send */
    uint8_t result;            /* OK, TOO_OLD (from_seq < oldest_seq),
                                  INVALID_STATE, INVALID_ARGUMENT */
} allot_subscription_t;

/* ---- synchronous calls ------------------------------------------------- */
/*
 * Each sends one request, waits for its answer and decodes it into *out,
 * which the caller owns (nothing in it points into the handle). They return:
 *   0            the server answered; its verdict is out->result
 *   -EINVAL      a bad argument that cannot go on the wire (NULL out, no
 *                lines or more lines than the server allows)
 *   -EBUSY       pipelined requests are in flight on this handle: collect
 *                them first (sync calls expect the handle to themselves)
 *   -ENOTCONN    the handle is not open or already broken
 *   -ETIMEDOUT   no answer within timeout_ms: outcome unknown, handle broken
 *   -ECONNRESET  connection lost: outcome unknown, handle broken
 *   -EPROTO      the server sent an ERROR frame for this request (it was not
 *                applied) or an invalid answer (outcome unknown); broken
 *   -EACCES, -EPROTONOSUPPORT  an ERROR frame with UNAUTHORIZED or
 *                UNSUPPORTED_VERSION for this request; broken
 * On any negative return *out is left undefined and allot_last_error()
 * says why.
 */

/* Stock sits in up to ALLOT_LOCATIONS_MAX locations per SKU (u16 ids,
 * each with a u16 priority; location 0 with priority 0 is the default).
 * The calls without _at act on location 0 (allot_sku_set() sets its
 * priority to 0).
 *
 * SKU_SET sets the location's absolute on_hand and priority, and the SKU's
 * limit and reorder point (SKU-wide); it creates the SKU and the location
 * if new. A ninth location is CAPACITY; on_hand below what that location
 * has allocated is INSUFFICIENT_STOCK. */
int allot_sku_set(allot_conn_t *c, uint64_t sku, uint64_t on_hand,
                  uint32_t limit, uint32_t reorder_point,
                  allot_sku_result_t *out);
int allot_sku_set_at(allot_conn_t *c, uint64_t sku, uint16_t location,
                     uint16_t priority, uint64_t on_hand, uint32_t limit,
                     uint32_t reorder_point, allot_sku_result_t *out);
/* The location's on_hand += qty (the location is created, priority 0, if
 * new); the units go to the SKU's backorder queue first, oldest first. */
int allot_restock(allot_conn_t *c, uint64_t sku, uint64_t qty,
                  allot_sku_result_t *out);
int allot_restock_at(allot_conn_t *c, uint64_t sku, uint16_t location,
                     uint64_t qty, allot_sku_result_t *out);
/* The location's on_hand += delta; a decrease below what is available
 * there is refused (INSUFFICIENT_STOCK). */
int allot_adjust(allot_conn_t *c, uint64_t sku, int64_t delta,
                 allot_sku_result_t *out);
int allot_adjust_at(allot_conn_t *c, uint64_t sku, uint16_t location,
                    int64_t delta, allot_sku_result_t *out);
/* Totals, the backorder queue and every location (out->locations). */
int allot_sku_get(allot_conn_t *c, uint64_t sku, allot_sku_result_t *out);

int allot_place(allot_conn_t *c, const allot_order_spec_t *order,
                allot_order_result_t *out);
int allot_confirm(allot_conn_t *c, uint64_t order, allot_order_result_t *out);
int allot_cancel(allot_conn_t *c, uint64_t order, allot_order_result_t *out);
int allot_fulfill(allot_conn_t *c, uint64_t order, allot_order_result_t *out);
/* A HELD order's deadline becomes now + ms (clamped by the server); the
 * effective deadline is out->deadline_ms. */
int allot_extend(allot_conn_t *c, uint64_t order, uint32_t ms,
                 allot_order_result_t *out);
/* The order, its flags, and per line its queue place and the locations
 * its allocated units sit in. */
int allot_order_get(allot_conn_t *c, uint64_t order, allot_order_info_t *out);

/* Copies min(cap, n) stat values into values[] in enum allot_stat order
 * and sets *count to n, the number the server sent (it may know more stats
 * than this header, or fewer if older). values may be NULL when cap is 0.
 * Returns as the calls above. */
int allot_stats(allot_conn_t *c, uint64_t *values, size_t cap, size_t *count);

/* ---- subscriptions ----------------------------------------------------- */
/*
 * allot_subscribe() asks the server for its events: from_seq is the first
 * one wanted (0 = from now on; a subscriber that reconnects passes the seq
 * after the last one it saw), sku keeps one SKU's events only (0 = all),
 * types is a mask of ALLOT_EVENT_BIT(type) (0 = all). It is a synchronous
 * call (returns as those above, -EBUSY included) that also allocates the
 * handle's event queue; besides it returns
 *   -EALREADY  the handle has subscribed already (one subscription per
 *              connection; after a LOST, connect again)
 *   -ENOMEM
 * The server's verdict is out->result: with TOO_OLD nothing follows and
 * out->oldest_seq says where the server's memory begins. With OK, events
 * with seq >= out->start_seq arrive as the server makes them durable, in
 * seq order, and the handle keeps working for requests of any kind.
 *
 * Events are read off the socket by every call that reads (the collecting
 * and synchronous calls too) and wait in the handle's queue (ALLOT_EVENT_QUEUE_CAP of its
 * buffer_bytes) until handed back. Should it fill, the handle drops
 * what does not fit and queues an ALLOT_EVENT_LOST event with the seq of
 * the first dropped one (and drops the queued events of that seq too), as
 * the server does for a subscriber that falls behind (it sends LOST, then
 * closes the connection). After a LOST no event follows on this handle:
 * connect again and subscribe from that seq, which then delivers every
 * event not handed back, exactly once. Otherwise a subscriber that
 * reconnects resumes from the last seq it got + 1 (the events of one seq
 * always arrive together).
 */
int allot_subscribe(allot_conn_t *c, uint64_t from_seq, uint64_t sku,
                    uint32_t types, allot_subscription_t *out);

/* Hands back up to max queued events, oldest first, without blocking (it
 * reads what has arrived, and writes what is queued, first). Returns the
 * number handed back, 0 when there is none yet, or:
 *   -ENOENT    no subscription: allot_subscribe() was not answered OK
 *   -EPIPE     the subscription has ended: its LOST event was handed back
 *   -ENOTCONN  the handle is broken (the server closed the connection, ...)
 *              and every event it had was handed back; allot_last_error()
 *              says why
 *   -EINVAL    c NULL, or out NULL with max > 0
 * It hands back no completions: answers to pipelined requests stay for
 * allot_poll()/allot_wait(), and events are not delayed by them (unless
 * uncollected answers fill the whole read buffer). Like allot_poll(), it
 * ends the lifetime of the completion bodies handed back before it. */
int allot_events_poll(allot_conn_t *c, allot_event_t *out, size_t max);

/* As allot_events_poll(), but waits up to timeout_ms (< 0: without limit)
 * for the first event. Returns 0 when none came in time, or at once when a
 * signal interrupted the wait (so that a caller can look at a flag its
 * handler set). While requests are in flight it breaks the handle when
 * they time out, as the other waiting calls do. */
int allot_events_wait(allot_conn_t *c, allot_event_t *out, size_t max,
                      int timeout_ms);

/* Events queued and not yet handed back. Any call that reads may queue
 * some: check after allot_poll() and the synchronous calls, since poll(2)
 * on allot_conn_fd() does not see events already read. */
size_t allot_events_pending(const allot_conn_t *c);

/* ---- batches ----------------------------------------------------------- */
/*
 * A batch is one request frame under construction: up to batch_max
 * elements of one opcode (SKU_SET, RESTOCK, ADJUST, PLACE, CONFIRM, EXTEND,
 * CANCEL, FULFILL, ORDER_GET or SKU_GET). It owns a buffer of frame_max
 * bytes and is independent of any connection: allot_submit() copies it, so
 * it can be reset and refilled at once.
 */

/* Allocates an empty batch of opcode. Its limits are those of c when c is
 * an open handle (the server's limits, and c's buffers: the frame and the
 * largest answer it could get each fit one), else the protocol's
 * (ALLOT_BATCH_MAX elements, ALLOT_ORDER_GET_BATCH_MAX for ORDER_GET and
 * ALLOT_SKU_GET_BATCH_MAX for SKU_GET, ALLOT_FRAME_MAX bytes,
 * ALLOT_LINES_MAX lines). Returns 0, -EINVAL for an opcode that cannot be
 * batched, or -ENOMEM. */
int allot_batch_new(allot_batch_t **out, uint16_t opcode, const allot_conn_t *c);
void allot_batch_free(allot_batch_t *b);

/* Empties b and makes it a batch of opcode. 0 or -EINVAL. */
int allot_batch_reset(allot_batch_t *b, uint16_t opcode);

/* Lowers the element limit (e.g. to keep answers small). Values above the
 * current limit are ignored; 0 is -EINVAL. */
int allot_batch_set_count_max(allot_batch_t *b, uint32_t count_max);

uint16_t allot_batch_opcode(const allot_batch_t *b);
uint32_t allot_batch_count(const allot_batch_t *b);

/* The frame as it would go on the wire, header included, with request_id
 * 0 (allot_submit() writes the real one in its copy). Points into b: valid
 * until b is changed or freed. */
const uint8_t *allot_batch_frame(const allot_batch_t *b, size_t *len);

/* Appending. Each returns 0, -EINVAL when the batch holds another opcode
 * (or, for PLACE, line_count is 0 or over the lines limit, or lines is
 * NULL), or -ENOSPC when the element does not fit (count or bytes limit):
 * submit the batch and start a new one. Nothing is appended on failure. */
int allot_batch_add_sku_set(allot_batch_t *b, uint64_t sku, uint64_t on_hand,
                            uint32_t limit, uint32_t reorder_point);
int allot_batch_add_sku_set_at(allot_batch_t *b, uint64_t sku, uint16_t location,
                               uint16_t priority, uint64_t on_hand,
                               uint32_t limit, uint32_t reorder_point);
int allot_batch_add_restock(allot_batch_t *b, uint64_t sku, uint64_t qty);
int allot_batch_add_restock_at(allot_batch_t *b, uint64_t sku,
                               uint16_t location, uint64_t qty);
int allot_batch_add_adjust(allot_batch_t *b, uint64_t sku, int64_t delta);
int allot_batch_add_adjust_at(allot_batch_t *b, uint64_t sku,
                              uint16_t location, int64_t delta);
int allot_batch_add_sku_get(allot_batch_t *b, uint64_t sku);
int allot_batch_add_place(allot_batch_t *b, const allot_order_spec_t *order);
int allot_batch_add_confirm(allot_batch_t *b, uint64_t order);
int allot_batch_add_cancel(allot_batch_t *b, uint64_t order);
int allot_batch_add_fulfill(allot_batch_t *b, uint64_t order);
int allot_batch_add_extend(allot_batch_t *b, uint64_t order, uint32_t ms);
int allot_batch_add_order_get(allot_batch_t *b, uint64_t order);

/* ---- pipelining -------------------------------------------------------- */

/* Queues b (copied: b may be reused at once) under the next request id,
 * which is one more than the last one used on this handle, and stores it in
 * *request_id (may be NULL). user is handed back in the completion. The
 * frame is written at the next allot_flush(), allot_poll() or allot_wait(),
 * or at once when enough bytes are queued. Returns:
 *   0          queued
 *   -EAGAIN    inflight_max frames are unanswered (counted from the oldest
 *              unanswered one), or the write buffer is full: collect
 *              completions, then submit again
 *   -EINVAL    an empty batch
 *   -EMSGSIZE  the frame is over the server's limits, or it or its
 *              largest possible answer does not fit c's buffers (a batch
 *              made with allot_batch_new(..., c) never is)
 *   -ENOTCONN  the handle is not open or broken */
int allot_submit(allot_conn_t *c, const allot_batch_t *b, void *user,
                 uint64_t *request_id);

/* Writes what is queued without blocking. 0 (all or part written),
 * -ENOTCONN, or the error that just broke the handle. */
int allot_flush(allot_conn_t *c);

/* Frames submitted and not yet handed back by allot_poll()/allot_wait(),
 * failed ones included. */
size_t allot_inflight(const allot_conn_t *c);

/* One answered (or failed) frame. */
typedef struct allot_completion {
    uint64_t request_id;
    void *user;            /* as given to allot_submit() */
    int error;             /* 0: answered, elements below. Else no
                              elements: -ECONNRESET or -ETIMEDOUT (outcome
                              unknown), -EPROTO, -EACCES or
                              -EPROTONOSUPPORT (an ERROR frame for this
                              request: not applied) */
    uint16_t opcode;       /* the request's opcode */
    uint16_t count;        /* elements answered (= elements sent) */
    const uint8_t *body;   /* the raw result elements (protocol.h layouts) */
    size_t body_len;
} allot_completion_t;

/* Writes what is queued, reads what has arrived and hands back up to max
 * completions without blocking. Completions come in the order the answers
 * arrive; when the handle breaks, every frame still in flight is handed
 * back failed, in request id order. body points into the handle: valid
 * until the next allot_poll(), allot_wait(), allot_events_poll(),
 * allot_events_wait(), synchronous call or allot_conn_close() on c.
 * Returns the number of completions (0: nothing yet), or -ENOTCONN when
 * the handle is broken and nothing is left to hand back
 * (allot_last_error() says why), or -EINVAL. */
int allot_poll(allot_conn_t *c, allot_completion_t *out, size_t max);

/* As allot_poll(), but blocks until at least one completion is ready or
 * timeout_ms passes (then returns 0); timeout_ms < 0 waits without limit
 * (still bounded by the request timeout while anything is in flight). On a
 * subscribed handle it also returns 0 as soon as new events are queued
 * (see allot_events_pending()). */
int allot_wait(allot_conn_t *c, allot_completion_t *out, size_t max,
               int timeout_ms);

/* Decoding a completion's elements, first to last. A reader only looks at
 * the completion's body, whose lifetime it shares; the library checked the
 * whole body before handing it back, so reading cannot fail. */
typedef struct allot_reader {
    const uint8_t *pos;
    const uint8_t *end;
    uint16_t opcode;
    uint16_t left;
} allot_reader_t;

void allot_reader_init(allot_reader_t *r, const allot_completion_t *cmp);

/* Each returns 1 and fills *out (array entries past their count are not
 * written), 0 when no element is left, or -EINVAL when the
 * completion's opcode has another answer type:
 *   allot_read_sku         SKU_SET, RESTOCK, ADJUST, SKU_GET
 *   allot_read_order       PLACE, CONFIRM, EXTEND, CANCEL, FULFILL
 *   allot_read_order_info  ORDER_GET */
int allot_read_sku(allot_reader_t *r, allot_sku_result_t *out);
int allot_read_order(allot_reader_t *r, allot_order_result_t *out);
int allot_read_order_info(allot_reader_t *r, allot_order_info_t *out);

#ifdef __cplusplus
}
#endif

#endif
