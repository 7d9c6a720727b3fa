/* crash.c — see include/forge/crash.h. */
#include "forge/crash.h"

#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char report_head[96];

static void crash_report(int sig)
{
	static const struct { int sig; const char *name; } names[] = {
		{ SIGSEGV, "SIGSEGV" }, { SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" },
		{ SIGILL, "SIGILL" }, { SIGABRT, "SIGABRT" } };
	const char *name = "?";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].sig == sig)
			name = names[i].name;
	ssize_t w = write(STDERR_FILENO, report_head, strlen(report_head));
	w = write(STDERR_FILENO, name, strlen(name));
	w = write(STDERR_FILENO, "; backtrace:\n", 13);
	(void)w;
	void *pcs[48];
	int n = backtrace(pcs, 48);
	backtrace_symbols_fd(pcs, n, STDERR_FILENO);
	signal(sig, SIG_DFL);   /* die of the same signal: the supervisor sees it */
	raise(sig);
}

void fg_crash_report_install(const char *prog)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	(void)prog;   /* the sanitizer's own report is better */
	return;
#endif
	void *pcs[4];
	backtrace(pcs, 4);   /* loads libgcc now, not inside the handler */
	snprintf(report_head, sizeof(report_head), "%s[%d]: fatal signal ", prog, (int)getpid());
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT };
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = crash_report;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

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
	"session.purge.after_count",
	"session.purge.after_cas",
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
