/* cli.h - the chatd subcommands. Each lives in its own server/cmd_*.c file and is
 * listed in the table in main.c. A command returns the process exit status. */
#ifndef CHATD_CLI_H
#define CHATD_CLI_H

#include <stdbool.h>

typedef struct cli_command {
    const char *name;
    const char *summary;               /* one line for `chatd --help` */
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

/* `chatd info`: what a user wants to know about a model file. */
int cmd_info(int argc, char **argv);
/* `chatd tokenize`: text to token ids. */
int cmd_tokenize(int argc, char **argv);
/* `chatd detokenize`: token ids to text. */
int cmd_detokenize(int argc, char **argv);

/* `chatd serve`: the OpenAI-compatible HTTP server. */
int cmd_serve(int argc, char **argv);
/* `chatd run`: generate text from a prompt. */
int cmd_run(int argc, char **argv);
/* `chatd score`: teacher-forced next-token log-probabilities. */
int cmd_score(int argc, char **argv);
/* `chatd bench`: prompt and generation speed. */
int cmd_bench(int argc, char **argv);

/* True when argv holds -h or --help. */
bool cli_wants_help(int argc, char **argv);

#endif
