/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fe.h"
#include "vfront.h"

enum {
	R_GET_FEATURES = 1, R_SET_FEATURES = 2, R_SET_OWNER = 3, R_SET_MEM_TABLE = 5,
	R_SET_VRING_NUM = 8, R_SET_VRING_ADDR = 9, R_SET_VRING_BASE = 10,
	R_SET_VRING_KICK = 12, R_SET_VRING_CALL = 13, R_GET_PROTOCOL_FEATURES = 15,
	R_SET_PROTOCOL_FEATURES = 16, R_SET_VRING_ENABLE = 18,
	R_GET_INFLIGHT_FD = 31, R_SET_INFLIGHT_FD = 32,
};

struct inflight_msg {
	uint64_t mmap_size, mmap_offset;
	uint16_t num_queues, queue_size;
};

int64_t fe_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int fe_mem_new(struct fe_mem *m, uint64_t len)
{
	m->fd = memfd_create("fe-guest", MFD_CLOEXEC);
	if (m->fd < 0)
		return -errno;
	if (ftruncate(m->fd, (off_t)len) < 0)
		goto fail;
	m->hva = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->hva == MAP_FAILED)
		goto fail;
	m->len = len;
	return 0;
fail:
	close(m->fd);
	m->fd = -1;
	return -errno;
}

void fe_mem_free(struct fe_mem *m)
{
	if (m->hva && m->hva != MAP_FAILED)
		munmap(m->hva, m->len);
	if (m->fd >= 0)
		close(m->fd);
	m->hva = NULL;
	m->fd = -1;
}

static int ack(int sock, uint32_t req, const void *p, uint32_t size, const int *fds,
	       unsigned nfds, const char *what)
{
	int r = vfront_request_ack(sock, req, p, size, fds, nfds);

	if (r != 0)
		fprintf(stderr, "fe: %s: %s\n", what, r > 0 ? "backend replied failure" : strerror(-r));
	return r > 0 ? -EPROTO : r;
}

int fe_handshake(int sock, uint64_t want, uint64_t want_pf, uint64_t *features_out,
		 uint64_t *pf_out)
{
	uint64_t f, pf;
	int r;

	r = vfront_send(sock, R_SET_OWNER, 0, NULL, 0, NULL, 0);
	if (r == 0)
		r = vfront_get_u64(sock, R_GET_FEATURES, &f);
	if (r == 0 && !(f & (1ull << FE_F_PROTOCOL_FEATURES)))
		r = -ENOTSUP;
	if (r == 0)
		r = vfront_get_u64(sock, R_GET_PROTOCOL_FEATURES, &pf);
	if (r == 0 && !(pf & (1ull << FE_PF_REPLY_ACK)))
		r = -ENOTSUP;
	if (r < 0) {
		fprintf(stderr, "fe: handshake: %s\n", strerror(-r));
		return r;
	}
	pf &= want_pf | 1ull << FE_PF_REPLY_ACK;
	r = ack(sock, R_SET_PROTOCOL_FEATURES, &pf, 8, NULL, 0, "SET_PROTOCOL_FEATURES");
	if (r < 0)
		return r;
	*features_out = (f & want) | 1ull << FE_F_PROTOCOL_FEATURES;
	*pf_out = pf;
	return 0;
}

int fe_set_features(int sock, uint64_t features)
{
	return ack(sock, R_SET_FEATURES, &features, 8, NULL, 0, "SET_FEATURES");
}

int fe_inflight_get(int sock, uint16_t nq, uint16_t qsize, struct fe_inflight *in)
{
	struct inflight_msg w = { .num_queues = nq, .queue_size = qsize };
	struct vfront_msg m;
	int r = vfront_send(sock, R_GET_INFLIGHT_FD, 0, &w, sizeof(w), NULL, 0);

	if (r == 0)
		r = vfront_recv(sock, &m, VFRONT_TIMEOUT_MS);
	if (r < 0)
		return r;
	if (m.request != R_GET_INFLIGHT_FD || m.size != sizeof(w) || m.nfds != 1) {
		vfront_msg_close_fds(&m);
		return -EBADMSG;
	}
	memcpy(&w, m.p.bytes, sizeof(w));
	in->fd = m.fds[0];
	in->mmap_size = w.mmap_size;
	in->mmap_offset = w.mmap_offset;
	in->num_queues = nq;
	in->queue_size = qsize;
	in->hva = mmap(NULL, w.mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, in->fd,
		       (off_t)w.mmap_offset);
	if (in->hva == MAP_FAILED) {
		close(in->fd);
		in->fd = -1;
		in->hva = NULL;
		return -errno;
	}
	return 0;
}

int fe_inflight_set(int sock, const struct fe_inflight *in)
{
	struct inflight_msg w = {
		.mmap_size = in->mmap_size, .mmap_offset = in->mmap_offset,
		.num_queues = in->num_queues, .queue_size = in->queue_size,
	};

	return ack(sock, R_SET_INFLIGHT_FD, &w, sizeof(w), &in->fd, 1, "SET_INFLIGHT_FD");
}

void fe_inflight_free(struct fe_inflight *in)
{
	if (in->hva)
		munmap(in->hva, in->mmap_size);
	if (in->fd >= 0)
		close(in->fd);
	in->hva = NULL;
	in->fd = -1;
}

int fe_mem_table(int sock, const struct fe_mem *m)
{
	struct {
		uint32_t n, pad;
		uint64_t gpa, size, uva, off;
	} t = { .n = 1, .gpa = FE_GPA0, .size = m->len, .uva = (uintptr_t)m->hva };

	return ack(sock, R_SET_MEM_TABLE, &t, sizeof(t), &m->fd, 1, "SET_MEM_TABLE");
}

static int eventfd_once(int *fd)
{
	if (*fd >= 0)
		return 0;
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return *fd < 0 ? -errno : 0;
}

int fe_ring_start(int sock, const struct fe_mem *m, struct fe_ring *r, uint32_t base)
{
	struct { uint32_t index, num; } st = { r->index, r->size };
	struct {
		uint32_t index, flags;
		uint64_t desc, used, avail, log;
	} a = {
		.index = r->index,
		.desc = (uintptr_t)(m->hva + r->lay.desc_off),
		.used = (uintptr_t)(m->hva + r->lay.used_off),
		.avail = (uintptr_t)(m->hva + r->lay.avail_off),
	};
	uint64_t kick = r->index, call = r->index;
	int e;

	if ((e = eventfd_once(&r->kick_fd)) < 0 || (e = eventfd_once(&r->call_fd)) < 0)
		return e;
	if ((e = ack(sock, R_SET_VRING_NUM, &st, 8, NULL, 0, "SET_VRING_NUM")) < 0)
		return e;
	st.num = base;
	if ((e = ack(sock, R_SET_VRING_BASE, &st, 8, NULL, 0, "SET_VRING_BASE")) < 0)
		return e;
	if ((e = ack(sock, R_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, "SET_VRING_ADDR")) < 0)
		return e;
	if ((e = ack(sock, R_SET_VRING_KICK, &kick, 8, &r->kick_fd, 1, "SET_VRING_KICK")) < 0)
		return e;
	if ((e = ack(sock, R_SET_VRING_CALL, &call, 8, &r->call_fd, 1, "SET_VRING_CALL")) < 0)
		return e;
	st.num = 1;
	return ack(sock, R_SET_VRING_ENABLE, &st, 8, NULL, 0, "SET_VRING_ENABLE");
}

void fe_ring_close(struct fe_ring *r)
{
	if (r->kick_fd >= 0)
		close(r->kick_fd);
	if (r->call_fd >= 0)
		close(r->call_fd);
	r->kick_fd = r->call_fd = -1;
}

void fe_kick(const struct fe_ring *r)
{
	uint64_t one = 1;

	if (write(r->kick_fd, &one, 8) != 8)
		perror("fe: kick");
}

bool fe_wait_call(const struct fe_ring *r, int ms)
{
	struct pollfd p = { .fd = r->call_fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, ms) <= 0)
		return false;
	return read(r->call_fd, &v, 8) == 8;
}

int fe_proc_fds(int pid)
{
	char path[64];
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

int fe_proc_maps(int pid)
{
	char path[64];
	FILE *f;
	int n = 0, c;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}
