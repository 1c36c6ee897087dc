/* lin.c: WGL linearizability search with memoization over (set of
 * linearized operations, register state). See lin.h.
 *
 * The history becomes a list of call and return events in time order. The
 * search walks the list: at a call it tries to linearize that operation now
 * (apply it to the model; if the answer matches and the pair (linearized
 * set, new state) was not seen before, remove the call and its return from
 * the list and start again from the head); at a return it has met an
 * operation that had to be linearized already, so it backtracks. An
 * indeterminate operation returns at time "infinity" and its answer is not
 * checked, so placing it last is the same as it never happening. */
#include "check/lin.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Working memory above this makes the answer LIN_UNKNOWN. */
#define LIN__MEMORY_BYTES_MAX (512u << 20)

struct lin__event {
    uint64_t time;
    uint32_t op;
    bool is_return;
    uint32_t prev, next; /* the live list; index n_events is the head */
    uint32_t match;      /* call <-> return */
};

/* The register, and (histories with deadlines only) the time: the earliest
 * at which the next operation can take effect. A value past its deadline
 * at that time is interned as absent. */
struct lin__state {
    bool present;
    uint32_t len;
    uint64_t off; /* into bytes */
    uint64_t hash;
    uint64_t expire; /* present: its deadline, 0 for none */
    uint64_t time;
};

/* A state before interning. */
struct lin__value {
    bool present;
    const uint8_t *v;
    uint32_t len;
    uint64_t expire;
    uint64_t time;
};

struct lin__memo {
    uint64_t hash;    /* 0: empty slot */
    uint32_t state;
    uint64_t bits;    /* offset into memo_bits, in words */
};

struct lin__frame {
    uint32_t call; /* the call event that was linearized */
    uint32_t state_before;
};

struct lin__search {
    const struct lin_op *ops;
    size_t n;
    bool timed; /* some PUT has a deadline: states carry the time */
    struct lin__event *ev;
    uint32_t head;
    /* interned register states */
    struct lin__state *states;
    size_t n_states, cap_states;
    uint8_t *bytes;
    size_t n_bytes, cap_bytes;
    uint32_t *state_slots; /* open addressing: state index + 1 */
    size_t cap_state_slots;
    /* memo of visited (linearized set, state) */
    struct lin__memo *memo;
    size_t n_memo, cap_memo;
    uint64_t *memo_bits;
    size_t n_memo_bits, cap_memo_bits;
    size_t words; /* words per bitset */
    uint64_t *linearized;
    uint64_t linearized_hash; /* Zobrist hash of the set: xor of lin__op_key() */
    uint8_t scratch[LIN_VALUE_BYTES_MAX];
    size_t memory;
    bool out_of_memory;
};

static uint64_t lin__hash_bytes(uint64_t h, const uint8_t *p, size_t len) {
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static uint64_t lin__mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Grows *p to hold at least need elements of size elem; false when the
 * memory budget is spent. */
static bool lin__reserve(struct lin__search *s, void **p, size_t *cap, size_t need,
                         size_t elem) {
    if (need <= *cap) return true;
    size_t cap_new = *cap ? *cap : 64;
    while (cap_new < need) cap_new *= 2;
    size_t grow = (cap_new - *cap) * elem;
    if (s->memory + grow > LIN__MEMORY_BYTES_MAX) {
        s->out_of_memory = true;
        return false;
    }
    void *q = realloc(*p, cap_new * elem);
    if (q == NULL) {
        s->out_of_memory = true;
        return false;
    }
    s->memory += grow;
    *p = q;
    *cap = cap_new;
    return true;
}

static bool lin__state_equal(const struct lin__search *s, const struct lin__state *st,
                             bool present, const uint8_t *v, uint32_t len) {
    if (st->present != present || st->len != len) return false;
    return len == 0 || memcmp(s->bytes + st->off, v, len) == 0;
}

static bool lin__value_equal(const struct lin__search *s, const struct lin__state *st,
                             const struct lin__value *x) {
    return st->expire == x->expire && st->time == x->time &&
           lin__state_equal(s, st, x->present, x->v, x->len);
}

static bool lin__state_slots_grow(struct lin__search *s) {
    size_t cap = s->cap_state_slots ? s->cap_state_slots * 2 : 1024;
    if (s->memory + cap * sizeof(uint32_t) > LIN__MEMORY_BYTES_MAX) {
        s->out_of_memory = true;
        return false;
    }
    uint32_t *slots = calloc(cap, sizeof(uint32_t));
    if (slots == NULL) {
        s->out_of_memory = true;
        return false;
    }
    for (size_t i = 0; i < s->n_states; i++) {
        size_t j = s->states[i].hash & (cap - 1);
        while (slots[j] != 0) j = (j + 1) & (cap - 1);
        slots[j] = (uint32_t)i + 1;
    }
    s->memory += cap * sizeof(uint32_t);
    free(s->state_slots);
    s->state_slots = slots;
    s->cap_state_slots = cap;
    return true;
}

/* Returns the index of the state x, adding it if new; UINT32_MAX when out
 * of memory. An untimed search keeps time 0; a value past its deadline is
 * absent. */
static uint32_t lin__intern_value(struct lin__search *s, struct lin__value x) {
    if (!s->timed) x.time = 0;
    if (x.present && x.expire != 0 && x.expire <= x.time) x.present = false;
    if (!x.present) {
        x.v = NULL;
        x.len = 0;
        x.expire = 0;
    }
    const uint8_t *v = x.v;
    uint32_t len = x.len;
    bool present = x.present;
    uint64_t h = lin__hash_bytes(present ? 7 : 3, v, len);
    h = lin__mix(h ^ lin__mix(x.expire * 0x9e3779b97f4a7c15ull + x.time)) | 1;
    if (2 * (s->n_states + 1) > s->cap_state_slots && !lin__state_slots_grow(s)) {
        return UINT32_MAX;
    }
    size_t mask = s->cap_state_slots - 1;
    size_t j = h & mask;
    while (s->state_slots[j] != 0) {
        uint32_t i = s->state_slots[j] - 1;
        if (s->states[i].hash == h && lin__value_equal(s, &s->states[i], &x)) {
            return i;
        }
        j = (j + 1) & mask;
    }
    /* a value of a state (a read or a timed step) lies in bytes, which may move */
    bool inside = len > 0 && s->bytes != NULL && v >= s->bytes && v < s->bytes + s->n_bytes;
    size_t v_off = inside ? (size_t)(v - s->bytes) : 0;
    if (!lin__reserve(s, (void **)&s->states, &s->cap_states, s->n_states + 1,
                      sizeof(*s->states)) ||
        !lin__reserve(s, (void **)&s->bytes, &s->cap_bytes, s->n_bytes + len + 1, 1)) {
        return UINT32_MAX;
    }
    if (inside) v = s->bytes + v_off;
    struct lin__state *st = &s->states[s->n_states];
    st->present = present;
    st->len = len;
    st->off = s->n_bytes;
    st->hash = h;
    st->expire = x.expire;
    st->time = x.time;
    if (len > 0) memcpy(s->bytes + s->n_bytes, v, len);
    s->n_bytes += len;
    s->state_slots[j] = (uint32_t)s->n_states + 1;
    return (uint32_t)s->n_states++;
}

/* The value of a state, at time `time`. */
static struct lin__value lin__value_of(const struct lin__search *s, const struct lin__state *st,
                                       uint64_t time) {
    return (struct lin__value){.present = st->present, .v = s->bytes + st->off,
                               .len = st->len, .expire = st->expire, .time = time};
}

/* Whether a completed op's answer (found, out: a GET's, or the value a SET
 * ... GET replaced) is the value of st at *time, or later: a key found
 * absent may have expired within the op's interval, which moves *time to
 * the deadline. */
static bool lin__old_matches(const struct lin__search *s, const struct lin_op *op,
                             const struct lin__state *st, uint64_t *time, bool *live) {
    if (op->found && !*live) return false;
    if (!op->found && *live) {
        if (st->expire == 0 || st->expire > op->complete_time) return false;
        *time = st->expire;
        *live = false;
    }
    return !*live || (op->out_len == st->len &&
                      (st->len == 0 || memcmp(op->out, s->bytes + st->off, st->len) == 0));
}

/* Applies op to state `from`. Returns false when the op's recorded answer
 * is impossible from that state; otherwise sets *to (UINT32_MAX on memory
 * exhaustion, which the caller treats as "unknown"). The op takes effect at
 * the earliest time it can (the state's time or its invocation), except a
 * GET that found the key absent, which may wait for the deadline. */
static bool lin__step(struct lin__search *s, const struct lin_op *op, uint32_t from,
                      uint32_t *to) {
    const struct lin__state st = s->states[from];
    const uint8_t *cur = s->bytes + st.off;
    uint64_t time = st.time > op->invoke_time ? st.time : op->invoke_time;
    bool live = st.present && (st.expire == 0 || time < st.expire);
    *to = from;
    switch (op->kind) {
    case LIN_GET:
        if (!op->completed) return true;
        if (!lin__old_matches(s, op, &st, &time, &live)) return false;
        *to = lin__intern_value(s, lin__value_of(s, &st, time));
        return true;
    case LIN_PUT:
        if (op->completed && op->returns_old && !lin__old_matches(s, op, &st, &time, &live)) {
            return false;
        }
        *to = lin__intern_value(s, (struct lin__value){.present = true, .v = op->arg,
                                                       .len = op->arg_len,
                                                       .expire = op->expire_time,
                                                       .time = time});
        return true;
    case LIN_CAS: {
        bool match = op->expect_present ? live && lin__state_equal(s, &st, true, op->expect,
                                                                   op->expect_len)
                                        : !live;
        if (op->completed && op->cas_ok != match) return false;
        struct lin__value x = lin__value_of(s, &st, time);
        if (match) x = (struct lin__value){.present = true, .v = op->arg, .len = op->arg_len,
                                           .time = time};
        *to = lin__intern_value(s, x);
        return true;
    }
    case LIN_APPEND: {
        uint32_t base = live ? st.len : 0;
        bool fits = (uint64_t)base + op->arg_len <= LIN_VALUE_BYTES_MAX;
        if (op->completed && op->cas_ok != fits) return false;
        if (!fits) {
            *to = lin__intern_value(s, lin__value_of(s, &st, time));
            return true;
        }
        if (base > 0) memcpy(s->scratch, cur, base);
        if (op->arg_len > 0) memcpy(s->scratch + base, op->arg, op->arg_len);
        /* APPEND keeps a live key's deadline */
        *to = lin__intern_value(s, (struct lin__value){.present = true, .v = s->scratch,
                                                       .len = base + op->arg_len,
                                                       .expire = live ? st.expire : 0,
                                                       .time = time});
        return true;
    }
    default:
        return false;
    }
}

static bool lin__memo_grow(struct lin__search *s) {
    size_t cap = s->cap_memo ? s->cap_memo * 2 : 1024;
    if (s->memory + cap * sizeof(struct lin__memo) > LIN__MEMORY_BYTES_MAX) {
        s->out_of_memory = true;
        return false;
    }
    struct lin__memo *m = calloc(cap, sizeof(*m));
    if (m == NULL) {
        s->out_of_memory = true;
        return false;
    }
    for (size_t i = 0; i < s->cap_memo; i++) {
        if (s->memo[i].hash == 0) continue;
        size_t j = s->memo[i].hash & (cap - 1);
        while (m[j].hash != 0) j = (j + 1) & (cap - 1);
        m[j] = s->memo[i];
    }
    s->memory += cap * sizeof(struct lin__memo);
    free(s->memo);
    s->memo = m;
    s->cap_memo = cap;
    return true;
}

/* A random-looking key per operation; the set's hash is their xor, kept up
 * to date as operations are linearized and undone (O(1) per step). */
static uint64_t lin__op_key(uint32_t op) {
    return lin__mix((op + 1) * 0x9e3779b97f4a7c15ull);
}

static void lin__toggle(struct lin__search *s, uint32_t op) {
    s->linearized[op / 64] ^= 1ull << (op % 64);
    s->linearized_hash ^= lin__op_key(op);
}

/* Adds (linearized set, state) to the memo. Returns 1 if added, 0 if
 * already there, -1 when out of memory. */
static int lin__memo_add(struct lin__search *s, uint32_t state) {
    const uint64_t *bits = s->linearized;
    uint64_t h = lin__mix(s->linearized_hash ^ (state * 0xc2b2ae3d27d4eb4full)) | 1;
    if (2 * (s->n_memo + 1) > s->cap_memo && !lin__memo_grow(s)) return -1;
    size_t mask = s->cap_memo - 1;
    size_t j = h & mask;
    while (s->memo[j].hash != 0) {
        const struct lin__memo *m = &s->memo[j];
        if (m->hash == h && m->state == state &&
            memcmp(s->memo_bits + m->bits, bits, s->words * sizeof(uint64_t)) == 0) {
            return 0;
        }
        j = (j + 1) & mask;
    }
    if (!lin__reserve(s, (void **)&s->memo_bits, &s->cap_memo_bits,
                      s->n_memo_bits + s->words, sizeof(uint64_t))) {
        return -1;
    }
    memcpy(s->memo_bits + s->n_memo_bits, bits, s->words * sizeof(uint64_t));
    s->memo[j] = (struct lin__memo){.hash = h, .state = state, .bits = s->n_memo_bits};
    s->n_memo_bits += s->words;
    s->n_memo++;
    return 1;
}

static int lin__event_cmp(const void *a, const void *b) {
    const struct lin__event *x = a;
    const struct lin__event *y = b;
    if (x->time != y->time) return x->time < y->time ? -1 : 1;
    /* Calls before returns at one instant: operations that touch are
     * concurrent (the permissive reading). */
    if (x->is_return != y->is_return) return x->is_return ? 1 : -1;
    return x->op < y->op ? -1 : (x->op > y->op);
}

/* Builds the time-ordered event list with call/return links. */
static bool lin__build_events(struct lin__search *s) {
    size_t n_ev = 2 * s->n;
    s->ev = calloc(n_ev + 1, sizeof(*s->ev));
    if (s->ev == NULL) return false;
    for (size_t i = 0; i < s->n; i++) {
        const struct lin_op *op = &s->ops[i];
        s->ev[2 * i] = (struct lin__event){.time = op->invoke_time, .op = (uint32_t)i};
        uint64_t end = op->completed ? op->complete_time : UINT64_MAX;
        if (end < op->invoke_time) end = op->invoke_time;
        s->ev[2 * i + 1] = (struct lin__event){.time = end, .op = (uint32_t)i, .is_return = true};
    }
    qsort(s->ev, n_ev, sizeof(*s->ev), lin__event_cmp);
    uint32_t *call_at = malloc((s->n + 1) * sizeof(uint32_t));
    if (call_at == NULL) return false;
    for (size_t i = 0; i < n_ev; i++) {
        if (!s->ev[i].is_return) call_at[s->ev[i].op] = (uint32_t)i;
    }
    for (size_t i = 0; i < n_ev; i++) {
        if (!s->ev[i].is_return) continue;
        uint32_t c = call_at[s->ev[i].op];
        s->ev[i].match = c;
        s->ev[c].match = (uint32_t)i;
    }
    free(call_at);
    s->head = (uint32_t)n_ev;
    for (size_t i = 0; i <= n_ev; i++) {
        s->ev[i].prev = i == 0 ? (uint32_t)n_ev : (uint32_t)i - 1;
        s->ev[i].next = i + 1 <= n_ev ? (uint32_t)(i + 1) : (uint32_t)n_ev;
    }
    s->ev[n_ev].prev = n_ev == 0 ? (uint32_t)n_ev : (uint32_t)n_ev - 1;
    s->ev[n_ev].next = n_ev == 0 ? (uint32_t)n_ev : 0;
    return true;
}

static void lin__unlink(struct lin__search *s, uint32_t e) {
    s->ev[s->ev[e].prev].next = s->ev[e].next;
    s->ev[s->ev[e].next].prev = s->ev[e].prev;
}

static void lin__relink(struct lin__search *s, uint32_t e) {
    s->ev[s->ev[e].prev].next = e;
    s->ev[s->ev[e].next].prev = e;
}

/* Removes a call and its return from the live list (lift), and back. */
static void lin__lift(struct lin__search *s, uint32_t call) {
    lin__unlink(s, call);
    lin__unlink(s, s->ev[call].match);
}

static void lin__unlift(struct lin__search *s, uint32_t call) {
    lin__relink(s, s->ev[call].match);
    lin__relink(s, call);
}

static const char *lin__kind_name(uint8_t kind) {
    static const char *const names[] = {"get", "put", "cas", "append"};
    return kind < 4 ? names[kind] : "?";
}

static void lin__explain(const struct lin__search *s, uint32_t op_index, size_t depth,
                         uint32_t state, char *why, size_t why_cap) {
    if (why_cap == 0) return;
    const struct lin_op *op = &s->ops[op_index];
    const struct lin__state *st = &s->states[state];
    snprintf(why, why_cap,
             "op %llu.%llu (%s, invoked %llu, completed %llu) cannot be linearized; "
             "deepest prefix %zu of %zu ops ends with the key %s (len %u)",
             (unsigned long long)(op->id >> 32), (unsigned long long)(op->id & 0xffffffffu),
             lin__kind_name(op->kind), (unsigned long long)op->invoke_time,
             (unsigned long long)op->complete_time, depth, s->n,
             st->present ? "present" : "absent", st->len);
}

/* The search proper. */
static enum lin_result lin__search(struct lin__search *s, struct lin__frame *stack,
                                   uint64_t max_steps, char *why, size_t why_cap) {
    uint32_t state = lin__intern_value(s, (struct lin__value){.present = false});
    if (state == UINT32_MAX) return LIN_UNKNOWN;
    size_t depth = 0;
    size_t best_depth = 0;
    uint32_t best_op = UINT32_MAX;
    uint32_t best_state = state;
    uint32_t e = s->ev[s->head].next;
    for (uint64_t steps = 0; s->ev[s->head].next != s->head; steps++) {
        if (steps >= max_steps) return LIN_UNKNOWN;
        assert(e != s->head);
        const struct lin__event *ev = &s->ev[e];
        if (!ev->is_return) {
            uint32_t next_state;
            if (lin__step(s, &s->ops[ev->op], state, &next_state)) {
                if (next_state == UINT32_MAX) return LIN_UNKNOWN;
                lin__toggle(s, ev->op);
                int added = lin__memo_add(s, next_state);
                if (added < 0) return LIN_UNKNOWN;
                if (added > 0) {
                    stack[depth++] = (struct lin__frame){.call = e, .state_before = state};
                    state = next_state;
                    lin__lift(s, e);
                    e = s->ev[s->head].next;
                    continue;
                }
                lin__toggle(s, ev->op);
            }
            e = ev->next;
            continue;
        }
        /* A return: its operation should have been linearized by now. */
        if (depth >= best_depth) {
            best_depth = depth;
            best_op = ev->op;
            best_state = state;
        }
        if (depth == 0) {
            lin__explain(s, best_op, best_depth, best_state, why, why_cap);
            return LIN_VIOLATION;
        }
        struct lin__frame f = stack[--depth];
        uint32_t op = s->ev[f.call].op;
        lin__toggle(s, op);
        state = f.state_before;
        lin__unlift(s, f.call);
        e = s->ev[f.call].next;
    }
    return LIN_OK;
}

enum lin_result lin_check(const struct lin_op *ops, size_t n, uint64_t max_steps, char *why,
                          size_t why_cap) {
    if (why_cap > 0) why[0] = '\0';
    if (n == 0) return LIN_OK;
    if (n > UINT32_MAX / 4) return LIN_UNKNOWN;
    struct lin__search s = {.ops = ops, .n = n};
    s.words = (n + 63) / 64;
    for (size_t i = 0; i < n; i++) s.timed |= ops[i].kind == LIN_PUT && ops[i].expire_time != 0;
    enum lin_result r = LIN_UNKNOWN;
    struct lin__frame *stack = malloc(n * sizeof(*stack));
    s.linearized = calloc(s.words, sizeof(uint64_t));
    if (stack != NULL && s.linearized != NULL && lin__build_events(&s)) {
        r = lin__search(&s, stack, max_steps, why, why_cap);
    }
    free(stack);
    free(s.linearized);
    free(s.ev);
    free(s.states);
    free(s.bytes);
    free(s.state_slots);
    free(s.memo);
    free(s.memo_bits);
    return r;
}
