/* replica/auth.h: authentication and access control of a replica
 * (replica/README.md "Authentication"):
 *   - peers prove membership with the cluster secret (cluster-secret-file):
 *     a challenge-response after HELLO, HMAC-SHA256 over fresh nonces from
 *     both sides, both replica ids, the cluster id and the direction;
 *   - RESP and native clients authenticate as users (requirepass, acl-file:
 *     acl.h) and are held to their users' commands and keys;
 *   - failed authentications are logged with the address, counted
 *     (replica_auth_failures) and slowed down (the connection's next AUTH
 *     waits 100 ms, doubling per failure up to 5 s; 10 failures close it).
 * Everything here runs on the replica's loop thread. */
#ifndef RABIA_REPLICA_AUTH_H
#define RABIA_REPLICA_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rabia/types.h"

#define AUTH_NONCE 32
#define AUTH_MAC 32
#define AUTH_SECRET_MIN 16        /* bytes a cluster secret must have at least */
#define AUTH_SECRET_MAX 4096
#define AUTH_DELAY_FIRST_US 100000u
#define AUTH_DELAY_MAX_US 5000000u
#define AUTH_MAX_FAILS 10         /* failed AUTHs after which a client connection is closed */
#define AUTH_PEER_TIMEOUT_US 5000000u /* a peer handshake must finish within this */

/* Per connection (struct conn.au). */
struct conn_auth {
    /* clients */
    int16_t user;             /* acl.h user index; -1: not authenticated */
    uint8_t fails;            /* failed AUTHs on this connection */
    bool held;                /* counted in replica_auth.n_held */
    uint64_t hold_until_us;   /* RESP: nothing more is read before; native: a parked AUTH is checked then */
    uint8_t *parked;          /* native: the CLIENT_AUTH body waiting for hold_until_us */
    uint32_t parked_len;
    /* native, restricted users: the sessions this connection opened (OPEN
     * answered here); requests under any other session are refused, so a
     * user cannot read another's cached replies, take its answers or spend
     * its sequence numbers. A ring: the client library holds one at a time. */
    uint64_t owned[4];
    uint8_t n_owned;
    /* RESP: the users were reloaded while this connection queued a
     * transaction: its EXEC checks the queued commands again */
    bool multi_reloaded;
    /* peers: the cluster-secret handshake (enum in auth.c) */
    uint8_t pstep;
    bool pending;             /* counted in replica_auth.n_peer_pending */
    uint8_t pfrom;            /* acceptor: the dialer's core index from its HELLO */
    uint64_t pincarnation;    /* acceptor: its incarnation from HELLO */
    uint64_t pdeadline_us;
    uint8_t nonce_d[AUTH_NONCE], nonce_a[AUTH_NONCE];
};

struct rabia_replica;
struct rabia_replica_config;
struct rabia_msg;
struct rabia_buf;
struct resp_slot;

/* At create: the users (requirepass, acl-file) and the cluster secret (read
 * once: missing, unreadable, empty, shorter than 16 bytes or readable by
 * others is refused with the file and the fix). 0 or RABIA_E_CONFIG / -ENOMEM. */
int replica_auth_create(struct rabia_replica *r, char *err, size_t errlen);
void replica_auth_destroy(struct rabia_replica *r);
/* The same checks of the files alone (rabia_replica_config_check, so that
 * rabiad --check-config reports them): 0 or RABIA_E_CONFIG with err. */
int replica_auth_check_config(const struct rabia_replica_config *c, char *err, size_t errlen);
/* The TLS files (tls_links.c): the contexts tls-peers and tls-clients ask
 * for, built as at start (certificate, key, CA, the certificate verified
 * against the CA now) and freed, so that rabiad --check-config refuses what
 * a start would: 0 or RABIA_E_CONFIG with the start's message. */
int replica_tls_check_config(const struct rabia_replica_config *c, char *err, size_t errlen);
/* A reload (rabia_replica_reload; any thread): the users of next's
 * requirepass and acl-file in a new table (*out, NULL when client
 * authentication is off). Turning it on or off is refused (connections
 * open now were never asked who they are): RABIA_E_CONFIG, err says so. */
struct acl;
int replica_auth_users_load(const struct rabia_replica *r, const struct rabia_replica_config *next, struct acl **out,
                            char *err, size_t errlen);
void replica_auth_users_free(struct acl *acl);
/* Loop thread: the loaded users (made with requirepass) replace the table;
 * connections of users other than default are closed, as Redis's ACL LOAD
 * does (connection `caller`, UINT32_MAX for none, after its reply). The
 * number closed. */
uint32_t replica_auth_users_take(struct rabia_replica *r, const struct acl *acl, const char *requirepass,
                                 uint32_t caller);
/* Failed authentications so far (peers and clients): rabia_auth_failures_total. */
uint64_t replica_auth_failures(const struct rabia_replica *r);
/* A user of that name exists (CLIENT KILL USER): "default" always. */
bool replica_auth_user_exists(const struct rabia_replica *r, const uint8_t *name, size_t n);
/* May the native client on ci take a backup? A backup holds every key and
 * session, so with users configured only an authenticated user with +@all
 * and allkeys may; false fills why (NOAUTH / NOPERM text). */
bool replica_auth_may_backup(struct rabia_replica *r, uint32_t ci, char *why, size_t len);

/* Connections: accepted (clients start as "default", authenticated unless
 * auth is required) and released. */
void replica_auth_conn_init(struct rabia_replica *r, uint32_t ci);
void replica_auth_conn_release(struct rabia_replica *r, uint32_t ci);
/* Held connections' deadlines and peer handshakes that take too long;
 * returns when to call again at the latest (0: nothing waits). */
uint64_t replica_auth_tick(struct rabia_replica *r, uint64_t now);

/* RESP: before resp_handle, with the parsed command in k->pa. 0: not
 * handled (resp_handle goes on); 1: answered into out (AUTH, ACL, NOAUTH,
 * NOPERM...). A RESP connection whose au.hold_until_us is set reads
 * nothing more until the tick clears it. */
int replica_auth_resp(struct rabia_replica *r, uint32_t ci, struct rabia_buf *out);
/* INFO's "# Stats" lines of this part. */
int replica_auth_info(const struct rabia_replica *r, char *buf, size_t len);

/* Native: before replica_native_frame's own handling; true when the frame
 * was taken here (CLIENT_AUTH, or a request refused NOAUTH / NOPERM). */
bool replica_auth_native(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m);
/* A native request's reply on ci: an OPEN's (seq 1 under a nonce, OK, 8
 * bytes) names a session this connection owns from now on. */
void replica_auth_native_replied(struct rabia_replica *r, uint32_t ci, uint64_t cid, uint64_t seq, int status,
                                 const uint8_t *res, size_t len);

/* Peers. Dialer: after its HELLO, starts the handshake; false when no
 * secret is configured (the link is ready at once, as before). */
bool replica_auth_peer_dial(struct rabia_replica *r, uint32_t ci);
/* A frame on an outgoing peer connection (only the handshake's come back). */
void replica_auth_peer_out_frame(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m);
/* Acceptor: HELLO passed its checks; true when the connection must first
 * prove the secret (it is installed later by replica_peer_in_install). */
bool replica_auth_peer_hello(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m);
/* Acceptor: a frame on a connection in the handshake (au.pstep != 0). */
void replica_auth_peer_in_frame(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m);
/* Acceptor without a secret: a PEER_AUTH frame from a replica that has one. */
void replica_auth_peer_unexpected(struct rabia_replica *r, uint32_t ci, const struct rabia_msg *m);

/* replica.c: a peer link proven (dialer) / an incoming peer accepted. */
void replica_peer_out_ready(struct rabia_replica *r, uint32_t ci);
void replica_peer_in_install(struct rabia_replica *r, uint32_t ci, uint8_t from, uint64_t incarnation);

#endif
