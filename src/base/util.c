/* util.c — see include/forge/util.h. */

#include "forge/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

int fg_proc_gone(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return e == ESRCH;
	buf[n > 0 ? n : 0] = '\0';
	char *p = strrchr(buf, ')');
	return p && (p[1] == ' ') && (p[2] == 'Z' || p[2] == 'X');
}

ssize_t fg_proc_file(long pid, const char *name, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%ld/%s", pid, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return n;
}

uint64_t fg_proc_starttime(pid_t pid)
{
	char buf[1024];
	if (fg_proc_file(pid, "stat", buf, sizeof(buf)) < 0)
		return 0;
	/* comm may hold spaces and parentheses: parse after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	/* fields after comm: 3=state ... 22=starttime */
	char state = 0;
	int field = 2;
	char *save = NULL;
	for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		field++;
		if (field == 3)
			state = tok[0];
		if (field == 22) {
			if (state == 'Z' || state == 'X')
				return 0;
			return strtoull(tok, NULL, 10);
		}
	}
	return 0;
}

int fg_proc_alive(pid_t pid, uint64_t starttime)
{
	if (pid <= 0)
		return 0;
	uint64_t st = fg_proc_starttime(pid);
	return st != 0 && st == starttime;
}

int fg_pid_exists(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

int fg_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L };
	long rc = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT, expected,
			  timeout_ms >= 0 ? &ts : NULL, NULL, 0);
	return rc < 0 ? -errno : 0;
}

void fg_futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int fg_pidfd_open(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int fg_pidfd_send_signal(int pidfd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

static const struct { const char *name; int sig; } signames[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ABRT", SIGABRT },
	{ "KILL", SIGKILL }, { "SEGV", SIGSEGV }, { "TERM", SIGTERM }, { "USR1", SIGUSR1 },
	{ "USR2", SIGUSR2 }, { "STOP", SIGSTOP }, { "CONT", SIGCONT }, { "BUS", SIGBUS },
	{ "FPE", SIGFPE }, { "ILL", SIGILL }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM },
	{ "TRAP", SIGTRAP }, { "SYS", SIGSYS }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
};

int fg_signal_parse(const char *s)
{
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++)
		if (strcasecmp(s, signames[i].name) == 0)
			return signames[i].sig;
	char *end;
	long v = strtol(s, &end, 10);
	if (*s && !*end && v > 0 && v < 65)
		return (int)v;
	return -1;
}

const char *fg_signal_name(int sig)
{
	for (size_t i = 0; i < sizeof(signames) / sizeof(signames[0]); i++)
		if (signames[i].sig == sig)
			return signames[i].name;
	return "?";
}

void fg_sb_fmt(fg_sb_t *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (k > 0)
		fg_sb_put(b, tmp, (size_t)k < sizeof(tmp) ? (size_t)k : sizeof(tmp) - 1);
}
