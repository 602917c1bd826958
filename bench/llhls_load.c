/*
 * llhls_load: thousands of simulated LL-HLS listeners on one core.
 *
 * Each listener does what hls.js does in low-latency mode, over one
 * keep-alive HTTP/1.1 connection of its own: a plain playlist GET, then
 * forever a blocking reload for the part named in EXT-X-PRELOAD-HINT
 * (index.m3u8?_HLS_msn=M&_HLS_part=N), then a GET of that part.
 * Single-threaded, epoll, non-blocking sockets, no allocation per request.
 *
 * What a request costs (2-core Firecracker VM, 2026-11): one write and one
 * read per request, epoll_wait shared by many; 2-3 us of our own code and
 * 16-20 us in the kernel, which is the floor: a bare write of a request and
 * read of a 900-byte answer on a loopback TCP socket takes 16 us here (a
 * system call alone, 0.85 us). So ~20 us per request over TCP, ~14 over a
 * Unix socket; Python asyncio spends 150+. A listener makes ~9.4 requests a
 * second (PART-TARGET 0.213 s): 5,000 listeners are ~47,000 requests a
 * second, nearly all of one core of this VM.
 *
 *   gcc -O2 -o llhls_load llhls_load.c -lm
 *   llhls_load HOST PORT PATH CLIENTS SECONDS [--cookie V] [--ramp S]
 *              [--host-header H] [--timeout S] [--stall-bound S]
 *
 * HOST may be unix:/path/to/socket (a cache listening on a Unix socket:
 * half the kernel's cost per request of loopback TCP; send --host-header).
 *
 * Clients start spread over --ramp seconds, then all run together for
 * SECONDS (the measured window). At the end one JSON object goes to stdout.
 *
 * A listener *stalls* (bench/webcast_bench.py's definition) when the wall
 * time since its first part, less the media it has received (parts x
 * PART-TARGET), exceeds the bound: 3 parts of hold-back + 0.5 s unless
 * --stall-bound says otherwise. A stall event is one crossing of the bound;
 * the listener leaves the stalled state when it catches up.
 *
 * Any status but 200 counts as an error under its code, and the listener
 * retries after a short delay (three failures in a row: it starts over from
 * a plain playlist GET). A dropped connection is re-opened and the request
 * sent again.
 *
 * One file, over 500 lines, on purpose: bench/llhls.py builds it with a
 * single gcc call on any machine, without a build system or a library.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (32 * 1024)       /* a response head larger than this is refused */
#define BODY_MAX (4 * 1024 * 1024) /* a playlist larger than this is refused */
#define URI_MAX 256
#define QUEUE_MAX 16 /* parts a late listener fetches before blocking again */
#define RECENT_PARTS 64 /* EXT-X-PART lines remembered from the latest playlist */
#define PATH_MAX_LEN 2048
#define SCAN_EVERY 0.1 /* seconds between sweeps for timers, timeouts and stalls */
#define MAX_FAILS 3    /* failures in a row before starting over from a plain playlist */

/* ---------------------------------------------------------------- errors */

enum fault { F_CONNECT, F_RESET, F_CLOSED, F_TIMEOUT, F_BAD_RESPONSE, F_NO_HINT, F_TOO_BIG, F_COUNT };
static const char *const FAULT_NAMES[F_COUNT] = {"connect",      "reset",   "closed",  "timeout",
                                                 "bad_response", "no_hint", "too_big"};
static uint64_t g_status_errors[600];
static uint64_t g_faults[F_COUNT];

/* ------------------------------------------------------------- histogram */

/* Microseconds, log-linear: exact below 64 µs, then 32 buckets per octave (~3 %). */
#define HIST_BUCKETS (64 + 40 * 32)
struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t max_us;
};

static int hist_index(uint64_t us) {
    if (us < 64) return (int)us;
    int e = 63 - __builtin_clzll(us); /* >= 6 */
    if (e > 45) return HIST_BUCKETS - 1;
    int mantissa = (int)(us >> (e - 5)); /* 32..63 */
    return 64 + (e - 6) * 32 + (mantissa - 32);
}

static double hist_value(int index) { /* the middle of a bucket, µs */
    if (index < 64) return index;
    int e = (index - 64) / 32 + 6, mantissa = (index - 64) % 32 + 32;
    double low = (double)((uint64_t)mantissa << (e - 5));
    return low + (double)(1ULL << (e - 5)) / 2;
}

static void hist_add(struct hist *h, double seconds) {
    uint64_t us = seconds <= 0 ? 0 : (uint64_t)(seconds * 1e6);
    h->counts[hist_index(us)]++;
    h->total++;
    if (us > h->max_us) h->max_us = us;
}

static double hist_percentile_ms(const struct hist *h, double pct) {
    if (h->total == 0) return 0; /* count 0 says there were none */
    uint64_t rank = (uint64_t)ceil(pct / 100.0 * (double)h->total), seen = 0;
    if (rank == 0) rank = 1;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            double v = hist_value(i);
            return (v > (double)h->max_us ? (double)h->max_us : v) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

static struct hist g_part_latency, g_playlist_latency, g_cycle_latency;

/* ----------------------------------------------------------------- clock */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --------------------------------------------------------------- clients */

enum request { R_PLAYLIST, R_BLOCKING, R_PART };
enum phase { PH_IDLE, PH_CONNECTING, PH_SENDING, PH_HEAD, PH_BODY };
enum body_mode { B_LENGTH, B_CHUNKED, B_UNTIL_CLOSE };
enum chunk_state { CH_SIZE, CH_EXT, CH_SIZE_LF, CH_DATA, CH_DATA_CR, CH_DATA_LF, CH_TRAILER };

struct client {
    int fd;
    uint32_t generation; /* of the connection, so that stale epoll events are ignored */
    enum phase phase;
    enum request request; /* in flight, or to send when connected / when the timer fires */
    double wake_at;       /* > 0: send `request` then (a retry delay) */
    double deadline;      /* > 0: the request in flight times out then */
    double sent_at, cycle_at;
    int fails;               /* failures in a row */
    int reused;              /* the connection has answered at least one request */
    int close_after;         /* the response said Connection: close */
    char *out;               /* unsent rest of a request (rare: a partial write) */
    size_t out_len, out_off;
    /* response being read */
    int status;
    enum body_mode mode;
    uint64_t remaining;
    enum chunk_state chunk;
    int trailer_line_len;
    uint64_t body_bytes;
    int got_bytes;           /* any byte of the response arrived */
    char *buf;               /* head, then (playlists) body */
    size_t len, cap;
    /* where the listener is in the stream */
    long msn, part;              /* the part being fetched (blocked on) */
    char uri[URI_MAX];           /* ... and its URI */
    long next_msn, next_part;    /* the hint in the latest playlist */
    char next_uri[URI_MAX];
    double first_part_at, last_part_at;
    uint64_t parts, bytes;
    char (*queue)[URI_MAX];      /* parts listed after the one blocked on (late: catch up) */
    int queued, queue_head;
    int from_queue;              /* the part in flight came from the queue */
    /* figures */
    uint64_t late;    /* parts fetched from the queue */
    uint64_t skipped; /* parts never fetched (a queue overflow, or a part no longer listed) */
    int stalled;
    uint64_t stall_events;
    double max_behind;
};

static struct {
    struct sockaddr_storage addr; /* where to connect: TCP, or a Unix socket */
    socklen_t addr_len;
    int family;
    char host_header[512];
    char cookie[4096];
    char playlist_path[PATH_MAX_LEN];
    char part_dir[PATH_MAX_LEN]; /* the playlist's folder, ending in '/' */
    double part_target;          /* from EXT-X-PART-INF; 0 until known */
    double stall_bound;          /* 0: 3 x part_target + 0.5 */
    double timeout;
    double retry_delay; /* after a failure, before trying again */
    int epoll;
    uint64_t responses, parts, reconnects;
    int connected;
} g;

static char g_scratch[256 * 1024];

static void fault(struct client *c, enum fault f, double now);
static void send_request(struct client *c, enum request r, double now);

static int grow(struct client *c, size_t need, size_t limit) {
    if (need <= c->cap) return 1;
    if (need > limit) return 0;
    size_t cap = c->cap ? c->cap : 4096;
    while (cap < need) cap *= 2;
    if (cap > limit) cap = limit;
    char *p = realloc(c->buf, cap);
    if (p == NULL) return 0;
    c->buf = p;
    c->cap = cap;
    return 1;
}

static void close_connection(struct client *c) {
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
        g.connected--;
    }
    c->phase = PH_IDLE;
    c->deadline = 0;
    c->reused = 0;
    c->close_after = 0;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
}

/* The epoll tag of a client: its index and its connection's generation. */
static struct client *g_clients;

static void epoll_set(struct client *c, uint32_t events, int op) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = ((uint64_t)c->generation << 32) | (uint64_t)(c - g_clients);
    if (epoll_ctl(g.epoll, op, c->fd, &ev) != 0) {
        perror("epoll_ctl");
        exit(2);
    }
}

static void start_connect(struct client *c, double now) {
    int fd = socket(g.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("socket");
        exit(2);
    }
    int one = 1;
    if (g.family != AF_UNIX) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->generation++;
    g.connected++;
    c->reused = 0;
    c->deadline = now + g.timeout;
    if (connect(fd, (struct sockaddr *)&g.addr, g.addr_len) == 0) {
        c->phase = PH_IDLE;
        epoll_set(c, EPOLLIN, EPOLL_CTL_ADD);
        return;
    }
    if (errno != EINPROGRESS) {
        epoll_set(c, EPOLLIN, EPOLL_CTL_ADD);
        fault(c, F_CONNECT, now);
        return;
    }
    c->phase = PH_CONNECTING;
    epoll_set(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static size_t format_request(struct client *c, enum request r, char *out, size_t size) {
    int n;
    const char *host = g.host_header;
    if (r == R_PLAYLIST) {
        n = snprintf(out, size, "GET %s HTTP/1.1\r\nHost: %s\r\n", g.playlist_path, host);
    } else if (r == R_BLOCKING) {
        n = snprintf(out, size, "GET %s%c_HLS_msn=%ld&_HLS_part=%ld HTTP/1.1\r\nHost: %s\r\n",
                     g.playlist_path, strchr(g.playlist_path, '?') ? '&' : '?', c->msn, c->part,
                     host);
    } else if (c->uri[0] == '/') {
        n = snprintf(out, size, "GET %s HTTP/1.1\r\nHost: %s\r\n", c->uri, host);
    } else {
        n = snprintf(out, size, "GET %s%s HTTP/1.1\r\nHost: %s\r\n", g.part_dir, c->uri, host);
    }
    if (g.cookie[0]) n += snprintf(out + n, size - (size_t)n, "Cookie: %s\r\n", g.cookie);
    n += snprintf(out + n, size - (size_t)n, "User-Agent: llhls_load\r\n\r\n");
    return (size_t)n;
}

/* Writes what is left of the request; on a short write waits for EPOLLOUT. */
static void flush_out(struct client *c, double now) {
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                epoll_set(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
                c->phase = PH_SENDING;
                return;
            }
            fault(c, F_RESET, now);
            return;
        }
        c->out_off += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    epoll_set(c, EPOLLIN, EPOLL_CTL_MOD);
    c->phase = PH_HEAD;
}

static void begin_response(struct client *c) {
    c->len = 0;
    c->status = 0;
    c->got_bytes = 0;
    c->body_bytes = 0;
    c->close_after = 0;
}

/* Sends request `r` now: on the open connection, or once a new one is up. */
static void send_request(struct client *c, enum request r, double now) {
    c->request = r;
    c->wake_at = 0;
    c->sent_at = now;
    if (r == R_BLOCKING) c->cycle_at = now;
    begin_response(c);
    if (c->fd < 0) start_connect(c, now);
    if (c->fd < 0 || c->phase == PH_CONNECTING) return; /* sent once connected, or retried */
    c->deadline = now + g.timeout;
    size_t n = format_request(c, r, g_scratch, sizeof g_scratch);
    ssize_t w = write(c->fd, g_scratch, n);
    if (w == (ssize_t)n) {
        c->phase = PH_HEAD;
        return;
    }
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
        fault(c, F_RESET, now);
        return;
    }
    if (w < 0) w = 0;
    c->out = malloc(n - (size_t)w);
    if (c->out == NULL) exit(2);
    memcpy(c->out, g_scratch + w, n - (size_t)w);
    c->out_len = n - (size_t)w;
    c->out_off = 0;
    c->phase = PH_SENDING;
    epoll_set(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
}

/* A failure: counted, the connection dropped when it is no longer usable, a retry scheduled. */
static void fail_later(struct client *c, double now) {
    c->fails++;
    if (c->fails >= MAX_FAILS) c->request = R_PLAYLIST; /* start over from the live edge */
    c->wake_at = now + g.retry_delay;
    c->deadline = 0;
}

static void fault(struct client *c, enum fault f, double now) {
    g_faults[f]++;
    close_connection(c);
    fail_later(c, now);
}

/* ------------------------------------------------------- playlist parsing */

/* Digits after optional blanks, never reading at or past `end`. */
static uint64_t parse_number(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    uint64_t v = 0;
    for (; p < end && *p >= '0' && *p <= '9' && v < (1ULL << 60); p++) v = v * 10 + (uint64_t)(*p - '0');
    return v;
}

static int starts(const char *p, const char *end, const char *tag, size_t len) {
    return (size_t)(end - p) >= len && memcmp(p, tag, len) == 0;
}
#define STARTS(p, end, tag) starts(p, end, tag, sizeof tag - 1)

/* The part hinted by EXT-X-PRELOAD-HINT: its URI, and its media sequence number
 * and part index counted as hls.js does (segments since EXT-X-MEDIA-SEQUENCE,
 * parts since the last EXTINF). One pass over the tags (a '#' starts each):
 * a full live window is ~5 KB, read twice a second by every client.
 * Returns 0 when the playlist has no part hint. */
static const char *g_part_lines[RECENT_PARTS]; /* of the playlist parse_hint read last */
static int g_part_lines_seen;

static int parse_hint(struct client *c, const char *text, size_t n) {
    static const char HINT[] = "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"";
    const char *end = text + n, *uri = NULL, *uri_end = NULL;
    long msn = 0, part = 0;
    g_part_lines_seen = 0;
    for (const char *p = text; (p = memchr(p, '#', (size_t)(end - p))) != NULL; p++) {
        if (STARTS(p, end, "#EXTINF:")) {
            msn++;
            part = 0;
        } else if (STARTS(p, end, "#EXT-X-PART:")) {
            part++;
            g_part_lines[g_part_lines_seen++ % RECENT_PARTS] = p;
        } else if (STARTS(p, end, HINT)) {
            uri = p + sizeof HINT - 1;
            uri_end = memchr(uri, '"', (size_t)(end - uri));
            break;
        } else if (STARTS(p, end, "#EXT-X-MEDIA-SEQUENCE:")) {
            msn += (long)parse_number(p + 22, end);
        } else if (g.part_target == 0 && STARTS(p, end, "#EXT-X-PART-INF:PART-TARGET=")) {
            char number[32] = {0}; /* bounded: the text is not NUL-terminated */
            size_t len = (size_t)(end - p - 28) < sizeof number - 1 ? (size_t)(end - p - 28) : sizeof number - 1;
            memcpy(number, p + 28, len);
            g.part_target = strtod(number, NULL);
        }
    }
    if (uri == NULL || uri_end == NULL || uri_end == uri || uri_end - uri >= URI_MAX) return 0;
    c->next_msn = msn;
    c->next_part = part;
    memcpy(c->next_uri, uri, (size_t)(uri_end - uri));
    c->next_uri[uri_end - uri] = 0;
    return 1;
}

/* The URI of an EXT-X-PART line; 0 if it has none. */
static size_t part_uri(const char *line, const char *end, const char **uri) {
    const char *eol = memchr(line, '\n', (size_t)(end - line));
    if (eol == NULL) eol = end;
    const char *u = memmem(line, (size_t)(eol - line), "URI=\"", 5);
    if (u == NULL) return 0;
    u += 5;
    const char *q = memchr(u, '"', (size_t)(eol - u));
    if (q == NULL || q - u >= URI_MAX) return 0;
    *uri = u;
    return (size_t)(q - u);
}

/* After a blocking reload: the parts the playlist lists after the one blocked on.
 * On time there are none; a listener that fell behind fetches them before it
 * blocks again, as hls.js loads every part in turn. */
static void queue_missed(struct client *c, const char *end) {
    int remembered = g_part_lines_seen < RECENT_PARTS ? g_part_lines_seen : RECENT_PARTS;
    size_t own = strlen(c->uri);
    for (int back = 1; back <= remembered; back++) {
        const char *uri;
        size_t len = part_uri(g_part_lines[(g_part_lines_seen - back) % RECENT_PARTS], end, &uri);
        if (len != own || memcmp(uri, c->uri, len) != 0) continue;
        for (int later = back - 1; later >= 1; later--) { /* oldest first */
            len = part_uri(g_part_lines[(g_part_lines_seen - later) % RECENT_PARTS], end, &uri);
            if (len == 0) continue;
            if (c->queued == QUEUE_MAX) {
                c->skipped++;
                continue;
            }
            if (c->queue == NULL && (c->queue = malloc(QUEUE_MAX * sizeof *c->queue)) == NULL) exit(2);
            char *slot = c->queue[(c->queue_head + c->queued++) % QUEUE_MAX];
            memcpy(slot, uri, len);
            slot[len] = 0;
        }
        return;
    }
    c->skipped++; /* not listed any more: how many went by is unknown, count one */
}

/* --------------------------------------------------------------- stalls */

static double stall_bound(void) {
    return g.stall_bound > 0 ? g.stall_bound : 3 * g.part_target + 0.5;
}

static void check_stall(struct client *c, double now) {
    if (c->parts == 0 || g.part_target <= 0) return;
    double behind = (now - c->first_part_at) - (double)c->parts * g.part_target;
    if (behind > c->max_behind) c->max_behind = behind;
    if (behind > stall_bound()) {
        if (!c->stalled) c->stall_events++;
        c->stalled = 1;
    } else {
        c->stalled = 0;
    }
}

/* -------------------------------------------------------------- responses */

/* A whole response; `body` is the playlist's text (parts are only counted). */
static void on_response(struct client *c, const char *body, size_t body_len, double now) {
    c->deadline = 0;
    c->reused = 1;
    g.responses++;
    c->phase = PH_IDLE;
    if (c->close_after) close_connection(c);
    enum request r = c->request;
    if (r == R_PART) hist_add(&g_part_latency, now - c->sent_at);
    else if (r == R_BLOCKING) hist_add(&g_playlist_latency, now - c->sent_at);
    if (c->status != 200) {
        g_status_errors[c->status]++;
        fail_later(c, now);
        return;
    }
    if (r == R_PLAYLIST || r == R_BLOCKING) {
        if (!parse_hint(c, body, body_len)) {
            g_faults[F_NO_HINT]++;
            c->request = R_PLAYLIST;
            fail_later(c, now);
            return;
        }
        c->fails = 0;
        if (r == R_BLOCKING) queue_missed(c, body + body_len);
        if (r == R_PLAYLIST) { /* block on the hinted part, at the live edge */
            c->skipped += (uint64_t)c->queued;
            c->queued = 0;
            c->from_queue = 0;
            c->msn = c->next_msn;
            c->part = c->next_part;
            memcpy(c->uri, c->next_uri, sizeof c->uri);
            send_request(c, R_BLOCKING, now);
        } else {
            send_request(c, R_PART, now);
        }
        return;
    }
    /* a part */
    c->fails = 0;
    if (c->from_queue) c->late++;
    else hist_add(&g_cycle_latency, now - c->cycle_at);
    if (c->parts == 0) c->first_part_at = now;
    else check_stall(c, now);
    c->parts++;
    c->last_part_at = now;
    c->bytes += c->body_bytes;
    g.parts++;
    c->from_queue = c->queued > 0;
    if (c->from_queue) { /* catching up: the next part exists, no need to block */
        memcpy(c->uri, c->queue[c->queue_head], sizeof c->uri);
        c->queue_head = (c->queue_head + 1) % QUEUE_MAX;
        c->queued--;
        send_request(c, R_PART, now);
        return;
    }
    c->msn = c->next_msn;
    c->part = c->next_part;
    memcpy(c->uri, c->next_uri, sizeof c->uri);
    send_request(c, R_BLOCKING, now);
}

/* Where the head ends (past its empty line) in p[0..n), looking from `from`; 0 if not yet. */
static size_t head_end(const char *p, size_t n, size_t from) {
    for (const char *nl = p + from; (nl = memchr(nl, '\n', (size_t)(p + n - nl))) != NULL; nl++) {
        size_t at = (size_t)(nl - p);
        if (at + 1 < n && nl[1] == '\n') return at + 2;
        if (at + 2 < n && nl[1] == '\r' && nl[2] == '\n') return at + 3;
    }
    return 0;
}

/* Parses a complete response head p[0..head_len). Returns 0 if malformed. */
static int parse_head(struct client *c, const char *p, size_t head_len) {
    const char *end = p + head_len;
    if (head_len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') return 0;
    int status = (int)parse_number(p + 9, p + 12);
    if (status < 100 || status > 599) return 0;
    c->status = status;
    c->mode = B_UNTIL_CLOSE;
    c->close_after = p[7] == '0'; /* HTTP/1.0 */
    int has_length = 0;
    for (const char *line = memchr(p, '\n', head_len); line && line + 1 < end;) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (eol == NULL) break;
        size_t n = (size_t)(eol - line);
        char first = (char)(*line | 32); /* only three headers matter */
        if (first == 'c' && n >= 15 && strncasecmp(line, "content-length:", 15) == 0) {
            c->remaining = parse_number(line + 15, eol);
            has_length = 1;
        } else if (first == 't' && n >= 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            if (memmem(line, n, "chunked", 7)) c->mode = B_CHUNKED;
        } else if (first == 'c' && n >= 11 && strncasecmp(line, "connection:", 11) == 0) {
            if (memmem(line, n, "close", 5)) c->close_after = 1;
            else if (memmem(line, n, "eep-alive", 9)) c->close_after = 0;
        }
        line = eol;
    }
    if (c->mode == B_CHUNKED) {
        c->chunk = CH_SIZE;
        c->remaining = 0;
    } else if (has_length) {
        c->mode = B_LENGTH;
        if (c->remaining > BODY_MAX * 16ULL) return 0;
    } else if (status == 204 || status == 304 || status < 200) {
        c->mode = B_LENGTH;
        c->remaining = 0;
    } else {
        c->close_after = 1;
    }
    return 1;
}

/* Body bytes: kept when they are a playlist (it is parsed), else only counted. */
static int body_data(struct client *c, const char *data, size_t n) {
    c->body_bytes += n;
    if (c->request == R_PART || c->status != 200) return 1;
    if (!grow(c, c->len + n, BODY_MAX)) return 0;
    memcpy(c->buf + c->len, data, n);
    c->len += n;
    return 1;
}

/* Feeds body bytes. Returns bytes consumed, or -1 on a fault (already handled);
 * sets *done when the body is complete. */
static ssize_t feed_body(struct client *c, const char *data, size_t n, int *done, double now) {
    size_t used = 0;
    *done = 0;
    if (c->mode == B_LENGTH || c->mode == B_UNTIL_CLOSE) {
        size_t take = n;
        if (c->mode == B_LENGTH && take > c->remaining) take = (size_t)c->remaining;
        if (!body_data(c, data, take)) goto too_big;
        if (c->mode == B_LENGTH) {
            c->remaining -= take;
            *done = c->remaining == 0;
        }
        return (ssize_t)take;
    }
    while (used < n && !*done) {
        char ch = data[used];
        switch (c->chunk) {
        case CH_SIZE:
            used++;
            if (ch >= '0' && ch <= '9') c->remaining = c->remaining * 16 + (uint64_t)(ch - '0');
            else if ((ch | 32) >= 'a' && (ch | 32) <= 'f') c->remaining = c->remaining * 16 + (uint64_t)((ch | 32) - 'a' + 10);
            else if (ch == ';' || ch == ' ' || ch == '\t') c->chunk = CH_EXT;
            else if (ch == '\r') c->chunk = CH_SIZE_LF;
            else if (ch == '\n') goto size_done;
            else goto bad;
            if (c->remaining > BODY_MAX * 16ULL) goto bad;
            break;
        case CH_EXT:
            used++;
            if (ch == '\r') c->chunk = CH_SIZE_LF;
            else if (ch == '\n') goto size_done;
            break;
        case CH_SIZE_LF:
            used++;
            if (ch != '\n') goto bad;
        size_done:
            if (c->remaining == 0) {
                c->chunk = CH_TRAILER;
                c->trailer_line_len = 0;
            } else {
                c->chunk = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t take = n - used;
            if (take > c->remaining) take = (size_t)c->remaining;
            if (!body_data(c, data + used, take)) goto too_big;
            used += take;
            c->remaining -= take;
            if (c->remaining == 0) c->chunk = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            used++;
            if (ch == '\r') c->chunk = CH_DATA_LF;
            else if (ch == '\n') c->chunk = CH_SIZE;
            else goto bad;
            break;
        case CH_DATA_LF:
            used++;
            if (ch != '\n') goto bad;
            c->chunk = CH_SIZE;
            break;
        case CH_TRAILER:
            used++;
            if (ch == '\n') {
                if (c->trailer_line_len == 0) *done = 1;
                c->trailer_line_len = 0;
            } else if (ch != '\r') {
                c->trailer_line_len++;
            }
            break;
        }
    }
    return (ssize_t)used;
bad:
    fault(c, F_BAD_RESPONSE, now);
    return -1;
too_big:
    fault(c, F_TOO_BIG, now);
    return -1;
}

/* Bytes from the connection. A head or a playlist that arrives whole in one read
 * (nearly always) is parsed where it lies; only pieces are copied into c->buf. */
static void on_data(struct client *c, const char *data, size_t n, double now) {
    c->got_bytes = 1;
    while (n > 0) {
        if (c->phase == PH_HEAD) {
            const char *head = data;
            size_t used, head_len = c->len == 0 ? head_end(data, n, 0) : 0;
            if (head_len > 0) {
                used = head_len;
            } else {
                size_t old = c->len;
                if (!grow(c, old + n, HEAD_MAX)) {
                    fault(c, F_TOO_BIG, now);
                    return;
                }
                memcpy(c->buf + old, data, n);
                c->len += n;
                head_len = head_end(c->buf, c->len, old > 2 ? old - 2 : 0);
                if (head_len == 0) return;
                head = c->buf;
                used = head_len - old;
            }
            if (!parse_head(c, head, head_len)) {
                fault(c, F_BAD_RESPONSE, now);
                return;
            }
            data += used;
            n -= used;
            c->len = 0;
            c->phase = PH_BODY;
            if (c->mode == B_LENGTH && c->remaining == 0) {
                if (n > 0) {
                    fault(c, F_BAD_RESPONSE, now); /* bytes nobody asked for */
                    return;
                }
                on_response(c, NULL, 0, now);
                return;
            }
            if (c->mode == B_LENGTH && n == c->remaining) { /* the whole body, here */
                c->body_bytes = n;
                on_response(c, data, n, now);
                return;
            }
            continue;
        }
        if (c->phase != PH_BODY) {
            fault(c, F_BAD_RESPONSE, now); /* bytes while no request is waiting */
            return;
        }
        int done;
        ssize_t used = feed_body(c, data, n, &done, now);
        if (used < 0) return;
        data += used;
        n -= (size_t)used;
        if (done) {
            if (n > 0) {
                fault(c, F_BAD_RESPONSE, now);
                return;
            }
            on_response(c, c->buf, c->len, now);
            return;
        }
    }
}

/* The peer closed (n == 0) or reset the connection. */
static void on_closed(struct client *c, int reset, double now) {
    if (c->phase == PH_BODY && c->mode == B_UNTIL_CLOSE) {
        close_connection(c);
        on_response(c, c->buf, c->len, now);
        return;
    }
    if (c->phase == PH_IDLE) { /* an idle keep-alive connection timed out: not an error */
        close_connection(c);
        return;
    }
    if (c->reused && !c->got_bytes && c->phase == PH_HEAD && c->fails == 0) {
        /* The server closed a kept-alive connection as we sent on it: send again. */
        g.reconnects++;
        close_connection(c);
        c->fails++;
        send_request(c, c->request, now);
        return;
    }
    fault(c, reset ? F_RESET : F_CLOSED, now);
}

static void on_event(struct client *c, uint32_t events, double now) {
    if (c->phase == PH_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            fault(c, F_CONNECT, now);
            return;
        }
        if (!(events & EPOLLOUT)) return;
        c->phase = PH_IDLE;
        epoll_set(c, EPOLLIN, EPOLL_CTL_MOD);
        c->deadline = 0;
        send_request(c, c->request, now);
        return;
    }
    if ((events & EPOLLOUT) && c->phase == PH_SENDING) {
        flush_out(c, now);
        if (c->fd < 0) return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        ssize_t n = read(c->fd, g_scratch, sizeof g_scratch);
        if (n > 0) on_data(c, g_scratch, (size_t)n, now);
        else if (n == 0) on_closed(c, 0, now);
        else if (errno != EAGAIN && errno != EINTR) on_closed(c, 1, now);
    }
}

/* Every SCAN_EVERY: retries due, requests past their deadline, stalls. */
static void sweep(struct client *clients, int started, double now) {
    for (int i = 0; i < started; i++) {
        struct client *c = &clients[i];
        if (c->deadline > 0 && now > c->deadline) {
            fault(c, c->phase == PH_CONNECTING ? F_CONNECT : F_TIMEOUT, now);
        }
        if (c->wake_at > 0 && now >= c->wake_at) send_request(c, c->request, now);
        check_stall(c, now);
    }
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
    fprintf(stderr,
            "usage: llhls_load HOST PORT PATH CLIENTS SECONDS [--cookie V] [--ramp S]\n"
            "                  [--host-header H] [--timeout S] [--stall-bound S]\n");
    exit(2);
}

static void raise_nofile(rlim_t need) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur >= need) return;
    if (rl.rlim_max < need) {
        struct rlimit want = {need, need};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0) return;
        fprintf(stderr, "llhls_load: need %lu file descriptors, the hard limit is %lu\n",
                (unsigned long)need, (unsigned long)rl.rlim_max);
        exit(2);
    }
    rl.rlim_cur = need;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static double cpu_of(const struct rusage *ru, int user) {
    const struct timeval *tv = user ? &ru->ru_utime : &ru->ru_stime;
    return (double)tv->tv_sec + (double)tv->tv_usec * 1e-6;
}

static void print_latency(const char *name, const struct hist *h, int last) {
    printf("\"%s\": {\"count\": %llu, \"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}%s", name,
           (unsigned long long)h->total, hist_percentile_ms(h, 50), hist_percentile_ms(h, 99),
           (double)h->max_us / 1000.0, last ? "" : ", ");
}

int main(int argc, char **argv) {
    if (argc < 6) usage();
    const char *host = argv[1], *port = argv[2];
    double ramp = 0, seconds;
    int clients = atoi(argv[4]);
    seconds = strtod(argv[5], NULL);
    g.timeout = 10.0;
    g.retry_delay = 0.2;
    signal(SIGPIPE, SIG_IGN); /* a write to a closed socket is an error, not a death */
    if (strlen(argv[3]) >= PATH_MAX_LEN || argv[3][0] != '/') usage();
    strcpy(g.playlist_path, argv[3]);
    snprintf(g.host_header, sizeof g.host_header, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host,
             port);
    for (int i = 6; i < argc; i++) {
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--cookie") == 0) snprintf(g.cookie, sizeof g.cookie, "%s", v);
        else if (strcmp(argv[i - 1], "--ramp") == 0) ramp = strtod(v, NULL);
        else if (strcmp(argv[i - 1], "--host-header") == 0)
            snprintf(g.host_header, sizeof g.host_header, "%s", v);
        else if (strcmp(argv[i - 1], "--timeout") == 0) g.timeout = strtod(v, NULL);
        else if (strcmp(argv[i - 1], "--stall-bound") == 0) g.stall_bound = strtod(v, NULL);
        else usage();
    }
    if (clients <= 0 || seconds <= 0 || ramp < 0 || g.timeout <= 0) usage();
    /* the folder relative part URIs resolve against */
    size_t dir = strcspn(g.playlist_path, "?");
    while (dir > 0 && g.playlist_path[dir - 1] != '/') dir--;
    memcpy(g.part_dir, g.playlist_path, dir);
    g.part_dir[dir] = 0;

    if (strncmp(host, "unix:", 5) == 0) { /* a cache listening on a Unix socket; PORT unused */
        struct sockaddr_un *un = (struct sockaddr_un *)&g.addr;
        if (strlen(host + 5) >= sizeof un->sun_path) usage();
        un->sun_family = AF_UNIX;
        strcpy(un->sun_path, host + 5);
        g.addr_len = sizeof *un;
        g.family = AF_UNIX;
    } else {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found;
        int rc = getaddrinfo(host, port, &hints, &found);
        if (rc != 0) {
            fprintf(stderr, "llhls_load: %s: %s\n", host, gai_strerror(rc));
            return 2;
        }
        memcpy(&g.addr, found->ai_addr, found->ai_addrlen);
        g.addr_len = found->ai_addrlen;
        g.family = found->ai_family;
        freeaddrinfo(found);
    }
    raise_nofile((rlim_t)clients + 64);
    g.epoll = epoll_create1(EPOLL_CLOEXEC);
    g_clients = calloc((size_t)clients, sizeof *g_clients);
    if (g_clients == NULL) return 2;
    for (int i = 0; i < clients; i++) g_clients[i].fd = -1;

    struct epoll_event events[1024];
    double t0 = now_s(), steady_at = t0 + ramp, end_at = steady_at + seconds;
    double next_sweep = t0 + SCAN_EVERY;
    int started = 0, steady = 0;
    uint64_t steady_requests = 0, steady_parts = 0;
    struct rusage ru0, ru_steady, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    ru_steady = ru0;
    for (;;) {
        double now = now_s();
        if (now >= end_at) break;
        if (!steady && now >= steady_at) {
            steady = 1;
            steady_requests = g.responses;
            steady_parts = g.parts;
            getrusage(RUSAGE_SELF, &ru_steady);
        }
        while (started < clients &&
               (ramp == 0 || t0 + ramp * started / clients <= now)) {
            struct client *c = &g_clients[started++];
            send_request(c, R_PLAYLIST, now);
        }
        if (now >= next_sweep) {
            sweep(g_clients, started, now);
            next_sweep = now + SCAN_EVERY;
        }
        double wake = next_sweep < end_at ? next_sweep : end_at;
        if (!steady && steady_at < wake) wake = steady_at;
        if (started < clients) {
            double next_start = t0 + ramp * started / clients;
            if (next_start < wake) wake = next_start;
        }
        int timeout_ms = (int)ceil((wake - now) * 1000);
        if (timeout_ms < 0) timeout_ms = 0;
        int n = epoll_wait(g.epoll, events, 1024, timeout_ms);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 2;
        }
        now = now_s();
        for (int i = 0; i < n; i++) {
            uint64_t tag = events[i].data.u64;
            struct client *c = &g_clients[(uint32_t)tag];
            if (c->fd < 0 || c->generation != (uint32_t)(tag >> 32)) continue; /* stale */
            on_event(c, events[i].events, now);
        }
    }
    double end = now_s();
    getrusage(RUSAGE_SELF, &ru1);
    if (!steady) { /* cannot happen with seconds > 0, but keep the figures sane */
        steady_at = end;
    }

    uint64_t stalled = 0, stall_events = 0, bytes = 0, silent = 0, skipped = 0, late = 0;
    double max_behind = 0, min_rate = INFINITY, max_rate = 0;
    for (int i = 0; i < clients; i++) {
        struct client *c = &g_clients[i];
        check_stall(c, end);
        if (c->stall_events) stalled++;
        if (c->parts == 0) silent++;
        skipped += c->skipped;
        late += c->late;
        /* a client's own rate, from its first part to its last */
        double rate = c->parts > 1 ? (double)(c->parts - 1) / (c->last_part_at - c->first_part_at) : 0;
        if (rate < min_rate) min_rate = rate;
        if (rate > max_rate) max_rate = rate;
        stall_events += c->stall_events;
        bytes += c->bytes;
        if (c->max_behind > max_behind) max_behind = c->max_behind;
    }
    if (min_rate > max_rate) min_rate = 0; /* no client had two parts */
    double window = end - steady_at;
    uint64_t window_requests = g.responses - steady_requests;
    uint64_t window_parts = g.parts - steady_parts;
    double cpu_window = cpu_of(&ru1, 1) + cpu_of(&ru1, 0) - cpu_of(&ru_steady, 1) -
                        cpu_of(&ru_steady, 0);
    uint64_t error_total = 0;

    printf("{\"clients\": %d, \"started\": %d, \"connected\": %d, \"clients_without_parts\": %llu, ",
           clients, started, g.connected, (unsigned long long)silent);
    printf("\"seconds\": %.3f, \"ramp_s\": %.3f, ", window, ramp);
    printf("\"requests\": %llu, \"requests_per_s\": %.1f, ", (unsigned long long)g.responses,
           window > 0 ? (double)window_requests / window : 0.0);
    printf("\"parts\": %llu, \"bytes\": %llu, ", (unsigned long long)g.parts,
           (unsigned long long)bytes);
    printf("\"parts_per_client_per_s\": %.4f, \"stream_parts_per_s\": %.4f, \"part_target\": %.5f, ",
           window > 0 ? (double)window_parts / clients / window : 0.0,
           g.part_target > 0 ? 1 / g.part_target : 0.0, g.part_target);
    printf("\"client_parts_per_s\": {\"min\": %.4f, \"max\": %.4f}, \"parts_skipped\": %llu, "
           "\"parts_late\": %llu, ",
           min_rate, max_rate, (unsigned long long)skipped, (unsigned long long)late);
    printf("\"errors\": {");
    int first = 1;
    for (int s = 0; s < 600; s++) {
        if (g_status_errors[s] == 0) continue;
        printf("%s\"%d\": %llu", first ? "" : ", ", s, (unsigned long long)g_status_errors[s]);
        error_total += g_status_errors[s];
        first = 0;
    }
    for (int f = 0; f < F_COUNT; f++) {
        if (g_faults[f] == 0) continue;
        printf("%s\"%s\": %llu", first ? "" : ", ", FAULT_NAMES[f], (unsigned long long)g_faults[f]);
        error_total += g_faults[f];
        first = 0;
    }
    printf("}, \"error_total\": %llu, \"reconnects\": %llu, ", (unsigned long long)error_total,
           (unsigned long long)g.reconnects);
    printf("\"stalled_clients\": %llu, \"stall_events\": %llu, \"max_behind_s\": %.3f, "
           "\"stall_bound_s\": %.3f, ",
           (unsigned long long)stalled, (unsigned long long)stall_events, max_behind,
           g.part_target > 0 ? stall_bound() : 0.0);
    printf("\"latency_ms\": {");
    print_latency("part", &g_part_latency, 0);
    print_latency("playlist", &g_playlist_latency, 0);
    print_latency("cycle", &g_cycle_latency, 1);
    printf("}, ");
    printf("\"cpu_s\": {\"user\": %.3f, \"system\": %.3f}, \"cpu_window_s\": %.3f, "
           "\"cpu_us_per_request\": %.2f}\n",
           cpu_of(&ru1, 1) - cpu_of(&ru0, 1), cpu_of(&ru1, 0) - cpu_of(&ru0, 0), cpu_window,
           window_requests ? cpu_window * 1e6 / (double)window_requests : 0.0);
    return 0;
}
