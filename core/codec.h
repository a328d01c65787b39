/* Wire codec: struct rabia_msg <-> checksummed frames, and batch bodies.
 *
 * Frame format (every integer little-endian):
 *
 *   offset size  field
 *        0    3  magic 'R' 'B' 'A'            (as a LE u32 together with the
 *        3    1  version = RABIA_PROTOCOL_VERSION   version: 0x01414252 for v1)
 *        4    1  type   (enum rabia_msg_type)
 *        5    1  from   (sender replica id)
 *        6    2  flags  (must be 0; reserved for later versions)
 *        8    4  payload_len
 *       12    4  checksum: low 32 bits of XXH3_64bits_withSeed(payload,
 *                seed RABIA_FRAME_SEED ^ header bytes 4..11 as a LE u64)
 *
 * Version 2 frames differ only in the checksum: low 32 bits of
 * XXH64(header bytes 4..11 followed by the payload, seed RABIA_FRAME_SEED).
 * They are still read (an older client; log records written before the
 * change, which carry frames), never written; an older replica's HELLO
 * decodes, and hello.c refuses it by its version with a message.
 *       16    payload_len bytes of payload
 *
 * A frame is 16 + payload_len bytes and never more than RABIA_MAX_FRAME.
 * The payload holds exactly the fields the type uses, in this order, and
 * nothing else (a decoder rejects trailing bytes):
 *
 *   BATCH        id, body
 *   PROPOSAL     slot, opt_id
 *   STATE        slot, phase u16, value u8 (0/1), opt_id
 *   VOTE         slot, phase u16, value u8 (0/1/2 = "?"), opt_id
 *   DECISION     slot, value u8 (0 null / 1 batch), opt_id, body
 *   FETCH        slot, opt_id (the majority batch wanted, when known)
 *   CATCHUP, SNAP_REQ   slot
 *   HORIZON_REQ  u64 (nonce)
 *   HORIZON      u64 (nonce), slot
 *   SNAP_CHUNK   slot, u64 (offset), u64b (total), body
 *   HELLO        u64 (cluster id), u64b (incarnation), value u8 (version)
 *   PEER_AUTH    u64 (refusal cause), value u8 (step), body (nonce / proof)
 *   CLIENT_REQ   u64 (client id), slot (seq), u64b (ack), body
 *   CLIENT_REPLY u64 (client id), slot (seq), value u8 (status), body
 *   STATUS_REQ   (empty)
 *   STATUS       body
 *   CLIENT_AUTH  body (u8 user length, user, password)
 *   CLIENT_AUTH_REPLY  value u8 (0 accepted, 1 refused), body (the message)
 *   BACKUP_REQ   (empty)
 *   BACKUP_CHUNK slot, u64 (offset), u64b (total), value u8 (0 chunk, 1 refusal, 2 taken), body
 *
 * where slot/u64/u64b are u64, id = proxy u8, incarnation u64, seq u64
 * (17 bytes), opt_id = has_id u8 (0/1) followed by id only when has_id is 1
 * (an absent id decodes as zeroes), and body = u32 length + bytes.
 *
 * Range rules (checked by both encoder and decoder, so that every frame the
 * encoder writes decodes, and decoding then re-encoding gives the same
 * bytes): phase >= 1 for STATE/VOTE; DECISION value 1 carries an id and value
 * 0 carries neither id nor body; CLIENT_REPLY status is a rabia_reply_status;
 * SNAP_CHUNK offset + body length <= total; BACKUP_CHUNK as SNAP_CHUNK with
 * value 0, and slot, offset and total 0 with value 1 (body: why), offset,
 * total and body empty with value 2 (slot: the least slot it will have); for replica-to-replica types
 * (1..13) `from` and any id's proxy are < RABIA_MAX_REPLICAS. HELLO's version
 * byte is carried as is: the handshake compares it. A BATCH always carries
 * its id; it decodes with has_id = 1 and encodes whatever has_id says.
 * The encoder refuses a message with a nonzero field its type does not carry
 * (the field would silently be lost); `body` is ignored when body_len is 0.
 *
 * Header checks come first (magic, version, flags, size: see
 * rabia_frame_peek), then the checksum, then the type, then the fields; so a
 * corrupted payload reports RABIA_E_CHECKSUM and an unknown type with a good
 * checksum reports RABIA_E_TYPE.
 *
 * Batch body (the body of a BATCH message, parsed by the apply layer):
 *   u32 count, u64 time (the proposing replica's wall clock in Unix
 *   milliseconds when it cut the batch: the state machine's clock, see
 *   rabia_sm_batch), then count times: u64 client_id, u64 seq, u64 ack,
 *   u32 op_len, op_len bytes of op; nothing after the last request. */
#ifndef RABIA_CODEC_H
#define RABIA_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "rabia/state_machine.h"
#include "rabia/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RABIA_FRAME_HEADER 16u
#define RABIA_FRAME_SEED 0x5241424941ull /* "RABIA": fixed, part of the format */
#define RABIA_FRAME_VERSION_XXH64 2        /* the one older frame version still read */
/* Largest BATCH body that still fits a frame (header, id, body length). */
#define RABIA_MAX_BATCH_BODY (RABIA_MAX_FRAME - RABIA_FRAME_HEADER - 17u - 4u)
/* Bytes of a batch body before its first request (count, time). */
#define RABIA_BATCH_HEADER 12u
/* Bytes a request takes in a batch body before its op. */
#define RABIA_BATCH_REQ_HEADER 28u

/* Frame size of m, or 0 if m cannot be encoded (bad field, too big). */
size_t rabia_msg_encoded_size(const struct rabia_msg *m);
/* Write m's frame to out. Returns bytes written, -ENOSPC when cap is too
 * small, RABIA_E_TOOBIG when the frame would exceed RABIA_MAX_FRAME, or
 * RABIA_E_MALFORMED / RABIA_E_TYPE for a message that cannot be encoded. */
int rabia_msg_encode(const struct rabia_msg *m, uint8_t *out, size_t cap);
/* Stream framing: with len >= 16 and a sane header (magic, version, flags,
 * size), returns 0 and sets *frame_len (which may exceed len: wait for more
 * bytes). -EAGAIN when len < 16. Any other negative error means the header
 * can never become valid: close the connection. */
int rabia_frame_peek(const uint8_t *p, size_t len, size_t *frame_len);
/* Decode exactly one frame; len must be its full length (a shorter or longer
 * buffer is RABIA_E_MALFORMED). out->body points into p. On error *out is
 * zeroed. */
int rabia_msg_decode(const uint8_t *p, size_t len, struct rabia_msg *out);
/* The same for frames kept where a stronger checksum covers them (the
 * write-ahead log's XXH3 per record): the frame's checksum field is 0 and
 * not checked, which saves hashing every logged body a second time. Never
 * for frames that travel. */
int rabia_msg_encode_unsummed(const struct rabia_msg *m, uint8_t *out, size_t cap);
int rabia_msg_decode_unsummed(const uint8_t *p, size_t len, struct rabia_msg *out);
/* The checksum a frame should carry, computed over the header bytes 4..11
 * and the len - 16 bytes after the header (len >= 16). For tests and fuzzing. */
uint32_t rabia_frame_checksum(const uint8_t *frame, size_t len);
/* XXH3_64bits_withSeed, through libxxhash's vector dispatch (AVX2 and
 * wider where the CPU has them) for inputs over 1 KiB: the same value.
 * Frames and log records (persist/wal.c) use it. */
uint64_t rabia_xxh3(const void *p, size_t n, uint64_t seed);
/* "BATCH", "VOTE", ...; "UNKNOWN" for other values. */
const char *rabia_msg_type_name(uint8_t type);

/* One client request inside a batch body; op points into the body. */
struct rabia_req {
    uint64_t client_id, seq, ack;
    const uint8_t *op;
    uint32_t op_len;
};

/* Clear body and write an empty batch (count 0). 0 or -ENOMEM. */
int rabia_batch_init(struct rabia_buf *body);
/* Append r and bump the count at body->data[0..3]. body must have been
 * started with rabia_batch_init. 0, -ENOMEM, -EINVAL (body not initialised,
 * op NULL with op_len > 0) or RABIA_E_TOOBIG when the body would exceed
 * RABIA_MAX_BATCH_BODY or 2^32-1 requests (the body is then unchanged). */
int rabia_batch_append(struct rabia_buf *body, const struct rabia_req *r);
/* The count field of a body (0 if len < 4). Does not validate the body. */
uint32_t rabia_batch_count(const uint8_t *body, size_t len);
/* Stamp a body (started with rabia_batch_init) with its time in Unix ms. */
void rabia_batch_set_time(struct rabia_buf *body, uint64_t time_ms);
/* The time field of a body (0 if len < RABIA_BATCH_HEADER). */
uint64_t rabia_batch_time(const uint8_t *body, size_t len);

struct rabia_batch_iter {
    const uint8_t *p, *end;
    uint32_t left;
};
/* 0, or RABIA_E_MALFORMED when the body is shorter than its count field or
 * the count cannot fit in the bytes that follow. */
int rabia_batch_iter_init(struct rabia_batch_iter *it, const uint8_t *body, size_t len);
/* 1 and *out filled for the next request, 0 at a clean end, or
 * RABIA_E_MALFORMED for a truncated request or bytes after the last one. */
int rabia_batch_iter_next(struct rabia_batch_iter *it, struct rabia_req *out);
/* 0 if the whole body parses, else RABIA_E_MALFORMED. */
int rabia_batch_validate(const uint8_t *body, size_t len);

#ifdef __cplusplus
}
#endif
#endif
