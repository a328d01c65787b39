/* Writes the seed corpus of fuzz_codec: valid frames of every type and a few
 * batch bodies, one file each, into the directory given as argv[1]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static const char *dir;
static int nfiles;

static void save(const uint8_t *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/seed_%03d", dir, nfiles++);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void save_msg(const struct rabia_msg *m)
{
    static uint8_t frame[4096];
    int n = rabia_msg_encode(m, frame, sizeof frame);
    if (n < 0) {
        fprintf(stderr, "gen_corpus: cannot encode %s: %s\n",
                rabia_msg_type_name(m->type), rabia_strerror(n));
        exit(1);
    }
    save(frame, (size_t)n);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];

    static const uint8_t op1[] = "put k v", op2[] = "get k";
    struct rabia_buf body = {0};
    struct rabia_req r1 = {.client_id = 7, .seq = 3, .ack = 2, .op = op1, .op_len = sizeof op1 - 1};
    struct rabia_req r2 = {.client_id = 9, .seq = 1, .ack = 1, .op = op2, .op_len = sizeof op2 - 1};
    struct rabia_req r3 = {.client_id = 9, .seq = 2, .ack = 1};
    if (rabia_batch_init(&body) || rabia_batch_append(&body, &r1) ||
        rabia_batch_append(&body, &r2) || rabia_batch_append(&body, &r3)) {
        fprintf(stderr, "gen_corpus: batch encoding failed\n");
        return 1;
    }
    save(body.data, body.len); /* a bare batch body for the iterator */
    save(body.data, RABIA_BATCH_HEADER + 28 + r1.op_len);

    const struct rabia_batch_id id = {.incarnation = 2, .seq = 41, .proxy = 1};
    static const uint8_t text[] = "slot: 12\nphase: 1\n";
    const struct rabia_msg msgs[] = {
        {.type = RABIA_MSG_BATCH, .from = 1, .has_id = 1, .id = id,
         .body = body.data, .body_len = (uint32_t)body.len},
        {.type = RABIA_MSG_PROPOSAL, .from = 2, .slot = 12, .has_id = 1, .id = id},
        {.type = RABIA_MSG_PROPOSAL, .from = 0, .slot = 12},
        {.type = RABIA_MSG_STATE, .from = 2, .slot = 12, .phase = 1, .value = 1,
         .has_id = 1, .id = id},
        {.type = RABIA_MSG_STATE, .from = 3, .slot = 12, .phase = 2},
        {.type = RABIA_MSG_VOTE, .from = 4, .slot = 12, .phase = 1, .value = RABIA_VQ},
        {.type = RABIA_MSG_VOTE, .from = 4, .slot = 12, .phase = 3, .value = 1,
         .has_id = 1, .id = id},
        {.type = RABIA_MSG_DECISION, .from = 0, .slot = 12, .value = 1, .has_id = 1,
         .id = id, .body = body.data, .body_len = (uint32_t)body.len},
        {.type = RABIA_MSG_DECISION, .from = 0, .slot = 13},
        {.type = RABIA_MSG_FETCH, .from = 1, .slot = 12},
        {.type = RABIA_MSG_FETCH, .from = 1, .slot = 12, .has_id = 1, .id = id},
        {.type = RABIA_MSG_CATCHUP, .from = 1, .slot = 5},
        {.type = RABIA_MSG_HORIZON_REQ, .from = 2, .u64 = 0x1234},
        {.type = RABIA_MSG_HORIZON, .from = 3, .u64 = 0x1234, .slot = 99},
        {.type = RABIA_MSG_SNAP_REQ, .from = 2, .slot = 50},
        {.type = RABIA_MSG_SNAP_CHUNK, .from = 1, .slot = 49, .u64 = 4, .u64b = 100,
         .body = text, .body_len = sizeof text - 1},
        {.type = RABIA_MSG_HELLO, .from = 2, .u64 = 0xc1, .u64b = 3,
         .value = RABIA_PROTOCOL_VERSION},
        {.type = RABIA_MSG_FIRST_START, .from = 2, .u64 = 0x5eed},
        {.type = RABIA_MSG_CLIENT_REQ, .u64 = 7, .slot = 3, .u64b = 2, .body = op1,
         .body_len = sizeof op1 - 1},
        {.type = RABIA_MSG_CLIENT_REPLY, .from = 1, .u64 = 7, .slot = 3,
         .value = RABIA_REPLY_OK, .body = op2, .body_len = sizeof op2 - 1},
        {.type = RABIA_MSG_CLIENT_REPLY, .from = 1, .u64 = 7, .slot = 4,
         .value = RABIA_REPLY_REDIRECT},
        {.type = RABIA_MSG_STATUS_REQ},
        {.type = RABIA_MSG_STATUS, .from = 1, .body = text, .body_len = sizeof text - 1},
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++)
        save_msg(&msgs[i]);
    rabia_buf_free(&body);
    return 0;
}
