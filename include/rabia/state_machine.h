/* The state machine interface: the C form of the guide's StateMachine trait.
 *
 * A state machine is deterministic: the same operations applied in the same
 * order to the same state give the same state and the same results on every
 * replica. It must not read clocks, random sources, addresses of its own
 * memory or anything else that differs between replicas. Errors that depend
 * only on the operation and the state (unknown account, bad encoding) are
 * results, written into the reply; they never abort the process. */
#ifndef RABIA_STATE_MACHINE_H
#define RABIA_STATE_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A growable byte buffer (malloc'd). Zero-initialise before first use. */
struct rabia_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};
int rabia_buf_reserve(struct rabia_buf *b, size_t extra); /* 0 or -ENOMEM */
int rabia_buf_append(struct rabia_buf *b, const void *p, size_t n);
int rabia_buf_put_u8(struct rabia_buf *b, uint8_t v);
int rabia_buf_put_u32(struct rabia_buf *b, uint32_t v); /* little-endian */
int rabia_buf_put_u64(struct rabia_buf *b, uint64_t v); /* little-endian */
void rabia_buf_clear(struct rabia_buf *b);               /* len = 0, keep memory */
void rabia_buf_free(struct rabia_buf *b);

struct rabia_sm_ops {
    const char *name;
    /* Create an empty state machine. NULL on allocation failure. */
    void *(*create)(void);
    void (*destroy)(void *sm);
    /* Apply one operation and append its result to `reply`. Returns 0, or a
     * negative errno only for failures that are not deterministic (-ENOMEM):
     * the replica stops rather than diverge. A malformed operation is a
     * deterministic error: return 0 with an error result. */
    int (*apply)(void *sm, const uint8_t *op, size_t op_len, struct rabia_buf *reply);
    /* Append a canonical encoding of the whole state to `out`: two replicas
     * with equal state produce equal bytes (the state hash is taken of it). */
    int (*snapshot)(void *sm, struct rabia_buf *out);
    /* Replace the state with a snapshot. On error (-EINVAL for corrupt or
     * truncated data, -ENOMEM) the previous state is unchanged. */
    int (*restore)(void *sm, const uint8_t *data, size_t len);
};

#ifdef __cplusplus
}
#endif
#endif
