/* Example state machine: a bank (the guide's BankingSMR). Accounts are
 * named by binary-safe id strings (any bytes, length < 2^32) and hold a u64
 * balance. Uses only the public rabia headers.
 *
 * All integers little-endian; a "str" is u32 length + that many bytes.
 *
 * Operations: u8 opcode, then its fields, then nothing (trailing bytes,
 * truncation or an unknown opcode make a malformed operation):
 *   1 CREATE    str id, u64 initial_balance
 *   2 DEPOSIT   str id, u64 amount
 *   3 WITHDRAW  str id, u64 amount
 *   4 TRANSFER  str from, str to, u64 amount
 *   5 BALANCE   str id
 *   6 ALL       (nothing)
 *
 * Results: u8 kind, then
 *   0 SUCCESS   str message (e.g. "Deposited 5 to alice")
 *   1 BALANCE   u64 balance
 *   2 ALL       u64 count, count x (str id, u64 balance), sorted by id
 *               (bytewise, a proper prefix first)
 *   3 ERROR     u8 code (enum rabia_bank_error), str reason
 * Errors never change the state: CREATE of an existing id (EXISTS), an
 * unknown id (NOT_FOUND; TRANSFER says "Source account not found" or
 * "Destination account not found"), WITHDRAW/TRANSFER above the balance
 * (INSUFFICIENT), a balance that would pass 2^64-1 (OVERFLOW), a malformed
 * operation (MALFORMED). A TRANSFER from an account to itself succeeds
 * without changing anything when the funds suffice.
 *
 * Snapshot: u8 version (1), u64 count, count x (str id, u64 balance) in
 * strictly increasing id order: canonical, so equal banks give equal bytes.
 * Restore checks all of it (version, order, lengths, no trailing bytes). */
#ifndef RABIA_EXAMPLES_BANK_H
#define RABIA_EXAMPLES_BANK_H

#include <stddef.h>
#include <stdint.h>

#include "rabia/state_machine.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const struct rabia_sm_ops rabia_sm_bank;

enum rabia_bank_opcode {
    RABIA_BANK_CREATE = 1,
    RABIA_BANK_DEPOSIT = 2,
    RABIA_BANK_WITHDRAW = 3,
    RABIA_BANK_TRANSFER = 4,
    RABIA_BANK_BALANCE = 5,
    RABIA_BANK_ALL = 6,
};

enum rabia_bank_result_kind {
    RABIA_BANK_R_SUCCESS = 0,
    RABIA_BANK_R_BALANCE = 1,
    RABIA_BANK_R_ALL = 2,
    RABIA_BANK_R_ERROR = 3,
};

enum rabia_bank_error {
    RABIA_BANK_E_EXISTS = 1,
    RABIA_BANK_E_NOT_FOUND = 2,
    RABIA_BANK_E_INSUFFICIENT = 3,
    RABIA_BANK_E_OVERFLOW = 4,
    RABIA_BANK_E_MALFORMED = 5,
};

/* Encoders: append one operation to out. 0, -ENOMEM, or -EINVAL when an id
 * is 2^32 bytes or longer. */
int rabia_bank_encode_create(struct rabia_buf *out, const void *id, size_t id_len, uint64_t initial);
int rabia_bank_encode_deposit(struct rabia_buf *out, const void *id, size_t id_len, uint64_t amount);
int rabia_bank_encode_withdraw(struct rabia_buf *out, const void *id, size_t id_len, uint64_t amount);
int rabia_bank_encode_transfer(struct rabia_buf *out, const void *from, size_t from_len,
                               const void *to, size_t to_len, uint64_t amount);
int rabia_bank_encode_balance(struct rabia_buf *out, const void *id, size_t id_len);
int rabia_bank_encode_all(struct rabia_buf *out);

/* A decoded result; pointers point into the decoded bytes. */
struct rabia_bank_result {
    uint8_t kind;               /* enum rabia_bank_result_kind */
    uint8_t error;              /* ERROR: enum rabia_bank_error */
    const uint8_t *text;        /* SUCCESS: message; ERROR: reason */
    uint32_t text_len;
    uint64_t balance;           /* BALANCE */
    uint64_t count;             /* ALL: number of accounts */
    const uint8_t *accounts;    /* ALL: the encoded list, see below */
    size_t accounts_len;
};
struct rabia_bank_account {
    const uint8_t *id;
    uint32_t id_len;
    uint64_t balance;
};
/* 0, or -EINVAL if p is not a well-formed result (an ALL list is checked
 * whole, so iterating it afterwards cannot fail). */
int rabia_bank_decode_result(const uint8_t *p, size_t len, struct rabia_bank_result *out);
/* Iterate an ALL result: start with *pos = 0; 1 and *acct filled, or 0 at
 * the end. */
int rabia_bank_next_account(const struct rabia_bank_result *res, size_t *pos,
                            struct rabia_bank_account *acct);

/* Local read-only inspection: number of accounts; the balance of id
 * (0 and *balance set, or -ENOENT). */
uint64_t rabia_bank_count(const void *sm);
int rabia_bank_lookup(const void *sm, const void *id, size_t id_len, uint64_t *balance);

#ifdef __cplusplus
}
#endif
#endif
