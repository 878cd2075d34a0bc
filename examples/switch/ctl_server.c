/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vre-switch's control channel: a unix socket speaking JSON-RPC 2.0, its
 * clients, the control thread and the admin thread. The rules (limits,
 * what runs where) are in ctl_server.h; the methods in ctl_rpc.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "ctl_server.h"
#include "vre_log.h"

#define ROOM "ctl"
#define KEY_LISTEN 1
#define KEY_WAKE 2
#define KEY_DONE 3
#define KEY_CLIENT0 16       /* client ids start here */
#define REQS_PER_ROUND 16    /* requests of one client per loop round */

/* The incremental request scanner: brace depth outside strings. */
struct scan {
	size_t start;            /* first byte of the request (after blanks) */
	size_t pos;              /* next byte to look at */
	unsigned depth;
	bool started, in_str, esc;
};

struct client {
	uint64_t id;
	int fd;
	char *in;                /* SW_CTL_MAX_REQUEST bytes */
	size_t in_len;
	struct scan sc;
	char *out;
	size_t out_len, out_off, out_cap;
	uint64_t connect_ms;
	uint64_t partial_ms;     /* when the unfinished request began */
	uint64_t last_ms;        /* last byte read */
	uint64_t out_ms;         /* last progress writing out (while out_len) */
	bool served;             /* answered a request already */
	bool busy;               /* its slow request is on the admin thread */
	bool closing;            /* close once out is written */
	bool eof;                /* read side closed */
	bool want_out;           /* EPOLLOUT asked */
	bool hup;                /* the peer is gone; not watched any more */
	struct client *next;
};

struct job {
	uint64_t client;
	const struct sw_rpc_method *m;
	json_t *params, *id;
	char *response;          /* the line to send, NULL: a notification */
	struct job *next;
};

struct sw_ctl {
	struct sw *s;
	char *path;
	int lfd, epfd, wake_fd, done_fd;
	bool listening;          /* lfd is in epoll (not at the client cap) */
	pthread_t thread, admin;
	bool thread_up, admin_up;
	struct client *clients;
	unsigned nclients;
	uint64_t next_id;
	pthread_mutex_t mu;      /* the job lists and stop */
	pthread_cond_t cv;
	struct job *todo, **todo_tail, *done;
	bool stop;
	/* One limit for the lines about all clients, not one per client:
	 * clients are cheap, so 200 of them would each get their own burst.
	 * The control thread owns it. */
	struct vre_ratelimit log_rl;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One line about a client: a hostile client (or 200 of them) cannot flood
 * the log. */
#define client_log(c, ...) VRE_LOG_RL(&(c)->log_rl, VRE_LOG_WARN, ROOM, __VA_ARGS__)

static int ep(struct sw_ctl *c, int op, int fd, uint32_t events, uint64_t key)
{
	struct epoll_event ev = { .events = events, .data.u64 = key };

	return epoll_ctl(c->epfd, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev) < 0 ? -errno : 0;
}

/* ---- responses ---- */

static char *line_of(json_t *resp)
{
	char *t = json_dumps(resp, JSON_COMPACT), *l;
	size_t n;

	if (!t)
		return NULL;
	n = strlen(t);
	l = realloc(t, n + 2);
	if (!l) {
		free(t);
		return NULL;
	}
	l[n] = '\n';
	l[n + 1] = 0;
	return l;
}

static json_t *error_obj(const struct rpc_error *e)
{
	json_t *o = json_pack("{s:i, s:s}", "code", e->code, "message", e->msg);

	if (o && e->err)
		json_object_set_new(o, "data", json_pack("{s:s, s:i}", "errno",
							strerrorname_np(e->err) ?
							strerrorname_np(e->err) : "?",
							"errno_value", e->err));
	return o;
}

/* The response line for id (NULL id: a notification, no line unless the
 * request could not be read at all, then id is null). */
static char *response(json_t *id, json_t *result, const struct rpc_error *e)
{
	json_t *r = json_pack("{s:s, s:O?}", "jsonrpc", "2.0", "id", id ? id : json_null());
	char *l;

	if (!r)
		return NULL;
	if (result)
		json_object_set(r, "result", result);
	else
		json_object_set_new(r, "error", error_obj(e));
	l = line_of(r);
	json_decref(r);
	return l;
}

static void seterr(struct rpc_error *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(struct rpc_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	e->code = code;
	e->err = 0;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

/* ---- clients ---- */

static struct client *find_client(struct sw_ctl *c, uint64_t id)
{
	for (struct client *k = c->clients; k; k = k->next)
		if (k->id == id)
			return k;
	return NULL;
}

static void client_free(struct sw_ctl *c, struct client *k)
{
	for (struct client **p = &c->clients; *p; p = &(*p)->next)
		if (*p == k) {
			*p = k->next;
			break;
		}
	ep(c, EPOLL_CTL_DEL, k->fd, 0, 0);
	close(k->fd);
	free(k->in);
	free(k->out);
	free(k);
	c->nclients--;
	/* a slot is free: take connections from the backlog again */
	if (!c->listening && ep(c, EPOLL_CTL_ADD, c->lfd, EPOLLIN, KEY_LISTEN) == 0)
		c->listening = true;
}

static void want_out(struct sw_ctl *c, struct client *k, bool on)
{
	if (k->want_out == on || k->hup)
		return;
	k->want_out = on;
	ep(c, EPOLL_CTL_MOD, k->fd, EPOLLIN | (on ? EPOLLOUT : 0), k->id);
}

/* Writes what it can. Returns false when the client is gone (freed). */
static bool flush_out(struct sw_ctl *c, struct client *k)
{
	while (k->out_off < k->out_len) {
		ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			want_out(c, k, true);
			return true;
		}
		if (n <= 0) {
			client_free(c, k);
			return false;
		}
		k->out_off += (size_t)n;
		k->out_ms = now_ms();
	}
	k->out_off = k->out_len = 0;
	want_out(c, k, false);
	if (k->closing || (k->eof && !k->busy && !k->in_len)) {
		client_free(c, k);
		return false;
	}
	return true;
}

/* Queues a response line (takes it). False when the client is gone. */
static bool send_line(struct sw_ctl *c, struct client *k, char *line)
{
	size_t n;

	if (!line)
		return true;
	n = strlen(line);
	if (k->out_len + n > CTL_MAX_OUT) {
		client_log(c, "control client %llu does not read its answers (%zu bytes waiting): closed",
		     (unsigned long long)k->id, k->out_len);
		free(line);
		client_free(c, k);
		return false;
	}
	if (k->out_len + n > k->out_cap) {
		size_t cap = k->out_cap ? k->out_cap : 4096;
		char *o;

		while (cap < k->out_len + n)
			cap *= 2;
		o = realloc(k->out, cap);
		if (!o) {
			free(line);
			client_free(c, k);
			return false;
		}
		k->out = o;
		k->out_cap = cap;
	}
	if (!k->out_len)
		k->out_ms = now_ms();
	memcpy(k->out + k->out_len, line, n);
	k->out_len += n;
	free(line);
	return flush_out(c, k);
}

/* A fatal input error: the error line, then the connection closes. */
static bool refuse(struct sw_ctl *c, struct client *k, int code, const char *msg)
{
	struct rpc_error e;

	seterr(&e, code, "%s", msg);
	client_log(c, "control client %llu: %s: closed", (unsigned long long)k->id, msg);
	k->closing = true;
	k->in_len = 0;
	return send_line(c, k, response(NULL, NULL, &e));
}

/* ---- requests ---- */

static void enqueue(struct sw_ctl *c, struct job *j)
{
	pthread_mutex_lock(&c->mu);
	j->next = NULL;
	*c->todo_tail = j;
	c->todo_tail = &j->next;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static char *run_method(struct sw *s, const struct sw_rpc_method *m, json_t *params, json_t *id)
{
	struct rpc_error e = { .code = RPC_INTERNAL_ERROR, .msg = "internal error" };
	json_t *res = m->fn(s, params, &e);
	char *l = id ? response(id, res, &e) : NULL;

	json_decref(res);
	return l;
}

/* One complete request object. False when the client is gone. */
static bool handle(struct sw_ctl *c, struct client *k, json_t *req)
{
	const struct sw_rpc_method *m;
	json_t *id, *params, *v;
	const char *method;
	struct rpc_error e;
	bool ok = true;

	if (!json_is_object(req)) {
		seterr(&e, RPC_INVALID_REQUEST, json_is_array(req) ?
		       "batch requests are not supported" : "a request must be a JSON object");
		return send_line(c, k, response(NULL, NULL, &e));
	}
	id = json_object_get(req, "id");
	if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id)) {
		seterr(&e, RPC_INVALID_REQUEST, "id must be a string, an integer or null");
		return send_line(c, k, response(NULL, NULL, &e));
	}
	v = json_object_get(req, "jsonrpc");
	method = json_string_value(json_object_get(req, "method"));
	params = json_object_get(req, "params");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0)
		seterr(&e, RPC_INVALID_REQUEST, "\"jsonrpc\": \"2.0\" is missing");
	else if (!method)
		seterr(&e, RPC_INVALID_REQUEST, "\"method\" must be a string");
	else if (params && !json_is_object(params))
		seterr(&e, RPC_INVALID_PARAMS, "\"params\" must be an object (named parameters)");
	else if (!(m = sw_rpc_find(method)))
		seterr(&e, RPC_METHOD_NOT_FOUND, "no method '%.64s' (the methods method lists them)",
		       method);
	else
		goto good;
	return id ? send_line(c, k, response(id, NULL, &e)) : true;
good:
	params = params ? json_incref(params) : json_object();
	if (m->slow) {
		struct job *j = calloc(1, sizeof(*j));

		if (!j) {
			json_decref(params);
			seterr(&e, RPC_INTERNAL_ERROR, "out of memory");
			return send_line(c, k, response(id, NULL, &e));
		}
		j->client = k->id;
		j->m = m;
		j->params = params;
		j->id = id ? json_incref(id) : NULL;
		k->busy = true;
		enqueue(c, j);
		return true;
	}
	ok = send_line(c, k, run_method(c->s, m, params, id));
	json_decref(params);
	return ok;
}

static void scan_reset(struct scan *sc)
{
	memset(sc, 0, sizeof(*sc));
}

/* Looks at the bytes not seen yet. True when in[sc->start, sc->pos) is a
 * complete object or array; false when more bytes are needed; sets
 * *garbage for input that cannot start a request. */
static bool scan(struct client *k, bool *garbage)
{
	struct scan *sc = &k->sc;

	*garbage = false;
	for (; sc->pos < k->in_len; sc->pos++) {
		char ch = k->in[sc->pos];

		if (!sc->started) {
			if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
				sc->start = sc->pos + 1;
				continue;
			}
			if (ch != '{' && ch != '[') {
				*garbage = true;
				return false;
			}
			sc->started = true;
			sc->depth = 1;
			continue;
		}
		if (sc->in_str) {
			if (sc->esc)
				sc->esc = false;
			else if (ch == '\\')
				sc->esc = true;
			else if (ch == '"')
				sc->in_str = false;
		} else if (ch == '"') {
			sc->in_str = true;
		} else if (ch == '{' || ch == '[') {
			sc->depth++;
		} else if ((ch == '}' || ch == ']') && --sc->depth == 0) {
			sc->pos++;
			return true;
		}
	}
	return false;
}

/* Handles the complete requests in k's buffer, at most REQS_PER_ROUND.
 * Returns true when more may wait (call again next round), false when
 * done or the client is gone (*gone). */
static bool process(struct sw_ctl *c, struct client *k, bool *gone)
{
	*gone = false;
	for (int i = 0; i < REQS_PER_ROUND; i++) {
		json_error_t err;
		json_t *req;
		bool garbage, ok;
		size_t end;

		if (k->busy || k->closing)
			return false;
		if (!scan(k, &garbage)) {
			if (garbage) {
				*gone = !refuse(c, k, RPC_PARSE_ERROR, "input is not a JSON request");
				return false;
			}
			if (k->sc.start == k->in_len) /* only blanks: drop them */
				k->in_len = 0, scan_reset(&k->sc);
			if (k->in_len == SW_CTL_MAX_REQUEST) {
				*gone = !refuse(c, k, RPC_INVALID_REQUEST,
						"request larger than 65536 bytes");
				return false;
			}
			if (k->in_len && !k->partial_ms)
				k->partial_ms = now_ms();
			if (k->eof && !k->busy && k->out_len == 0) {
				client_free(c, k);
				*gone = true;
			}
			return false;
		}
		end = k->sc.pos;
		req = json_loadb(k->in + k->sc.start, end - k->sc.start, JSON_REJECT_DUPLICATES, &err);
		memmove(k->in, k->in + end, k->in_len - end);
		k->in_len -= end;
		scan_reset(&k->sc);
		k->partial_ms = 0;
		if (!req) {
			char msg[200];

			snprintf(msg, sizeof(msg), "not JSON: %s at byte %d", err.text, err.position);
			*gone = !refuse(c, k, RPC_PARSE_ERROR, msg);
			return false;
		}
		k->served = true;
		ok = handle(c, k, req);
		json_decref(req);
		if (!ok) {
			*gone = true;
			return false;
		}
	}
	return true;
}

static void on_readable(struct sw_ctl *c, struct client *k)
{
	bool gone;

	for (;;) {
		ssize_t n;

		if (k->in_len == SW_CTL_MAX_REQUEST)
			break; /* process() decides: a request or too large */
		n = recv(k->fd, k->in + k->in_len, SW_CTL_MAX_REQUEST - k->in_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			k->eof = true;
			/* no more input: stop watching it (level-triggered EOF) */
			ep(c, EPOLL_CTL_MOD, k->fd, k->want_out ? EPOLLOUT : 0, k->id);
			break;
		}
		k->in_len += (size_t)n;
		k->last_ms = now_ms();
	}
	process(c, k, &gone);
}

static void on_listen(struct sw_ctl *c)
{
	while (c->nclients < CTL_MAX_CLIENTS) {
		int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct client *k;

		if (fd < 0)
			return;
		k = calloc(1, sizeof(*k));
		if (k)
			k->in = malloc(SW_CTL_MAX_REQUEST);
		if (!k || !k->in) {
			if (k)
				free(k);
			close(fd);
			return;
		}
		k->fd = fd;
		k->id = c->next_id++;
		k->connect_ms = k->last_ms = now_ms();
		if (ep(c, EPOLL_CTL_ADD, fd, EPOLLIN, k->id) < 0) {
			free(k->in);
			free(k);
			close(fd);
			return;
		}
		k->next = c->clients;
		c->clients = k;
		c->nclients++;
	}
	/* at the cap: the rest wait in the backlog until a client leaves */
	if (c->listening && ep(c, EPOLL_CTL_DEL, c->lfd, 0, 0) == 0)
		c->listening = false;
}

/* Answers of the admin thread to their clients (if still there). */
static void on_done(struct sw_ctl *c)
{
	struct job *j, *next;
	uint64_t v;

	if (read(c->done_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		VRE_ERR(ROOM, "done eventfd: %s", strerror(errno));
	pthread_mutex_lock(&c->mu);
	j = c->done;
	c->done = NULL;
	pthread_mutex_unlock(&c->mu);
	for (; j; j = next) {
		struct client *k = find_client(c, j->client);

		next = j->next;
		if (k) {
			k->busy = false;
			send_line(c, k, j->response); /* takes it */
			j->response = NULL;
		}
		free(j->response);
		free(j);
	}
}

/* Drops clients that stalled mid-request (or never said anything), and
 * idle ones after CTL_IDLE_MS. */
static void check_timeouts(struct sw_ctl *c)
{
	uint64_t now = now_ms();
	struct client *k, *next;

	for (k = c->clients; k; k = next) {
		next = k->next;
		if (k->out_len && now - k->out_ms > CTL_STALL_MS) {
			client_log(c, "control client %llu has not read its answers for %u ms: closed",
			     (unsigned long long)k->id, CTL_STALL_MS);
			client_free(c, k);
			continue;
		}
		if (k->busy || k->out_len)
			continue;
		if (k->partial_ms && now - k->partial_ms > CTL_STALL_MS) {
			client_log(c, "control client %llu left a request unfinished for %u ms (%zu bytes): "
			     "closed", (unsigned long long)k->id, CTL_STALL_MS, k->in_len);
			client_free(c, k);
		} else if (!k->served && !k->in_len && now - k->connect_ms > CTL_STALL_MS) {
			client_log(c, "control client %llu sent nothing for %u ms: closed",
			     (unsigned long long)k->id, CTL_STALL_MS);
			client_free(c, k);
		} else if (k->served && !k->in_len && now - k->last_ms > CTL_IDLE_MS) {
			client_free(c, k);
		}
	}
}

static void *ctl_thread(void *arg)
{
	struct sw_ctl *c = arg;
	bool more = false;

	for (;;) {
		struct epoll_event evs[32];
		int n = epoll_wait(c->epfd, evs, 32, more ? 0 : 250);

		if (n < 0 && errno != EINTR) {
			VRE_ERR(ROOM, "epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uint64_t key = evs[i].data.u64;
			struct client *k;

			if (key == KEY_WAKE) {
				vre_ratelimit_flush(&c->log_rl, VRE_LOG_WARN, ROOM, true);
				return NULL;
			}
			if (key == KEY_LISTEN) {
				on_listen(c);
			} else if (key == KEY_DONE) {
				on_done(c);
			} else if ((k = find_client(c, key))) {
				if ((evs[i].events & EPOLLOUT) && !flush_out(c, k))
					continue;
				if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					continue;
				if (!k->eof) {
					on_readable(c, k);
				} else if (k->busy) {
					/* hung up while its request runs: stop
					 * watching (HUP is level-triggered); the
					 * answer's send will fail and free it */
					ep(c, EPOLL_CTL_DEL, k->fd, 0, 0);
					k->hup = true;
				} else {
					client_free(c, k);
				}
			}
		}
		/* clients with requests left in their buffers, round-robin */
		more = false;
		for (struct client *k = c->clients, *next; k; k = next) {
			bool gone;

			next = k->next;
			if (k->in_len && !k->busy && !k->closing)
				more |= process(c, k, &gone) && !gone;
		}
		check_timeouts(c);
		vre_ratelimit_flush(&c->log_rl, VRE_LOG_WARN, ROOM, false);
	}
}

static void *admin_thread(void *arg)
{
	struct sw_ctl *c = arg;
	uint64_t one = 1;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct job *j;

		while (!c->todo && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		j = c->todo;
		c->todo = j->next;
		if (!c->todo)
			c->todo_tail = &c->todo;
		pthread_mutex_unlock(&c->mu);
		j->response = run_method(c->s, j->m, j->params, j->id);
		json_decref(j->params);
		json_decref(j->id);
		j->params = j->id = NULL;
		pthread_mutex_lock(&c->mu);
		j->next = c->done;
		c->done = j;
		if (write(c->done_fd, &one, sizeof(one)) < 0)
			VRE_ERR(ROOM, "done eventfd: %s", strerror(errno));
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* ---- start / stop ---- */

/* Whether a control socket at path answers (another switch owns it). */
static bool live(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool yes;

	if (fd < 0)
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	yes = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return yes;
}

/* /run/vre: the directory of the default path may not exist yet (the
 * systemd unit makes it with RuntimeDirectory=, a hand start may not). */
static void make_parent(const char *path)
{
	char dir[108];
	const char *slash = strrchr(path, '/');

	if (!slash || slash == path || (size_t)(slash - path) >= sizeof(dir))
		return;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = 0;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		VRE_WARN(ROOM, "cannot create %s: %s", dir, strerror(errno));
}

void sw_ctl_stop(struct sw_ctl *c)
{
	uint64_t one = 1;

	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->thread_up) {
		if (write(c->wake_fd, &one, sizeof(one)) < 0)
			VRE_ERR(ROOM, "wake eventfd: %s", strerror(errno));
		pthread_join(c->thread, NULL);
	}
	if (c->admin_up)
		pthread_join(c->admin, NULL);
	while (c->clients)
		client_free(c, c->clients);
	for (struct job *j = c->todo, *n; j; j = n) {
		n = j->next;
		json_decref(j->params);
		json_decref(j->id);
		free(j);
	}
	for (struct job *j = c->done, *n; j; j = n) {
		n = j->next;
		free(j->response);
		free(j);
	}
	if (c->lfd >= 0) {
		close(c->lfd);
		unlink(c->path);
	}
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->done_fd >= 0)
		close(c->done_fd);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->path);
	free(c);
}

int sw_ctl_start(struct sw *s, const char *path, const struct vre_sock_perm *perm,
		 struct sw_ctl **out, char *why, size_t whylen)
{
	struct sw_ctl *c = calloc(1, sizeof(*c));
	int r;

	if (!c) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	c->s = s;
	c->lfd = c->epfd = c->wake_fd = c->done_fd = -1;
	c->next_id = KEY_CLIENT0;
	c->todo_tail = &c->todo;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->path = strdup(path);
	if (!c->path) {
		r = -ENOMEM;
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	if (live(path)) {
		r = -EADDRINUSE;
		snprintf(why, whylen, "another process is listening there (give --ctl PATH)");
		goto fail;
	}
	make_parent(path);
	c->lfd = vre_listen_unix(path, perm, 128);
	if (c->lfd < 0) {
		r = c->lfd;
		snprintf(why, whylen, "cannot listen: %s", strerror(-r));
		goto fail;
	}
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->epfd < 0 || c->wake_fd < 0 || c->done_fd < 0 ||
	    ep(c, EPOLL_CTL_ADD, c->lfd, EPOLLIN, KEY_LISTEN) < 0 ||
	    ep(c, EPOLL_CTL_ADD, c->wake_fd, EPOLLIN, KEY_WAKE) < 0 ||
	    ep(c, EPOLL_CTL_ADD, c->done_fd, EPOLLIN, KEY_DONE) < 0) {
		r = -errno;
		snprintf(why, whylen, "epoll: %s", strerror(-r));
		goto fail;
	}
	c->listening = true;
	r = -pthread_create(&c->admin, NULL, admin_thread, c);
	if (r == 0) {
		c->admin_up = true;
		pthread_setname_np(c->admin, "vre-ctl-admin");
		r = -pthread_create(&c->thread, NULL, ctl_thread, c);
	}
	if (r < 0) {
		snprintf(why, whylen, "cannot start its threads: %s", strerror(-r));
		goto fail;
	}
	c->thread_up = true;
	pthread_setname_np(c->thread, "vre-ctl");
	*out = c;
	return 0;
fail:
	sw_ctl_stop(c);
	return r;
}
