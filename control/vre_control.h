/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * control — everything between a vhost-user socket and a set of ready
 * virtqueues.
 *
 * Offers: a server (one control thread, one epoll loop over every device's
 * socket), devices in server or client mode, the vhost-user protocol with
 * every field validated, the guest memory table, per-queue configuration
 * (size, addresses, base, kick/call/err fds, enable, inflight region).
 *
 * Needs: vring (rings, memory map, inflight layouts, logging), a device
 * model (struct vre_device_ops: features, config space, queue count), and a
 * data plane reached only through queue_start/queue_stop. No DPDK, no packet
 * knowledge, never touches ring memory on the hot path.
 *
 * The quiesce handshake (control -> data plane): control never changes a
 * queue or the memory map while a worker may be inside that queue. Before a
 * request that changes them (memory table, ring layout, base, stop, reset,
 * disconnect), control calls ops->queue_stop() on every running queue of the
 * device; queue_stop returns only once no worker can touch the queue (the
 * data plane's workers acknowledge, see dataplane/). Control then applies the
 * change, unmaps old memory, rebinds the rings to the new map, and calls
 * ops->queue_start() for the queues that are still ready. Workers take no
 * lock per packet.
 *
 * Quiesce in detail (control/msg_table.c enforces it for every request
 * the message table marks: the whole device for memory table changes,
 * features, inflight regions and resets; only the named queue for ring
 * num/addr/base, kick/call/err fds, enable and GET_VRING_BASE):
 *   1. for every running queue in scope: ops->queue_stop(q);
 *      q->running = false;
 *   2. the handler changes memory or ring state. A new memory map is built
 *      completely (every region mmapped and checked) before the old one is
 *      touched; the old regions are unmapped only now, when no queue runs;
 *   3. every queue that is started && enabled && has memory is rebound to
 *      the current map (vre_vq_rebind, indexes and inflight kept) or set up
 *      (vre_vq_init, set_base, inflight attach) and handed back with
 *      ops->queue_start(q).
 * Disconnect runs steps 1 and then drops everything (unmap, close fds).
 *
 * Connection state machine (per device; one frontend at a time):
 *
 *   server mode:  LISTENING --accept--> CONNECTED --EOF/error--> LISTENING
 *                 (a second frontend while CONNECTED is refused: closed;
 *                 unless the current one has hung up already, then that
 *                 one is finished and the new one taken)
 *   client mode:  WAITING --timer--> connect() --ok--> CONNECTED
 *                    ^      \--fail: back-off 100 ms, doubling to 1 s--/
 *                    \-------------------- EOF/error ------------------/
 *
 *   Inside CONNECTED, the protocol state: no owner -> SET_OWNER -> owned
 *   (a second SET_OWNER fails). Before SET_OWNER only the handshake that
 *   QEMU sends first is accepted: GET_FEATURES, GET/SET_PROTOCOL_FEATURES,
 *   GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, SET_BACKEND_REQ_FD, GET_CONFIG; and
 *   SET_VRING_ENABLE and GET_VRING_BASE, which DPDK's virtio-user sends on
 *   a new connection to stop the device it ran with a backend that died.
 *   Protocol features take effect at SET_PROTOCOL_FEATURES (QEMU uses
 *   need_reply before SET_FEATURES). SET_VRING_ADDR needs a memory table.
 *   Per queue:
 *     idle --NUM+ADDR+KICK(or no-fd bit)--> started
 *     started && enabled && memory  ==> running (queue_start called)
 *     enabled: implied at start without VHOST_USER_F_PROTOCOL_FEATURES,
 *              else SET_VRING_ENABLE(1)
 *     running/started --GET_VRING_BASE, RESET_OWNER/RESET_DEVICE,
 *              disconnect--> idle (queue_stop first if running);
 *              SET_VRING_ENABLE(0) only takes it out of running.
 *   A protocol violation (bad header, oversized payload, send failure)
 *   drops the connection; so does a message left incomplete for longer
 *   than the server's message timeout (vre_server_set_msg_timeout; a
 *   connection idle between messages stays). A bad request gets a failure
 *   reply when one is due and leaves the connection up; every refused
 *   request costs one log line with its name and the reason, and the lines
 *   one connection provokes are rate-limited (vre_log.h: VRE_LOG_RL).
 *
 * Nothing a frontend controls can hold a thread that other devices share
 * (the control thread, the workers): sockets are used with MSG_DONTWAIT;
 * kick fds are watched through a dup in epoll and never read; call fds are
 * written with a guard that cuts a blocked write short (vre_queue_notify);
 * region and inflight fds must be memfd, tmpfs or hugetlbfs, asked in a way
 * no other file system is consulted; fds of other kinds are closed by a
 * reaper thread when their close could wait (a FUSE file's FLUSH).
 *
 * Guest memory that the frontend shrinks under a running device (SIGBUS)
 * costs only that device its connection: see vre_fault.h.
 *
 * Live migration (dirty_log.c): with LOG_SHMFD negotiated, SET_LOG_BASE maps
 * the frontend's dirty bitmap (checked like guest memory, covering the
 * memory table, replied to always); VHOST_F_LOG_ALL, offered when the
 * model's protocol features allow LOG_SHMFD, may be turned on and off by
 * SET_FEATURES on started queues. Each queue gets the log at (re)start
 * (vre_vq_set_log): the rings mark their own writes, the model marks what
 * it writes into buffers (vre_vq_log_iov) while q->vq.log is set.
 *
 * Replies: a request that always replies (GET_*) gets its reply, with the
 * spec's failure encoding where there is one (GET_CONFIG: size 0;
 * GET_INFLIGHT_FD: mmap_size 0 and no fd). GET_VRING_BASE and the other
 * GETs have none, so a malformed one drops the connection rather than
 * leaving the frontend waiting. Other requests reply a u64 status (0 ok,
 * 1 failure) when REPLY_ACK is negotiated and need_reply is set. Replies
 * are never waited for: a frontend that does not read them is dropped.
 */
#ifndef VRE_CONTROL_H
#define VRE_CONTROL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "vre_vring.h"

/* The signal control uses to cut short a write to a frontend's eventfd
 * that blocks (control/notify.c). Its handler is installed on the first
 * such write unless the application has one; a thread that writes call
 * fds gets it unblocked. */
#define VRE_NOTIFY_SIGNAL (SIGRTMIN + 4)
/* How long a frontend may stay in the middle of a message, by default. */
#define VRE_MSG_TIMEOUT_MS 5000

struct vre_server;
struct vre_dev;

/* Control's view of one virtqueue; the data plane reads it between
 * queue_start and queue_stop and never changes the configuration fields. */
struct vre_queue {
	struct vre_vq vq;   /* valid while running */
	struct vre_dev *dev;
	uint16_t index;
	int kick_fd;        /* -1: no kick fd (the queue is polled) */
	int call_fd;        /* -1: the driver is never notified */
	int err_fd;         /* -1: none */
	bool started;       /* size, addresses and kick known; not stopped */
	bool enabled;       /* SET_VRING_ENABLE (or implied without PROTOCOL_FEATURES) */
	bool running;       /* started && enabled && memory: handed to the data plane */
	void *dp;           /* the data plane's per-queue state, owned by it */
	/* Notifications the driver did not get from us: the call eventfd's
	 * counter was full (the frontend filled it; it has a notification
	 * pending anyway), or the write blocked and was cut short. Written by
	 * the thread that notifies, read by anyone (relaxed atomics). */
	uint64_t notify_saturated;
	/* A notify blocked on call_fd: later ones are skipped (and counted)
	 * until a new call fd arrives; the device is being disconnected. */
	bool call_blocked;
};

/* A device model (virtio-net, virtio-blk). Callbacks run on the control
 * thread (or on the thread calling vre_dev_destroy / vre_server_destroy),
 * never two at once for one server, and must not call vre_dev_destroy or
 * vre_dev_get_* themselves (the server lock is held). ctx is the pointer
 * given to vre_dev_create. */
struct vre_device_ops {
	const char *name;
	uint64_t features;          /* virtio features offered */
	/* vhost-user protocol features the model allows; control offers the
	 * intersection with what it implements (MQ, RARP if send_rarp,
	 * REPLY_ACK, MTU if set_mtu, BACKEND_REQ, CONFIG if config_size,
	 * INFLIGHT_SHMFD, RESET_DEVICE, CONFIGURE_MEM_SLOTS, STATUS).
	 * 0 means "no opt-outs": everything control implements. */
	uint64_t protocol_features;
	uint16_t max_queues;        /* GET_QUEUE_NUM (queues per device) */
	uint32_t config_size;       /* bytes of config space, 0 for none */
	int (*get_config)(void *ctx, uint32_t offset, void *buf, uint32_t len);
	int (*set_config)(void *ctx, uint32_t offset, const void *buf, uint32_t len);
	/* Negotiated features, before any queue starts. Optional. */
	int (*set_features)(void *ctx, uint64_t features);
	int (*set_mtu)(void *ctx, uint16_t mtu);                /* optional */
	int (*send_rarp)(void *ctx, const uint8_t mac[6]);      /* optional */
	/* The queue is started, enabled and has memory: poll it. */
	int (*queue_start)(void *ctx, struct vre_queue *q);
	/* Stop polling q; return only when no worker is inside it. */
	void (*queue_stop)(void *ctx, struct vre_queue *q);
	/* The frontend left or reset the device; every queue is stopped. */
	void (*disconnected)(void *ctx);                        /* optional */
};

/* Who may connect to a listening socket: the socket file's mode, owner and
 * group. All zero (the default) leaves the file as bind() and the umask
 * make it. Added in 0.1 (additive: a zeroed config behaves as before). */
struct vre_sock_perm {
	unsigned mode;       /* permission bits (e.g. 0660); 0: leave */
	bool set_owner;      /* chown to owner */
	bool set_group;      /* chgrp to group */
	uid_t owner;
	gid_t group;
};

struct vre_dev_config {
	const char *path;    /* unix socket path */
	bool client;         /* connect to a listening frontend (with back-off) */
	const struct vre_device_ops *ops;
	void *ctx;
	/* Server mode: the socket file's permissions (e.g. so that QEMU
	 * running as an unprivileged user, as libvirt runs it, can connect to
	 * a socket created as root). Applied before any frontend can connect:
	 * see vre_listen_unix. Ignored in client mode. */
	struct vre_sock_perm perm;
};

/* Creates a listening, non-blocking, close-on-exec unix stream socket at
 * path. A socket file already there (left by an earlier run) is replaced;
 * any other file is not (-EEXIST). With perm set, the socket is bound in a
 * private directory (mode 0700) next to path, given its owner, group and
 * mode there, and only then renamed to path: nobody can connect to it with
 * other permissions, whatever the umask, and no process-wide umask change is
 * needed. Returns the fd or -errno (-ENAMETOOLONG when path, or the
 * private directory's name next to it, does not fit a socket address). */
int vre_listen_unix(const char *path, const struct vre_sock_perm *perm, int backlog);

int vre_server_create(struct vre_server **out);
/* Starts the control thread. */
int vre_server_start(struct vre_server *s);
/* Without a control thread (not started): runs one round of the loop on
 * the caller's thread, waiting up to timeout_ms (0: only what is ready).
 * Returns the number of events handled, -EBUSY when the thread runs. For
 * fuzzing and single-threaded embedding. */
int vre_server_poll(struct vre_server *s, int timeout_ms);
/* Stops the control thread, disconnecting and destroying every device. */
void vre_server_destroy(struct vre_server *s);
/* How long a connection may stay in the middle of a message (part of a
 * header, or a header whose payload does not come) before it is dropped;
 * 0: forever. Default VRE_MSG_TIMEOUT_MS. */
void vre_server_set_msg_timeout(struct vre_server *s, unsigned ms);

int vre_dev_create(struct vre_server *s, const struct vre_dev_config *cfg,
		   struct vre_dev **out);
void vre_dev_destroy(struct vre_dev *dev);

/* Negotiated virtio features (0 until SET_FEATURES). */
uint64_t vre_dev_features(const struct vre_dev *dev);
uint16_t vre_dev_num_queues(const struct vre_dev *dev);
struct vre_queue *vre_dev_queue(struct vre_dev *dev, uint16_t index);

/* Message counters of one device (read without a lock: approximate). */
struct vre_dev_stats {
	uint64_t messages;    /* requests handled */
	uint64_t failed;      /* requests that failed validation or handling */
	uint64_t unknown;     /* unknown or unsupported request codes */
	uint64_t connects;    /* frontends that connected */
	uint64_t disconnects; /* connections that ended */
	uint64_t memory_faults; /* connections dropped because guest memory
				 * vanished under them (vre_fault.h) */
	uint64_t notify_blocked; /* connections dropped because a write to
				  * their call eventfd blocked */
	uint64_t stalled;     /* connections dropped mid-message (timeout) */
};
void vre_dev_get_stats(struct vre_dev *dev, struct vre_dev_stats *out);

/* A consistent picture of a device's negotiated state (taken under the
 * server lock), for tests, monitoring and the integration suites. */
struct vre_dev_snapshot {
	bool connected;
	bool owner;
	uint64_t features;           /* negotiated virtio features */
	uint64_t protocol_features;  /* negotiated protocol features */
	uint32_t mem_regions;        /* regions mapped now */
	uint16_t queues_started;
	uint16_t queues_enabled;
	uint16_t queues_running;     /* handed to the data plane */
};
void vre_dev_get_snapshot(struct vre_dev *dev, struct vre_dev_snapshot *out);

/* Makes an already connected stream socket (e.g. one end of a socketpair)
 * this device's connection, dropping any current one. For tests and
 * fuzzing: the server owns fd from then on. */
int vre_dev_attach_fd(struct vre_dev *dev, int fd);
/* Whether a frontend is connected now. */
bool vre_dev_connected(struct vre_dev *dev);

/* Writes the call eventfd (no-op without one). Safe from a worker: it
 * never blocks for long. A full counter counts in q->notify_saturated; a
 * write that blocks (the frontend cleared O_NONBLOCK on a full counter) is
 * cut short within tens of milliseconds, the queue's later notifications
 * are skipped and the device's connection is dropped. */
void vre_queue_notify(struct vre_queue *q);

#endif
