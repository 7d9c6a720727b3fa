/*
 * ring.h — bounded lock-free MPMC rings of session indices, shared between
 * processes, that a participant killed between any two of its atomic steps
 * cannot wedge.
 *
 * Synchronization table (which operations may overlap):
 *   enqueue_mp  || enqueue_mp   yes (CAS on tail, then CAS on the cell)
 *   dequeue_mc  || dequeue_mc   yes (CAS on head, then CAS on the cell)
 *   enqueue     || dequeue      yes
 *   recover_unsafe || anything  yes, but only for a participant that is
 *                               dead (its pid has been reaped); it is
 *                               "unsafe" in that calling it for a live one
 *                               can drop that one's item from the ring (the
 *                               live one then retries) — never a session.
 *   unstall_mc || anything      yes: a consumer's CAS of a claimed,
 *                               unpublished cell to a SKIP item; the
 *                               stalled producer's publish CAS then fails
 *                               and it enqueues at a new position.
 *   init_unsafe                 only while no one else maps the ring.
 *
 * Stall windows (rule 9): a producer stopped between claim and publish
 * (enq after_claim) would hold every consumer of the ring for as long as
 * it is stopped; a consumer that has watched the same unpublished head
 * cell for FG_RING_STALL_NS publishes FG_RING_SKIP in its place
 * (fg_ring_unstall_mc).  A consumer stopped after claiming holds nothing
 * but its own cell, which producers reach a lap later and pass over
 * (the ring looks full there, and enqueue tries another ring); stalled
 * workers are killed by the watchdog (rule 5) and recovered.
 *
 * Death windows (each a crash point):
 *   enq before_claim  : nothing changed; the intent names idx, and
 *                       recovery re-enqueues idx if its session is QUEUED.
 *   enq after_claim   : cell claimed, not published: consumers stop at it.
 *                       Recovery publishes {pos+1, idx} by CAS.
 *   enq after_publish : done; recovery finds the cell already published.
 *   deq after_claim   : head moved past a published cell that was never
 *                       released: producers would stop a lap later.
 *                       Recovery releases it by CAS and re-enqueues idx.
 *   deq after_release : done; idx is in the intent (TAKEN) until the
 *                       caller has claimed the session or given up, and
 *                       recovery re-enqueues it if it is still QUEUED.
 */
#ifndef FORGE_RING_H
#define FORGE_RING_H

#include "forge/region.h"

/* A ring as a process sees it: the shared header and its cells. */
typedef struct fg_ringref {
	fg_ring_t        *r;
	_Atomic uint64_t *cells;
	uint32_t          id;
} fg_ringref_t;

void fg_ring_init_unsafe(fg_ring_t *r, uint32_t cap, uint64_t cells_off);
fg_ringref_t fg_ring_ref(const fg_region_t *reg, uint32_t id);

/*
 * self: the caller's registry slot, for intents; NULL only in benchmarks
 * and tests that measure the ring without crash protection.
 * Return 0, or -EAGAIN when the ring is full (enqueue) or empty (dequeue).
 * After a successful dequeue with self != NULL the intent stays TAKEN until
 * fg_ring_intent_clear(self).
 */
int  fg_ring_enqueue_mp(fg_ringref_t rr, uint32_t idx, fg_slot_t *self);
int  fg_ring_dequeue_mc(fg_ringref_t rr, uint32_t *idx, fg_slot_t *self);
void fg_ring_intent_clear(fg_slot_t *self);

/*
 * Repairs the ring step a dead participant left half done, per its intent.
 * Returns the session index the intent named, or UINT32_MAX if none; the
 * caller re-enqueues that index if its session is QUEUED.  Idempotent.
 */
uint32_t fg_ring_recover_unsafe(const fg_region_t *reg, fg_slot_t *dead);

uint64_t fg_ring_depth(fg_ringref_t rr);

/* An item that names no session: a cell skipped past a stalled producer. */
#define FG_RING_SKIP 0xffffffffu
#define FG_RING_STALL_NS 10000000ull   /* 10 ms: far beyond any claim->publish */

/* A consumer's memory of the head cell it found claimed but unpublished. */
typedef struct fg_ring_watch {
	uint64_t pos;        /* that head position (UINT64_MAX: none)  */
	uint64_t since_ns;   /* when it was first seen so              */
} fg_ring_watch_t;

/*
 * Called by a consumer that found the ring non-empty but could not
 * dequeue: if the head cell has been claimed and unpublished since
 * after_ns or longer, publishes FG_RING_SKIP in it.  Returns 1 if it did.
 */
int fg_ring_unstall_mc(fg_ringref_t rr, fg_ring_watch_t *wt, uint64_t now, uint64_t after_ns);

/* Checks head/tail/cell invariants; writes a message and returns -1 on the first violation. */
int fg_ring_check(fg_ringref_t rr, char *err, size_t errlen);

#endif
