/*
 * supervisor.c — see include/forge/supervisor.h.
 *
 * Events and what each does:
 *   pidfd readable (child died)  reap with waitid(P_PIDFD, WNOHANG), log pid,
 *                                status or signal and core flag; recovery
 *                                pass for (slot, gen); schedule a restart
 *                                (none if exit code FG_EXIT_FATAL, or the
 *                                slot exceeded R restarts in T seconds)
 *   tick (timerfd, 20 ms)        due restarts; watchdog (stale heartbeat:
 *                                SIGKILL through the pidfd); dead clients;
 *                                the sweep; READY/STATUS to systemd
 *   SIGTERM, SIGINT              drain: flag, SIGTERM to children, wait up
 *                                to shutdown_timeout_ms, SIGKILL the rest
 *   SIGCHLD                      strays: what a dead child left running (it
 *                                comes to us: we are the child subreaper) is
 *                                SIGKILLed, and reaped once dead
 *   SIGHUP                       reload: the file is read and validated again;
 *                                an invalid one is refused and the running
 *                                configuration stays; a valid one is applied by
 *                                restarting the workers one at a time (each
 *                                drains: its sessions go on elsewhere from their
 *                                checkpoints), so no session waits on a reload
 * systemd (sd_notify): READY=1 once every worker is ready, STATUS= every second,
 * RELOADING=1 / READY=1 around a reload, STOPPING=1, and WATCHDOG=1 at half
 * the WatchdogSec interval only while every live worker's heartbeat is fresh.
 */

#include "forge/supervisor.h"
#include "forge/crash.h"
#include "forge/durable.h"
#include "forge/gateway.h"
#include "forge/log.h"
#include "forge/region.h"
#include "forge/registry.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"
#include "forge/worker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define TICK_MS 20
#define GW FG_MAX_WORKERS   /* the gateway's slot and kids[] index */
#define MAX_RESTART_HIST 64

typedef struct child {
	pid_t pid;
	int pidfd;               /* -1 when no process */
	uint64_t restart_at_ns;  /* 0: no restart pending */
	uint64_t hist[MAX_RESTART_HIST]; /* restart times, newest last */
	uint32_t nhist;
	int killed_by_watchdog;
	int disabled;
	int retiring;            /* asked to stop for a reload */
	uint32_t spawn_failures; /* consecutive failed forks (backoff) */
} child_t;

typedef struct sup {
	const fg_config_t *cfg;
	fg_config_t *cfg_owned;  /* a reloaded configuration (freed on the next one) */
	int reloading;
	uint32_t reload_next, reload_workers, reload_old;
	uint64_t wd_usec, next_wd_ns, next_status_ns, next_purge_ns;
	fg_region_t r;
	fg_actor_t a;
	int lockfd, epfd, sigfd, tfd;
	uint32_t nworkers;
	child_t kids[FG_MAX_WORKERS + 1];   /* workers, then the gateway (GW) */
	pid_t dead_sids[64];     /* sessions of the children that died last (strays) */
	uint32_t ndead;
	int stopping;
	uint64_t stop_deadline_ns;
	uint64_t next_sweep_ns;
	int ready_sent;
	fg_sweep_memo_t *memo;   /* the sweep's, one per session record */
	uint32_t nmemo;
} sup_t;

/* the batch flusher thread (durable_start, below) */
static _Atomic int flusher_stop;
static _Atomic int flusher_errno;

static void close_inherited(sup_t *s)
{
	close(s->epfd);
	close(s->sigfd);
	close(s->tfd);
	for (uint32_t i = 0; i <= GW; i++)
		if (s->kids[i].pidfd >= 0)
			close(s->kids[i].pidfd);
}

static const char *cname(uint32_t slot)
{
	static char buf[32];
	if (slot == GW)
		return "gateway";
	snprintf(buf, sizeof(buf), "worker %u", slot);
	return buf;
}

/* A child could not be started (fork, pidfd_open or epoll_ctl failed: out of
 * memory, processes or descriptors): the slot stays empty and is tried again
 * after the restart backoff, doubling while the failures go on.  No child
 * ran, so the restart intensity is not charged. */
static void spawn_failed(sup_t *s, uint32_t slot, const char *what)
{
	child_t *k = &s->kids[slot];
	int e = errno;
	uint64_t delay_ms = s->cfg->backoff_initial_ms;
	for (uint32_t i = 0; i < k->spawn_failures && delay_ms < s->cfg->backoff_max_ms; i++)
		delay_ms *= 2;
	if (delay_ms > s->cfg->backoff_max_ms)
		delay_ms = s->cfg->backoff_max_ms;
	if (delay_ms == 0)
		delay_ms = 1;
	k->spawn_failures++;
	atomic_store(&fg_slot(&s->r, slot)->state, FG_SLOT_DEAD);
	atomic_fetch_add(&s->r.hdr->spawn_failures, 1);
	log_warnx("%s: %s failed: %s (attempt %u); trying again in %llu ms", cname(slot), what,
		  strerror(e), k->spawn_failures, (unsigned long long)delay_ms);
	k->restart_at_ns = fg_now_ns() + delay_ms * 1000000ull;
}

/* No one waits on a session bell (the gateway, their only user, is gone):
 * waiters left counted by a dead one would only make commits ring. */
static void reset_bells(fg_region_t *r)
{
	for (uint32_t b = 0; b < FG_BELLS; b++)
		atomic_store_explicit(&r->hdr->bell[b].waiters, 0, memory_order_relaxed);
}

static int spawn(sup_t *s, uint32_t slot)
{
	child_t *k = &s->kids[slot];
	fg_slot_t *sl = fg_slot(&s->r, slot);
	pid_t parent = getpid();

	atomic_fetch_add(&sl->gen, 1);
	atomic_store(&sl->heartbeat_ns, fg_coarse_ns());
	atomic_store(&sl->started_ns, fg_now_ns());
	atomic_store(&sl->state, FG_SLOT_STARTING);
	k->killed_by_watchdog = 0;

	pid_t pid = fork();
	if (pid < 0) {
		spawn_failed(s, slot, "fork");
		return -1;
	}
	if (pid == 0) {
		/* The child keeps the region lock's open file description: the
		 * lock is held until every child of this supervisor is gone. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(0);
		setsid();   /* a session of its own: what it starts is told by it (strays) */
		close_inherited(s);
		fg_crash_disarm();   /* a worker arms itself, per its own slot */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		atomic_store(&sl->pid, (int32_t)getpid());
		char name[32];
		if (slot == GW)
			snprintf(name, sizeof(name), "forge-gateway");
		else
			snprintf(name, sizeof(name), "forge-worker-%u", slot);
		prctl(PR_SET_NAME, name);
		fg_log_set_prog(name);
		fg_crash_report_install(name);
		if (slot != GW && s->cfg->memory_limit_mb) {
			rlim_t lim = (rlim_t)s->cfg->memory_limit_mb << 20;
			struct rlimit rl = { lim, lim };
			/* RLIMIT_DATA: the worker's own memory (heap, private and
			 * anonymous mappings), not the shared region, whose overflow
			 * section is a large sparse mapping */
			if (setrlimit(RLIMIT_DATA, &rl) < 0)
				log_warn("worker %u: cannot set its memory limit (%u MiB)", slot,
					 s->cfg->memory_limit_mb);
		}
		_exit(slot == GW ? fg_gateway_main(&s->r, slot, s->cfg)
				 : fg_worker_main(&s->r, slot, s->cfg));
	}
	atomic_store(&sl->pid, (int32_t)pid);
	k->pid = pid;
	k->pidfd = fg_pidfd_open(pid);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = slot };
	if (k->pidfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, k->pidfd, &ev) < 0) {
		/* Without a pidfd in the loop its death would go unseen: take
		 * it back at once; the sessions it may have claimed in the
		 * meantime are recovered like any dead worker's. */
		const char *what = k->pidfd < 0 ? "pidfd_open" : "epoll_ctl";
		int e = errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		if (k->pidfd >= 0)
			close(k->pidfd);
		k->pidfd = -1;
		k->pid = 0;
		atomic_store(&sl->pid, 0);
		fg_session_recover_slot(&s->a, slot, atomic_load(&sl->gen));
		errno = e;
		spawn_failed(s, slot, what);
		return -1;
	}
	k->spawn_failures = 0;
	log_info("%s started (pid %d, gen %u)", cname(slot), (int)pid, atomic_load(&sl->gen));
	return 0;
}

static void record_recovery(sup_t *s, uint64_t ns)
{
	fg_hdr_t *h = s->r.hdr;
	uint64_t n = atomic_load_explicit(&h->rec_count, memory_order_relaxed);
	h->rec_ns[n % FG_RECOVERY_HIST] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
	atomic_store_explicit(&h->rec_count, n + 1, memory_order_release);
	atomic_fetch_add(&h->recoveries, 1);
}

static void schedule_restart(sup_t *s, uint32_t slot, int status_code)
{
	child_t *k = &s->kids[slot];
	fg_slot_t *sl = fg_slot(&s->r, slot);
	uint64_t now = fg_now_ns(), period = (uint64_t)s->cfg->restart_period_s * 1000000000ull;

	if (status_code == FG_EXIT_FATAL) {
		log_errx("%s exited with status %d (fatal): not restarting it", cname(slot),
			 FG_EXIT_FATAL);
		k->disabled = 1;
	}
	/* restarts within the period, this one included */
	uint32_t recent = 1;
	for (uint32_t i = 0; i < k->nhist; i++)
		if (now - k->hist[i] < period)
			recent++;
	if (!k->disabled && recent > s->cfg->restart_intensity) {
		log_errx("%s: %u restarts within %u s exceed the limit of %u: "
			 "not restarting it; forge is degraded", cname(slot), recent,
			 s->cfg->restart_period_s, s->cfg->restart_intensity);
		k->disabled = 1;
	}
	if (k->disabled) {
		atomic_store(&sl->state, FG_SLOT_DISABLED);
		atomic_store(&s->r.hdr->sup_state, FG_SUP_DEGRADED);
		return;
	}
	if (k->nhist == MAX_RESTART_HIST) {
		memmove(k->hist, k->hist + 1, sizeof(k->hist[0]) * (MAX_RESTART_HIST - 1));
		k->nhist--;
	}
	k->hist[k->nhist++] = now;
	/* First restart at once; then initial, 2x, 4x ... up to max. */
	uint64_t delay_ms = 0;
	if (recent > 1) {
		delay_ms = s->cfg->backoff_initial_ms;
		for (uint32_t i = 2; i < recent && delay_ms < s->cfg->backoff_max_ms; i++)
			delay_ms *= 2;
		if (delay_ms > s->cfg->backoff_max_ms)
			delay_ms = s->cfg->backoff_max_ms;
	}
	k->restart_at_ns = now + delay_ms * 1000000ull;
	if (delay_ms)
		log_info("%s: restarting in %llu ms (restart %u within %u s)", cname(slot),
			 (unsigned long long)delay_ms, recent, s->cfg->restart_period_s);
}

static void reload_retired(sup_t *s, uint32_t slot);

/*
 * Strays.  forged is a child subreaper (PR_SET_CHILD_SUBREAPER): what a
 * child that died leaves running is reparented to forged instead of init
 * -- the program a stdio MCP server's launcher (npx, sh -c) started, the
 * children of a tool's shell -- where it would live on unseen, one more
 * with each death of a worker.  Each worker and the gateway leads a session
 * of its own (setsid), which what it starts stays in; at each SIGCHLD, a
 * child of forged that is none of its workers or gateway and is in the
 * session of one that died (dead_sids) is SIGKILLed, and every child that
 * is a zombie is reaped.  Anything else that comes to forged (what it had
 * before its exec, say a container's sidecar; a daemon a tool started with
 * setsid; the orphans of a live worker) is left alone, reaped when it ends.
 * A session id is not reused while a process is in that session, and a
 * child of forged is reaped by no one else, so neither pid nor sid changes
 * meaning between the look and the kill.
 */
/* Whether pid has a SIGKILL pending (its parent's death signal, say). */
static int sigkill_pending(long pid)
{
	char buf[2048];
	if (fg_proc_file(pid, "status", buf, sizeof(buf)) < 0)
		return 0;
	const char *keys[] = { "\nSigPnd:", "\nShdPnd:" };
	for (int i = 0; i < 2; i++) {
		const char *p = strstr(buf, keys[i]);
		if (p && (strtoull(p + strlen(keys[i]), NULL, 16) & (1ull << (SIGKILL - 1))))
			return 1;
	}
	return 0;
}

/* forged's children, from /proc/self/task/TID/children (each thread's:
 * an orphan may be handed to any of them), into *pids (malloc'd); their
 * number, or -1 where the kernel has no such files (CONFIG_PROC_CHILDREN
 * unset) or one could not be read. */
static long own_children(long **pids)
{
	DIR *d = opendir("/proc/self/task");
	long n = 0, cap = 0, *v = NULL;
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char path[300];
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f) {   /* (a thread that just ended, or no such files) */
			closedir(d);
			free(v);
			return -1;
		}
		long pid;
		while (fscanf(f, "%ld", &pid) == 1) {
			if (n == cap) {
				long *nv = realloc(v, (size_t)(cap = cap ? 2 * cap : 64) * sizeof(*v));
				if (!nv) {
					fclose(f);
					closedir(d);
					free(v);
					return -1;
				}
				v = nv;
			}
			v[n++] = pid;
		}
		fclose(f);
	}
	closedir(d);
	*pids = v;
	return n;
}

/* Reaps and kills strays (see above).  forged's children are read from
 * /proc/self/task/TID/children; without those files, from every /proc/PID
 * (0.5 ms on a quiet machine, each SIGCHLD; more the more processes). */
static void reap_strays(sup_t *s)
{
	pid_t me = getpid();
	long *kids = NULL, nkids = own_children(&kids), k = 0;
	DIR *d = nkids < 0 ? opendir("/proc") : NULL;
	if (nkids < 0 && !d)
		return;
	for (;;) {
		long pid;
		if (nkids >= 0) {
			if (k == nkids)
				break;
			pid = kids[k++];
		} else {
			struct dirent *e = readdir(d);
			if (!e)
				break;
			char *end;
			pid = strtol(e->d_name, &end, 10);
			if (*end || pid <= 0 || pid == me)
				continue;
		}
		char buf[512];
		if (fg_proc_file(pid, "stat", buf, sizeof(buf)) < 0)
			continue;
		char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
		char state;
		long ppid, pgrp, sid;
		if (!lp || !rp || rp < lp ||
		    sscanf(rp + 1, " %c %ld %ld %ld", &state, &ppid, &pgrp, &sid) != 4 || ppid != me)
			continue;
		int ours = 0;
		for (uint32_t i = 0; i <= GW; i++)
			ours |= s->kids[i].pidfd >= 0 && s->kids[i].pid == (pid_t)pid;
		if (ours)
			continue;
		if (state == 'Z') {
			siginfo_t si;
			waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG);
			continue;
		}
		int left = 0;
		for (uint32_t i = 0; i < s->ndead && i < 64; i++)
			left |= s->dead_sids[i] == (pid_t)sid;
		if (!left)
			continue;
		if (!sigkill_pending(pid))   /* (not a dead worker's own child, dying) */
			log_warnx("pid %ld (%.*s), left running by a child of forged that died: "
				  "killed", pid, (int)(rp - lp - 1), lp + 1);
		kill((pid_t)pid, SIGKILL);
	}
	if (d)
		closedir(d);
	free(kids);
}

static void child_died(sup_t *s, uint32_t slot)
{
	uint64_t t0 = fg_now_ns();
	child_t *k = &s->kids[slot];
	fg_slot_t *sl = fg_slot(&s->r, slot);
	siginfo_t si;

	memset(&si, 0, sizeof(si));
	if (waitid((idtype_t)P_PIDFD, (id_t)k->pidfd, &si, WEXITED | WNOHANG) < 0 ||
	    si.si_pid == 0)
		return;   /* not dead yet (spurious wake-up) */
	/* (its session: what it left running is a stray) */
	s->dead_sids[s->ndead++ % 64] = k->pid;
	uint32_t gen = atomic_load(&sl->gen);
	atomic_store(&sl->state, FG_SLOT_RECOVERING);
	uint32_t n = fg_session_recover_slot(&s->a, slot, gen);
	if (slot == GW)
		reset_bells(&s->r);   /* the bells' only waiters were its threads */
	uint64_t t1 = fg_now_ns();
	record_recovery(s, t1 - t0);

	int code = si.si_code == CLD_EXITED ? si.si_status : -1;
	int sig = si.si_code == CLD_EXITED ? 0 : si.si_status;
	int core = si.si_code == CLD_DUMPED;
	atomic_store(&sl->last_pid, (int32_t)k->pid);
	atomic_store(&sl->last_status, code);
	atomic_store(&sl->last_signal, sig);
	atomic_store(&sl->last_core, (uint32_t)core);
	atomic_store(&sl->last_recovered, n);
	atomic_store(&sl->last_exit_ns, t0);
	atomic_store(&sl->pid, 0);
	atomic_store(&sl->state, FG_SLOT_DEAD);
	if (sig)
		log_warnx("%s (pid %d) killed by signal %d (SIG%s)%s%s; %u sessions "
			  "requeued in %.1f us", cname(slot), (int)k->pid, sig, fg_signal_name(sig),
			  core ? " (core dumped)" : "",
			  k->killed_by_watchdog ? " by the watchdog" : "", n, (t1 - t0) / 1e3);
	else if (code == 0 && k->retiring)
		log_info("%s (pid %d) drained for the reload; %u sessions requeued", cname(slot),
			 (int)k->pid, n);
	else if (code != 0 || !s->stopping)
		log_warnx("%s (pid %d) exited with status %d; %u sessions requeued",
			  cname(slot), (int)k->pid, code, n);
	else
		log_info("%s (pid %d) exited with status 0", cname(slot), (int)k->pid);

	epoll_ctl(s->epfd, EPOLL_CTL_DEL, k->pidfd, NULL);
	close(k->pidfd);
	k->pidfd = -1;
	k->pid = 0;
	reap_strays(s);   /* (its SIGCHLD may have been read before this) */
	if (s->stopping)
		return;
	if (k->retiring) {
		k->retiring = 0;
		if (slot == GW)
			spawn(s, GW);   /* restarted on the reloaded configuration */
		else
			reload_retired(s, slot);
		return;
	}
	if (slot == GW && !s->cfg->http_enabled)
		return;   /* stopped by a reload that turned the API off */
	atomic_fetch_add(&sl->restarts, 1);
	atomic_fetch_add(&s->r.hdr->restarts, 1);
	schedule_restart(s, slot, code);
	if (k->restart_at_ns && k->restart_at_ns <= fg_now_ns()) {
		k->restart_at_ns = 0;
		spawn(s, slot);
	}
}

static void watchdog(sup_t *s, uint64_t now)
{
	uint64_t limit = (uint64_t)s->cfg->watchdog_ms * 1000000ull;
	for (uint32_t i = 0; i <= GW; i++) {
		if (i >= s->nworkers && i != GW)
			continue;
		child_t *k = &s->kids[i];
		fg_slot_t *sl = fg_slot(&s->r, i);
		if (k->pidfd < 0 || k->killed_by_watchdog)
			continue;
		uint64_t hb = atomic_load_explicit(&sl->heartbeat_ns, memory_order_relaxed);
		if (now > hb && now - hb > limit) {
			log_warnx("%s (pid %d): heartbeat stale for %llu ms (watchdog %u ms): "
				  "killing it", cname(i), (int)k->pid,
				  (unsigned long long)((now - hb) / 1000000), s->cfg->watchdog_ms);
			k->killed_by_watchdog = 1;
			fg_pidfd_send_signal(k->pidfd, SIGKILL);
		}
	}
}

/*
 * The children of a dead supervisor got SIGTERM (PR_SET_PDEATHSIG) and
 * drain; one that is stopped (SIGSTOP, a debugger) cannot act on it and
 * would hold the region lock, and so every session, for as long as it is
 * stopped.  A stall must not outlast the watchdog: past the drain's grace
 * (shutdown_timeout_ms + watchdog_ms), the old children still alive are
 * SIGKILLed (by pidfd, each checked against its slot's pid and start time)
 * -- but only if their supervisor is gone: a live one owns them.
 */
static void kill_orphans(const fg_config_t *cfg)
{
	fg_region_t r;
	char err[512];
	if (fg_region_open(cfg->region_path, 0, &r, err, sizeof(err)) < 0) {
		log_warnx("cannot look for the old children: %s", err);
		return;
	}
	fg_slot_t *sup = fg_slot(&r, fg_supervisor_slot(&r));
	if (fg_proc_alive(atomic_load(&sup->pid), atomic_load(&sup->starttime))) {
		log_warnx("the supervisor of %s (pid %d) is running: waiting for it",
			  cfg->region_path, (int)atomic_load(&sup->pid));
		fg_region_close(&r);
		return;
	}
	for (uint32_t i = 0; i <= r.hdr->nworker_slots; i++) {   /* workers and the gateway */
		fg_slot_t *sl = fg_slot(&r, i);
		int32_t pid = atomic_load(&sl->pid);
		uint64_t st = atomic_load(&sl->starttime);
		if (pid <= 0 || !fg_proc_alive(pid, st))
			continue;
		int fd = fg_pidfd_open(pid);
		if (fd >= 0 && fg_proc_alive(pid, st)) {
			log_warnx("pid %d (slot %u of the dead supervisor's children) still holds "
				  "the region after %u ms: killing it", (int)pid, i,
				  cfg->shutdown_timeout_ms + cfg->watchdog_ms);
			fg_pidfd_send_signal(fd, SIGKILL);
		}
		if (fd >= 0)
			close(fd);
	}
	fg_region_close(&r);
}

/* Waits for the region lock; past the grace period, kills stopped orphans. */
static int wait_for_lock(const fg_config_t *cfg)
{
	uint64_t grace = ((uint64_t)cfg->shutdown_timeout_ms + cfg->watchdog_ms) * 1000000ull;
	uint64_t next_kill = fg_now_ns() + grace;
	for (;;) {
		int fd = fg_region_lock(cfg->region_path, 0);
		if (fd != -EWOULDBLOCK)
			return fd;
		if (fg_now_ns() >= next_kill) {
			kill_orphans(cfg);
			next_kill = fg_now_ns() + grace;
		}
		/* no event tells us an OFD lock was released: look every 20 ms */
		struct timespec ts = { 0, 20000000 };
		nanosleep(&ts, NULL);
	}
}

/*
 * A client (forgectl say or resume) holds a visible session RUNNING while
 * it appends to it: stopped there for longer than the watchdog, it is a hang
 * (rule 5), killed like a hung worker, and recovered (the session back to
 * the queue at its last commit).  Its other leases (ALLOCATING, FREEING)
 * hold only records nobody sees.
 */
static void kill_hung_client(sup_t *s, uint32_t i, uint64_t now)
{
	fg_slot_t *sl = fg_slot(&s->r, i);
	uint64_t w = atomic_load(&sl->owner);
	if (!w || (w & FG_OWNER_RECOVERING) ||
	    now - atomic_load(&sl->heartbeat_ns) < (uint64_t)s->cfg->watchdog_ms * 1000000ull)
		return;
	uint32_t *tab = fg_lease_table(&s->r, i);
	int holds = 0;
	for (uint32_t e = 0; e < fg_lease_n(&s->r) && !holds; e++) {
		uint32_t x = __atomic_load_n(&tab[e], __ATOMIC_RELAXED);
		if (x && x - 1 < s->r.hdr->capacity) {
			uint64_t c = atomic_load(&fg_sess(&s->r, x - 1)->ctl);
			holds = FG_CTL_STATE(c) == FG_S_RUNNING && FG_CTL_SLOT(c) == i;
		}
	}
	int32_t pid = FG_OWNER_PID(w);
	uint64_t st = atomic_load(&sl->starttime);
	if (!holds || pid <= 0)
		return;
	int fd = fg_pidfd_open(pid);
	if (fd < 0)
		return;
	/* the pidfd first, then the check that it is still that client */
	if (atomic_load(&sl->owner) == w && fg_proc_alive(pid, st)) {
		log_warnx("client slot %u: pid %d has held a running session for more than %u ms "
			  "(supervisor.watchdog_ms): killing it", i, (int)pid, s->cfg->watchdog_ms);
		fg_pidfd_send_signal(fd, SIGKILL);
	}
	close(fd);
}

static void sweep_clients(sup_t *s)
{
	uint32_t first = fg_first_client_slot(&s->r), last = fg_supervisor_slot(&s->r);
	uint64_t now = fg_now_ns();
	for (uint32_t i = first; i < last; i++) {
		fg_slot_t *sl = fg_slot(&s->r, i);
		uint64_t w;
		kill_hung_client(s, i, now);
		if (fg_client_probe(sl, &w) != FG_PROBE_DEAD)
			continue;
		int n = fg_client_recover(&s->a, i, w);
		if (n < 0)
			continue;   /* it changed hands since the probe: not that one */
		log_warnx("client slot %u: pid %d is gone; recovered (%d sessions requeued)",
			  i, (int)FG_OWNER_PID(w), n);
	}
}

static void sweep_sessions(sup_t *s, uint64_t now)
{
	uint64_t missing = 0;
	uint64_t after = (uint64_t)s->cfg->sweep_after_ms * 1000000ull;
	uint64_t n = fg_session_sweep(&s->a, now, after, &missing);
	if (n)
		log_info("sweep: %llu queued sessions had no hint in the rings; re-enqueued %llu",
			 (unsigned long long)missing, (unsigned long long)n);
	fg_doorbell_wake_all(&s->r, 1);   /* (hints while workers sleep) */
	uint32_t cap = s->r.hdr->capacity;
	if (s->nmemo != cap) {   /* (first sweep, or the region was resized) */
		free(s->memo);
		s->memo = calloc(cap, sizeof(*s->memo));
		s->nmemo = s->memo ? cap : 0;
	}
	n = fg_session_sweep_waiting(&s->a, now, after, (uint64_t)s->cfg->deadline_s * 1000000000ull,
				     s->memo, s->nmemo);
	if (n)
		log_info("sweep: woke %llu waiting sessions (deadline passed, or every child "
			 "ended without waking them)", (unsigned long long)n);
}

/* Steps the rolling restart of a reload: the next live worker is asked to
 * drain; new slots are started; when none is left the reload is done. */
static void reload_advance(sup_t *s)
{
	uint32_t top = s->reload_old > s->reload_workers ? s->reload_old : s->reload_workers;
	while (s->reload_next < top) {
		uint32_t i = s->reload_next;
		child_t *k = &s->kids[i];
		if (i < s->reload_old && k->pidfd >= 0) {
			k->retiring = 1;
			fg_pidfd_send_signal(k->pidfd, SIGTERM);
			/* (its signalfd does not end a futex sleep: it looks at
			 * once instead of at its heartbeat_ms timeout) */
			fg_doorbell_wake_all(&s->r, 0);
			return;   /* reload_retired() goes on when it is gone */
		}
		if (i < s->reload_workers && k->pidfd < 0) {
			k->disabled = 0;
			k->nhist = 0;
			k->restart_at_ns = 0;
			spawn(s, i);
		}
		s->reload_next++;
	}
	s->nworkers = s->reload_workers;
	atomic_store(&s->r.hdr->cfg_workers, s->nworkers);
	s->reloading = 0;
	if (atomic_load(&s->r.hdr->sup_state) == FG_SUP_DEGRADED)
		atomic_store(&s->r.hdr->sup_state, FG_SUP_RUNNING);
	child_t *g = &s->kids[GW];
	if (g->pidfd >= 0 && s->cfg->http_enabled) {
		g->retiring = 1;   /* restarted with the new http settings */
		fg_pidfd_send_signal(g->pidfd, SIGTERM);
	} else if (g->pidfd < 0 && s->cfg->http_enabled) {
		g->disabled = 0;
		spawn(s, GW);
	} else if (g->pidfd >= 0) {
		fg_pidfd_send_signal(g->pidfd, SIGTERM);   /* http.enabled: false */
	}
	log_info("reload complete: %u workers", s->nworkers);
	sd_notifyf(0, "READY=1\nSTATUS=reloaded, %u workers", s->nworkers);
}

static void reload_retired(sup_t *s, uint32_t slot)
{
	if (slot < s->reload_workers) {
		spawn(s, slot);
	} else {
		atomic_store(&fg_slot(&s->r, slot)->state, FG_SLOT_FREE);
		log_info("worker %u retired (workers: %u)", slot, s->reload_workers);
	}
	s->reload_next = slot + 1;
	reload_advance(s);
}

/* Publishes a reload's outcome for forgectl reload (region.h). */
static void reload_outcome(sup_t *s, int ok, const char *why)
{
	fg_hdr_t *h = s->r.hdr;
	atomic_store_explicit(&h->reload.ok, (uint32_t)ok, memory_order_relaxed);
	size_t n = why ? strlen(why) : 0;
	if (n >= sizeof(h->reload.msg))
		n = sizeof(h->reload.msg) - 1;   /* (the log has it whole) */
	memcpy(h->reload.msg, why ? why : "", n);
	h->reload.msg[n] = '\0';
	atomic_fetch_add_explicit(&h->reload.seq, 1, memory_order_release);
}

static void begin_reload(sup_t *s)
{
	char err[1024], why[1100];
	if (s->reloading) {
		log_warnx("SIGHUP: a reload is already in progress");
		reload_outcome(s, 0, "a reload is already in progress");
		return;
	}
	sd_notify(0, "RELOADING=1");
	fg_config_t *n = malloc(sizeof(*n));
	if (!n || fg_config_load(n, s->cfg->file, err, sizeof(err)) < 0) {
		log_errx("reload refused: %s; the running configuration stays",
			 n ? err : "out of memory");
		reload_outcome(s, 0, n ? err : "out of memory");
		free(n);
		sd_notify(0, "READY=1");
		return;
	}
	const fg_config_t *o = s->cfg;
	const char *fixed = strcmp(n->region_path, o->region_path) ? "region.path" :
			    n->sessions != o->sessions ? "region.sessions" :
			    n->checkpoint_bytes != o->checkpoint_bytes ? "region.checkpoint_bytes" :
			    n->session_max_bytes != o->session_max_bytes ? "region.session_max_bytes" :
			    n->max_inflight != o->max_inflight ? "worker.max_inflight" :
			    n->durability != o->durability ? "region.durability" :
			    n->sync_interval_ms != o->sync_interval_ms ? "region.sync_interval_ms" : NULL;
	if (fixed) {
		log_errx("reload refused: %s cannot change while forged runs: it takes effect "
			 "when forged starts again (every session is kept); the running "
			 "configuration stays", fixed);
		snprintf(why, sizeof(why), "%s cannot change while forged runs: it takes effect "
			 "when forged starts again (every session is kept)", fixed);
		reload_outcome(s, 0, why);
		free(n);
		sd_notify(0, "READY=1");
		return;
	}
	fg_log_level = fg_log_parse_level(n->log_level);
	s->reloading = 1;
	s->reload_old = s->nworkers;
	s->reload_workers = n->workers;
	s->reload_next = 0;
	if (n->workers > s->nworkers)
		s->nworkers = n->workers;   /* the loop watches every slot in play */
	/* Children already running keep their copy; those started from now on
	 * get the new one. */
	s->cfg = n;
	free(s->cfg_owned);
	s->cfg_owned = n;
	log_info("reload: %s is valid; restarting %u workers one at a time (workers: %u -> %u)",
		 n->file, s->reload_old, s->reload_old, s->reload_workers);
	reload_outcome(s, 1, NULL);
	reload_advance(s);
}

/* STATUS= every second; WATCHDOG=1 at half the interval while every live
 * worker has beaten within three heartbeat periods. */
static void notify_tick(sup_t *s, uint64_t now)
{
	if (now >= s->next_status_ns) {
		uint32_t ready = 0;
		for (uint32_t i = 0; i < s->nworkers; i++)
			ready += atomic_load(&fg_slot(&s->r, i)->state) == FG_SLOT_READY;
		sd_notifyf(0, "STATUS=%s: %u/%u workers ready, %llu restarts",
			   s->reloading ? "reloading" :
			   atomic_load(&s->r.hdr->sup_state) == FG_SUP_DEGRADED ? "degraded" : "running",
			   ready, s->nworkers, (unsigned long long)atomic_load(&s->r.hdr->restarts));
		s->next_status_ns = now + 1000000000ull;
	}
	if (!s->wd_usec || now < s->next_wd_ns)
		return;
	uint64_t fresh = (uint64_t)s->cfg->heartbeat_ms * 3000000ull, cnow = fg_coarse_ns();
	int live = 0;
	for (uint32_t i = 0; i < s->nworkers; i++) {
		if (s->kids[i].pidfd < 0)
			continue;
		live++;
		uint64_t hb = atomic_load_explicit(&fg_slot(&s->r, i)->heartbeat_ns, memory_order_relaxed);
		if (cnow > hb && cnow - hb > fresh)
			return;   /* a hung worker: systemd's watchdog may act */
	}
	if (live == 0)
		return;
	sd_notify(0, "WATCHDOG=1");
	s->next_wd_ns = now + s->wd_usec * 500ull;
}

static void notify_status(sup_t *s)
{
	uint32_t ready = 0;
	for (uint32_t i = 0; i < s->nworkers; i++)
		if (atomic_load(&fg_slot(&s->r, i)->state) == FG_SLOT_READY)
			ready++;
	if (!s->ready_sent && ready == s->nworkers) {
		s->ready_sent = 1;
		if (atomic_load(&s->r.hdr->sup_state) == FG_SUP_STARTING)
			atomic_store(&s->r.hdr->sup_state, FG_SUP_RUNNING);
		log_info("all %u workers ready", s->nworkers);
		sd_notifyf(0, "READY=1\nSTATUS=%u/%u workers ready", ready, s->nworkers);
	}
}

/* region.retain_s: finished sessions older than that are freed, every
 * tenth of the retention (1 s to 60 s). */
static void retention(sup_t *s, uint64_t now)
{
	if (!s->cfg->retain_s || now < s->next_purge_ns)
		return;
	uint64_t every = (uint64_t)s->cfg->retain_s * 100000000ull;   /* / 10, in ns */
	if (every < 1000000000ull)
		every = 1000000000ull;
	if (every > 60000000000ull)
		every = 60000000000ull;
	s->next_purge_ns = now + every;
	uint64_t keep = (uint64_t)s->cfg->retain_s * 1000000000ull;
	if (now <= keep)
		return;
	uint32_t n = fg_session_purge(&s->a, now - keep, FG_PURGE_FINISHED);
	if (n)
		log_debug("retention: %u finished sessions older than %u s freed", n,
			  s->cfg->retain_s);
}

static void tick(sup_t *s)
{
	uint64_t now = fg_now_ns(), x;
	ssize_t rd = read(s->tfd, &x, sizeof(x));
	(void)rd;
	atomic_store(&s->r.hdr->sup_heartbeat_ns, now);
	int ferr = atomic_exchange(&flusher_errno, 0);
	if (ferr)
		log_errx("region.durability: batch: flushing %s failed: %s (commits since the "
			 "last good flush may not survive a power loss)", s->cfg->region_path,
			 strerror(ferr));
	if (s->stopping)
		return;
	for (uint32_t i = 0; i <= GW; i++) {
		if (i >= s->nworkers && i != GW)
			continue;
		child_t *k = &s->kids[i];
		if (k->pidfd < 0 && !k->disabled && k->restart_at_ns && now >= k->restart_at_ns) {
			k->restart_at_ns = 0;
			spawn(s, i);
		}
	}
	watchdog(s, fg_coarse_ns());
	sweep_clients(s);
	retention(s, now);
	if (now >= s->next_sweep_ns) {
		sweep_sessions(s, now);
		s->next_sweep_ns = now + (uint64_t)s->cfg->sweep_after_ms * 500000ull;
	}
	notify_status(s);
	if (s->ready_sent)
		notify_tick(s, now);
}

/*
 * A region that went through a reboot while in use (no clean stop) under
 * region.durability: none may hold any mix of old and new pages: -1, with
 * why.  (Under batch or sync its logs are checked: durable_start.)
 */
static int torn_by_reboot(fg_region_t *r, const char *path, char *err, size_t errlen)
{
	fg_hdr_t *h = r->hdr;
	char boot[40];
	fg_boot_id(boot);
	if (!h->boot_id[0] || !strcmp(h->boot_id, boot) || h->durability != FG_DUR_NONE ||
	    atomic_load(&h->clean))
		return 0;
	snprintf(err, errlen, "%s was in use when the machine went down (a reboot since "
		 "forged last started on it, and no clean stop) under region.durability: "
		 "none, so writes that never reached the disk may have torn its sessions; "
		 "set region.durability: batch or sync to keep sessions across a reboot",
		 path);
	return -1;
}

/*
 * With every earlier process gone: records this start's durability and
 * boot; after a reboot under batch or sync, cuts every torn log back to
 * its last whole commit; when durability was none and now is not, seals
 * every log (a COMMIT record at its end), so that the check after a
 * future power loss finds one.  Then one flush makes all of it durable.
 */
static void durable_start(sup_t *s)
{
	fg_hdr_t *h = s->r.hdr;
	char boot[40];
	fg_boot_id(boot);
	uint32_t was = h->durability, now = s->cfg->durability;
	int rebooted = h->boot_id[0] && strcmp(h->boot_id, boot) != 0;
	atomic_store(&h->clean, 0);
	atomic_store(&h->sync_leader, 0);
	atomic_store(&h->sync_failed, 0);
	atomic_store(&h->moving, 0);
	if (rebooted) {
		sd_notify(0, "EXTEND_TIMEOUT_USEC=600000000\nSTATUS=checking the region after a reboot");
		fg_durable_reboot_unsafe(&s->r);
	}
	if (rebooted && was != FG_DUR_NONE) {
		uint64_t t0 = fg_now_ns();
		uint32_t checked, cut, freed;
		fg_durable_verify_unsafe(&s->r, &checked, &cut, &freed);
		/* the slots' finish counters may hold finishes the power loss
		 * undid: counting starts again (forgectl check compares them
		 * with the table) */
		for (uint32_t i = 0; i < h->nslots; i++)
			atomic_store(&fg_slot(&s->r, i)->done, 0);
		log_info("after a reboot (durability %s): %u sessions checked in %.1f ms, %u cut "
			 "back to their last whole commit, %u freed (never durable)",
			 fg_durability_name(was), checked, (fg_now_ns() - t0) / 1e6, cut, freed);
	}
	if (now != FG_DUR_NONE && (was == FG_DUR_NONE || atomic_load(&h->sealing))) {
		/* Every log gets a COMMIT at its end, so that the check after a
		 * later power loss finds one.  First what was written under none
		 * goes to the disk, with the flag that says sealing is under way:
		 * a start that finds it set (this one killed part-way) seals again. */
		sd_notify(0, "EXTEND_TIMEOUT_USEC=600000000\nSTATUS=sealing the region's logs");
		atomic_store(&h->sealing, 1);
		if (fdatasync(s->r.fd) < 0)
			log_warn("fdatasync %s", s->cfg->region_path);
		atomic_store(&h->durability, now);
		uint32_t sealed = 0;
		for (uint32_t i = 0; i < h->capacity; i++) {
			fg_session_t *x = fg_sess(&s->r, i);
			uint32_t st = FG_CTL_STATE(atomic_load(&x->ctl));
			if (FG_S_NONE(st) || x->workflow == FG_WF_SYNTHETIC ||
			    fg_session_sealed_unsafe(&s->r, i))
				continue;   /* (ALLOCATING: a live forgectl's, sealed by it) */
			fg_wstate_t ws;
			fg_session_read(&s->r, i, &ws);
			if (fg_session_commit(&s->a, i, &ws, NULL, 0) == 0)
				sealed++;
		}
		if (fdatasync(s->r.fd) < 0)
			log_warn("fdatasync %s", s->cfg->region_path);
		atomic_store(&h->sealing, 0);
		log_info("durability %s: sealed %u sessions' logs", fg_durability_name(now), sealed);
	}
	atomic_store(&h->durability, now);
	snprintf(h->boot_id, sizeof(h->boot_id), "%s", boot);
	if (fdatasync(s->r.fd) < 0)
		log_warn("fdatasync %s", s->cfg->region_path);
}

/* region.durability: batch: one flush every sync_interval_ms, off the
 * supervisor's loop (a slow disk must not delay a recovery).  It takes no
 * lock and calls nothing that does, so a fork beside it is safe. */
static uint32_t flusher_interval_ms;   /* set before the thread starts */

static void *flusher(void *arg)
{
	sup_t *s = arg;
	while (!atomic_load(&flusher_stop)) {
		struct timespec ts = { flusher_interval_ms / 1000,
				       (long)(flusher_interval_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		int rc = fg_durable_flush(&s->r, fg_supervisor_slot(&s->r));
		if (rc < 0)
			atomic_store(&flusher_errno, -rc);
	}
	return NULL;
}

/*
 * The region was made for another geometry (region.sessions,
 * checkpoint_bytes, session_max_bytes, worker.max_inflight): every session
 * is carried to a new file of the new geometry, which then takes the old
 * one's place by rename, so a crash at any point leaves one whole region
 * (the old one until the rename).  Every process of the old boot is gone
 * (we hold the lock); its half-done steps are repaired first, so that
 * nothing is leased.  Refused, with why, when a session would not fit or a
 * forgectl is still attached.  On success s->r is the new region.
 */
/* Whether a live forgectl is attached to r (then err says which). */
static int attached_client(fg_region_t *r, const char *path, char *err, size_t errlen)
{
	for (uint32_t sl = fg_first_client_slot(r); sl < fg_supervisor_slot(r); sl++) {
		uint64_t w = atomic_load_explicit(&fg_slot(r, sl)->owner, memory_order_seq_cst);
		if (w && !(w & FG_OWNER_RECOVERING) &&
		    fg_client_probe(fg_slot(r, sl), &w) != FG_PROBE_DEAD) {
			snprintf(err, errlen, "%s: forgectl (pid %d) is attached to it; let it finish, "
				 "then start forged again to resize the region", path,
				 (int)FG_OWNER_PID(w));
			return 1;
		}
	}
	return 0;
}

static int migrate(sup_t *s, const fg_region_params_t *p, char *err, size_t errlen)
{
	fg_region_t *old = &s->r, nr;
	fg_hdr_t *oh = old->hdr;
	const char *path = s->cfg->region_path;
	uint64_t t0 = fg_now_ns();
	sd_notify(0, "EXTEND_TIMEOUT_USEC=600000000\nSTATUS=resizing the region");
	/* No client may attach from here on (fg_client_attach looks at moving
	 * after its own CAS: a seq_cst pair), and none may be attached now. */
	atomic_store_explicit(&oh->moving, 1, memory_order_seq_cst);
	if (attached_client(old, path, err, errlen)) {
		atomic_store(&oh->moving, 0);
		return -1;
	}
	fg_actor_t a;
	uint32_t sup = fg_supervisor_slot(old);
	fg_actor_init(&a, old, sup);
	fg_session_recover_slot(&a, sup, atomic_load(&fg_slot(old, sup)->gen));
	atomic_fetch_add(&fg_slot(old, sup)->gen, 1);
	fg_actor_init(&a, old, sup);
	fg_session_recover_all_unsafe(&a);
	uint64_t max_log = p->max_log > p->log_bytes ? p->max_log : p->log_bytes;
	uint32_t kept = 0;
	for (uint32_t i = 0; i < oh->capacity; i++) {
		fg_session_t *x = fg_sess(old, i);
		uint32_t st = FG_CTL_STATE(atomic_load(&x->ctl));
		uint32_t len = FG_CKPT_LEN(atomic_load(&x->ckpt));
		if (st == FG_S_FREE)
			continue;
		kept++;
		if (i >= p->capacity) {
			snprintf(err, errlen, "%s: session record %u is in use (%s), and region.sessions: "
				 "%u would not hold it: keep region.sessions at %u or more, or purge "
				 "finished sessions first (forgectl purge)", path, i, fg_state_name(st),
				 p->capacity, i + 1);
			return -1;
		}
		if (len > max_log) {
			snprintf(err, errlen, "%s: session record %u holds a %u-byte conversation, more "
				 "than region.session_max_bytes: %llu: keep it at %u or more", path, i,
				 len, (unsigned long long)max_log, len);
			return -1;
		}
	}
	char np[4200];
	snprintf(np, sizeof(np), "%s.new", path);
	unlink(np);   /* a migration that died */
	if (fg_region_create(np, p, &nr, err, errlen) < 0)
		return -1;
	fg_hdr_t *nh = nr.hdr;
	nh->magic = 0;   /* not valid until complete */
	nh->epoch = oh->epoch;   /* the ids stay the same */
	nh->created_ns = oh->created_ns;
	atomic_store(&nh->sup_boots, atomic_load(&oh->sup_boots));
	atomic_store(&nh->recoveries, atomic_load(&oh->recoveries));
	atomic_store(&nh->restarts, atomic_load(&oh->restarts));
	atomic_store(&nh->purged, atomic_load(&oh->purged));
	atomic_store(&nh->reopened, atomic_load(&oh->reopened));
	atomic_store(&nh->sealing, atomic_load(&oh->sealing));
	atomic_store(&nh->durability, atomic_load(&oh->durability));
	memcpy(nh->boot_id, oh->boot_id, sizeof(nh->boot_id));
	for (uint32_t i = 0; i < nh->nslots && i < oh->nslots; i++)
		memcpy((void *)fg_slot(&nr, i), (const void *)fg_slot(old, i), sizeof(fg_slot_t));
	uint32_t n = oh->capacity < nh->capacity ? oh->capacity : nh->capacity;
	for (uint32_t i = 0; i < n; i++) {
		int rc = fg_session_copy_unsafe(&nr, old, i);
		if (rc < 0) {
			snprintf(err, errlen, "%s: copying session record %u: %s", np, i, strerror(-rc));
			fg_region_close(&nr);
			unlink(np);
			return -1;
		}
	}
	atomic_thread_fence(memory_order_seq_cst);
	nh->magic = FG_REGION_MAGIC;
	if (attached_client(old, path, err, errlen)) {   /* (cannot be: moving is set) */
		fg_region_close(&nr);
		unlink(np);
		atomic_store(&oh->moving, 0);
		return -1;
	}
	if (fdatasync(nr.fd) < 0 || rename(np, path) < 0) {
		snprintf(err, errlen, "%s: cannot put the resized region in place: %s", path,
			 strerror(errno));
		fg_region_close(&nr);
		unlink(np);
		return -1;
	}
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		int dfd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	log_info("resized region %s: sessions %u -> %u, checkpoint_bytes %u -> %u, "
		 "session_max_bytes %llu -> %llu, max_inflight %u -> %u; %u sessions kept "
		 "(%.1f ms)", path, oh->capacity, nh->capacity, oh->log_bytes, nh->log_bytes,
		 (unsigned long long)fg_log_max(old), (unsigned long long)fg_log_max(&nr),
		 oh->max_inflight, nh->max_inflight, kept, (fg_now_ns() - t0) / 1e6);
	fg_region_close(old);
	s->r = nr;
	return 0;
}

static int open_region(sup_t *s, const fg_sup_opts_t *o)
{
	const fg_config_t *c = s->cfg;
	fg_region_params_t p = { c->sessions, c->max_inflight, c->checkpoint_bytes,
				 c->session_max_bytes };
	char err[8192];
	struct stat st;

	if (stat(c->region_path, &st) == 0) {
		int rc = fg_region_open(c->region_path, 1, &s->r, err, sizeof(err));
		if (rc == 0) {
			fg_hdr_t *h = s->r.hdr;
			fg_hdr_t want;
			if (h->capacity == p.capacity && h->max_inflight == p.max_inflight &&
			    h->log_bytes == p.log_bytes && fg_region_layout(&p, &want) == 0 &&
			    want.sections[FG_SEC_OVERFLOW].size == h->sections[FG_SEC_OVERFLOW].size) {
				if (torn_by_reboot(&s->r, c->region_path, err, sizeof(err)) == 0) {
					log_info("re-attached region %s (%u sessions)",
						 c->region_path, h->capacity);
					return 0;
				}
				fg_region_close(&s->r);
				goto refuse;
			}
			if (!o->reset) {
				if (torn_by_reboot(&s->r, c->region_path, err, sizeof(err)) == 0 &&
				    migrate(s, &p, err, sizeof(err)) == 0)
					return 0;
				atomic_store(&s->r.hdr->moving, 0);   /* clients may attach again */
				log_errx("cannot resize the region: %s", err);
				fg_region_close(&s->r);
				return -1;
			}
			snprintf(err, sizeof(err), "%s: made for sessions=%u, checkpoint_bytes=%u, "
				 "session_max_bytes=%llu, max_inflight=%u but the configuration asks "
				 "for %u, %u, %u, %u", c->region_path, h->capacity, h->log_bytes,
				 (unsigned long long)fg_log_max(&s->r), h->max_inflight,
				 p.capacity, p.log_bytes, p.max_log, p.max_inflight);
			fg_region_close(&s->r);
		}
refuse:
		if (!o->reset) {
			log_errx("refusing region %s; its sessions are kept as they are. "
				 "Start with --reset to delete it and create a new one", err);
			return -1;
		}
		log_warnx("--reset: deleting region (%s)", err);
		if (unlink(c->region_path) < 0) {
			log_warn("unlink %s", c->region_path);
			return -1;
		}
	}
	if (fg_region_create(c->region_path, &p, &s->r, err, sizeof(err)) < 0) {
		log_errx("cannot create the region: %s", err);
		return -1;
	}
	log_info("created region %s (%u sessions, %.1f MiB)", c->region_path, p.capacity,
		 s->r.size / 1048576.0);
	return 0;
}

static void begin_stop(sup_t *s, int sig)
{
	if (s->stopping)
		return;
	s->stopping = 1;
	s->stop_deadline_ns = fg_now_ns() + (uint64_t)s->cfg->shutdown_timeout_ms * 1000000ull;
	log_info("signal %s: draining (timeout %u ms)", fg_signal_name(sig),
		 s->cfg->shutdown_timeout_ms);
	sd_notify(0, "STOPPING=1");
	atomic_store(&s->r.hdr->draining, 1);
	atomic_store(&s->r.hdr->sup_state, FG_SUP_DRAINING);
	fg_doorbell_wake_all(&s->r, 0);   /* (sleeping workers see the drain now) */
	for (uint32_t i = 0; i <= GW; i++)
		if (s->kids[i].pidfd >= 0)
			fg_pidfd_send_signal(s->kids[i].pidfd, SIGTERM);
}

static int alive_children(sup_t *s)
{
	int n = 0;
	for (uint32_t i = 0; i <= GW; i++)
		n += s->kids[i].pidfd >= 0;
	return n;
}

int fg_supervisor_run(const fg_config_t *cfg, const fg_sup_opts_t *opts)
{
	sup_t s;
	memset(&s, 0, sizeof(s));
	s.cfg = cfg;
	s.nworkers = cfg->workers;
	for (uint32_t i = 0; i <= GW; i++)
		s.kids[i].pidfd = -1;

	/* Signals are events from the start: a SIGTERM that arrives while the
	 * region is being created is read by the loop, never lost. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	/* what a dead child leaves running comes to us, not init (strays) */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		log_warn("prctl(PR_SET_CHILD_SUBREAPER): what a dead worker leaves running "
			 "will not be killed");

	s.lockfd = fg_region_lock(cfg->region_path, 0);
	if (s.lockfd == -EWOULDBLOCK) {
		log_warnx("%s.lock is held by another supervisor or the children of one; "
			  "waiting until they are all gone", cfg->region_path);
		s.lockfd = wait_for_lock(cfg);
	}
	if (s.lockfd < 0) {
		errno = -s.lockfd;
		log_warn("cannot lock %s.lock", cfg->region_path);
		return 1;
	}
	if (open_region(&s, opts) < 0)
		return 1;
	/* region.mode: who besides forge may use it (forgectl for the file's
	 * group: the packaged service's "forge" group) */
	if (fchmod(s.r.fd, (mode_t)cfg->region_mode) < 0)
		log_warn("cannot set %s to mode %04o (region.mode)", cfg->region_path,
			 cfg->region_mode);

	fg_hdr_t *h = s.r.hdr;
	uint32_t sup_slot = fg_supervisor_slot(&s.r);
	fg_slot_t *me = fg_slot(&s.r, sup_slot);
	fg_actor_init(&s.a, &s.r, sup_slot);
	/* Every process of an earlier boot is gone (we hold the lock): repair
	 * the old supervisor's own half-done steps, then everyone else's. */
	uint64_t t0 = fg_now_ns();
	fg_session_recover_slot(&s.a, sup_slot, atomic_load(&me->gen));
	atomic_fetch_add(&me->gen, 1);
	atomic_store(&me->pid, (int32_t)getpid());
	atomic_store(&me->starttime, fg_proc_starttime(getpid()));
	atomic_store(&me->state, FG_SLOT_READY);
	fg_actor_init(&s.a, &s.r, sup_slot);
	fg_crash_arm_if("supervisor", s.a.gen);
	atomic_store(&h->cfg_workers, s.nworkers);
	durable_start(&s);
	uint32_t n = fg_session_recover_all_unsafe(&s.a);
	reset_bells(&s.r);
	for (uint32_t i = 0; i <= h->nworker_slots; i++) {   /* workers and the gateway */
		fg_slot_t *sl = fg_slot(&s.r, i);
		if (atomic_load(&sl->state) != FG_SLOT_FREE)
			atomic_store(&sl->state, FG_SLOT_DEAD);
		atomic_store(&sl->pid, 0);
	}
	if (atomic_load(&h->sup_boots) > 0)
		log_info("start-up recovery: %u sessions returned to the queue in %.1f ms", n,
			 (fg_now_ns() - t0) / 1e6);
	atomic_store(&h->draining, 0);
	atomic_store(&h->sup_pid, (int32_t)getpid());
	atomic_fetch_add(&h->sup_boots, 1);
	atomic_store(&h->sup_state, FG_SUP_STARTING);

	s.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s.sigfd < 0 || s.tfd < 0 || s.epfd < 0)
		fatal("cannot set up the event loop");
	struct itimerspec its = { { 0, TICK_MS * 1000000L }, { 0, TICK_MS * 1000000L } };
	timerfd_settime(s.tfd, 0, &its, NULL);
	struct epoll_event ev = { .events = EPOLLIN };
	ev.data.u32 = 1000;
	epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.sigfd, &ev);
	ev.data.u32 = 1001;
	epoll_ctl(s.epfd, EPOLL_CTL_ADD, s.tfd, &ev);

	if (sd_watchdog_enabled(0, &s.wd_usec) <= 0)
		s.wd_usec = 0;
	pthread_t flush_tid;
	flusher_interval_ms = cfg->sync_interval_ms;
	int flushing = cfg->durability == FG_DUR_BATCH &&
		       pthread_create(&flush_tid, NULL, flusher, &s) == 0;
	if (cfg->durability == FG_DUR_BATCH && !flushing)
		fatal("cannot start the flusher thread (region.durability: batch)");
	for (uint32_t i = 0; i < s.nworkers; i++)
		spawn(&s, i);
	if (cfg->http_enabled)
		spawn(&s, GW);
	s.next_sweep_ns = fg_now_ns() + (uint64_t)cfg->sweep_after_ms * 500000ull;

	uint32_t wait_failures = 0;
	for (;;) {
		struct epoll_event evs[16];
		int ne = epoll_wait(s.epfd, evs, 16, TICK_MS * 5);
		if (ne < 0 && errno != EINTR) {
			/* Transient or not, the loop cannot tell: go on, and
			 * give up only when it keeps failing (then systemd
			 * restarts forged; the workers drain and the next
			 * supervisor recovers the region). */
			if (++wait_failures >= 100)
				fatal("epoll_wait failed %u times in a row", wait_failures);
			if (wait_failures == 1)
				log_warn("epoll_wait");
			struct timespec pause = { 0, 1000000 };
			nanosleep(&pause, NULL);
			continue;
		}
		if (ne >= 0)
			wait_failures = 0;   /* (EINTR neither counts nor clears) */
		for (int i = 0; i < ne; i++) {
			uint32_t id = evs[i].data.u32;
			if (id <= GW) {
				child_died(&s, id);
			} else if (id == 1000) {
				struct signalfd_siginfo si;
				while (read(s.sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
					int sig = (int)si.ssi_signo;
					if (sig == SIGCHLD)
						reap_strays(&s);
					else if (sig == SIGTERM || sig == SIGINT)
						begin_stop(&s, sig);
					else if (sig == SIGHUP && !s.stopping)
						begin_reload(&s);
				}
			} else if (id == 1001) {
				tick(&s);
			}
		}
		if (s.stopping) {
			if (alive_children(&s) == 0)
				break;
			if (fg_now_ns() >= s.stop_deadline_ns) {
				log_warnx("shutdown timeout: killing %d workers still running",
					  alive_children(&s));
				for (uint32_t i = 0; i <= GW; i++)
					if (s.kids[i].pidfd >= 0)
						fg_pidfd_send_signal(s.kids[i].pidfd, SIGKILL);
				s.stop_deadline_ns = UINT64_MAX;
			}
		}
	}
	if (flushing) {
		atomic_store(&flusher_stop, 1);
		pthread_join(flush_tid, NULL);
	}
	/* every child is gone: everything to the disk, then "clean" after it */
	int synced = fdatasync(s.r.fd) == 0;
	atomic_store(&h->sup_state, FG_SUP_STOPPED);
	atomic_store(&me->state, FG_SLOT_FREE);
	atomic_store(&me->pid, 0);
	if (synced) {
		atomic_store(&h->clean, 1);
		fdatasync(s.r.fd);
	} else {
		log_warn("fdatasync %s", cfg->region_path);
	}
	log_info("stopped");
	fg_region_close(&s.r);
	close(s.lockfd);
	free(s.cfg_owned);
	free(s.memo);
	return 0;
}
