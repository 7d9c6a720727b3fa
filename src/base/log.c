/*
 * log.c — see include/forge/log.h.  Each message is formatted into one
 * buffer and written with a single write(2), so lines from the supervisor
 * and its children do not interleave mid-line.
 */
#include "forge/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int fg_log_level = FG_LOG_INFO;
static char prog[32] = "forge";

void fg_log_set_prog(const char *progname)
{
	snprintf(prog, sizeof(prog), "%s", progname);
}

void fg_log_init(const char *progname, int level)
{
	fg_log_set_prog(progname);
	fg_log_level = level;
}

int fg_log_parse_level(const char *s)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, names[i]) == 0)
			return i;
	return -1;
}

static void vlog(int level, int with_errno, const char *fmt, va_list ap)
{
	static const char *tags[] = { "error", "warning", "info", "debug" };
	int saved = errno;
	char buf[2048];
	int n = snprintf(buf, sizeof(buf), "%s[%d]: %s: ", prog, (int)getpid(), tags[level]);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	if (m > 0)
		n += m;
	if ((size_t)n >= sizeof(buf) - 64)
		n = (int)sizeof(buf) - 64;
	if (with_errno)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ": %s", strerror(saved));
	buf[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, buf, (size_t)n);
	(void)w;
	errno = saved;
}

void fg_log(int level, int with_errno, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, with_errno, fmt, ap);
	va_end(ap);
}

void fg_fatal(int with_errno, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(FG_LOG_ERROR, with_errno, fmt, ap);
	va_end(ap);
	exit(1);
}
