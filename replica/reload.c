/* What a replica takes while it runs (rabia_replica_reload; rabiad calls it
 * on SIGHUP with its configuration read again): the other members'
 * addresses and the client users.
 *
 * Addresses: a machine that replaced a dead member at another address must
 * be dialed there by every survivor; restarting a survivor to tell it would
 * take a second vote away from a cluster that already lost one (with 3
 * replicas: no quorum until it is back). Only addresses change: the number
 * of members is fixed (there is no reconfiguration), this replica's own
 * address is where it listens (restart it to move it), and the cluster id
 * seeds the common coin and is in every HELLO and log segment, so it stays
 * (persist/cluster_id.c keeps it in the data dir across restarts with the
 * new list).
 *
 * Users: requirepass and acl-file read again, as Redis's ACL LOAD (a
 * password rotated, a user added or revoked, no restart); connections of
 * users other than default are closed (auth.c). Turning authentication on
 * or off needs a restart.
 *
 * All or nothing: a reload that cannot be taken whole takes nothing. It is
 * checked and parsed on the caller's thread and handed to the loop thread,
 * which applies it at its next turn. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "acl.h"
#include "internal.h"
#include "invariant.h"

int rabia_replica_reload(struct rabia_replica *r, const struct rabia_replica_config *next, char *err, size_t errlen)
{
    RABIA_ASSERT(r && next && err && errlen);
    /* r->cfg's n, id and own member entry, r->cluster_id and whether users
     * are checked never change after create: safe to read from this thread */
    const struct rabia_member *own = &r->cfg.members[r->self];
    if (next->n != r->cfg.n) {
        snprintf(err, errlen,
                 "members lists %u replicas, this cluster has %u: the number of members cannot change (a cluster "
                 "of another size is a new cluster: back this one up and restore it there)",
                 next->n, r->cfg.n);
        return RABIA_E_CONFIG;
    }
    if (next->id != r->cfg.id) {
        snprintf(err, errlen, "id is %u, this replica runs as %u: a replica's id cannot change", next->id, r->cfg.id);
        return RABIA_E_CONFIG;
    }
    const struct rabia_member *nown = &next->members[r->self];
    if (strcmp(nown->host, own->host) || nown->port != own->port) {
        snprintf(err, errlen,
                 "this replica's own address changed (%s:%u -> %s:%u): it listens at the old one; restart it to "
                 "move it",
                 own->host, own->port, nown->host, nown->port);
        return RABIA_E_CONFIG;
    }
    if (next->cluster_id && next->cluster_id != r->cluster_id) {
        snprintf(err, errlen, "cluster-id %016" PRIx64 " is not this cluster's (%016" PRIx64 "): it cannot change",
                 next->cluster_id, r->cluster_id);
        return RABIA_E_CONFIG;
    }
    struct acl *users = NULL;
    int rc = replica_auth_users_load(r, next, &users, err, errlen);
    if (rc) return rc;
    pthread_mutex_lock(&r->reload_mu);
    memcpy(r->members_next, next->members, sizeof r->members_next);
    replica_auth_users_free(r->users_next); /* a reload the loop has not taken yet: this one wins */
    r->users_next = users;
    snprintf(r->users_from, sizeof r->users_from, "%s", next->acl_file);
    snprintf(r->users_pass, sizeof r->users_pass, "%s", next->requirepass);
    __atomic_store_n(&r->reload_pending, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&r->reload_mu);
    replica_wake(r);
    return 0;
}

void replica_reload_poll(struct rabia_replica *r)
{
    if (!__atomic_load_n(&r->reload_pending, __ATOMIC_ACQUIRE)) return;
    struct rabia_member next[RABIA_MAX_REPLICAS];
    char from[sizeof r->users_from], pass[sizeof r->users_pass];
    pthread_mutex_lock(&r->reload_mu);
    memcpy(next, r->members_next, sizeof next);
    struct acl *users = r->users_next;
    r->users_next = NULL;
    memcpy(from, r->users_from, sizeof from);
    memcpy(pass, r->users_pass, sizeof pass);
    OPENSSL_cleanse(r->users_pass, sizeof r->users_pass);
    __atomic_store_n(&r->reload_pending, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&r->reload_mu);
    unsigned changed = 0;
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        struct rabia_member *m = &r->cfg.members[p];
        RABIA_ASSERT(next[p].id == m->id);
        if (p == r->self || (!strcmp(m->host, next[p].host) && m->port == next[p].port)) continue;
        replica_log(r, RABIA_LOG_INFO, "replica %u's address changed (reload): %s:%u -> %s:%u; dialing it there",
                    p + 1, m->host, m->port, next[p].host, next[p].port);
        *m = next[p];
        changed++;
        struct peer *pe = &r->peers[p];
        /* the link to the old address goes; the loop dials the new one at
         * once (closing it sets the next dial, after a short backoff) */
        pe->backoff_us = 0;
        pe->redial_at_us = 0;
        if (pe->out != UINT32_MAX) replica_conn_close(r, r->conns[pe->out].c);
    }
    if (!changed) replica_log(r, RABIA_LOG_INFO, "reload: the members' addresses are unchanged");
    if (users) {
        uint32_t n = users->n;
        uint32_t closed = replica_auth_users_take(r, users, pass, UINT32_MAX);
        OPENSSL_cleanse(pass, sizeof pass);
        replica_auth_users_free(users);
        replica_log(r, RABIA_LOG_INFO,
                    "reload: %u user%s from requirepass%s%s; closed %u connection%s of users other than default "
                    "(they log in again under the new rules, as after Redis's ACL LOAD)",
                    n, n == 1 ? "" : "s", from[0] ? " and " : "", from, closed, closed == 1 ? "" : "s");
    }
}
