/*
 * att_webhook.c - the alert webhook: one POST of a small JSON body to a
 * configured http:// URL (an operator's alert relay), bounded in time.
 *
 * Must never: follow redirects, send anything but the alert body (no key,
 * no evidence), block past its timeout, or read more than a status line.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "att.h"

luna_err att_url_parse(const char *url, char *host, size_t host_cap, uint16_t *port, char *path,
                       size_t path_cap)
{
    const char *p, *colon, *slash;
    size_t hlen, plen;
    long v = 0;

    if (url == NULL || strncmp(url, "http://", 7) != 0)
        return LUNA_ERR_FORMAT;
    p = url + 7;
    slash = strchr(p, '/');
    if (slash == NULL)
        return LUNA_ERR_FORMAT;
    colon = memchr(p, ':', (size_t)(slash - p));
    if (colon == NULL || colon == p)
        return LUNA_ERR_FORMAT;
    hlen = (size_t)(colon - p);
    if (hlen >= host_cap)
        return LUNA_ERR_FORMAT;
    for (size_t i = 0; i < hlen; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return LUNA_ERR_FORMAT;
    }
    if (colon + 1 == slash || slash - colon > 6)
        return LUNA_ERR_FORMAT;
    for (const char *d = colon + 1; d < slash; d++) {
        if (*d < '0' || *d > '9')
            return LUNA_ERR_FORMAT;
        v = v * 10 + (*d - '0');
    }
    if (v < 1 || v > 65535)
        return LUNA_ERR_FORMAT;
    plen = strlen(slash);
    if (plen >= path_cap)
        return LUNA_ERR_FORMAT;
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)slash[i] <= 0x20 || (unsigned char)slash[i] >= 0x7f)
            return LUNA_ERR_FORMAT;
    memcpy(host, p, hlen);
    host[hlen] = '\0';
    memcpy(path, slash, plen + 1);
    *port = (uint16_t)v;
    return LUNA_OK;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static luna_err wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        struct pollfd pfd = {.fd = fd, .events = events};
        if (left <= 0)
            return LUNA_ERR_TIMEOUT;
        int r = poll(&pfd, 1, (int)left);
        if (r > 0)
            return LUNA_OK;
        if (r == 0)
            return LUNA_ERR_TIMEOUT;
        if (errno != EINTR)
            return LUNA_ERR_IO;
    }
}

static luna_err connect_to(const char *host, uint16_t port, int64_t deadline, int *out)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    int fd = -1;
    luna_err err = LUNA_ERR_UNAVAILABLE;

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || res == NULL)
        return LUNA_ERR_UNAVAILABLE;
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto out;
    if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (errno != EINPROGRESS)
            goto out;
        err = wait_fd(fd, POLLOUT, deadline);
        if (err != LUNA_OK)
            goto out;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            err = LUNA_ERR_UNAVAILABLE;
            goto out;
        }
    }
    *out = fd;
    fd = -1;
    err = LUNA_OK;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(res);
    return err;
}

static luna_err write_all(int fd, const char *buf, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return LUNA_ERR_IO;
        LUNA_GUARD(wait_fd(fd, POLLOUT, deadline));
    }
    return LUNA_OK;
}

luna_err att_webhook_post(const char *url, const char *body, size_t len, unsigned timeout_sec)
{
    char host[ATT_HOST_MAX + 1], path[ATT_URL_MAX + 1], head[1024], status[64];
    uint16_t port;
    int fd = -1;
    int n;
    size_t got = 0;
    luna_err err;
    int64_t deadline = mono_ms() + (int64_t)timeout_sec * 1000;

    LUNA_GUARD(att_url_parse(url, host, sizeof host, &port, path, sizeof path));
    n = snprintf(head, sizeof head,
                 "POST %s HTTP/1.1\r\nHost: %s:%u\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\nUser-Agent: luna-attestation\r\n\r\n",
                 path, host, (unsigned)port, len);
    if (n < 0 || (size_t)n >= sizeof head)
        return LUNA_ERR_TOO_LARGE;
    LUNA_GUARD(connect_to(host, port, deadline, &fd));
    LUNA_TRY(write_all(fd, head, (size_t)n, deadline), out);
    LUNA_TRY(write_all(fd, body, len, deadline), out);
    /* Only the status line matters: "HTTP/1.x 2xx". */
    while (got < 12) {
        LUNA_TRY(wait_fd(fd, POLLIN, deadline), out);
        ssize_t r = recv(fd, status + got, sizeof status - 1 - got, 0);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            err = LUNA_ERR_IO;
            goto out;
        }
        got += (size_t)r;
    }
    status[got] = '\0';
    if (got < 12 || strncmp(status, "HTTP/1.", 7) != 0 || status[9] != '2')
        err = LUNA_ERR_UNAVAILABLE;
    else
        err = LUNA_OK;
out:
    close(fd);
    return err;
}
