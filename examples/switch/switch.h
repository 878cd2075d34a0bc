/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch: vhost-user ports served by VRE's control plane, DPDK ethdev
 * ports, packets moved by VRE's pinned workers, vhost to vhost with one copy.
 * Ports come and go at runtime.
 *
 * PORTS
 *
 * A port is added by sw_port_add(spec) and removed by sw_port_del(port);
 * nothing else creates or destroys one. The command line, the config file
 * and the JSON-RPC methods (ctl_rpc.c) all build a struct sw_port_spec and
 * call these, so a port means the same whichever way it came. Port numbers
 * are the lowest free number unless the spec asks for one (the command line
 * does: vhost ports 0..V-1 in command-line order, then the ethdev ports the
 * EAL probed in DPDK port order, then --ethdev ports). There is no fixed
 * limit: s->ports grows (doubling) with the highest number in use, and a
 * port costs only its own allocations (its queue table, a TX burst per TX
 * queue, the net device and control's device).
 *
 * A port without a frontend costs the workers nothing: a vhost queue is on
 * a worker's poll list only between queue_start and queue_stop, i.e. while a
 * frontend runs it. Only ethdev ports are polled whether or not packets come
 * (their RX item; they sleep on RX interrupts or nap, see eth.c).
 *
 * Locks, outermost first:
 *   s->op_lock   serialises everything that changes the set of ports or
 *                where queues run: port add/del, rxq-pin, rebalance. Held
 *                for a whole operation, which may wait for worker
 *                handshakes and for control's lock.
 *   s->keep      (a rwlock) keeps ports alive: taken exclusive only to take
 *                a port out of the table, shared by readers that use a
 *                port outside s->lock (port-list and port-show ask
 *                control for its device's state, which takes control's
 *                lock). So a port found under s->keep is not freed until
 *                the reader is done, and port-del holds it exclusive
 *                only for that moment, not while it waits for workers.
 *   control's server lock (inside vre_dev_create/destroy and
 *                vre_dev_get_*, and around every queue_start/queue_stop
 *                callback).
 *   s->lock      the port table, the published view and every queue's
 *                fields; taken for short sections by the callbacks, the
 *                operations and every reader (stats, JSON-RPC, telemetry).
 *                The longest section is one worker handshake (a queue
 *                stop, an item move).
 * So port-del never holds s->lock while it calls vre_dev_destroy: control's
 * thread takes its server lock, then s->lock, in queue_stop.
 *
 * Who may point at a port, and how port-del takes each pointer away before
 * freeing it (sw_port_del in port.c):
 *   - the published view (s->view: port number -> port, and the list of
 *     existing ports learn mode floods over): replaced by one without the
 *     port, then every worker is synced before the old view is freed;
 *   - fdb entries: they hold (port number, port generation) and a lookup
 *     only returns a port whose generation matches, through the view. A
 *     removed port's entries are therefore dead at once (as if flushed), and
 *     a new port that reuses the number has a new generation, so it never
 *     inherits them; learning overwrites them like aged ones;
 *   - TX queues' destination pointers (xconnect/loopback: sq->dst, the
 *     ethdev spread table pair_dsts; learn: the port's rx_pub[] read
 *     through the view): cleared when the port's RX queues stop, which the
 *     disconnect does first (queue_stop syncs the RX queue's worker);
 *     xconnect peers then lose their dst_q (link_peer in fwd.c);
 *   - poll items: removed (vre_worker_remove returns once the worker is
 *     out) by queue_stop, or for an ethdev port's RX item by port-del;
 *   - mbufs of an ethdev port's mempool may still sit in another port's TX
 *     ring: a removed ethdev port's pool is not freed but kept for the next
 *     ethdev port (eth.c), so such mbufs always return to a live pool.
 * Traffic between the other ports never stops: nothing of theirs is
 * removed from a worker (an xconnect peer's TX items are moved to another
 * worker only when the new peer is an ethdev port, which must live on the
 * first worker).
 *
 * FORWARDING
 *
 * Loopback and xconnect are static per queue pair: the TX queue of (port p,
 * pair i) feeds the RX queue of (peer(p), i mod peer's pairs), where
 * peer(p) = p in loopback mode and p^1 in xconnect mode (the pairs are
 * 0<->1, 2<->3, ... by port number; a port whose peer does not exist yet
 * holds, then drops, what its guest sends, see below). Each RX queue has one
 * owning worker (round-robin over the RX queues as ports are added, or the
 * spec's pin, or rxq-pin); every TX queue that feeds it is polled on that
 * same worker, so an RX ring has exactly one writer and a TX ring exactly
 * one reader without any lock.
 *
 * A TX item reaches its RX queue through an atomically published pointer
 * that is non-NULL only while the RX queue runs. Stopping an RX queue clears
 * the pointer and waits for the owning worker's handshake, so no TX item
 * touches a stopped RX queue. A TX item without a destination first holds
 * its packets in the ring for a grace period (SW_DST_GRACE_MS: control stops
 * and restarts every queue of a device around many requests, and a packet
 * should not be lost to that), then completes the chains and counts the
 * packets as dropped, so a guest whose peer is gone does not stall.
 *
 * Learn mode (learn.c) bridges all ports with a MAC table (fdb.c) that
 * every worker reads and writes without a lock of ours. Queues are spread
 * over the workers as in xconnect mode (a pair's TX queue with its RX
 * queue); each RX queue still has one writer, its owner (p->rx_wi[pair]):
 * a worker puts into the RX queues it owns directly and hands packets for
 * other workers' RX queues over through a ring per (sender, owner) pair of
 * workers, which the owner drains (learn.c says why this design). A TX
 * queue of pair i reaches the RX queue of pair i (mod the destination's
 * pairs) of the port the table names, through the port's rx_pub[]
 * (published like dst above). The per-packet cost does not depend on how
 * many ports exist: a unicast frame costs one table lookup and one view
 * lookup; a burst's flooded frames cost one pass over the existing ports
 * (the view's list), not over a fixed-size array. Flooding skips ports
 * whose RX queue is not running (a port without a frontend is not a drop);
 * unicast to such a port counts as drop-no-dst.
 *
 * DPDK ethdev ports (eth.c): every port the EAL probed (--vdev net_ring0,
 * net_tap0, a PCI NIC, ...) and every port-add ethdev (rte_dev_probe) is a
 * switch port. An ethdev port has N queue pairs (p->pairs; ethdev RX and
 * TX queue k): its q[2k] is the destination side of TX queue k
 * (rte_eth_tx_burst, always "running", no vhost queue behind it) and its
 * q[2k+1] the source side, a poll item doing rte_eth_rx_burst on RX queue
 * k. In xconnect and loopback mode N is 1 and everything touching the port
 * runs on the ethdev worker (the first worker, until a rebalance of a
 * switch without ethdev ports moves it): every queue that feeds an ethdev
 * port or is fed by one lives on that worker too. In learn mode N is by
 * default the number of workers (queues=, --eth-queues; at most what the
 * PMD offers), the RX queues are spread over the workers as vhost pairs
 * are (round-robin, pin, rxq-pin, rebalance) with RSS spreading flows over
 * them, and worker i sends on TX queue i (its own: no lock, no handoff);
 * a worker i >= N hands its packets for the port to worker i mod N
 * (sw_eth_txq).
 *
 * An ethdev port xconnected (or, in learn mode, sending) to a multi-queue
 * vhost port spreads what it receives over the vhost port's running RX
 * queues by a hash of the flow (the NIC's RSS hash when it gives one, else
 * MACs, IPv4 addresses and TCP/UDP ports): a flow stays on one queue, so it
 * stays in order.
 *
 * Idle ethdev ports and the polling policies: a port whose PMD has RX
 * interrupts (net_tap, most NICs; asked for with intr_conf.rxq) gives the
 * worker its interrupt fd, so the worker sleeps as it does on vhost kicks.
 * A port without them (net_ring, net_pcap, net_null) can only be polled:
 * its item lets the worker nap instead, for 16 us doubling up to
 * SW_ETH_NAP_US, so an idle switch costs little CPU and the first packet
 * after a quiet spell waits at most SW_ETH_NAP_US (busy polling resumes as
 * soon as it came).
 *
 * THREADS
 *
 * main.c's thread waits for signals (SIGINT/SIGTERM stop, SIGUSR1 prints
 * the table, SIGUSR2 rebalances) and prints the table every interval.
 * control's thread serves the vhost-user sockets. The control channel
 * (ctl_server.c) has its own thread, an epoll loop over its listening
 * socket and clients that never blocks on a client, and an admin thread
 * that runs the methods that wait for workers (port-add, port-del,
 * rxq-pin, rebalance) one at a time, so a slow port-del delays only the
 * client that asked for it (and readers for at most one handshake, while
 * s->lock is held). DPDK's telemetry thread reads counters (telemetry.c).
 */
#ifndef VRE_SWITCH_H
#define VRE_SWITCH_H

#include <pthread.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>

#include "vre_control.h"
#include "vre_dataplane.h"

#define SW_MAX_PAIRS 16        /* queue pairs of one vhost port */
#define SW_MAX_PORT_NO 65535u  /* highest port number */
#define SW_NAME_MAX 32         /* port names, with the terminator */
#define SW_DST_GRACE_MS 50
#define SW_ETH_NAP_US 1000

enum sw_mode { SW_LOOPBACK, SW_XCONNECT, SW_LEARN };
enum sw_kind { SW_VHOST, SW_ETHDEV };

/* What port-add asks for: the command line, the config file and the
 * JSON-RPC method each fill one and call sw_port_add. */
struct sw_port_spec {
	enum sw_kind kind;
	int number;                 /* -1: the lowest free number */
	char name[SW_NAME_MAX];     /* "": a default (see sw_port_add) */
	/* vhost */
	const char *path;
	bool client;
	uint16_t pairs;             /* 0 counts as 1 */
	uint16_t mtu;               /* offered MTU (mtu=, default 1500) */
	bool no_offloads;           /* offloads=off: no CSUM/TSO features offered */
	int pin[SW_MAX_PAIRS];      /* worker index per pair, -1: round-robin */
	bool pinned;                /* pin[] was filled */
	struct vre_sock_perm perm;  /* server mode: the socket's owner/group/mode */
	/* ethdev: devargs to hot-plug (rte_dev_probe), or an ethdev the EAL
	 * already probed (eth_id >= 0, devargs NULL) */
	const char *devargs;
	int eth_id;
	uint16_t eth_queues;        /* queues=: queue pairs wanted, 0: the default */
};
void sw_port_spec_init(struct sw_port_spec *spec);

/* Totals over the running queues and the counters of stopped ones. */
struct sw_port_totals {
	uint64_t rx_pkts, rx_bytes;  /* delivered to the guest (RX queues) */
	uint64_t tx_pkts, tx_bytes;  /* taken from the guest (TX queues) */
	uint64_t drops;              /* every reason, both directions */
	uint64_t drop_no_dst;
	uint64_t drop_no_rx_buf;     /* the guest gave no RX buffer in time */
	uint64_t drop_bad;           /* short header, bad chain, too big, broken ring, no mbuf */
	uint64_t notify_saturated;   /* notifications the guest's call eventfd did not take
				      * (its counter full, or a blocked write cut short) */
	uint64_t drop_offload;       /* offload headers refused, every reason (drop_ol[]) */
	uint64_t drop_ol[VRE_OL_DROP_COUNT];
	uint64_t drop_mtu;           /* frames over a destination's MTU (not GSO) */
	/* Offloads, on the vhost port whose queues did the work (also for
	 * what went to an ethdev port) */
	uint64_t gso_in, gso_in_bytes; /* GSO frames taken from the guest */
	uint64_t csum_in;            /* frames taken with NEEDS_CSUM */
	uint64_t gso_out;            /* GSO frames passed whole (to the guest, or to a port with TSO) */
	uint64_t csum_out;           /* NEEDS_CSUM passed on (to the guest, or to a port) */
	uint64_t sw_gso, sw_segs;    /* GSO frames the switch segmented, frames they became */
	uint64_t sw_csum;            /* checksums the switch completed */
	uint64_t data_valid;         /* frames from a NIC marked DATA_VALID */
};

struct sw_port;

/* One queue of a port, as the switch sees it. */
struct sw_queue {
	struct sw_port *port;
	uint16_t index;              /* vhost queue index */
	bool running;                /* between queue_start and queue_stop */
	struct vre_net_queue *nq;    /* valid while running */
	struct vre_worker *w;        /* owner: RX: the writer; TX/ctrl: the poller */
	uint16_t wi;                 /* w's index in s->pool (set when its item is added) */
	/* TX only (xconnect/loopback) */
	struct sw_queue *dst_q;      /* the RX queue this TX feeds, NULL: no peer */
	struct vre_net_queue *dst;   /* dst_q->nq while dst_q runs, else NULL (atomic) */
	/* ethdev RX (q[1]) xconnected to a vhost port: that port's RX queue of
	 * each pair, and their published pointers as dst/dst_q above; packets
	 * spread over the running ones by flow (pair_qs[0] == dst_q) */
	struct sw_queue *pair_qs[SW_MAX_PAIRS];
	struct vre_net_queue *pair_dsts[SW_MAX_PAIRS];
	uint16_t npairs;
	/* learn mode, vhost TX of pair 0 (q[1]): a SEND_RARP to announce, the
	 * MAC in the low 48 bits and bit 63 set (control thread stores, the
	 * learn worker takes it with an exchange); 0 when none */
	uint64_t announce;
	uint64_t drop_no_dst;        /* packets dropped because dst was stopped */
	uint64_t notify_saturated;   /* control's count for the queue at its last stop */
	uint64_t dst_lost_ns;        /* when dst was first seen NULL; 0: it is there */
	struct vre_poll_item item;   /* TX and control queue, ethdev RX */
	struct vre_net_tx_burst *burst; /* vhost TX queues only */
};

struct sw;
struct sw_lw;
struct rte_mempool;

/* One worker's per-burst scratch in a port (learn.c). */
struct sw_lsc {
	uint32_t stamp;
	uint32_t mask;
} __attribute__((aligned(64)));

/* An ethdev port's counters of one RX queue and of one TX queue, a line
 * each: each has one writer. */
struct sw_eth_rxc {
	uint64_t pkts, bytes;        /* taken from the port (rx_burst) */
} __attribute__((aligned(64)));

struct sw_eth_txc {
	uint64_t pkts, bytes;        /* the port took them (tx_burst) */
	uint64_t drop_full;          /* the port did not take them */
	uint64_t drop_prep;          /* refused by rte_eth_tx_prepare (offload flags) */
} __attribute__((aligned(64)));

struct sw_port {
	struct sw *sw;
	unsigned idx;                /* port number */
	uint32_t gen;                /* unique per port ever added (fdb entries) */
	char name[SW_NAME_MAX];
	bool eth;                    /* a DPDK ethdev port, else vhost-user */
	uint16_t pairs;
	struct sw_queue *q;          /* 2 * pairs (+1 control queue when pairs > 1) */
	uint16_t nq;
	/* learn mode and ethdev spreading: the RX queue of each pair while it
	 * runs, else NULL (published with release, cleared + synced) */
	struct vre_net_queue *rx_pub[SW_MAX_PAIRS];
	/* learn mode: the index of the worker that owns the RX queue of each
	 * pair of a vhost port, the only one that writes it; changed only
	 * while no sender runs (sw_learn_quiet). Unused for ethdev ports
	 * (sw_eth_txq) */
	uint16_t rx_wi[SW_MAX_PAIRS];
	/* learn mode: each worker's scratch for one burst, a line each */
	struct sw_lsc *lsc;
	/* vhost ports only */
	char *path;
	bool client;
	uint16_t mtu;                /* offered MTU (spec's mtu=) */
	bool no_offloads;            /* spec's offloads=off */
	int pin[SW_MAX_PAIRS];       /* worker index per pair, -1 = round-robin */
	struct vre_sock_perm perm;
	struct vre_net_dev *net;
	struct vre_dev *dev;
	/* DPDK ethdev ports only */
	uint16_t eth_id;
	char eth_name[64];
	char *devargs;               /* hot-plugged with these, else NULL */
	struct sw_pool *pool;        /* its mbufs (eth.c) */
	uint16_t eth_want;           /* spec's queues=, 0: the default */
	uint64_t eth_rss_hf;         /* RSS hash types in use, 0: no RSS */
	/* per queue (pairs entries each): RX queue k's counters are written
	 * by its poller, TX queue k's by worker k (sw_eth_txq) */
	struct sw_eth_rxc *eth_rxc;
	struct sw_eth_txc *eth_txc;
	uint64_t eth_tx_ol;          /* RTE_ETH_TX_OFFLOAD_* enabled on the port (what the
				      * switch leaves to it), see eth.c */
	uint16_t eth_mtu;
	int eth_rx_fd;               /* RX queue 0's interrupt fd (owned by the PMD), or -1 */
	bool eth_started;            /* rte_eth_dev_start succeeded */
	/* stats --clear: the raw totals at the last clear (s->lock) */
	struct sw_port_totals base;
};

/* What the hot path reads to find ports: immutable once published in
 * s->view, replaced (and the old one freed after a sync of every worker)
 * when a port comes or goes. */
struct sw_view {
	unsigned n;                  /* existing ports, in list[] by number */
	unsigned cap;                /* entries of by_no[] */
	struct sw_port **list;
	struct sw_port *by_no[];     /* NULL: no port with that number */
};

struct sw {
	enum sw_mode mode;
	struct sw_port **ports;      /* by number, cap entries; NULL: free */
	unsigned cap;
	unsigned nports, nvhost;     /* existing ports; of them vhost-user */
	struct sw_view *view;        /* published (atomic); learn mode's hot path */
	uint32_t next_gen;
	unsigned rr;                 /* round-robin cursor for RX queues */
	struct vre_worker_pool pool;
	struct vre_worker *learn_w;  /* learn mode: the ethdev worker */
	struct vre_server *server;
	struct sw_fdb *fdb;          /* learn mode */
	struct sw_lw *lw;            /* learn mode: per worker, learn.c */
	struct rte_mempool *ho_pool; /* learn mode, 2+ workers: handoff mbufs */
	struct sw_pool *free_pools;  /* ethdev pools of removed ports (eth.c) */
	unsigned nworkers_hint;      /* for sizing ethdev pools */
	unsigned eth_queues;         /* --eth-queues: default queue pairs of an ethdev port
				      * in learn mode, 0: one per worker */
	struct vre_worker_stats *wbase; /* stats --clear: per worker (s->lock) */
	pthread_mutex_t lock;        /* see the top of this file */
	pthread_mutex_t op_lock;
	pthread_rwlock_t keep;
	bool tel_off;                /* shutting down: telemetry answers nothing (s->lock) */
	bool polling;                /* sw_go ran: new ethdev ports are polled at once */
};

/* port.c: the one way in and out for a port. Both take s->op_lock; from
 * any thread but a worker or control's thread. sw_port_add returns the
 * port number (>= 0) or -errno, with why[] (a sentence for the user) set
 * on failure. */
int sw_port_add(struct sw *s, const struct sw_port_spec *spec, char *why, size_t whylen);
int sw_port_del(struct sw *s, unsigned number, char *why, size_t whylen);
/* The port with this number or name ("3", "vm1"), or NULL. s->lock held. */
struct sw_port *sw_port_find(struct sw *s, const char *number_or_name);
/* The ports given at start are all there: ethdev ports start being polled
 * (in port order), and every later one as soon as it is added. Until then
 * an ethdev port's frames wait in its RX ring, so none of them floods
 * before the other start ports exist (vhost queues cannot run before
 * control's thread starts anyway). */
void sw_go(struct sw *s);
/* Stops every queue and port (shutdown; counters stay readable), then
 * sw_ports_free frees them. */
void sw_ports_stop(struct sw *s);
void sw_ports_free(struct sw *s);
/* Owner and group names (or numbers) for --vhost owner=/group=, and an
 * octal mode (at most 0777) for mode=. 0 or -EINVAL. Any thread. */
int sw_parse_owner(const char *name, uid_t *uid);
int sw_parse_group(const char *name, gid_t *gid);
int sw_parse_mode(const char *text, unsigned *mode);
/* The ethdev worker: where everything touching ethdev ports runs. */
struct vre_worker *sw_eth_worker(struct sw *s);
/* Every worker has started a new pass since the call began. */
void sw_sync_all(struct sw *s);

/* learn.c */
struct sw_fdb *sw_fdb_create(unsigned aging_secs);
void sw_fdb_destroy(struct sw_fdb *f);
/* Live entries of existing ports (s->lock held). */
uint64_t sw_fdb_count(struct sw *s);
/* Forgets every entry (each worker sees it at its next burst).
 * Returns the entries that were live. s->lock held. */
uint64_t sw_fdb_flush(struct sw *s);
struct sw_fdb_row {
	uint8_t mac[6];
	unsigned port;
	uint32_t age_s;              /* seconds since the MAC last sent */
};
/* Up to max live entries into rows (s->lock held); returns the count. */
unsigned sw_fdb_list(struct sw *s, struct sw_fdb_row *rows, unsigned max);
/* SEND_RARP for vhost port p (control thread, inside the device's
 * callback, so p exists): queued for the port's first TX queue, whose poll
 * learns the MAC on p and floods a RARP from it. Learn mode only; the
 * other modes log it and do nothing. */
void sw_announce(struct sw_port *p, const uint8_t mac[6]);
int sw_learn_poll(struct vre_poll_item *it);
int sw_learn_eth_poll(struct vre_poll_item *it);
/* Deletes dead, aged and flushed entries (main.c's thread, once a second;
 * waits for the workers). Returns how many. */
unsigned sw_fdb_sweep(struct sw *s);
/* After the worker pool exists: per-worker state, and with 2+ workers the
 * handoff rings, their mbuf pool and each worker's drain item. 0 or
 * -errno with why[] set. */
int sw_learn_start(struct sw *s, char *why, size_t whylen);
/* Takes the drain items off the workers (shutdown, first). */
void sw_learn_stop(struct sw *s);
/* Frees what sw_learn_start made, once nothing sends any more. */
void sw_learn_free(struct sw *s, unsigned nworkers);
/* With every sender off its worker (learn TX items, ethdev RX items):
 * waits until the handoff rings are empty, so RX owners can change
 * (s->lock held; bounded). */
void sw_learn_quiet(struct sw *s);

/* eth.c */
struct rte_mbuf;
/* Probes devargs (hot-plug) and returns the new ethdev ids in ids[] (at
 * most max); or, with devargs NULL, checks eth_id. Returns the count or
 * -errno with why[] set. */
int sw_eth_probe(const char *devargs, uint16_t *ids, unsigned max, char *why, size_t whylen);
/* Gives p a mempool, configures and starts it. */
int sw_eth_open(struct sw *s, struct sw_port *p, char *why, size_t whylen);
/* Adds p's RX poll items to their workers (sq->w, set by sw_plan_port).
 * s->lock held. */
int sw_eth_attach(struct sw *s, struct sw_port *p);
/* Adds the poll item of one RX queue (p->q[2k+1]) to sq->w. s->lock held. */
int sw_eth_attach_queue(struct sw *s, struct sw_queue *sq);
/* Removes the RX items (s->lock held). */
void sw_eth_detach(struct sw_port *p);
/* The TX queue worker wi sends on, which is also the worker that sends on
 * it: wi itself when the port has a TX queue per worker, else worker
 * wi mod N, to which wi hands its packets over (learn.c). */
static inline unsigned sw_eth_txq(const struct sw_port *p, unsigned wi)
{
	return wi < p->pairs ? wi : wi % p->pairs;
}
/* Stops, closes and (when no other port uses its device) removes the
 * ethdev, and keeps its pool for the next ethdev port. After detach and a
 * sync of every worker. */
void sw_eth_close(struct sw *s, struct sw_port *p);
/* Stops (when started), closes and removes ethdev id without a switch
 * port (a probe whose port could not be added). */
void sw_eth_release(uint16_t id, bool started);
/* Creates the pools of the ethdev ports the EAL probed before any worker
 * or socket exists, so that a pool that does not fit fails the start with
 * its own line and nothing else. 0 or -errno with why[] set. */
int sw_eth_reserve_pools(struct sw *s, char *why, size_t whylen);
/* Frees the pools kept (at exit, when no port is left). */
void sw_eth_free_pools(struct sw *s);
/* Sends n mbufs on TX queue txq of ethdev port p; what it does not take is
 * freed and counted. Only the worker that owns txq (sw_eth_txq; the ethdev
 * worker outside learn mode). */
void sw_eth_send(struct sw_port *p, uint16_t txq, struct rte_mbuf **m, unsigned n);
/* Delivers n mbufs to the vhost RX queues dst[0..nd), each flow to one of
 * them (nd >= 1); the caller still owns and frees the mbufs. */
void sw_rx_spread(struct vre_net_queue **dst, unsigned nd, struct rte_mbuf **m, uint16_t n);
/* vhost TX queue -> ethdev port (the chains complete after the send). */
int sw_vhost_to_eth_poll(struct vre_poll_item *it);
/* ethdev RX -> its xconnect/loopback destination. */
int sw_eth_rx_poll(struct vre_poll_item *it);
/* Learn mode: the packets of sq's burst in mask, copied to ethdev port p's
 * TX queue txq. */
void sw_learn_to_eth(struct sw_queue *sq, struct sw_port *p, uint16_t txq, uint32_t mask);
/* A flow's hash (the NIC's RSS hash, else MACs, IPv4 addresses, ports). */
uint32_t sw_flow_hash(const struct rte_mbuf *m);
/* The port's pool, for mbufs going to it. */
struct rte_mempool *sw_eth_mempool(const struct sw_port *p);

/* fwd.c */
extern const struct vre_net_app_ops sw_app_ops;
/* Builds p's queue table (before the port is published). */
int sw_queues_create(struct sw *s, struct sw_port *p);
void sw_queues_free(struct sw_port *p);
/* Gives p's queues their workers and, in xconnect/loopback mode, links p
 * and its peer both ways (moving the peer's running TX items when their
 * worker or kind of destination changes). s->lock held; p is in s->ports. */
int sw_plan_port(struct sw *s, struct sw_port *p);
/* xconnect/loopback: p is going; its peer's TX queues lose their
 * destination. s->lock held, p's queues stopped. */
void sw_unlink_port(struct sw *s, struct sw_port *p);
/* Moves every queue to the next worker of the pool (worker i -> i+1 mod n)
 * through the quiesce handshake, under traffic: all items are removed
 * (each removal returns once its worker is out), the owners rotate, the
 * items are added again. Groups stay together, so every RX ring keeps a
 * single writer. Returns the items moved, 0 with one worker, -ENOTSUP with
 * ethdev ports outside learn mode (they belong to the first worker), -EIO when an item could
 * not be added back (logged; that queue is no longer polled). Takes
 * s->op_lock and s->lock. */
int sw_rebalance(struct sw *s);
/* Puts the RX queue of (p, pair) and the TX queues feeding it (learn
 * mode: the pair's own TX queue) on worker wi. -ENOTSUP for a queue that
 * must stay on the ethdev worker, -EINVAL for a bad pair or worker. Takes
 * s->op_lock and s->lock. */
int sw_rxq_pin(struct sw *s, unsigned port, unsigned pair, unsigned wi, char *why, size_t whylen);
/* The worker index of w, or -1. */
int sw_worker_index(const struct sw *s, const struct vre_worker *w);

/* Since the last stats --clear. s->lock held. */
void sw_port_totals(struct sw *s, struct sw_port *p, struct sw_port_totals *t);
/* Makes the current counters of every port and worker the new zero. */
void sw_stats_clear(struct sw *s);
/* A worker's counters since the last clear (s->lock held). */
void sw_worker_stats(struct sw *s, unsigned i, struct vre_worker_stats *st);

#endif
