/* Peer host names looked up off the event loop. A member given by name is
 * looked up again at every dial (a machine replaced behind the same name is
 * found), and getaddrinfo blocks: for the resolver's whole timeout when DNS
 * does not answer. On the loop that stopped the replica serving for that
 * long after every backoff (tests/integration/dns_lookup.sh: 6 s stalls at
 * a 6 s timeout). So dial asks this file: an address literal is converted
 * at once; a name is handed to one lookup thread, the dial waits, and the
 * thread wakes the loop when the answer (or the failure) is in. The thread
 * starts at the first name; it never touches the replica once destroy has
 * begun (it may still be inside getaddrinfo then: it finishes the lookup,
 * then frees what it shares with the replica, the last one out). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "invariant.h"

enum lookup_state { L_IDLE, L_ASKED, L_RUNNING, L_DONE };
enum { LOOKUP_ADDRS = 8 }; /* addresses of one name kept, tried in turn */

struct lookup_slot {
    char host[256];
    uint16_t port;
    enum lookup_state st;
    int rc; /* L_DONE: the number of addresses, or the negative errno of rio_resolve */
    struct sockaddr_storage ss[LOOKUP_ADDRS];
    socklen_t len[LOOKUP_ADDRS];
};

struct replica_lookups {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct lookup_slot s[RABIA_MAX_REPLICAS];
    struct rabia_replica *r; /* valid while !stop */
    bool stop, started;
    int refs;          /* the replica's, and the thread's while it runs */
    uint32_t done;     /* bit p: a lookup for peer p finished (atomic accesses) */
};

/* Drop one reference, with mu held (released here); the last one frees. */
static void unref_locked(struct replica_lookups *L)
{
    bool last = --L->refs == 0;
    pthread_mutex_unlock(&L->mu);
    if (last) {
        pthread_mutex_destroy(&L->mu);
        pthread_cond_destroy(&L->cv);
        free(L);
    }
}

static void *lookup_main(void *arg)
{
    struct replica_lookups *L = arg;
    pthread_mutex_lock(&L->mu);
    for (;;) {
        int p = -1;
        while (!L->stop) {
            for (int i = 0; i < RABIA_MAX_REPLICAS && p < 0; i++)
                if (L->s[i].st == L_ASKED) p = i;
            if (p >= 0) break;
            pthread_cond_wait(&L->cv, &L->mu);
        }
        if (L->stop) break;
        struct lookup_slot *sl = &L->s[p];
        sl->st = L_RUNNING;
        char host[sizeof sl->host];
        memcpy(host, sl->host, sizeof host);
        uint16_t port = sl->port;
        pthread_mutex_unlock(&L->mu);
        struct sockaddr_storage ss[LOOKUP_ADDRS];
        socklen_t len[LOOKUP_ADDRS];
        int rc = rio_resolve(host, port, ss, len, LOOKUP_ADDRS); /* may take the resolver's timeout */
        pthread_mutex_lock(&L->mu);
        sl->st = L_DONE;
        sl->rc = rc;
        for (int i = 0; i < rc; i++) {
            sl->ss[i] = ss[i];
            sl->len[i] = len[i];
        }
        memcpy(sl->host, host, sizeof host); /* what the answer is for */
        sl->port = port;
        __atomic_or_fetch(&L->done, 1u << p, __ATOMIC_RELEASE);
        if (!L->stop) replica_wake(L->r); /* under mu: destroy sets stop under it first */
    }
    unref_locked(L);
    return NULL;
}

int replica_lookups_create(struct rabia_replica *r)
{
    struct replica_lookups *L = calloc(1, sizeof(*L));
    if (!L) return -ENOMEM;
    pthread_mutex_init(&L->mu, NULL);
    pthread_cond_init(&L->cv, NULL);
    L->r = r;
    L->refs = 1;
    r->lookups = L;
    return 0;
}

void replica_lookups_destroy(struct rabia_replica *r)
{
    struct replica_lookups *L = r->lookups;
    if (!L) return;
    r->lookups = NULL;
    pthread_mutex_lock(&L->mu);
    L->stop = true;
    L->r = NULL;
    pthread_cond_signal(&L->cv);
    unref_locked(L);
}

/* Loop thread. 1: an address of peer p is in *ss (a name with several:
 * the one `turn` picks, so that a dial that failed tries the next: a name
 * with an IPv6 address first, of a peer listening on IPv4 only, was never
 * reached); 0: its name is being looked up (the loop is woken when the
 * answer is in); < 0: the lookup failed (negative errno; why says it in
 * words). */
int replica_lookup(struct rabia_replica *r, uint8_t p, uint32_t turn, struct sockaddr_storage *ss, socklen_t *len,
                   char *why, size_t whylen)
{
    RABIA_ASSERT(p < r->cfg.n && p != r->self);
    const struct rabia_member *m = &r->cfg.members[p];
    why[0] = 0;
    if (rio_host_is_literal(m->host)) {
        int rc = rio_resolve(m->host, m->port, ss, len, 1); /* no lookup: a conversion */
        if (rc < 0) snprintf(why, whylen, "%s", rabia_strerror(rc));
        return rc < 0 ? rc : 1;
    }
    struct replica_lookups *L = r->lookups;
    RABIA_ASSERT(L != NULL);
    int out = 0;
    pthread_mutex_lock(&L->mu);
    struct lookup_slot *sl = &L->s[p];
    if (sl->st == L_DONE) {
        sl->st = L_IDLE;
        if (!strcmp(sl->host, m->host) && sl->port == m->port) { /* else: for an address since reloaded */
            out = sl->rc < 0 ? sl->rc : 1;
            if (out == 1) {
                RABIA_ASSERT(sl->rc <= LOOKUP_ADDRS);
                *ss = sl->ss[turn % (uint32_t)sl->rc];
                *len = sl->len[turn % (uint32_t)sl->rc];
            } else {
                snprintf(why, whylen, "%s",
                         sl->rc == -EAGAIN ? "no answer from DNS (temporary failure in name resolution)"
                         : sl->rc == -EADDRNOTAVAIL ? "no such name, or no address for it"
                                                    : rabia_strerror(sl->rc));
            }
        }
    }
    if (out == 0 && sl->st == L_IDLE) {
        snprintf(sl->host, sizeof sl->host, "%s", m->host);
        sl->port = m->port;
        sl->st = L_ASKED;
        if (!L->started) {
            pthread_t t;
            if (pthread_create(&t, NULL, lookup_main, L)) {
                sl->st = L_IDLE;
                snprintf(why, whylen, "cannot start the name lookup thread");
                out = -EAGAIN;
            } else {
                pthread_detach(t);
                L->started = true;
                L->refs++;
            }
        }
        pthread_cond_signal(&L->cv);
    }
    pthread_mutex_unlock(&L->mu);
    return out;
}

uint32_t replica_lookups_done(struct rabia_replica *r)
{
    /* every loop turn: a plain load first, the locked exchange only when a lookup finished */
    if (!r->lookups || !__atomic_load_n(&r->lookups->done, __ATOMIC_ACQUIRE)) return 0;
    return __atomic_exchange_n(&r->lookups->done, 0, __ATOMIC_ACQ_REL);
}
