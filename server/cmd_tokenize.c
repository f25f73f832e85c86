/* cmd_tokenize.c - placeholder until the tokenizer lands. */
#include <stdio.h>

#include "cli.h"

int cmd_tokenize(int argc, char **argv) {
    fprintf(stderr, "chatd tokenize: not built yet\n");
    return 1;
}

int cmd_detokenize(int argc, char **argv) {
    fprintf(stderr, "chatd detokenize: not built yet\n");
    return 1;
}
