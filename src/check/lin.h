/* lin.h: a linearizability checker for the history of one key (a register
 * with get, put, compare-and-set and append), in the style of Wing & Gong
 * with Lowe's memoization (the algorithm of Knossos and Porcupine).
 *
 * A history is the operations clients invoked on one key, each with the
 * time it was invoked and, if the client got an answer, the time it got it
 * and the answer. An operation without an answer (timeout, lost connection)
 * is indeterminate: it may have taken effect at any point after its
 * invocation, or never. The checker searches for a total order of the
 * operations that respects real time (an operation that completed before
 * another was invoked comes first) and in which every answer is what the
 * sequential register would have given. Pure: no I/O, no globals.
 *
 * Expiry: a PUT may carry an absolute deadline (expire_time, in the unit
 * of the history's times): the value it stores is gone from that time on.
 * Whether a key has expired depends on *when* an operation takes effect,
 * not only on its place in the order, so for a history with deadlines the
 * search also carries the earliest time the next operation can take
 * effect: an operation takes effect at a time inside its own interval, no
 * earlier than the one before it. A GET that finds the key takes effect
 * before its deadline; one that finds it absent at or after it (and no
 * later than its own answer). A store's deadline is fixed by the client
 * (SET ... PXAT), so the model needs no clock of the server's. */
#ifndef SHOAL_LIN_H
#define SHOAL_LIN_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* Appends that would make a value longer than this are refused by the
 * state machine (and so by the model): the value is left unchanged. */
#define LIN_VALUE_BYTES_MAX 4096

enum lin_kind { LIN_GET = 0, LIN_PUT = 1, LIN_CAS = 2, LIN_APPEND = 3 };

enum lin_result {
    LIN_OK = 0,        /* a linearization exists */
    LIN_VIOLATION = 1, /* none exists; `why` names an operation that cannot be placed */
    LIN_UNKNOWN = 2,   /* the search exceeded max_steps or memory; undecided */
};

/* One operation. The checker reads the byte ranges; it does not own them. */
struct lin_op {
    uint64_t invoke_time;
    uint64_t complete_time; /* ignored when !completed */
    uint8_t kind;           /* enum lin_kind */
    bool completed;         /* the client got an answer (outputs below are valid) */
    const uint8_t *arg;     /* PUT/CAS: new value; APPEND: suffix */
    uint32_t arg_len;
    bool expect_present;    /* CAS: expects the key to exist with value `expect` */
    const uint8_t *expect;  /* (false: expects the key to be absent) */
    uint32_t expect_len;
    bool found;             /* GET answer: the key existed */
    const uint8_t *out;     /* GET answer: its value */
    uint32_t out_len;
    bool cas_ok;            /* CAS answer: swapped; APPEND answer: applied (fit) */
    uint64_t id;            /* for messages only */
    uint64_t expire_time;   /* PUT: the value is gone at times >= this; 0: never */
    bool returns_old;       /* PUT (SET ... GET): found/out are the value it replaced */
};

/* Decides whether ops[0..n) is linearizable, starting from an absent key.
 * Stops after max_steps search steps (returns LIN_UNKNOWN). On LIN_VIOLATION
 * writes a one-line explanation into why (always NUL-terminated when
 * why_cap > 0). Every ops[i] with completed must have complete_time >=
 * invoke_time. Allocates and frees its own working memory. */
enum lin_result lin_check(const struct lin_op *ops, size_t n, uint64_t max_steps, char *why,
                          size_t why_cap);

#endif
