/* tl_readfile.c - whole-file reads (size-capped) and atomic whole-file writes.
 * Every error names the file: "params.bin: cannot open: No such file or directory". */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tl_import.h"

/* Largest file tl_read_file accepts (4 GiB): anything larger is an error, not an attempt. */
#define TL_READ_MAX ((size_t)4 << 30)

int tl_read_file(const char *path, char **buf, size_t *len, tl_err *err) {
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tl_errf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return tl_errf(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return tl_errf(err, "%s: cannot read: %s", path, strerror(EISDIR));
    }
    /* Regular files: one allocation of the stated size. Pipes and the like: grow as we go. */
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size : (size_t)1 << 16;
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > TL_READ_MAX) {
        close(fd);
        return tl_errf(err, "%s: file too large (%lld bytes, limit 4 GiB)", path, (long long)st.st_size);
    }
    char *b = malloc(cap + 1);
    if (!b) {
        close(fd);
        return tl_erroom(err, "%s: out of memory reading %zu bytes", path, cap);
    }
    size_t n = 0;
    for (;;) {
        if (n == cap) {
            if (S_ISREG(st.st_mode)) {
                /* the file grew since fstat: probe for more, else we are done */
                char probe;
                ssize_t r = read(fd, &probe, 1);
                if (r == 0) break;
                if (r < 0) {
                    if (errno == EINTR) continue;
                    goto read_error;
                }
                tl_errf(err, "%s: cannot read: file changed while being read", path);
                goto fail;
            }
            if (cap >= TL_READ_MAX) {
                tl_errf(err, "%s: file too large (more than 4 GiB)", path);
                goto fail;
            }
            size_t ncap = cap * 2 > TL_READ_MAX ? TL_READ_MAX : cap * 2;
            char *nb = realloc(b, ncap + 1);
            if (!nb) {
                tl_erroom(err, "%s: out of memory reading %zu bytes", path, ncap);
                goto fail;
            }
            b = nb;
            cap = ncap;
        }
        size_t want = cap - n;
        if (want > ((size_t)1 << 30)) want = (size_t)1 << 30;
        ssize_t r = read(fd, b + n, want);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR) continue;
            goto read_error;
        }
        n += (size_t)r;
    }
    close(fd);
    b[n] = 0; /* NUL-terminated for text consumers; len excludes it */
    *buf = b;
    *len = n;
    return 0;
read_error:
    tl_errf(err, "%s: cannot read: %s", path, strerror(errno));
fail:
    free(b);
    close(fd);
    return -1;
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, c, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* An unnamed file in path's directory (O_TMPFILE): killed while writing (even by SIGKILL), it
 * leaves nothing behind. -1 where the file system has no O_TMPFILE (then a named temp is used). */
static int open_unnamed(const char *path) {
#ifdef O_TMPFILE
    char *dcopy = strdup(path);
    if (!dcopy) return -1;
    int fd = open(dirname(dcopy), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    free(dcopy);
    return fd;
#else
    (void)path;
    return -1;
#endif
}

/* Write to a temp file in the same directory, fsync, rename over `path`: readers see the old file
 * or the new one, never a part. The data goes into an UNNAMED file (O_TMPFILE) that gets a name
 * (path.tmp.XXXXXX, linkat) only once it is complete and synced, for the rename; so a process
 * killed while writing leaves no file, and one killed in the microseconds between linkat and
 * rename leaves a complete path.tmp.XXXXXX. Without O_TMPFILE the named temp holds the data from
 * the start (a SIGKILL then leaves a partial path.tmp.XXXXXX; any other failure removes it). */
int tl_write_file_atomic(const char *path, int nparts, const void *const *bufs, const size_t *lens, tl_err *err) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return tl_erroom(err, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = open_unnamed(path);
    bool unnamed = fd >= 0;
    if (!unnamed) fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return tl_errk(err, TL_ERR_IO, "%s: cannot create: %s", path, strerror(e));
    }
    bool named = !unnamed; /* tmp names a file we must remove on failure */
    const char *what = NULL;
    int e = 0;
    if (fchmod(fd, 0644) != 0) {
        what = "cannot set mode";
        e = errno;
    }
    for (int i = 0; !what && i < nparts; i++)
        if (lens[i] > 0 && write_all(fd, bufs[i], lens[i]) != 0) {
            what = "cannot write";
            e = errno;
        }
    if (!what && fsync(fd) != 0) {
        what = "cannot sync";
        e = errno;
    }
    if (!what && unnamed) {
        /* give the complete file a fresh unique name: mkstemp's pattern, retried on a collision */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        for (int tries = 0; !named && tries < 100; tries++) {
            memcpy(tmp + plen, ".tmp.XXXXXX", 12);
            int probe = mkostemp(tmp, O_CLOEXEC); /* reserve a name ... */
            if (probe < 0) break;
            close(probe);
            unlink(tmp); /* ... that linkat then takes (EEXIST if someone raced us: retry) */
            if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) named = true;
            else if (errno != EEXIST) break;
        }
        if (!named) {
            what = "cannot name temporary file";
            e = errno;
        }
    }
    if (close(fd) != 0 && !what) {
        what = "cannot write";
        e = errno;
    }
    if (!what && rename(tmp, path) != 0) {
        what = "cannot rename temporary file into place";
        e = errno;
    }
    if (what) {
        if (named) unlink(tmp);
        free(tmp);
        return tl_errk(err, TL_ERR_IO, "%s: %s: %s", path, what, strerror(e));
    }
    /* make the rename itself durable (best effort: some file systems refuse fsync on a dir) */
    char *dcopy = strdup(path);
    if (dcopy) {
        int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dcopy);
    }
    free(tmp);
    return 0;
}
