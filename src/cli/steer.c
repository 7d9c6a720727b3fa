/*
 * steer.c — forgectl's commands that change something: submit (a client
 * slot taken by CAS, so a forgectl killed mid-submit is recovered like a
 * worker), cancel, purge, kill-worker (only after checking the pid through
 * a pidfd), reload and drain (signals to forged).
 */
#include "cli/cli.h"
#include "forge/agents.h"
#include "forge/approval.h"
#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/durable.h"
#include "forge/inspect.h"
#include "forge/log.h"
#include "forge/registry.h"
#include "forge/ring.h"
#include "forge/util.h"
#include "forge/views.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint32_t provider_index(const char *name)
{
	for (uint32_t i = 0; i < CFG.nproviders; i++)
		if (!strcmp(CFG.providers[i].name, name))
			return i;
	die_usage("submit: no provider '%s' in the configuration", name);
	return 0;
}

static int print_durable(fg_actor_t *a, char (*ids)[FG_ID_LEN + 1], uint32_t *n);

/* A client slot of the region, or a message that says why not. */
static int attach(fg_actor_t *a)
{
	int e = fg_client_attach(&R, a);
	if (e == -EAGAIN)
		fprintf(stderr, "forgectl: forged is resizing the region (a new size in the "
			"configuration); try again once it has started\n");
	else if (e < 0)
		fprintf(stderr, "forgectl: all %u client slots are in use\n", FG_CLIENT_SLOTS);
	return e;
}

#ifndef RING_EVERY
#define RING_EVERY 256u   /* forgectl submit --count: doorbell rings (cmd_submit) */
#endif

static int ids_quiet;   /* stdout is /dev/null */
static int ids_gone;    /* stdout was closed (a pipe's reader left) */

/* A submitter stopped by a signal rings first: the sessions it queued
 * since its last ring would otherwise wait for the workers' heartbeat_ms. */
static fg_actor_t *submitting;
/* --jobs: the other submitters' pids (in the first one only) */
static pid_t jobs[FG_MAX_JOBS];

static void submit_stopped(int sig)
{
	if (submitting)
		fg_session_ring(submitting);   /* (atomics and a futex wake: safe here) */
	for (int k = 1; k < FG_MAX_JOBS; k++)
		if (jobs[k] > 0)
			kill(jobs[k], sig);   /* (they ring and stop too) */
	for (int k = 1; k < FG_MAX_JOBS; k++)   /* (before our status goes out) */
		if (jobs[k] > 0)
			while (waitpid(jobs[k], NULL, 0) < 0 && errno == EINTR)
				;
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One id and a newline, written at once (write(2), not stdio: stdio's
 * formatting and line buffering around the same one write were a sixth
 * of forgectl submit --count's samples). */
static void put_id(const char *id)
{
	if (ids_quiet || ids_gone)
		return;
	char line[FG_ID_LEN + 2];
	size_t n = strlen(id), off = 0;
	memcpy(line, id, n);
	line[n++] = '\n';
	while (off < n) {
		ssize_t w = write(1, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ids_gone = 1;   /* (stdout gone: submit stops, as SIGPIPE stopped it) */
			return;
		}
		off += (size_t)w;
	}
}

/* Waits for the other jobs (1 to njobs - 1): bit 0 set if one failed
 * (saying so when a signal killed it), bit 1 if one stopped by SIGPIPE
 * (its stdout closed). */
static int wait_jobs(int njobs)
{
	int r = 0;
	for (int k = 1; k < njobs; k++) {
		int st;
		pid_t w;
		while ((w = waitpid(jobs[k], &st, 0)) < 0 && errno == EINTR)
			;
		if (w < 0) {
			fprintf(stderr, "forgectl: submit: job %d of %d (pid %d) cannot be waited "
				"for: %s\n", k + 1, njobs, (int)jobs[k], strerror(errno));
			jobs[k] = 0;
			r |= 1;
			continue;
		}
		jobs[k] = 0;
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE)
			r |= 2;
		else if (WIFSIGNALED(st))
			fprintf(stderr, "forgectl: submit: job %d of %d was killed by signal %d\n",
				k + 1, njobs, WTERMSIG(st));
		if (WIFSIGNALED(st) ? WTERMSIG(st) != SIGPIPE : WEXITSTATUS(st) != 0)
			r |= 1;
	}
	return r;
}

int cmd_submit(const char *arg)
{
	(void)arg;
	fg_submit_t p = { 0 };
	fg_buf_t ab = { NULL, 0, 0, 0, 0xffffffffu, 1, 0 };
	if (o.agent) {
		/* a named agent: its workflow, prompts, parameters and limits,
		 * copied into the session (agents.h) */
		if (!have_cfg)
			die_usage("submit: --agent needs the configuration (-c FILE)%s", "");
		fg_agent_cfg_t *ag = (fg_agent_cfg_t *)fg_config_agent(&CFG, o.agent, strlen(o.agent));
		char serr[800];
		if (!ag)
			die_usage("submit: no agent '%s' in the configuration", o.agent);
		if (fg_config_agent_system(ag, serr, sizeof(serr)) < 0) {
			fprintf(stderr, "forgectl: submit: %s\n", serr);
			return 1;
		}
		if (o.workflow)
			die_usage("submit: --agent runs the agent's workflow: leave --workflow out%s", "");
		if (!o.prompt || !*o.prompt)
			die_usage("submit: --prompt TEXT is required%s", "");
		p.workflow = ag->workflow;
		p.arg = provider_index(o.provider ? o.provider : ag->provider[0] ? ag->provider :
				       CFG.llm_default);
		p.steps = o.max_steps > 0 ? (uint32_t)o.max_steps : ag->max_steps ? ag->max_steps :
			  ag->workflow == FG_WF_REACT ? CFG.max_steps : (uint32_t)o.max_parts;
		int ae = fg_agent_records(ag, &CFG.providers[p.arg], NULL, &ab);
		if (ae == -2)
			die_usage("submit: agent %s has a cost_budget, and that provider has no prices "
				  "(llm.providers.NAME.price_prompt_per_mtok)", ag->name);
		if (ae == 0) {
			if (o.system)
				fg_buf_rec(&ab, FG_REC_SYSTEM, o.system, strlen(o.system));
			fg_buf_rec(&ab, FG_REC_USER, o.prompt, strlen(o.prompt));
		}
		if (ab.oom || ab.overflow) {
			fprintf(stderr, "forgectl: submit: out of memory\n");
			free(ab.p);
			return 1;
		}
		p.recs = ab.p;
		p.recs_n = ab.n;
		p.prompt = o.prompt;
	} else if (!o.workflow) {
		die_usage("submit: --workflow (or --agent) is required%s", "");
	} else if (!strcmp(o.workflow, "synthetic")) {
		if (o.steps < 0)
			die_usage("submit: --steps K is required for the synthetic workflow%s", "");
		p.workflow = FG_WF_SYNTHETIC;
		p.steps = (uint32_t)o.steps;
		p.arg = (uint32_t)o.delay_us;
	} else if (!strcmp(o.workflow, "react") || !strcmp(o.workflow, "map_reduce") ||
		   !strcmp(o.workflow, "plan_execute")) {
		int mr = o.workflow[0] == 'm' || o.workflow[0] == 'p';
		if (!o.prompt || !*o.prompt)
			die_usage("submit: --prompt TEXT is required for this workflow%s", "");
		if ((o.provider || o.child_provider) && !have_cfg)
			die_usage("submit: --provider and --child-provider need the configuration "
				  "(-c FILE)%s", "");
		uint32_t prov = provider_index(o.provider ? o.provider : CFG.llm_default);
		p.workflow = o.workflow[0] == 'm' ? FG_WF_MAP_REDUCE :
			     o.workflow[0] == 'p' ? FG_WF_PLAN_EXECUTE : FG_WF_REACT;
		p.arg = prov;
		if (mr && o.child_provider)
			p.arg |= (provider_index(o.child_provider) + 1) << 16;
		p.steps = mr ? (uint32_t)o.max_parts
			     : (uint32_t)(o.max_steps > 0 ? o.max_steps : (long)CFG.max_steps);
		p.prompt = o.prompt;
		p.system = o.system;
	} else {
		die_usage("submit: unknown workflow '%s' (synthetic, react, plan_execute or "
			  "map_reduce)", o.workflow);
	}
	/* --jobs J: J processes, each with a client slot of its own, submit a
	 * share each (count / J, the first count % J one more): one submitter
	 * cannot queue as fast as many workers take.  Each id is written by
	 * the process that queued it, one write(2) a line, so lines do not
	 * mix; the order of the lines across processes is not the shares'. */
	int job = 0, njobs = 1;
	long count = o.count;
	if (o.jobs > 1 && o.count > 1) {
		pid_t parent = getpid();
		njobs = (int)(o.jobs < o.count ? o.jobs : o.count);
		fflush(stdout);
		fflush(stderr);
		/* (a caller may leave SIGCHLD ignored: no job could be waited for) */
		signal(SIGCHLD, SIG_DFL);
		for (job = 1; job < njobs; job++) {
			pid_t c = fork();
			if (c < 0) {
				fprintf(stderr, "forgectl: submit: fork: %s: the %d jobs started are "
					"stopped (the ids they printed are queued)\n", strerror(errno),
					job - 1);
				for (int k = 1; k < job; k++)
					kill(jobs[k], SIGTERM);
				free(ab.p);
				wait_jobs(job);
				return 1;
			}
			if (c == 0) {   /* a job: it stops when the first forgectl dies */
				memset(jobs, 0, sizeof(jobs));
				prctl(PR_SET_PDEATHSIG, SIGTERM);
				if (getppid() != parent)
					raise(SIGTERM);
				break;
			}
			jobs[job] = c;
		}
		if (job == njobs)
			job = 0;
		count = o.count / njobs + (job < o.count % njobs);
	}
	fg_actor_t a;
	fg_crash_arm();
	if (attach(&a) < 0) {
		if (njobs > 1)
			fprintf(stderr, "forgectl: submit (job %d of %d): %ld sessions not submitted\n",
				job + 1, njobs, count);
		free(ab.p);
		if (job == 0)
			wait_jobs(njobs);
		return 1;
	}
	/* One line per id as soon as it is queued, so that a caller killed (or
	 * a forgectl killed) part-way knows exactly which sessions exist.  Under
	 * region.durability: sync, as soon as it is durable: ids are held until
	 * one flush covers up to 256 of them (group commit), so a forgectl
	 * killed part-way may leave up to 256 queued sessions whose ids it
	 * never printed (they run; forgectl sessions lists them). */
	fflush(stdout);   /* (ids go out with write(2) below, one line each) */
	/* Many in a row ring the workers' doorbell once every RING_EVERY
	 * sessions (and before a flush and at the end): each ring wakes every
	 * sleeping worker, and with fewer cores than processes each wake-up
	 * preempts this submitter.  A forgectl killed before its last ring
	 * leaves those sessions queued until the workers' heartbeat_ms wait
	 * ends (100 ms by default) or the supervisor's sweep. */
	a.ring_every = count > 1 ? RING_EVERY : 0;
	/* ids sent to /dev/null are not written (as GNU tar skips an archive
	 * there): one write(2) per id was a quarter of a submit's time */
	struct stat so, sn;
	ids_quiet = fstat(1, &so) == 0 && S_ISCHR(so.st_mode) && stat("/dev/null", &sn) == 0 &&
		    S_ISCHR(sn.st_mode) && so.st_rdev == sn.st_rdev;
	/* A closed stdout (forgectl submit ... | head -1) or a signal stops it
	 * after one last ring, not before (see submit_stopped). */
	submitting = &a;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, submit_stopped);
	signal(SIGTERM, submit_stopped);
	signal(SIGHUP, submit_stopped);
	int rc = 0, durable = atomic_load(&R.hdr->durability) == FG_DUR_SYNC;
	static char held[256][FG_ID_LEN + 1];
	uint32_t nheld = 0;
	for (long i = 0; i < count && !ids_gone; i++) {
		fg_handle_t h;
		char id[FG_ID_LEN + 1];
		if (nheld == 256 && (rc = print_durable(&a, held, &nheld)) != 0)
			break;
		int e = fg_session_submit(&a, &p, &h);
		if (e < 0) {
			char who[32] = "";
			if (njobs > 1)
				snprintf(who, sizeof(who), " (job %d of %d)", job + 1, njobs);
			fprintf(stderr, "forgectl: submit%s %ld of %ld: %s\n", who, i + 1, count,
				e == -ENOSPC ? "the session table is full" :
				e == -E2BIG ? "the prompt is longer than a session may hold "
					      "(region.session_max_bytes)" :
				e == -EDQUOT ? "no space left on the region's file system" :
				strerror(-e));
			rc = 1;
			break;
		}
		if (durable) {   /* (held, to flush, even when none is printed) */
			fg_id_format(&R, h, id);
			memcpy(held[nheld++], id, sizeof(id));
		} else if (!ids_quiet) {
			fg_id_format(&R, h, id);
			put_id(id);
		}
	}
	fg_session_ring(&a);
	if (nheld && print_durable(&a, held, &nheld) != 0)
		rc = 1;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	submitting = NULL;
	fg_client_detach(&a);
	free(ab.p);
	if (job == 0 && njobs > 1) {
		int jr = wait_jobs(njobs);
		rc |= jr & 1;
		ids_gone |= jr >> 1;
	}
	if (ids_gone) {   /* ends as it did before: by SIGPIPE */
		signal(SIGPIPE, SIG_DFL);
		raise(SIGPIPE);
	}
	return rc;
}

/* Flushes the region, then prints the ids it made durable. */
static int print_durable(fg_actor_t *a, char (*ids)[FG_ID_LEN + 1], uint32_t *n)
{
	fg_session_ring(a);   /* (the flush may take milliseconds) */
	int e = fg_durable_flush(a->r, a->slot);
	if (e < 0) {
		fprintf(stderr, "forgectl: submit: flushing the region failed (%s): the last %u "
			"sessions are queued but may not survive a power loss\n", strerror(-e), *n);
		return 1;
	}
	for (uint32_t i = 0; i < *n; i++)
		put_id(ids[i]);
	*n = 0;
	return 0;
}

int cmd_kill_worker(const char *slot_s)
{
	long slot = num_arg("kill-worker", slot_s, 0, FG_MAX_WORKERS - 1);
	int sig = SIGKILL;
	if (o.signal && (sig = fg_signal_parse(o.signal)) < 0)
		die_usage("kill-worker: unknown signal '%s'", o.signal);
	fg_slot_t *s = fg_slot(&R, (uint32_t)slot);
	int32_t pid = atomic_load(&s->pid);
	uint64_t st = atomic_load(&s->starttime);
	if (pid <= 0 || st == 0) {
		fprintf(stderr, "forgectl: worker %ld has no live process (state %s)\n", slot,
			fg_slot_state_name(atomic_load(&s->state)));
		return 1;
	}
	/* pidfd first, then check the pid is still that worker: no reused pid
	 * can be signalled. */
	int fd = fg_pidfd_open(pid);
	if (fd < 0 || !fg_proc_alive(pid, st) || atomic_load(&s->pid) != pid) {
		fprintf(stderr, "forgectl: worker %ld: pid %d is no longer that worker\n", slot,
			(int)pid);
		return 1;
	}
	if (fg_pidfd_send_signal(fd, sig) < 0) {
		fprintf(stderr, "forgectl: kill-worker %ld (pid %d): %s\n", slot, (int)pid,
			strerror(errno));
		return 1;
	}
	close(fd);
	if (!o.json)
		printf("sent SIG%s to worker %ld (pid %d)\n", fg_signal_name(sig), slot, (int)pid);
	return 0;
}

/* Signals the supervisor that holds the region, after checking with a
 * pidfd and its start time that the pid is still that supervisor. */
static int signal_supervisor(int sig, const char *what)
{
	fg_slot_t *sl = fg_slot(&R, fg_supervisor_slot(&R));
	int32_t pid = atomic_load(&sl->pid);
	uint64_t st = atomic_load(&sl->starttime);
	int fd = pid > 0 ? fg_pidfd_open(pid) : -1;
	if (fd < 0 || !fg_proc_alive(pid, st) || atomic_load(&sl->pid) != pid) {
		fprintf(stderr, "forgectl: %s: no supervisor is running on this region\n", what);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (fg_pidfd_send_signal(fd, sig) < 0) {
		fprintf(stderr, "forgectl: %s: signalling pid %d: %s\n", what, (int)pid, strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	return 0;
}

int cmd_cancel(const char *id)
{
	fg_handle_t h;
	uint32_t st;
	if (parse_id(id, &h) < 0)
		return 1;
	fg_crash_arm();
	int rc = fg_session_cancel(&R, NULL, h, &st);
	if (rc == -ENOENT) {
		fprintf(stderr, "forgectl: no session %s\n", id);
		return 1;
	}
	if (rc == -EALREADY) {
		fprintf(stderr, "forgectl: session %s already ended (%s)\n", id, fg_state_name(st));
		return 1;
	}
	printf("%s %s\n", id, st == FG_S_RUNNING ? "cancelling (its worker ends it)" : "cancelled");
	return 0;
}

const char *say_text;

/* say and resume: a finished session takes rec and runs again. */
static int continue_session(const char *id, const uint8_t *rec, uint32_t n, int resume)
{
	fg_handle_t h;
	char err[300] = "";
	int replayed;
	if (parse_id(id, &h) < 0)
		return 1;
	fg_actor_t a;
	fg_crash_arm();
	if (attach(&a) < 0)
		return 1;
	int e = fg_thread_continue(&a, h, rec, n, resume, NULL, &replayed, err, sizeof(err));
	int fe = e == 0 ? fg_durable_wait(&R, a.slot) : 0;
	fg_client_detach(&a);
	if (e < 0) {
		fprintf(stderr, "forgectl: %s: session %s: %s\n", resume ? "resume" : "say", id, err);
		return 1;
	}
	if (fe < 0) {
		fprintf(stderr, "forgectl: %s: session %s is queued, but flushing the region "
			"failed (%s)\n", resume ? "resume" : "say", id, strerror(-fe));
		return 1;
	}
	printf("%s queued\n", id);
	return 0;
}

int cmd_say(const char *id)
{
	size_t n = strlen(say_text);
	if (n == 0)
		die_usage("say: %s must not be empty", "TEXT");
	uint8_t *rec = malloc(n + FG_REC_HDR);
	if (!rec) {
		fprintf(stderr, "forgectl: out of memory\n");
		return 1;
	}
	fg_buf_t b = { rec, 0, (uint32_t)(n + FG_REC_HDR), 0 };
	fg_buf_rec(&b, FG_REC_USER, say_text, n);
	int rc = continue_session(id, rec, b.n, 0);
	free(rec);
	return rc;
}

/* fork ID [--at N] [TEXT]: a new session from a past point of ID. */
int cmd_fork(const char *id)
{
	fg_handle_t h, nh;
	char err[300] = "";
	if (parse_id(id, &h) < 0)
		return 1;
	if (say_text && !*say_text)
		die_usage("fork: %s must not be empty (leave it out to fork without one)", "TEXT");
	fg_actor_t a;
	fg_buf_t b;
	fg_submit_t p;
	fg_crash_arm();
	int e = fg_fork_prepare(&R, h, o.at < 0 ? UINT32_MAX : (uint32_t)o.at, say_text,
				say_text ? strlen(say_text) : 0, &b, &p, err, sizeof(err));
	if (e < 0) {
		fprintf(stderr, "forgectl: fork: session %s: %s\n", id, err);
		free(b.p);
		return 1;
	}
	if (attach(&a) < 0) {
		free(b.p);
		return 1;
	}
	e = fg_session_submit(&a, &p, &nh);
	int fe = e == 0 ? fg_durable_wait(&R, a.slot) : 0;
	fg_client_detach(&a);
	free(b.p);
	if (e < 0) {
		fprintf(stderr, "forgectl: fork: %s\n", e == -ENOSPC ? "the session table is full" :
			e == -E2BIG ? "the conversation is longer than a session may hold "
				      "(region.session_max_bytes)" :
			e == -EDQUOT ? "no space left on the region's file system" : strerror(-e));
		return 1;
	}
	char nid[FG_ID_LEN + 1];
	fg_id_format(&R, nh, nid);
	if (fe < 0) {
		fprintf(stderr, "forgectl: fork: session %s is queued, but flushing the region "
			"failed (%s)\n", nid, strerror(-fe));
		return 1;
	}
	printf("%s\n", nid);
	return 0;
}

int cmd_resume(const char *id)
{
	uint8_t rec[FG_REC_HDR];
	fg_buf_t b = { rec, 0, sizeof(rec), 0 };
	fg_buf_rec(&b, FG_REC_RESUME, "", 0);
	return continue_session(id, rec, b.n, 1);
}

int cmd_reload(const char *arg)
{
	(void)arg;
	/* An invalid file is refused here already, with its error; forged
	 * checks again and keeps the running configuration if it must. */
	if (have_cfg)
		printf("%s: configuration is valid\n", CFG.file);
	uint32_t seq = atomic_load_explicit(&R.hdr->reload.seq, memory_order_acquire);
	if (signal_supervisor(SIGHUP, "reload"))
		return 1;
	int32_t pid = atomic_load(&fg_slot(&R, fg_supervisor_slot(&R))->pid);
	/* forged says what it made of it (region.h: reload) */
	uint64_t deadline = fg_now_ns() + 10000000000ull;
	while (atomic_load_explicit(&R.hdr->reload.seq, memory_order_acquire) == seq) {
		if (fg_now_ns() >= deadline) {
			fprintf(stderr, "forgectl: reload: forged (pid %d) did not answer within 10 s\n",
				(int)pid);
			return 1;
		}
		usleep(10000);
	}
	if (!atomic_load(&R.hdr->reload.ok)) {
		fprintf(stderr, "forgectl: forged (pid %d) refused the reload: %.248s; the running "
			"configuration stays\n", (int)pid, R.hdr->reload.msg);
		return FG_EX_CONFIG;
	}
	printf("reload accepted by forged (pid %d): workers restart one at a time\n", (int)pid);
	return 0;
}

int cmd_purge(const char *arg)
{
	(void)arg;
	uint32_t mask = FG_PURGE_FINISHED;
	if (o.state >= 0) {
		if (o.state < FG_S_DONE)
			die_usage("purge: --state must be done, failed or cancelled (not %s)",
				  fg_state_name((uint32_t)o.state));
		mask = 1u << o.state;
	}
	uint64_t now = fg_now_ns(), age = (uint64_t)o.older_than_s * 1000000000ull;
	/* a client slot: a record whose overflow pages it gives back is held
	 * under its lease meanwhile (recovered like any client's if it dies) */
	fg_actor_t a;
	if (attach(&a) < 0)
		return 1;
	fg_crash_arm();
	uint32_t n = fg_session_purge(&a, age < now ? now - age : 0, mask);
	fg_client_detach(&a);
	if (o.json) {
		json_t *j = json_pack("{s:i,s:I}", "purged", (int)n, "purged_total",
				      (json_int_t)atomic_load(&R.hdr->purged));
		print_json(j);
	} else {
		printf("purged %u sessions (%llu in all)\n", n,
		       (unsigned long long)atomic_load(&R.hdr->purged));
	}
	return 0;
}

int cmd_drain(const char *arg)
{
	(void)arg;
	fg_slot_t *sl = fg_slot(&R, fg_supervisor_slot(&R));
	int32_t pid = atomic_load(&sl->pid);
	uint64_t st = atomic_load(&sl->starttime);
	if (signal_supervisor(SIGTERM, "drain"))
		return 1;
	printf("drain requested from forged (pid %d): in-flight steps finish, sessions "
	       "resume at the next start\n", (int)pid);
	if (o.timeout_s < 0)
		return 0;
	uint64_t deadline = fg_now_ns() + (uint64_t)o.timeout_s * 1000000000ull;
	while (fg_proc_alive(pid, st)) {
		if (fg_now_ns() >= deadline) {
			fprintf(stderr, "forgectl: drain: forged (pid %d) still running after %ld s\n",
				(int)pid, o.timeout_s);
			return 1;
		}
		usleep(20000);
	}
	printf("forged stopped\n");
	return 0;
}

/* approve, reject, answer: a person's answer to a call that waits. */
static int decide(const char *cmd, const char *id, json_t *in)
{
	fg_handle_t h;
	char err[300] = "", by[96];
	if (parse_id(id, &h) < 0) {
		json_decref(in);
		return 1;
	}
	struct passwd *pw = getpwuid(getuid());
	snprintf(by, sizeof(by), "forgectl (uid %u%s%.40s)", (unsigned)getuid(), pw ? " " : "",
		 pw ? pw->pw_name : "");
	fg_actor_t a;
	fg_crash_arm();
	if (attach(&a) < 0) {
		json_decref(in);
		return 1;
	}
	json_t *rec = NULL;
	/* A session that runs (a tool of the same turn, or it has just asked)
	 * takes the answer once it waits: woken by its bell when it parks,
	 * for --timeout seconds (60 unless given). */
	long limit = o.timeout_s >= 0 ? o.timeout_s : 60;
	uint64_t give_up = fg_now_ns() + (uint64_t)limit * 1000000000ull;
	int e = fg_approval_decide(&a, NULL, h, o.call, in, by, 0, NULL, NULL, &rec, err, sizeof(err));
	uint64_t now = fg_now_ns();
	if (e == -EBUSY && now < give_up) {
		fprintf(stderr, "forgectl: %s: session %s is running (a tool of its turn, or it has "
			"just asked): the answer goes in once it waits (for %ld s at most: "
			"--timeout)\n", cmd, id, limit);
		e = fg_approval_decide(&a, NULL, h, o.call, in, by, (long)((give_up - now) / 1000000u),
				       NULL, NULL, &rec, err, sizeof(err));
	}
	if (e == -EBUSY)
		snprintf(err, sizeof(err), "it is still running, not waiting, after %ld s: try "
			 "again (or give --timeout S)", limit);
	int fe = e == 0 ? fg_durable_wait(&R, a.slot) : 0;
	fg_client_detach(&a);
	json_decref(in);
	if (e < 0) {
		fprintf(stderr, "forgectl: %s: session %s: %s\n", cmd, id, err);
		return 1;
	}
	if (fe < 0) {
		fprintf(stderr, "forgectl: %s: session %s: the answer is recorded, but flushing the "
			"region failed (%s)\n", cmd, id, strerror(-fe));
		json_decref(rec);
		return 1;
	}
	if (o.json) {
		print_json(rec);
		return 0;
	}
	printf("%s %s %s%s\n", id, json_string_value(json_object_get(rec, "call_id")),
	       json_string_value(json_object_get(rec, "decision")),
	       e == 1 ? " (recorded before)" : ": queued to go on");
	json_decref(rec);
	return 0;
}

/* A text argument as a JSON string: text that is not UTF-8 is refused
 * (exit 2), not dropped. */
static json_t *text_arg(const char *what, const char *s)
{
	json_t *j = json_string(s);
	if (!j)
		die_usage("%s is not valid UTF-8 text", what);
	return j;
}

int cmd_approve(const char *id)
{
	json_t *in = json_pack("{s:s}", "decision", o.args ? "edit" : "approve");
	if (o.args)
		json_object_set_new(in, "arguments", text_arg("--args", o.args));
	if (o.reason)
		json_object_set_new(in, "reason", text_arg("--reason", o.reason));
	return decide("approve", id, in);
}

int cmd_reject(const char *id)
{
	json_t *in = json_pack("{s:s}", "decision", "reject");
	if (o.reason)
		json_object_set_new(in, "reason", text_arg("--reason", o.reason));
	return decide("reject", id, in);
}

int cmd_answer(const char *id)
{
	json_t *in = json_pack("{s:s}", "decision", "answer");
	json_object_set_new(in, "answer", text_arg("TEXT", say_text));
	return decide("answer", id, in);
}
