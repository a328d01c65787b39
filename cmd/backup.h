/* rabia-cli backup (cmd/backup.c): a consistent snapshot of a running
 * cluster, from the first replica of addrs that serves one, written to
 * path atomically; and --verify of a backup file. Exit codes as rabia-cli's. */
#ifndef RABIA_CMD_BACKUP_H
#define RABIA_CMD_BACKUP_H
#include <stddef.h>
#include <stdint.h>
int cli_backup(char **addrs, size_t n_addrs, const char *path, uint32_t timeout_ms);
int cli_backup_verify(const char *path);
#endif
