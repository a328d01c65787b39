/* replica/tls_links.c: TLS 1.3 on peer links and client ports (tls-peers,
 * tls-clients, tls-auth-clients), the identity rules for peers, and the
 * certificate reload on SIGHUP (rabia_replica_reload_tls).
 *
 * Identity: a replica's certificate carries its id as the subject CN
 * "replica-<id>" (deploy/make-test-certs.sh also puts it in a SAN DNS name),
 * signed by the cluster CA (tls-ca-cert-file). Peer links verify both ways:
 * - the acceptor takes a connection only from a certificate of the CA and
 *   checks, when HELLO arrives, that the id it claims is the certificate's;
 * - the dialer checks that the replica it dialed presents the certificate of
 *   that member id.
 * Either mismatch closes the connection with a line naming both ids; a
 * certificate of another CA, or none, fails the handshake and OpenSSL's
 * reason is logged.
 *
 * Reload: rabia_replica_reload_tls (any thread, or a signal handler through
 * rabiad's SIGHUP) raises a flag and wakes the loop; the loop thread builds
 * new contexts from the same paths and swaps them in for new connections.
 * Open connections keep the context they started with (OpenSSL counts its
 * references). A reload that fails logs why and keeps the old contexts. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tls.h"

struct replica_tls {
    struct rio_tls_ctx *peer;   /* peer links: both roles, certificates required */
    struct rio_tls_ctx *client; /* the client ports: server role */
    int reload;                 /* set from any thread or a signal handler (atomic) */
    uint64_t reloads, reload_failures;
    /* refusal lines, rate limited: a misconfigured peer redials every 50 ms.
     * Two budgets, [LOG_OUT] for the links this replica dials and [LOG_IN]
     * for connections to it, so that a peer (or client) flooding one side
     * cannot hide the other: a replica whose dialed member presents the
     * wrong certificate while that member's own redials are refused every
     * 50 ms must still say so (tests/integration/tls.sh failed on that
     * under load) */
    struct log_budget log[2];
    /* when each peer's outgoing connection was dialed (0: not pending): a
     * handshake that does not finish (a peer that accepts and says nothing)
     * would otherwise hold the link down for good, as no redial follows */
    uint64_t dialed_us[RABIA_MAX_REPLICAS];
};

#define HANDSHAKE_TIMEOUT_US 5000000u

enum { LOG_OUT = 0, LOG_IN = 1 };

static bool refusal_log_ok(struct rabia_replica *r, int side)
{
    return replica_log_budget(r, &r->tls->log[side], side == LOG_OUT ? "TLS refusals of links to peers"
                                                                    : "TLS refusals of connections to this replica");
}

/* "replica-7" -> 7; 0 when the name is not a replica's. */
static unsigned cn_replica_id(const char *cn)
{
    if (strncmp(cn, "replica-", 8) != 0) return 0;
    const char *p = cn + 8;
    unsigned v = 0;
    if (!*p) return 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || v > 1000) return 0;
        v = v * 10 + (unsigned)(*p - '0');
    }
    return v;
}

static int build(const struct rabia_replica_config *cfg, struct rio_tls_ctx **peer, struct rio_tls_ctx **client,
                 char *err, size_t errlen)
{
    *peer = *client = NULL;
    struct rio_tls_opts o = {.cert_file = cfg->tls_cert_file, .key_file = cfg->tls_key_file,
                             .ca_file = cfg->tls_ca_cert_file, .require_peer_cert = true};
    int rc = 0;
    if (cfg->tls_peers) rc = rio_tls_ctx_new(peer, &o, err, errlen);
    if (!rc && cfg->tls_clients) {
        o.require_peer_cert = cfg->tls_auth_clients;
        rc = rio_tls_ctx_new(client, &o, err, errlen);
    }
    if (rc) {
        rio_tls_ctx_free(*peer);
        *peer = NULL;
    }
    return rc;
}

int replica_tls_check_config(const struct rabia_replica_config *c, char *err, size_t errlen)
{
    if (!c->tls_peers && !c->tls_clients) return 0;
    struct rio_tls_ctx *peer, *client;
    int rc = build(c, &peer, &client, err, errlen);
    rio_tls_ctx_free(peer);
    rio_tls_ctx_free(client);
    return rc ? RABIA_E_CONFIG : 0;
}

/* A replica whose own certificate names another id would be refused by
 * every peer: say so at start (and on reload), where the operator looks. */
static void check_own_id(struct rabia_replica *r, const struct rio_tls_ctx *peer)
{
    char cn[128];
    if (!peer) return;
    if (rio_tls_ctx_own_cn(peer, cn, sizeof cn) < 0) cn[0] = 0;
    unsigned id = cn_replica_id(cn);
    if (id != r->cfg.id)
        replica_log(r, RABIA_LOG_ERROR,
                    "tls-cert-file %s has subject CN \"%s\", not \"replica-%u\": peers will refuse this replica "
                    "(give it the certificate made for replica %u)",
                    r->cfg.tls_cert_file, cn, r->cfg.id, r->cfg.id);
}

int replica_tls_open(struct rabia_replica *r, char *err, size_t errlen)
{
    struct replica_tls *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->tls = t;
    if (!r->cfg.tls_peers && !r->cfg.tls_clients) return 0;
    int rc = build(&r->cfg, &t->peer, &t->client, err, errlen);
    if (rc) return rc;
    if (t->peer) {
        replica_log(r, RABIA_LOG_INFO, "TLS 1.3 on peer links, certificates required both ways: %s",
                    rio_tls_ctx_describe(t->peer));
        check_own_id(r, t->peer);
    }
    if (t->client)
        replica_log(r, RABIA_LOG_INFO, "TLS 1.3 on the client ports: %s", rio_tls_ctx_describe(t->client));
    return 0;
}

void replica_tls_close(struct rabia_replica *r)
{
    struct replica_tls *t = r->tls;
    if (!t) return;
    rio_tls_ctx_free(t->peer);
    rio_tls_ctx_free(t->client);
    free(t);
    r->tls = NULL;
}

int replica_tls_on_accept(struct rabia_replica *r, enum ck kind, struct rio_conn *c)
{
    struct replica_tls *t = r->tls;
    const struct rio_tls_ctx *ctx = kind == CK_PEER_IN_HELLO ? t->peer : t->client;
    if (!ctx) return 0; /* plain TCP on this port */
    int rc = rio_conn_start_tls(c, ctx, true);
    if (rc < 0) replica_log(r, RABIA_LOG_WARN, "cannot start TLS on an accepted connection: %s", rabia_strerror(rc));
    return rc;
}

int replica_tls_on_dial(struct rabia_replica *r, struct rio_conn *c, uint8_t peer)
{
    struct replica_tls *t = r->tls;
    if (!t->peer) return 0;
    t->dialed_us[peer] = rio_now_us();
    int rc = rio_conn_start_tls(c, t->peer, false);
    if (rc < 0) replica_log(r, RABIA_LOG_WARN, "cannot start TLS on a peer connection: %s", rabia_strerror(rc));
    return rc;
}

/* The id in the verified certificate of c: > 0, or 0 with why filled. */
static unsigned cert_id(struct rio_conn *c, char *cn, size_t cnlen)
{
    int rc = rio_conn_tls_peer_cn(c, cn, cnlen);
    if (rc < 0) {
        snprintf(cn, cnlen, "%s", rc == -ENOSPC ? "(a subject CN too long)" : "(no verified certificate)");
        return 0;
    }
    return cn_replica_id(cn);
}

bool replica_tls_check_dialed(struct rabia_replica *r, struct rio_conn *c, uint8_t peer)
{
    if (!r->tls->peer) return true;
    char cn[128], who[64] = "?";
    unsigned id = cert_id(c, cn, sizeof cn);
    if (id == (unsigned)peer + 1u) return true;
    if (!refusal_log_ok(r, LOG_OUT)) return false;
    rio_conn_peer(c, who, sizeof who);
    if (id)
        replica_log(r, RABIA_LOG_WARN, "replica %u at %s presented a certificate for replica %u: refused", peer + 1,
                    who, id);
    else
        replica_log(r, RABIA_LOG_WARN,
                    "replica %u at %s presented a certificate with subject CN \"%s\", not \"replica-%u\": refused",
                    peer + 1, who, cn, peer + 1);
    return false;
}

bool replica_tls_check_hello(struct rabia_replica *r, struct rio_conn *c, uint8_t claimed, const char *who)
{
    if (!r->tls->peer) return true;
    char cn[128];
    unsigned id = cert_id(c, cn, sizeof cn);
    if (id == (unsigned)claimed + 1u) return true;
    if (!refusal_log_ok(r, LOG_IN)) return false;
    if (id)
        replica_log(r, RABIA_LOG_WARN, "peer %s presented a certificate for replica %u but claims to be replica %u: "
                    "refused", who, id, claimed + 1);
    else
        replica_log(r, RABIA_LOG_WARN, "peer %s presented a certificate with subject CN \"%s\" but claims to be "
                    "replica %u (expected \"replica-%u\"): refused", who, cn, claimed + 1, claimed + 1);
    return false;
}

void replica_tls_on_close(struct rabia_replica *r, const struct conn *k, struct rio_conn *c)
{
    const char *why = rio_conn_tls_error(c);
    if (!why || !refusal_log_ok(r, k->kind == CK_PEER_OUT ? LOG_OUT : LOG_IN)) return;
    char who[64] = "?";
    rio_conn_peer(c, who, sizeof who);
    switch (k->kind) {
    case CK_PEER_OUT:
        replica_log(r, RABIA_LOG_WARN, "TLS with replica %u at %s failed: %s: refused", k->peer + 1, who, why);
        break;
    case CK_PEER_IN_HELLO:
    case CK_PEER_IN:
        replica_log(r, RABIA_LOG_WARN, "peer %s: TLS failed: %s: refused", who, why);
        break;
    default:
        replica_log(r, RABIA_LOG_WARN, "client %s: TLS failed: %s: connection closed%s", who, why,
                    strstr(why, "wrong version") || strstr(why, "http request") || strstr(why, "packet length")
                        ? " (a client without TLS? this port needs TLS: redis-cli --tls, rabia-cli --tls)" : "");
        break;
    }
}

void rabia_replica_reload_tls(struct rabia_replica *r)
{
    if (r->tls) __atomic_store_n(&r->tls->reload, 1, __ATOMIC_RELEASE);
    replica_wake(r);
}

/* Close an outgoing peer connection whose handshake has not completed
 * within HANDSHAKE_TIMEOUT_US; on_close schedules the redial. */
static void check_stalled(struct rabia_replica *r)
{
    struct replica_tls *t = r->tls;
    uint64_t now = rio_now_us();
    for (uint8_t p = 0; p < r->cfg.n; p++) {
        struct peer *pe = &r->peers[p];
        if (!t->dialed_us[p]) continue;
        if (pe->out == UINT32_MAX || pe->out_ready) {
            t->dialed_us[p] = 0; /* closed, or up */
            continue;
        }
        if (now - t->dialed_us[p] < HANDSHAKE_TIMEOUT_US) continue;
        t->dialed_us[p] = 0;
        struct rio_conn *c = r->conns[pe->out].c;
        char who[64] = "?";
        rio_conn_peer(c, who, sizeof who);
        if (refusal_log_ok(r, LOG_OUT))
            replica_log(r, RABIA_LOG_WARN, "TLS with replica %u at %s: no handshake within %u s: closing, will redial",
                        p + 1, who, HANDSHAKE_TIMEOUT_US / 1000000u);
        replica_conn_close(r, c);
    }
}

void replica_tls_poll(struct rabia_replica *r)
{
    struct replica_tls *t = r->tls;
    if (t && t->peer) check_stalled(r);
    if (!t || !__atomic_exchange_n(&t->reload, 0, __ATOMIC_ACQ_REL)) return;
    if (!r->cfg.tls_peers && !r->cfg.tls_clients) {
        replica_log(r, RABIA_LOG_INFO, "reload: TLS is off (tls-peers and tls-clients are no): nothing to reload");
        return;
    }
    char err[512];
    struct rio_tls_ctx *peer, *client;
    /* from the same paths: the operator replaced the files in place */
    if (build(&r->cfg, &peer, &client, err, sizeof err)) {
        t->reload_failures++;
        replica_log(r, RABIA_LOG_ERROR, "TLS reload failed: %s; keeping the previous certificates", err);
        return;
    }
    rio_tls_ctx_free(t->peer);   /* open connections keep their own reference */
    rio_tls_ctx_free(t->client);
    t->peer = peer;
    t->client = client;
    t->reloads++;
    replica_log(r, RABIA_LOG_INFO, "TLS reloaded: %s; new connections use it, open ones keep theirs",
                rio_tls_ctx_describe(peer ? peer : client));
    check_own_id(r, peer);
}
