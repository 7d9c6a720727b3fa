/*
 * util.h — small helpers shared by every program: clocks, process
 * identity (pid + start time, so a reused pid is never taken for the
 * process we knew), and the futex used as a doorbell between processes.
 */
#ifndef FORGE_UTIL_H
#define FORGE_UTIL_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#define FG_LIKELY(x)   __builtin_expect(!!(x), 1)
#define FG_UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline uint64_t fg_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The wall clock in ms (deadlines that must hold across a reboot). */
static inline uint64_t fg_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline uint64_t fg_coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Start time of PID in clock ticks since boot (/proc/PID/stat field 22), 0 if gone. */
uint64_t fg_proc_starttime(pid_t pid);
/* /proc/PID/NAME read into buf (at most len - 1 bytes, NUL-terminated):
 * its length, or -1. */
ssize_t fg_proc_file(long pid, const char *name, char *buf, size_t len);
/* 1 only if pid certainly runs no process (no /proc entry, or a zombie):
 * an error reading /proc (out of descriptors, hidepid) is not a death. */
int fg_proc_gone(pid_t pid);

/* 1 if PID is alive (not a zombie) and started at STARTTIME. */
int fg_proc_alive(pid_t pid, uint64_t starttime);
/* Whether a process pid exists, whoever owns it (kill 0's EPERM: another
 * user's, as forged's are to a forgectl of group forge). */
int fg_pid_exists(pid_t pid);

int  fg_futex_wait(_Atomic uint32_t *addr, uint32_t expected, int timeout_ms);
void fg_futex_wake(_Atomic uint32_t *addr);

int  fg_pidfd_open(pid_t pid);
int  fg_pidfd_send_signal(int pidfd, int sig);

/* Parses a signal name ("KILL", "SIGKILL") or number; -1 if unknown. */
int  fg_signal_parse(const char *s);
const char *fg_signal_name(int sig);

/* A growing string (NUL-terminated; oom set, and nothing more added, once
 * memory ran out): the request builder's and the MCP result text's. */
typedef struct fg_sb {
	char *p;
	size_t n, cap;
	int oom;
} fg_sb_t;

static inline void fg_sb_put(fg_sb_t *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t c = b->cap ? b->cap * 2 : 1024;
		while (c < b->n + n + 1)
			c *= 2;
		char *q = realloc(b->p, c);
		if (!q) {
			b->oom = 1;
			return;
		}
		b->p = q;
		b->cap = c;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* fg_sb_put of a printf (cut at 1 KiB). */
void fg_sb_fmt(fg_sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
