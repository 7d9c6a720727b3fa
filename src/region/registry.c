/* registry.c — see include/forge/registry.h. */
#include "forge/registry.h"
#include "forge/crash.h"
#include "forge/util.h"

#include <errno.h>
#include <unistd.h>

const char *fg_slot_state_name(uint32_t st)
{
	static const char *const n[] = { "free", "starting", "ready", "draining",
					  "dead", "disabled", "recovering" };
	return st < sizeof(n) / sizeof(n[0]) ? n[st] : "invalid";
}

int fg_client_attach(fg_region_t *r, fg_actor_t *a)
{
	int32_t me = (int32_t)getpid();
	uint32_t first = fg_first_client_slot(r), last = fg_supervisor_slot(r);
	for (uint32_t i = first; i < last; i++) {
		fg_slot_t *s = fg_slot(r, i);
		uint64_t zero = 0;
		if (atomic_load(&s->owner) != 0)
			continue;
		/* a generation of our own (two attachers never share one), so
		 * no later holder's owner word equals ours */
		uint32_t gen = atomic_fetch_add(&s->gen, 1) + 1;
		if (gen == 0)
			gen = atomic_fetch_add(&s->gen, 1) + 1;
		if (!atomic_compare_exchange_strong(&s->owner, &zero, FG_OWNER(gen, me)))
			continue;
		FG_CRASHPOINT("registry.attach.after_cas");
		/* forged resizing the region: it copies what it sees and renames
		 * a new file over this one; attaching now would write into the
		 * old one (the other half: migrate() sets moving, then looks at
		 * every owner word) */
		atomic_thread_fence(memory_order_seq_cst);
		if (atomic_load_explicit(&r->hdr->moving, memory_order_seq_cst)) {
			atomic_store(&s->owner, 0);
			return -EAGAIN;
		}
		atomic_store(&s->gen, gen);   /* (a later attacher's bump may be undone: harmless) */
		atomic_store(&s->pid, me);
		atomic_store(&s->starttime, fg_proc_starttime(me));
		atomic_store(&s->heartbeat_ns, fg_now_ns());
		atomic_store(&s->state, FG_SLOT_READY);
		fg_actor_init(a, r, i);
		return 0;
	}
	return -EBUSY;
}

void fg_client_detach(fg_actor_t *a)
{
	fg_slot_t *s = a->self;
	atomic_store(&s->state, FG_SLOT_FREE);
	atomic_store(&s->starttime, 0);
	atomic_store(&s->pid, 0);
	atomic_store_explicit(&s->owner, 0, memory_order_release);
}

enum fg_probe fg_client_probe(const fg_slot_t *cs, uint64_t *owner)
{
	fg_slot_t *s = (fg_slot_t *)cs;
	uint64_t w = atomic_load_explicit(&s->owner, memory_order_acquire);
	if (owner)
		*owner = w;
	if (w == 0 || (w & FG_OWNER_RECOVERING))
		return FG_PROBE_FREE;
	int32_t pid = FG_OWNER_PID(w);
	FG_CRASHPOINT("registry.probe.after_owner");
	uint64_t actual = fg_proc_starttime(pid);
	if (actual == 0)   /* gone (a dead pid stays dead), or /proc unreadable now */
		return fg_proc_gone(pid) ? FG_PROBE_DEAD : FG_PROBE_CHANGED;
	uint64_t recorded = atomic_load_explicit(&s->starttime, memory_order_acquire);
	if (atomic_load_explicit(&s->owner, memory_order_acquire) != w)
		return FG_PROBE_CHANGED;
	/* recorded is w's own start time, or 0 while w attaches: a detach
	 * clears it before it gives the owner word back */
	if (recorded == 0 || recorded == actual)
		return FG_PROBE_ALIVE;
	return FG_PROBE_DEAD;        /* the pid now runs another process */
}

int fg_client_dead(const fg_slot_t *s)
{
	return fg_client_probe(s, NULL) == FG_PROBE_DEAD;
}

int fg_client_recover(fg_actor_t *sup, uint32_t slot, uint64_t w)
{
	fg_slot_t *s = fg_slot(sup->r, slot);
	uint64_t expect = w;
	if (!atomic_compare_exchange_strong(&s->owner, &expect, w | FG_OWNER_RECOVERING))
		return -EAGAIN;
	FG_CRASHPOINT("registry.recover.after_cas");
	uint32_t gen = FG_OWNER_GEN(w);
	int n = (int)fg_session_recover_slot(sup, slot, gen);
	/* a holder that died before it stored gen: later holders go past it */
	uint32_t g = atomic_load(&s->gen);
	if ((int32_t)(gen - g) > 0)
		atomic_store(&s->gen, gen);
	atomic_store(&s->state, FG_SLOT_FREE);
	atomic_store(&s->starttime, 0);
	atomic_store(&s->pid, 0);
	atomic_store_explicit(&s->owner, 0, memory_order_release);
	return n;
}
