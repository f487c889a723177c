/* port_proto.h: PORTING.md's line protocol, version 1, over nbbs.h (one session per process).
 *
 * port_main.c reads stdin and hands each line here; test_traces.c hands trace lines here and
 * compares the replies with the trace's expectations. So both speak exactly the same protocol.
 */
#ifndef PORT_PROTO_H
#define PORT_PROTO_H

#include <stdio.h>

/* Handle one command line (without or with its newline); write the reply lines to out.
 * Returns 1 after `quit`, else 0. */
int port_handle(const char *line, FILE *out);

#endif
