/* test_traces.c: replay conformance traces (PORTING.md "Conformance traces", version 1).
 *
 *     test_traces FILE...
 *
 * Each file: a header line (arena shape and variant), then one operation per line (alloc, free,
 * words; spawn and step against the controlled build) with the reply it must get. Every line
 * goes through the same protocol code as the port executable (port_proto.c). An error reply
 * matches on its class (the message is free text). A file whose variant the port does not
 * implement (its arena gets `error Unsupported`) is skipped, and counted as such. Exit 0 iff
 * every expectation holds; else
 * print the first mismatch (file, line, command sent, expected, got) and exit 1; exit 2 for a
 * file that cannot be read or is not a version-1 trace.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "port_proto.h"

#define FIELD_CAP 4096

/* The raw JSON text of key's value in a flat object (a string without its quotes; *is_string
 * says which), or false if the key is absent. Strings with escapes keep them (traces have none). */
static bool field(const char *line, const char *key, char *out, size_t cap, bool *is_string) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (p == NULL) return false;
    p += strlen(pat);
    const char *end;
    *is_string = *p == '"';
    if (*is_string) {
        p++;
        for (end = p; *end && *end != '"'; end++)
            if (*end == '\\' && end[1]) end++;
    } else if (*p == '[') {
        end = strchr(p, ']');
        if (end) end++;
    } else {
        end = p + strcspn(p, ",}");
    }
    if (end == NULL) return false;
    size_t n = (size_t)(end - p);
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* The error class of a reply line "error Class ..." (or of an expectation "Class"), else NULL. */
static const char *error_class(const char *s, char *buf, size_t cap) {
    if (strncmp(s, "error ", 6) == 0) s += 6;
    else if (strchr(s, ' ') != NULL || strcmp(s, "ok") == 0 || strcmp(s, "none") == 0) return NULL;
    else if (s[0] < 'A' || s[0] > 'Z') return NULL;
    size_t n = strcspn(s, " ");
    if (n >= cap) n = cap - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* One reply line against one expected line: equal, or (for "done T error ...", "error ...") the
 * same class. */
static bool line_matches(const char *want, const char *got) {
    if (strcmp(want, got) == 0) return true;
    const char *w = want, *g = got;
    /* "done T " prefixes must agree before the results are compared. */
    if (strncmp(w, "done ", 5) == 0) {
        size_t pw = 5 + strcspn(w + 5, " "), pg = 5 + strcspn(g + 5, " ");
        if (strncmp(g, "done ", 5) != 0 || pw != pg || strncmp(w, g, pw) != 0 || !w[pw] || !g[pg]) return false;
        w += pw + 1, g += pg + 1;
    }
    char a[128], b[128];
    const char *cw = error_class(w, a, sizeof a), *cg = strncmp(g, "error ", 6) == 0 ? error_class(g, b, sizeof b) : NULL;
    return cw != NULL && cg != NULL && strcmp(cw, cg) == 0;
}

/* Send cmd through the protocol; the reply lines, joined by '|', in got. */
static void send(const char *cmd, char **got) {
    size_t len = 0;
    FILE *out = open_memstream(got, &len);
    if (out == NULL) abort();
    port_handle(cmd, out);
    fclose(out);
    /* Join lines with '|' and drop the last newline. */
    for (size_t i = 0; i < len; i++)
        if ((*got)[i] == '\n') (*got)[i] = i + 1 == len ? '\0' : '|';
}

/* Every '|'-separated expected line matches the reply's line in the same place. */
static bool matches(const char *want, const char *got) {
    char *w = strdup(want), *g = strdup(got);
    bool ok = true;
    char *ws = w, *gs = g;
    for (;;) {
        char *we = strchr(ws, '|'), *ge = strchr(gs, '|');
        if (we) *we = '\0';
        if (ge) *ge = '\0';
        if (!line_matches(ws, gs)) ok = false;
        if (!ok || !we || !ge) {
            ok = ok && !we && !ge;
            break;
        }
        ws = we + 1, gs = ge + 1;
    }
    free(w), free(g);
    return ok;
}

static int fail(const char *file, int lineno, const char *cmd, const char *want, const char *got) {
    printf("%s:%d: sent '%s'\n  expected: %s\n  got:      %s\n", file, lineno, cmd, want, got);
    return 1;
}

/* A JSON value as the protocol's token: a number as it is, null as '-'. */
static const char *token(const char *v) { return strcmp(v, "null") == 0 ? "-" : v; }

static int replay(const char *file, int *lines, int *skipped) {
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        printf("%s: cannot open\n", file);
        return 2;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    char v[FIELD_CAP], v2[FIELD_CAP], want[FIELD_CAP], cmd[2 * FIELD_CAP + 64];
    bool s1, s2, ws;
    while (rc == 0 && getline(&line, &cap, f) >= 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') continue;
        if (lineno == 1) {
            char d[32], ps[32], st[32], mo[32], var[64];
            if (!field(line, "format", v, sizeof v, &s1) || strcmp(v, "nbbs-trace") != 0 ||
                !field(line, "version", v2, sizeof v2, &s2) || strcmp(v2, "1") != 0 ||
                !field(line, "depth", d, sizeof d, &s1) || !field(line, "page_size", ps, sizeof ps, &s1) ||
                !field(line, "start", st, sizeof st, &s1) || !field(line, "max_order", mo, sizeof mo, &s1) ||
                !field(line, "variant", var, sizeof var, &s1)) {
                printf("%s:1: not a version-1 nbbs trace header: %s\n", file, line);
                rc = 2;
                break;
            }
            snprintf(cmd, sizeof cmd, "arena %s %s %s %s %s", d, ps, st, token(mo), var);
            char *got = NULL;
            send(cmd, &got);
            if (strncmp(got, "error Unsupported", 17) == 0) {
                /* A variant this port does not implement: nothing to check here, and said so. */
                printf("%s: skipped (%s)\n", file, got);
                (*skipped)++;
                free(got);
                break;
            }
            if (strcmp(got, "ok") != 0) rc = fail(file, lineno, cmd, "ok", got);
            free(got);
            continue;
        }
        if (!field(line, "op", v, sizeof v, &s1) || !field(line, "expect", want, sizeof want, &ws)) {
            printf("%s:%d: a trace line needs \"op\" and \"expect\": %s\n", file, lineno, line);
            rc = 2;
            break;
        }
        if (strcmp(v, "alloc") == 0) {
            if (!field(line, "order", v, sizeof v, &s1)) v[0] = '\0';
            if (!field(line, "hint", v2, sizeof v2, &s2)) strcpy(v2, "null");
            snprintf(cmd, sizeof cmd, "alloc %s %s", v, token(v2));
        } else if (strcmp(v, "free") == 0) {
            if (!field(line, "addr", v, sizeof v, &s1)) v[0] = '\0';
            if (!field(line, "order", v2, sizeof v2, &s2)) strcpy(v2, "null");
            snprintf(cmd, sizeof cmd, "free %s %s", v, token(v2));
        } else if (strcmp(v, "words") == 0) {
            snprintf(cmd, sizeof cmd, "words");
            /* [0,1,2] -> "words 0 1 2" */
            char w[FIELD_CAP + 8] = "words";
            size_t k = 5;
            for (const char *p = want + 1; *p && *p != ']' && k + 2 < sizeof w; p++) {
                if (*p == ',') continue;
                if (p == want + 1 || p[-1] == ',') w[k++] = ' ';
                w[k++] = *p;
            }
            w[k] = '\0';
            strcpy(want, w);
        } else if (strcmp(v, "spawn") == 0) {
            if (!field(line, "thread", v, sizeof v, &s1) || !field(line, "cmd", v2, sizeof v2, &s2)) v[0] = v2[0] = '\0';
            snprintf(cmd, sizeof cmd, "spawn %s %s", v, v2);
        } else if (strcmp(v, "step") == 0) {
            if (!field(line, "thread", v, sizeof v, &s1)) v[0] = '\0';
            snprintf(cmd, sizeof cmd, "step %s", v);
        } else {
            printf("%s:%d: unknown op '%s'\n", file, lineno, v);
            rc = 2;
            break;
        }
        if (!ws && strcmp(want, "null") == 0) strcpy(want, "none");
        char *got = NULL;
        send(cmd, &got);
        if (!matches(want, got)) rc = fail(file, lineno, cmd, want, got);
        free(got);
    }
    *lines += lineno;
    free(line);
    fclose(f);
    return rc;
}

/* Lines in a file (the summary's count). */
static int count_lines(const char *file) {
    FILE *f = fopen(file, "r");
    int n = 0, c;
    if (f == NULL) return 0;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TRACE.jsonl...\n", argv[0]);
        return 2;
    }
    int lines = 0, skipped = 0;
    for (int i = 1; i < argc; i++) {
        /* Each file in a process of its own: a schedule may end with threads stopped mid-operation
         * (a counterexample does), and the next file must start from a fresh port. */
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            int n = 0, s = 0;
            int rc = replay(argv[i], &n, &s);
            fflush(stdout);
            _exit(rc != 0 ? rc : s ? 3 : 0);
        }
        int status = 0;
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
            printf("%s: the replay died\n", argv[i]);
            return 2;
        }
        int rc = WEXITSTATUS(status);
        if (rc == 1 || rc == 2) return rc;
        skipped += rc == 3;
        lines += count_lines(argv[i]);
    }
    printf("%d trace files (%d skipped: variant not in this port), %d lines: every expectation holds\n", argc - 1,
           skipped, lines);
    return 0;
}
