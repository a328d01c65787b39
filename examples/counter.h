/* Example state machine: a replicated 64-bit counter (the guide's first
 * application). Uses only the public rabia headers.
 *
 * Operation encoding (little-endian):
 *   u8 opcode                     1 = INCREMENT, 2 = DECREMENT, 3 = GET
 *   u8 opcode, i64 value          4 = SET (two's complement, 9 bytes in all)
 * Nothing may follow; any other length or opcode is a malformed operation.
 *
 * Result encoding:
 *   u8 0, i64 value               success: the counter's value after the op
 *   u8 1, u32 len, len bytes      error, with a reason text (ASCII):
 *                                 "malformed operation" or "overflow"
 *
 * Overflow: INCREMENT at INT64_MAX and DECREMENT at INT64_MIN do not wrap;
 * they return the error "overflow" and leave the counter unchanged.
 *
 * Snapshot: u8 version (1), i64 value: 9 bytes; restore accepts exactly
 * that and nothing else. */
#ifndef RABIA_EXAMPLES_COUNTER_H
#define RABIA_EXAMPLES_COUNTER_H

#include <stddef.h>
#include <stdint.h>

#include "rabia/state_machine.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const struct rabia_sm_ops rabia_sm_counter;

enum rabia_counter_op {
    RABIA_COUNTER_INC = 1,
    RABIA_COUNTER_DEC = 2,
    RABIA_COUNTER_GET = 3,
    RABIA_COUNTER_SET = 4,
};

/* Append an encoded operation to out (value is used only by SET).
 * 0, -ENOMEM, or -EINVAL for an unknown op. */
int rabia_counter_encode(struct rabia_buf *out, enum rabia_counter_op op, int64_t value);

/* Decode a result. Returns 0 with *value set for a success, 1 with
 * *err and *err_len pointing at the reason (inside p) for an error result, or
 * -EINVAL if p is not a result. Either out-pointer may be NULL. */
int rabia_counter_decode_result(const uint8_t *p, size_t len, int64_t *value,
                                const char **err, size_t *err_len);

/* The counter's current value (local read-only inspection). */
int64_t rabia_counter_value(const void *sm);

#ifdef __cplusplus
}
#endif
#endif
