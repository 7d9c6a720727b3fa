/*
 * durable.c — region.durability: group-committed flushes of the region
 * file, COMMIT records, and the check of every log after a reboot
 * (include/forge/durable.h).
 *
 * The region is a MAP_SHARED file: its pages are the file's page cache,
 * so fdatasync on it writes back whatever any process stored through its
 * mapping before the call.  What a power loss leaves is every page
 * written back by the last completed fdatasync, plus any mix of later
 * writes, some of them torn.  A session record (128 bytes, 128-aligned)
 * sits in one sector and is written whole; a log is checked by its COMMIT
 * records (a CRC32C of every byte before each), so the last whole commit
 * wins.
 */
#include "forge/durable.h"

#include "forge/conv.h"
#include "forge/crash.h"
#include "forge/log.h"
#include "forge/ring.h"
#include "forge/session.h"
#include "forge/util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/vfs.h>
#include <unistd.h>

#define TMPFS_MAGIC_ 0x01021994
#define RAMFS_MAGIC_ 0x858458f6

/* ------------------------------------------------------------------ */
/* CRC32C (Castagnoli), reflected, as iSCSI and ext4 use it           */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t c, const uint8_t *p, size_t n)
{
	uint64_t c64 = c;
	for (; n >= 8; p += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c64 = __builtin_ia32_crc32di(c64, w);
	}
	c = (uint32_t)c64;
	for (; n; p++, n--)
		c = __builtin_ia32_crc32qi(c, *p);
	return c;
}
#endif

/* Slicing by 8: about 1 byte per cycle where the instruction is missing. */
static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
	pthread_once(&crc_once, crc_init);
	for (; n >= 8; p += 8, n -= 8) {
		uint32_t lo, hi;
		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= c;   /* little-endian hosts (region.h) */
		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		    crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		    crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
	}
	for (; n; p++, n--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *p) & 0xff];
	return c;
}

static int crc_have_hw;

static void crc_detect(void)
{
#if defined(__x86_64__)
	crc_have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
}

uint32_t fg_crc32c(uint32_t crc, const void *p, size_t n)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	uint32_t c = ~crc;
	pthread_once(&once, crc_detect);
#if defined(__x86_64__)
	if (crc_have_hw)
		return ~crc_hw(c, p, n);
#endif
	return ~crc_sw(c, p, n);
}

uint32_t fg_crc_seed(uint32_t sgen)
{
	uint8_t b[4] = { (uint8_t)sgen, (uint8_t)(sgen >> 8), (uint8_t)(sgen >> 16),
			 (uint8_t)(sgen >> 24) };
	return fg_crc32c(0, b, 4);
}

void fg_commit_rec(uint8_t *out, uint32_t crc, uint32_t seq, const fg_wstate_t *st)
{
	uint32_t n = FG_COMMIT_PAYLOAD;
	out[0] = FG_REC_COMMIT;
	out[1] = 0;
	memcpy(out + 2, &n, 4);
	memcpy(out + FG_REC_HDR, &crc, 4);
	memcpy(out + FG_REC_HDR + 4, &seq, 4);
	memcpy(out + FG_REC_HDR + 8, st, sizeof(*st));
}

/* ------------------------------------------------------------------ */

static const char *const dur_names[] = { "none", "batch", "sync" };

int fg_durability_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, dur_names[i]))
			return i;
	return -1;
}

const char *fg_durability_name(uint32_t d)
{
	return d < 3 ? dur_names[d] : "?";
}

int fg_durable_fs_ok(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	struct statfs sf;
	char *d = dirname(dir);
	/* the nearest directory there is (the state directory may not be
	 * made yet: systemd makes it before ExecStart) */
	while (statfs(d, &sf) < 0) {
		if (errno != ENOENT || !strcmp(d, "/") || !strcmp(d, ".")) {
			snprintf(err, errlen, "%s: %s", d, strerror(errno));
			return -1;
		}
		d = dirname(d);
	}
	if ((unsigned long)sf.f_type == TMPFS_MAGIC_ || (unsigned long)sf.f_type == RAMFS_MAGIC_) {
		snprintf(err, errlen, "%s is on %s, which a reboot empties: set region.path to a "
			 "file on a disk file system (the systemd unit uses /var/lib/forge/region), "
			 "or region.durability: none", d,
			 (unsigned long)sf.f_type == TMPFS_MAGIC_ ? "tmpfs" : "ramfs");
		return -1;
	}
	return 0;
}

void fg_boot_id(char out[40])
{
	out[0] = 0;
#ifdef FG_CRASHPOINTS
	const char *t = getenv("FORGE_TEST_BOOT_ID");
	if (t && *t) {
		snprintf(out, 40, "%s", t);
		return;
	}
#endif
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return;
	if (fgets(out, 40, f))
		out[strcspn(out, "\n")] = 0;
	fclose(f);
}

/* ------------------------------------------------------------------ */
/* Group commit                                                         */

#ifdef FG_CRASHPOINTS
/*
 * The power-loss test's recorder (tests/integration/durability.sh): after
 * each flush, before anyone is told it is done, the file as it now is on
 * disk is copied to $FORGE_TEST_SYNC_SHADOW, so that the test can "lose
 * power" by putting that copy (everything synced, and some of what came
 * after) back in place of the region.
 */
static void test_shadow(fg_region_t *r)
{
	const char *p = getenv("FORGE_TEST_SYNC_SHADOW");
	if (!p || !*p)
		return;
	char lk[PATH_MAX], tmp[PATH_MAX];
	snprintf(lk, sizeof(lk), "%s.lock", p);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	int lfd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0 || flock(lfd, LOCK_EX) < 0)
		abort();
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0 || ftruncate(out, (off_t)r->size) < 0)
		abort();
	static char buf[1 << 20];
	off_t at = 0, end = (off_t)r->size;
	while (at < end) {
		off_t d = lseek(r->fd, at, SEEK_DATA);
		if (d < 0)
			break;
		off_t hole = lseek(r->fd, d, SEEK_HOLE);
		if (hole < 0)
			hole = end;
		for (off_t o = d; o < hole;) {
			size_t k = (size_t)(hole - o) < sizeof(buf) ? (size_t)(hole - o) : sizeof(buf);
			ssize_t got = pread(r->fd, buf, k, o);
			if (got <= 0 || pwrite(out, buf, (size_t)got, o) != got)
				abort();
			o += got;
		}
		at = hole;
	}
	if (close(out) < 0 || rename(tmp, p) < 0)
		abort();
	flock(lfd, LOCK_UN);   /* (a child forked meanwhile shares lfd: unlock, not just close) */
	close(lfd);
}
#endif

/*
 * One process's fdatasyncs one at a time: after an EIO Linux reports the
 * error once per open file description and forgets the pages, so a second
 * thread's fdatasync on the same descriptor could return 0 for them.  With
 * the calls in one file, the second sees the first's sticky sync_failed.
 * (Reinitialised in a forked child: the fork may come while the batch
 * flusher holds it.)
 */
static pthread_mutex_t flush_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t flush_once_init = PTHREAD_ONCE_INIT;

static void flush_child(void)
{
	pthread_mutex_init(&flush_mu, NULL);
}

static void flush_setup(void)
{
	pthread_atfork(NULL, NULL, flush_child);
}

/* One flush: a number, fdatasync, then sync_done raised to the number. */
static int flush_once(fg_region_t *r)
{
	fg_hdr_t *h = r->hdr;
	pthread_once(&flush_once_init, flush_setup);
	pthread_mutex_lock(&flush_mu);
	int rc = -(int)atomic_load(&h->sync_failed);
	if (rc) {
		pthread_mutex_unlock(&flush_mu);
		return rc;
	}
	uint64_t e = atomic_fetch_add_explicit(&h->sync_started, 1, memory_order_seq_cst) + 1;
	uint64_t t0 = fg_now_ns();
	FG_CRASHPOINT("durable.flush.before_sync");
	while (fdatasync(r->fd) < 0)
		if (errno != EINTR) {
			rc = -errno;
			break;
		}
#ifdef FG_CRASHPOINTS
	if (rc == 0 && getenv("FORGE_TEST_SYNC_FAIL"))
		rc = -EIO;   /* the test of a failing disk (durability.sh) */
	if (rc == 0)
		test_shadow(r);
#endif
	atomic_fetch_add_explicit(&h->syncs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sync_ns, fg_now_ns() - t0, memory_order_relaxed);
	if (rc < 0) {
		uint32_t z = 0;
		atomic_compare_exchange_strong(&h->sync_failed, &z, (uint32_t)-rc);
	} else if ((rc = -(int)atomic_load(&h->sync_failed)) == 0) {
		uint64_t d = atomic_load_explicit(&h->sync_done, memory_order_acquire);
		while (e > d && !atomic_compare_exchange_weak_explicit(&h->sync_done, &d, e,
				memory_order_acq_rel, memory_order_acquire))
			;
	}
	pthread_mutex_unlock(&flush_mu);
	atomic_fetch_add_explicit(&h->sync_wake, 1, memory_order_release);
	fg_futex_wake(&h->sync_wake);
	return rc;
}

int fg_durable_flush(fg_region_t *r, uint32_t slot)
{
	fg_hdr_t *h = r->hdr;
	if (r->fd < 0)
		return -EBADF;
	/* Every store this process made through the mapping is ordered before
	 * the number read here (the fence: a seq_cst load alone does not order
	 * earlier plain stores); a flush that takes a later number started
	 * after them. */
	atomic_thread_fence(memory_order_seq_cst);
	uint64_t need = atomic_load_explicit(&h->sync_started, memory_order_seq_cst) + 1;
	atomic_fetch_add_explicit(&h->sync_waits, 1, memory_order_relaxed);
	uint64_t last = UINT64_MAX, since = 0;
	for (;;) {
		uint32_t failed = atomic_load(&h->sync_failed);
		if (failed)
			return -(int)failed;
		uint32_t w = atomic_load_explicit(&h->sync_wake, memory_order_acquire);
		uint64_t d = atomic_load_explicit(&h->sync_done, memory_order_acquire);
		if (d >= need)
			return 0;
		uint64_t now = fg_now_ns();
		if (d != last) {   /* progress: patience counts from here */
			last = d;
			since = now;
		}
		uint32_t z = 0;
		if (atomic_compare_exchange_strong_explicit(&h->sync_leader, &z, slot + 1,
				memory_order_acq_rel, memory_order_relaxed)) {
			int rc = flush_once(r);
			uint32_t me = slot + 1;
			atomic_compare_exchange_strong(&h->sync_leader, &me, 0);
			if (rc < 0)
				return rc;
			continue;
		}
		if (now - since >= FG_SYNC_PATIENCE_MS * 1000000ull)
			return flush_once(r);   /* the leader stopped or died: our own */
		fg_futex_wait(&h->sync_wake, w, 5);
	}
}

int fg_durable_wait(fg_region_t *r, uint32_t slot)
{
	if (atomic_load_explicit(&r->hdr->durability, memory_order_relaxed) != FG_DUR_SYNC)
		return 0;
	return fg_durable_flush(r, slot);
}

void fg_durable_recover(fg_region_t *r, uint32_t slot)
{
	uint32_t me = slot + 1;
	atomic_compare_exchange_strong(&r->hdr->sync_leader, &me, 0);
	atomic_fetch_add(&r->hdr->sync_wake, 1);
	fg_futex_wake(&r->hdr->sync_wake);
}

/* ------------------------------------------------------------------ */
/* After a reboot                                                       */

void fg_durable_verify_unsafe(fg_region_t *r, uint32_t *checked, uint32_t *cut,
			      uint32_t *freed)
{
	*checked = *cut = *freed = 0;
	for (uint32_t i = 0; i < r->hdr->capacity; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint64_t c = atomic_load(&s->ctl), w = atomic_load(&s->ckpt);
		uint32_t st = FG_CTL_STATE(c), len = FG_CKPT_LEN(w), sgen = FG_CTL_SGEN(c);
		if (st == FG_S_FREE || s->workflow == FG_WF_SYNTHETIC)
			continue;
		(*checked)++;
		uint8_t *tmp = NULL;
		const uint8_t *log = len <= fg_log_max(r) ? fg_session_log(r, i, len, &tmp) : NULL;
		if (!log && len <= fg_log_max(r)) {
			log_warnx("after the reboot: session record %u (%u log bytes) could not be "
				  "read (out of memory): left as it is, unchecked", i, len);
			continue;
		}
		/* the chain is seeded with the session's generation: bytes of an
		 * earlier session in the record never check out as this one's */
		uint32_t off = 0, crc = fg_crc_seed(sgen), good = 0, good_seq = 0, have = 0;
		int parsed = log != NULL;
		fg_wstate_t good_st;
		memset(&good_st, 0, sizeof(good_st));
		fg_rec_t rec;
		while (log && off < len) {
			uint32_t at = off;
			if (fg_rec_next_raw(log, len, &off, &rec) != 1) {
				parsed = 0;
				break;
			}
			if (rec.type == FG_REC_COMMIT) {
				uint32_t want, seq;
				memcpy(&want, rec.p, 4);
				memcpy(&seq, rec.p + 4, 4);
				if (want != crc) {
					parsed = 0;
					break;
				}
				good = off;
				good_seq = seq;
				memcpy(&good_st, rec.p + 8, sizeof(good_st));
				have = 1;
			}
			crc = fg_crc32c(crc, log + at, off - at);
		}
		free(tmp);
		if (have && good == len)
			continue;   /* whole */
		if (!have && parsed) {
			/* no COMMIT at all, every record whole: a log from before
			 * durability (made durable before sealing began) */
			continue;
		}
		if (!have) {
			/* not one whole commit: never acknowledged under sync */
			uint32_t g = sgen + 1 ? sgen + 1 : 1;
			atomic_store(&s->ctl, FG_CTL_FREE_OF(FG_S_FREE, g));
			(*freed)++;
			log_warnx("after the reboot: session record %u had no whole commit "
				  "(torn before it was ever durable): freed", i);
			continue;
		}
		uint32_t ab = FG_CKPT_AB(w) ^ 1u;
		s->st[ab] = good_st;
		/* what came after the last whole commit goes, so that it never
		 * checks out later (a second power loss) */
		fg_session_log_zero_unsafe(r, i, good, len);
		atomic_store(&s->ckpt, FG_CKPT(good_seq, ab, good));
		if (st == FG_S_DONE || st == FG_S_FAILED) {
			/* (a cancel stays a cancel) */
			atomic_store(&s->ctl, FG_CTL_FREE_OF(FG_S_QUEUED, sgen));
			atomic_store(&s->finished_ns, 0);
		}
		(*cut)++;
		log_warnx("after the reboot: session record %u's log was torn after byte %u of "
			  "%u: cut back to its last whole commit (step %u)", i, good, len,
			  good_st.step);
	}
}

void fg_durable_reboot_unsafe(fg_region_t *r)
{
	fg_hdr_t *h = r->hdr;
	/* rings: their counters and cells are on different pages, written
	 * back in any order; they are hints (the table is the truth), so they
	 * start empty and the start-up pass enqueues every QUEUED session */
	for (uint32_t i = 0; i < h->nrings; i++) {
		fg_ring_t *g = fg_ring(r, i);
		memset((uint8_t *)g + sizeof(fg_ring_t), 0, (size_t)h->ring_cap * sizeof(uint64_t));
		fg_ring_init_unsafe(g, h->ring_cap, g->cells_off);
	}
	for (uint32_t sl = 0; sl < h->nslots; sl++) {
		fg_slot_t *x = fg_slot(r, sl);
		atomic_store(&x->ring_intent, 0);
		atomic_store(&x->ring_pos, 0);
		atomic_store(&x->op_intent, 0);
		atomic_store(&x->inflight, 0);
		if (x->kind == FG_KIND_CLIENT) {   /* every process of that boot is gone */
			atomic_store(&x->owner, 0);
			atomic_store(&x->state, FG_SLOT_FREE);
		}
		memset(fg_lease_table(r, sl), 0, (size_t)fg_lease_n(r) * sizeof(uint32_t));
	}
	/* a session acknowledged under batch and lost with the power may have
	 * handed out (index, generation) ids that its record never kept: the
	 * next session of every free record skips far past them */
	for (uint32_t i = 0; i < h->capacity; i++) {
		fg_session_t *s = fg_sess(r, i);
		uint64_t c = atomic_load(&s->ctl);
		if (FG_CTL_STATE(c) != FG_S_FREE)
			continue;
		uint32_t g = FG_CTL_SGEN(c) + 65536u;
		atomic_store(&s->ctl, FG_CTL_FREE_OF(FG_S_FREE, g ? g : 1));
	}
}
