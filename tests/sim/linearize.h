/* Linearizability checker for key-value histories (Jepsen/Porcupine style).
 *
 * Model: one register per key.  Keys and values are uint64_t; the value 0
 * means "absent / never written" and is the initial value of every key.
 *
 *   LIN_READ  (key)                 -> result = observed value
 *   LIN_WRITE (key, arg)            sets the register to arg
 *   LIN_CAS   (key, arg, arg2)      -> result != 0 if it swapped: if the
 *                                      register holds arg it becomes arg2
 *
 * Each operation has an invocation and a completion time (ticks) and one of
 * three outcomes:
 *   LIN_OK       it completed with the recorded result.  Needs
 *                invoke <= complete.
 *   LIN_UNKNOWN  timed out / connection lost: it may have taken effect at any
 *                point after its invocation (even after the end of the
 *                history) or never; its result and `complete` are ignored.
 *                An unknown READ has no effect and is dropped.
 *   LIN_FAIL     definitely had no effect: dropped.
 *
 * Time ties: an operation that completes at tick t does NOT precede one
 * invoked at the same tick t; the two are treated as concurrent (the
 * conservative choice: it can only hide, never invent, a violation).
 *
 * Algorithm: the history is split per key (linearizability is compositional)
 * and each key is searched with Wing & Gong / Lowe's algorithm as in
 * Porcupine: call and return events in time order in a linked list, the
 * pending calls before the first return are tried in order (ok ops first,
 * then unknown ones), and (linearized set, value) pairs already known to
 * fail are cached to prune.  Unknown operations never return (their return
 * event sits at +infinity) and may be left out at the end; a cached failure
 * with used-unknown set U also prunes the same ok set and value with any
 * superset of U, since an unknown op can always be left out.  Values no
 * remaining op can tell apart are merged into one, and unknown writes of
 * such values are treated as interchangeable.  The checker is exact: these
 * reductions never change the verdict (the unit test cross-checks it
 * against a plain search on many small histories).
 *
 * Cost: a linearizable history is typically checked in time close to
 * linear (10,000 ops of 5 clients on one key: ~20-60 ms).  A violation is
 * found by exhausting every order before it, which takes longer; failed CAS
 * ops (they fit almost anywhere) together with unknown writes make that
 * the most expensive (same history with a stale read: ~0.5 s).  Bound it
 * with max_states_per_key.
 *
 * Plain C17 and libc.  lin_check only reads the history; a history must not
 * be changed while it is being checked. */
#ifndef RABIA_TESTS_SIM_LINEARIZE_H
#define RABIA_TESTS_SIM_LINEARIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum lin_kind { LIN_READ, LIN_WRITE, LIN_CAS };
enum lin_status { LIN_OK, LIN_UNKNOWN, LIN_FAIL };

struct lin_op {
    uint64_t client;        /* for messages only */
    uint64_t key;
    enum lin_kind kind;
    uint64_t arg;           /* WRITE: value; CAS: expected */
    uint64_t arg2;          /* CAS: new value */
    uint64_t result;        /* READ: value seen; CAS: nonzero if swapped */
    enum lin_status status;
    uint64_t invoke;        /* ticks */
    uint64_t complete;      /* ticks; ignored unless status == LIN_OK */
};

struct lin_history; /* an append-only list of lin_op; ops are numbered 0.. */

struct lin_history *lin_history_create(void);
void lin_history_destroy(struct lin_history *h);
/* Appends a copy of *op; returns its index, or SIZE_MAX if out of memory. */
size_t lin_history_add(struct lin_history *h, const struct lin_op *op);
/* Recording helpers for a simulator: lin_history_invoke appends an op with
 * status LIN_UNKNOWN (what it stays if it never completes) and returns its
 * index (SIZE_MAX on OOM); lin_history_complete sets its outcome, result and
 * completion time (-1 if id is out of range, else 0). */
size_t lin_history_invoke(struct lin_history *h, uint64_t client,
                          enum lin_kind kind, uint64_t key, uint64_t arg,
                          uint64_t arg2, uint64_t invoke);
int lin_history_complete(struct lin_history *h, size_t id,
                         enum lin_status status, uint64_t result,
                         uint64_t complete);
size_t lin_history_len(const struct lin_history *h);
/* The op at index i (NULL if out of range), which may be amended in place;
 * valid until the next add. */
struct lin_op *lin_history_op(const struct lin_history *h, size_t i);

/* Writes a one-line description like "c3 READ k7 -> 42 [100,120]" or
 * "c1 WRITE k7 9 [90,?)"; returns what snprintf returns. */
int lin_op_format(const struct lin_op *op, char *buf, size_t n);

enum lin_verdict {
    LIN_LINEARIZABLE = 0, /* every key checked and linearizable */
    LIN_VIOLATION = 1,    /* some key is provably not linearizable */
    LIN_GAVE_UP = 2,      /* no violation found, but some key hit the bound */
    LIN_ERROR = -1,       /* invalid op (why says which) or out of memory */
};

struct lin_result {
    bool ok;                  /* false only if a violation was proven */
    bool gave_up;             /* some key hit max_states_per_key: unverified */
    uint64_t bad_key;         /* !ok: the (smallest) violating key */
    size_t bad_op;            /* !ok: history index of the ok op whose
                                 completion no order of the ops gets past */
    uint64_t bad_time;        /* !ok: bad_op's completion; the ops of bad_key
                                 invoked at or before it (with their
                                 recorded outcomes) are by themselves not
                                 linearizable */
    uint64_t gave_up_key;     /* gave_up: first key abandoned */
    size_t keys_gave_up;      /* how many keys were abandoned */
    size_t keys;              /* keys searched */
    size_t ops_checked;       /* ops that entered a search */
    size_t ops_dropped;       /* failed ops, unknown reads, and unknown
                                 writes of values nothing observes (on
                                 keys without a failed CAS) */
    uint64_t states_explored; /* search steps, all keys */
    char why[256];            /* readable verdict / explanation */
};

/* Checks the history.  Keys are checked in increasing order and checking
 * stops at the first violating key.  max_states_per_key bounds the search
 * steps per key (0: unbounded); a key that hits it is skipped and reported
 * as gave_up, not as a violation.  Returns an enum lin_verdict and fills
 * *out (which may be NULL). */
int lin_check(const struct lin_history *h, uint64_t max_states_per_key,
              struct lin_result *out);

#ifdef __cplusplus
}
#endif
#endif
