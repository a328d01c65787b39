/* Durable start counter of a replica (see incarnation.c). */
#ifndef RABIA_PERSIST_INCARNATION_H
#define RABIA_PERSIST_INCARNATION_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reads dir/incarnation (creating dir if needed), stores and fsyncs the
 * next value and returns it; *existed tells whether a previous start left
 * the file. 0, or a negative errno with err naming the cause and the fix. */
int rabia_incarnation_next(const char *dir, uint64_t *incarnation, bool *existed, char *err, size_t errlen);
/* Removes dir/incarnation again (and makes that durable): a first start
 * refused before it sent anything, so that the next start is a first one
 * too and not a restart without a log (replica/replica.c). */
void rabia_incarnation_forget(const char *dir);
#endif
