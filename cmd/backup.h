/* rabia-cli backup (cmd/backup.c): a consistent snapshot of a running
 * cluster, from the first replica of addrs that serves one, written to
 * path atomically; and --verify of a backup file. Exit codes as rabia-cli's
 * (1: refused, for authentication or permission; 3: no replica served it).
 * cfg gives the connection's TLS (tls, tls_*_file) and CLIENT_AUTH (user,
 * password; none when password is NULL); its addrs are not used. */
#ifndef RABIA_CMD_BACKUP_H
#define RABIA_CMD_BACKUP_H
#include <stddef.h>
#include <stdint.h>

#include "rabia/client.h"

int cli_backup(char **addrs, size_t n_addrs, const char *path, uint32_t timeout_ms, const struct rabia_client_cfg *cfg);
int cli_backup_verify(const char *path);
#endif
