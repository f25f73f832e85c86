/* schema.h - a JSON Schema (response_format.json_schema.schema, a tool's parameters) turned
 * into a constrained-decoding grammar (include/chatd/constrain.h), or refused with a 400
 * that names the keyword this server cannot enforce and where it is.
 *
 * Supported: type (a name, or an array of names: one alternative each), properties,
 * required, additionalProperties (false: no other keys; true or absent: other keys with any
 * value; a schema: other keys with such values), enum, const, items, minItems, maxItems,
 * anyOf, oneOf (read as anyOf), allOf with one member, $ref to a pointer inside the schema
 * ("#/$defs/...", "#/definitions/...", any "#/..."; recursion is refused), minLength,
 * maxLength, format date / time / date-time / uuid, minimum / maximum / exclusiveMinimum /
 * exclusiveMaximum on integers (a draft-4 boolean exclusive* too), OpenAPI's nullable, {}
 * and true (any value). Annotations are ignored: description, title, default, examples,
 * $schema, $id, $comment, strict, deprecated, readOnly, writeOnly, discriminator, x-*.
 *
 * Keywords for a type the value cannot have are vacuous and ignored ({"type":"integer",
 * "format":"int64"}: "format" only constrains strings), except that "format" "int32" bounds
 * an integer. Keywords of one kind without "type" imply that type ({"properties":...} is an
 * object). Everything else (pattern, patternProperties, not, if/then/else, prefixItems,
 * uniqueItems, multipleOf, minProperties, contains, ...; bounds on type "number"; a false
 * schema; "format" with length bounds) is refused rather than left silently unenforced. */
#ifndef CHATD_SCHEMA_H
#define CHATD_SCHEMA_H

#include <cjson/cJSON.h>

#include "chatd/constrain.h"
#include "openai.h"

#define SCHEMA_MAX_NESTING 16   /* objects and arrays inside one another */
#define SCHEMA_MAX_NODES   8192 /* grammar nodes one schema may expand to ($ref copies) */

/* Builds the grammar node for a JSON Schema; -1 with a 400 api_error naming the unsupported
 * keyword and where it is (param e.g. "response_format.json_schema.schema" and message
 * "Invalid schema for '<param>': 'pattern' is not supported (at #/properties/zip)."; code
 * "unsupported_value" for what this server cannot enforce, "invalid_value" for what is not
 * valid JSON Schema or matches nothing; a 500 only when memory runs out). A refusal of this
 * module's own leaves g usable (perhaps holding unused nodes); one from a cons_* builder
 * poisons g (see cons_grammar_error), so build each request's grammar afresh. */
cons_node schema_to_grammar(cons_grammar *g, const cJSON *schema, const char *param,
                            api_error *err);

#endif
