/* guide.h - the constraint a chat request's output must follow (guided decoding): a JSON
 * object for response_format json_object, a schema for json_schema, tool calls in the
 * model's own syntax for tool_choice "required" or a named function; behind a thinking
 * block for reasoning models. Built here from the request and handed to the scheduler as
 * a compiled cons_program. */
#ifndef CHATD_GUIDE_H
#define CHATD_GUIDE_H

#include "chatd/constrain.h"
#include "chatparse.h"
#include "openai.h"

/* Where a reasoning model's thinking stands when generation begins. */
typedef enum guide_think {
    GUIDE_THINK_NONE = 0, /* no thinking block: the answer comes at once */
    GUIDE_THINK_OPEN,     /* the prompt ends inside <think>: text up to </think> first */
    GUIDE_THINK_MODEL     /* the model opens <think> itself */
} guide_think;

/* Compiles the constraint req asks for into *out (NULL when it asks for none). fmt is the
 * template's tool-call syntax. 0, or -1 with a 400 error naming what cannot be enforced. */
int guide_build(const api_request *req, cp_format fmt, guide_think think, const cons_vocab *cv,
                cons_program **out, api_error *err);

#endif
