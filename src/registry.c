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
		int32_t zero = 0;
		if (atomic_load(&s->state) != FG_SLOT_FREE)
			continue;
		if (!atomic_compare_exchange_strong(&s->pid, &zero, me))
			continue;
		FG_CRASHPOINT("registry.attach.after_cas");
		atomic_store(&s->starttime, fg_proc_starttime(me));
		atomic_fetch_add(&s->gen, 1);
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
}

int fg_client_dead(const fg_slot_t *s)
{
	int32_t pid = atomic_load(&((fg_slot_t *)s)->pid);
	if (pid == 0)
		return 0;
	uint64_t st = atomic_load(&((fg_slot_t *)s)->starttime);
	if (st == 0)   /* attaching: dead only if the pid is gone altogether */
		return fg_proc_starttime(pid) == 0;
	return !fg_proc_alive(pid, st);
}
