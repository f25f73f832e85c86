/* test_schema.c - JSON Schema to constraint grammar (server/schema.c): every refusal with its
 * status, code, param, the keyword it names and where; that the grammars built accept valid
 * documents and refuse invalid ones, fed byte by byte; and that generation steered by the
 * token mask over a small byte-level vocabulary ends, and only ever produces documents the
 * schema accepts (checked with the independent validator in schema_check.c). Schemas and
 * documents are written with ' for ". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatd/constrain.h"
#include "chatd/gguf.h"
#include "chatd/tokenizer.h"
#include "gguf_builder.h"
#include "schema.h"
#include "schema_check.h"
#include "testutil.h"

#define PARAM "response_format.json_schema.schema"

/* The text with every ' turned into ", as a new string (caller frees). */
static char *q(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d) abort();
    for (size_t i = 0; i <= n; i++) d[i] = s[i] == '\'' ? '"' : s[i];
    return d;
}

static cJSON *qjson(const char *s) {
    char *t = q(s);
    cJSON *j = cJSON_Parse(t);
    free(t);
    TU_CHECK(j != NULL, "test JSON does not parse: %s", s);
    return j;
}

/* Builds the grammar of schema text; the node, or -1 with err filled. *gp gets the grammar. */
static cons_node build(const char *schema, cons_grammar **gp, api_error *err) {
    chatd_error cerr = {{0}};
    memset(err, 0, sizeof *err);
    *gp = cons_grammar_new(&cerr);
    TU_CHECK(*gp != NULL, "cons_grammar_new: %s", cerr.msg);
    cJSON *s = qjson(schema);
    cons_node n = *gp && s ? schema_to_grammar(*gp, s, PARAM, err) : -1;
    cJSON_Delete(s);
    return n;
}

/* ------------------------------------------------------------- refusals */

/* Expects schema to be refused with a 400 of code, a message holding what, and the place. */
static void refuse(const char *name, const char *schema, const char *code, const char *what,
                   const char *where) {
    tu_case("refuse/%s", name);
    cons_grammar *g;
    api_error err;
    cons_node n = build(schema, &g, &err);
    TU_CHECK(n == -1, "accepted: %s", schema);
    if (n == -1) {
        TU_CHECK(err.status == 400, "status %d (%s)", err.status, err.message);
        TU_CHECK(err.type && strcmp(err.type, "invalid_request_error") == 0, "type %s", err.type);
        TU_CHECK(err.code && strcmp(err.code, code) == 0, "code %s, want %s (%s)",
                 err.code ? err.code : "null", code, err.message);
        TU_CHECK(strcmp(err.param, PARAM) == 0, "param '%s'", err.param);
        TU_CHECK(strstr(err.message, what) != NULL, "message '%s' lacks '%s'", err.message, what);
        char at[300];
        snprintf(at, sizeof at, "(at %s).", where);
        TU_CHECK(strstr(err.message, at) != NULL, "message '%s' lacks '%s'", err.message, at);
        TU_CHECK(strncmp(err.message, "Invalid schema for '" PARAM "': ", 20 + strlen(PARAM) + 3) ==
                     0,
                 "message prefix: %s", err.message);
    }
    cons_grammar_free(g);
}

#define UNSUP(name, schema, kw, where)   refuse(name, schema, "unsupported_value", kw, where)
#define INVAL(name, schema, what, where) refuse(name, schema, "invalid_value", what, where)

static void test_refusals(void) {
    static const char *const unsupported[] = {
        "pattern",
        "patternProperties",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "uniqueItems",
        "multipleOf",
        "minProperties",
        "maxProperties",
        "contains",
        "minContains",
        "maxContains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
        "prefixItems",
        "$anchor",
        "$dynamicRef",
        "dependencies",
        "contentEncoding",
        "foo",
    };
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        char name[64], schema[256], what[96];
        snprintf(name, sizeof name, "keyword-%s", unsupported[i]);
        snprintf(schema, sizeof schema,
                 "{'type':'object','properties':{'zip':{'type':'string','%s':1}}}", unsupported[i]);
        snprintf(what, sizeof what, "'%s' is not supported", unsupported[i]);
        UNSUP(name, schema, what, "#/properties/zip");
    }
    tu_case("refuse/message-exact");
    {
        cons_grammar *g;
        api_error err;
        build("{'type':'object','properties':{'zip':{'type':'string','pattern':'^[0-9]{5}$'}}}", &g,
              &err);
        TU_CHECK(strcmp(err.message, "Invalid schema for '" PARAM
                                     "': 'pattern' is not supported (at #/properties/zip).") == 0,
                 "message: %s", err.message);
        cons_grammar_free(g);
    }
    UNSUP("root-keyword", "{'type':'string','pattern':'a'}", "'pattern' is not supported", "#");
    UNSUP("pointer-escapes", "{'properties':{'a/b~c':{'not':{}}}}", "'not'",
          "#/properties/a~1b~0c");
    UNSUP("in-items", "{'type':'array','items':{'type':'integer','multipleOf':2}}", "'multipleOf'",
          "#/items");
    UNSUP("in-anyof", "{'anyOf':[{'type':'null'},{'type':'string','pattern':'x'}]}", "'pattern'",
          "#/anyOf/1");
    UNSUP("in-additional", "{'type':'object','additionalProperties':{'uniqueItems':true}}",
          "'uniqueItems'", "#/additionalProperties");
    UNSUP("in-ref-target",
          "{'type':'object','properties':{'home':{'$ref':'#/$defs/Address'}},'$defs':{'Address':"
          "{'type':'object','properties':{'zip':{'type':'string','pattern':'x'}}}}}",
          "'pattern'", "#/$defs/Address/properties/zip");
    UNSUP("in-definitions-target", "{'$ref':'#/definitions/A','definitions':{'A':{'not':{}}}}",
          "'not'", "#/definitions/A");
    UNSUP("prefix-items", "{'type':'array','prefixItems':[{'type':'string'}]}",
          "'prefixItems' is not supported", "#");
    UNSUP("items-tuple", "{'type':'array','items':[{'type':'string'}]}",
          "'items' as an array (a tuple) is not supported", "#");
    UNSUP("format-email", "{'type':'string','format':'email'}", "'format' 'email' is not supported",
          "#");
    UNSUP("format-uri-no-type", "{'format':'uri'}", "'format' 'uri' is not supported", "#");
    UNSUP("format-with-length", "{'type':'string','format':'date','maxLength':10}",
          "'format' together with 'maxLength'", "#");
    UNSUP("number-minimum", "{'type':'number','minimum':0}",
          "'minimum' is not supported for 'type': 'number'", "#");
    UNSUP("number-exclusive-max", "{'type':['number','null'],'exclusiveMaximum':1}",
          "'exclusiveMaximum' is not supported for 'type': 'number'", "#");
    UNSUP("minimum-without-type", "{'minimum':1}", "'minimum' without 'type': 'integer'", "#");
    UNSUP("several-kinds-without-type", "{'properties':{},'items':{}}",
          "keywords of several types without 'type'", "#");
    UNSUP("allof-two", "{'allOf':[{'type':'object'},{'required':['a']}]}",
          "'allOf' with more than one schema", "#");
    UNSUP("anyof-with-type", "{'type':'object','anyOf':[{'required':['a']},{'required':['b']}]}",
          "'anyOf' together with 'type'", "#");
    UNSUP("anyof-with-properties", "{'properties':{'a':{}},'oneOf':[{},{}]}",
          "'oneOf' together with 'properties'", "#");
    UNSUP("anyof-and-oneof", "{'anyOf':[{}],'oneOf':[{}]}", "'anyOf' together with 'oneOf'", "#");
    UNSUP("ref-with-type",
          "{'$defs':{'A':{}},'properties':{'a':{'$ref':'#/$defs/A','type':"
          "'string'}}}",
          "'$ref' together with 'type'", "#/properties/a");
    UNSUP("ref-remote", "{'$ref':'https://example.com/s.json'}",
          "'$ref' to 'https://example.com/s.json' is not supported", "#");
    UNSUP("ref-recursive",
          "{'$ref':'#/$defs/Node','$defs':{'Node':{'type':'object','properties':{'next':{'$ref':"
          "'#/$defs/Node'}}}}}",
          "recursive '$ref' ('#/$defs/Node') is not supported", "#/$defs/Node/properties/next");
    UNSUP("ref-mutual-recursion",
          "{'$defs':{'A':{'type':'array','items':{'$ref':'#/$defs/B'}},'B':{'anyOf':[{'type':"
          "'null'},{'$ref':'#/$defs/A'}]}},'$ref':'#/$defs/A'}",
          "recursive '$ref' ('#/$defs/A')", "#/$defs/B/anyOf/1");
    UNSUP("ref-root", "{'type':'object','properties':{'self':{'$ref':'#'}}}", "recursive '$ref'",
          "#/properties/self");
    UNSUP("false-schema", "{'type':'object','properties':{'a':false}}",
          "a 'false' schema is not supported", "#/properties/a");
    UNSUP("enum-and-const", "{'enum':[1],'const':1}", "'enum' together with 'const'", "#");

    /* a schema nested too deeply for the matcher's stack */
    tu_case("refuse/nesting");
    {
        char s[2048] = "";
        size_t n = 0;
        for (int i = 0; i < SCHEMA_MAX_NESTING + 1; i++)
            n += (size_t)snprintf(s + n, sizeof s - n, "{'type':'array','items':");
        n += (size_t)snprintf(s + n, sizeof s - n, "{}");
        for (int i = 0; i < SCHEMA_MAX_NESTING + 1; i++) s[n++] = '}';
        s[n] = 0;
        char where[512] = "#";
        for (int i = 0; i < SCHEMA_MAX_NESTING; i++) strcat(where, "/items");
        UNSUP("nesting", s, "nested more than 16 deep", where);
    }
    /* a DAG of references that doubles at every level expands past the node budget */
    tu_case("refuse/expansion");
    {
        char s[4096];
        size_t n = (size_t)snprintf(s, sizeof s, "{'$ref':'#/$defs/d0','$defs':{");
        for (int i = 0; i < 16; i++)
            n += (size_t)snprintf(s + n, sizeof s - n,
                                  "'d%d':{'anyOf':[{'$ref':'#/$defs/d%d'},{'$ref':'#/$defs/"
                                  "d%d'}]},",
                                  i, i + 1, i + 1);
        snprintf(s + n, sizeof s - n, "'d16':{'type':'integer'}}}");
        cons_grammar *g;
        api_error err;
        TU_CHECK(build(s, &g, &err) == -1 && err.status == 400 &&
                     strstr(err.message, "grammar nodes"),
                 "exponential $ref expansion: %s", err.message);
        cons_grammar_free(g);
    }

    INVAL("type-unknown", "{'type':'str'}", "unknown type 'str'", "#");
    INVAL("type-number", "{'type':5}", "'type' must be", "#");
    INVAL("type-empty-array", "{'type':[]}", "'type' must be", "#");
    INVAL("type-array-member", "{'type':['string',1]}", "'type' must hold type names", "#");
    INVAL("schema-not-object", "{'type':'object','properties':{'a':'string'}}",
          "a schema must be an object or a boolean", "#/properties/a");
    INVAL("properties-type", "{'type':'object','properties':[]}", "'properties' must be an object",
          "#");
    INVAL("required-type", "{'type':'object','required':'a'}", "'required' must be an array", "#");
    INVAL("required-member", "{'type':'object','required':[1]}", "'required' must hold strings",
          "#");
    INVAL("required-twice", "{'type':'object','required':['a','a']}", "'required' lists 'a' twice",
          "#");
    INVAL("required-undeclared-closed",
          "{'type':'object','properties':{'a':{}},'required':['b'],'additionalProperties':false}",
          "'required' lists 'b', which 'properties' does not define", "#");
    INVAL("additional-type", "{'type':'object','additionalProperties':1}",
          "'additionalProperties' must be a boolean or a schema", "#");
    INVAL("min-items-negative", "{'type':'array','minItems':-1}",
          "'minItems' must be a non-negative integer", "#");
    INVAL("max-items-decimal", "{'type':'array','maxItems':1.5}", "'maxItems' must be", "#");
    INVAL("items-bounds", "{'type':'array','minItems':3,'maxItems':2}",
          "'minItems' is greater than 'maxItems'", "#");
    INVAL("length-bounds", "{'type':'string','minLength':3,'maxLength':2}",
          "'minLength' is greater than 'maxLength'", "#");
    INVAL("max-length-string", "{'type':'string','maxLength':'5'}", "'maxLength' must be", "#");
    INVAL("format-type", "{'type':'string','format':5}", "'format' must be a string", "#");
    INVAL("integer-bounds-empty", "{'type':'integer','minimum':5,'maximum':4}",
          "no integer is within the bounds", "#");
    INVAL("integer-exclusive-empty", "{'type':'integer','exclusiveMinimum':1,'exclusiveMaximum':2}",
          "no integer is within the bounds", "#");
    INVAL("integer-decimal-bounds-empty", "{'type':'integer','minimum':1.2,'maximum':1.8}",
          "no integer is within the bounds", "#");
    INVAL("minimum-type", "{'type':'integer','minimum':'0'}", "'minimum' must be a number", "#");
    INVAL("enum-empty", "{'enum':[]}", "'enum' must be a non-empty array", "#");
    INVAL("enum-not-array", "{'enum':'a'}", "'enum' must be a non-empty array", "#");
    INVAL("enum-no-value-of-type", "{'type':'integer','enum':['a',1.5]}",
          "no value of 'enum' has the schema's 'type'", "#");
    INVAL("const-wrong-type", "{'type':'string','const':1}", "no value of 'const'", "#");
    INVAL("anyof-empty", "{'anyOf':[]}", "'anyOf' must be a non-empty array of schemas", "#");
    INVAL("anyof-object", "{'oneOf':{}}", "'oneOf' must be a non-empty array", "#");
    INVAL("ref-type", "{'$ref':1}", "'$ref' must be a string", "#");
    INVAL("ref-unresolved", "{'$ref':'#/$defs/Nope','$defs':{}}",
          "'$ref' '#/$defs/Nope' does not resolve", "#");
    INVAL("ref-anchor", "{'$ref':'#Name'}", "does not resolve", "#");
    INVAL("nullable-type", "{'type':'string','nullable':'yes'}", "'nullable' must be a boolean",
          "#");

    tu_case("refuse/too-many-properties");
    {
        char s[4096];
        size_t n = (size_t)snprintf(s, sizeof s, "{'type':'object','properties':{");
        for (int i = 0; i <= CONS_MAX_PROPS; i++)
            n += (size_t)snprintf(s + n, sizeof s - n, "%s'p%d':{}", i ? "," : "", i);
        snprintf(s + n, sizeof s - n, "}}");
        UNSUP("too-many-properties", s, "more than 64 properties", "#");
    }
    tu_case("refuse/too-many-enum-values");
    {
        char s[4096];
        size_t n = (size_t)snprintf(s, sizeof s, "{'enum':[");
        for (int i = 0; i <= CONS_MAX_LITERALS; i++)
            n += (size_t)snprintf(s + n, sizeof s - n, "%s%d", i ? "," : "", i);
        snprintf(s + n, sizeof s - n, "]}");
        UNSUP("too-many-enum-values", s, "'enum' with more than 256 values", "#");
    }

    tu_case("refuse/null-arguments");
    {
        api_error err;
        memset(&err, 0, sizeof err);
        cJSON *s = qjson("{}");
        TU_CHECK(schema_to_grammar(NULL, s, PARAM, &err) == -1 && err.status == 500,
                 "NULL grammar");
        chatd_error cerr = {{0}};
        cons_grammar *g = cons_grammar_new(&cerr);
        TU_CHECK(schema_to_grammar(g, NULL, "tools[0].function.parameters", &err) == -1 &&
                     err.status == 400 && strcmp(err.param, "tools[0].function.parameters") == 0,
                 "NULL schema");
        cons_grammar_free(g);
        cJSON_Delete(s);
    }
}

/* ------------------------------------------------------------ vocabulary */

/* Multi-byte tokens, so that masks are walked over tokens that span structure. */
static const char *const extra_tokens[] = {
    "{\"", "\":", "\",", "\"}",  "\": \"", "},", "true", "false", "null", "12", "2024",  "-01",
    ":00", "ab",  " \"", "\n  ", "[1",     "],", "é",    "\\\"",  "0.5",  "e+", "\"a\"",
};
#define N_EXTRA (sizeof extra_tokens / sizeof extra_tokens[0])
#define EOS_ID  (256 + (int32_t)N_EXTRA)

/* A byte-level BPE vocabulary: the 256 bytes, the extra tokens, and an end token. */
static tok_vocab *make_vocab(void) {
    gb_buf b = {0};
    int32_t eos = gb_byte_vocab(&b, extra_tokens, N_EXTRA);
    TU_CHECK(eos == EOS_ID, "end token %d", eos);
    chatd_error err = {{0}};
    gguf_file *f = gguf_open_memory(b.data, b.len, &err);
    TU_CHECK(f != NULL, "gguf_open_memory: %s", err.msg);
    tok_vocab *v = f ? tok_load(f, &err) : NULL;
    TU_CHECK(v != NULL, "tok_load: %s", err.msg);
    if (f) gguf_close(f);
    gb_free(&b);
    return v;
}

/* ------------------------------------------------------- documents */

typedef struct fixture {
    tok_vocab *tok;
    cons_vocab *cv;
} fixture;

/* Compiles schema text for the fixture's vocabulary; NULL (a failure recorded) if refused. */
static cons_program *compile(const fixture *fx, const char *schema) {
    cons_grammar *g;
    api_error err;
    cons_node root = build(schema, &g, &err);
    TU_CHECK(root >= 0, "refused (%s): %s", err.message, schema);
    cons_program *p = NULL;
    if (root >= 0) {
        chatd_error cerr = {{0}};
        p = cons_compile(g, root, fx->cv, &cerr);
        TU_CHECK(p != NULL, "cons_compile: %s", cerr.msg);
    }
    cons_grammar_free(g);
    return p;
}

/* Whether the whole document is a complete match. */
static bool matches(cons_program *p, const char *doc) {
    chatd_error err = {{0}};
    cons_matcher *m = cons_matcher_new(p, &err);
    TU_CHECK(m != NULL, "cons_matcher_new: %s", err.msg);
    if (!m) return false;
    bool ok = cons_advance_bytes(m, doc, strlen(doc)) == 0 && cons_complete(m);
    cons_matcher_free(m);
    return ok;
}

typedef struct doc_case {
    const char *name;
    const char *schema;
    const char *valid[8];
    const char *invalid[12];
} doc_case;

static const doc_case doc_cases[] = {
    {"any",
     "{}",
     {"1", "'x'", "{'a':[1,{'b':null}]}", "[]", "true", "-0.5e3"},
     {"", "'x", "{,}", "tru"}},
    {"true-schema", "{'properties':{'a':true}}", {"{'a':[1]}", "{}"}, {"[]"}},
    {"string",
     "{'type':'string'}",
     {"''", "'a b'", "'\\u00e9\\n'", "'é'", "'\\''"},
     {"1", "'a", "'\x01'", "null"}},
    {"string-length",
     "{'type':'string','minLength':2,'maxLength':3}",
     {"'ab'", "'abc'", "'éé'", "'a\\u0041'"},
     {"'a'", "'abcd'", "''", "'é'"}},
    {"format-date",
     "{'type':'string','format':'date'}",
     {"'2024-01-31'"},
     {"'2024-1-31'", "'x'", "'2024-01-31T'"}},
    {"format-date-time",
     "{'type':'string','format':'date-time'}",
     {"'2024-01-31T13:45:00Z'", "'2024-01-31T13:45:00.5Z'", "'2024-01-31T13:45:00+02:00'",
      "'2024-01-31T13:45:00.5+02:00'", "'2024-01-31T13:45:00.123-05:30'"},
     {"'2024-01-31'", "'2024-01-31 13:45:00Z'"}},
    {"format-time",
     "{'type':'string','format':'time'}",
     {"'13:45:00Z'", "'13:45:00.5Z'", "'13:45:00+02:00'", "'13:45:00.5+02:00'"},
     {"'1:45'", "'13:45'"}},
    {"format-uuid",
     "{'type':'string','format':'uuid'}",
     {"'123e4567-e89b-12d3-a456-426614174000'"},
     {"'123e4567e89b12d3a456426614174000'", "'123e4567-e89b-12d3-a456-42661417400g'"}},
    {"integer",
     "{'type':'integer','minimum':-5,'exclusiveMaximum':100}",
     {"-5", "0", "99", "7"},
     {"-6", "100", "1.5", "'1'", "1e2"}},
    {"integer-decimal-bounds",
     "{'type':'integer','minimum':0.5,'maximum':2.5}",
     {"1", "2"},
     {"0", "3"}},
    {"integer-draft4-exclusive",
     "{'type':'integer','minimum':0,'exclusiveMinimum':true,'maximum':3}",
     {"1", "3"},
     {"0", "4"}},
    {"integer-format-int64", "{'type':'integer','format':'int64'}", {"123456789012"}, {"1.5"}},
    {"number", "{'type':'number'}", {"1", "-0.25", "3e8", "1.5E-3"}, {"'1'", ".5", "01", "1."}},
    {"boolean-null", "{'type':['boolean','null']}", {"true", "false", "null"}, {"0", "'true'"}},
    {"nullable-string", "{'type':['string','null'],'maxLength':1}", {"'a'", "null"}, {"'ab'", "1"}},
    {"openapi-nullable", "{'type':'integer','nullable':true}", {"3", "null"}, {"'3'"}},
    {"enum",
     "{'enum':['red','green',3,null,{'a':[1]}]}",
     {"'red'", "'green'", "3", "null", "{'a':[1]}"},
     {"'blue'", "4", "'Red'", "{'a':[2]}"}},
    {"enum-filtered-by-type", "{'type':'string','enum':['a',1]}", {"'a'"}, {"1"}},
    {"const", "{'const':'x'}", {"'x'"}, {"'y'", "x"}},
    {"object-closed",
     "{'type':'object','properties':{'name':{'type':'string'},'age':{'type':'integer'}},"
     "'required':['name'],'additionalProperties':false}",
     {"{'name':'a'}", "{'name':'a','age':3}", "{'age':3,'name':'a'}", "{ 'name' : 'a' }"},
     {"{}", "{'age':3}", "{'name':'a','x':1}", "{'name':1}", "{'name':'a','name':'b'}",
      "{'name':'a',}"}},
    {"object-open",
     "{'type':'object','properties':{'a':{'type':'integer'}}}",
     {"{}", "{'a':1}", "{'b':'x','a':2}", "{'b':{'c':[]}}"},
     {"{'a':'x'}", "[]"}},
    {"object-additional-schema",
     "{'type':'object','additionalProperties':{'type':'integer'},'required':['n']}",
     {"{'n':1}", "{'n':1,'m':2}"},
     {"{}", "{'n':'x'}", "{'n':1,'m':'x'}"}},
    {"object-implied",
     "{'properties':{'a':{'const':1}},'required':['a'],'additionalProperties':false}",
     {"{'a':1}"},
     {"1", "{'a':2}"}},
    {"array",
     "{'type':'array','items':{'type':'integer'},'minItems':1,'maxItems':3}",
     {"[1]", "[1,2,3]", "[ 1 , 2 ]"},
     {"[]", "[1,2,3,4]", "['a']", "[1,]"}},
    {"array-implied-any-items", "{'maxItems':1}", {"[]", "[{'a':1}]"}, {"[1,2]"}},
    {"anyof",
     "{'anyOf':[{'type':'integer'},{'type':'object','properties':{'k':{'type':'string'}},"
     "'required':['k'],'additionalProperties':false}]}",
     {"5", "{'k':'v'}"},
     {"'5'", "{}", "{'k':1}"}},
    {"oneof-as-anyof", "{'oneOf':[{'type':'number'},{'type':'integer'}]}", {"1", "1.5"}, {"'1'"}},
    {"allof-single",
     "{'allOf':[{'$ref':'#/$defs/P'}],'description':'d','$defs':{'P':{'type':'string'}}}",
     {"'p'"},
     {"1"}},
    {"refs",
     "{'$schema':'https://json-schema.org/draft/2020-12/schema','title':'T','type':'object',"
     "'properties':{'home':{'$ref':'#/$defs/Address'},'work':{'$ref':'#/definitions/Addr2'},"
     "'tags':{'type':'array','items':{'$ref':'#/$defs/Tag'}}},'required':['home','work','tags'],"
     "'additionalProperties':false,'$defs':{'Address':{'type':'object','properties':{'zip':{"
     "'type':'string','minLength':5,'maxLength':5}},'required':['zip'],'additionalProperties':"
     "false},'Tag':{'enum':['a','b']}},'definitions':{'Addr2':{'$ref':'#/$defs/Address'}}}",
     {"{'home':{'zip':'12345'},'work':{'zip':'54321'},'tags':['a','b','a']}",
      "{'tags':[],'work':{'zip':'00000'},'home':{'zip':'11111'}}"},
     {"{'home':{'zip':'1234'},'work':{'zip':'54321'},'tags':[]}",
      "{'home':{'zip':'12345'},'work':{'zip':'54321'},'tags':['c']}",
      "{'home':{'zip':'12345'},'tags':[]}"}},
    {"annotations",
     "{'type':'object','description':'d','title':'t','default':{},'examples':[{}],'$id':'x',"
     "'$comment':'c','strict':true,'deprecated':false,'readOnly':true,'writeOnly':false,"
     "'x-order':1,'properties':{'a':{'type':'string','default':'z','description':'x'}},"
     "'required':['a'],'additionalProperties':false}",
     {"{'a':''}"},
     {"{}"}},
    {"vacuous-keywords", "{'type':'string','minimum':5,'items':{'pattern':'x'}}", {"'s'"}, {"5"}},
    {"integer-in-number", "{'type':['integer','number']}", {"1", "1.5"}, {"null"}},
    {"openai-strict-example",
     "{'type':'object','properties':{'steps':{'type':'array','items':{'type':'object',"
     "'properties':{'explanation':{'type':'string'},'output':{'type':'string'}},'required':["
     "'explanation','output'],'additionalProperties':false}},'final_answer':{'type':'string'}},"
     "'required':['steps','final_answer'],'additionalProperties':false}",
     {"{'steps':[{'explanation':'e','output':'o'}],'final_answer':'x = -3.75'}"},
     {"{'steps':[{'explanation':'e'}],'final_answer':'x'}"}},
};

static void test_documents(const fixture *fx) {
    for (size_t i = 0; i < sizeof doc_cases / sizeof doc_cases[0]; i++) {
        const doc_case *dc = &doc_cases[i];
        tu_case("documents/%s", dc->name);
        cons_program *p = compile(fx, dc->schema);
        if (!p) continue;
        for (size_t k = 0; k < 8 && dc->valid[k]; k++) {
            char *d = q(dc->valid[k]);
            TU_CHECK(matches(p, d), "valid document refused: %s", d);
            free(d);
        }
        for (size_t k = 0; k < 12 && dc->invalid[k]; k++) {
            char *d = q(dc->invalid[k]);
            TU_CHECK(!matches(p, d), "invalid document accepted: %s", d);
            free(d);
        }
        cons_program_release(p);
    }
}

/* ---------------------------------------------------- steered generation */

static uint64_t rnd(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Generates one document: at each step a random token the mask allows (ASCII ones without a
 * backslash when there are any, so that the byte-counting validator agrees on string
 * lengths; the end token, when allowed, one time in four). Returns the text (caller frees) or NULL
 * with a failure. */
static char *generate(const fixture *fx, cons_program *p, uint64_t *seed, int64_t budget) {
    chatd_error err = {{0}};
    cons_matcher *m = cons_matcher_new(p, &err);
    TU_CHECK(m != NULL, "cons_matcher_new: %s", err.msg);
    if (!m) return NULL;
    size_t words = cons_mask_words(m);
    uint32_t *mask = calloc(words, sizeof *mask);
    int32_t *ids = calloc(words * 32, sizeof *ids);
    char *out = calloc((size_t)budget * 16 + 1, 1);
    size_t len = 0;
    bool ended = false;
    for (int64_t step = 0; mask && ids && out && step < budget && !ended; step++) {
        memset(mask, 0, words * sizeof *mask);
        int64_t n = cons_allowed(m, budget - step, mask);
        if (n <= 0) {
            TU_CHECK(false, "no token allowed at step %lld after '%s'", (long long)step, out);
            break;
        }
        size_t n_ascii = 0, n_all = 0;
        bool eos = false;
        for (size_t w = 0; w < words; w++)
            for (uint32_t bits = mask[w]; bits; bits &= bits - 1) {
                int32_t id = (int32_t)(w * 32 + (size_t)__builtin_ctz(bits));
                size_t tl = 0;
                const char *t = tok_piece(fx->tok, id, false, &tl);
                if (id == EOS_ID) {
                    eos = true;
                    continue;
                }
                /* no escapes either: "\\ude12" is JSON text cJSON refuses, and escapes
                 * make the validator's byte lengths differ from the grammar's characters */
                bool ascii = t && tl > 0;
                for (size_t k = 0; ascii && k < tl; k++)
                    ascii = (unsigned char)t[k] < 0x80 && t[k] != '\\';
                if (ascii) ids[n_ascii++] = id; /* ascii ones first, the rest after */
                n_all++;
            }
        int32_t pick;
        if (eos && (n_all == 0 || rnd(seed) % 4 == 0)) {
            pick = EOS_ID;
            ended = true;
        } else if (n_ascii) {
            pick = ids[rnd(seed) % n_ascii];
        } else {
            /* only non-ASCII tokens: take any of them */
            size_t k = 0, want = (size_t)(rnd(seed) % n_all);
            pick = -1;
            for (size_t w = 0; w < words && pick < 0; w++)
                for (uint32_t bits = mask[w]; bits && pick < 0; bits &= bits - 1) {
                    int32_t id = (int32_t)(w * 32 + (size_t)__builtin_ctz(bits));
                    if (id != EOS_ID && k++ == want) pick = id;
                }
        }
        TU_CHECK(cons_advance(m, pick) == 0, "allowed token %d refused after '%s'", pick, out);
        if (!ended) {
            size_t tl = 0;
            const char *t = tok_piece(fx->tok, pick, false, &tl);
            memcpy(out + len, t, tl);
            len += tl;
        }
    }
    bool complete = cons_complete(m);
    TU_CHECK(ended || complete, "generation did not end within %lld tokens: '%s'",
             (long long)budget, out ? out : "");
    TU_CHECK(complete, "output incomplete: '%s'", out ? out : "");
    cons_matcher_free(m);
    free(mask);
    free(ids);
    if (!complete) {
        free(out);
        return NULL;
    }
    return out;
}

static const char *const gen_schemas[] = {
    "{'type':'object','properties':{'name':{'type':'string','maxLength':8},'age':{'type':"
    "'integer','minimum':0,'maximum':150},'email':{'type':['string','null']}},'required':["
    "'name','age'],'additionalProperties':false}",
    "{'type':'array','items':{'enum':['a','b',1,null]},'minItems':2,'maxItems':4}",
    "{'anyOf':[{'type':'boolean'},{'type':'object','properties':{'k':{'const':'v'}},"
    "'required':['k'],'additionalProperties':false},{'type':'array','maxItems':2,'items':{"
    "'type':'number'}}]}",
    ("{'$defs':{'P':{'type':'object','properties':{'x':{'type':'integer','minimum':-3,"
     "'maximum':3},'y':{'type':'integer','exclusiveMinimum':0,'exclusiveMaximum':4}},"
     "'required':['x','y'],'additionalProperties':false}},'type':'object','properties':{"
     "'points':{'type':'array','items':{'$ref':'#/$defs/P'},'maxItems':3},'label':{'type':"
     "'string','minLength':1,'maxLength':4}},'required':['points','label'],"
     "'additionalProperties':false}"),
    ("{'type':'object','properties':{'a':{'type':'string'}},'required':['a','b'],"
     "'additionalProperties':{'type':'integer','minimum':0,'maximum':9}}"),
    "{'type':'object','maxProperties':null}",
    "{}",
};

static void test_generation(const fixture *fx) {
    uint64_t seed = 7;
    for (size_t i = 0; i < sizeof gen_schemas / sizeof gen_schemas[0]; i++) {
        /* "maxProperties": null above is refused: it is the refusal path in generation */
        if (strstr(gen_schemas[i], "maxProperties")) {
            tu_case("generation/%zu-refused", i);
            cons_grammar *g;
            api_error err;
            TU_CHECK(build(gen_schemas[i], &g, &err) == -1 && strstr(err.message, "maxProperties"),
                     "maxProperties accepted");
            cons_grammar_free(g);
            continue;
        }
        tu_case("generation/%zu", i);
        cons_program *p = compile(fx, gen_schemas[i]);
        cJSON *schema = qjson(gen_schemas[i]);
        for (int run = 0; p && schema && run < 40; run++) {
            int64_t budget = run % 2 ? 60 : 250; /* a tight budget must still close */
            char *out = generate(fx, p, &seed, budget);
            if (!out) break;
            cJSON *doc = cJSON_Parse(out);
            TU_CHECK(doc != NULL, "output is not JSON: '%s'", out);
            char err[512] = "";
            TU_CHECK(!doc || schema_validate_ex(schema, schema, doc, 0, err, sizeof err) == 0,
                     "output '%s' fails the schema: %s", out, err);
            cJSON_Delete(doc);
            free(out);
        }
        cJSON_Delete(schema);
        cons_program_release(p);
    }
}

/* The shortest completions the budget relies on, at points a schema makes interesting. */
static void test_remaining(const fixture *fx) {
    static const struct {
        const char *schema, *prefix;
        int64_t remaining; /* bytes of the shortest completion */
    } cases[] = {
        /* required keys not yet written: an open key may become one of them */
        {"{'type':'object','properties':{'a':{'type':'string'}},'required':['a','b'],"
         "'additionalProperties':{'type':'integer','minimum':0,'maximum':9}}",
         "{'x':0,'", 12}, /* a':'','b':0} */
        {"{'type':'object','properties':{'a':{'type':'string'}},'required':['a']}", "{", 7},
        {"{'type':'object','properties':{'a':{'type':'string'}},'required':['a']}", "{'a':'", 2},
        {"{'type':'array','items':{'type':'integer'},'minItems':2}", "[", 4}, /* 0,0] */
        {"{'type':'string','minLength':3}", "'", 4},
        {"{'type':'integer','minimum':100}", "", 3},
        {"{'enum':['long value','s']}", "", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_case("remaining/%zu", i);
        cons_program *p = compile(fx, cases[i].schema);
        chatd_error err = {{0}};
        cons_matcher *m = p ? cons_matcher_new(p, &err) : NULL;
        char *prefix = q(cases[i].prefix);
        if (m) {
            TU_CHECK(cons_advance_bytes(m, prefix, strlen(prefix)) == 0, "prefix refused: %s",
                     prefix);
            int64_t r = cons_remaining(m);
            TU_CHECK(r == cases[i].remaining, "after %s: remaining %lld, want %lld", prefix,
                     (long long)r, (long long)cases[i].remaining);
            /* the budget that exactly fits the shortest completion must allow a token */
            uint32_t *mask = calloc(cons_mask_words(m), sizeof *mask);
            TU_CHECK(mask && cons_allowed(m, cases[i].remaining, mask) > 0,
                     "after %s: nothing allowed with a budget of %lld", prefix,
                     (long long)cases[i].remaining);
            free(mask);
        }
        free(prefix);
        cons_matcher_free(m);
        cons_program_release(p);
    }
}

/* The same schema builds into a grammar shared with other nodes (as tool calls do). */
static void test_shared_grammar(const fixture *fx) {
    tu_case("shared-grammar/two-schemas-one-grammar");
    chatd_error cerr = {{0}};
    api_error err;
    cons_grammar *g = cons_grammar_new(&cerr);
    cJSON *a = qjson("{'type':'object','properties':{'x':{'type':'integer'}},'required':['x'],"
                     "'additionalProperties':false}");
    cJSON *b = qjson("{'type':'string','pattern':'x'}");
    cJSON *c = qjson("{'enum':['y']}");
    cons_node na = schema_to_grammar(g, a, "tools[0].function.parameters", &err);
    TU_CHECK(na >= 0, "a refused: %s", err.message);
    TU_CHECK(schema_to_grammar(g, b, "tools[1].function.parameters", &err) == -1 &&
                 strcmp(err.param, "tools[1].function.parameters") == 0 &&
                 strstr(err.message, "Invalid schema for 'tools[1].function.parameters': "
                                     "'pattern' is not supported (at #)."),
             "b: %s", err.message);
    /* a refusal found before building leaves the grammar usable */
    cons_node nc = schema_to_grammar(g, c, "tools[2].function.parameters", &err);
    TU_CHECK(nc >= 0 && cons_grammar_error(g) == NULL, "c refused: %s", err.message);
    cons_node alts[2] = {na, nc};
    cons_node root = cons_any_of(g, alts, 2);
    cons_program *p = root >= 0 ? cons_compile(g, root, fx->cv, &cerr) : NULL;
    TU_CHECK(p != NULL, "compile: %s", cerr.msg);
    if (p) {
        TU_CHECK(matches(p, "{\"x\": 5}") && matches(p, "\"y\"") && !matches(p, "\"x\""),
                 "either schema");
        cons_program_release(p);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
    cons_grammar_free(g);
}

int main(void) {
    test_refusals();
    fixture fx = {0};
    fx.tok = make_vocab();
    chatd_error err = {{0}};
    fx.cv = fx.tok ? cons_vocab_new(fx.tok, &err) : NULL;
    TU_CHECK(fx.cv != NULL, "cons_vocab_new: %s", err.msg);
    if (fx.cv) {
        test_documents(&fx);
        test_remaining(&fx);
        test_generation(&fx);
        test_shared_grammar(&fx);
    }
    cons_vocab_free(fx.cv);
    tok_free(fx.tok);
    return tu_finish();
}
