/*
 * test_region.c — creating, validating and reopening the region, and the
 * refusal of damaged files with a message that says what is wrong.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "forge/region.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[256];

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/forge-test-region.%d", (int)getpid());
	unlink(path);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	char l[300];
	snprintf(l, sizeof(l), "%s.lock", path);
	unlink(l);
	return 0;
}

static void test_create_open(void **state)
{
	(void)state;
	fg_region_params_t p = { 1000, 64, 896 };
	fg_region_t r, r2;
	char err[512];
	assert_int_equal(fg_region_create(path, &p, &r, err, sizeof(err)), 0);
	assert_int_equal(r.hdr->magic, FG_REGION_MAGIC);
	assert_int_equal(r.hdr->capacity, 1000);
	assert_int_equal(r.hdr->ring_cap, 1024);
	assert_int_equal((uintptr_t)r.slots % 64, 0);
	assert_int_equal((uintptr_t)fg_ring(&r, 1) % 64, 0);
	assert_int_equal(fg_slot(&r, 0)->kind, FG_KIND_WORKER);
	assert_int_equal(fg_slot(&r, fg_gateway_slot(&r))->kind, FG_KIND_GATEWAY);
	assert_int_equal(fg_slot(&r, fg_first_client_slot(&r))->kind, FG_KIND_CLIENT);
	assert_int_equal(fg_slot(&r, fg_supervisor_slot(&r))->kind, FG_KIND_SUPERVISOR);
	fg_sess(&r, 999)->steps = 5;
	assert_int_equal(fg_region_open(path, 0, &r2, err, sizeof(err)), 0);
	assert_int_equal(fg_sess(&r2, 999)->steps, 5);   /* same file, other address */
	assert_ptr_not_equal(r.base, r2.base);
	fg_region_close(&r2);
	fg_region_close(&r);
}

static void corrupt_at(off_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
	close(fd);
}

static void expect_refused(const char *want)
{
	fg_region_t r;
	char err[512];
	assert_true(fg_region_open(path, 0, &r, err, sizeof(err)) < 0);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
}

static void make_region(void)
{
	fg_region_params_t p = { 100, 16, 64 };
	fg_region_t r;
	char err[512];
	unlink(path);
	assert_int_equal(fg_region_create(path, &p, &r, err, sizeof(err)), 0);
	fg_region_close(&r);
}

static void test_refuses_damage(void **state)
{
	(void)state;
	make_region();
	uint64_t bad = 0x1122334455667788ull;
	corrupt_at(0, &bad, 8);
	expect_refused("bad magic 0x1122334455667788: not a forge region");

	make_region();
	uint32_t v = 99;
	corrupt_at(8, &v, 4);
	char want[80];
	snprintf(want, sizeof(want), "layout version 99, this forge reads version %u",
		 FG_REGION_VERSION);
	expect_refused(want);

	make_region();
	assert_int_equal(truncate(path, 8192), 0);
	expect_refused("(truncated?)");

	make_region();
	assert_int_equal(truncate(path, 100), 0);
	expect_refused("smaller than a region header");

	make_region();
	uint32_t cap = 1u << 30;
	corrupt_at(24, &cap, 4);
	expect_refused("geometry out of range");

	make_region();
	uint64_t off = 12345;
	corrupt_at(64 + 16, &off, 8);
	expect_refused("section table does not match");
}

static void test_lock_is_exclusive(void **state)
{
	(void)state;
	int a = fg_region_lock(path, 0);
	assert_true(a >= 0);
	pid_t pid = fork();
	if (pid == 0) {
		/* OFD locks conflict between open file descriptions */
		int b = fg_region_lock(path, 0);
		_exit(b == -EWOULDBLOCK ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	close(a);
	int c = fg_region_lock(path, 0);
	assert_true(c >= 0);
	close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_is_exclusive, setup, teardown),
	};
	return cmocka_run_group_tests_name("region", tests, NULL, NULL);
}
