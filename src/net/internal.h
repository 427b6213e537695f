/*
 * The network module's insides, shared by its files:
 *   net.c    the API, listeners, threads
 *   loop.c   one thread's ring: setup, the loop, completion dispatch,
 *            accept, timers, signals, drain
 *   conn.c   a connection's life: accept, the answer queue, sends, close
 *   input.c  a connection's input: bytes, frames into batches, recv
 *   batch.c  executor batches: filling, submitting, completing, STATS
 *   subscribe.c  SUBSCRIBE and the EVENT frames of subscribed connections
 *   events.c the event hub the engine's owner thread fills (events.h)
 *
 * Every io_uring operation carries its kind (a tag) and, for connection
 * operations, the connection's slot and generation in its user_data. A
 * connection slot is never freed while an operation or an executor batch
 * still refers to it, so a completion always finds its connection.
 */
#ifndef ALLOT_NET_INTERNAL_H
#define ALLOT_NET_INTERNAL_H

#include <liburing.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "common/limits.h"
#include "engine/exec.h"
#include "net/events.h"
#include "net/net.h"
#include "proto/proto.h"

#define NET_BGID 0u /* the one provided-buffer group of each ring */

/* Largest answer backlog of one connection: reading stops at
 * CONN_OUT_PAUSE_BYTES, and what was already admitted adds at most one
 * answer (<= ALLOT_FRAME_MAX) plus an ERROR frame. */
#define CONN_OUT_MAX (CONN_OUT_PAUSE_BYTES + 2u * ALLOT_FRAME_MAX)
#define CONN_GATES 8u /* answer groups waiting for release, per connection */
/* A subscriber's events are encoded only while its unsent bytes are below
 * this: the rest wait in the hub, where they cost nothing per connection. */
#define SUB_OUT_HIGH (64u * 1024u)
/* Events one pump of one subscriber looks at before yielding the loop. */
#define SUB_SCAN_MAX 4096u

/* ---- user_data: tag | slot | generation -------------------------------- */

enum net_tag {
    TAG_ACCEPT = 1,
    TAG_RECV,
    TAG_SEND,
    TAG_CANCEL, /* the cancel request's own completion: nothing to do */
    TAG_WAKE,   /* executor completions waiting (poll on its eventfd) */
    TAG_TICK,   /* periodic timeout */
    TAG_CTRL,   /* net_stop() wrote our eventfd (poll) */
    TAG_SIGNAL, /* SIGTERM/SIGINT pending on the signalfd (poll) */
    TAG_DURABLE, /* the journal moved (poll on the eventfd it writes) */
};

static inline uint64_t ud_make(enum net_tag tag, uint32_t slot, uint32_t gen)
{
    return (uint64_t)tag << 56 | (uint64_t)(slot & 0xffffffu) << 32 | gen;
}
static inline enum net_tag ud_tag(uint64_t ud) { return (enum net_tag)(ud >> 56); }
static inline uint32_t ud_slot(uint64_t ud) { return (uint32_t)(ud >> 32) & 0xffffffu; }
static inline uint32_t ud_gen(uint64_t ud) { return (uint32_t)ud; }

/* ---- connections --------------------------------------------------------- */

/* A byte buffer owned by one connection, grown on demand, bounded. */
typedef struct net_buf {
    uint8_t *p;
    uint32_t off; /* first byte not consumed (in) or not sent (tx) */
    uint32_t len;
    uint32_t cap;
} net_buf_t;

/* Answers encoded in out[..end) that leave together: the batch's journal
 * position and whether it mutated decide when (net_conn_release). */
typedef struct net_gate {
    uint32_t end;
    bool mutating;
    uint64_t seq_needed;
} net_gate_t;

enum conn_state {
    CONN_FREE = 0,
    CONN_OPEN,     /* reading and answering */
    CONN_REJECTED, /* a frame was refused: answer what came before, then ERROR */
    CONN_LINGER,   /* ERROR sent, write side shut: wait for the peer to close */
    CONN_ABORTED,  /* drop everything; close once no operation refers to it */
};

typedef struct net_conn_err {
    proto_error_t err;
    uint64_t request_id;
} net_conn_err_t;

/* A subscribed connection's place in the event hub (subscribe.c). */
typedef struct net_sub {
    uint64_t request_id; /* of the SUBSCRIBE: every EVENT frame carries it */
    uint64_t pos;        /* next hub position to look at */
    uint64_t start_seq;  /* events below this sequence number are skipped */
    proto_subscribe_t filter;
    uint32_t index;      /* in the thread's subs[] */
    uint64_t resume_seq; /* every event below this seq was passed (sent or filtered) */
    uint64_t passed_seq; /* seq of the last event passed */
    uint64_t behind_min; /* fewest events it has been behind the head */
    uint64_t sent;       /* events sent */
    bool lost;           /* cut off: LOST is owed, then close */
    bool lost_sent;
    uint64_t lost_seq;
} net_sub_t;

typedef struct net_conn {
    int fd;
    uint32_t slot;
    uint32_t gen;
    uint8_t state;         /* enum conn_state */
    bool hello_done;
    bool recv_armed;       /* a recv (multishot or not) is in flight */
    bool recv_cancelling;  /* and a cancel for it too */
    bool send_inflight;
    bool eof;              /* no more input: peer shut down, or draining */
    bool paused;           /* answer backlog over CONN_OUT_PAUSE_BYTES */
    uint32_t frames_inflight;  /* frames in executor batches */
    uint32_t out_pending;  /* bound on answer bytes those frames will add */
    uint32_t released;     /* out.p[0..released) may be sent */
    uint32_t gates_n;
    net_buf_t in;          /* unparsed input: a partial frame, or a backlog */
    net_buf_t out;         /* encoded answers not yet handed to a send */
    net_buf_t tx;          /* the send in flight: [off, len) still to go */
    net_gate_t gates[CONN_GATES];
    net_conn_err_t *err;   /* ERROR frame waiting for earlier answers */
    net_sub_t *sub;        /* after a SUBSCRIBE answered OK */
    uint64_t linger_deadline_ms; /* also: a cut-off subscriber's last chance */
    uint64_t hello_deadline_ms; /* closed if no HELLO by then */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
} net_conn_t;

static inline uint64_t conn_ud(enum net_tag tag, const net_conn_t *c)
{
    return ud_make(tag, c->slot, c->gen);
}

/* ---- executor batches ---------------------------------------------------- */

/* Where the answer to one frame goes: connection, header, op range. */
typedef struct net_frame_ref {
    uint32_t slot;
    uint32_t gen;
    uint64_t request_id;
    uint32_t first;
    uint32_t count;
    uint32_t bound;  /* reserved in the connection's out_pending */
    uint16_t opcode;
} net_frame_ref_t;

typedef struct net_batch {
    exec_batch_t xb;       /* xb.ops = ops, xb.user = this */
    eng_op_t *ops;         /* PROTO_DECODE_OPS_MAX */
    eng_line_t *lines;     /* PROTO_DECODE_LINES_MAX */
    net_frame_ref_t *frames; /* PROTO_DECODE_OPS_MAX */
    eng_order_detail_t *details; /* ORDER_GET answers: one per op (batch.c sizes) */
    eng_loc_view_t *locs;  /* SKU_GET answers: ALLOT_LOCATIONS_MAX per op */
    uint32_t frames_n;
    uint32_t lines_used;
    uint32_t details_used;
    uint32_t locs_used;
    bool stats;            /* a STATS batch: fn fills est and digest */
    eng_stats_t est;
    uint64_t digest;
} net_batch_t;

/* ---- per-thread state ---------------------------------------------------- */

/* Written by the owning thread only, read by any thread for STATS. */
typedef struct net_counters {
    _Atomic uint64_t connections_total;
    _Atomic uint64_t frames_in;
    _Atomic uint64_t malformed;
    _Atomic uint64_t ops[ALLOT_OP_COUNT][ALLOT_RESULT_COUNT];
} net_counters_t;

static inline void ctr_add(_Atomic uint64_t *c, uint64_t v)
{
    /* single writer: no read-modify-write instruction needed */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* A set of connection slots waiting for something, each at most once. A
 * slot is not removed when its connection closes: the consumer checks. */
typedef struct net_slot_list {
    uint32_t *slots; /* ring of cap */
    uint8_t *mark;   /* mark[slot]: in the list */
    uint32_t head;
    uint32_t n;
    uint32_t cap;
} net_slot_list_t;

typedef struct net_thread {
    net_t *net;
    unsigned index;
    struct io_uring ring;
    bool ring_ready;
    int listen_fd;
    int ctl_fd;
    int durable_fd;      /* -1 without cfg.durable_watch */
    /* modes, chosen at setup and logged */
    unsigned setup_flags;
    bool buf_ring;        /* provided buffers; else recv into conn->in */
    bool multishot;       /* multishot recv */
    bool accept_multishot;
    /* provided buffers */
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    /* connections */
    net_conn_t *conns;
    uint32_t conns_cap;
    uint32_t conns_hw;     /* slots ever used */
    uint32_t *free_slots;
    uint32_t free_n;
    uint32_t live;
    uint32_t lingering;
    uint32_t awaiting_hello; /* open connections that have not said HELLO */
    net_slot_list_t kick;    /* needs conn_service() */
    net_slot_list_t starved; /* input waits for a free batch */
    net_slot_list_t gated;   /* answers wait for the journal */
    /* subscribers: slots of the connections with a subscription */
    uint32_t *subs;
    uint32_t subs_n;
    uint32_t cutoffs;        /* subscribers cut off and not yet closed */
    uint64_t ev_head_seen;   /* hub head when the subscribers were last kicked */
    uint64_t ev_wait_seq;    /* a subscriber waits for this seq to be durable; 0 = none */
    /* batches: [done, sent) in the executor, [sent, alloc) sealed or open */
    net_batch_t batches[NET_BATCHES];
    uint32_t b_done, b_sent, b_alloc;
    net_batch_t *open;
    bool stalled;          /* no free batch: input waits */
    /* accept */
    bool accept_armed;
    uint64_t accept_retry_ms;
    uint64_t refused_log_ms;
    uint32_t refused_quiet;
    /* reads and timers */
    struct __kernel_timespec tick_ts;
    bool wake_armed;
    uint64_t next_sweep_ms;
    /* drain */
    bool draining;
    bool forced;
    uint64_t drain_deadline_ms;
    bool done;
    uint64_t durable_seen;
    bool durable_failed;   /* the journal failed: nothing more is released as OK */
    uint64_t now_ms;       /* CLOCK_MONOTONIC, refreshed each iteration */
    uint64_t enobufs;
    net_counters_t counters;
} net_thread_t;

struct net {
    net_config_t cfg;
    uint8_t token[ALLOT_TOKEN_MAX];
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint16_t port;
    net_thread_t **threads;
    _Atomic uint32_t conns;
    _Atomic uint32_t stop_requests;
    _Atomic uint32_t loops_running; /* thread 0 (signals) leaves last */
    _Atomic int error;
};

/* ---- shared helpers ------------------------------------------------------ */

uint64_t net_mono_ms(void);
uint64_t net_real_ms(void);
uint64_t net_durable(const net_thread_t *t);
/* An SQE, submitting first when the queue is full. Never NULL. */
struct io_uring_sqe *net_sqe(net_thread_t *t);
void net_fail(net_t *n, int err);
/* Wakes thread i's loop (its control eventfd). Async-signal-safe. */
void net_wake(net_t *n, unsigned i);

bool slot_list_push(net_slot_list_t *l, uint32_t slot);
bool slot_list_pop(net_slot_list_t *l, uint32_t *slot);

/* loop.c */
int net_thread_init(net_thread_t *t);
void net_thread_loop(net_thread_t *t);
void net_thread_deinit(net_thread_t *t);
void net_buf_return(net_thread_t *t, uint16_t bid);

static inline size_t buf_pending(const net_buf_t *b) { return b->len - b->off; }

/* conn.c */
int buf_reserve(net_buf_t *b, size_t total, size_t max);
void buf_free(net_buf_t *b);
void buf_reset(net_buf_t *b);
int conn_table_init(net_thread_t *t);
void conn_table_deinit(net_thread_t *t);
net_conn_t *conn_get(net_thread_t *t, uint32_t slot, uint32_t gen);
net_conn_t *conn_lookup(net_thread_t *t, uint64_t user_data);
void conn_accepted(net_thread_t *t, int fd);
void conn_on_send(net_thread_t *t, net_conn_t *c, int res);
void conn_stop_recv(net_thread_t *t, net_conn_t *c);
/* The one path for a frame the server refuses: log it, queue the ERROR
 * frame behind the answers already owed, stop taking input. */
void conn_reject(net_thread_t *t, net_conn_t *c, uint64_t request_id,
                 const proto_error_t *err);
size_t conn_out_load(const net_conn_t *c);
void conn_kick(net_thread_t *t, net_conn_t *c);
void conn_run_kicks(net_thread_t *t);
void conn_unstarve_all(net_thread_t *t);
void conn_release_gated(net_thread_t *t);
void conn_drain(net_thread_t *t, net_conn_t *c);
void conn_abort(net_thread_t *t, net_conn_t *c, const char *why);
void conn_sweep(net_thread_t *t);
void net_conn_release(net_thread_t *t, net_conn_t *c, uint64_t durable_seq);
void net_conn_fail_gated(net_thread_t *t, net_conn_t *c);
uint8_t *conn_out_reserve(net_thread_t *t, net_conn_t *c, size_t size);
void conn_out_commit(net_thread_t *t, net_conn_t *c, size_t size, uint64_t seq_needed,
                     bool mutating);
void conn_frame_done(net_thread_t *t, net_conn_t *c, uint32_t bound);
void conn_name(const net_thread_t *t, const net_conn_t *c, char *buf, size_t len);

/* subscribe.c */
/* A SUBSCRIBE frame, once every answer before it is queued: 0, or
 * -EAGAIN when frames before it are still in the executor. */
int conn_subscribe(net_thread_t *t, net_conn_t *c, const proto_frame_t *f);
/* Encodes the events a subscriber may have now, or cuts it off. */
void sub_pump(net_thread_t *t, net_conn_t *c);
/* The LOST frame of a cut-off subscriber, once earlier answers are queued. */
void sub_emit_lost(net_thread_t *t, net_conn_t *c);
bool sub_owes(const net_conn_t *c);
/* Kicks the subscribers when the hub or the journal moved for them. */
void subs_poll(net_thread_t *t, uint64_t durable);
void sub_free(net_thread_t *t, net_conn_t *c);

/* input.c */
void conn_on_recv(net_thread_t *t, net_conn_t *c, int res, unsigned flags);
void conn_parse_in(net_thread_t *t, net_conn_t *c);
bool in_has_frame(const net_buf_t *in);
void conn_arm_recv(net_thread_t *t, net_conn_t *c);

/* batch.c */
int batch_pool_init(net_thread_t *t);
void batch_pool_deinit(net_thread_t *t);
/* A batch with room for a frame of opcode, ops ops and lines lines (STATS: a batch
 * of its own), or NULL when every batch is in use (t->stalled is set). */
net_batch_t *batch_room(net_thread_t *t, uint16_t opcode, size_t ops, size_t lines);
void batch_add_frame(net_batch_t *b, const net_conn_t *c, const proto_frame_t *f,
                     uint32_t n_ops, uint32_t n_lines, uint32_t bound);
void batch_flush(net_thread_t *t);
size_t batch_poll(net_thread_t *t);
bool batch_idle(const net_thread_t *t);
uint32_t answer_bound(uint16_t opcode, const eng_op_t *ops, size_t n);

#endif
