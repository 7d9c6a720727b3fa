/*
 * registry.h — the worker registry: slots for children (managed by the
 * supervisor) and for clients such as forgectl submit, which take a FREE
 * client slot by CAS on its owner word and give it back when done.  A
 * client that dies holding a slot is found by the supervisor's sweep (pid
 * gone, or a different start time) and recovered like a dead child.
 *
 * Client slot protocol (fg_slot_t.owner, one 64-bit word):
 *   attach   CAS owner 0 -> FG_OWNER(gen+1, pid); then gen, pid, starttime,
 *            heartbeat, state READY (each after the CAS).
 *   detach   state FREE, starttime 0, pid 0; owner 0 last (release).
 *   recover  (supervisor) probe: owner w, then the process's start time,
 *            then the slot's recorded start time, then owner again; dead
 *            only if the pid is gone, or it runs with another start time
 *            than the one recorded under the same w.  Then CAS owner
 *            w -> w | RECOVERING, recover (slot, gen), clear, owner 0.
 * A stall anywhere: a stalled prober's CAS fails if the holder changed
 * (another w), so a newcomer is never recovered; a stalled client is
 * alive, so never recovered either.
 */
#ifndef FORGE_REGISTRY_H
#define FORGE_REGISTRY_H

#include "forge/session.h"

const char *fg_slot_state_name(uint32_t st);

/* Claims a client slot for this process; -EBUSY if all are taken. */
int  fg_client_attach(fg_region_t *r, fg_actor_t *a);
void fg_client_detach(fg_actor_t *a);

enum fg_probe { FG_PROBE_FREE = 0, FG_PROBE_ALIVE, FG_PROBE_DEAD, FG_PROBE_CHANGED };

/*
 * Looks at client slot s: FREE (no holder, or being recovered), ALIVE,
 * DEAD (its holder's process is gone), CHANGED (the holder changed while
 * it looked: look again later).  *owner receives the word judged.
 */
enum fg_probe fg_client_probe(const fg_slot_t *s, uint64_t *owner);

/* 1 if client slot s is held by a process that no longer exists. */
int  fg_client_dead(const fg_slot_t *s);

/*
 * The supervisor's recovery of a dead client (owner word w, from a probe
 * that said DEAD): claims the slot by CAS w -> w | RECOVERING, recovers
 * its leases and intents, and frees the slot.  Returns the sessions
 * requeued, or -EAGAIN if the slot changed hands since the probe.
 */
int  fg_client_recover(fg_actor_t *sup, uint32_t slot, uint64_t w);

#endif
