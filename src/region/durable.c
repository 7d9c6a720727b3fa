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

uint32_t fg_crc32c(uint32_t crc, const void *p, size_t n)
{
	uint32_t c = ~crc;
#if defined(__x86_64__)
	static int hw = -1;
	if (hw < 0)
		hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	if (hw)
		return ~crc_hw(c, p, n);
#endif
	return ~crc_sw(c, p, n);
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
	close(lfd);
}
#endif

/* One flush: a number, fdatasync, then sync_done raised to the number. */
static int flush_once(fg_region_t *r)
{
	fg_hdr_t *h = r->hdr;
	uint32_t e = atomic_fetch_add_explicit(&h->sync_started, 1, memory_order_seq_cst) + 1;
	uint64_t t0 = fg_now_ns();
	int rc = 0;
	FG_CRASHPOINT("durable.flush.before_sync");
	while (fdatasync(r->fd) < 0)
		if (errno != EINTR) {
			rc = -errno;
			break;
		}
#ifdef FG_CRASHPOINTS
	if (rc == 0)
		test_shadow(r);
#endif
	atomic_fetch_add_explicit(&h->syncs, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sync_ns, fg_now_ns() - t0, memory_order_relaxed);
	if (rc == 0) {
		uint32_t d = atomic_load_explicit(&h->sync_done, memory_order_acquire);
		while ((int32_t)(e - d) > 0 &&
		       !atomic_compare_exchange_weak_explicit(&h->sync_done, &d, e,
				memory_order_acq_rel, memory_order_acquire))
			;
	}
	fg_futex_wake(&h->sync_done);
	return rc;
}

int fg_durable_flush(fg_region_t *r, uint32_t slot)
{
	fg_hdr_t *h = r->hdr;
	if (r->fd < 0)
		return -EBADF;
	/* Every store this process made through the mapping is ordered before
	 * the number read here; a flush that takes a later number started
	 * after them. */
	uint32_t need = atomic_load_explicit(&h->sync_started, memory_order_seq_cst) + 1;
	atomic_fetch_add_explicit(&h->sync_waits, 1, memory_order_relaxed);
	uint64_t give_up = 0;
	for (;;) {
		uint32_t d = atomic_load_explicit(&h->sync_done, memory_order_acquire);
		if ((int32_t)(d - need) >= 0)
			return 0;
		uint32_t z = 0;
		if (atomic_compare_exchange_strong_explicit(&h->sync_leader, &z, slot + 1,
				memory_order_acq_rel, memory_order_relaxed)) {
			int rc = flush_once(r);
			atomic_store_explicit(&h->sync_leader, 0, memory_order_release);
			fg_futex_wake(&h->sync_done);
			if (rc < 0)
				return rc;
			continue;
		}
		uint64_t now = fg_now_ns();
		if (give_up == 0) {
			give_up = now + FG_SYNC_PATIENCE_MS * 1000000ull;
		} else if (now >= give_up) {
			/* the leader stopped or died: our own flush covers us */
			return flush_once(r);
		}
		fg_futex_wait(&h->sync_done, d, 5);
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
	fg_futex_wake(&r->hdr->sync_done);
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
		uint32_t st = FG_CTL_STATE(c), len = FG_CKPT_LEN(w);
		if (st == FG_S_FREE || s->workflow == FG_WF_SYNTHETIC)
			continue;
		(*checked)++;
		uint8_t *tmp;
		const uint8_t *log = len <= fg_log_max(r) ? fg_session_log(r, i, len, &tmp) : NULL;
		uint32_t off = 0, crc = 0, good = 0, good_seq = 0, have = 0;
		fg_wstate_t good_st;
		memset(&good_st, 0, sizeof(good_st));
		fg_rec_t rec;
		while (log) {
			uint32_t at = off;
			if (fg_rec_next_raw(log, len, &off, &rec) != 1)
				break;
			if (rec.type == FG_REC_COMMIT) {
				uint32_t want, seq;
				memcpy(&want, rec.p, 4);
				memcpy(&seq, rec.p + 4, 4);
				if (want != crc)
					break;
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
		if (!have) {
			/* not one whole commit: never acknowledged under sync */
			atomic_store(&s->ctl, FG_CTL_FREE_OF(FG_S_FREE, FG_CTL_SGEN(c)));
			(*freed)++;
			log_warnx("after the reboot: session record %u had no whole commit "
				  "(torn before it was ever durable): freed", i);
			continue;
		}
		uint32_t ab = FG_CKPT_AB(w) ^ 1u;
		s->st[ab] = good_st;
		atomic_store(&s->ckpt, FG_CKPT(good_seq, ab, good));
		if (FG_S_FINISHED(st)) {
			atomic_store(&s->ctl, FG_CTL_FREE_OF(FG_S_QUEUED, FG_CTL_SGEN(c)));
			atomic_store(&s->finished_ns, 0);
		}
		(*cut)++;
		log_warnx("after the reboot: session record %u's log was torn after byte %u of "
			  "%u: cut back to its last whole commit (step %u)", i, good, len,
			  good_st.step);
	}
}
