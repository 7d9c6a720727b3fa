/* crash.c — see include/forge/crash.h. */
#include "forge/crash.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const fg_crash_points[] = {
	"ring.enq.before_claim",
	"ring.enq.after_claim",
	"ring.enq.after_publish",
	"ring.deq.after_claim",
	"ring.deq.after_release",
	"session.alloc.after_cas",
	"session.alloc.before_queue",
	"session.alloc.after_queue",
	"session.claim.after_lease_entry",
	"session.claim.after_cas",
	"ckpt.commit.after_write",
	"ckpt.commit.after_publish",
	"session.finish.after_cas",
	"session.release.after_cas",
	"registry.attach.after_cas",
	"recover.after_entry",
	"mapreduce.child.after_alloc",
	"mapreduce.child.after_record",
	NULL
};

#ifdef FG_CRASHPOINTS
const char *fg_crash_name;
static char crash_buf[128];
static long crash_left;

void fg_crash_arm(void)
{
	const char *spec = getenv("FORGE_CRASHPOINT");
	if (!spec || !*spec)
		return;
	strncpy(crash_buf, spec, sizeof(crash_buf) - 1);
	char *colon = strrchr(crash_buf, ':');
	crash_left = 1;
	if (colon) {
		*colon = '\0';
		crash_left = strtol(colon + 1, NULL, 10);
		if (crash_left < 1)
			crash_left = 1;
	}
	fg_crash_name = crash_buf;
}

void fg_crash_arm_if(const char *who, uint32_t gen)
{
	const char *slot = getenv("FORGE_CRASH_SLOT");
	const char *g = getenv("FORGE_CRASH_GEN");
	if (!slot || strcmp(slot, who) != 0)
		return;
	if ((g ? strtoul(g, NULL, 10) : 1) != gen)
		return;
	fg_crash_arm();
}

void fg_crash_disarm(void)
{
	fg_crash_name = NULL;
}

void fg_crash_hit(const char *name)
{
	if (strcmp(name, fg_crash_name) != 0)
		return;
	if (--crash_left == 0) {
		static const char msg[] = "forge: crash point reached, SIGKILL\n";
		ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)w;
		kill(getpid(), SIGKILL);
	}
}
#endif
