/*
 * bench_ring — ring enqueue+dequeue between processes, ns per item.
 *
 * Producers and consumers are separate processes sharing one MAP_SHARED
 * mapping, as forge's are.  Modes: 1P/1C and 2P/2C with forge's ring
 * (intents on, as in production), and the same traffic through two
 * baselines measured in the same run, the modes interleaved round by round:
 * a bare Vyukov MPMC ring (a sequence per cell, no crash repair: what a
 * crash-repairable ring is measured against) and a process-shared pthread
 * mutex around a plain circular buffer.  Prints one JSON object per figure
 * (median of RUNS runs) on stdout.
 *
 * Usage: bench_ring [ITEMS] [RUNS]
 */
#include "forge/ring.h"
#include "forge/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define CAP 4096

typedef struct shared {
	fg_slot_t slots[8];
	alignas(64) _Atomic uint32_t go;
	alignas(64) _Atomic uint64_t sum;
	alignas(64) pthread_mutex_t mu;
	uint64_t mhead, mtail;
	uint32_t mbuf[CAP];
	/* the bare Vyukov ring */
	alignas(64) _Atomic uint64_t vtail;
	alignas(64) _Atomic uint64_t vhead;
	alignas(64) struct vcell { _Atomic uint64_t seq; uint32_t v; } vcell[CAP];
	alignas(64) uint8_t ring[];
} shared_t;

static shared_t *sh;
static fg_region_t reg;
static fg_hdr_t hdr;

enum mode { M_FORGE, M_VYUKOV, M_MUTEX };

static void vyukov_setup(void)
{
	atomic_store(&sh->vtail, 0);
	atomic_store(&sh->vhead, 0);
	for (uint64_t i = 0; i < CAP; i++)
		atomic_store(&sh->vcell[i].seq, i);
}

static int vyukov_enq(uint32_t v)
{
	uint64_t pos = atomic_load_explicit(&sh->vtail, memory_order_relaxed);
	for (;;) {
		struct vcell *c = &sh->vcell[pos & (CAP - 1)];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&sh->vtail, &pos, pos + 1,
					memory_order_relaxed, memory_order_relaxed)) {
				c->v = v;
				atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
				return 0;
			}
		} else if (dif < 0) {
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&sh->vtail, memory_order_relaxed);
		}
	}
}

static int vyukov_deq(uint32_t *v)
{
	uint64_t pos = atomic_load_explicit(&sh->vhead, memory_order_relaxed);
	for (;;) {
		struct vcell *c = &sh->vcell[pos & (CAP - 1)];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t dif = (int64_t)(seq - (pos + 1));
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(&sh->vhead, &pos, pos + 1,
					memory_order_relaxed, memory_order_relaxed)) {
				*v = c->v;
				atomic_store_explicit(&c->seq, pos + CAP, memory_order_release);
				return 0;
			}
		} else if (dif < 0) {
			return -EAGAIN;
		} else {
			pos = atomic_load_explicit(&sh->vhead, memory_order_relaxed);
		}
	}
}

static void ring_setup(void)
{
	memset(sh->ring, 0, fg_ring_stride(CAP));
	hdr.ring_cap = CAP;
	hdr.nrings = 1;
	reg.hdr = &hdr;
	reg.base = sh->ring;
	reg.rings = sh->ring;
	fg_ring_init_unsafe((fg_ring_t *)sh->ring, CAP, sizeof(fg_ring_t));
}

static int mutex_enq(uint32_t v)
{
	pthread_mutex_lock(&sh->mu);
	int ok = sh->mtail - sh->mhead < CAP;
	if (ok)
		sh->mbuf[sh->mtail++ % CAP] = v;
	pthread_mutex_unlock(&sh->mu);
	return ok ? 0 : -EAGAIN;
}

static int mutex_deq(uint32_t *v)
{
	pthread_mutex_lock(&sh->mu);
	int ok = sh->mtail != sh->mhead;
	if (ok)
		*v = sh->mbuf[sh->mhead++ % CAP];
	pthread_mutex_unlock(&sh->mu);
	return ok ? 0 : -EAGAIN;
}

static double run(int nprod, int ncons, uint64_t items, enum mode use_mutex)
{
	ring_setup();
	vyukov_setup();
	sh->mhead = sh->mtail = 0;
	atomic_store(&sh->go, 0);
	atomic_store(&sh->sum, 0);
	uint64_t per_prod = items / (uint64_t)nprod, per_cons = items / (uint64_t)ncons;
	pid_t pids[8];
	int n = 0;
	for (int i = 0; i < nprod + ncons; i++) {
		pid_t p = fork();
		if (p == 0) {
			fg_ringref_t rr = fg_ring_ref(&reg, 0);
			fg_slot_t *self = &sh->slots[i];
			while (!atomic_load(&sh->go))
				;
			if (i < nprod) {
				for (uint64_t k = 0; k < per_prod; k++) {
					uint32_t v = (uint32_t)k;
					while ((use_mutex == M_MUTEX ? mutex_enq(v) :
						use_mutex == M_VYUKOV ? vyukov_enq(v) :
						fg_ring_enqueue_mp(rr, v, self)) < 0)
						;
				}
			} else {
				uint64_t s = 0;
				for (uint64_t k = 0; k < per_cons; k++) {
					uint32_t v;
					while ((use_mutex == M_MUTEX ? mutex_deq(&v) :
						use_mutex == M_VYUKOV ? vyukov_deq(&v) :
						fg_ring_dequeue_mc(rr, &v, self)) < 0)
						;
					if (use_mutex == M_FORGE)
						fg_ring_intent_clear(self);
					s += v;
				}
				atomic_fetch_add(&sh->sum, s);
			}
			_exit(0);
		}
		pids[n++] = p;
	}
	usleep(20000);
	uint64_t t0 = fg_now_ns();
	atomic_store(&sh->go, 1);
	for (int i = 0; i < n; i++)
		waitpid(pids[i], NULL, 0);
	uint64_t t1 = fg_now_ns();
	uint64_t want = (uint64_t)nprod * (per_prod * (per_prod - 1) / 2);
	if (atomic_load(&sh->sum) != want) {
		fprintf(stderr, "bench_ring: checksum mismatch: items lost or duplicated\n");
		exit(1);
	}
	return (double)(t1 - t0) / (double)items;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double med(double *v, int runs)
{
	qsort(v, (size_t)runs, sizeof(double), cmpd);
	return v[runs / 2];
}

int main(int argc, char **argv)
{
	uint64_t items = argc > 1 ? strtoull(argv[1], NULL, 10) : 4000000;
	int runs = argc > 2 ? atoi(argv[2]) : 5;
	if (runs < 1 || runs > 31)
		runs = 5;
	sh = mmap(NULL, sizeof(shared_t) + fg_ring_stride(CAP), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&sh->mu, &ma);

	/* the modes interleaved round by round, so each sees the same noise */
	double f11[32], f22[32], v11[32], v22[32], x11[32], x22[32];
	for (int i = 0; i < runs; i++) {
		f11[i] = run(1, 1, items, M_FORGE);
		v11[i] = run(1, 1, items, M_VYUKOV);
		x11[i] = run(1, 1, items, M_MUTEX);
		f22[i] = run(2, 2, items, M_FORGE);
		v22[i] = run(2, 2, items, M_VYUKOV);
		x22[i] = run(2, 2, items, M_MUTEX);
	}
	double r11 = med(f11, runs), r22 = med(f22, runs), b11 = med(v11, runs);
	double b22 = med(v22, runs), m11 = med(x11, runs), m22 = med(x22, runs);
	printf("{\"name\": \"ring.1p1c.ns_per_item\", \"value\": %.2f, \"unit\": \"ns\"}\n", r11);
	printf("{\"name\": \"ring.2p2c.ns_per_item\", \"value\": %.2f, \"unit\": \"ns\"}\n", r22);
	printf("{\"name\": \"ring.vyukov.ns_per_item\", \"value\": %.2f, \"unit\": \"ns\"}\n", b11);
	printf("{\"name\": \"ring.vyukov.2p2c.ns_per_item\", \"value\": %.2f, \"unit\": \"ns\"}\n", b22);
	printf("{\"name\": \"ring.mutex.ns_per_item\", \"value\": %.2f, \"unit\": \"ns\"}\n", m11);
	printf("{\"name\": \"ring.mutex.2p2c.ns_per_item\", \"value\": %.2f, \"unit\": \"ns\"}\n", m22);
	printf("{\"name\": \"ring.1p1c.vs_vyukov\", \"value\": %.2f, \"unit\": \"ratio\"}\n", r11 / b11);
	printf("{\"name\": \"ring.2p2c.vs_vyukov\", \"value\": %.2f, \"unit\": \"ratio\"}\n", r22 / b22);
	printf("{\"name\": \"ring.1p1c.vs_mutex\", \"value\": %.2f, \"unit\": \"ratio\"}\n", m11 / r11);
	return 0;
}
