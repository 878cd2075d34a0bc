/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Control/worker stress: the real backend in one process (control server,
 * two virtio-net devices, a pool of adaptive workers forwarding each
 * device's TX queue into its own RX queue, wired as vre-switch's loopback
 * does) and two frontends over sockets and memfd guest memory.
 *
 * Device B's driver thread keeps numbered packets flowing the whole time.
 * The test thread is device A's frontend and driver: in a loop it changes
 * A's memory table (SET_MEM_TABLE with a region more or less, ADD_MEM_REG /
 * REM_MEM_REG), toggles SET_VRING_ENABLE, stops and restarts queues
 * (GET_VRING_BASE, SET_VRING_BASE, a new kick fd), and moves both rings to
 * new addresses, mostly while packets of its own are in flight. After each
 * change a few packets must make the round trip.
 *
 * Every packet carries its sequence number and a pattern derived from it;
 * rings are used in order (one descriptor per chain, loopback in order), so
 * the driver checks each used entry's id and each received frame's number
 * and bytes: a lost, duplicated or corrupted buffer fails at once. At the
 * end each device's drop counters must be 0 and the base GET_VRING_BASE
 * returns must equal the driver's own count.
 *
 * Built for the 'threads' suite (with test_worker and the control suites)
 * that scripts/test also runs under ThreadSanitizer. VRE_STRESS_SECONDS
 * bounds the churn time (default 3 s) and VRE_STRESS_ITERS sets how many
 * changes run at least (default MIN_ITERS, rounded up to whole rounds of
 * the five kinds); VRE_STRESS_POLL=poll|adaptive|interrupt the workers'
 * policy (default adaptive).
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ctl_fixture.h"
#include "vdrv_packed.h"
#include "vre_dataplane.h"

#define QSIZE 64u
#define HDR 12u               /* VERSION_1: virtio_net_hdr with num_buffers */
#define BUF 2048u
#define MAIN_SIZE (2u << 20)
#define XTRA_SIZE (256u << 10)
#define MAIN_GPA 0x100000ull
#define MAIN_UVA 0x7f1200000000ull
#define X_GPA 0x40000000ull   /* in or out of the SET_MEM_TABLE table */
#define X_UVA 0x7f1300000000ull
#define Y_GPA 0x50000000ull   /* ADD_MEM_REG / REM_MEM_REG */
#define Y_UVA 0x7f1400000000ull
#define TX_BUFS 0x100000u     /* main-region offsets of the buffers */
#define RX_BUFS 0x140000u
#define RING_SETS 4u          /* ring locations a queue moves between */
#define MIN_ITERS 15u
#define WAIT_MS 10000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_us(unsigned us)
{
	struct timespec ts = { 0, (long)us * 1000 };

	nanosleep(&ts, NULL);
}

/* ---- the backend side: loopback wiring of one net device ---- */

struct lb {
	struct vre_worker_pool *pool;
	struct vre_poll_item item;      /* the TX queue's, while it runs */
	struct vre_net_queue *tx;       /* running TX queue (control thread) */
	struct vre_net_queue *rx_run;   /* running RX queue (control thread) */
	struct vre_net_queue *rx;       /* what the worker forwards into (atomic) */
	struct vre_worker *w;
	bool tx_running;
};

static int lb_poll(struct vre_poll_item *it)
{
	struct lb *l = it->ctx;
	struct vre_net_queue *rx = __atomic_load_n(&l->rx, __ATOMIC_ACQUIRE);

	/* RX stopped: leave TX chains in the ring until it runs again. */
	return rx ? vre_net_forward(l->tx, rx) : 0;
}

static bool lb_arm(struct vre_poll_item *it)
{
	struct lb *l = it->ctx;

	return vre_vq_notify_enable(&l->tx->q->vq);
}

static void lb_disarm(struct vre_poll_item *it)
{
	struct lb *l = it->ctx;

	vre_vq_notify_disable(&l->tx->q->vq);
}

static int lb_start(void *app, struct vre_net_dev *n, struct vre_net_queue *nq)
{
	struct lb *l = app;

	(void)n;
	if (!nq->is_tx) {
		l->rx_run = nq;
		__atomic_store_n(&l->rx, nq, __ATOMIC_RELEASE);
		return 0;
	}
	l->tx = nq;
	__atomic_store_n(&l->rx, l->rx_run, __ATOMIC_RELEASE);
	memset(&l->item, 0, sizeof(l->item));
	l->item.poll = lb_poll;
	l->item.wake_fd = nq->q->kick_fd;
	l->item.arm = nq->q->kick_fd >= 0 ? lb_arm : NULL;
	l->item.disarm = lb_disarm;
	l->item.ctx = l;
	l->item.name = "stress-tx";
	/* Round robin: a restarted TX queue may land on the other worker. */
	l->w = vre_worker_pool_next(l->pool);
	int err = vre_worker_add(l->w, &l->item);

	l->tx_running = err == 0;
	return err;
}

static void lb_stop(void *app, struct vre_net_dev *n, struct vre_net_queue *nq)
{
	struct lb *l = app;

	(void)n;
	if (nq->is_tx) {
		if (l->tx_running)
			vre_worker_remove(&l->item);
		l->tx_running = false;
		return;
	}
	l->rx_run = NULL;
	__atomic_store_n(&l->rx, NULL, __ATOMIC_RELEASE);
	/* The TX poller may still hold the old pointer: wait it out. */
	if (l->tx_running)
		vre_worker_sync(l->w);
}

static const struct vre_net_app_ops lb_ops = { .queue_start = lb_start, .queue_stop = lb_stop };

/* ---- the driver side: one queue, split or packed, in memfd memory ---- */

struct ring {
	bool packed;
	uint16_t index;
	uint32_t off;              /* ring memory, offset in the main region */
	uint8_t *mem;              /* the main region (test's mapping) */
	/* split */
	struct vre_desc *desc;
	struct vre_avail *avail;
	struct vre_used_ring *used;
	/* packed */
	struct pdrv pd;
	/* both: chains posted and taken back, free-running */
	uint64_t posted, done;
	int kick, call;
};

static void ring_place(struct ring *r, uint32_t off, uint64_t pos)
{
	uint8_t *base = r->mem + off;

	r->off = off;
	memset(base, 0, 0x3000);
	if (r->packed) {
		pdrv_init(&r->pd, QSIZE, base, base + 0x1000, base + 0x2000);
		r->pd.avail_idx = r->pd.used_idx = (uint16_t)(pos % QSIZE);
		r->pd.avail_wrap = r->pd.used_wrap = !((pos / QSIZE) & 1);
	} else {
		r->desc = (void *)base;
		r->avail = (void *)(base + 0x1000);
		r->used = (void *)(base + 0x2000);
		r->avail->idx = r->used->idx = (uint16_t)pos;
	}
	r->posted = r->done = pos;
}

/* The vhost-user base of a ring whose driver has taken back everything. */
static uint32_t ring_base(const struct ring *r, uint64_t pos)
{
	if (!r->packed)
		return (uint16_t)pos;
	uint32_t half = (uint32_t)(pos % QSIZE) | (((pos / QSIZE) & 1) ? 0 : 0x8000u);

	return half | half << 16;
}

static void ring_post(struct ring *r, uint64_t gpa, uint32_t len, bool write)
{
	uint16_t slot = (uint16_t)(r->posted % QSIZE);

	ck_assert_uint_lt(r->posted - r->done, QSIZE);
	if (r->packed) {
		struct pdrv_desc d = { gpa, len, write ? VRE_DESC_F_WRITE : 0 };

		ck_assert_int_eq(pdrv_post(&r->pd, &d, 1, slot, false), 0);
	} else {
		r->desc[slot] = (struct vre_desc){ gpa, len, write ? VRE_DESC_F_WRITE : 0, 0 };
		r->avail->ring[slot] = slot;
		__atomic_store_n(&r->avail->idx, (uint16_t)(r->posted + 1), __ATOMIC_RELEASE);
	}
	r->posted++;
}

static void ring_kick(struct ring *r)
{
	uint64_t one = 1;

	ck_assert_int_eq(write(r->kick, &one, 8), 8);
}

/* Takes the next used entry: 1 with its length, 0 when none. The device
 * must return chains in order: anything else is a lost or doubled one. */
static int ring_used(struct ring *r, uint32_t *len)
{
	uint16_t want = (uint16_t)(r->done % QSIZE), id;

	if (r->done == r->posted)
		return 0;
	if (r->packed) {
		int ret = pdrv_get_used(&r->pd, &id, len);

		ck_assert_int_ge(ret, 0);
		if (ret == 0)
			return 0;
	} else {
		uint16_t idx = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);

		if (idx == (uint16_t)r->done)
			return 0;
		ck_assert_uint_le((uint16_t)(idx - (uint16_t)r->done), QSIZE);
		id = (uint16_t)r->used->ring[want].id;
		*len = r->used->ring[want].len;
	}
	ck_assert_msg(id == want, "queue %u: used id %u, expected %u (chain %llu)",
		      r->index, id, want, (unsigned long long)r->done);
	r->done++;
	return 1;
}

/* ---- one frontend: socket, guest memory, RX (0) and TX (1) ---- */

struct fe {
	const char *name;
	bool packed;
	int sock;
	int fd[3];            /* memfds: main, X, Y */
	uint8_t *m[3];
	bool x_in, y_in;      /* X / Y in the backend's table now */
	struct ring rx, tx;
	unsigned ring_set;
	uint64_t tx_seq, rx_seq;   /* frames sent / received */
	struct lb lb;
	struct vre_net_dev *net;
	struct vre_dev *dev;
	char path[128];
};

static const uint64_t region_gpa[3] = { MAIN_GPA, X_GPA, Y_GPA };
static const uint64_t region_uva[3] = { MAIN_UVA, X_UVA, Y_UVA };
static const uint64_t region_size[3] = { MAIN_SIZE, XTRA_SIZE, XTRA_SIZE };

static uint32_t frame_len(uint64_t seq)
{
	return 60u + (uint32_t)(seq * 37u % 1400u);
}

static uint8_t frame_byte(uint64_t seq, uint32_t i)
{
	return (uint8_t)(seq * 7u + i);
}

/* Where TX frame seq lives: X and Y hold some while they are mapped. */
static uint64_t tx_gpa(const struct fe *f, uint64_t seq, uint8_t **hva)
{
	uint32_t off = (uint32_t)(seq % QSIZE) * BUF;
	unsigned r = 0;

	if (f->y_in && seq % 3 == 0)
		r = 2;
	else if (f->x_in && seq % 3 == 1)
		r = 1;
	if (r == 0)
		off += TX_BUFS;
	*hva = f->m[r] + off;
	return region_gpa[r] + off;
}

static void send_frames(struct fe *f, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t seq = f->tx_seq;
		uint32_t len = frame_len(seq);
		uint8_t *p;
		uint64_t gpa;

		/* Every frame sent has an RX buffer waiting: nothing may drop. */
		if (f->tx.posted - f->tx.done == QSIZE || seq >= f->rx.posted)
			break;
		gpa = tx_gpa(f, seq, &p);
		memset(p, 0, HDR);
		memcpy(p + HDR, &seq, 8);
		for (uint32_t k = 8; k < len; k++)
			p[HDR + k] = frame_byte(seq, k);
		ring_post(&f->tx, gpa, HDR + len, false);
		f->tx_seq++;
	}
	ring_kick(&f->tx);
}

static void post_rx(struct fe *f)
{
	bool any = false;

	while (f->rx.posted - f->rx.done < QSIZE) {
		uint32_t off = RX_BUFS + (uint32_t)(f->rx.posted % QSIZE) * BUF;

		memset(f->m[0] + off, 0xee, BUF);
		ring_post(&f->rx, MAIN_GPA + off, BUF, true);
		any = true;
	}
	if (any)
		ring_kick(&f->rx);
}

/* Takes back TX chains and checks received frames; returns how many. */
static unsigned reap(struct fe *f)
{
	uint32_t len;
	unsigned got = 0;

	while (ring_used(&f->tx, &len) == 1)
		ck_assert_uint_eq(len, 0);
	while (ring_used(&f->rx, &len) == 1) {
		uint64_t seq = f->rx_seq, s;
		const uint8_t *p = f->m[0] + RX_BUFS + (uint32_t)((f->rx.done - 1) % QSIZE) * BUF;

		ck_assert_msg(seq < f->tx_seq, "%s: frame %llu received, only %llu sent",
			      f->name, (unsigned long long)seq, (unsigned long long)f->tx_seq);
		memcpy(&s, p + HDR, 8);
		ck_assert_msg(s == seq, "%s: frame %llu where %llu was due (lost or doubled)",
			      f->name, (unsigned long long)s, (unsigned long long)seq);
		ck_assert_uint_eq(len, HDR + frame_len(seq));
		for (uint32_t k = 8; k < frame_len(seq); k++)
			ck_assert_msg(p[HDR + k] == frame_byte(seq, k), "%s: frame %llu byte %u",
				      f->name, (unsigned long long)seq, k);
		f->rx_seq++;
		got++;
	}
	return got;
}

/* Waits until every frame sent has come back (and TX is empty). */
static void drain(struct fe *f)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (f->rx_seq < f->tx_seq || f->tx.done < f->tx.posted) {
		ck_assert_msg(now_ms() < end, "%s: %llu of %llu frames back, TX %llu/%llu",
			      f->name, (unsigned long long)f->rx_seq,
			      (unsigned long long)f->tx_seq, (unsigned long long)f->tx.done,
			      (unsigned long long)f->tx.posted);
		if (!reap(f))
			nap_us(50);
	}
}

/* Sends n frames and waits for them: the device works. */
static void round_trip(struct fe *f, unsigned n)
{
	post_rx(f);
	send_frames(f, n);
	drain(f);
	post_rx(f);
}

/* ---- control messages ---- */

static void ack(struct fe *f, uint32_t req, const void *p, uint32_t size, const int *fds,
		unsigned nfds)
{
	ck_assert_msg(vfront_request_ack(f->sock, req, p, size, fds, nfds) == 0,
		      "%s: request %u refused", f->name, req);
}

static void set_state(struct fe *f, uint32_t req, uint32_t index, uint32_t num)
{
	uint32_t st[2] = { index, num };

	ack(f, req, st, sizeof(st), NULL, 0);
}

static uint32_t get_base(struct fe *f, uint32_t index)
{
	uint32_t st[2] = { index, 0 };
	struct vfront_msg m;

	ck_assert_int_eq(vfront_send(f->sock, GET_VRING_BASE, 1, st, 8, NULL, 0), 0);
	ck_assert_int_eq(vfront_recv(f->sock, &m, VFRONT_TIMEOUT_MS * 3), 0);
	ck_assert_uint_eq(m.request, GET_VRING_BASE);
	ck_assert_uint_eq(m.p.state.index, index);
	return m.p.state.num;
}

static void mem_table(struct fe *f)
{
	struct { uint32_t n, pad; struct region r[3]; } t = { 0 };
	int fds[3];

	for (unsigned i = 0; i < 3; i++) {
		if ((i == 1 && !f->x_in) || (i == 2 && !f->y_in))
			continue;
		t.r[t.n] = (struct region){ region_gpa[i], region_size[i], region_uva[i], 0 };
		fds[t.n++] = f->fd[i];
	}
	ack(f, SET_MEM_TABLE, &t, 8 + t.n * sizeof(struct region), fds, t.n);
}

static void mem_reg(struct fe *f, uint32_t req)
{
	struct { uint64_t pad; struct region r; } m = {
		0, { Y_GPA, XTRA_SIZE, Y_UVA, 0 },
	};

	ack(f, req, &m, sizeof(m), &f->fd[2], req == ADD_MEM_REG ? 1 : 0);
}

static void new_eventfd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(*fd, 0);
}

/* Everything a queue needs to (re)start, as QEMU sends it. */
static void queue_setup(struct fe *f, struct ring *r, uint32_t base)
{
	uint64_t a = MAIN_UVA + r->off;
	struct addr_msg am = { r->index, 0, a, a + 0x2000, a + 0x1000, 0 };
	uint64_t v;

	set_state(f, SET_VRING_NUM, r->index, QSIZE);
	set_state(f, SET_VRING_BASE, r->index, base);
	ack(f, SET_VRING_ADDR, &am, sizeof(am), NULL, 0);
	new_eventfd(&r->kick);
	new_eventfd(&r->call);
	v = r->index;
	ack(f, SET_VRING_CALL, &v, 8, &r->call, 1);
	ack(f, SET_VRING_KICK, &v, 8, &r->kick, 1);
	set_state(f, SET_VRING_ENABLE, r->index, 1);
}

static uint32_t ring_off(unsigned set, uint16_t index)
{
	return set * 0x8000u + index * 0x4000u;
}

static int mem_fd(size_t len)
{
	int fd = memfd_create("stress-guest", MFD_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	return fd;
}

static void fe_open(struct fe *f, const char *name, bool packed, struct vre_server *srv,
		    struct vre_worker_pool *pool, const char *dir)
{
	struct vre_net_config cfg = { .mac = { 2, 0, 0, 0, 0, packed }, .max_queue_pairs = 1 };
	struct vre_dev_config dc = { 0 };
	uint64_t feat = F_VERSION_1 | F_PROTOCOL | (packed ? F_PACKED : 0), v;

	memset(f, 0, sizeof(*f));
	f->name = name;
	f->packed = packed;
	f->lb.pool = pool;
	snprintf(f->path, sizeof(f->path), "%s/%s.sock", dir, name);
	ck_assert_int_eq(vre_net_dev_create(&cfg, &lb_ops, &f->lb, &f->net), 0);
	dc.path = f->path;
	dc.ops = vre_net_dev_ops(f->net);
	dc.ctx = f->net;
	ck_assert_int_eq(vre_dev_create(srv, &dc, &f->dev), 0);
	vre_net_dev_set_control(f->net, f->dev);

	for (unsigned i = 0; i < 3; i++) {
		f->fd[i] = mem_fd(region_size[i]);
		f->m[i] = mmap(NULL, region_size[i], PROT_READ | PROT_WRITE, MAP_SHARED,
			       f->fd[i], 0);
		ck_assert_ptr_ne(f->m[i], MAP_FAILED);
	}
	f->rx = (struct ring){ .packed = packed, .index = 0, .mem = f->m[0], .kick = -1, .call = -1 };
	f->tx = (struct ring){ .packed = packed, .index = 1, .mem = f->m[0], .kick = -1, .call = -1 };

	f->sock = vfront_connect(f->path, VFRONT_TIMEOUT_MS);
	ck_assert_int_ge(f->sock, 0);
	ck_assert_int_eq(vfront_get_u64(f->sock, GET_FEATURES, &v), 0);
	ck_assert_uint_eq(v & feat, feat);
	ck_assert_int_eq(vfront_send(f->sock, SET_OWNER, 0, NULL, 0, NULL, 0), 0);
	ck_assert_int_eq(vfront_set_u64(f->sock, SET_PROTOCOL_FEATURES,
					 PF_REPLY_ACK | PF_MEM_SLOTS, false), 0);
	ck_assert_int_eq(vfront_set_u64(f->sock, SET_FEATURES, feat, true), 0);
	mem_table(f);
	ring_place(&f->rx, ring_off(0, 0), 0);
	ring_place(&f->tx, ring_off(0, 1), 0);
	queue_setup(f, &f->rx, ring_base(&f->rx, 0));
	queue_setup(f, &f->tx, ring_base(&f->tx, 0));
	round_trip(f, 8);
}

static bool disconnected(struct fe *f)
{
	struct vre_dev_snapshot s;

	vre_dev_get_snapshot(f->dev, &s);
	return !s.connected && s.queues_running == 0;
}

static bool wait_disconnect(struct fe *f)
{
	uint64_t end = now_ms() + WAIT_MS;

	while (!disconnected(f))
		if (now_ms() > end)
			return false;
		else
			nap_us(500);
	return true;
}

/* Stops both queues (their bases must match the driver's counts) and the
 * connection; returns the device's RX drops. */
static void fe_close(struct fe *f)
{
	struct vre_net_queue *rxq, *txq;

	drain(f);
	/* Everything taken was completed: the bases are the driver's counts
	 * (RX buffers still posted are not taken). */
	ck_assert_uint_eq(get_base(f, 1), ring_base(&f->tx, f->tx.done));
	ck_assert_uint_eq(get_base(f, 0), ring_base(&f->rx, f->rx.done));
	rxq = vre_net_dev_queue(f->net, 0);
	ck_assert_uint_eq(__atomic_load_n(&rxq->st.drop_no_rx_buf, __ATOMIC_RELAXED), 0);
	ck_assert_uint_eq(__atomic_load_n(&rxq->st.drop_too_big, __ATOMIC_RELAXED), 0);
	ck_assert_uint_eq(__atomic_load_n(&rxq->st.drop_bad_chain, __ATOMIC_RELAXED), 0);
	ck_assert_uint_eq(__atomic_load_n(&rxq->st.drop_queue_broken, __ATOMIC_RELAXED), 0);
	txq = vre_net_dev_queue(f->net, 1);
	ck_assert_uint_eq(__atomic_load_n(&txq->st.drop_short_hdr, __ATOMIC_RELAXED), 0);
	ck_assert_uint_eq(__atomic_load_n(&txq->st.drop_bad_chain, __ATOMIC_RELAXED), 0);
	ck_assert_uint_eq(__atomic_load_n(&txq->st.drop_queue_broken, __ATOMIC_RELAXED), 0);
	close(f->sock);
	ck_assert(wait_disconnect(f));
}

/* ---- the churn on device A ---- */

/* Frames in flight while control changes something under them. */
static void burst(struct fe *f)
{
	reap(f);
	post_rx(f);
	send_frames(f, 16);
}

static void toggle_enable(struct fe *f, unsigned iter)
{
	struct ring *r = iter & 1 ? &f->tx : &f->rx;

	burst(f);
	set_state(f, SET_VRING_ENABLE, r->index, 0);
	/* Frames posted while the queue is off wait for it. */
	post_rx(f);
	send_frames(f, 8);
	set_state(f, SET_VRING_ENABLE, r->index, 1);
	ring_kick(r);
}

/* GET_VRING_BASE stops the queue with frames in flight; it resumes from
 * the base the backend reported, with new kick and call fds. */
static void stop_restart(struct fe *f, unsigned iter)
{
	struct ring *r = iter & 2 ? &f->tx : &f->rx;
	uint32_t base;

	burst(f);
	base = get_base(f, r->index);
	/* The device stopped somewhere between what the driver took back
	 * and what it posted. */
	if (!r->packed)
		ck_assert_uint_le((uint16_t)(base - (uint16_t)r->done),
				  (uint16_t)(r->posted - r->done));
	send_frames(f, 4);
	queue_setup(f, r, base);
	ring_kick(r);
}

/* Moves both rings to the next location. RX buffers posted in the old
 * ring are given again in the new one. */
static void relocate(struct fe *f)
{
	drain(f);
	f->ring_set = (f->ring_set + 1) % RING_SETS;
	ck_assert_uint_eq(get_base(f, 1), ring_base(&f->tx, f->tx.done));
	ck_assert_uint_eq(get_base(f, 0), ring_base(&f->rx, f->rx.done));
	ring_place(&f->rx, ring_off(f->ring_set, 0), f->rx.done);
	ring_place(&f->tx, ring_off(f->ring_set, 1), f->tx.done);
	queue_setup(f, &f->rx, ring_base(&f->rx, f->rx.done));
	queue_setup(f, &f->tx, ring_base(&f->tx, f->tx.done));
	post_rx(f);
}

static void change(struct fe *f, unsigned iter)
{
	switch (iter % 5) {
	case 0: /* a new table, X in or out (frames in X must be back first) */
		if (f->x_in)
			drain(f);
		else
			burst(f);
		f->x_in = !f->x_in;
		mem_table(f);
		break;
	case 1:
		if (f->y_in) {
			drain(f);
			mem_reg(f, REM_MEM_REG);
		} else {
			burst(f);
			mem_reg(f, ADD_MEM_REG);
		}
		f->y_in = !f->y_in;
		break;
	case 2:
		toggle_enable(f, iter / 5);
		break;
	case 3:
		stop_restart(f, iter / 5);
		break;
	default:
		relocate(f);
		break;
	}
}

/* ---- device B's driver thread ---- */

struct steady {
	struct fe *f;
	int stop;
	uint64_t frames;
};

static void *steady_run(void *arg)
{
	struct steady *s = arg;
	struct fe *f = s->f;
	uint64_t last = now_ms();

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		post_rx(f);
		if (f->tx_seq - f->rx_seq < QSIZE / 2)
			send_frames(f, 8);
		if (reap(f)) {
			last = now_ms();
		} else {
			ck_assert_msg(now_ms() - last < WAIT_MS, "device B stalled at frame %llu",
				      (unsigned long long)f->rx_seq);
			nap_us(20);
		}
	}
	drain(f);
	s->frames = f->rx_seq;
	return NULL;
}

/* ---- the test ---- */

static struct vre_server *srv;
static struct vre_worker_pool pool;
static struct fe fa, fb;
static char dir[64];

/* Two allowed CPUs for the workers (one twice on a 1-CPU machine). */
static void cpu_list(char *buf, size_t len)
{
	cpu_set_t set;
	int c[2] = { -1, -1 }, n = 0;

	ck_assert_int_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int i = 0; i < CPU_SETSIZE && n < 2; i++)
		if (CPU_ISSET(i, &set))
			c[n++] = i;
	if (n == 1)
		snprintf(buf, len, "%d", c[0]);
	else
		snprintf(buf, len, "%d,%d", c[0], c[1]);
}

START_TEST(test_churn_under_traffic)
{
	bool a_packed = _i & 1;
	struct vre_worker_config wc = { .mode = VRE_POLL_ADAPTIVE };
	struct steady st = { .f = &fb };
	const char *env = getenv("VRE_STRESS_SECONDS");
	uint64_t secs = env ? strtoull(env, NULL, 10) : 3, end;
	const char *ienv = getenv("VRE_STRESS_ITERS");
	unsigned min_iters = ienv ? (unsigned)strtoul(ienv, NULL, 10) : MIN_ITERS;
	char cpus[32];
	pthread_t t;
	unsigned iter;

	snprintf(dir, sizeof(dir), "/tmp/vre-stress-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	cpu_list(cpus, sizeof(cpus));
	if (getenv("VRE_STRESS_POLL")) {
		int mode = vre_poll_mode_parse(getenv("VRE_STRESS_POLL"));

		ck_assert_int_ge(mode, 0);
		wc.mode = (enum vre_poll_mode)mode;
	}
	ck_assert_int_eq(vre_worker_pool_create(&pool, cpus, &wc), 0);
	ck_assert_int_eq(vre_server_create(&srv), 0);
	ck_assert_int_eq(vre_server_start(srv), 0);
	fe_open(&fa, "a", a_packed, srv, &pool, dir);
	fe_open(&fb, "b", !a_packed, srv, &pool, dir);

	ck_assert_int_eq(pthread_create(&t, NULL, steady_run, &st), 0);
	end = now_ms() + secs * 1000;
	min_iters = (min_iters + 4) / 5 * 5;
	if (min_iters == 0)
		min_iters = 5;
	for (iter = 0; iter < min_iters || now_ms() < end; iter++) {
		change(&fa, iter);
		round_trip(&fa, 6);
	}
	__atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	fprintf(stderr, "stress (A %s): %u changes, A %llu frames, B %llu frames\n",
		a_packed ? "packed" : "split", iter, (unsigned long long)fa.rx_seq,
		(unsigned long long)st.frames);
	ck_assert_uint_gt(st.frames, 0);
	for (unsigned i = 0; i < pool.n; i++) {
		struct vre_worker_stats ws;

		vre_worker_get_stats(pool.w[i], &ws);
		fprintf(stderr, "  worker %u: packets %llu polls %llu sleeps %llu wakeups %llu quiesces %llu\n",
			i, (unsigned long long)ws.packets, (unsigned long long)ws.polls,
			(unsigned long long)ws.sleeps, (unsigned long long)ws.wakeups,
			(unsigned long long)ws.quiesces);
	}

	fe_close(&fa);
	fe_close(&fb);
	vre_server_destroy(srv);
	vre_worker_pool_destroy(&pool);
	for (unsigned k = 0; k < 2; k++) {
		struct fe *f = k ? &fb : &fa;

		for (unsigned i = 0; i < 3; i++) {
			munmap(f->m[i], region_size[i]);
			close(f->fd[i]);
		}
		close(f->rx.kick);
		close(f->rx.call);
		close(f->tx.kick);
		close(f->tx.call);
		vre_net_dev_destroy(f->net);
	}
	unlink(fa.path);
	unlink(fb.path);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("churn");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 240);
	tcase_add_loop_test(tc, test_churn_under_traffic, 0, 2);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
