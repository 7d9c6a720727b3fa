/*
 * region.c — creating, validating, mapping and locking the shared region.
 * The layout itself is include/forge/region.h.  A region is created in a
 * temporary file beside PATH and renamed into place once complete, so a
 * crash during creation never leaves a half-made region at PATH.
 */

#include "forge/region.h"
#include "forge/ring.h"
#include "forge/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint32_t pow2_at_least(uint32_t v)
{
	uint32_t p = 1;
	while (p < v)
		p <<= 1;
	return p;
}

int fg_region_layout(const fg_region_params_t *p, fg_hdr_t *h)
{
	if (p->capacity < 1 || p->capacity > (1u << 24) || p->max_inflight < 1 ||
	    p->max_inflight > 65536 || p->log_bytes > (1u << 20) || p->log_bytes % 8 ||
	    p->max_log > (1u << 30) || (p->max_log && p->max_log < p->log_bytes))
		return -EINVAL;
	memset(h, 0, sizeof(*h));
	h->magic = FG_REGION_MAGIC;
	h->version = FG_REGION_VERSION;
	h->hdr_size = FG_HDR_SIZE;
	h->capacity = p->capacity;
	h->nworker_slots = FG_MAX_WORKERS;
	/* workers, the gateway, clients, the supervisor */
	h->nslots = FG_MAX_WORKERS + 1 + FG_CLIENT_SLOTS + 1;
	h->max_inflight = p->max_inflight;
	h->ring_cap = pow2_at_least(p->capacity < 1024 ? 1024 : p->capacity);
	h->nrings = FG_MAX_WORKERS;
	h->log_bytes = p->log_bytes;
	h->nsections = FG_SEC_N;

	uint64_t off = FG_HDR_SIZE, sz;
	sz = (uint64_t)h->nslots * sizeof(fg_slot_t);
	h->sections[FG_SEC_REGISTRY] = (fg_section_t){ off, sz };
	off = align_up(off + sz, 4096);
	sz = (uint64_t)h->nslots * ((uint64_t)h->max_inflight + 1) * sizeof(uint32_t);
	h->sections[FG_SEC_LEASES] = (fg_section_t){ off, sz };
	off = align_up(off + sz, 4096);
	sz = (uint64_t)h->nrings * fg_ring_stride(h->ring_cap);
	h->sections[FG_SEC_RINGS] = (fg_section_t){ off, sz };
	off = align_up(off + sz, 4096);
	sz = (uint64_t)h->capacity * sizeof(fg_session_t);
	h->sections[FG_SEC_SESSIONS] = (fg_section_t){ off, sz };
	off = align_up(off + sz, 4096);
	sz = (uint64_t)h->capacity * h->log_bytes;
	h->sections[FG_SEC_LOGS] = (fg_section_t){ off, sz };
	off = align_up(off + sz, 4096);
	/* sparse: nothing of it is allocated until a session writes there */
	uint64_t ovf = p->max_log > p->log_bytes ? align_up(p->max_log - p->log_bytes, 4096) : 0;
	sz = (uint64_t)h->capacity * ovf;
	h->sections[FG_SEC_OVERFLOW] = (fg_section_t){ off, sz };
	off = align_up(off + sz, 4096);
	h->total_size = off;
	return 0;
}

int fg_region_validate(const fg_hdr_t *h, uint64_t file_size, char *err, size_t errlen)
{
	if (file_size < FG_HDR_SIZE) {
		snprintf(err, errlen, "file is %llu bytes, smaller than a region header",
			 (unsigned long long)file_size);
		return -1;
	}
	if (h->magic != FG_REGION_MAGIC) {
		snprintf(err, errlen, "bad magic 0x%016llx: not a forge region",
			 (unsigned long long)h->magic);
		return -1;
	}
	if (h->version != FG_REGION_VERSION) {
		snprintf(err, errlen, "layout version %u, this forge reads version %u",
			 h->version, FG_REGION_VERSION);
		return -1;
	}
	if (h->total_size != file_size) {
		snprintf(err, errlen, "header says %llu bytes but the file has %llu (truncated?)",
			 (unsigned long long)h->total_size, (unsigned long long)file_size);
		return -1;
	}
	if (h->capacity < 1 || h->sections[FG_SEC_OVERFLOW].size % h->capacity) {
		snprintf(err, errlen, "overflow section of %llu bytes for %u sessions",
			 (unsigned long long)h->sections[FG_SEC_OVERFLOW].size, h->capacity);
		return -1;
	}
	/* (the overflow is rounded up to a page: a maximum of 1 GiB can come
	 * back a little over it, and lays out the same capped) */
	uint64_t max_log = h->log_bytes + h->sections[FG_SEC_OVERFLOW].size / h->capacity;
	fg_region_params_t p = { h->capacity, h->max_inflight, h->log_bytes,
				 max_log > (1u << 30) ? (1u << 30) : (uint32_t)max_log };
	fg_hdr_t want;
	if (fg_region_layout(&p, &want) < 0) {
		snprintf(err, errlen, "geometry out of range (capacity %u, max_inflight %u, "
			 "log_bytes %u)", h->capacity, h->max_inflight, h->log_bytes);
		return -1;
	}
	if (want.hdr_size != h->hdr_size || want.nslots != h->nslots ||
	    want.nworker_slots != h->nworker_slots || want.ring_cap != h->ring_cap ||
	    want.nrings != h->nrings || want.nsections != h->nsections ||
	    want.total_size != h->total_size ||
	    memcmp(want.sections, h->sections, sizeof(want.sections)) != 0) {
		snprintf(err, errlen, "section table does not match the geometry it declares");
		return -1;
	}
	return 0;
}

static int map_fd(int fd, uint64_t size, int writable, fg_region_t *out)
{
	void *base = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0),
			  MAP_SHARED, fd, 0);
	if (base == MAP_FAILED)
		return -errno;
	out->base = base;
	out->size = size;
	out->fd = fd;
	out->writable = writable;
	out->hdr = base;
	uint8_t *b = base;
	out->slots = (fg_slot_t *)(b + out->hdr->sections[FG_SEC_REGISTRY].off);
	out->leases = (uint32_t *)(b + out->hdr->sections[FG_SEC_LEASES].off);
	out->rings = b + out->hdr->sections[FG_SEC_RINGS].off;
	out->sessions = (fg_session_t *)(b + out->hdr->sections[FG_SEC_SESSIONS].off);
	out->logs = b + out->hdr->sections[FG_SEC_LOGS].off;
	out->ovf = b + out->hdr->sections[FG_SEC_OVERFLOW].off;
	/* No readahead on a fault: the file is mostly holes, and on a disk
	 * file system each fault read ahead (zero-filled) up to megabytes of
	 * them: 90% of a worker's time in memset, 14x slower than tmpfs for
	 * 190 KB conversations (bench/realistic.sh).  Only advice: an error
	 * costs speed, never correctness. */
	madvise(base, size, MADV_RANDOM);
	return 0;
}

int fg_region_create(const char *path, const fg_region_params_t *p,
		     fg_region_t *out, char *err, size_t errlen)
{
	fg_hdr_t h;
	char tmp[4096];
	int fd = -1, rc;

	if (fg_region_layout(p, &h) < 0) {
		snprintf(err, errlen, "region geometry out of range");
		return -EINVAL;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		return rc;
	}
	/* posix_fallocate so that a full filesystem fails here, not as SIGBUS
	 * later; the overflow section stays sparse (a writer reserves what it
	 * writes there first: fg_session_commit). */
	rc = posix_fallocate(fd, 0, (off_t)h.sections[FG_SEC_OVERFLOW].off);
	if (rc == 0 && ftruncate(fd, (off_t)h.total_size) < 0)
		rc = errno;
	if (rc != 0) {
		snprintf(err, errlen, "cannot allocate %llu bytes for %s: %s",
			 (unsigned long long)h.total_size, tmp, strerror(rc));
		rc = -rc;
		goto fail;
	}
	/* Map with a provisional header so that map_fd can find the sections. */
	if (pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		goto fail;
	}
	rc = map_fd(fd, h.total_size, 1, out);
	if (rc < 0) {
		snprintf(err, errlen, "cannot map %s: %s", tmp, strerror(-rc));
		goto fail;
	}
	out->hdr->magic = 0;   /* not valid until complete */
	out->hdr->created_ns = (uint64_t)time(NULL) * 1000000000ull;
	uint64_t ep = 0;
	if (getrandom(&ep, sizeof(ep), 0) != (ssize_t)sizeof(ep) || ep == 0)
		ep = (fg_now_ns() ^ ((uint64_t)getpid() << 32)) * 0x9e3779b97f4a7c15ull | 1;
	out->hdr->epoch = ep;
	for (uint32_t i = 0; i < h.nrings; i++) {
		fg_ring_t *r = fg_ring(out, i);
		fg_ring_init_unsafe(r, h.ring_cap,
			(uint64_t)((uint8_t *)r + sizeof(fg_ring_t) - (uint8_t *)out->base));
	}
	for (uint32_t i = 0; i < h.nslots; i++) {
		fg_slot_t *s = fg_slot(out, i);
		s->kind = i < h.nworker_slots ? FG_KIND_WORKER :
			  i == h.nworker_slots ? FG_KIND_GATEWAY :
			  i == h.nslots - 1 ? FG_KIND_SUPERVISOR : FG_KIND_CLIENT;
	}
	atomic_store(&out->hdr->gateway_slot, h.nworker_slots);
	atomic_thread_fence(memory_order_seq_cst);
	out->hdr->magic = FG_REGION_MAGIC;
	if (msync(out->base, FG_HDR_SIZE, MS_SYNC) < 0 || rename(tmp, path) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot put region in place at %s: %s", path, strerror(errno));
		munmap(out->base, out->size);
		goto fail;
	}
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return rc;
}

int fg_region_open(const char *path, int writable, fg_region_t *out,
		   char *err, size_t errlen)
{
	struct stat st;
	fg_hdr_t h;
	int rc;
	int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);

	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	memset(&h, 0, sizeof(h));
	ssize_t n = pread(fd, &h, sizeof(h), 0);
	if (n < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	char why[256];
	if ((size_t)n < sizeof(h) || fg_region_validate(&h, (uint64_t)st.st_size, why, sizeof(why)) < 0) {
		if ((size_t)n < sizeof(h))
			snprintf(why, sizeof(why), "file is %lld bytes, smaller than a region header",
				 (long long)st.st_size);
		snprintf(err, errlen, "%s: %s", path, why);
		rc = -EINVAL;
		goto fail;
	}
	rc = map_fd(fd, h.total_size, writable, out);
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot map: %s", path, strerror(-rc));
		goto fail;
	}
	return 0;
fail:
	close(fd);
	return rc;
}

void fg_region_close(fg_region_t *r)
{
	if (r->base)
		munmap(r->base, r->size);
	if (r->fd >= 0)
		close(r->fd);
	r->base = NULL;
	r->fd = -1;
}

int fg_region_lock(const char *path, int wait)
{
	char lpath[4096];
	snprintf(lpath, sizeof(lpath), "%s.lock", path);
	int fd = open(lpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	if (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
		int e = errno;
		close(fd);
		return (e == EAGAIN || e == EACCES) ? -EWOULDBLOCK : -e;
	}
	return fd;
}
