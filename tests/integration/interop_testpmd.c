/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control against a real frontend: DPDK testpmd's virtio-user port drives a
 * VRE device (a fake net-like model) over vhost-user, in both directions of
 * connection (VRE listening; testpmd listening with server=1), with split
 * and packed rings, one and four queue pairs. Asserts what VRE saw:
 * negotiated features, memory regions mapped, queues started and (when
 * vring's rings are built) handed to the model with the right parameters,
 * and a clean stop of every queue when testpmd goes away. Also QEMU's
 * vhost-user-net start-up handshake (no guest), when QEMU is installed.
 *
 * Exit status 77 (meson: skipped) when dpdk-testpmd is not installed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ctl_fixture.h"

#define INTEROP_TIMEOUT_MS 30000
#define NET_FEATURES (F_VERSION_1 | F_PACKED | F_EVENT_IDX | F_MRG_RXBUF | F_MQ | F_INDIRECT)

static const char *testpmd, *qemu;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t spawn_testpmd(const char *dir, const char *sock, bool packed,
			   unsigned queues, bool testpmd_server)
{
	char vdev[256], q[32], log[128];
	pid_t pid;

	snprintf(vdev, sizeof(vdev), "net_virtio_user0,path=%s,queues=%u,packed_vq=%d%s",
		 sock, queues, packed, testpmd_server ? ",server=1" : "");
	snprintf(q, sizeof(q), "%u", queues);
	snprintf(log, sizeof(log), "%s/testpmd.log", dir);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (chdir(dir) < 0)
			_exit(126);
		char rxq[48], txq[48];
		snprintf(rxq, sizeof(rxq), "--rxq=%s", q);
		snprintf(txq, sizeof(txq), "--txq=%s", q);
		execlp(testpmd, testpmd, "-l", "0-1", "--no-pci", "--no-huge", "-m", "512",
		       "--no-shconf", "--vdev", vdev, "--", "--stats-period", "1",
		       "--nb-cores=1", rxq, txq, "--total-num-mbufs=16384", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Stops a child frontend: SIGTERM, then SIGKILL after 5 s. */
static void stop_testpmd(pid_t pid)
{
	int64_t end = now_ms() + 5000;
	int st;

	kill(pid, SIGTERM);
	while (now_ms() < end) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return;
		poll(NULL, 0, 20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

static void dump_log(const char *dir)
{
	char path[128], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/testpmd.log", dir);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "testpmd: %s", line);
	fclose(f);
}

/* Polls the device's snapshot (there is no event for "the frontend is
 * done configuring") until every queue the frontend uses is started. */
static bool wait_started(struct vre_dev *dev, unsigned nq, pid_t pid,
			 struct vre_dev_snapshot *s)
{
	int64_t end = now_ms() + INTEROP_TIMEOUT_MS;
	int st;

	while (now_ms() < end) {
		vre_dev_get_snapshot(dev, s);
		if (s->queues_started >= nq && s->queues_enabled >= nq && s->mem_regions)
			return true;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return false; /* testpmd gave up */
		poll(NULL, 0, 20);
	}
	return false;
}

static void one_run(struct fake_dev *fp, struct vre_dev *dev, bool client, bool packed,
		    unsigned queues, bool rings, int run)
{
	unsigned nq = 2 * queues;
	struct vre_dev_snapshot s;
	struct fake_dev *f = fp;
	int starts0 = fake_get(f, &f->starts);
	pid_t pid;
	bool ok;

	pid = spawn_testpmd(fx.dir, fx.path, packed, queues, client);
	ck_assert_int_gt(pid, 0);
	ok = wait_started(dev, nq, pid, &s);
	if (!ok)
		dump_log(fx.dir);
	ck_assert_msg(ok, "testpmd did not start %u queues (started %u enabled %u regions %u)",
		      nq, s.queues_started, s.queues_enabled, s.mem_regions);
	ck_assert(s.connected && s.owner);
	ck_assert(s.features & F_VERSION_1);
	ck_assert(!!(s.features & F_PACKED) == packed);
	ck_assert_uint_eq(s.features & ~(NET_FEATURES | F_PROTOCOL), 0);
	if (queues > 1)
		ck_assert(s.features & F_MQ);
	ck_assert(s.protocol_features & PF_REPLY_ACK);
	ck_assert_uint_ge(s.mem_regions, 1);
	ck_assert_uint_eq(s.queues_started, nq);
	if (rings) {
		ck_assert(fake_wait(f, &f->running, (int)nq, INTEROP_TIMEOUT_MS));
		pthread_mutex_lock(&f->lock);
		ck_assert_int_ge(f->starts - starts0, (int)nq);
		for (int i = starts0; i < f->starts; i++) {
			ck_assert_uint_lt(f->start[i].index, nq);
			ck_assert(f->start[i].packed == packed);
			ck_assert_uint_gt(f->start[i].size, 0);
			ck_assert_int_ge(f->start[i].kick_fd, 0);
			/* DPDK's packed base: avail 0 with wrap 1 and nothing in
			 * the upper half; the used side follows the avail side. */
			ck_assert_uint_eq(f->start[i].base, packed ? 0x80008000u : 0);
		}
		pthread_mutex_unlock(&f->lock);
	}
	stop_testpmd(pid);
	ck_assert(fake_wait(f, &f->disconnects, run + 1, INTEROP_TIMEOUT_MS));
	vre_dev_get_snapshot(dev, &s);
	ck_assert_uint_eq(s.queues_started, 0);
	ck_assert_uint_eq(s.queues_running, 0);
	ck_assert_uint_eq(s.mem_regions, 0);
	ck_assert_int_eq(fake_get(f, &f->running), 0);
}

START_TEST(test_testpmd)
{
	bool client = _i & 1, packed = _i & 2;
	unsigned queues = (_i & 4) ? 4 : 1;
	struct fake_dev f;
	struct vre_dev *dev;
	bool rings = fx_vring_ready();

	fake_init(&f, NET_FEATURES, 8);
	/* A net backend has no config space to offer. */
	f.ops.config_size = 0;
	dev = fx_add_dev(&f, fx.path, client);
	/* Two frontends in a row for two of the cases: the device stays
	 * configured (server) or reconnects with back-off (client). */
	for (int run = 0; run < ((_i == 0 || _i == 3) ? 2 : 1); run++) {
		fprintf(stderr, "interop: VRE %s, %s rings, %u queue pairs, run %d\n",
			client ? "client" : "server", packed ? "packed" : "split", queues, run);
		one_run(&f, dev, client, packed, queues, rings, run);
	}
	vre_dev_destroy(dev);
}
END_TEST

/* QEMU's vhost-user-net handshake at start-up (no guest runs: -S): it
 * sends the protocol handshake, SET_BACKEND_REQ_FD before SET_OWNER, and
 * ring call/err fds; VRE must accept all of it and QEMU must stay up. */
START_TEST(test_qemu_handshake)
{
	struct vre_dev_stats st;
	struct fake_dev f;
	struct vre_dev *dev;
	char chardev[160], log[128];
	int64_t end;
	pid_t pid;

	if (!qemu) {
		fprintf(stderr, "qemu-system-x86_64 not found: QEMU handshake skipped\n");
		return;
	}
	fake_init(&f, F_VERSION_1 | F_EVENT_IDX | F_MRG_RXBUF | F_INDIRECT, 2);
	f.ops.config_size = 0;
	dev = fx_add_dev(&f, fx.path, false);
	snprintf(chardev, sizeof(chardev), "socket,id=c0,path=%s", fx.path);
	snprintf(log, sizeof(log), "%s/qemu.log", fx.dir);
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(qemu, qemu, "-machine", "pc", "-accel", "tcg", "-m", "128M",
		      "-object", "memory-backend-memfd,id=mem,size=128M,share=on",
		      "-numa", "node,memdev=mem", "-nodefaults", "-no-user-config",
		      "-display", "none", "-monitor", "none", "-serial", "none", "-S",
		      "-chardev", chardev, "-netdev", "vhost-user,id=n0,chardev=c0,queues=1",
		      "-device", "virtio-net-pci,netdev=n0", (char *)NULL);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	/* QEMU 7.2 sends 15 requests before the guest runs, ending with the
	 * rings' fds and enables; poll the counters (there is no event for
	 * "QEMU is done"). */
	end = now_ms() + INTEROP_TIMEOUT_MS;
	do {
		vre_dev_get_stats(dev, &st);
		if (st.messages >= 12)
			break;
		poll(NULL, 0, 20);
	} while (now_ms() < end);
	ck_assert_int_eq(waitpid(pid, NULL, WNOHANG), 0); /* QEMU still up */
	struct vre_dev_snapshot s;
	vre_dev_get_snapshot(dev, &s);
	ck_assert(s.connected && s.owner);
	ck_assert(s.protocol_features & PF_REPLY_ACK);
	ck_assert_uint_ge(st.messages, 12);
	ck_assert_uint_eq(st.failed, 0);
	ck_assert_uint_eq(st.unknown, 0);
	stop_testpmd(pid); /* SIGTERM, then SIGKILL */
	ck_assert(fake_wait(&f, &f.disconnects, 1, INTEROP_TIMEOUT_MS));
	vre_dev_destroy(dev);
}
END_TEST

/* The fixture's own device is not used here; only its server and dir. */
static void setup(void)
{
	fx_setup();
	close(fx.fd);
	fx.fd = -1;
	ck_assert(fake_wait(&fx.fake, &fx.fake.disconnects, 1, VFRONT_TIMEOUT_MS));
	vre_dev_destroy(fx.dev);
	fx.dev = NULL;
}

/* Finds prog in PATH (or env overrides it); NULL when absent. */
static const char *find_prog(const char *env, const char *prog)
{
	static char buf[2][512];
	static int slot;
	const char *path = getenv("PATH"), *e = getenv(env);
	char *out = buf[slot++ & 1];

	if (e && *e)
		return access(e, X_OK) == 0 ? e : NULL;
	for (const char *p = path; p && *p;) {
		const char *c = strchr(p, ':');
		size_t n = c ? (size_t)(c - p) : strlen(p);

		snprintf(out, sizeof(buf[0]), "%.*s/%s", (int)n, p, prog);
		if (access(out, X_OK) == 0)
			return out;
		p = c ? c + 1 : p + n;
	}
	return NULL;
}

int main(void)
{
	Suite *s = suite_create("interop_testpmd");
	TCase *t = tcase_create("testpmd");
	SRunner *r;
	int failed;

	testpmd = find_prog("VRE_TESTPMD", "dpdk-testpmd");
	qemu = find_prog("VRE_QEMU", "qemu-system-x86_64");
	if (!testpmd) {
		fprintf(stderr, "dpdk-testpmd not found: skipped\n");
		return 77;
	}
	tcase_add_checked_fixture(t, setup, fx_teardown);
	tcase_set_timeout(t, 90);
	tcase_add_loop_test(t, test_testpmd, 0, 8);
	tcase_add_test(t, test_qemu_handshake);
	suite_add_tcase(s, t);
	r = srunner_create(s);
	srunner_run_all(r, CK_NORMAL);
	failed = srunner_ntests_failed(r);
	srunner_free(r);
	return failed ? 1 : 0;
}
