/*
 * session.h — the session table: allocation, claim, checkpoint commit,
 * finish, lease release, and the recovery pass for a dead participant.
 *
 * Every state change of a record is a CAS on its ctl word (state + lease).
 * Before an actor CASes a record into a state leased to itself (ALLOCATING
 * or RUNNING), it writes the index into a free entry of its own lease table
 * and clears the entry only after the lease is gone.  The recovery pass of
 * a dead (slot, gen) therefore looks only at that slot's lease table:
 *   entry -> ALLOCATING leased to the dead gen: back to FREE
 *   entry -> RUNNING leased to the dead gen:    back to QUEUED at its last
 *                                               published checkpoint, enqueued
 *   entry -> QUEUED:                            enqueued again (its hint may
 *                                               have been lost with the death)
 *   entry -> WAITING:                           woken (the death may have come
 *                                               between parking and looking
 *                                               at its children once more)
 *   entry -> finished, with a parent:           its parent woken (the death
 *                                               may have come between the
 *                                               final CAS and the wake-up)
 *   anything else:                              untouched
 * The supervisor's start-up pass scans the whole table instead, since every
 * earlier generation is dead then.
 *
 * Stalls (README.md: a stall is as safe as a death): every CAS on a record expects a word that
 * carries the session's generation, so an actor that stops anywhere and
 * resumes after the record was freed and reused fails its CAS instead of
 * acting on the newer session; readers copy, then re-validate
 * (fg_session_snapshot).  Waiting holds nothing (rule 10): a parent that
 * waits for its children is parked (WAITING, no lease) and woken by the
 * first child that ends (fg_session_park / fg_session_wake).
 */
#ifndef FORGE_SESSION_H
#define FORGE_SESSION_H

#include "forge/region.h"

#include <stddef.h>
#include <stdint.h>

/* A handle: index and generation.  Printed as 16 hex digits (gen, idx). */
typedef uint64_t fg_handle_t;
#define FG_HANDLE(idx, gen) (((uint64_t)(uint32_t)(gen) << 32) | (uint32_t)(idx))
#define FG_HANDLE_IDX(h)    ((uint32_t)(h))
#define FG_HANDLE_GEN(h)    ((uint32_t)((h) >> 32))

void fg_handle_format(fg_handle_t h, char buf[17]);
int  fg_handle_parse(const char *s, fg_handle_t *out);

/*
 * A session's id, as users see it: the region's epoch and the handle,
 * 32 hex digits.  Never the same for two sessions: the handle's generation
 * moves on at each reuse of a record, and a recreated region (or another
 * machine's) has another epoch.  fg_id_parse: -EINVAL if s is not an id,
 * -ENOENT if it is one of another region.
 */
#define FG_ID_LEN 32
void fg_id_format(const fg_region_t *r, fg_handle_t h, char buf[FG_ID_LEN + 1]);
int  fg_id_parse(const fg_region_t *r, const char *s, fg_handle_t *out);

/* Who acts on the region: one process, in its own registry slot. */
typedef struct fg_actor {
	fg_region_t *r;
	fg_slot_t   *self;
	uint32_t    *leases;   /* this slot's lease table */
	uint32_t     slot;
	uint32_t     gen;
	/* A submitter of many sessions in a row (forgectl submit --count N)
	 * sets ring_every: its enqueues then ring the doorbell once every
	 * ring_every sessions, and it calls fg_session_ring before it stops or
	 * waits for anything (see fg_session_enqueue).  0 (fg_actor_init's):
	 * every enqueue rings. */
	uint32_t     ring_every;
	uint32_t     unrung;
} fg_actor_t;

void fg_actor_init(fg_actor_t *a, fg_region_t *r, uint32_t slot);

typedef struct fg_submit {
	uint16_t workflow;
	uint32_t steps;          /* synthetic: steps; react: max LLM calls      */
	uint32_t arg;            /* synthetic: per-step delay µs; react: provider */
	const char *system;      /* react: optional system message              */
	const char *prompt;      /* react: the user's message                   */
	const char *key;         /* optional idempotency key (FG_REC_KEY record) */
	size_t keylen;
	uint32_t parent;         /* parent's index + 1 (a child session), or 0  */
	const uint8_t *recs;     /* react: when set, the conversation's first
				  * records (conv.h: a client's whole history,
				  * PARAMS), instead of system and prompt       */
	uint32_t recs_n;
} fg_submit_t;

/*
 * Whether handle h still names its session: the record's generation is
 * h's and it is neither FREE nor ALLOCATING.  *ctl (if not NULL) receives
 * the word it judged by.  The one "is this handle still that session?"
 * test: a reader that goes on to read the record must re-validate after
 * copying (fg_session_snapshot does both).
 */
int fg_session_valid(const fg_region_t *r, fg_handle_t h, uint64_t *ctl);

/* A consistent copy of one session, taken by fg_session_snapshot. */
typedef struct fg_snap {
	fg_handle_t h;
	uint64_t epoch;          /* the region's (for ids: fg_id_format)      */
	uint32_t idx;
	uint64_t ctl;            /* state as of the end of the copy           */
	uint64_t ckpt;
	fg_wstate_t st;          /* st[ab] of ckpt                            */
	uint16_t workflow, claims;
	uint32_t steps, arg, parent;
	uint64_t queued_ns, created_ns, started_ns, finished_ns;
	uint8_t *log;            /* malloc'd copy of log[0..len) (want_log)    */
	uint32_t len;
} fg_snap_t;

/*
 * Copies session h (and, with want_log, its checkpoint log) and then
 * re-validates: 0 with a copy that is all of one session at one published
 * checkpoint; -ENOENT if h does not name a session, or stopped naming it
 * while it was copied (purged, reused); -ENOMEM.  fg_snap_free frees the
 * log copy.  want_log 2 copies only the log's first FG_SNAP_PREFIX bytes
 * (its first records: KEY, AGENT), len then at most that.
 */
#define FG_SNAP_PREFIX 512u
int fg_session_snapshot(const fg_region_t *r, fg_handle_t h, fg_snap_t *out, int want_log);
void fg_snap_free(fg_snap_t *s);
/* The handle of the session now in record idx (by its ctl word). */
fg_handle_t fg_session_handle(const fg_region_t *r, uint32_t idx);

const char *fg_state_name(uint32_t st);
int         fg_state_parse(const char *s);

/*
 * Allocates a FREE record, fills it in, makes it QUEUED and enqueues its
 * hint.  The initial conversation (system, prompt) is written into the
 * session's log as its first checkpoint.  -ENOSPC when the table is full,
 * -EBUSY when the actor's lease table is full, -E2BIG when the prompt does
 * not fit region.session_max_bytes, -EDQUOT when the region's file system
 * is full, -ENOMEM.
 */
int fg_session_submit(fg_actor_t *a, const fg_submit_t *p, fg_handle_t *out);
/* The bytes the first records of submission p take in a session's log of
 * region r (0 for a synthetic session): more than fg_log_max(r) is
 * fg_session_submit's -E2BIG, which a caller may so check beforehand. */
uint64_t fg_submit_bytes(const fg_region_t *r, const fg_submit_t *p);

/*
 * The two halves of submit, for a parent that must record a child's handle
 * in its own checkpoint between them: alloc leaves the record ALLOCATING
 * under the actor's lease (a death rolls it back to FREE), publish makes it
 * QUEUED and enqueues it.
 */
int fg_session_alloc(fg_actor_t *a, const fg_submit_t *p, fg_handle_t *out, uint32_t *entry);
int fg_session_publish(fg_actor_t *a, uint32_t idx, uint32_t entry);
/* Gives an allocated, never published record back (FREE). */
void fg_session_unalloc(fg_actor_t *a, uint32_t idx, uint32_t entry);

/*
 * Enqueues idx's hint on its home ring (FG_HOME_RING; if full, the next
 * one) and rings the doorbell.  Homes go by blocks of FG_HOME_BLOCK
 * neighbouring records, not record by record: a worker then touches (and
 * faults into its own page tables) about 1/nw of the table's pages
 * instead of every one of them.  Striped by record, every worker faulted
 * in the whole table: 0.32 faults a session with 2 workers against 0.17
 * with one (bench/scaling.sh), most of a worker's kernel time.  64 records
 * of 128 bytes are two pages of the table and a few pages of inline logs.
 */
#define FG_HOME_BLOCK 64u
#define FG_HOME_RING(idx, nw) ((uint32_t)((idx) / FG_HOME_BLOCK % (nw)))
int fg_session_enqueue(fg_actor_t *a, uint32_t idx);
/*
 * Rings the doorbell for the sessions an actor with ring_every enqueued
 * since it last rang (if a worker sleeps).  Deferring the ring costs a
 * session queued while every worker sleeps at most ring_every - 1
 * sessions' submit time; a submitter stopped or killed before it rings
 * leaves them to the workers' heartbeat_ms wait or the supervisor's sweep,
 * as one stopped between an enqueue and its ring always did.
 */
void fg_session_ring(fg_actor_t *a);

/*
 * QUEUED -> RUNNING leased to the actor.  *entry receives the lease-table
 * entry to pass to finish/release.  -EBUSY if not QUEUED (a stale or
 * duplicate hint), -ENOSPC if the lease table is full.
 */
int fg_session_claim(fg_actor_t *a, uint32_t idx, uint32_t *entry);

/*
 * Commits a new workflow state, and appends n bytes to the session's log,
 * by one atomic publish.  The caller holds the lease.  -ENOSPC if the log
 * is full (nothing is published).
 */
int fg_session_commit(fg_actor_t *a, uint32_t idx, const fg_wstate_t *st,
		      const void *log, uint32_t n);

/* Reads the last published state (a consistent snapshot); returns the ckpt word. */
uint64_t fg_session_read(const fg_region_t *r, uint32_t idx, fg_wstate_t *st);

/* RUNNING -> final (DONE, FAILED, CANCELLED); clears the lease entry. */
int fg_session_finish(fg_actor_t *a, uint32_t idx, uint32_t entry, uint32_t final_state);

/*
 * A thread's next run: a finished session (DONE or FAILED) takes the
 * records recs[0..n) (its next user message, or RESUME) and is QUEUED
 * again with its whole log, provided its checkpoint is still ckpt_seen (the
 * one the caller checked the records against: -ESTALE otherwise, nothing
 * changed; look again).  A cancelled one does not (-EPERM).  Leased to the caller while it appends (RUNNING under a's
 * slot): a death at any step leaves it queued at its last commit, with or
 * without the message, never both or twice.  *state: the state found.
 * 0; -ENOENT (no such session), -EBUSY (not finished: it runs), -EAGAIN
 * (no lease entry free), or the commit's error (-E2BIG: the log is full);
 * on an error the session is left as it was.
 */
int fg_session_continue(fg_actor_t *a, fg_handle_t h, uint64_t ckpt_seen, const void *recs,
			uint32_t n, uint32_t *state);

/*
 * A person's answer to a session WAITING for one (an approval, ask_human):
 * the same steps as fg_session_continue from WAITING (-EBUSY in any other
 * state), with crash points approval.answer.*; the session is QUEUED with
 * the records, and its deadline keeps counting from its run's start.
 */
int fg_session_answer(fg_actor_t *a, fg_handle_t h, uint64_t ckpt_seen, const void *recs,
		      uint32_t n, uint32_t *state);

/*
 * Cancels a session: QUEUED -> CANCELLED at once; RUNNING gets the cancel
 * flag and its worker ends it within milliseconds (its LLM request aborted,
 * its tools killed).  *state: the state found.  -ENOENT no such session,
 * -EALREADY it had finished.  Any process may call it (one CAS).  A child
 * cancelled while queued wakes its waiting parent when a is given (the
 * caller's actor, for the enqueue); with a NULL, the sweep wakes it.
 */
int fg_session_cancel(fg_region_t *r, fg_actor_t *a, fg_handle_t h, uint32_t *state);

/* RUNNING -> QUEUED (drain): hands the session on at its last checkpoint. */
int fg_session_release(fg_actor_t *a, uint32_t idx, uint32_t entry);

/*
 * RUNNING -> WAITING: the lease holder parks a session that waits for its
 * children, giving its lease (and its worker's slot) up.  After the CAS
 * (seq_cst) it calls ended(arg) once: a non-zero answer means something
 * it waits for ended meanwhile, and the session is woken at once.  With
 * the waker's seq_cst final CAS before it looks at the parent, one of the
 * two always sees the other (Dekker), so no wake-up is lost.
 * -ECANCELED if it was cancelled (it ends CANCELLED), -EIO lease lost.
 */
int fg_session_park(fg_actor_t *a, uint32_t idx, uint32_t entry,
		    int (*ended)(void *arg), void *arg);

/*
 * WAITING -> QUEUED, enqueued.  sgen 0 wakes whatever session waits in
 * the record (a child waking its parent by index; a wrong one only looks
 * and parks again).  Returns 1 if it woke it.  Any process may call it.
 */
int fg_session_wake(fg_actor_t *a, uint32_t idx, uint32_t sgen);

/*
 * The recovery pass for a dead (slot, gen), run by the supervisor (actor
 * a) after the process was reaped: lease entries as above, then the ring
 * intent.  Returns the number of sessions returned to QUEUED.
 */
uint32_t fg_session_recover_slot(fg_actor_t *a, uint32_t slot, uint32_t gen);

/* Start-up pass: every lease in the table is stale.  Returns sessions requeued. */
uint32_t fg_session_recover_all_unsafe(fg_actor_t *a);

/* Copies record idx and its log from src to dst (a region of another
 * geometry: forged's start-up migration, every process gone); -E2BIG if
 * the log is longer than dst's session maximum. */
int fg_session_copy_unsafe(fg_region_t *dst, const fg_region_t *src, uint32_t idx);

/*
 * Live text (streaming providers): the lease holder starts a turn's text
 * (fg_live_begin, with the request's attempt number) and appends to it as
 * pieces arrive (fg_live_append); both ring the session's bell.  Not a
 * commit: a crash forgets it, the turn runs again.  fg_live_read copies
 * up to cap bytes from byte `from` of the live text of session h's next
 * turn: the bytes (0: none yet, or it changed: look again), -1 if h is
 * gone, -2 if the text is shorter than `from` (a new attempt began), -3
 * if that turn has no live text (yet, or at all); *ckpt the
 * checkpoint word it belongs to, *attempt its attempt.
 */
void fg_live_begin(fg_region_t *r, uint32_t idx, uint32_t attempt);

/* A model turn's failed requests in a row (an outage, a rate limit), as
 * the lease holder notes them beside the live text (fg_live_outage) for
 * forgectl session, GET /v1/sessions/{id} and /metrics; gone with the
 * turn's commit.  Times are CLOCK_REALTIME ns. */
typedef struct fg_outage {
	uint32_t fails, provider, max_retries;
	uint64_t since_ns, next_ns, give_up_ns;
	char name[32];     /* the provider's */
	char error[161];   /* the last failure */
} fg_outage_t;
void fg_live_outage(fg_region_t *r, uint32_t idx, const fg_outage_t *o);
/* 1 and *o if running session h's turn under way has failed requests. */
int fg_live_outage_read(const fg_region_t *r, fg_handle_t h, fg_outage_t *o);
void fg_live_append(fg_region_t *r, uint32_t idx, const char *p, size_t k);
int64_t fg_live_read(const fg_region_t *r, fg_handle_t h, uint64_t *ckpt, uint32_t *attempt,
		     uint64_t from, char *buf, size_t cap);

/* Whether idx's log ends with the COMMIT of its current checkpoint. */
int fg_session_sealed_unsafe(const fg_region_t *r, uint32_t idx);

/* Zeroes idx's log bytes [from, to) (after a cut: durable.c). */
void fg_session_log_zero_unsafe(fg_region_t *r, uint32_t idx, uint64_t from, uint64_t to);

/*
 * Frees finished sessions (states in state_mask, bits 1 << FG_S_DONE ...)
 * (the actor holds a record under its lease while it gives its overflow
 * pages back)
 * that finished before finished_before_ns (CLOCK_MONOTONIC), except the
 * children of parents still live (queued, running or waiting).  Safe at any time, from any process,
 * with purgers, workers and readers running; returns how many it freed.
 * Their ids are then unknown (404); the table counts them in hdr->purged.
 */
#define FG_PURGE_FINISHED ((1u << FG_S_DONE) | (1u << FG_S_FAILED) | (1u << FG_S_CANCELLED))
uint32_t fg_session_purge(fg_actor_t *a, uint64_t finished_before_ns, uint32_t state_mask);

/*
 * Session idx's log [0, len) as one contiguous run: in place when it is
 * all inline (the common case), else copied into *tmp (malloc'd; the
 * caller frees it).  NULL if out of memory.  For the lease holder reading
 * its own session (a reader of another's uses fg_session_snapshot).
 */
const uint8_t *fg_session_log(const fg_region_t *r, uint32_t idx, uint32_t len, uint8_t **tmp);

/*
 * The sweep (rule 1: rings are hints).  When the worker rings hold fewer
 * hints than there are QUEUED sessions, some hint was lost: every QUEUED
 * session that waited longer than after_ns is enqueued again (a duplicate
 * costs one failed claim).  Returns how many; *missing gets QUEUED - depth.
 */
uint64_t fg_session_sweep(fg_actor_t *a, uint64_t now, uint64_t after_ns, uint64_t *missing);

/*
 * The parked sessions' sweep: a WAITING session is woken when its
 * deadline passed (deadline_ns > 0: created more than that ago), or when
 * it has waited longer than after_ns while every child its log names has
 * ended (a wake-up lost with a process that died between a child's end
 * and its wake).  Returns how many it woke.
 */
/* What the sweep remembers of a session that waits for a person: until
 * when nothing can wake it (CLOCK_REALTIME ms), as long as it is that
 * session at that checkpoint (its log is copied again only then). */
typedef struct fg_sweep_memo {
	uint64_t ckpt;
	uint64_t next_ms;
	uint32_t sgen;
} fg_sweep_memo_t;

uint64_t fg_session_sweep_waiting(fg_actor_t *a, uint64_t now, uint64_t after_ns,
				  uint64_t deadline_ns, fg_sweep_memo_t *memo, uint32_t nmemo);

/*
 * Waiting for a session to change without polling: fg_bell_enter before
 * the first look, then loop { seq = fg_bell_seq; look; fg_bell_wait(seq) },
 * and fg_bell_leave (with the same what) when done (see the bells in
 * region.h).  what is FG_BELL_STEPS to be woken at every change (each
 * commit and each piece of live text: streams, watch) or FG_BELL_STATES
 * to be woken only when the session's state changes (it ends, parks to
 * wait, is cancelled, released or requeued: a chat completion that
 * answers at the end).  The region
 * must be mapped writable.  fg_bell_wait returns at a ring, after
 * timeout_ms, or on a signal; a waiter may be woken for another session of
 * its class, so it looks again.
 */
#define FG_BELL_STEPS  0x00010000u   /* counted in waiters' high half */
#define FG_BELL_STATES 0x00000001u   /* counted in waiters' low half  */
void     fg_bell_enter(fg_region_t *r, uint32_t idx, uint32_t what);
uint32_t fg_bell_seq(fg_region_t *r, uint32_t idx);
void     fg_bell_wait(fg_region_t *r, uint32_t idx, uint32_t seq, int timeout_ms);
void     fg_bell_leave(fg_region_t *r, uint32_t idx, uint32_t what);
/* Rings the idle bell (region.h) if anyone waits on it: a worker that has
 * finished sessions and has nothing left, or a session ended by no worker
 * (a cancel while queued or waiting). */
void     fg_idle_bell_ring(fg_region_t *r);
/* Wakes every worker that sleeps on the doorbell: a drain beginning (a
 * sleeper's signalfd does not end its futex sleep), or (queued set) hints
 * in the rings while workers sleep, as the supervisor's sweep finds them:
 * whatever kept them from waking, a session waits no longer than a sweep
 * for a sleeping worker, not heartbeat_ms. */
void     fg_doorbell_wake_all(fg_region_t *r, int queued);

/* The synthetic workflow: folds step number k (1-based) into the checksum. */
static inline uint64_t fg_synthetic_fold(uint64_t sum, uint32_t k)
{
	return (sum ^ (0x9e3779b97f4a7c15ull * k)) * 0x100000001b3ull + k;
}

static inline uint64_t fg_synthetic_expected(uint32_t steps)
{
	uint64_t s = 0xcbf29ce484222325ull;
	for (uint32_t k = 1; k <= steps; k++)
		s = fg_synthetic_fold(s, k);
	return s;
}

#define FG_SYNTHETIC_SEED 0xcbf29ce484222325ull

#endif
