/* main.c - the chatd binary: dispatches `chatd SUBCOMMAND ...` to its cmd_* function. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_command commands[] = {
    {"serve", "serve the OpenAI API over HTTP", cmd_serve},
    {"info", "describe a GGUF model file (architecture, sizes, tokenizer, tensors)", cmd_info},
    {"tokenize", "turn text into the model's token ids", cmd_tokenize},
    {"detokenize", "turn token ids back into text", cmd_detokenize},
    {"run", "generate text from a prompt", cmd_run},
    {"score", "teacher-forced next-token log-probabilities of a token sequence", cmd_score},
    {"bench", "measure prompt processing and generation speed", cmd_bench},
};

static void usage(FILE *out) {
    fprintf(out, "usage: chatd SUBCOMMAND [options]\n\n"
                 "An OpenAI-compatible inference server for GGUF chat models.\n\n"
                 "subcommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`chatd SUBCOMMAND --help` describes one subcommand.\n");
}

bool cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return true;
    return false;
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("chatd 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "chatd: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
