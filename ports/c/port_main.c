/* port_main.c: the protocol executable (PORTING.md, version 1): one command per stdin line,
 * replies on stdout, flushed after every reply. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

#include "port_proto.h"

int main(void) {
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) >= 0) {
        int quit = port_handle(line, stdout);
        fflush(stdout);
        if (quit) break;
    }
    free(line);
    return 0;
}
