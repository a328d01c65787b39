#!/usr/bin/env bash
# check.sh: model-check rabia_wmvc.pml with spin and print a summary table.
#
#   check.sh ci          safety + mutations + liveness at CI bounds (minutes)
#   check.sh full        everything, deeper bounds (hours; see README.md)
#   check.sh safety | mutations | liveness      one CI group
#   check.sh full-safety | full-mutations | full-liveness   one full group
#   check.sh list        the checks and their settings
#   check.sh NAME...     the named checks
#
# Environment:
#   WORK         scratch folder for pan sources, binaries and trails (default:
#                a new folder under ${TMPDIR:-/tmp}); nothing is written next
#                to this script
#   SPIN, CC     the spin and C compiler to use (default: spin, cc)
#   PAN_MEM_MB   memory bound per pan run (default 2048; full: 8192)
#   PAN_TIMEOUT  seconds per pan run (default 600; full: 14400)
#   PAN_HASH     log2 of pan's hash table slots (default 24; full: 27)
#   PAN_CFLAGS   extra flags for compiling pan, e.g. -DCOLLAPSE (lossless
#                state compression: still exhaustive, slower, less memory)
#
# A check expects either "pass" (an exhaustive search with no error) or
# "fail:PROPERTY" (a counterexample against that property, with a trail that
# is replayed into story.txt). The script exits non-zero if any check does not
# meet its expectation, or a search was not exhaustive.
set -u

here=$(cd "$(dirname "$0")" && pwd)
model=$here/rabia_wmvc.pml
SPIN=${SPIN:-spin}
CC=${CC:-cc}

# ---------------------------------------------------------------- the checks
# group | name | expectation | spin defines | what it shows
# Shorthands: R = reductions (atomic restart, late adoption; README argues
# both), L = bounded liveness check.
R="-DATOMIC_RESTART -DADOPT_LATE"
checks() {
cat <<EOF
safety|safety.aaa|pass|$R -DPROPS_AAA|agreement, validity, no-contradiction; P=2, 1 crash, proposals A A A
safety|safety.aab|pass|$R -DPROPS_AAB|the same with proposals A A B
safety|safety.restart.aaa|pass|-DADOPT_LATE -DPROPS_AAA|crash, restart and each HORIZON reply as separate steps
safety|safety.2crash.aaa|pass|$R -DMAXCRASH=2 -DPROPS_AAA|2 crashes, one at a time
safety|safety.hz_le.aab|pass|$R -DHZ_LE -DCHECK_SENT -DPROPS_AAB|the rule as core.h states it (abstain in slots <= H); strict no-contradiction holds there
safety|fix.persist.safety|pass|$R -DFIX_PERSIST -DCHECK_SENT -DPROPS_AAB|FIX_PERSIST: safe, and no message contradicts one sent before
safety|fix.persist.crash_sets|pass|$R -DFIX_PERSIST -DCRASH_SETS -DMAXCRASH=2 -DCHECK_SENT -DNO_CHECK_CONTRA -DPROPS_AAB|FIX_PERSIST, 2 crash events of 1, 2 or all 3 replicas at once, in-flight messages lost and re-sent from the log
full-safety|full.safety.exwait.aab|pass|$R -DEXCHANGE_WAIT -DPROPS_AAB|the exchange waits for the third proposal when the first two differ (core/instance.c), 1 crash
safety|fix.persist.exwait|pass|$R -DFIX_PERSIST -DCRASH_SETS -DMAXCRASH=2 -DCHECK_SENT -DNO_CHECK_CONTRA -DPROPS_AAB -DEXCHANGE_WAIT -DFAST_DECIDE|the daemon's rules as they are: FIX_PERSIST with the exchange wait and the unanimous decision, 2 crash events of 1, 2 or all 3 replicas
full-safety|full.safety.fast.aab|pass|$R -DEXCHANGE_WAIT -DFAST_DECIDE -DPROPS_AAB|a unanimous exchange decides at once, with the exchange wait, 1 crash, proposals A A B
full-safety|full.safety.fast.aaa|pass|$R -DEXCHANGE_WAIT -DFAST_DECIDE -DPROPS_AAA|the same with proposals A A A (1.07 M states, 65 s)
mutations|mut.fast_two|fail:AGREEMENT|$R -DFIX_PERSIST -DCRASH_SETS -DEXCHANGE_WAIT -DFAST_DECIDE -DMUT_FAST_TWO -DNO_CHECK_CONTRA -DPROPS_AAB|deciding at once on n-f matching proposals instead of all n
mutations|mut.local_coin|fail:LIVENESS|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DMUT_LOCAL_COIN -DPROPS_AAB|per-replica coin: a lucky phase no longer ends the slot
mutations|mut.majority_decide|fail:AGREEMENT|$R -DMUT_MAJORITY_DECIDE|decide on one vote next to a ?
mutations|mut.forget_vote|fail:CONTRADICTION|$R -DMUT_FORGET_VOTE|a restarted replica votes again without the horizon rule
mutations|mut.count_extra|fail:CONTRADICTION|$R -DMUT_COUNT_EXTRA|counting more than n-f messages of a round, redoing it
mutations|mut.keep_old|fail:VALIDITY|$R -DMUT_KEEP_OLD -DPROPS_AAB|the old incarnation's undelivered messages are not discarded on reconnect
mutations|mut.send_before_persist|fail:CONTRADICTION|$R -DFIX_PERSIST -DCRASH_SETS -DMUT_SEND_BEFORE_PERSIST -DPROPS_AAB|FIX_PERSIST with a message sent before its record is durable: a crash loses the record, the restarted replica votes again
full-liveness|full.live.exwait.aab|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DPROPS_AAB -DEXCHANGE_WAIT|1 crash, the exchange wait: all decide unless the coin was unlucky
full-liveness|full.fix.persist.exwait.live|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DPROPS_AAB -DFIX_PERSIST -DCRASH_SETS -DEXCHANGE_WAIT -DFAST_DECIDE|FIX_PERSIST, the exchange wait and the unanimous decision: live after a crash of 1, 2 or all 3 replicas
liveness|live.aab|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DPROPS_AAB|1 crash: all decide unless the coin was unlucky
liveness|live.aaa|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DPROPS_AAA|the same with proposals A A A
liveness|live.hz_le.aab|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DHZ_LE -DPROPS_AAB|the same under core.h's reading
liveness|finding.two_crashes|fail:LIVENESS|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DMAXCRASH=2 -DPROPS_AAB -DPERSIST_DECISION|FINDING: a crash while a restarted replica abstains blocks the slot forever
liveness|finding.concurrent|fail:LIVENESS|-DCHECK_LIVE -DNO_CHECK_CONTRA -DCONCURRENT -DMAXCRASH=2 -DPROPS_AAA -DADOPT_LATE|FINDING: two replicas recovering at once wait for each other forever
liveness|finding.strict_sent|fail:SENT|$R -DCHECK_SENT -DPROPS_AAB|FINDING (harmless): a fresh restart may re-propose differently what was never delivered
liveness|fix.persist.live|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DMAXCRASH=2 -DPROPS_AAB -DFIX_PERSIST|FIX_PERSIST: live with 2 crashes
liveness|fix.persist.live.crash_sets|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DPROPS_AAB -DFIX_PERSIST -DCRASH_SETS|FIX_PERSIST: live after a crash of 1, 2 or all 3 replicas at once
full-safety|full.safety|pass|-DADOPT_LATE|P=2, 1 crash, free proposals, separate restart steps
full-safety|full.safety.adopt|pass|-DATOMIC_RESTART -DPROPS_AAB|DECISIONs adopted at any time (checks the late-adoption reduction)
full-safety|full.safety.p3|pass|$R -DP=3 -DPROPS_AAB|3 phases
full-safety|full.safety.2crash|pass|$R -DMAXCRASH=2|2 crashes one at a time, free proposals
full-safety|full.safety.2crash.restart|pass|-DADOPT_LATE -DMAXCRASH=2 -DPROPS_AAA|2 crashes, separate restart steps
full-safety|full.safety.hz_exact|pass|$R -DMAXCRASH=2 -DPROPS_AAB -DHZ_EXACT|a restarted replica reports only what it saw
full-safety|full.safety.persist_decision|pass|$R -DMAXCRASH=2 -DPROPS_AAB -DPERSIST_DECISION|decisions survive crashes
full-safety|full.safety.hz_le|pass|$R -DMAXCRASH=2 -DHZ_LE|core.h's reading, 2 crashes, free proposals
full-safety|full.finding.fix_answer|fail:CONTRADICTION|-DADOPT_LATE -DCONCURRENT -DMAXCRASH=2 -DPROPS_AAB -DFIX_ANSWER|FIX_ANSWER lets a replica vouch for a slot it forgot: the other one re-proposes over messages a dead incarnation received
full-safety|full.fix.persist.safety|pass|$R -DCHECK_SENT -DNO_CHECK_CONTRA -DMAXCRASH=2 -DFIX_PERSIST|FIX_PERSIST: 2 crashes, free proposals (CHECK_SENT implies no-contradiction)
full-safety|full.fix.persist.net_resend|pass|$R -DFIX_PERSIST -DNET_RESEND -DCHECK_SENT -DPROPS_AAB|fix.persist.safety with in-flight messages lost and re-sent from the log: the same states
full-safety|full.fix.persist.all.received|pass|$R -DFIX_PERSIST -DCRASH_ALL -DCHECK_SENT -DPROPS_AAB|FIX_PERSIST, a crash of 1 or all 3 replicas, no-contradiction of received messages checked too
full-safety|full.fix.persist.sets.safety|pass|$R -DFIX_PERSIST -DCRASH_SETS -DMAXCRASH=2 -DCHECK_SENT -DNO_CHECK_CONTRA|FIX_PERSIST, 2 crash events of 1, 2 or 3 replicas, free proposals
full-safety|full.fix.persist.sets.restart|pass|-DADOPT_LATE -DCONCURRENT -DMAXCRASH=3 -DFIX_PERSIST -DCRASH_SETS -DCHECK_SENT -DNO_CHECK_CONTRA -DPROPS_AAB|FIX_PERSIST, 3 crash events, replicas down for a while (restarts are separate steps)
full-mutations|full.mut.local_coin.safety|pass|$R -DMUT_LOCAL_COIN|a per-replica coin does not break safety (the Ben-Or argument)
full-mutations|full.mut.forget_vote.agreement|fail:AGREEMENT|$R -DMUT_FORGET_VOTE -DNO_CHECK_CONTRA|without the contradiction check the re-vote breaks agreement
full-mutations|full.mut.count_extra.agreement|fail:AGREEMENT|$R -DMUT_COUNT_EXTRA -DNO_CHECK_CONTRA|counting extra messages breaks agreement
full-mutations|full.mut.send_before_persist|fail:AGREEMENT|$R -DFIX_PERSIST -DCRASH_SETS -DMUT_SEND_BEFORE_PERSIST -DPROPS_AAB -DNO_CHECK_CONTRA|sending before the record is durable breaks agreement
full-liveness|full.live|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA|1 crash, free proposals
full-liveness|full.live.p3|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DP=3 -DPROPS_AAB|3 phases: undecided only if both coins were unlucky
full-liveness|full.live.restart|pass|-DCHECK_LIVE -DNO_CHECK_CONTRA -DPROPS_AAB|separate restart steps
full-liveness|full.fix.answer.concurrent|fail:LIVENESS|-DCHECK_LIVE -DNO_CHECK_CONTRA -DCONCURRENT -DMAXCRASH=2 -DPROPS_AAA -DADOPT_LATE -DFIX_ANSWER -DPERSIST_DECISION|FIX_ANSWER ends the wait, but two abstainers still block the slot
full-liveness|full.fix.persist.live|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DMAXCRASH=2 -DFIX_PERSIST|FIX_PERSIST: live with 2 crashes, free proposals
full-liveness|full.fix.persist.concurrent|pass|-DCHECK_LIVE -DNO_CHECK_CONTRA -DCONCURRENT -DMAXCRASH=2 -DPROPS_AAB -DFIX_PERSIST|FIX_PERSIST: live with 2 crashes at once
full-liveness|full.fix.persist.sets.live|pass|-DATOMIC_RESTART -DCHECK_LIVE -DNO_CHECK_CONTRA -DMAXCRASH=3 -DPROPS_AAB -DFIX_PERSIST -DCRASH_SETS|FIX_PERSIST: live with 3 crash events of 1, 2 or 3 replicas
full-liveness|full.fix.persist.sets.concurrent|pass|-DCHECK_LIVE -DNO_CHECK_CONTRA -DCONCURRENT -DMAXCRASH=3 -DPROPS_AAB -DFIX_PERSIST -DCRASH_SETS|FIX_PERSIST: live with 3 crash events, replicas down for a while
EOF
}

# property name -> text that appears in pan's "assertion violated" line
prop_pattern() {
  case $1 in
    AGREEMENT) echo 'gdec==' ;;
    VALIDITY) echo 'majb' ;;
    CONTRADICTION) echo 'oldv\[|dlv\[' ;;
    SENT) echo 'fsent\[' ;;
    LIVENESS) echo 'dec\[0\]!=0' ;;
    *) echo "unknown property $1" >&2; exit 2 ;;
  esac
}
prop_of_line() {
  case $1 in
    *gdec==*) echo AGREEMENT ;;
    *majb*) echo VALIDITY ;;
    *oldv\[*|*dlv\[*) echo CONTRADICTION ;;
    *fsent\[*) echo SENT ;;
    *"dec[0]!=0"*) echo LIVENESS ;;
    *) echo OTHER ;;
  esac
}

mode=${1:-ci}
full=0
case $mode in
  ci) groups="safety mutations liveness" ;;
  safety|mutations|liveness) groups=$mode ;;
  full) groups="safety mutations liveness full-safety full-mutations full-liveness"; full=1 ;;
  full-safety|full-mutations|full-liveness) groups=$mode; full=1 ;;
  list) checks | awk -F'|' '{ printf "%-14s %-32s %-20s %s\n      %s\n", $1, $2, $3, $5, $4 }'; exit 0 ;;
  -h|--help|help) sed -n '2,22p' "$0"; exit 0 ;;
  *) groups="" ;;
esac
if [ $full = 1 ]; then
  PAN_MEM_MB=${PAN_MEM_MB:-8192}; PAN_TIMEOUT=${PAN_TIMEOUT:-14400}; PAN_HASH=${PAN_HASH:-27}
else
  PAN_MEM_MB=${PAN_MEM_MB:-2048}; PAN_TIMEOUT=${PAN_TIMEOUT:-600}; PAN_HASH=${PAN_HASH:-24}
fi

if [ -n "$groups" ]; then
  selected=$(checks | awk -F'|' -v g=" $groups " 'index(g, " " $1 " ") > 0')
else
  selected=""
  for n in "$@"; do
    line=$(checks | awk -F'|' -v n="$n" '$2 == n')
    if [ -z "$line" ]; then echo "check.sh: no check named $n (see: check.sh list)" >&2; exit 2; fi
    selected="$selected$line"$'\n'
  done
fi

command -v "$SPIN" >/dev/null || { echo "check.sh: $SPIN not found" >&2; exit 2; }
command -v "$CC" >/dev/null || { echo "check.sh: $CC not found" >&2; exit 2; }
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/rabia-model.XXXXXX")}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
case "$WORK/" in "$here"/*) echo "check.sh: WORK must not be inside $here" >&2; exit 2 ;; esac
echo "spin model checks ($mode) in $WORK; memory bound ${PAN_MEM_MB} MB, ${PAN_TIMEOUT} s per run${PAN_CFLAGS:+, pan built with $PAN_CFLAGS}"

summary=$WORK/summary.txt
printf '%-32s %-20s %-20s %12s %7s %9s  %s\n' check expected result states depth time_s verdict > "$summary"
bad=0
t_all=$(date +%s.%N)

while IFS='|' read -r _group name expect defs what; do
  [ -z "$name" ] && continue
  d=$WORK/$name
  rm -rf "$d"; mkdir -p "$d"
  cp "$model" "$d/"
  (
    cd "$d" || exit 2
    # shellcheck disable=SC2086
    "$SPIN" -a $defs rabia_wmvc.pml > spin.out 2>&1 || { cat spin.out; exit 3; }
    "$CC" -O2 -w -DSAFETY -DMEMLIM="$PAN_MEM_MB" ${PAN_CFLAGS:-} -o pan pan.c > cc.out 2>&1 || { cat cc.out; exit 3; }
    t0=$(date +%s.%N)
    timeout "$PAN_TIMEOUT" ./pan -m1000000 -w"$PAN_HASH" -c1 > pan.out 2>&1
    echo $? > pan.rc
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{ printf "%.1f\n", $2 - $1 }' > wall.txt
    if [ -f rabia_wmvc.pml.trail ]; then
      # shellcheck disable=SC2086
      "$SPIN" -t $defs rabia_wmvc.pml 2>&1 | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]][[:space:]]*/ /g' |
        grep -Ev '^[a-zA-Z_0-9]+(\[[0-9]+\])? = -?[0-9]+$|^$|^[0-9]+: proc|process(es)? created|^#processes' > story.txt
    fi
  )
  rc=$?
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$d/pan.out" 2>/dev/null | tail -1)
  states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$d/pan.out" 2>/dev/null | tail -1)
  depth=$(sed -n 's/.*depth reached \([0-9]*\),.*/\1/p' "$d/pan.out" 2>/dev/null | tail -1)
  wall=$(cat "$d/wall.txt" 2>/dev/null || echo "?")
  viol=$(grep -m1 'assertion violated' "$d/pan.out" 2>/dev/null)
  incomplete=0
  if [ $rc -ne 0 ] || [ -z "$errors" ]; then incomplete=1; fi
  if grep -q 'max search depth too small\|reached -DMEMLIM bound\|out of memory' "$d/pan.out" 2>/dev/null; then incomplete=1; fi
  if [ "$(cat "$d/pan.rc" 2>/dev/null)" = 124 ]; then incomplete=1; fi
  if [ "${errors:-0}" != 0 ]; then result="fail:$(prop_of_line "$viol")"; else result=pass; fi
  [ $incomplete = 1 ] && [ "${errors:-0}" = 0 ] && result="INCOMPLETE"
  if [ "$result" = "$expect" ] && { [ "$expect" != pass ] || [ $incomplete = 0 ]; }; then
    verdict=ok
    if [ "$expect" != pass ] && [ ! -s "$d/rabia_wmvc.pml.trail" ]; then verdict="NO TRAIL"; bad=1; fi
  else
    verdict=UNEXPECTED; bad=1
  fi
  printf '%-32s %-20s %-20s %12s %7s %9s  %s\n' "$name" "$expect" "$result" "${states:-?}" "${depth:-?}" "$wall" "$verdict" | tee -a "$summary"
  if [ "$expect" != pass ] && [ -n "$viol" ]; then
    echo "    $what" | tee -a "$summary"
    echo "    ${viol#pan:1: }; trail: $d/rabia_wmvc.pml.trail, story: $d/story.txt" | tee -a "$summary"
  fi
  if [ "$verdict" != ok ]; then
    echo "    defines: $defs" | tee -a "$summary"
    tail -n 5 "$d/pan.out" 2>/dev/null | sed 's/^/    | /'
  fi
done <<< "$selected"

t_end=$(date +%s.%N)
echo "$t_all $t_end" | awk '{ printf "total %.0f s\n", $2 - $1 }' | tee -a "$summary"
if [ $bad -ne 0 ]; then
  echo "check.sh: some checks did not meet their expectation (see $summary)"
  exit 1
fi
echo "check.sh: all checks met their expectation"
