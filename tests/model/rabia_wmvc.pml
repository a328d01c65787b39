/* rabia_wmvc.pml: one slot of Rabia's Weak-MVC (n = 3, f = 1) with crash and
 * restart under our horizon rule, as stated in shared/design/RABIA.md, or
 * (FIX_PERSIST) under the rule the daemon implements: persist each message
 * before sending it, resume from the log after a restart.
 * Run by check.sh; README.md says what is modeled, what is abstracted away,
 * and why each reduction below loses no behaviour that matters.
 *
 * Bounds and configuration (spin -DNAME[=value]):
 *   P=2               phases after the exchange (2, 3 or 4); a replica that
 *                     finishes phase P undecided stops
 *   MAXCRASH=1        crashes in total (0 to 3); with CRASH_SETS or CRASH_ALL,
 *                     crash events (each takes down one replica or several)
 *   CONCURRENT        crashes need not be one at a time (default: a replica
 *                     may crash only while no other one is down or recovering)
 *   PROPS_AAA, PROPS_AAB  first proposals fixed (replica 2 proposes B in AAB);
 *                     default: every proposal is A or B, chosen freely. Up to
 *                     renaming replicas and batches these two cover all.
 *   HZ_EXACT          a restarted replica reports the slots it saw, not its
 *                     horizon (a less conservative reading of the rule)
 *   HZ_LE             abstain in slots <= H (core.h rule 2) rather than < H
 *                     (the issue): a restarted replica never takes part in
 *                     the slot
 *   PERSIST_DECISION  a decision survives a crash (the WAL keeps it)
 *   FAST_DECIDE       three identical proposals decide the slot at once,
 *                     whenever the third arrives (core/instance.c)
 *   EXCHANGE_WAIT     the exchange counts all three proposals that arrive
 *                     before it acts, and may wait for the third when the
 *                     first two differ, or agree and the third could make
 *                     them unanimous (core/instance.c); acts once. The
 *                     model lets any two wait, which covers both
 * Reductions (README argues each one):
 *   ATOMIC_RESTART    crash, restart and both HORIZON replies in one step
 *   ADOPT_LATE        DECISIONs are adopted only when nothing else can move
 * Properties:
 *   always: AGREEMENT, WEAK VALIDITY, NO-CONTRADICTION (over received messages)
 *   CHECK_SENT        NO-CONTRADICTION over every message sent, even one never
 *                     delivered (strict reading; fails under the horizon rule,
 *                     harmlessly, see README)
 *   NO_CHECK_CONTRA   leave NO-CONTRADICTION out (to see a mutation break
 *                     agreement itself; also makes liveness runs smaller)
 *   NO_CHECK_VALID    leave WEAK VALIDITY out (same purpose)
 *   CHECK_LIVE        BOUNDED LIVENESS, asserted in every terminal state
 * Fixes for what the model found (README):
 *   FIX_ANSWER        a recovering replica answers HORIZON_REQ from what it
 *                     persisted instead of staying silent
 *   FIX_PERSIST       no horizon rule: a replica persists each PROPOSAL, STATE
 *                     and VOTE before sending it (and its decision) and resumes
 *                     the slot after a restart; peers re-send on reconnect
 * With FIX_PERSIST only:
 *   CRASH_SETS        a crash event takes down any nonempty set of replicas at
 *                     once: one, two, or the whole cluster (power loss)
 *   CRASH_ALL         a crash event takes down one replica or the whole cluster
 *                     (both imply NET_RESEND)
 *   NET_RESEND        the network as it is: a crash loses every message in
 *                     flight to or from the replica (and what is sent to it
 *                     while it is down); the restarted replica sends every
 *                     message of the slot in its log again and each peer that
 *                     is up sends it its own. Default: the equivalent
 *                     abstraction, those messages are kept.
 * Mutations (each must produce a counterexample):
 *   MUT_LOCAL_COIN       each replica flips its own coin
 *   MUT_MAJORITY_DECIDE  decide v when v is a majority of the non-? votes
 *                        counted (with n = 3: one vote v next to a ?)
 *   MUT_FORGET_VOTE      a restarted replica skips the horizon protocol and
 *                        takes part in the slot again from scratch
 *   MUT_COUNT_EXTRA      count every message of a round, not the first n-f, and
 *                        redo a round (re-sending) when a late one changes it
 *   MUT_KEEP_OLD         peers keep the old incarnation's undelivered messages
 *                        when the new one connects
 *   MUT_FAST_TWO         (FAST_DECIDE) decide at once on two matching
 *                        proposals (n-f) rather than all three
 *   MUT_SEND_BEFORE_PERSIST  (FIX_PERSIST) a message leaves before its record
 *                        is durable: a crash may lose the record of the last
 *                        message a replica sent; it resumes one round earlier
 */

#ifndef P
#define P 2
#endif
#ifndef MAXCRASH
#define MAXCRASH 1
#endif
#if P < 2 || P > 4
#error "P must be 2, 3 or 4"
#endif
#if MAXCRASH > 3
#error "MAXCRASH must be at most 3"
#endif
#if defined(ATOMIC_RESTART) && defined(CONCURRENT)
#error "CONCURRENT needs restarts that take time: drop ATOMIC_RESTART"
#endif
#if (defined(CRASH_SETS) || defined(CRASH_ALL) || defined(NET_RESEND) || defined(MUT_SEND_BEFORE_PERSIST)) && !defined(FIX_PERSIST)
#error "CRASH_SETS, CRASH_ALL, NET_RESEND and MUT_SEND_BEFORE_PERSIST need FIX_PERSIST"
#endif

#define NR 3              /* replicas 0..2 */
#define NK (2*P+1)        /* round keys: 0 = PROPOSAL, 2p-1 = STATE(p), 2p = VOTE(p) */
#define ALL7 7

/* replica modes */
#define IDLE 0            /* up, has not proposed yet */
#define RUN  1            /* taking part in the slot */
#define ABST 2            /* restarted, abstains in the slot (horizon rule) */
#define STOP 3            /* phase bound reached undecided */
#define DOWN 4            /* crashed */
#define REC  5            /* restarted, waiting for HORIZON replies */

/* values on the wire (0 = no message)
 *   PROPOSAL: 1 = batch A, 2 = batch B
 *   STATE:    1 = 0, 2 = 1
 *   VOTE:     1 = 0, 2 = 1, 3 = ?
 * dec[]: 0 = undecided, 1 = decided 0 (null), 2 = decided 1 (majority batch) */

/* what a variant needs to keep of rounds a replica has passed */
#if defined(MUT_COUNT_EXTRA)
#define KEEP_GOT 1
#define KEEP_SENT 1
#endif
#if defined(MUT_FORGET_VOTE)
#define KEEP_SENT 1
#endif
/* the log holds every message of the slot a replica sent: re-sent from it
 * after a restart (NET_RESEND), or read back when its last record is lost
 * (MUT_SEND_BEFORE_PERSIST) */
#if (defined(CRASH_SETS) || defined(CRASH_ALL)) && !defined(NET_RESEND)
#define NET_RESEND 1
#endif
#if defined(NET_RESEND) || defined(MUT_SEND_BEFORE_PERSIST)
#define KEEP_SENT 1
#endif

#ifdef MUT_COUNT_EXTRA
#define LIM 3             /* messages counted per round */
#else
#define LIM 2             /* the first n - f */
#endif
/* EXCHANGE_WAIT (core/instance.c): the exchange counts every proposal
 * that arrives before it is acted on, and may wait for the third (the
 * core does when the first two differ, or agree and a unanimous exchange
 * is still possible); it still acts once (WAITEND ends any wait) */
#if defined(EXCHANGE_WAIT) || defined(FAST_DECIDE)
#define LIMK(kk) ((kk) == 0 -> 3 : LIM)
#else
#define LIMK(kk) LIM
#endif

/* network: box[from][to][key] holds the one undelivered message of that key
 * on that link (0 = none). Delivery picks any nonempty box: messages are
 * reordered and delayed arbitrarily. */
byte box[NR*NR*NK];
#define BOX(f,tt,kk) box[((f)*NR+(tt))*NK+(kk)]
/* got[at][key][from]: the messages a replica counted for a round */
byte got[NR*NK*NR];
#define GOT(r,kk,sd) got[((r)*NK+(kk))*NR+(sd)]
#define CNT(r,kk) ((GOT(r,kk,0)!=0)+(GOT(r,kk,1)!=0)+(GOT(r,kk,2)!=0))
/* what the replica's current incarnation sent, per key */
byte sentv[NR*NK];
#define SENT(r,kk) sentv[(r)*NK+(kk)]

byte mode[NR];
byte pos[NR];             /* the round key a RUN replica waits on */
byte dec[NR];
bit  seen[NR];            /* sent or received a message of the slot */
byte hz[NR];              /* 0 never restarted, 1 restarted fresh, 2 restarted abstaining (persisted) */
byte hq[NR];              /* HORIZON replies a recovering replica has (bit per peer) */
bit  hk[NR];              /* one of them had K >= 1 */
byte crashes;
byte plan;                /* crashes this execution makes */
byte coin[P+1];           /* common coin per phase: 0 not flipped yet, 1 = 0, 2 = 1 */
#ifdef FIX_PERSIST
byte pmode[NR];           /* the mode a crashed replica resumes in */
#endif

/* ---- ghosts (not part of the protocol) ----
 * NO-CONTRADICTION. oldv: the value of (sender, key) that some replica
 * received from an earlier incarnation of the sender (merged in at each
 * crash); dlv: the same for the sender's current incarnation. dlv matters
 * only while the sender may still crash (a message is never received after
 * its sender crashed, except under MUT_KEEP_OLD), or where one incarnation
 * can contradict itself (MUT_COUNT_EXTRA); once the crash budget is spent it is
 * cleared, so that states differing only in it merge. */
byte oldv[NR*NK];
byte dlv[NR*NK];
#define OLDV(sd,kk) oldv[(sd)*NK+(kk)]
#define DLV(sd,kk) dlv[(sd)*NK+(kk)]
#if defined(NO_CHECK_CONTRA)
#define TRACK_DLV 0
#elif defined(MUT_COUNT_EXTRA)
#define TRACK_DLV 1
#else
#define TRACK_DLV (crashes < plan)
#endif
#ifdef CHECK_SENT
byte fsent[NR*NK];        /* first value of (sender, key) ever sent, any incarnation */
#endif
byte majb;                /* the majority batch a replica computed in phase 0 */
byte gdec;                /* the first decision of anybody */
#ifdef CHECK_LIVE
byte vv[P+1];             /* non-? vote values sent in phase p (bit 1 = 0, bit 2 = 1) */
#endif

/* scratch, meaningful only inside one atomic step (and zero between steps) */
hidden byte xt, xk, xv, xsd, xj, xn0, xn1, xekind, xev, xrk, xdt, xds, xdk, xw, xo, xm;
#define CLR xt = 0; xk = 0; xv = 0; xsd = 0; xj = 0; xn0 = 0; xn1 = 0; \
  xekind = 0; xev = 0; xrk = 0; xdt = 0; xds = 0; xdk = 0; xw = 0; xo = 0; xm = 0

#ifdef MUT_COUNT_EXTRA
#define PASSED(tt,kk) 0
#else
#define PASSED(tt,kk) (mode[tt] == RUN && pos[tt] > (kk))
#endif
/* a live replica that would ignore a message of key kk: it is received and
 * dropped at once (a legal delivery order; it changes nothing but ghosts) */
#define STALE(tt,kk) (mode[tt] == ABST || mode[tt] == STOP || dec[tt] != 0 || PASSED(tt,kk))

/* ---------------------------------------------------------- trail output */
/* (inline arguments are substituted as text: parenthesize every use) */
inline say_key(sk) {
  if
  :: (sk) == 0 -> printf("PROPOSAL")
  :: (sk) % 2 == 1 -> printf("STATE(%d)", ((sk)+1)/2)
  :: else -> printf("VOTE(%d)", (sk)/2)
  fi
}
inline say_val(sk, sv) {
  if
  :: (sk) == 0 && (sv) == 1 -> printf("A")
  :: (sk) == 0 && (sv) == 2 -> printf("B")
  :: (sk) != 0 && (sv) == 3 -> printf("?")
  :: (sk) != 0 && (sv) != 3 -> printf("%d", (sv) - 1)
  fi
}

/* ---------------------------------------------------------------- ghosts */
inline ghost_rcv(gs, gk, gv) {
#ifndef NO_CHECK_CONTRA
  /* NO-CONTRADICTION: never are two messages of one (sender, round), from
   * any incarnations of the sender, with different values both received */
  assert(OLDV(gs,gk) == 0 || OLDV(gs,gk) == gv);
  assert(DLV(gs,gk) == 0 || DLV(gs,gk) == gv);
#endif
  if
  :: TRACK_DLV && DLV(gs,gk) == 0 -> DLV(gs,gk) = gv
  :: else -> skip
  fi
}

/* at a crash of gs: what others received from its incarnation becomes old */
inline ghost_crash(gs) {
#ifndef NO_CHECK_CONTRA
  for (xk : 0 .. NK-1) {
    if
    :: DLV(gs,xk) != 0 && OLDV(gs,xk) == 0 -> OLDV(gs,xk) = DLV(gs,xk)
    :: else -> skip
    fi;
    DLV(gs,xk) = 0
  };
  if
  :: !TRACK_DLV -> for (xk : 0 .. NR*NK-1) { dlv[xk] = 0 }
  :: else -> skip
  fi
#else
  skip
#endif
}

/* after the last crash of the budget (a crash of several replicas at once
 * moves each one's dlv into oldv first) */
inline ghost_spent() {
#ifndef NO_CHECK_CONTRA
  if
  :: !TRACK_DLV -> for (xk : 0 .. NR*NK-1) { dlv[xk] = 0 }
  :: else -> skip
  fi
#else
  skip
#endif
}

inline ghost_sent(gs, gk, gv) {
#ifdef CHECK_SENT
  if
  :: fsent[(gs)*NK+(gk)] == 0 -> fsent[(gs)*NK+(gk)] = gv
  :: else -> assert(fsent[(gs)*NK+(gk)] == gv)   /* STRICT NO-CONTRADICTION */
  fi
#else
  skip
#endif
}

/* drop what a decided or stopped replica no longer needs (merges states) */
inline drop_rounds(dr) {
#ifndef KEEP_GOT
  for (xt : 0 .. NK-1) { GOT(dr,xt,0) = 0; GOT(dr,xt,1) = 0; GOT(dr,xt,2) = 0 };
#endif
#ifndef KEEP_SENT
  for (xt : 0 .. NK-1) { SENT(dr,xt) = 0 };
  pos[dr] = 0;
#endif
  skip
}

inline decide(dr, dv) {
  dec[dr] = dv;
  seen[dr] = 1;
  printf("r%d DECIDES %d\n", dr, dv - 1);
  if
  :: gdec == 0 -> gdec = dv
  :: else -> assert(gdec == dv)       /* AGREEMENT */
  fi;
#ifndef NO_CHECK_VALID
  assert(dv != 2 || majb != 0);       /* WEAK VALIDITY: decide 1 => a majority batch exists */
#endif
  drop_rounds(dr)
}

/* receive-and-drop every undelivered message addressed to gr */
inline gc_all(gr) {
  for (xt : 0 .. NR-1) {
    for (xk : 0 .. NK-1) {
      if
      :: BOX(xt,gr,xk) != 0 -> ghost_rcv(xt, xk, BOX(xt,gr,xk)); BOX(xt,gr,xk) = 0
      :: else -> skip
      fi
    }
  }
}

/* receive-and-drop the undelivered messages of key gk addressed to gr */
inline gc_key(gr, gk) {
  for (xt : 0 .. NR-1) {
    if
    :: BOX(xt,gr,gk) != 0 -> ghost_rcv(xt, gk, BOX(xt,gr,gk)); BOX(xt,gr,gk) = 0
    :: else -> skip
    fi
  }
}

/* put (key sk, value sv) from sr on the link to tr: lost if tr is down,
 * received and dropped at once if tr would ignore it, else it waits. If the
 * link still holds a message of that key (a re-send), TCP delivers the older
 * one first and the receiver keeps one message per sender: nothing to add. */
#if defined(FIX_PERSIST) && !defined(NET_RESEND)
#define LOST_TO_DOWN 0    /* re-sent on reconnect: as good as waiting */
#else
#define LOST_TO_DOWN 1
#endif
inline post(sr, tr, sk, sv) {
  if
  :: mode[tr] == DOWN && LOST_TO_DOWN -> skip
  :: mode[tr] == DOWN && !LOST_TO_DOWN -> BOX(sr,tr,sk) = sv
  :: mode[tr] != DOWN && STALE(tr,sk) -> ghost_rcv(sr, sk, sv); seen[tr] = 1
  :: mode[tr] != DOWN && !STALE(tr,sk) && BOX(sr,tr,sk) == 0 -> BOX(sr,tr,sk) = sv
  :: mode[tr] != DOWN && !STALE(tr,sk) && BOX(sr,tr,sk) != 0 -> skip
  fi
}

/* send (key bk, value bv) from br to every peer and count it at br */
inline bcast(br, bk, bv) {
  printf("r%d sends ", br); say_key(bk); printf(" = "); say_val(bk, bv); printf("\n");
  SENT(br,bk) = bv;
  ghost_sent(br, bk, bv);
  seen[br] = 1;
  for (xt : 0 .. NR-1) {
    if
    :: xt != br -> post(br, xt, bk, bv)
    :: else -> skip
    fi
  }
  if
  :: GOT(br,bk,br) != 0 -> GOT(br,bk,br) = bv      /* only on a re-send */
  :: GOT(br,bk,br) == 0 && CNT(br,bk) < LIMK(bk) -> GOT(br,bk,br) = bv
  :: else -> skip
  fi
}

/* evaluate round ek at replica er from what it counted:
 * xekind 0: send xev for key ek+1; 1: decide xev; 2: phase bound reached */
inline evalk(er, ek) {
  xekind = 0;
  if
  :: ek == 0 ->
     /* exchange: state = 1 iff one batch appears >= majority (2) times */
     xev = 0;
     if
     :: GOT(er,0,0) != 0 && (GOT(er,0,0) == GOT(er,0,1) || GOT(er,0,0) == GOT(er,0,2)) -> xev = GOT(er,0,0)
     :: GOT(er,0,1) != 0 && GOT(er,0,1) == GOT(er,0,2) -> xev = GOT(er,0,1)
     :: else -> skip
     fi;
     if
     :: xev != 0 ->
        if
        :: majb == 0 -> majb = xev
        :: else ->
#ifndef NO_CHECK_VALID
           assert(majb == xev)   /* WEAK VALIDITY: a single majority batch */
#else
           skip
#endif
        fi;
        xev = 2
     :: else -> xev = 1
     fi
  :: ek % 2 == 1 ->
     /* STATE round: vote v if v appears >= majority (2) times, else ? */
     xn0 = (GOT(er,ek,0) == 1) + (GOT(er,ek,1) == 1) + (GOT(er,ek,2) == 1);
     xn1 = (GOT(er,ek,0) == 2) + (GOT(er,ek,1) == 2) + (GOT(er,ek,2) == 2);
     if
     :: xn0 >= 2 -> xev = 1
     :: xn1 >= 2 -> xev = 2
     :: else -> xev = 3
     fi;
#ifdef CHECK_LIVE
     if
     :: xev != 3 -> vv[(ek+1)/2] = vv[(ek+1)/2] | xev
     :: else -> skip
     fi
#endif
  :: ek != 0 && ek % 2 == 0 ->
     /* VOTE round */
     xn0 = (GOT(er,ek,0) == 1) + (GOT(er,ek,1) == 1) + (GOT(er,ek,2) == 1);
     xn1 = (GOT(er,ek,0) == 2) + (GOT(er,ek,1) == 2) + (GOT(er,ek,2) == 2);
#ifdef MUT_MAJORITY_DECIDE
     if
     :: xn0 >= 1 && xn0 > xn1 -> xekind = 1; xev = 1
     :: xn1 >= 1 && xn1 > xn0 -> xekind = 1; xev = 2
     :: else -> skip
     fi;
#else
     if
     :: xn0 >= 2 -> xekind = 1; xev = 1            /* f+1 matching non-? votes */
     :: xn1 >= 2 -> xekind = 1; xev = 2
     :: else -> skip
     fi;
#endif
     if
     :: xekind == 0 ->
        if
        :: xn0 >= 1 && xn1 == 0 -> xev = 1          /* adopt the non-? value */
        :: xn1 >= 1 && xn0 == 0 -> xev = 2
        :: xn0 >= 1 && xn1 >= 1 -> if :: xev = 1 :: xev = 2 fi   /* only when broken */
        :: xn0 == 0 && xn1 == 0 ->                  /* all ?: the coin */
#ifdef MUT_LOCAL_COIN
           if :: xev = 1 :: xev = 2 fi;
           if :: coin[ek/2] == 0 -> coin[ek/2] = xev :: else -> skip fi;
           printf("r%d flips its own coin for phase %d: %d\n", er, ek/2, xev - 1)
#else
           if
           :: coin[ek/2] == 0 -> if :: coin[ek/2] = 1 :: coin[ek/2] = 2 fi;
              printf("common coin of phase %d = %d\n", ek/2, coin[ek/2] - 1)
           :: else -> skip
           fi;
           xev = coin[ek/2]
#endif
        fi;
        if
        :: ek / 2 == P -> xekind = 2
        :: else -> skip
        fi
     :: else -> skip
     fi
  fi
}

/* a replica passing round fk: later messages of it are ignored, so what it
 * kept of it is dropped (unless a variant reads it), which merges states */
inline forget(fr, fk) {
  gc_key(fr, fk);
#if !defined(KEEP_GOT) && !defined(FAST_DECIDE)
  for (xt : 0 .. NR-1) { GOT(fr,fk,xt) = 0 };
#elif defined(FAST_DECIDE) && !defined(KEEP_GOT)
  if /* FAST_DECIDE keeps the proposals: the third may still make them unanimous */
  :: fk != 0 -> for (xt : 0 .. NR-1) { GOT(fr,fk,xt) = 0 }
  :: else -> skip
  fi;
#endif
#ifndef KEEP_SENT
  SENT(fr,fk) = 0;
#endif
  skip
}

/* act on every round whose n-f messages are in, as soon as they are in
 * (acting later is the same as its output being delayed by the network) */
inline progress(pr) {
  do
#ifdef FAST_DECIDE
  /* a unanimous exchange decides at once (core/instance.c) */
#ifdef MUT_FAST_TWO
  :: mode[pr] == RUN && dec[pr] == 0 && CNT(pr,0) >= 2 &&
     (GOT(pr,0,0) == GOT(pr,0,1) && GOT(pr,0,0) != 0 || GOT(pr,0,0) == GOT(pr,0,2) && GOT(pr,0,0) != 0 ||
      GOT(pr,0,1) == GOT(pr,0,2) && GOT(pr,0,1) != 0) ->
     xv = (GOT(pr,0,0) != 0 && (GOT(pr,0,0) == GOT(pr,0,1) || GOT(pr,0,0) == GOT(pr,0,2)) -> GOT(pr,0,0) : GOT(pr,0,1));
#else
  :: mode[pr] == RUN && dec[pr] == 0 && CNT(pr,0) == 3 &&
     GOT(pr,0,0) == GOT(pr,0,1) && GOT(pr,0,1) == GOT(pr,0,2) ->
     xv = GOT(pr,0,0);
#endif
     if
     :: majb == 0 -> majb = xv
     :: else -> assert(majb == xv)   /* WEAK VALIDITY: a single majority batch */
     fi;
     printf("r%d: a unanimous exchange\n", pr);
     decide(pr, 2); gc_all(pr)
#endif
  :: mode[pr] == RUN && dec[pr] == 0 && CNT(pr,pos[pr]) >= 2 ->
#ifdef EXCHANGE_WAIT
     if
     :: pos[pr] == 0 && CNT(pr,0) == 2 -> if :: skip :: break fi /* or wait for the third proposal */
     :: else -> skip
     fi;
#endif
     evalk(pr, pos[pr]);
     if
     :: xekind == 1 -> decide(pr, xev); gc_all(pr)
     :: xekind == 2 -> printf("r%d reaches the phase bound undecided\n", pr);
        mode[pr] = STOP; gc_all(pr); drop_rounds(pr)
     :: xekind == 0 ->
        pos[pr] = pos[pr] + 1;
#ifndef MUT_COUNT_EXTRA
        forget(pr, pos[pr] - 1);
#endif
        bcast(pr, pos[pr], xev)
     fi
  :: else -> break
  od
}

#ifdef MUT_COUNT_EXTRA
/* a message counted for a round already acted on: redo that round and the
 * ones after it, re-sending every output that changed */
inline redo(qr, qk) {
  xrk = qk;
  do
  :: xrk < pos[qr] && mode[qr] == RUN && dec[qr] == 0 ->
     evalk(qr, xrk);
     if
     :: xekind == 1 -> decide(qr, xev); gc_all(qr); break
     :: xekind == 2 -> break
     :: xekind == 0 && xev == SENT(qr, xrk+1) -> break
     :: xekind == 0 && xev != SENT(qr, xrk+1) ->
        printf("r%d redoes a round: ", qr); bcast(qr, xrk+1, xev); xrk++
     fi
  :: else -> break
  od
}
#endif

/* deliver the message on link (xds -> xdt) of key xdk */
inline deliver() {
  xv = BOX(xds,xdt,xdk);
  BOX(xds,xdt,xdk) = 0;
  seen[xdt] = 1;
  ghost_rcv(xds, xdk, xv);
  printf("  r%d <- r%d ", xdt, xds); say_key(xdk); printf(" = "); say_val(xdk, xv);
  if
  :: GOT(xdt,xdk,xds) == 0 && CNT(xdt,xdk) < LIMK(xdk) -> GOT(xdt,xdk,xds) = xv; printf(" (counted)\n");
#ifdef MUT_COUNT_EXTRA
     if
     :: mode[xdt] == RUN && xdk < pos[xdt] -> redo(xdt, xdk)
     :: else -> skip
     fi;
#endif
     skip
  :: else -> printf(" (ignored)\n")
  fi;
  progress(xdt)
}

/* one option for every delivery (keeps pan's code small): pick any
 * nonempty link, then deliver */
#define D1(tt,ss,kk) :: BOX(ss,tt,kk) != 0 && mode[tt] != DOWN -> xdt = tt; xds = ss; xdk = kk
#define DK(kk) D1(0,1,kk) D1(0,2,kk) D1(1,0,kk) D1(1,2,kk) D1(2,0,kk) D1(2,1,kk)
#if P == 2
#define IN(tt,ss) (BOX(ss,tt,0) | BOX(ss,tt,1) | BOX(ss,tt,2) | BOX(ss,tt,3) | BOX(ss,tt,4))
#define DALL DK(0) DK(1) DK(2) DK(3) DK(4)
#elif P == 3
#define IN(tt,ss) (BOX(ss,tt,0) | BOX(ss,tt,1) | BOX(ss,tt,2) | BOX(ss,tt,3) | BOX(ss,tt,4) | BOX(ss,tt,5) | BOX(ss,tt,6))
#define DALL DK(0) DK(1) DK(2) DK(3) DK(4) DK(5) DK(6)
#else
#define IN(tt,ss) (BOX(ss,tt,0) | BOX(ss,tt,1) | BOX(ss,tt,2) | BOX(ss,tt,3) | BOX(ss,tt,4) | BOX(ss,tt,5) | BOX(ss,tt,6) | BOX(ss,tt,7) | BOX(ss,tt,8))
#define DALL DK(0) DK(1) DK(2) DK(3) DK(4) DK(5) DK(6) DK(7) DK(8)
#endif
#define INBOX(tt,aa,bb) ((IN(tt,aa) | IN(tt,bb)) != 0 && mode[tt] != DOWN)
#define ANYBOX (INBOX(0,1,2) || INBOX(1,0,2) || INBOX(2,0,1))
#define DELIVER :: atomic { ANYBOX -> if DALL fi; deliver(); CLR }
#ifdef EXCHANGE_WAIT
/* a wait for the third proposal ends (its bound): act on the two */
#define WAITING(rr) (mode[rr] == RUN && dec[rr] == 0 && pos[rr] == 0 && CNT(rr,0) == 2)
#define WAITEND :: atomic { WAITING(0) || WAITING(1) || WAITING(2) -> \
  if :: WAITING(0) -> xw = 0 :: WAITING(1) -> xw = 1 :: WAITING(2) -> xw = 2 fi; \
  printf("r%d stops waiting for the third proposal\n", xw); \
  evalk(xw, 0); pos[xw] = 1; forget(xw, 0); bcast(xw, 1, xev); progress(xw); CLR }
#else
#define WAITEND
#endif

/* propose: batch A or B (an incarnation after a restart chooses anew) */
#if defined(PROPS_AAA)
#define INITPROP(rr) 1
#elif defined(PROPS_AAB)
#define INITPROP(rr) (1 + (rr == 2))
#endif
#ifdef INITPROP
#define CHOOSE(rr) if :: hz[rr] == 0 -> xv = INITPROP(rr) :: else -> if :: xv = 1 :: xv = 2 fi fi
#else
#define CHOOSE(rr) if :: xv = 1 :: xv = 2 fi
#endif
#define CAN_PROPOSE(rr) (mode[rr] == IDLE && dec[rr] == 0)
#define PROPOSE :: atomic { CAN_PROPOSE(0) || CAN_PROPOSE(1) || CAN_PROPOSE(2) -> \
  if :: CAN_PROPOSE(0) -> xw = 0 :: CAN_PROPOSE(1) -> xw = 1 :: CAN_PROPOSE(2) -> xw = 2 fi; \
  CHOOSE(xw); printf("r%d proposes\n", xw); mode[xw] = RUN; pos[xw] = 0; bcast(xw, 0, xv); progress(xw); CLR }

/* a DECISION from a decided peer (or catch-up) is adopted, also by a
 * replica that abstains or is still recovering */
inline adopt(ar, aj) {
  printf("r%d adopts the DECISION of r%d\n", ar, aj);
  decide(ar, dec[aj]); gc_all(ar)
}
#define CAN_ADOPT(rr,jj) (dec[rr] == 0 && dec[jj] != 0 && mode[rr] != DOWN && mode[jj] != DOWN)
#define ADOPT :: atomic { CAN_ADOPT(0,1) || CAN_ADOPT(0,2) || CAN_ADOPT(1,0) || CAN_ADOPT(1,2) || CAN_ADOPT(2,0) || CAN_ADOPT(2,1) -> \
  if :: CAN_ADOPT(0,1) -> xw = 0; xo = 1 :: CAN_ADOPT(0,2) -> xw = 0; xo = 2 \
     :: CAN_ADOPT(1,0) -> xw = 1; xo = 0 :: CAN_ADOPT(1,2) -> xw = 1; xo = 2 \
     :: CAN_ADOPT(2,0) -> xw = 2; xo = 0 :: CAN_ADOPT(2,1) -> xw = 2; xo = 1 fi; \
  adopt(xw, xo); CLR }
#define UP_UNDECIDED(rr) (dec[rr] == 0 && mode[rr] != DOWN)
#define UP_DECIDED(rr) (dec[rr] != 0 && mode[rr] != DOWN)

/* ------------------------------------------------------ crash and restart
 * A crash loses everything in memory, and everything in flight to or from
 * the replica: its old connections close, and a peer accepting the new
 * incarnation first discards what is left of the old one, so an undelivered
 * message of the old incarnation is never delivered after the restart.
 * (Delivering one before the crash is just another interleaving.) */
#ifdef MUT_KEEP_OLD
#define DROP_OUT(rr) skip
#else
#define DROP_OUT(rr) for (xt : 0 .. NR-1) { for (xk : 0 .. NK-1) { BOX(rr,xt,xk) = 0 } }
#endif

#ifndef FIX_PERSIST
#ifdef PERSIST_DECISION
#define LOSE_DEC(rr) skip
#else
#define LOSE_DEC(rr) dec[rr] = 0
#endif
#define CRASH_BODY(rr) \
  printf("r%d CRASHES\n", rr); \
  crashes++; ghost_crash(rr); pos[rr] = 0; LOSE_DEC(rr); seen[rr] = 0; \
  for (xk : 0 .. NK-1) { SENT(rr,xk) = 0; for (xt : 0 .. NR-1) { GOT(rr,xk,xt) = 0; BOX(xt,rr,xk) = 0 } }; \
  DROP_OUT(rr)
#else
/* FIX_PERSIST: what the replica sent (and decided) was persisted before it
 * was sent, so it survives; what it received does not. On reconnect each
 * side sends again its messages of the slot. Without NET_RESEND that is
 * modeled by losing nothing: the new incarnation re-sends its own (the same
 * values: as good as keeping the undelivered ones), and the peers re-send
 * theirs, which puts every message the replica had counted back on its link
 * (and keeps waiting those sent while it was down). With NET_RESEND the
 * network is modeled as it is: everything in flight to or from the replica
 * is lost (and what is sent to it while it is down), and restart_now sends
 * the log again. */
#ifdef MUT_SEND_BEFORE_PERSIST
/* the mutation: a message leaves before its record is durable, so a crash
 * may lose the record of the last message the replica sent (of a slot it
 * has not decided). The old incarnation's copies still in flight are gone
 * with its connections; the replica is back at the round before and counts
 * that round again from its own logged message and the peers' re-sent ones
 * (a proposal: it is idle again and proposes anew). */
inline lose_last(lr) {
  if
  :: mode[lr] == RUN && dec[lr] == 0 ->
     xk = pos[lr];
     printf("r%d loses the record of its last message, ", lr); say_key(xk); printf(" (sent before it was durable)\n");
     SENT(lr,xk) = 0; GOT(lr,xk,lr) = 0;
     for (xt : 0 .. NR-1) { if :: xt != lr -> BOX(lr,xt,xk) = 0 :: else -> skip fi };
     if
     :: xk == 0 -> mode[lr] = IDLE; hz[lr] = 1
     :: else -> pos[lr] = xk - 1; GOT(lr,xk-1,lr) = SENT(lr,xk-1);
        for (xt : 0 .. NR-1) {
          if
          :: xt != lr && SENT(xt,xk-1) != 0 && BOX(xt,lr,xk-1) == 0 -> BOX(xt,lr,xk-1) = SENT(xt,xk-1)
          :: else -> skip
          fi
        }
     fi
  :: true -> skip
  fi
}
#define LOSE_LAST(rr) lose_last(rr)
#else
#define LOSE_LAST(rr) skip
#endif
inline persist_crash(cr) {
  printf("r%d CRASHES\n", cr);
  ghost_crash(cr); LOSE_LAST(cr); pmode[cr] = mode[cr];
  for (xk : 0 .. NK-1) {
    for (xt : 0 .. NR-1) {
      if
      :: xt != cr ->
#ifdef NET_RESEND
         BOX(xt,cr,xk) = 0; BOX(cr,xt,xk) = 0;
#else
         if :: GOT(cr,xk,xt) != 0 && BOX(xt,cr,xk) == 0 -> BOX(xt,cr,xk) = GOT(cr,xk,xt) :: else -> skip fi;
#endif
         GOT(cr,xk,xt) = 0
      :: else -> skip
      fi
    }
  }
}
#define CRASH_BODY(rr) crashes++; persist_crash(rr)
#endif

/* peers send their messages of the slot again on the new connection */
#define RESEND(rr) \
  for (xj : 0 .. NR-1) { if :: xj != rr && mode[xj] != DOWN -> \
     for (xk : 0 .. NK-1) { if :: SENT(xj,xk) != 0 -> post(xj, rr, xk, SENT(xj,xk)) :: else -> skip fi } \
     :: else -> skip fi }

/* K >= 1: the peer sent or received a message of the slot, or restarted
 * before (it reports its own horizon, which is >= 1 here) */
#ifdef HZ_EXACT
#define KPOS(jj) (seen[jj] || hz[jj] == 2)
#define KPERSISTED(jj) (hz[jj] == 2)
#else
#define KPOS(jj) (seen[jj] || hz[jj] != 0)
#define KPERSISTED(jj) (hz[jj] != 0)
#endif
/* what a peer answers: from memory, or (FIX_ANSWER) from what it persisted
 * while it is itself recovering */
#ifdef PERSIST_DECISION
#define KANSWER(jj) ((mode[jj] == REC && (KPERSISTED(jj) || dec[jj] != 0)) || (mode[jj] != REC && KPOS(jj)))
#else
#define KANSWER(jj) ((mode[jj] == REC && KPERSISTED(jj)) || (mode[jj] != REC && KPOS(jj)))
#endif
#ifdef FIX_ANSWER
#define ANSWERS(jj) (mode[jj] != DOWN)
#else
#define ANSWERS(jj) (mode[jj] != DOWN && mode[jj] != REC)
#endif

/* the recovering replica fr has both replies: abstain iff some K >= 1,
 * i.e. in the slots below H = K + window (the issue's reading). HZ_LE:
 * abstain in the slots <= H, as include/rabia/core.h rule 2 states it; for
 * our slot 1 and window 1 that is always. */
inline finish_horizon(fr) {
#ifdef HZ_LE
  hk[fr] = 1;
#endif
  if
  :: hk[fr] -> printf("r%d has its horizon: ABSTAINS in the slot\n", fr);
     mode[fr] = ABST; hz[fr] = 2; seen[fr] = 1; gc_all(fr);
     for (xk : 0 .. NK-1) { for (xt : 0 .. NR-1) { GOT(fr,xk,xt) = 0 } }
  :: else -> printf("r%d has its horizon: takes part in the slot afresh\n", fr);
     mode[fr] = IDLE; hz[fr] = 1
  fi;
  hq[fr] = 0; hk[fr] = 0
}

#ifndef CONCURRENT
#define MAYCRASH(rr) (mode[rr] != DOWN && \
  (rr == 0 || (mode[0] != DOWN && mode[0] != REC)) && \
  (rr == 1 || (mode[1] != DOWN && mode[1] != REC)) && \
  (rr == 2 || (mode[2] != DOWN && mode[2] != REC)))
#else
#define MAYCRASH(rr) (mode[rr] != DOWN)
#endif

#if defined(FIX_PERSIST)
/* NET_RESEND: on the new connections the replica sends every message of
 * the slot in its log to each peer that is up and has not counted it, and
 * each peer that is up sends it its own (a peer that is down gets them when
 * it restarts) */
inline resend_log(sr) {
#ifdef NET_RESEND
  for (xj : 0 .. NR-1) {
    if
    :: xj != sr && mode[xj] != DOWN ->
       for (xk : 0 .. NK-1) {
         if
         :: SENT(sr,xk) != 0 && GOT(xj,xk,sr) == 0 -> post(sr, xj, xk, SENT(sr,xk))
         :: else -> skip
         fi;
         if
         :: SENT(xj,xk) != 0 -> post(xj, sr, xk, SENT(xj,xk))
         :: else -> skip
         fi
       }
    :: else -> skip
    fi
  }
#else
  skip
#endif
}
/* restart and resume the slot where the persisted messages left it */
inline restart_now(rr) {
  printf("r%d restarts and resumes from its log\n", rr);
  mode[rr] = pmode[rr]; pmode[rr] = 0;
  resend_log(rr);
  progress(rr)
}
#elif defined(MUT_FORGET_VOTE)
inline restart_now(rr) {
  printf("r%d restarts and takes part again from scratch (no horizon)\n", rr);
  mode[rr] = IDLE; hz[rr] = 1; RESEND(rr)
}
#endif

#if defined(CRASH_SETS) || defined(CRASH_ALL)
/* a crash event takes down a set of replicas at once (xw: bit mask): two
 * of them (CRASH_SETS) or the whole cluster, a power loss. Each keeps its
 * log; everything else of theirs is lost, messages in flight included. */
#define INSET(m,rr) (((m) >> (rr)) & 1)
#define SETOK(m) ((!INSET(m,0) || MAYCRASH(0)) && (!INSET(m,1) || MAYCRASH(1)) && (!INSET(m,2) || MAYCRASH(2)))
#ifdef CRASH_SETS
#define PICKSET if :: SETOK(1) -> xw = 1 :: SETOK(2) -> xw = 2 :: SETOK(4) -> xw = 4 \
  :: SETOK(3) -> xw = 3 :: SETOK(5) -> xw = 5 :: SETOK(6) -> xw = 6 :: SETOK(7) -> xw = 7 fi
#else
#define PICKSET if :: SETOK(1) -> xw = 1 :: SETOK(2) -> xw = 2 :: SETOK(4) -> xw = 4 :: SETOK(7) -> xw = 7 fi
#endif
inline crash_set() {
  if
  :: xw == 7 -> printf("the whole cluster crashes\n")
  :: xw == 3 || xw == 5 || xw == 6 -> printf("two replicas crash at once\n")
  :: else -> skip
  fi;
  for (xm : 0 .. NR-1) { if :: INSET(xw,xm) -> persist_crash(xm) :: else -> skip fi };
  crashes++; ghost_spent();
  for (xm : 0 .. NR-1) { if :: INSET(xw,xm) -> mode[xm] = DOWN :: else -> skip fi }
}
#endif

#if defined(CRASH_SETS) || defined(CRASH_ALL)
#ifndef ATOMIC_RESTART
#define CRASH :: atomic { crashes < plan && (MAYCRASH(0) || MAYCRASH(1) || MAYCRASH(2)) -> \
  PICKSET; crash_set(); CLR }
#define RESTART :: atomic { mode[0] == DOWN || mode[1] == DOWN || mode[2] == DOWN -> \
  if :: mode[0] == DOWN -> xw = 0 :: mode[1] == DOWN -> xw = 1 :: mode[2] == DOWN -> xw = 2 fi; \
  restart_now(xw); CLR }
#else
/* ATOMIC_RESTART: the crashed replicas restart one after the other in the
 * same step */
#define CRASH :: atomic { crashes < plan -> PICKSET; crash_set(); \
  for (xm : 0 .. NR-1) { if :: INSET(xw,xm) -> restart_now(xm); \
       if :: dec[xm] != 0 -> gc_all(xm) :: else -> skip fi \
     :: else -> skip fi }; CLR }
#define RESTART
#endif
#define ANSWER
#elif !defined(ATOMIC_RESTART)
#define CRASH :: atomic { crashes < plan && (MAYCRASH(0) || MAYCRASH(1) || MAYCRASH(2)) -> \
  if :: MAYCRASH(0) -> xw = 0 :: MAYCRASH(1) -> xw = 1 :: MAYCRASH(2) -> xw = 2 fi; \
  CRASH_BODY(xw); mode[xw] = DOWN; hq[xw] = 0; hk[xw] = 0; CLR }
#if defined(FIX_PERSIST) || defined(MUT_FORGET_VOTE)
#define RESTART :: atomic { mode[0] == DOWN || mode[1] == DOWN || mode[2] == DOWN -> \
  if :: mode[0] == DOWN -> xw = 0 :: mode[1] == DOWN -> xw = 1 :: mode[2] == DOWN -> xw = 2 fi; \
  restart_now(xw); CLR }
#define ANSWER
#else
/* restart: the new incarnation connects and sends HORIZON_REQ to its peers */
#define RESTART :: atomic { mode[0] == DOWN || mode[1] == DOWN || mode[2] == DOWN -> \
  if :: mode[0] == DOWN -> xw = 0 :: mode[1] == DOWN -> xw = 1 :: mode[2] == DOWN -> xw = 2 fi; \
  printf("r%d restarts and asks for the horizon\n", xw); mode[xw] = REC; hq[xw] = 0; hk[xw] = 0; CLR }
/* peer jj answers rr's HORIZON_REQ with its K; on the last reply rr sets
 * its horizon */
#define CAN_ANSWER(rr,jj) (mode[rr] == REC && ANSWERS(jj) && (hq[rr] & (1 << jj)) == 0)
#define ANSWER :: atomic { CAN_ANSWER(0,1) || CAN_ANSWER(0,2) || CAN_ANSWER(1,0) || CAN_ANSWER(1,2) || CAN_ANSWER(2,0) || CAN_ANSWER(2,1) -> \
  if :: CAN_ANSWER(0,1) -> xw = 0; xo = 1 :: CAN_ANSWER(0,2) -> xw = 0; xo = 2 \
     :: CAN_ANSWER(1,0) -> xw = 1; xo = 0 :: CAN_ANSWER(1,2) -> xw = 1; xo = 2 \
     :: CAN_ANSWER(2,0) -> xw = 2; xo = 0 :: CAN_ANSWER(2,1) -> xw = 2; xo = 1 fi; \
  hq[xw] = hq[xw] | (1 << xo); \
  if :: KANSWER(xo) -> hk[xw] = 1; printf("r%d answers r%d: K >= 1\n", xo, xw) \
     :: else -> printf("r%d answers r%d: K = 0\n", xo, xw) fi; \
  if :: (hq[xw] | (1 << xw)) == ALL7 -> finish_horizon(xw) :: else -> skip fi; CLR }
#endif
#else
/* ATOMIC_RESTART (a reduction, see README): crash, restart and both
 * HORIZON replies in one step; replies given later could only report a
 * larger K. */
#if defined(FIX_PERSIST) || defined(MUT_FORGET_VOTE)
#define HORIZON_NOW(rr) restart_now(rr)
#else
#define HORIZON_NOW(rr) \
  for (xt : 0 .. NR-1) { if :: xt != rr && KANSWER(xt) -> hk[rr] = 1 :: else -> skip fi }; \
  printf("r%d restarts; its peers answer K %d (1: some K >= 1)\n", rr, hk[rr]); \
  finish_horizon(rr)
#endif
#define CRASH :: atomic { crashes < plan -> \
  if :: xw = 0 :: xw = 1 :: xw = 2 fi; \
  CRASH_BODY(xw); HORIZON_NOW(xw); \
  if :: dec[xw] != 0 -> gc_all(xw) :: else -> skip fi; CLR }
#define RESTART
#define ANSWER
#endif

/* --------------------------------------------------------- bounded liveness
 * A phase is lucky when its coin equals the value of every non-? vote of the
 * phase (or there was none): then every replica that finishes it holds that
 * value. With a fair common coin each phase is lucky with probability >= 1/2.
 * Checked: in every terminal state every replica has decided and none is
 * still waiting for HORIZON replies, unless every phase 1..P-1 flipped the
 * coin and was unlucky. */
#define LIVE_ALL (dec[0] != 0 && dec[1] != 0 && dec[2] != 0 && mode[0] != REC && mode[1] != REC && mode[2] != REC)
#ifdef CHECK_LIVE
#define UNLUCKY(p) (coin[p] != 0 && vv[p] != 0 && vv[p] != coin[p])
#if P == 2
#define ALL_UNLUCKY UNLUCKY(1)
#elif P == 3
#define ALL_UNLUCKY (UNLUCKY(1) && UNLUCKY(2))
#else
#define ALL_UNLUCKY (UNLUCKY(1) && UNLUCKY(2) && UNLUCKY(3))
#endif
#endif

active proctype world()
{
#ifdef CHECK_LIVE
  /* every number of crashes up to the bound: a terminal state has the
   * crash budget spent, so smaller plans give the crash-free endings */
  if
  :: plan = 0
#if MAXCRASH >= 1
  :: plan = 1
#endif
#if MAXCRASH >= 2
  :: plan = 2
#endif
#if MAXCRASH >= 3
  :: plan = 3
#endif
  fi;
#else
  plan = MAXCRASH;   /* a safety violation needs no terminal state */
#endif
again:
  do
  PROPOSE
  DELIVER
  WAITEND
#ifndef ADOPT_LATE
  ADOPT
#endif
  CRASH
  RESTART
  ANSWER
  :: else ->
#ifdef ADOPT_LATE
     /* nothing else can move: DECISIONs are adopted now */
     if
     :: (UP_UNDECIDED(0) || UP_UNDECIDED(1) || UP_UNDECIDED(2)) &&
        (UP_DECIDED(0) || UP_DECIDED(1) || UP_DECIDED(2)) ->
        atomic {
          for (xj : 0 .. NR-1) {
            if
            :: UP_UNDECIDED(xj) ->
               xsd = (UP_DECIDED(0) -> 0 : (UP_DECIDED(1) -> 1 : 2));
               adopt(xj, xsd)
            :: else -> skip
            fi
          };
          CLR
        };
        goto again
     :: else -> skip
     fi;
#endif
     printf("terminal: decisions %d %d %d (0 = none, 1 = null, 2 = batch)\n", dec[0], dec[1], dec[2]);
#ifdef CHECK_LIVE
     assert(LIVE_ALL || ALL_UNLUCKY);   /* BOUNDED LIVENESS */
#endif
     break
  od
}
