/* schema_check.h - a small JSON Schema validator for tests: checks a cJSON value against a
 * schema from a bundle such as ../shared/spec/openai-schemas.json (draft 2020-12 with a
 * `$defs` section), so tests can prove the server's JSON has OpenAI's shape.
 *
 * Keywords checked: type (a name or an array of names), enum, const, properties, required,
 * additionalProperties (boolean or schema), items, prefixItems, minItems, maxItems,
 * minLength, maxLength (in bytes), minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 * anyOf, oneOf, allOf, not, $ref (JSON pointers into the same document, e.g.
 * "#/$defs/Name", with or without the document's $id in front) and OpenAPI 3.0's
 * `nullable: true`. Keywords that only annotate (description, title, default, examples,
 * deprecated, discriminator, format, $comment, x-...) are ignored. Any other keyword makes
 * validation fail with "unsupported keyword", so a schema is never passed by silently
 * skipping a rule this validator does not know. */
#ifndef CHATD_SCHEMA_CHECK_H
#define CHATD_SCHEMA_CHECK_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Also refuse, in every object schema that lists `properties` and says nothing about
 * `additionalProperties`, any member it does not list. The OpenAI schemas never forbid
 * extra members, so without this a misspelt optional field would pass. */
#define SCHEMA_STRICT 1

/* Validates instance against root's `$defs/<def_name>`. 0 when it is valid; -1 with err
 * holding the path of the first problem ("$.choices[0].finish_reason: ...") otherwise. */
int schema_validate(const cJSON *root, const char *def_name, const cJSON *instance, char *err,
                    size_t errlen);

/* The same with flags (SCHEMA_STRICT) and any schema inside root (references in it are
 * resolved against root). */
int schema_validate_ex(const cJSON *root, const cJSON *schema, const cJSON *instance, int flags,
                       char *err, size_t errlen);

/* Validates JSON text (parsed here); a parse failure is reported like any other problem. */
int schema_validate_text(const cJSON *root, const char *def_name, const char *json, int flags,
                         char *err, size_t errlen);

#endif
