/*
 * region.h — the byte layout of forge's shared region.  THIS FILE IS AN ABI.
 *
 * The region is one file-backed MAP_SHARED mapping created by forged and
 * mapped by every worker, the gateway, forgectl and a restarted supervisor,
 * each at its own address.  Nothing in it is a pointer: every reference is an
 * offset from the start of the mapping or an index into a table.
 *
 *   offset 0            fg_hdr_t (4096 bytes)
 *     0   u64 magic          FG_REGION_MAGIC ("FORGERG\0")
 *     8   u32 version        FG_REGION_VERSION
 *    12   u32 hdr_size       4096
 *    16   u64 total_size     bytes of the whole file
 *    24   u32 capacity       session records
 *    28   u32 nslots         registry slots (workers, gateway, clients)
 *    32   u32 nworker_slots  slots 0..nworker_slots-1 are workers
 *    36   u32 max_inflight   lease-table entries per slot
 *    40   u32 ring_cap       cells per ring (power of two)
 *    44   u32 nrings         one ring per worker slot
 *    48   u32 log_bytes      checkpoint log bytes per session kept inline
 *    52   u32 nsections
 *    56   u64 created_ns
 *    64   fg_section_t sections[8]   {u64 off, u64 size}
 *   192.. runtime fields, each hot one on its own cache line (see below)
 *   [FG_SEC_REGISTRY]  nslots      x fg_slot_t        (256 bytes, 64-aligned)
 *   [FG_SEC_LEASES]    nslots      x (max_inflight + 1) x u32  (session index+1, 0 = empty;
 *                      the spare entry lets a worker full of sessions still
 *                      allocate a child: alloc -> publish is one step)
 *   [FG_SEC_RINGS]     nrings      x (fg_ring_t 192 bytes + ring_cap x u64 cells)
 *   [FG_SEC_SESSIONS]  capacity    x fg_session_t     (128 bytes)
 *   [FG_SEC_LOGS]      capacity    x log_bytes        (conversation log; its record
 *                      format, KEY included, is include/forge/conv.h: part of
 *                      this ABI, under the same version)
 *   [FG_SEC_OVERFLOW]  capacity    x ovf_stride       (the rest of each log, past its
 *                      first log_bytes: a sparse range of the file, so memory and
 *                      disk follow the bytes a session wrote; a multiple of 4096;
 *                      a session's maximum log is log_bytes + ovf_stride)
 *
 * Changing any constant, field, size or order below changes the format and
 * must bump FG_REGION_VERSION; a region of another version is refused.
 *
 * The rules that make "kill or stop any process at any instruction, and no
 * session is lost, duplicated or wedged" hold (README.md, "How the crash
 * promise holds"): the session table is the truth and rings are hints;
 * every RUNNING or ALLOCATING session carries a lease naming (slot,
 * generation); every multi-step shared operation is covered by an intent in
 * the acting process's own slot, which the supervisor's recovery pass rolls
 * forward or back when that process dies; every CAS on a record names the
 * session's generation, so a stalled process cannot act on a reused record;
 * a session that waits holds no lease (WAITING).
 */
#ifndef FORGE_REGION_H
#define FORGE_REGION_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define FG_REGION_MAGIC   0x0047524547524f46ULL /* "FORGERG\0" little-endian */
#define FG_REGION_VERSION 14u   /* 4: session generation in ctl, WAITING, parent; slot owner;
                                  one spare lease entry per slot.
                                  5: owner-written token totals off the supervisor's line.
                                  6: session bells.
                                  7: log records with u32 lengths.
                                  8: the last reload's outcome.
                                  9: overflow section (logs past log_bytes).
                                  10: PARTS, CHILD, DEPS for 256 parts.
                                  11: FREEING.
                                  12: the region's epoch (in session ids).
                                  13: durability, COMMIT records.
                                  14: AGENT records; FREEING keeps the state
                                  it was held from */
#define FG_HDR_SIZE       4096u
#define FG_CACHELINE      64u

#define FG_MAX_WORKERS    64u  /* worker slots reserved in every region   */
#define FG_CLIENT_SLOTS   16u  /* slots for forgectl and other submitters */
#define FG_SLOT_NONE      0xffu

enum fg_section_id {
	FG_SEC_REGISTRY = 0,
	FG_SEC_LEASES,
	FG_SEC_RINGS,
	FG_SEC_SESSIONS,
	FG_SEC_LOGS,
	FG_SEC_OVERFLOW,
	FG_SEC_N
};

typedef struct fg_section {
	uint64_t off;
	uint64_t size;
} fg_section_t;

/* Supervisor states, in fg_hdr_t.sup_state. */
enum fg_sup_state {
	FG_SUP_NONE = 0,      /* no supervisor has run on this region yet      */
	FG_SUP_STARTING,
	FG_SUP_RUNNING,
	FG_SUP_DEGRADED,      /* a slot hit its restart-intensity limit        */
	FG_SUP_DRAINING,      /* SIGTERM: no new claims, in-flight steps finish */
	FG_SUP_STOPPED        /* clean exit                                    */
};

#define FG_RECOVERY_HIST 256u

typedef struct fg_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint64_t total_size;
	uint32_t capacity;
	uint32_t nslots;
	uint32_t nworker_slots;
	uint32_t max_inflight;
	uint32_t ring_cap;
	uint32_t nrings;
	uint32_t log_bytes;
	uint32_t nsections;
	uint64_t created_ns;
	fg_section_t sections[8];

	/*
	 * Supervisor-owned fields.  Written only by the supervisor holding the
	 * region lock (release); read by anyone (acquire).  A reader may assume
	 * nothing beyond the value itself.
	 */
	alignas(64) _Atomic uint32_t sup_state;
	_Atomic int32_t  sup_pid;
	_Atomic uint32_t sup_boots;      /* supervisor starts on this region   */
	_Atomic uint32_t cfg_workers;    /* workers configured now            */
	_Atomic uint32_t gateway_slot;   /* slot of the gateway               */
	_Atomic uint32_t draining;       /* 1: workers must not claim          */
	_Atomic uint64_t sup_heartbeat_ns;
	_Atomic uint64_t recoveries;     /* recovery passes run               */
	_Atomic uint64_t sweeps_requeued;/* sessions re-enqueued by the sweep */
	_Atomic uint64_t restarts;       /* children restarted, all slots      */
	_Atomic uint32_t spawn_failures; /* fork/pidfd_open failed (retried)   */

	/*
	 * Allocation cursor: any submitter fetch_adds it (relaxed) to spread
	 * its scan for a FREE record.  A hint only; never trusted.
	 */
	alignas(64) _Atomic uint64_t alloc_cursor;
	/* Finished sessions purged to FREE: any purger (forged's retention,
	 * forgectl purge) fetch_adds it (relaxed) before its CAS and takes it
	 * back if the CAS fails, so a purger killed between the two over-counts
	 * by one and it never under-counts; readers (check, stats) may assume
	 * only that. */
	_Atomic uint64_t purged;
	/* Finished sessions taken up again (a thread's next message, a
	 * resume): counted like purged (fetch_add before the CAS, taken back if
	 * it fails), so that forgectl check's "finishes counted by workers <=
	 * finished + purged + reopened" holds. */
	_Atomic uint64_t reopened;

	/*
	 * Doorbell: a worker with nothing to do sets doorbell's low bit
	 * (fetch_or, seq_cst: "armed"), looks at the rings once more, and
	 * futex-waits on the value it set.  A submitter that enqueued (its
	 * cell's publish is a release CAS: a seq_cst fence follows it, in
	 * fg_session_ring) and then sees the bit set moves doorbell on by one (a CAS that
	 * clears the bit) and wakes every sleeper; one that sees it clear
	 * does nothing: a wake is already on its way, or nobody sleeps.  The
	 * seq_cst pair makes a lost wake-up impossible (Dekker), and a burst
	 * of sessions pays one wake-up syscall per time the workers went to
	 * sleep, not one per session while they wake (up to half the
	 * submits had paid it).
	 */
	alignas(64) _Atomic uint32_t doorbell;
	_Atomic uint32_t sleepers;   /* unused since the armed bit (layout kept) */
	/*
	 * Idle bell, for whoever waits for every session to end (forgectl
	 * wait): a worker that finished sessions since it last rang, and now
	 * has nothing to do, fences (seq_cst), and if idle_waiters > 0
	 * increments idle_seq and wakes.  The waiter increments idle_waiters,
	 * reads idle_seq, scans the table, and futex-waits on idle_seq (with a
	 * timeout: sessions ended by others than workers ring nothing).  In
	 * the doorbell's line, which was padding (zero in older regions): the
	 * layout is unchanged.  A waiter killed while it waits leaves its count
	 * behind; that costs a wake per idle worker, nothing else.
	 */
	_Atomic uint32_t idle_seq;
	_Atomic uint32_t idle_waiters;

	/*
	 * Recovery timings: the supervisor writes rec_ns[n % HIST] then
	 * increments rec_count (release).  Readers take rec_count (acquire) and
	 * read at most HIST entries behind it.  rec_ns is from "the kernel
	 * reported the death" (pidfd readable) to "every session of the dead
	 * generation is QUEUED and enqueued"; ready_ns to "replacement READY".
	 */
	alignas(64) _Atomic uint64_t rec_count;
	uint32_t rec_ns[FG_RECOVERY_HIST];
	_Atomic uint64_t ready_count;
	uint32_t ready_ns[FG_RECOVERY_HIST];

	/*
	 * Per-provider rate limits shared by every worker (src/rate.c): GCRA
	 * "theoretical arrival times", CLOCK_MONOTONIC ns, indexed by the
	 * provider's position in llm.providers.  Each changes by one CAS, so a
	 * process killed at any point leaves a valid value.
	 */
	alignas(64) struct {
		_Atomic uint64_t req_tat;
		_Atomic uint64_t tok_tat;
	} rate[16];

	/*
	 * Session bells: a process waiting for a session to change (the
	 * gateway's chat completions and SSE streams) waits on
	 * bell[idx % FG_BELLS] instead of polling.  A waiter adds to waiters
	 * (seq_cst) while it waits: 0x10000 (the high half) to be woken at
	 * every step (a commit, live text), 1 (the low half) only at a change
	 * of state (an end, a park, a requeue).  It then reads seq (seq_cst),
	 * looks at the session, and futex-waits on seq.  A step of a session of
	 * that class, after its publish, issues a seq_cst fence and, if waiters'
	 * high half is not 0, increments seq and wakes them; a change of state
	 * does the same if waiters is not 0.  (A low half past 65535 carries
	 * into the high one: steps then ring needlessly, never a lost wake-up.
	 * The high half holds 65535 step waiters a class: the gateway's
	 * connections are at most 60000, and forgectl watch and the counts
	 * left by dead waiters add to them; at an exact multiple of 65536 a
	 * step is not rung, and those waiters see it at their next look, every
	 * 100 ms (the gateway) or second (forgectl).)  The seq_cst pair makes a lost wake-up
	 * impossible (Dekker); with no waiter a commit pays a fence and a read
	 * of a line nobody writes.  A waiter that dies leaves its count in
	 * waiters: commits of its class then ring needlessly, which costs time,
	 * never a wake-up (the gateway's restart does not reset it; forged's
	 * start does).
	 */
	alignas(64) struct {
		_Atomic uint32_t seq;
		_Atomic uint32_t waiters;
	} bell[64];

	/*
	 * The last reload's outcome, for forgectl reload: the supervisor writes
	 * ok (1 accepted, 0 refused) and msg (why it refused), then increments
	 * seq (release); a reader that acquires seq may read both.
	 */
	alignas(64) struct {
		_Atomic uint32_t seq;
		_Atomic uint32_t ok;
		char msg[248];
	} reload;

	/*
	 * The region's epoch: 64 random bits drawn when the region is created
	 * (getrandom), written before the header is valid, read-only after.
	 * It leads every session id (fg_id_format), so an id of a deleted and
	 * recreated region, or of another machine's, names nothing here.
	 */
	alignas(64) uint64_t epoch;

	/*
	 * Durability (region.durability; src/region/durable.c).  durability
	 * and boot_id are written by the supervisor at start, before any
	 * child runs, read-only afterwards.  While durability is not NONE,
	 * every commit of a session with a log ends with a COMMIT record
	 * (conv.h), so a log torn by a power loss is found and cut back to its
	 * last whole commit.
	 *
	 * Group commit: a process that needs its writes durable issues a
	 * seq_cst fence, reads sync_started and waits until sync_done has
	 * reached one more: a flush begun after its writes.  The flusher is
	 * whoever wins sync_leader by CAS 0 -> slot + 1; it takes a number from
	 * sync_started (fetch_add), fdatasyncs the file, raises sync_done to
	 * that number (CAS, never down; 64 bits: no wrap), bumps sync_wake and
	 * wakes its futex waiters, and gives leadership back by CAS.  A leader
	 * that dies or stops holds nobody up for long: a waiter that sees
	 * sync_done not move for FG_SYNC_PATIENCE_MS flushes by itself, and
	 * the recovery pass clears a dead slot's leadership.
	 */
	alignas(64) _Atomic uint32_t durability;   /* enum fg_durability        */
	_Atomic uint32_t sync_leader;   /* slot + 1 of the flusher; 0: none     */
	_Atomic uint32_t sync_wake;     /* futex word: bumped as each flush ends */
	_Atomic uint32_t sync_failed;   /* errno of the first failed flush since
					 * forged started: sticky (Linux forgets
					 * pages it could not write), every later
					 * durable wait fails with it             */
	_Atomic uint64_t sync_started;  /* flushes begun                         */
	_Atomic uint64_t sync_done;     /* the last flush complete (never down)  */
	_Atomic uint64_t syncs;         /* flushes (fdatasync) done             */
	_Atomic uint64_t sync_ns;       /* time spent in them                   */
	_Atomic uint64_t sync_waits;    /* durable waits (each may share a flush)*/
	_Atomic uint32_t clean;         /* 1: the last supervisor stopped and
					 * flushed everything (written last)     */
	_Atomic uint32_t sealing;       /* 1 while the none -> batch/sync pass
					 * seals logs: a start that finds it set
					 * seals again                           */
	_Atomic uint32_t moving;        /* 1 while forged resizes the region: a
					 * client does not attach (seq_cst pair
					 * with fg_client_attach)                 */
	char boot_id[40];               /* /proc/sys/kernel/random/boot_id of the
					 * last supervisor start                  */
} fg_hdr_t;

enum fg_durability { FG_DUR_NONE = 0, FG_DUR_BATCH, FG_DUR_SYNC };

#define FG_BELLS 64u

_Static_assert(offsetof(fg_hdr_t, version) == 8, "layout");
_Static_assert(offsetof(fg_hdr_t, total_size) == 16, "layout");
_Static_assert(offsetof(fg_hdr_t, capacity) == 24, "layout");
_Static_assert(offsetof(fg_hdr_t, log_bytes) == 48, "layout");
_Static_assert(offsetof(fg_hdr_t, created_ns) == 56, "layout");
_Static_assert(offsetof(fg_hdr_t, sections) == 64, "layout");
_Static_assert(offsetof(fg_hdr_t, sup_state) == 192, "layout");
_Static_assert(offsetof(fg_hdr_t, alloc_cursor) % 64 == 0, "own line");
_Static_assert(offsetof(fg_hdr_t, alloc_cursor) == 256, "supervisor fields fit one line");
_Static_assert(offsetof(fg_hdr_t, rec_count) % 64 == 0, "own line");
_Static_assert(offsetof(fg_hdr_t, rate) % 64 == 0, "own line");
_Static_assert(offsetof(fg_hdr_t, bell) % 64 == 0, "own lines");
_Static_assert(offsetof(fg_hdr_t, durability) % 64 == 0, "own line");
_Static_assert(sizeof(fg_hdr_t) <= FG_HDR_SIZE, "header fits its page");

/* ------------------------------------------------------------------ */
/* Worker registry                                                     */

enum fg_slot_kind { FG_KIND_WORKER = 1, FG_KIND_GATEWAY, FG_KIND_CLIENT, FG_KIND_SUPERVISOR };

enum fg_slot_state {
	FG_SLOT_FREE = 0,    /* never used, or a client slot given back       */
	FG_SLOT_STARTING,    /* forked, not yet ready                         */
	FG_SLOT_READY,       /* running its loop                              */
	FG_SLOT_DRAINING,    /* finishing in-flight steps, claims nothing      */
	FG_SLOT_DEAD,        /* exited; recovered; waiting for restart        */
	FG_SLOT_DISABLED,    /* restart intensity exceeded; not restarted     */
	FG_SLOT_RECOVERING   /* supervisor is running the recovery pass        */
};

/* Intent operations (fg_slot_t.op_intent / ring_intent). */
enum fg_intent_op {
	FG_INTENT_NONE = 0,
	FG_INTENT_RING_ENQ,  /* ring_intent: {op, ring, idx}, ring_pos = tail seen */
	FG_INTENT_RING_DEQ,  /* ring_intent: {op, ring, -},   ring_pos = head seen */
	FG_INTENT_RING_TAKEN /* ring_intent: {op, ring, idx}: idx dequeued, not yet claimed */
};

#define FG_INTENT(op, ring, idx) \
	(((uint64_t)(op) & 0xff) | (((uint64_t)(ring) & 0xffff) << 8) | \
	 ((uint64_t)(idx) << 32))
#define FG_INTENT_OP(w)   ((uint32_t)((w) & 0xff))
#define FG_INTENT_RING(w) ((uint32_t)(((w) >> 8) & 0xffff))
#define FG_INTENT_IDX(w)  ((uint32_t)((w) >> 32))

/*
 * One slot per child or client.  256 bytes, aligned to a cache line, so
 * that no two processes ever write the same line (false sharing made a
 * ring 5-9x slower on this machine).
 *
 * Line 0 — identity, written by the supervisor (or, for a client slot, by
 * the client that claims it by CAS on state):
 *   state: CAS by the supervisor for children (and by the child itself for
 *          STARTING->READY and READY->DRAINING); release/acquire.
 *   gen:   bumped by the supervisor (release) before a new process runs in
 *          the slot; a lease naming an older gen belongs to a dead process.
 *   pid, starttime: the process now in the slot (starttime from
 *          /proc/PID/stat, so a reused pid is never mistaken for it).
 * Line 1 — owner-written, relaxed; read by the supervisor and forgectl:
 *   heartbeat_ns (CLOCK_MONOTONIC), counters.
 * Line 2 — intents, written only by the owner, read by the recovery pass
 *   after the owner is dead (so plain release stores suffice); and the
 *   owner's rarely written totals (tokens, steps short of memory: once per
 *   LLM reply), relaxed, read by forgectl and /metrics.
 * Line 3 — supervisor bookkeeping: last exit, restarts.  Written only by
 *   the supervisor.
 */
typedef struct fg_slot {
	alignas(64) _Atomic uint32_t state;
	_Atomic uint32_t gen;
	_Atomic int32_t  pid;
	uint32_t kind;
	_Atomic uint64_t starttime;
	_Atomic uint64_t started_ns;
	/*
	 * owner (client slots only): FG_OWNER(gen, pid) of the process that
	 * holds the slot, 0 when free, with FG_OWNER_RECOVERING set while the
	 * supervisor recovers a dead holder.  One word, so that "who holds it"
	 * and "which generation" are never read from two different holders:
	 * a client claims the slot by CAS 0 -> FG_OWNER(gen, pid) and gives it
	 * back by storing 0 (release) after clearing everything else; the
	 * supervisor recovers only after a CAS from the exact word it judged
	 * dead to that word | RECOVERING, so a newcomer is never recovered.
	 */
	_Atomic uint64_t owner;

	alignas(64) _Atomic uint64_t heartbeat_ns;
	_Atomic uint64_t claims;        /* sessions claimed                 */
	_Atomic uint64_t steps;         /* checkpoints committed            */
	_Atomic uint64_t done;          /* sessions finished (any outcome)  */
	_Atomic uint64_t released;      /* leases handed back on drain      */
	_Atomic uint32_t inflight;      /* sessions leased now              */
	_Atomic uint32_t sleeping;      /* 1 while waiting on the doorbell  */
	_Atomic uint32_t lease_hint;    /* owner's next lease entry to try  */
	_Atomic uint32_t llm_retries;   /* LLM requests retried             */
	_Atomic uint64_t llm_calls;     /* LLM replies received             */

	alignas(64) _Atomic uint64_t ring_intent;
	_Atomic uint64_t ring_pos;
	_Atomic uint64_t op_intent;
	_Atomic uint64_t tokens_prompt;
	_Atomic uint64_t tokens_completion;
	_Atomic uint32_t llm_oom;       /* steps retried for want of memory */

	alignas(64) _Atomic uint32_t restarts;      /* this slot, ever  */
	_Atomic int32_t  last_pid;
	_Atomic int32_t  last_status;   /* exit code, or -1 if signalled    */
	_Atomic int32_t  last_signal;   /* 0 if exited                      */
	_Atomic uint32_t last_core;     /* 1 if it dumped core              */
	_Atomic uint32_t last_recovered;/* sessions requeued at its death   */
	_Atomic uint64_t last_exit_ns;
} fg_slot_t;

_Static_assert(sizeof(fg_slot_t) == 256, "slot is four cache lines");
_Static_assert(_Alignof(fg_slot_t) == 64, "slot is line-aligned");
_Static_assert(offsetof(fg_slot_t, owner) == 32, "line 0");
_Static_assert(offsetof(fg_slot_t, heartbeat_ns) == 64, "line 1");
_Static_assert(offsetof(fg_slot_t, ring_intent) == 128, "line 2");
_Static_assert(offsetof(fg_slot_t, tokens_prompt) < 192 &&
	       offsetof(fg_slot_t, llm_oom) + 4 <= 192, "owner totals on line 2");
_Static_assert(offsetof(fg_slot_t, restarts) == 192, "line 3");

/* ------------------------------------------------------------------ */
/* Rings                                                               */

/*
 * Bounded MPMC ring of session indices (Vyukov's sequence-per-cell design)
 * with each cell one 64-bit word {seq - cell_index : 32 | idx : 32}, so
 * that publishing and releasing a cell are single atomic steps that the
 * recovery pass can CAS on behalf of a dead participant.  Storing the
 * sequence relative to the cell index makes a zero-filled ring a valid
 * empty ring, so ring pages are touched only when used.  See src/ring.c.
 */
typedef struct fg_ring {
	alignas(64) _Atomic uint64_t tail;   /* producers' claim counter */
	alignas(64) _Atomic uint64_t head;   /* consumers' claim counter */
	alignas(64) uint32_t cap;            /* power of two, set at creation */
	uint32_t mask;
	uint64_t cells_off;                  /* offset of cells from region base */
} fg_ring_t;

_Static_assert(sizeof(fg_ring_t) == 192, "ring header is three lines");
_Static_assert(offsetof(fg_ring_t, head) == 64, "head on its own line");
_Static_assert(offsetof(fg_ring_t, cap) == 128, "constants on their own line");

/* ------------------------------------------------------------------ */
/* Sessions                                                            */

enum fg_sess_state {
	FG_S_FREE = 0,
	FG_S_ALLOCATING,   /* leased to its submitter while it fills it in */
	FG_S_QUEUED,
	FG_S_RUNNING,      /* leased to one worker (slot, gen)              */
	FG_S_DONE,
	FG_S_FAILED,
	FG_S_CANCELLED,
	FG_S_WAITING,      /* parked: waits for its children, holds no lease */
	FG_S_FREEING,      /* purged; leased to its purger while its overflow
			    * pages go back, then FREE */
	FG_S_NSTATES
};

/* A state leased to one process (its lease names (slot, gen)). */
#define FG_S_LEASED(st) ((st) == FG_S_RUNNING || (st) == FG_S_ALLOCATING || (st) == FG_S_FREEING)
/* A record that names no session (a handle to it is gone). */
#define FG_S_NONE(st) ((st) == FG_S_FREE || (st) == FG_S_ALLOCATING || (st) == FG_S_FREEING)

/* A state a session can still leave by itself (not FREE, not finished). */
#define FG_S_LIVE(st) ((st) == FG_S_QUEUED || (st) == FG_S_RUNNING || (st) == FG_S_WAITING)
#define FG_S_FINISHED(st) ((st) >= FG_S_DONE && (st) <= FG_S_CANCELLED)

#define FG_OWNER(gen, pid)    (((uint64_t)(uint32_t)(gen) << 32) | (uint32_t)(pid))
#define FG_OWNER_PID(w)       ((int32_t)(uint32_t)((w) & 0x7fffffffu))
#define FG_OWNER_GEN(w)       ((uint32_t)((w) >> 32))
#define FG_OWNER_RECOVERING   (1ull << 31)

/*
 * ctl word: state(4) | flags(4) | lease slot(8) | lease gen(16) | session gen(32)
 *
 * The session generation (the handle's gen) is in the word in every state,
 * so a CAS that expects a word read earlier fails once the record has been
 * freed and reused, whatever states it went through (no ABA): purge,
 * cancel, wake and every lease holder's CAS name the session they mean.
 * It moves on only at FREE -> ALLOCATING (gen + 1, never 0).
 *
 * The lease gen is the low 16 bits of the holder's slot gen.  A slot's gen
 * moves on only once its previous process is gone and recovered (workers:
 * reaped; clients: owner word CASed by the recovery), so a live holder's
 * lease always names its current gen; the 16 bits only tell a holder from
 * earlier dead ones in the same slot.
 *
 * FG_CTL_CANCEL may be set on a RUNNING record by anyone who cancels it
 * (CAS from the exact word, so a stale cancel of an earlier session in the
 * record fails); the lease holder then ends it as CANCELLED, and a
 * recovery pass sends it to CANCELLED instead of QUEUED.
 */
#define FG_CTL_CANCEL (1ull << 4)
/*
 * A FREEING record's flags: the finished state it was held from
 * (FG_CTL_PREV: DONE, FAILED or CANCELLED as 1..3; 0 from an older
 * binary), and FG_CTL_JUDGED once its purger re-checked it, under the hold,
 * as old enough.  A dead purger's record goes back to that finished state
 * before it is judged (it may be a thread's newer run that ended with the
 * same word: stalls.sh case 11) and to FREE after.
 */
#define FG_CTL_PREV(st) ((uint64_t)((st) - FG_S_DONE + 1) << 5)
#define FG_CTL_PREV_STATE(c) ((uint32_t)(((c) >> 5) & 3) ? (uint32_t)(((c) >> 5) & 3) + FG_S_DONE - 1 : 0)
#define FG_CTL_JUDGED (1ull << 7)
#define FG_CTL(st, slot, lgen, sgen) \
	((uint64_t)(st) | ((uint64_t)((slot) & 0xff) << 8) | \
	 ((uint64_t)((lgen) & 0xffffu) << 16) | ((uint64_t)(uint32_t)(sgen) << 32))
#define FG_CTL_STATE(c) ((uint32_t)((c) & 0xf))
#define FG_CTL_FLAGS(c) ((uint32_t)((c) & 0xf0))
#define FG_CTL_SLOT(c)  ((uint32_t)(((c) >> 8) & 0xff))
#define FG_CTL_LGEN(c)  ((uint32_t)(((c) >> 16) & 0xffffu))
#define FG_CTL_SGEN(c)  ((uint32_t)((c) >> 32))
/* The word of an unleased state of session generation sgen. */
#define FG_CTL_FREE_OF(st, sgen) FG_CTL(st, FG_SLOT_NONE, 0, sgen)

/* ckpt word: seq(32) | ab(1) | loglen(31) */
#define FG_CKPT(seq, ab, len) \
	(((uint64_t)(uint32_t)(seq) << 32) | ((uint64_t)((ab) & 1) << 31) | \
	 ((uint64_t)(len) & 0x7fffffffu))
#define FG_CKPT_SEQ(w) ((uint32_t)((w) >> 32))
#define FG_CKPT_AB(w)  ((uint32_t)(((w) >> 31) & 1))
#define FG_CKPT_LEN(w) ((uint32_t)((w) & 0x7fffffffu))

enum fg_workflow { FG_WF_SYNTHETIC = 1, FG_WF_REACT = 2, FG_WF_MAP_REDUCE = 3,
		   FG_WF_PLAN_EXECUTE = 4 };

/* fg_wstate_t.status for LLM workflows */
enum fg_wstatus { FG_WS_OK = 0, FG_WS_FAILED = 1 };

/* One committed workflow state (one of a session's A/B copies). */
typedef struct fg_wstate {
	uint32_t step;       /* steps applied (LLM workflows: model turns)      */
	uint32_t status;     /* FG_WS_OK, FG_WS_FAILED                          */
	uint64_t checksum;   /* synthetic: fold of applied steps; map_reduce and
			      * plan_execute: CLOCK_MONOTONIC ns of the first of
			      * the child allocations refused in a row (0: none) */
	uint64_t aux[2];     /* LLM workflows: prompt, completion tokens so far */
} fg_wstate_t;

_Static_assert(sizeof(fg_wstate_t) == 32, "wstate size");

/*
 * A session record, 128 bytes.
 *   ctl:  state + lease + session generation (above).  Changed only by
 *         CAS (acq_rel; seq_cst where a Dekker pair needs it: park/wake).
 *         RUNNING and ALLOCATING carry the lease holder's (slot, gen);
 *         other states carry FG_SLOT_NONE.  A handle (idx, gen) names the
 *         record while FG_CTL_SGEN(ctl) == gen and the state is neither
 *         FREE nor ALLOCATING (fg_session_valid).
 *   ckpt: the published checkpoint (a seqlock word).  Written only by the
 *         lease holder: it issues a release fence, then writes st[!ab] and
 *         the log bytes from len on, then stores ckpt (release).  A reader
 *         loads ckpt (acquire), copies st[ab] and log[0..len), issues an
 *         acquire fence and loads ckpt and ctl again: unchanged means the
 *         copy is whole (the writer's fence orders its earlier publish
 *         before its next overwrite of the same copy, which plain release
 *         stores alone do not on weak memory models).
 *   parent: index + 1 of the parent session (0: none), written while
 *         ALLOCATING.  A finishing child wakes a WAITING parent; a wake
 *         that reaches another session in a reused record is spurious and
 *         harmless (the woken session looks, finds nothing, parks again).
 *   params (workflow, steps, arg, created_ns, parent): written while
 *         ALLOCATING (after a release fence that follows the claiming CAS,
 *         so a reader that copied any of them and then re-reads ctl sees
 *         the new generation), read-only afterwards.
 *   queued_ns, started_ns (first claim), finished_ns: relaxed,
 *         informational; the sweep uses queued_ns to find hints that went
 *         missing.
 *   claims: times this session was claimed (1 + resumptions); written by
 *         the lease holder.
 */
typedef struct fg_session {
	_Atomic uint64_t ctl;
	_Atomic uint64_t ckpt;
	uint32_t parent;
	uint16_t workflow;
	_Atomic uint16_t claims;
	uint32_t steps;      /* synthetic: steps; react: max model turns;
			      * map_reduce, plan_execute: max parts          */
	uint32_t arg;        /* synthetic: per-step delay (µs); react: provider
			      * index; map_reduce, plan_execute: provider index
			      * (low 16 bits) | child provider index + 1 (high
			      * 16 bits; 0: the children use the parent's)   */
	_Atomic uint64_t queued_ns;
	uint64_t created_ns;
	_Atomic uint64_t started_ns;
	_Atomic uint64_t finished_ns;
	fg_wstate_t st[2];
} fg_session_t;

_Static_assert(sizeof(fg_session_t) == 128, "session record is 128 bytes");
_Static_assert(offsetof(fg_session_t, st) == 64, "states on line 1");

/* ------------------------------------------------------------------ */
/* Accessors                                                           */

typedef struct fg_region {
	void      *base;
	size_t     size;
	int        fd;
	int        writable;
	fg_hdr_t  *hdr;
	fg_slot_t *slots;
	uint32_t  *leases;
	uint8_t   *rings;
	fg_session_t *sessions;
	uint8_t   *logs;
	uint8_t   *ovf;
} fg_region_t;

static inline fg_slot_t *fg_slot(const fg_region_t *r, uint32_t i)
{
	return &r->slots[i];
}

static inline fg_session_t *fg_sess(const fg_region_t *r, uint32_t i)
{
	return &r->sessions[i];
}

/* Lease entries per slot: max_inflight, and one spare (see the diagram). */
static inline uint32_t fg_lease_n(const fg_region_t *r)
{
	return r->hdr->max_inflight + 1;
}

static inline uint32_t *fg_lease_table(const fg_region_t *r, uint32_t slot)
{
	return r->leases + (size_t)slot * fg_lease_n(r);
}

static inline size_t fg_ring_stride(uint32_t cap)
{
	return sizeof(fg_ring_t) + (size_t)cap * sizeof(uint64_t);
}

static inline fg_ring_t *fg_ring(const fg_region_t *r, uint32_t i)
{
	return (fg_ring_t *)(r->rings + (size_t)i * fg_ring_stride(r->hdr->ring_cap));
}

/* The first log_bytes of session i's log (dense; all of a small one). */
static inline uint8_t *fg_sess_log(const fg_region_t *r, uint32_t i)
{
	return r->logs + (size_t)i * r->hdr->log_bytes;
}

/* Bytes of each session's overflow range (its log past log_bytes). */
static inline uint64_t fg_ovf_stride(const fg_region_t *r)
{
	return r->hdr->sections[FG_SEC_OVERFLOW].size / r->hdr->capacity;
}

/* The most bytes a session's log may hold (region.session_max_bytes). */
static inline uint64_t fg_log_max(const fg_region_t *r)
{
	return (uint64_t)r->hdr->log_bytes + fg_ovf_stride(r);
}

/* Session i's overflow range: byte log_bytes + k of its log is at [k]. */
static inline uint8_t *fg_sess_ovf(const fg_region_t *r, uint32_t i)
{
	return r->ovf + (size_t)i * fg_ovf_stride(r);
}

/* Slot numbering: workers 0..nworker_slots-1, then the gateway, then clients. */
static inline uint32_t fg_gateway_slot(const fg_region_t *r)
{
	return r->hdr->nworker_slots;
}

static inline uint32_t fg_first_client_slot(const fg_region_t *r)
{
	return r->hdr->nworker_slots + 1;
}

static inline uint32_t fg_supervisor_slot(const fg_region_t *r)
{
	return r->hdr->nslots - 1;
}

/* ------------------------------------------------------------------ */
/* Creating, opening and locking (src/region.c)                         */

typedef struct fg_region_params {
	uint32_t capacity;      /* session records                     */
	uint32_t max_inflight;  /* lease entries per slot              */
	uint32_t log_bytes;     /* checkpoint log bytes kept inline    */
	uint32_t max_log;       /* the most log bytes a session holds (>= log_bytes) */
} fg_region_params_t;

/* Fills hdr's geometry and section table for params; -EINVAL if out of range. */
int fg_region_layout(const fg_region_params_t *p, fg_hdr_t *hdr);

/*
 * Checks a header read from a file of file_size bytes: magic, version,
 * sizes, section bounds.  Writes what is wrong into err; -1 if invalid.
 * Safe on arbitrary bytes (it is a fuzz target).
 */
int fg_region_validate(const fg_hdr_t *hdr, uint64_t file_size, char *err, size_t errlen);

/* Creates PATH atomically (written aside, then renamed) and maps it. */
int fg_region_create(const char *path, const fg_region_params_t *p,
		     fg_region_t *out, char *err, size_t errlen);

/* Maps an existing region read-only or read-write after validating it. */
int fg_region_open(const char *path, int writable, fg_region_t *out,
		   char *err, size_t errlen);

void fg_region_close(fg_region_t *r);

/*
 * The supervisor lock: an OFD lock on PATH.lock, inherited by forked
 * children (they share the open file description), so it is held until
 * the supervisor and every child it forked are gone.  wait: block until
 * it is free.  Returns the lock fd (close-on-exec), -EWOULDBLOCK or -errno.
 */
int fg_region_lock(const char *path, int wait);

#endif
