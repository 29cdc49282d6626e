/* One load-generator process in C: thousands of WebSocket fans on one match, epoll, no threads.
 *
 * The same job and the same stdin/stdout protocol as loadgen.py (read that file's docstring):
 * the driver builds this with `cc -O2` when a C compiler is present, because on loopback the
 * fans' side of a delivery costs about as much as the server's, and the server must be the
 * bottleneck. Per text frame it finds `bench i=<index> t=<ns>` and `"seq":` with memmem,
 * checks the index is exactly the next one expected, counts it, and keeps a latency sample.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ERRORS 20
#define READ_SIZE (256 * 1024)
#define STDIN_TAG UINT32_MAX

enum { CONNECTING, UPGRADING, WAIT_SNAPSHOT, OPEN, CLOSED };

typedef struct {
    int fd;
    int state;
    int64_t next;
    char *buf; /* bytes of an incomplete frame (or response head) kept between reads */
    size_t len, cap;
    char *frag; /* a fragmented message being put together */
    size_t frag_len;
} Fan;

static Fan *fans;
static int nfans, started, inflight, ready, failed, connecting_done = 1;
static int concurrency, epfd, closing;
static struct sockaddr_in addr;
static char request[1024];
static size_t request_len;
static int64_t connect_t0;

static int64_t total, latency_until, cap_events;
static int32_t *counts;
static char **seqs;
static int64_t *lat;
static size_t lat_len, lat_cap;
static int64_t out_of_order, seq_mismatch, unexpected, lost, frames, payload_bytes;
static int close_code[64], close_count[64], nclose;
static char *errors[MAX_ERRORS];
static int nerrors;
static int64_t *done_list;
static size_t done_len;

static const char *ACCEPT = "DflGJNdNE1S8BJFI2KQCZFexXlg="; /* for key dGlja2VyLWJlbmNobWFyaw== */
static const char *KEY = "dGlja2VyLWJlbmNobWFyaw==";

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void out(const char *s, size_t n) {
    while (n) {
        ssize_t w = write(1, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            exit(3);
        }
        s += w;
        n -= (size_t)w;
    }
}

static void error(const char *fmt, ...) {
    if (nerrors >= MAX_ERRORS) return;
    char *s = malloc(320);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, 320, fmt, ap);
    va_end(ap);
    errors[nerrors++] = s;
}

/* A JSON string of arbitrary bytes: quotes, backslashes and control/non-ASCII bytes made safe. */
static size_t json_str(char *dst, const char *src, size_t n) {
    size_t o = 0;
    dst[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c < 0x20 || c > 0x7e) {
            dst[o++] = '?';
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o++] = '"';
    return o;
}

static int64_t field_int(const char *line, const char *name) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", name);
    const char *p = strstr(line, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static void field_str(const char *line, const char *name, char *dst, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = strstr(line, pat);
    dst[0] = 0;
    if (!p) return;
    p += strlen(pat);
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < cap) dst[i++] = *p++;
    dst[i] = 0;
}

static void fan_close(Fan *f) {
    if (f->state == CLOSED) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, f->fd, NULL);
    close(f->fd); /* SO_LINGER 0: an RST, no TIME_WAIT */
    f->state = CLOSED;
    free(f->buf);
    f->buf = NULL;
    f->len = f->cap = 0;
}

static void start_next(void);

static void finish_connecting(void) {
    if (connecting_done || inflight > 0 || started < nfans) return;
    connecting_done = 1;
    char line[256];
    int n = snprintf(line, sizeof line,
                     "{\"ev\":\"connected\",\"ok\":%d,\"failed\":%d,\"t0\":%lld,\"t1\":%lld}\n", ready,
                     failed, (long long)connect_t0, (long long)now_ns());
    out(line, (size_t)n);
}

/* A fan that fails before its snapshot: counted, replaced by the next one to start. */
static void fail_connect(Fan *f, const char *why) {
    error("fan %ld: connect failed: %s", (long)(f - fans), why);
    fan_close(f);
    failed++;
    inflight--;
    start_next();
    finish_connecting();
}

/* Spread fans over source addresses 127.0.0.1-16 when the server is on loopback: with one
 * source address, connect() must search ~28k ephemeral ports (even ones first) for a free
 * one, and past ~14k fans that search costs more than the whole handshake. */
static void source(int fd, int i) {
    if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127) return;
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7F000001u + (uint32_t)(i % 16));
    bind(fd, (struct sockaddr *)&src, sizeof src);
}

static void start_next(void) {
    while (inflight < concurrency && started < nfans) {
        Fan *f = &fans[started++];
        memset(f, 0, sizeof *f);
        f->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        inflight++;
        if (f->fd < 0) {
            f->state = CLOSED;
            error("fan %ld: socket(): %s", (long)(f - fans), strerror(errno));
            failed++;
            inflight--;
            continue;
        }
        struct linger lg = {1, 0};
        setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        source(f->fd, started);
        f->state = CONNECTING;
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)(f - fans)};
        epoll_ctl(epfd, EPOLL_CTL_ADD, f->fd, &ev);
        if (connect(f->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
            fail_connect(f, strerror(errno));
        }
    }
}

static void on_writable(Fan *f) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        fail_connect(f, strerror(err));
        return;
    }
    if (send(f->fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len) {
        fail_connect(f, "could not send the upgrade request");
        return;
    }
    f->state = UPGRADING;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)(f - fans)};
    epoll_ctl(epfd, EPOLL_CTL_MOD, f->fd, &ev);
}

static void keep(Fan *f, const char *p, size_t n) {
    if (n > f->cap) {
        f->cap = n < 4096 ? 4096 : n;
        f->buf = realloc(f->buf, f->cap);
    }
    memmove(f->buf, p, n);
    f->len = n;
}

static int64_t parse_int(const char *p, const char *end) {
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    return v;
}

static void on_message(Fan *f, const char *p, size_t n, int64_t now) {
    long id = (long)(f - fans);
    if (f->state == WAIT_SNAPSHOT) {
        if (!memmem(p, n, "\"snapshot\"", 10)) {
            unexpected++;
            error("fan %ld: first message is not a snapshot: %.100s", id, p);
        }
        f->state = OPEN;
        ready++;
        inflight--;
        start_next();
        finish_connecting();
        return;
    }
    frames++;
    payload_bytes += (int64_t)n;
    const char *end = p + n;
    const char *m = memmem(p, n, "bench i=", 8);
    if (!m) {
        unexpected++;
        error("fan %ld: unexpected message %.150s", id, p);
        return;
    }
    int64_t index = parse_int(m + 8, end);
    const char *t = memmem(m, (size_t)(end - m), " t=", 3);
    int64_t ts = t ? parse_int(t + 3, end) : now;
    if (index != f->next) {
        out_of_order++;
        error("fan %ld: expected event %lld, got %lld", id, (long long)f->next, (long long)index);
        if (index < f->next) return;
    }
    f->next = index + 1;
    if (index >= total) {
        error("fan %ld: event %lld beyond the %lld published", id, (long long)index, (long long)total);
        return;
    }
    if (++counts[index] == ready) done_list[done_len++] = index;
    if (index < latency_until) {
        if (lat_len == lat_cap) {
            lat_cap = lat_cap ? lat_cap * 2 : 65536;
            lat = realloc(lat, lat_cap * sizeof *lat);
        }
        lat[lat_len++] = (now - ts) / 1000;
    }
    const char *s = memmem(p, n, "\"seq\":", 6);
    const char *sv = s ? s + 6 : end;
    if (sv < end && *sv == '"') sv++;
    const char *se = sv;
    while (se < end && *se != '"' && *se != ',' && *se != '}') se++;
    size_t sl = (size_t)(se - sv);
    if (!seqs[index]) {
        seqs[index] = malloc(sl + 1);
        memcpy(seqs[index], sv, sl);
        seqs[index][sl] = 0;
    } else if (strlen(seqs[index]) != sl || memcmp(seqs[index], sv, sl) != 0) {
        seq_mismatch++;
        error("fan %ld: event %lld has seq %.*s, others had %s", id, (long long)index, (int)sl, sv,
              seqs[index]);
    }
}

static void on_control(Fan *f, int opcode, const char *p, size_t n) {
    if (opcode == 9) { /* ping -> pong, masked with a zero key */
        char pong[6 + 125];
        pong[0] = (char)0x8A;
        pong[1] = (char)(0x80 | n);
        memset(pong + 2, 0, 4);
        memcpy(pong + 6, p, n);
        send(f->fd, pong, 6 + n, MSG_NOSIGNAL);
    } else if (opcode == 8) {
        int code = n >= 2 ? ((unsigned char)p[0] << 8) | (unsigned char)p[1] : 1005;
        int i;
        for (i = 0; i < nclose && close_code[i] != code; i++) {}
        if (i == nclose && nclose < 64) close_code[nclose++] = code;
        if (i < 64) close_count[i]++;
        error("fan %ld: server closed with %d", (long)(f - fans), code);
        if (f->state == OPEN) lost++;
        const char bye[] = {(char)0x88, (char)0x82, 0, 0, 0, 0, (char)(code >> 8), (char)code};
        send(f->fd, bye, sizeof bye, MSG_NOSIGNAL);
        fan_close(f);
    }
}

/* Frames in [p, p+n); returns how many bytes were consumed (the rest is an incomplete frame). */
static size_t on_frames(Fan *f, const char *p, size_t n, int64_t now) {
    size_t pos = 0;
    while (n - pos >= 2 && f->state != CLOSED) {
        unsigned char b0 = (unsigned char)p[pos], b1 = (unsigned char)p[pos + 1];
        uint64_t len = b1 & 0x7F;
        size_t start = pos + 2;
        if (b1 & 0x80) {
            error("fan %ld: server sent a masked frame", (long)(f - fans));
            unexpected++;
            fan_close(f);
            return n;
        }
        if (len == 126) {
            if (n - pos < 4) break;
            len = ((unsigned char)p[pos + 2] << 8) | (unsigned char)p[pos + 3];
            start = pos + 4;
        } else if (len == 127) {
            if (n - pos < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | (unsigned char)p[pos + 2 + i];
            start = pos + 10;
        }
        if (n - start < len) break;
        const char *payload = p + start;
        pos = start + len;
        int opcode = b0 & 0x0F, fin = b0 & 0x80;
        if (opcode >= 8) {
            on_control(f, opcode, payload, len);
        } else if (opcode == 0 || !fin) { /* a fragment */
            f->frag = realloc(f->frag, f->frag_len + len);
            memcpy(f->frag + f->frag_len, payload, len);
            f->frag_len += len;
            if (fin) {
                on_message(f, f->frag, f->frag_len, now);
                free(f->frag);
                f->frag = NULL;
                f->frag_len = 0;
            }
        } else {
            on_message(f, payload, len, now);
        }
    }
    return pos;
}

static char rbuf[READ_SIZE];

static void on_readable(Fan *f) {
    ssize_t r = recv(f->fd, rbuf, sizeof rbuf, 0);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        const char *why = r == 0 ? "closed by the server" : strerror(errno);
        if (f->state == UPGRADING || f->state == WAIT_SNAPSHOT) {
            fail_connect(f, why);
            return;
        }
        if (!closing) {
            lost++;
            error("fan %ld: connection lost after event %lld: %s", (long)(f - fans),
                  (long long)f->next - 1, why);
        }
        fan_close(f);
        return;
    }
    int64_t now = now_ns();
    const char *p = rbuf;
    size_t n = (size_t)r;
    if (f->len) { /* finish what the last read left */
        if (f->len + n > f->cap) {
            f->cap = f->len + n;
            f->buf = realloc(f->buf, f->cap);
        }
        memcpy(f->buf + f->len, rbuf, n);
        n += f->len;
        f->len = 0;
        p = f->buf;
    }
    if (f->state == UPGRADING) {
        const char *end = memmem(p, n, "\r\n\r\n", 4);
        if (!end) {
            keep(f, p, n);
            return;
        }
        size_t head = (size_t)(end - p);
        if (n < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0 || !memmem(p, head, ACCEPT, strlen(ACCEPT))) {
            char msg[200];
            snprintf(msg, sizeof msg, "bad upgrade response: %.120s", p);
            fail_connect(f, msg);
            return;
        }
        f->state = WAIT_SNAPSHOT;
        p += head + 4;
        n -= head + 4;
    }
    size_t used = on_frames(f, p, n, now);
    if (used < n && f->state != CLOSED) keep(f, p + used, n - used);
    if (done_len) {
        char line[96];
        for (size_t i = 0; i < done_len; i++) {
            int k = snprintf(line, sizeof line, "{\"ev\":\"done\",\"i\":%lld,\"t\":%lld}\n",
                             (long long)done_list[i], (long long)now);
            out(line, (size_t)k);
        }
        done_len = 0;
    }
}

static void expect(int64_t t, int64_t l) {
    if (t > cap_events) {
        counts = realloc(counts, (size_t)t * sizeof *counts);
        seqs = realloc(seqs, (size_t)t * sizeof *seqs);
        done_list = realloc(done_list, (size_t)t * sizeof *done_list);
        memset(counts + cap_events, 0, (size_t)(t - cap_events) * sizeof *counts);
        memset(seqs + cap_events, 0, (size_t)(t - cap_events) * sizeof *seqs);
        cap_events = t;
    }
    total = t;
    latency_until = l;
}

static void report(void) {
    size_t cap = 4096 + (size_t)total * 48 + MAX_ERRORS * 700;
    char *s = malloc(cap);
    int64_t open = 0, incomplete = 0;
    for (int i = 0; i < started; i++) {
        if (fans[i].state == OPEN) open++;
        if (fans[i].state == OPEN || fans[i].next) {
            if (fans[i].next != total) {
                incomplete++;
                error("fan %d: last event was %lld, %lld were published", i,
                      (long long)fans[i].next - 1, (long long)total);
            }
        }
    }
    size_t o = (size_t)snprintf(
        s, cap,
        "{\"ev\":\"report\",\"conns\":%d,\"open\":%lld,\"incomplete\":%lld,\"out_of_order\":%lld,"
        "\"seq_mismatch\":%lld,\"unexpected\":%lld,\"lost\":%lld,\"frames\":%lld,"
        "\"payload_bytes\":%lld,\"close_codes\":{",
        ready, (long long)open, (long long)incomplete, (long long)out_of_order,
        (long long)seq_mismatch, (long long)unexpected, (long long)lost, (long long)frames,
        (long long)payload_bytes);
    for (int i = 0; i < nclose; i++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"%d\":%d", i ? "," : "", close_code[i], close_count[i]);
    o += (size_t)snprintf(s + o, cap - o, "},\"seqs\":[");
    for (int64_t i = 0; i < total; i++) {
        if (i) s[o++] = ',';
        if (seqs[i]) {
            size_t l = strlen(seqs[i]);
            o += json_str(s + o, seqs[i], l > 40 ? 40 : l);
        } else {
            memcpy(s + o, "null", 4);
            o += 4;
        }
    }
    o += (size_t)snprintf(s + o, cap - o, "],\"errors\":[");
    for (int i = 0; i < nerrors; i++) {
        if (i) s[o++] = ',';
        o += json_str(s + o, errors[i], strlen(errors[i]));
    }
    o += (size_t)snprintf(s + o, cap - o, "]}\n");
    out(s, o);
    free(s);
}

static void dump_latencies(void) {
    char path[] = "/tmp/latencies-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) {
        const char *p = (const char *)lat;
        size_t left = lat_len * sizeof *lat;
        while (left) {
            ssize_t w = write(fd, p, left);
            if (w <= 0) break;
            p += w;
            left -= (size_t)w;
        }
        close(fd);
    }
    lat_len = 0;
    char line[128];
    int k = snprintf(line, sizeof line, "{\"ev\":\"latencies\",\"path\":\"%s\"}\n", path);
    out(line, (size_t)k);
}

/* One command line from the driver; returns 0 on "close". */
static int command(const char *line) {
    char cmd[32];
    field_str(line, "cmd", cmd, sizeof cmd);
    if (!strcmp(cmd, "connect")) {
        char host[64], path[512];
        field_str(line, "host", host, sizeof host);
        field_str(line, "path", path, sizeof path);
        int port = (int)field_int(line, "port");
        nfans = (int)field_int(line, "count");
        concurrency = (int)field_int(line, "concurrency");
        fans = calloc((size_t)nfans + 1, sizeof *fans);
        addr.sin_family = AF_INET;
        addr.sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, host, &addr.sin_addr);
        request_len = (size_t)snprintf(
            request, sizeof request,
            "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
            path, host, port, KEY);
        connecting_done = 0;
        connect_t0 = now_ns();
        start_next();
        finish_connecting();
    } else if (!strcmp(cmd, "expect")) {
        expect(field_int(line, "total"), field_int(line, "latency_until"));
    } else if (!strcmp(cmd, "latencies")) {
        dump_latencies();
    } else if (!strcmp(cmd, "report")) {
        report();
    } else if (!strcmp(cmd, "close")) {
        return 0;
    }
    return 1;
}

int main(void) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event sev = {.events = EPOLLIN, .data.u32 = STDIN_TAG};
    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &sev);
    char hello[64];
    out(hello, (size_t)snprintf(hello, sizeof hello, "{\"ev\":\"hello\",\"pid\":%d}\n", getpid()));

    static char line[1 << 16];
    size_t line_len = 0;
    struct epoll_event events[1024];
    /* Poll, never block: a fan blocked in epoll_wait makes every server send() wake it, an
     * inter-core wakeup that real fans on other machines never cost the server (and that
     * in a VM costs more than the send itself). Idle, the loop sleeps POLL_US between looks. */
    const char *env = getenv("LOADGEN_POLL_US");
    long poll_us = env ? atol(env) : 250;
    struct timespec nap = {0, poll_us * 1000};
    for (;;) {
        int n = epoll_wait(epfd, events, 1024, poll_us > 0 ? 0 : -1);
        if (n == 0) {
            nanosleep(&nap, NULL);
            continue;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            return 2;
        }
        for (int i = 0; i < n; i++) {
            uint32_t tag = events[i].data.u32;
            if (tag == STDIN_TAG) {
                ssize_t r = read(0, line + line_len, sizeof line - line_len - 1);
                if (r <= 0) goto done;
                line_len += (size_t)r;
                char *nl;
                while ((nl = memchr(line, '\n', line_len))) {
                    *nl = 0;
                    if (!command(line)) goto done;
                    size_t rest = line_len - (size_t)(nl + 1 - line);
                    memmove(line, nl + 1, rest);
                    line_len = rest;
                }
                continue;
            }
            Fan *f = &fans[tag];
            if (f->state == CLOSED) continue;
            if (f->state == CONNECTING) {
                on_writable(f);
            } else {
                on_readable(f);
            }
        }
    }
done:
    closing = 1;
    for (int i = 0; i < started; i++) fan_close(&fans[i]);
    return 0;
}
