/* tpl_json.c - turning template values into text the way Python does: str() and repr()
 * (what {{ x }} prints: True, None, 1.0, ['a', 1]) and json.dumps (the tojson filter as
 * Hugging Face defines it: ensure_ascii, indent, separators, sort_keys). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpl_internal.h"

/* Python's repr of a float: the shortest digits that read back to the same double, in
 * fixed notation for exponents -4 < e < 16 and scientific notation otherwise. */
void tv_format_float(double d, char *buf) {
    if (isnan(d)) {
        strcpy(buf, "nan");
        return;
    }
    if (isinf(d)) {
        strcpy(buf, d < 0 ? "-inf" : "inf");
        return;
    }
    if (d == 0) {
        strcpy(buf, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    char tmp[48];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    char dig[24] = {0};
    int nd = 0;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e' && *p != 'E'; p++)
        if (*p >= '0' && *p <= '9' && nd < 20) dig[nd++] = *p;
    int exp = *p ? atoi(p + 1) : 0;
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    int decpt = exp + 1;
    char *o = buf;
    if (neg) *o++ = '-';
    if (decpt > 16 || decpt < -3) {
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    if (decpt <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -decpt; i++) *o++ = '0';
        memcpy(o, dig, (size_t)nd);
        o += nd;
    } else if (decpt >= nd) {
        memcpy(o, dig, (size_t)nd);
        o += nd;
        for (int i = nd; i < decpt; i++) *o++ = '0';
        *o++ = '.';
        *o++ = '0';
    } else {
        memcpy(o, dig, (size_t)decpt);
        o += decpt;
        *o++ = '.';
        memcpy(o, dig + decpt, (size_t)(nd - decpt));
        o += nd - decpt;
    }
    *o = 0;
}

static int put_scalar(tpl_ev *e, tpl_sb *b, const tpl_value *v, int origin) {
    char num[48];
    switch (v->kind) {
    case TPL_NONE:
        return sb_puts(b, "None", origin);
    case TPL_BOOL:
        return sb_puts(b, v->u.b ? "True" : "False", origin);
    case TPL_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->u.i);
        return sb_puts(b, num, origin);
    case TPL_FLOAT:
        tv_format_float(v->u.f, num);
        return sb_puts(b, num, origin);
    default:
        return ev_error(e, "internal: not a scalar");
    }
}

int ev_write_str(tpl_ev *e, tpl_sb *b, const tpl_value *v) {
    int rc;
    switch (v->kind) {
    case TPL_UNDEFINED:
        return 0;
    case TPL_STRING:
        rc = sb_put_str(b, v);
        break;
    case TPL_NONE:
    case TPL_BOOL:
    case TPL_INT:
    case TPL_FLOAT:
        rc = put_scalar(e, b, v, TPL_ORIGIN_TEMPLATE);
        break;
    default: {
        int o = tv_origin_of(v, 0);
        if (o < 0) return ev_error(e, "value nested too deeply to print");
        return ev_write_repr(e, b, v, o == TPL_ORIGIN_TEMPLATE ? 0 : 1, 0);
    }
    }
    return rc ? ev_sb_error(e, b) : 0;
}

tpl_value *ev_to_str(tpl_ev *e, const tpl_value *v) {
    if (v->kind == TPL_STRING) return tv_ref((tpl_value *)v);
    tpl_sb b;
    sb_init(&b, e->max_str);
    if (ev_write_str(e, &b, v) != 0) {
        sb_free(&b);
        return NULL;
    }
    tpl_value *s = sb_finish(&b);
    if (!s) {
        sb_free(&b);
        ev_oom(e);
    }
    return s;
}

/* Python's str.isprintable for the characters repr() must escape beyond ASCII. */
static bool cp_printable(uint32_t c) {
    if (c < 0xA0) return false;
    if (c >= 0xDC80 && c <= 0xDCFF) return false;
    if (c == 0xA0 || c == 0xAD || c == 0x1680 || c == 0x061C || c == 0x180E || c == 0xFEFF ||
        c == 0x06DD || c == 0x070F || (c >= 0x0600 && c <= 0x0605))
        return false;
    if ((c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
        (c >= 0x205F && c <= 0x2064) || (c >= 0x2066 && c <= 0x206F) || c == 0x3000)
        return false;
    if ((c >= 0xD800 && c <= 0xF8FF) || (c >= 0xFFF9 && c <= 0xFFFB) || c >= 0xF0000) return false;
    return true;
}

static int repr_string(tpl_sb *b, const tpl_value *v, int origin) {
    const char *s = v->u.str.s;
    size_t n = v->u.str.len;
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    if (sb_putc(b, q, origin)) return -1;
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t c = u8_get((const unsigned char *)s, n, i, &l);
        char esc[16];
        const char *out = NULL;
        if (c == (uint32_t)q || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            esc[2] = 0;
            out = esc;
        } else if (c == '\n')
            out = "\\n";
        else if (c == '\r')
            out = "\\r";
        else if (c == '\t')
            out = "\\t";
        else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            out = esc;
        } else if (c >= 0x80 && !cp_printable(c)) {
            if (c >= 0xDC80 && c <= 0xDCFF)
                snprintf(esc, sizeof esc, "\\udc%02x", c & 0xFF);
            else if (c <= 0xFF)
                snprintf(esc, sizeof esc, "\\x%02x", c);
            else if (c <= 0xFFFF)
                snprintf(esc, sizeof esc, "\\u%04x", c);
            else
                snprintf(esc, sizeof esc, "\\U%08x", c);
            out = esc;
        }
        if (out ? sb_puts(b, out, origin) : sb_put(b, s + i, l, origin)) return -1;
        i += l;
    }
    return sb_putc(b, q, origin);
}

int ev_write_repr(tpl_ev *e, tpl_sb *b, const tpl_value *v, int origin, int depth) {
    if (depth > TPL_VALUE_DEPTH) return ev_error(e, "value nested too deeply to print");
    if (ev_charge(e, 1)) return -1;
    int rc = 0;
    switch (v->kind) {
    case TPL_UNDEFINED:
        rc = sb_puts(b, "Undefined", origin);
        break;
    case TPL_NONE:
    case TPL_BOOL:
    case TPL_INT:
    case TPL_FLOAT:
        return put_scalar(e, b, v, origin) ? ev_sb_error(e, b) : 0;
    case TPL_STRING:
        rc = repr_string(b, v, origin);
        break;
    case TPL_LIST:
        rc = sb_putc(b, v->tuple ? '(' : '[', origin);
        for (size_t i = 0; !rc && i < v->u.list.n; i++) {
            if (i) rc = sb_puts(b, ", ", origin);
            if (!rc && ev_write_repr(e, b, v->u.list.items[i], origin, depth + 1)) return -1;
        }
        if (!rc && v->tuple && v->u.list.n == 1) rc = sb_putc(b, ',', origin);
        if (!rc) rc = sb_putc(b, v->tuple ? ')' : ']', origin);
        break;
    case TPL_DICT:
    case TPL_NAMESPACE:
        if (v->kind == TPL_NAMESPACE) rc = sb_puts(b, "<Namespace ", origin);
        if (!rc) rc = sb_putc(b, '{', origin);
        for (size_t i = 0; !rc && i < v->u.dict.n; i++) {
            if (i) rc = sb_puts(b, ", ", origin);
            if (!rc && ev_write_repr(e, b, v->u.dict.keys[i], origin, depth + 1)) return -1;
            if (!rc) rc = sb_puts(b, ": ", origin);
            if (!rc && ev_write_repr(e, b, v->u.dict.vals[i], origin, depth + 1)) return -1;
        }
        if (!rc) rc = sb_putc(b, '}', origin);
        if (!rc && v->kind == TPL_NAMESPACE) rc = sb_putc(b, '>', origin);
        break;
    case TPL_MACRO: {
        const char *name = v->u.macro.is_caller ? "caller" : v->u.macro.node->name;
        rc = sb_puts(b, "<Macro '", origin);
        if (!rc) rc = sb_puts(b, name ? name : "", origin);
        if (!rc) rc = sb_puts(b, "'>", origin);
        break;
    }
    case TPL_LOOP: {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "<LoopContext %zu/%zu>", v->u.loop.idx + 1,
                 v->u.loop.items->u.list.n);
        rc = sb_puts(b, tmp, origin);
        break;
    }
    default:
        rc = sb_puts(b, "<built-in function>", origin);
        break;
    }
    return rc ? ev_sb_error(e, b) : 0;
}

/* ---- json.dumps ---- */

static int json_string(tpl_sb *b, const char *s, size_t n, bool ascii, int origin) {
    if (sb_putc(b, '"', origin)) return -1;
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char esc[16];
        const char *out = NULL;
        size_t l = 1;
        if (c == '"')
            out = "\\\"";
        else if (c == '\\')
            out = "\\\\";
        else if (c == '\n')
            out = "\\n";
        else if (c == '\r')
            out = "\\r";
        else if (c == '\t')
            out = "\\t";
        else if (c == '\b')
            out = "\\b";
        else if (c == '\f')
            out = "\\f";
        else if (c < 0x20 || (ascii && c == 0x7F)) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            out = esc;
        } else if (ascii && c >= 0x80) {
            uint32_t cp = u8_get((const unsigned char *)s, n, i, &l);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                         0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            }
            out = esc;
        }
        if (out) {
            if (sb_put(b, s + run, i - run, origin) || sb_puts(b, out, origin)) return -1;
            run = i + l;
        }
        i += l;
    }
    if (sb_put(b, s + run, n - run, origin)) return -1;
    return sb_putc(b, '"', origin);
}

static int json_newline(tpl_sb *b, const tpl_json_opts *o, size_t level, int origin) {
    if (sb_putc(b, '\n', origin)) return -1;
    for (size_t i = 0; i < level; i++)
        if (sb_put(b, o->indent, o->indent_len, origin)) return -1;
    return 0;
}

/* A dict key as json.dumps converts it: str as is, numbers, bools and None as text. */
static int json_key(tpl_ev *e, tpl_sb *b, const tpl_value *k, const tpl_json_opts *o, int origin) {
    char num[48];
    switch (k->kind) {
    case TPL_STRING:
        return json_string(b, k->u.str.s, k->u.str.len, o->ensure_ascii, origin);
    case TPL_NONE:
        return json_string(b, "null", 4, false, origin);
    case TPL_BOOL:
        return json_string(b, k->u.b ? "true" : "false", k->u.b ? 4 : 5, false, origin);
    case TPL_INT:
        snprintf(num, sizeof num, "%lld", (long long)k->u.i);
        return json_string(b, num, strlen(num), false, origin);
    case TPL_FLOAT:
        if (isnan(k->u.f))
            strcpy(num, "NaN");
        else if (isinf(k->u.f))
            strcpy(num, k->u.f < 0 ? "-Infinity" : "Infinity");
        else
            tv_format_float(k->u.f, num);
        return json_string(b, num, strlen(num), false, origin);
    default:
        ev_error(e, "TypeError: keys must be str, int, float, bool or None, not %s",
                 tv_type_name(k));
        return -2;
    }
}

static int key_cmp(void *ctx, const void *x, const void *y, int *out) {
    const tpl_value *d = ctx;
    size_t i = (size_t)(uintptr_t) * (void *const *)x, j = (size_t)(uintptr_t) * (void *const *)y;
    return tv_compare(d->u.dict.keys[i], d->u.dict.keys[j], out, 0);
}

int ev_write_json(tpl_ev *e, tpl_sb *b, const tpl_value *v, const tpl_json_opts *o, int origin,
                  size_t level, int depth) {
    if (depth > TPL_VALUE_DEPTH)
        return ev_error(e, "ValueError: value nested too deeply for tojson");
    if (ev_charge(e, 1)) return -1;
    char num[48];
    int rc = 0;
    switch (v->kind) {
    case TPL_NONE:
        rc = sb_puts(b, "null", origin);
        break;
    case TPL_BOOL:
        rc = sb_puts(b, v->u.b ? "true" : "false", origin);
        break;
    case TPL_INT:
        snprintf(num, sizeof num, "%lld", (long long)v->u.i);
        rc = sb_puts(b, num, origin);
        break;
    case TPL_FLOAT:
        if (isnan(v->u.f))
            strcpy(num, "NaN");
        else if (isinf(v->u.f))
            strcpy(num, v->u.f < 0 ? "-Infinity" : "Infinity");
        else
            tv_format_float(v->u.f, num);
        rc = sb_puts(b, num, origin);
        break;
    case TPL_STRING:
        rc = json_string(b, v->u.str.s, v->u.str.len, o->ensure_ascii, origin);
        break;
    case TPL_LIST:
        if (!v->u.list.n) {
            rc = sb_puts(b, "[]", origin);
            break;
        }
        rc = sb_putc(b, '[', origin);
        for (size_t i = 0; !rc && i < v->u.list.n; i++) {
            if (i) rc = sb_put(b, o->item_sep, o->item_sep_len, origin);
            if (!rc && o->has_indent) rc = json_newline(b, o, level + 1, origin);
            if (!rc && ev_write_json(e, b, v->u.list.items[i], o, origin, level + 1, depth + 1))
                return -1;
        }
        if (!rc && o->has_indent) rc = json_newline(b, o, level, origin);
        if (!rc) rc = sb_putc(b, ']', origin);
        break;
    case TPL_DICT: {
        if (!v->u.dict.n) {
            rc = sb_puts(b, "{}", origin);
            break;
        }
        size_t n = v->u.dict.n;
        void **order = malloc(n * sizeof *order);
        if (!order) return ev_oom(e);
        for (size_t i = 0; i < n; i++) order[i] = (void *)(uintptr_t)i;
        if (o->sort_keys && tpl_msort(order, n, key_cmp, (void *)v) != 0) {
            free(order);
            return ev_error(e, "TypeError: '<' not supported between dict keys of different types");
        }
        rc = sb_putc(b, '{', origin);
        for (size_t i = 0; !rc && i < n; i++) {
            size_t j = (size_t)(uintptr_t)order[i];
            if (i) rc = sb_put(b, o->item_sep, o->item_sep_len, origin);
            if (!rc && o->has_indent) rc = json_newline(b, o, level + 1, origin);
            if (!rc) {
                int kr = json_key(e, b, v->u.dict.keys[j], o, origin);
                if (kr == -2) {
                    free(order);
                    return -1;
                }
                rc = kr;
            }
            if (!rc) rc = sb_put(b, o->key_sep, o->key_sep_len, origin);
            if (!rc && ev_write_json(e, b, v->u.dict.vals[j], o, origin, level + 1, depth + 1)) {
                free(order);
                return -1;
            }
        }
        free(order);
        if (!rc && o->has_indent) rc = json_newline(b, o, level, origin);
        if (!rc) rc = sb_putc(b, '}', origin);
        break;
    }
    default:
        return ev_error(e, "TypeError: Object of type %s is not JSON serializable",
                        tv_type_name(v));
    }
    return rc ? ev_sb_error(e, b) : 0;
}
