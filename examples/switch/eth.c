/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch: DPDK ethdev ports next to the vhost-user ports (see
 * switch.h for the numbering and the threading rule: outside learn mode
 * everything that touches an ethdev port runs on the ethdev worker; in
 * learn mode RX queue k is polled by its worker and TX queue k is used
 * by worker k only, sw_eth_txq).
 *
 * Hot-plug: port-add ethdev probes the device (rte_dev_probe) and takes the
 * ethdev ports that appeared; port-del stops and closes the port and removes
 * the device (rte_dev_remove) once no port of it is left.
 *
 * Mempools: each ethdev port gets a pool sized for its own rings and
 * bursts, on its NUMA node, when it is added. Its RX mbufs may travel to
 * another ethdev port's TX ring and be freed there much later, so a removed
 * port's pool is never freed while the switch runs: it goes to a free list
 * and the next ethdev port that fits takes it over. Memory therefore grows
 * with the most ethdev ports present at once, not with how many came and
 * went.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include "switch.h"
#include "vre_log.h"
#include "vre_net_mbuf.h"

#define ROOM "switch"
#define ETH_DESC 512
#define MP_CACHE 64
#define SEND_RETRIES 8 /* a full TX ring gets a few more tries, then drops */

struct sw_pool {
	struct rte_mempool *mp;
	unsigned size;
	int socket;
	struct sw_pool *next;
};

static inline void add(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, *c + v, __ATOMIC_RELAXED);
}

/* ---- pools ---- */

/* Mbufs that can be out at once for one port: both of its rings, bursts in
 * flight towards it, and the per-thread caches. */
static unsigned pool_need(const struct sw *s, uint16_t nrx, uint16_t ntx)
{
	return (unsigned)nrx + ntx + 8 * VRE_BURST + (s->nworkers_hint + 2) * MP_CACHE * 3 / 2 +
	       1024;
}

static struct sw_pool *pool_new(unsigned need, int socket, char *why, size_t whylen)
{
	static unsigned seq;
	struct sw_pool *p;
	char name[RTE_MEMPOOL_NAMESIZE];

	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	snprintf(name, sizeof(name), "vre_sw_mbufs%u", seq++);
	p->mp = rte_pktmbuf_pool_create(name, need, MP_CACHE, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
	if (!p->mp) {
		snprintf(why, whylen, "cannot create the mbuf pool (%u mbufs): %s", need,
			 rte_strerror(rte_errno));
		free(p);
		return NULL;
	}
	p->size = need;
	p->socket = socket;
	return p;
}

/* A kept pool that fits, else a new one. */
static struct sw_pool *pool_get(struct sw *s, unsigned need, int socket, char *why, size_t whylen)
{
	for (struct sw_pool **pp = &s->free_pools; *pp; pp = &(*pp)->next)
		if ((*pp)->size >= need && ((*pp)->socket == socket || socket == SOCKET_ID_ANY)) {
			struct sw_pool *p = *pp;

			*pp = p->next;
			p->next = NULL;
			return p;
		}
	return pool_new(need, socket, why, whylen);
}

static void pool_put(struct sw *s, struct sw_pool *p)
{
	if (!p)
		return;
	p->next = s->free_pools;
	s->free_pools = p;
}

void sw_eth_free_pools(struct sw *s)
{
	while (s->free_pools) {
		struct sw_pool *p = s->free_pools;

		s->free_pools = p->next;
		rte_mempool_free(p->mp);
		free(p);
	}
}

/* Queue pairs an ethdev port asks for: queues= (want), else in learn
 * mode --eth-queues or one per worker; one in the other modes, where one
 * worker serves the port. */
static unsigned queues_wanted(const struct sw *s, unsigned want)
{
	if (s->mode != SW_LEARN)
		return 1;
	if (!want)
		want = s->eth_queues ? s->eth_queues : s->pool.n ? s->pool.n : s->nworkers_hint;
	return want ? want : 1;
}

int sw_eth_reserve_pools(struct sw *s, char *why, size_t whylen)
{
	uint16_t id;
	unsigned nq = queues_wanted(s, 0);

	RTE_ETH_FOREACH_DEV(id) {
		int sock = rte_eth_dev_socket_id(id);
		struct sw_pool *p = pool_new(pool_need(s, nq * ETH_DESC, nq * ETH_DESC),
					     sock < 0 ? SOCKET_ID_ANY : sock, why, whylen);

		if (!p)
			return -ENOMEM;
		pool_put(s, p);
	}
	return 0;
}

struct rte_mempool *sw_eth_mempool(const struct sw_port *p)
{
	return p->pool->mp;
}

/* ---- probe / open / close ---- */

int sw_eth_probe(const char *devargs, uint16_t *ids, unsigned max, char *why, size_t whylen)
{
	bool before[RTE_MAX_ETHPORTS] = { false };
	unsigned n = 0;
	uint16_t id;
	int r;

	RTE_ETH_FOREACH_DEV(id)
		before[id] = true;
	r = rte_dev_probe(devargs);
	if (r < 0) {
		snprintf(why, whylen, "cannot probe '%s': %s", devargs,
			 r == -EEXIST ? "the device exists already" : rte_strerror(-r));
		return r;
	}
	RTE_ETH_FOREACH_DEV(id)
		if (!before[id] && n < max)
			ids[n++] = id;
	if (n == 0) {
		/* DPDK 22.11 answers 0 for a device probed already (after
		 * logging that it failed); a device without ethdev ports would
		 * look the same, and neither is a new port */
		snprintf(why, whylen, "'%s': the device exists already or has no ethdev port",
			 devargs);
		return -EEXIST;
	}
	return (int)n;
}

/* The TX offloads the switch leaves to a port that has them: checksums and
 * TCP segmentation (the mbufs carry the flags, see vre_net_tx_to_port),
 * and multi-segment mbufs (jumbo and TSO frames are chains). */
#define ETH_TX_OL (RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM | \
		   RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_TSO | \
		   RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
/* RX: the port checks checksums, so a guest need not (DATA_VALID). */
#define ETH_RX_OL (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM | \
		   RTE_ETH_RX_OFFLOAD_UDP_CKSUM)

/* RSS over what a flow is: addresses, and TCP/UDP ports. */
#define ETH_RSS_HF (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP)

/* The queue pairs p gets (p->pairs): as many as asked for, at most what
 * the PMD offers both ways. With several, RSS over ETH_RSS_HF where the
 * PMD hashes some of it, else the PMD's own spreading (one line says so). */
static void plan_queues(struct sw *s, struct sw_port *p, const struct rte_eth_dev_info *info,
			struct rte_eth_conf *conf)
{
	unsigned want = queues_wanted(s, p->eth_want), n;
	bool first = !p->pairs; /* eth_start may run again: one line each */

	if (first && p->eth_want > 1 && s->mode != SW_LEARN)
		VRE_INFO(ROOM, "port %u (%s): queues=%u ignored: outside learn mode one worker "
			 "serves an ethdev port, with one queue pair", p->idx, p->eth_name,
			 p->eth_want);

	n = RTE_MIN(want, (unsigned)RTE_MIN(info->max_rx_queues, info->max_tx_queues));
	n = RTE_MIN(n, (unsigned)SW_MAX_PAIRS);
	if (n < want && first)
		VRE_INFO(ROOM, "port %u (%s): %u queue pair(s): the PMD offers %u RX / %u TX",
			 p->idx, p->eth_name, n, info->max_rx_queues, info->max_tx_queues);
	p->pairs = (uint16_t)(n ? n : 1);
	p->eth_rss_hf = p->pairs > 1 ? ETH_RSS_HF & info->flow_type_rss_offloads : 0;
	if (p->eth_rss_hf) {
		conf->rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf->rx_adv_conf.rss_conf.rss_hf = p->eth_rss_hf;
	} else if (p->pairs > 1 && first) {
		VRE_INFO(ROOM, "port %u (%s): no RSS over IP/TCP/UDP (the PMD hashes 0x%" PRIx64
			 "): %u RX queues fed as the PMD spreads them", p->idx, p->eth_name,
			 info->flow_type_rss_offloads, p->pairs);
	}
}

/* Configures and starts the port with p->pairs RX and TX queues (decided
 * by plan_queues on the first call), with RX interrupts when intr (PMDs
 * without them may refuse) and the offloads of ETH_TX_OL / ETH_RX_OL it
 * has. */
static int eth_start(struct sw *s, struct sw_port *p, bool intr, char *why, size_t whylen)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t nrx = ETH_DESC, ntx = ETH_DESC;
	int sock = rte_eth_dev_socket_id(p->eth_id), r;

	if (sock < 0)
		sock = SOCKET_ID_ANY;
	memset(&conf, 0, sizeof(conf));
	conf.intr_conf.rxq = intr;
	r = rte_eth_dev_info_get(p->eth_id, &info);
	if (r == 0 && (info.max_rx_queues < 1 || info.max_tx_queues < 1))
		r = -ENOTSUP;
	if (r == 0) {
		conf.txmode.offloads = info.tx_offload_capa & ETH_TX_OL;
		conf.rxmode.offloads = info.rx_offload_capa & ETH_RX_OL;
		p->eth_tx_ol = conf.txmode.offloads;
		plan_queues(s, p, &info, &conf);
		r = rte_eth_dev_configure(p->eth_id, p->pairs, p->pairs, &conf);
	}
	if (r == 0)
		r = rte_eth_dev_adjust_nb_rx_tx_desc(p->eth_id, &nrx, &ntx);
	if (r == 0 && !p->pool &&
	    !(p->pool = pool_get(s, pool_need(s, p->pairs * nrx, p->pairs * ntx), sock, why,
				 whylen)))
		return -ENOMEM;
	for (uint16_t k = 0; r == 0 && k < p->pairs; k++) {
		r = rte_eth_rx_queue_setup(p->eth_id, k, nrx, sock, NULL, p->pool->mp);
		if (r == 0)
			r = rte_eth_tx_queue_setup(p->eth_id, k, ntx, sock, NULL);
	}
	if (r == 0)
		r = rte_eth_dev_start(p->eth_id);
	return r;
}

/* The per-queue counters, once p->pairs is known. */
static int eth_counters(struct sw_port *p)
{
	p->eth_rxc = aligned_alloc(64, sizeof(p->eth_rxc[0]) * p->pairs);
	p->eth_txc = aligned_alloc(64, sizeof(p->eth_txc[0]) * p->pairs);
	if (!p->eth_rxc || !p->eth_txc)
		return -ENOMEM;
	memset(p->eth_rxc, 0, sizeof(p->eth_rxc[0]) * p->pairs);
	memset(p->eth_txc, 0, sizeof(p->eth_txc[0]) * p->pairs);
	return 0;
}

/* RX queue q's interrupt fd, or -1. ethdev logs an error for a PMD that
 * has none (net_ring, net_pcap): an expected answer here, so quieted. */
static int eth_rx_intr_fd(uint16_t id, uint16_t q)
{
	int type = rte_log_register("lib.ethdev");
	int level = type >= 0 ? rte_log_get_level((uint32_t)type) : -1;
	int fd;

	if (level >= 0)
		rte_log_set_level((uint32_t)type, RTE_LOG_CRIT);
	fd = rte_eth_dev_rx_intr_ctl_q_get_fd(id, q);
	if (level >= 0)
		rte_log_set_level((uint32_t)type, (uint32_t)level);
	return fd < 0 ? -1 : fd;
}

int sw_eth_open(struct sw *s, struct sw_port *p, char *why, size_t whylen)
{
	struct rte_eth_link link;
	char ls[64]; /* the link, as the start line tells it */
	int r;

	why[0] = 0;
	p->eth_rx_fd = -1;
	r = eth_start(s, p, true, why, whylen);
	if (r == -ENOMEM && why[0])
		return r;
	if (r < 0) {
		rte_eth_dev_stop(p->eth_id); /* may have started: configure again */
		r = eth_start(s, p, false, why, whylen);
	} else {
		p->eth_rx_fd = eth_rx_intr_fd(p->eth_id, 0);
	}
	if (r < 0 && p->pairs > 1) {
		VRE_INFO(ROOM, "port %u (%s): %u queue pairs refused (%s): one", p->idx,
			 p->eth_name, p->pairs, strerror(-r));
		rte_eth_dev_stop(p->eth_id);
		p->eth_want = 1;
		r = eth_start(s, p, false, why, whylen);
	}
	if (r == 0 && eth_counters(p) < 0) {
		snprintf(why, whylen, "out of memory");
		rte_eth_dev_stop(p->eth_id);
		return -ENOMEM;
	}
	if (r < 0) {
		if (!why[0])
			snprintf(why, whylen, "port %u (%s): cannot configure/start: %s", p->idx,
				 p->eth_name, strerror(-r));
		return r;
	}
	p->eth_started = true;
	rte_eth_promiscuous_enable(p->eth_id); /* a bridge port sees every MAC */
	if (rte_eth_dev_get_mtu(p->eth_id, &p->eth_mtu) != 0)
		p->eth_mtu = 0;
	if (p->eth_tx_ol & (RTE_ETH_TX_OFFLOAD_TCP_TSO | RTE_ETH_TX_OFFLOAD_TCP_CKSUM))
		printf("vre-switch: port %u: offloads to the port:%s%s%s%s, MTU %u\n", p->idx,
		       p->eth_tx_ol & RTE_ETH_TX_OFFLOAD_TCP_TSO ? " tso" : "",
		       p->eth_tx_ol & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM ? " ipv4-csum" : "",
		       p->eth_tx_ol & RTE_ETH_TX_OFFLOAD_TCP_CKSUM ? " tcp-csum" : "",
		       p->eth_tx_ol & RTE_ETH_TX_OFFLOAD_UDP_CKSUM ? " udp-csum" : "",
		       p->eth_mtu);
	/* link state: a virtual port is up at once, a NIC may still be
	 * negotiating (reported as down here, it keeps working once up) */
	if (rte_eth_link_get_nowait(p->eth_id, &link) == 0)
		snprintf(ls, sizeof(ls), "%s %u Mbps %s-duplex", link.link_status ? "up" : "down",
			 link.link_speed, link.link_duplex ? "full" : "half");
	else
		snprintf(ls, sizeof(ls), "unknown");
	printf("vre-switch: port %u: ethdev %u (%s) started, link %s, %s, %u queue pair(s)%s\n",
	       p->idx, p->eth_id, p->eth_name, ls,
	       p->eth_rx_fd >= 0 ? "rx interrupts" : "rx polled", p->pairs,
	       p->eth_rss_hf ? ", rss" : "");
	fflush(stdout);
	return 0;
}

void sw_eth_release(uint16_t id, bool started)
{
	struct rte_eth_dev_info info;
	struct rte_device *dev = NULL;
	bool others = false;
	uint16_t o;

	if (rte_eth_dev_info_get(id, &info) == 0)
		dev = info.device;
	if (started)
		rte_eth_dev_stop(id);
	rte_eth_dev_close(id);
	RTE_ETH_FOREACH_DEV(o)
		if (rte_eth_dev_info_get(o, &info) == 0 && info.device == dev)
			others = true;
	if (dev && !others && rte_dev_remove(dev) < 0)
		VRE_WARN(ROOM, "ethdev %u: its device could not be removed", id);
}

void sw_eth_close(struct sw *s, struct sw_port *p)
{
	sw_eth_release(p->eth_id, p->eth_started);
	p->eth_started = false;
	pool_put(s, p->pool);
	p->pool = NULL;
}

/* ---- the data path ---- */

/* Mbufs carrying offload flags get the PMD's preparation (pseudo header
 * checksums as the NIC wants them); one it refuses is dropped and counted.
 * Returns the mbufs left, compacted in m. */
static unsigned eth_prepare(struct sw_port *p, uint16_t txq, struct rte_mbuf **m, unsigned n)
{
	unsigned done = 0;

	while (done < n) {
		uint16_t ok = rte_eth_tx_prepare(p->eth_id, txq, m + done, (uint16_t)(n - done));

		done += ok;
		if (done < n) { /* m[done] is refused: out of the list */
			rte_pktmbuf_free(m[done]);
			add(&p->eth_txc[txq].drop_prep, 1);
			memmove(m + done, m + done + 1, (n - done - 1) * sizeof(m[0]));
			n--;
		}
	}
	return n;
}

void sw_eth_send(struct sw_port *p, uint16_t txq, struct rte_mbuf **m, unsigned n)
{
	struct sw_eth_txc *c = &p->eth_txc[txq];
	unsigned sent = 0, tries = 0;
	uint64_t bytes = 0, ol = 0;

	for (unsigned k = 0; k < n; k++)
		ol |= m[k]->ol_flags;
	if (ol & RTE_MBUF_F_TX_OFFLOAD_MASK)
		n = eth_prepare(p, txq, m, n);

	/* lengths first: once sent, the mbufs belong to the PMD */
	for (unsigned k = 0; k < n; k++)
		bytes += rte_pktmbuf_pkt_len(m[k]);
	while (sent < n && tries++ < SEND_RETRIES)
		sent += rte_eth_tx_burst(p->eth_id, txq, m + sent, (uint16_t)(n - sent));
	for (unsigned k = sent; k < n; k++)
		bytes -= rte_pktmbuf_pkt_len(m[k]);
	if (sent < n) {
		rte_pktmbuf_free_bulk(m + sent, n - sent);
		add(&c->drop_full, n - sent);
	}
	add(&c->pkts, sent);
	add(&c->bytes, bytes);
}

static inline uint32_t mask_all(unsigned n)
{
	return n >= 32 ? UINT32_MAX : (1u << n) - 1;
}

struct eth_sink_ctx {
	struct sw_port *p;
	uint16_t txq;
};

static void eth_sink(void *ctx, struct rte_mbuf **m, unsigned n)
{
	struct eth_sink_ctx *c = ctx;

	sw_eth_send(c->p, c->txq, m, n);
}

/* The packets of sq's burst in mask to TX queue txq of ethdev port p:
 * offload requests left to the port where it can, finished in software
 * where not. */
static void to_port(struct sw_queue *sq, struct sw_port *p, uint16_t txq, uint32_t mask)
{
	const struct vre_net_mbuf_port port = { .tx_offloads = p->eth_tx_ol, .mtu = p->eth_mtu };
	struct eth_sink_ctx c = { p, txq };

	vre_net_tx_to_port(sq->nq, sq->burst, mask, p->pool->mp, &port, eth_sink, &c);
}

int sw_vhost_to_eth_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	struct vre_net_tx_burst *b = sq->burst;
	int n = vre_net_tx_fetch(sq->nq, b), taken = b->n;

	if (n < 0 || taken == 0)
		return 0;
	if (b->npkts)
		to_port(sq, sq->dst_q->port, 0, mask_all(b->npkts));
	/* only now: the port took (or we dropped) every packet */
	vre_net_tx_done(sq->nq, b);
	return taken;
}

void sw_learn_to_eth(struct sw_queue *sq, struct sw_port *p, uint16_t txq, uint32_t mask)
{
	to_port(sq, p, txq, mask); /* no mbuf: counted as drop_no_mbuf */
}

/* A flow's hash: the PMD's RSS hash, else the MACs, and for IPv4 the
 * addresses and (unfragmented TCP/UDP) the ports. Only spreads packets
 * over queues; the frame was received by us, so reading it is safe. */
uint32_t sw_flow_hash(const struct rte_mbuf *m)
{
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	uint32_t len = rte_pktmbuf_data_len(m);
	uint64_t a, b = 0, h;

	if (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH)
		return m->hash.rss;
	if (len < 14)
		return 0;
	memcpy(&a, f, 8);
	memcpy(&b, f + 8, 4);
	if (len >= 34 && f[12] == 0x08 && f[13] == 0x00) {
		unsigned ihl = (f[14] & 0xfu) * 4u;
		uint64_t ips;

		memcpy(&ips, f + 26, 8);
		b ^= ips;
		/* TCP or UDP, not a fragment (offset 0, MF clear), ports present */
		if ((f[23] == 6 || f[23] == 17) && !(f[20] & 0x3f) && !f[21] && ihl >= 20 &&
		    len >= 14 + ihl + 4) {
			uint32_t ports;

			memcpy(&ports, f + 14 + ihl, 4);
			a ^= (uint64_t)ports << 32;
		}
	}
	h = (a ^ (b * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
	return (uint32_t)(h >> 32);
}

void sw_rx_spread(struct vre_net_queue **dst, unsigned nd, struct rte_mbuf **m, uint16_t n)
{
	struct rte_mbuf *by[SW_MAX_PAIRS][VRE_BURST];
	uint16_t cnt[SW_MAX_PAIRS] = { 0 };

	if (nd == 1) {
		vre_net_rx_from_mbufs(dst[0], m, n); /* drops are counted on dst */
		return;
	}

	for (uint16_t k = 0; k < n; k++) {
		unsigned q = sw_flow_hash(m[k]) % nd;

		by[q][cnt[q]++] = m[k];
	}
	for (unsigned q = 0; q < nd; q++)
		if (cnt[q])
			vre_net_rx_from_mbufs(dst[q], by[q], cnt[q]);
}

/* ethdev RX -> the static destination (loopback and xconnect). Without a
 * peer the packets stay in the port's RX ring (the PMD drops what does not
 * fit), as with a vhost peer whose guest has not started its RX queue. */
int sw_eth_rx_poll(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	struct sw_port *p = sq->port, *dp = sq->dst_q ? sq->dst_q->port : NULL;
	struct rte_mbuf *m[VRE_BURST];
	struct vre_net_queue *dst[SW_MAX_PAIRS];
	unsigned nd = 0;
	uint64_t bytes = 0;
	uint16_t n;

	if (!dp)
		return 0;
	if (!dp->eth) {
		/* the running RX queues of the vhost port (pairs the guest
		 * enabled); none: the port's RX ring holds the packets */
		for (unsigned j = 0; j < sq->npairs; j++) {
			dst[nd] = __atomic_load_n(&sq->pair_dsts[j], __ATOMIC_ACQUIRE);
			nd += dst[nd] != NULL;
		}
		if (!nd)
			return 0;
	}
	n = rte_eth_rx_burst(p->eth_id, 0, m, VRE_BURST);
	if (n == 0)
		return 0;
	for (uint16_t i = 0; i < n; i++)
		bytes += rte_pktmbuf_pkt_len(m[i]);
	add(&p->eth_rxc[0].pkts, n);
	add(&p->eth_rxc[0].bytes, bytes);
	if (dp->eth) {
		sw_eth_send(dp, 0, m, n);
		return n;
	}
	sw_rx_spread(dst, nd, m, n);
	rte_pktmbuf_free_bulk(m, n);
	return n;
}

/* Idle: unmask the RX interrupt (when the PMD has one), then report
 * whether packets came meanwhile (where the PMD can count them; an fd-based
 * PMD such as net_tap needs no re-check: the fd turns readable on any
 * packet after the worker's last empty poll, and the worker's epoll sees
 * that edge). */
static bool eth_arm(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;
	uint16_t id = sq->port->eth_id, q = sq->index / 2u;

	if (sq->port->eth_rx_fd >= 0)
		rte_eth_dev_rx_intr_enable(id, q);
	return rte_eth_rx_queue_count(id, q) > 0;
}

static void eth_disarm(struct vre_poll_item *it)
{
	struct sw_queue *sq = it->ctx;

	if (sq->port->eth_rx_fd >= 0)
		rte_eth_dev_rx_intr_disable(sq->port->eth_id, sq->index / 2u);
}

int sw_eth_attach_queue(struct sw *s, struct sw_queue *sq)
{
	struct sw_port *p = sq->port;
	struct vre_poll_item *it = &sq->item;
	int err;

	memset(it, 0, sizeof(*it));
	it->poll = s->mode == SW_LEARN ? sw_learn_eth_poll : sw_eth_rx_poll;
	it->ctx = sq;
	it->arm = eth_arm;
	it->disarm = eth_disarm;
	it->wake_fd = p->eth_rx_fd >= 0 ? eth_rx_intr_fd(p->eth_id, sq->index / 2u) : -1;
	if (it->wake_fd < 0)
		it->nap_us = SW_ETH_NAP_US; /* polled: naps (see switch.h) */
	it->name = "eth-rx";
	if (!sq->w)
		sq->w = sw_eth_worker(s);
	sq->wi = (uint16_t)sw_worker_index(s, sq->w);
	err = vre_worker_add(sq->w, it);
	if (err == 0)
		sq->running = true;
	return err;
}

int sw_eth_attach(struct sw *s, struct sw_port *p)
{
	for (uint16_t k = 0; k < p->pairs; k++) {
		int err = sw_eth_attach_queue(s, &p->q[2 * k + 1]);

		if (err < 0) {
			sw_eth_detach(p);
			return err;
		}
	}
	return 0;
}

void sw_eth_detach(struct sw_port *p)
{
	for (uint16_t k = 0; p->q && k < p->pairs; k++) {
		if (p->q[2 * k + 1].item.w)
			vre_worker_remove(&p->q[2 * k + 1].item);
		p->q[2 * k + 1].running = false;
	}
}
