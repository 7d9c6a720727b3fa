/* fiu_epoll.c — a libfiu preload library for the epoll waits, which the
 * POSIX preload that ships with libfiu (fiu_posix_preload.so) does not
 * cover.  Loaded next to fiu_run_preload.so, its failure point is driven
 * like libfiu's own (FIU_ENABLE at start, fiu-ctrl while running):
 *
 *   linux/io/epoll_wait   epoll_wait, epoll_pwait and epoll_pwait2 fail
 *
 * A failing call returns -1 with errno set to the point's failinfo when it
 * is given, else to one of the errors the call can really return (EINTR,
 * EBADF, EINVAL, EFAULT), chosen at random. */
#include <dlfcn.h>
#include <errno.h>
#ifndef FIU_ENABLE
#define FIU_ENABLE 1   /* else fiu.h makes fiu_fail() a constant 0 */
#endif
#include <fiu.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>

static int fail_now(void)
{
	static const int errs[] = { EINTR, EBADF, EINVAL, EFAULT };
	static __thread unsigned seed;
	if (!fiu_fail("linux/io/epoll_wait"))
		return 0;
	intptr_t info = (intptr_t)fiu_failinfo();
	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed;
	errno = info ? (int)info : errs[rand_r(&seed) % 4];
	return 1;
}

#define REAL(name, type) \
	static type real_##name; \
	if (!real_##name) \
		real_##name = (type)dlsym(RTLD_NEXT, #name)

typedef int (*epoll_wait_f)(int, struct epoll_event *, int, int);
typedef int (*epoll_pwait_f)(int, struct epoll_event *, int, int, const sigset_t *);
typedef int (*epoll_pwait2_f)(int, struct epoll_event *, int, const struct timespec *,
			      const sigset_t *);

int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	REAL(epoll_wait, epoll_wait_f);
	if (fail_now())
		return -1;
	return real_epoll_wait(epfd, ev, max, timeout);
}

int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *ss)
{
	REAL(epoll_pwait, epoll_pwait_f);
	if (fail_now())
		return -1;
	return real_epoll_pwait(epfd, ev, max, timeout, ss);
}

int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *t,
		 const sigset_t *ss)
{
	REAL(epoll_pwait2, epoll_pwait2_f);
	if (fail_now())
		return -1;
	return real_epoll_pwait2(epfd, ev, max, t, ss);
}
