/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lat_gen: round-trip latency of single frames through a vhost-user backend.
 *
 *   lat_gen EAL-ARGS -- [-t loop|pair] [-T timeout_ms]
 *
 * A DPDK program on one lcore whose ports are net_virtio_user vdevs (the
 * same driver perf/bench's testpmd generator uses). It sends a frame, busy
 * polls every port until that frame comes back through the backend and
 * records the time in between (TSC), so one measurement is one frame's
 * round trip: driver TX, the backend's fetch, forward, deliver, the driver's
 * RX. With N in flight it keeps N frames circulating, each replaced the
 * moment it returns. A frame that has not returned after timeout_ms is
 * counted lost and replaced.
 *
 * Topology: loop, a frame comes back on the port it left (VRE --mode
 * loopback, testpmd io with --port-topology=loop); pair, it comes back on
 * the other port of a pair (xconnect, learn). Sends alternate between the
 * two ports of a pair. Frames carry src = the sending port's MAC, dst = the
 * MAC of the port it should reach (so a learning switch forwards them), an
 * IEEE local experimental ethertype (0x88b5) and {magic, slot, seq}.
 *
 * Driven over stdin by perf/bench, one command per line:
 *   run <frame bytes without FCS> <in flight> <warm-up ms> <measured ms>
 *   quit
 * It prints "ready ports=N link=up|down" once its ports are set up, and
 * answers each run with one line:
 *   result frame=F inflight=N n=S lost=L stale=X wrongport=W txfail=T
 *          min_us=.. p50_us=.. p90_us=.. p99_us=.. p999_us=.. max_us=..
 *          mean_us=.. kpps=..
 * (or "error ..."). Round trips count only frames sent after the warm-up.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#define MAX_PORTS 2
#define MAX_INFLIGHT 64
#define BURST 32
#define LAT_ETHERTYPE 0x88b5
#define LAT_MAGIC 0x56524c54u /* "VRLT" */
#define MIN_FRAME 60
#define MAX_FRAME 1514
#define LINK_WAIT_S 30

struct lat_payload {
	uint32_t magic;
	uint16_t slot;
	uint16_t port;
	uint64_t seq;
} __rte_packed;

struct slot {
	uint64_t seq;  /* of the frame in flight; 0: none */
	uint64_t sent; /* TSC just before its tx_burst */
	uint16_t port; /* where it was sent */
};

struct run_stats {
	uint32_t *rtt; /* cycles, one per measured round trip */
	size_t n, cap;
	uint64_t lost, stale, wrongport, txfail;
};

static struct rte_mempool *pool;
static uint16_t nports;
static bool pair_mode;
static struct rte_ether_addr macs[MAX_PORTS];
static uint64_t next_seq = 1;

static void usage(void)
{
	fprintf(stderr, "usage: lat_gen EAL-ARGS -- [-t loop|pair] [-T timeout_ms]\n");
	exit(2);
}

/* The port a frame sent on p should come back on. */
static uint16_t peer(uint16_t p)
{
	return pair_mode ? (uint16_t)(p ^ 1u) : p;
}

static int port_init(uint16_t port)
{
	struct rte_eth_conf conf;
	int err;

	memset(&conf, 0, sizeof(conf));
	err = rte_eth_dev_configure(port, 1, 1, &conf);
	if (err < 0)
		return err;
	/* 0 descriptors: the driver's default (virtio: the ring's size) */
	err = rte_eth_rx_queue_setup(port, 0, 0, rte_eth_dev_socket_id(port), NULL, pool);
	if (err < 0)
		return err;
	err = rte_eth_tx_queue_setup(port, 0, 0, rte_eth_dev_socket_id(port), NULL);
	if (err < 0)
		return err;
	err = rte_eth_dev_start(port);
	if (err < 0)
		return err;
	return rte_eth_macaddr_get(port, &macs[port]);
}

/* Bounded: true once every port reports link up. */
static bool wait_links(void)
{
	uint64_t end = rte_get_tsc_cycles() + LINK_WAIT_S * rte_get_tsc_hz();

	while (rte_get_tsc_cycles() < end) {
		bool all = true;

		for (uint16_t p = 0; p < nports; p++) {
			struct rte_eth_link link;

			if (rte_eth_link_get_nowait(p, &link) < 0 || !link.link_status)
				all = false;
		}
		if (all)
			return true;
		rte_delay_ms(20);
	}
	return false;
}

/* Builds and sends slot k's next frame from its next port. */
static void send_slot(struct slot *s, uint16_t k, uint32_t frame, struct run_stats *st)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	uint16_t port = pair_mode ? (uint16_t)(s->port ^ 1u) : s->port;
	struct rte_ether_hdr *eth;
	struct lat_payload *pl;
	char *data;

	s->port = port;
	s->seq = next_seq++;
	s->sent = rte_rdtsc();
	if (!m) {
		st->txfail++; /* retried when its timeout expires */
		return;
	}
	data = rte_pktmbuf_append(m, (uint16_t)frame);
	memset(data, 0, frame);
	eth = (struct rte_ether_hdr *)data;
	rte_ether_addr_copy(&macs[peer(port)], &eth->dst_addr);
	rte_ether_addr_copy(&macs[port], &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(LAT_ETHERTYPE);
	pl = (struct lat_payload *)(eth + 1);
	pl->magic = LAT_MAGIC;
	pl->slot = k;
	pl->port = port;
	pl->seq = s->seq;
	s->sent = rte_rdtsc();
	if (rte_eth_tx_burst(port, 0, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		st->txfail++;
	}
}

static void record(struct run_stats *st, uint64_t cycles)
{
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 65536;
		uint32_t *p = realloc(st->rtt, cap * sizeof(*p));

		if (!p)
			return; /* keep what we have; the count says so */
		st->rtt = p;
		st->cap = cap;
	}
	st->rtt[st->n++] = cycles > UINT32_MAX ? UINT32_MAX : (uint32_t)cycles;
}

/* Frees everything waiting in the RX rings (frames of an earlier run). */
static void drain(unsigned ms)
{
	uint64_t end = rte_get_tsc_cycles() + ms * rte_get_tsc_hz() / 1000;
	struct rte_mbuf *pkts[BURST];

	while (rte_get_tsc_cycles() < end)
		for (uint16_t p = 0; p < nports; p++) {
			uint16_t n = rte_eth_rx_burst(p, 0, pkts, BURST);

			rte_pktmbuf_free_bulk(pkts, n);
		}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const uint32_t *v, size_t n, double p, double us_per_cycle)
{
	size_t i = (size_t)(p / 100.0 * (double)n + 0.5);

	if (i > 0)
		i--;
	return v[i < n ? i : n - 1] * us_per_cycle;
}

static void do_run(uint32_t frame, unsigned inflight, unsigned warm_ms, unsigned ms,
		   unsigned timeout_ms)
{
	const uint64_t hz = rte_get_tsc_hz();
	struct slot slots[MAX_INFLIGHT];
	struct run_stats st = { 0 };
	struct rte_mbuf *pkts[BURST];
	uint64_t t0, measure_from, end, timeout = timeout_ms * hz / 1000;
	unsigned loops = 0;

	drain(20);
	memset(slots, 0, sizeof(slots));
	for (unsigned k = 0; k < inflight; k++)
		slots[k].port = (uint16_t)(pair_mode ? (k & 1u) ^ 1u : 0);
	t0 = rte_rdtsc();
	measure_from = t0 + warm_ms * hz / 1000;
	end = measure_from + ms * hz / 1000;
	for (unsigned k = 0; k < inflight; k++)
		send_slot(&slots[k], (uint16_t)k, frame, &st);
	for (;;) {
		uint64_t now = rte_rdtsc();

		if (now >= end)
			break;
		for (uint16_t p = 0; p < nports; p++) {
			uint16_t n = rte_eth_rx_burst(p, 0, pkts, BURST);

			if (!n)
				continue;
			now = rte_rdtsc();
			for (uint16_t i = 0; i < n; i++) {
				struct rte_mbuf *m = pkts[i];
				const struct lat_payload *pl;
				struct slot *s;

				if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr) + sizeof(*pl)) {
					st.stale++;
					rte_pktmbuf_free(m);
					continue;
				}
				pl = rte_pktmbuf_mtod_offset(m, const struct lat_payload *,
							     sizeof(struct rte_ether_hdr));
				if (pl->magic != LAT_MAGIC || pl->slot >= inflight ||
				    slots[pl->slot].seq != pl->seq) {
					st.stale++; /* another run's, or one we gave up on */
					rte_pktmbuf_free(m);
					continue;
				}
				s = &slots[pl->slot];
				if (p != peer(s->port))
					st.wrongport++;
				if (s->sent >= measure_from)
					record(&st, now - s->sent);
				rte_pktmbuf_free(m);
				send_slot(s, pl->slot, frame, &st);
			}
		}
		if (++loops % 1024 == 0) {
			now = rte_rdtsc();
			for (unsigned k = 0; k < inflight; k++)
				if (now - slots[k].sent > timeout) {
					if (slots[k].sent >= measure_from)
						st.lost++;
					send_slot(&slots[k], (uint16_t)k, frame, &st);
				}
		}
	}
	if (st.n == 0) {
		printf("error frame=%u inflight=%u: no frame came back (lost %" PRIu64
		       " txfail %" PRIu64 ")\n", frame, inflight, st.lost, st.txfail);
		free(st.rtt);
		return;
	}
	qsort(st.rtt, st.n, sizeof(st.rtt[0]), cmp_u32);
	double upc = 1e6 / (double)hz, sum = 0;

	for (size_t i = 0; i < st.n; i++)
		sum += st.rtt[i];
	printf("result frame=%u inflight=%u n=%zu lost=%" PRIu64 " stale=%" PRIu64
	       " wrongport=%" PRIu64 " txfail=%" PRIu64 " min_us=%.3f p50_us=%.3f p90_us=%.3f"
	       " p99_us=%.3f p999_us=%.3f max_us=%.3f mean_us=%.3f kpps=%.1f\n",
	       frame, inflight, st.n, st.lost, st.stale, st.wrongport, st.txfail,
	       st.rtt[0] * upc, pct_us(st.rtt, st.n, 50, upc), pct_us(st.rtt, st.n, 90, upc),
	       pct_us(st.rtt, st.n, 99, upc), pct_us(st.rtt, st.n, 99.9, upc),
	       st.rtt[st.n - 1] * upc, sum / (double)st.n * upc, (double)st.n / ms);
	free(st.rtt);
}

/* One command from perf/bench; false on quit or end of input. */
static bool command(unsigned timeout_ms)
{
	char line[256];
	unsigned frame, inflight, warm, ms;

	if (!fgets(line, sizeof(line), stdin))
		return false;
	if (strncmp(line, "quit", 4) == 0)
		return false;
	if (sscanf(line, "run %u %u %u %u", &frame, &inflight, &warm, &ms) == 4) {
		if (frame < MIN_FRAME || frame > MAX_FRAME || inflight < 1 ||
		    inflight > MAX_INFLIGHT || ms == 0 || ms > 600000 || warm > 600000)
			printf("error bad run: frame %u..%u, in flight 1..%u, ms 1..600000\n",
			       MIN_FRAME, MAX_FRAME, MAX_INFLIGHT);
		else
			do_run(frame, inflight, warm, ms, timeout_ms);
	} else if (line[0] != '\n') {
		printf("error unknown command: %s", line);
	}
	fflush(stdout);
	return true;
}

int main(int argc, char **argv)
{
	unsigned timeout_ms = 100;
	int ret = rte_eal_init(argc, argv), opt;

	if (ret < 0) {
		fprintf(stderr, "lat_gen: EAL init failed\n");
		return 1;
	}
	argc -= ret;
	argv += ret;
	while ((opt = getopt(argc, argv, "t:T:")) != -1) {
		switch (opt) {
		case 't':
			if (strcmp(optarg, "pair") == 0)
				pair_mode = true;
			else if (strcmp(optarg, "loop") != 0)
				usage();
			break;
		case 'T':
			timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
			if (timeout_ms == 0 || timeout_ms > 10000)
				usage();
			break;
		default:
			usage();
		}
	}
	nports = rte_eth_dev_count_avail();
	if (nports == 0 || nports > MAX_PORTS || (pair_mode && nports != 2)) {
		fprintf(stderr, "lat_gen: %u ports; loop wants 1 or 2, pair wants 2\n", nports);
		rte_eal_cleanup();
		return 2;
	}
	/* RX rings (the ring size each) and lazily reclaimed TX rings hold
	 * most of these; a few more are in flight. */
	pool = rte_pktmbuf_pool_create("lat_gen", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       rte_socket_id());
	if (!pool) {
		fprintf(stderr, "lat_gen: mbuf pool: %s\n", rte_strerror(rte_errno));
		rte_eal_cleanup();
		return 1;
	}
	for (uint16_t p = 0; p < nports; p++) {
		int err = port_init(p);

		if (err < 0) {
			fprintf(stderr, "lat_gen: port %u: %s\n", p, strerror(-err));
			rte_eal_cleanup();
			return 1;
		}
	}
	printf("ready ports=%u link=%s\n", nports, wait_links() ? "up" : "down");
	fflush(stdout);
	while (command(timeout_ms))
		;
	for (uint16_t p = 0; p < nports; p++) {
		rte_eth_dev_stop(p);
		rte_eth_dev_close(p);
	}
	rte_eal_cleanup();
	return 0;
}
