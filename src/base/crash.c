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
	"session.purge.after_hold",
	"session.purge.after_judge",
	"session.finish.before_clear",
	"session.park.after_cas",
	"session.wake.before_cas",
	"session.cancel.before_cas",
	"session.snapshot.after_check",
	"registry.probe.after_owner",
	"registry.recover.after_cas",
	"ring.unstall.before_cas",
	"mcp.call.before_send",
	"mcp.call.after_send",
	NULL
};

#ifdef FG_CRASHPOINTS
int fg_points_armed;
static char crash_buf[128], stall_buf[128];
static const char *crash_name, *stall_name;
static long crash_left, stall_left;

/* "name:N" -> name in buf, N in *left (1 if absent or < 1). */
static const char *parse_point(const char *spec, char *buf, size_t n, long *left)
{
	if (!spec || !*spec)
		return NULL;
	strncpy(buf, spec, n - 1);
	buf[n - 1] = '\0';
	char *colon = strrchr(buf, ':');
	*left = 1;
	if (colon) {
		*colon = '\0';
		*left = strtol(colon + 1, NULL, 10);
		if (*left < 1)
			*left = 1;
	}
	return buf;
}

void fg_crash_arm(void)
{
	crash_name = parse_point(getenv("FORGE_CRASHPOINT"), crash_buf, sizeof(crash_buf),
				 &crash_left);
	stall_name = parse_point(getenv("FORGE_STALLPOINT"), stall_buf, sizeof(stall_buf),
				 &stall_left);
	fg_points_armed = crash_name || stall_name;
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
	fg_points_armed = 0;
	crash_name = stall_name = NULL;
}

/* Writes our pid to FORGE_STALL_FILE (aside, then renamed), then stops. */
static void stall_here(const char *name)
{
	const char *file = getenv("FORGE_STALL_FILE");
	char msg[200];
	int n = snprintf(msg, sizeof(msg), "forge: stall point %s reached (pid %d): stopped "
			 "until SIGCONT\n", name, (int)getpid());
	ssize_t w = write(STDERR_FILENO, msg, (size_t)n);
	(void)w;
	if (file && *file) {
		char tmp[300], pid[32];
		snprintf(tmp, sizeof(tmp), "%s.%d.tmp", file, (int)getpid());
		int k = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		FILE *f = fopen(tmp, "w");
		if (f) {
			fwrite(pid, 1, (size_t)k, f);
			fclose(f);
			rename(tmp, file);
		}
	}
	raise(SIGSTOP);
}

void fg_crash_hit(const char *name)
{
	if (stall_name && strcmp(name, stall_name) == 0 && --stall_left == 0) {
		stall_name = NULL;   /* once: the process goes on clean after it */
		fg_points_armed = crash_name != NULL;
		stall_here(name);
		return;
	}
	if (!crash_name || strcmp(name, crash_name) != 0)
		return;
	if (--crash_left == 0) {
		static const char msg[] = "forge: crash point reached, SIGKILL\n";
		ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)w;
		kill(getpid(), SIGKILL);
	}
}
#endif
