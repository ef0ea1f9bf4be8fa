/* Generic output of protobuf-c messages, walked by their descriptors, so
 * every message of the API prints the same way with no per-type code:
 * JSON in the proto3 mapping (every field, defaults included, so scripts
 * can rely on keys) and the same tree as block-style YAML. */
#define _GNU_SOURCE
#include "print.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Deeper nesting than this, or a message type inside itself that is
 * unset, prints null instead of recursing forever. */
#define MAX_DEPTH 32

struct out {
	FILE *f;
	bool yaml;
	bool pretty;
	int depth;
	/* types whose defaults are being printed (an unset field) */
	const ProtobufCMessageDescriptor *defaults[MAX_DEPTH];
	int n_defaults;
};

/* ------------------------------------------------------------ UTF-8 */

/* Decodes one code point at s (n bytes left); returns its length, and
 * U+FFFD with length 1 for a byte that does not start a valid sequence. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	size_t len = s[0] < 0x80		   ? 1
		     : s[0] >= 0xc2 && s[0] < 0xe0 ? 2
		     : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
		     : s[0] >= 0xf0 && s[0] < 0xf5 ? 4
						   : 0;
	*cp = 0xfffd;
	if (len == 0 || len > n)
		return 1;
	uint32_t v = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 1;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min[len] || v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
		return 1;
	*cp = v;
	return len;
}

static void put_utf8(FILE *f, uint32_t cp)
{
	if (cp < 0x80) {
		fputc((int)cp, f);
	} else if (cp < 0x800) {
		fputc((int)(0xc0 | (cp >> 6)), f);
		fputc((int)(0x80 | (cp & 0x3f)), f);
	} else if (cp < 0x10000) {
		fputc((int)(0xe0 | (cp >> 12)), f);
		fputc((int)(0x80 | ((cp >> 6) & 0x3f)), f);
		fputc((int)(0x80 | (cp & 0x3f)), f);
	} else {
		fputc((int)(0xf0 | (cp >> 18)), f);
		fputc((int)(0x80 | ((cp >> 12) & 0x3f)), f);
		fputc((int)(0x80 | ((cp >> 6) & 0x3f)), f);
		fputc((int)(0x80 | (cp & 0x3f)), f);
	}
}

/* ------------------------------------------------------------ strings */

static const char *short_escape(uint32_t cp)
{
	switch (cp) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	}
	return NULL;
}

/* YAML's printable set (c-printable), minus the characters YAML treats
 * as line breaks and the byte-order mark, which read back differently. */
static bool yaml_printable(uint32_t cp)
{
	if (cp == 0x85 || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff)
		return false;
	return (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xd7ff) ||
	       (cp >= 0xe000 && cp <= 0xfffd) || cp >= 0x10000;
}

/* JSON strings: quotes, backslash and controls escaped; U+2028/9 too, so
 * the output is also valid JavaScript; other Unicode as UTF-8.  YAML's
 * double-quoted style accepts the same escapes. */
static void put_quoted(struct out *o, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', o->f);
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		i += utf8_next(p + i, n - i, &cp);
		const char *esc = short_escape(cp);
		bool plain = o->yaml ? yaml_printable(cp)
				     : cp >= 0x20 && cp != 0x7f && cp != 0x2028 && cp != 0x2029;
		if (esc)
			fputs(esc, o->f);
		else if (plain)
			put_utf8(o->f, cp);
		else /* a control or line-break character: all below U+10000 */
			fprintf(o->f, "\\u%04" PRIx32, cp);
	}
	fputc('"', o->f);
}

static bool yaml_reserved(const char *s)
{
	static const char *const words[] = {"y",     "n",  "yes", "no",	  "true",
					    "false", "on", "off", "null", NULL};
	for (size_t i = 0; words[i]; i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	return false;
}

/* A plain YAML scalar only when it cannot be read as anything but this
 * string: starts with a letter, '_' or '/', continues with a safe set, no
 * trailing space, not a YAML 1.1 boolean or null. */
static bool yaml_plain_ok(const char *s, size_t n)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789_./@+- ";
	if (n == 0 || strlen(s) != n || yaml_reserved(s))
		return false;
	if (!(s[0] == '_' || s[0] == '/' || (s[0] >= 'a' && s[0] <= 'z') ||
	      (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	if (s[n - 1] == ' ')
		return false;
	return strspn(s, safe) == n;
}

static void put_string(struct out *o, const char *s)
{
	s = s ? s : "";
	size_t n = strlen(s);
	if (o->yaml && yaml_plain_ok(s, n))
		fputs(s, o->f);
	else
		put_quoted(o, s, n);
}

static void put_base64(struct out *o, const ProtobufCBinaryData *b)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	fputc('"', o->f);
	for (size_t i = 0; i < b->len; i += 3) {
		uint32_t v = (uint32_t)b->data[i] << 16;
		size_t left = b->len - i;
		if (left > 1)
			v |= (uint32_t)b->data[i + 1] << 8;
		if (left > 2)
			v |= b->data[i + 2];
		fputc(tab[(v >> 18) & 63], o->f);
		fputc(tab[(v >> 12) & 63], o->f);
		fputc(left > 1 ? tab[(v >> 6) & 63] : '=', o->f);
		fputc(left > 2 ? tab[v & 63] : '=', o->f);
	}
	fputc('"', o->f);
}

/* ------------------------------------------------------------ numbers */

/* The shortest decimal that reads back as the same value. */
static void put_double(struct out *o, double v, bool is_float)
{
	if (isnan(v) || isinf(v)) {
		fputs(isnan(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"", o->f);
		return;
	}
	char buf[40];
	for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (is_float ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
			break;
	}
	fputs(buf, o->f);
}

static void put_enum(struct out *o, const ProtobufCEnumDescriptor *d, int v)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
	if (ev)
		put_string(o, ev->name);
	else
		fprintf(o->f, "%d", v);
}

/* ------------------------------------------------------------ walking */

static void json_message(struct out *o, const ProtobufCMessage *m,
			 const ProtobufCMessageDescriptor *d);
static void yaml_message_value(struct out *o, const ProtobufCMessage *m,
			       const ProtobufCMessageDescriptor *d, bool after_dash);

static size_t elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default:
		return 4;
	}
}

/* An unset message field prints as its type with default values: a fresh
 * instance, or NULL (printed as null) when that type's defaults are
 * already being printed further up (a recursive type) or it is too deep. */
static ProtobufCMessage *defaults_enter(struct out *o, const ProtobufCMessageDescriptor *d)
{
	if (o->depth >= MAX_DEPTH || o->n_defaults >= MAX_DEPTH)
		return NULL;
	for (int i = 0; i < o->n_defaults; i++)
		if (o->defaults[i] == d)
			return NULL;
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	if (m == NULL)
		return NULL;
	d->message_init(m);
	o->defaults[o->n_defaults++] = d;
	return m;
}

static void defaults_leave(struct out *o, ProtobufCMessage *m)
{
	o->n_defaults--;
	free(m);
}

static void put_submessage(struct out *o, const ProtobufCMessage *m,
			   const ProtobufCMessageDescriptor *d)
{
	if (m) {
		json_message(o, m, d);
		return;
	}
	ProtobufCMessage *def = defaults_enter(o, d);
	if (def == NULL) {
		fputs("null", o->f);
		return;
	}
	json_message(o, def, d);
	defaults_leave(o, def);
}

/* One value of field f stored at p. */
static void put_value(struct out *o, const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(o->f, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(o->f, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(o->f, "\"%" PRId64 "\"", *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(o->f, "\"%" PRIu64 "\"", *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		put_double(o, *(const float *)p, true);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		put_double(o, *(const double *)p, false);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)p ? "true" : "false", o->f);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		put_enum(o, f->descriptor, *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING:
		put_string(o, *(char *const *)p ? *(char *const *)p : f->default_value);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		put_base64(o, p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		put_submessage(o, *(ProtobufCMessage *const *)p, f->descriptor);
		break;
	}
}

/* Of a oneof, only the member that is set appears. */
static bool field_shown(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
		return true;
	return *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id;
}

static bool message_empty(const ProtobufCMessage *m, const ProtobufCMessageDescriptor *d)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (field_shown(m, &d->fields[i]))
			return false;
	return true;
}

static size_t repeated_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	return *(const size_t *)((const char *)m + f->quantifier_offset);
}

static const char *repeated_elem(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
				 size_t i)
{
	const char *arr = *(char *const *)((const char *)m + f->offset);
	return arr + i * elem_size(f->type);
}

static void indent(struct out *o)
{
	for (int i = 0; i < o->depth; i++)
		fputs("  ", o->f);
}

static void newline_indent(struct out *o)
{
	if (!o->pretty)
		return;
	fputc('\n', o->f);
	indent(o);
}

static void put_key(struct out *o, const ProtobufCFieldDescriptor *f)
{
	char name[256];
	ctl_json_name(f->name, name, sizeof(name));
	fprintf(o->f, o->yaml ? "%s:" : o->pretty ? "\"%s\": " : "\"%s\":", name);
}

/* ------------------------------------------------------------ JSON */

static void json_repeated(struct out *o, const ProtobufCMessage *m,
			  const ProtobufCFieldDescriptor *f)
{
	size_t n = repeated_count(m, f);
	if (n == 0) {
		fputs("[]", o->f);
		return;
	}
	fputc('[', o->f);
	o->depth++;
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', o->f);
		newline_indent(o);
		put_value(o, f, repeated_elem(m, f, i));
	}
	o->depth--;
	newline_indent(o);
	fputc(']', o->f);
}

static void json_message(struct out *o, const ProtobufCMessage *m,
			 const ProtobufCMessageDescriptor *d)
{
	if (o->depth >= MAX_DEPTH) {
		fputs("null", o->f);
		return;
	}
	if (message_empty(m, d)) {
		fputs("{}", o->f);
		return;
	}
	fputc('{', o->f);
	o->depth++;
	bool first = true;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (!field_shown(m, f))
			continue;
		if (!first)
			fputc(',', o->f);
		first = false;
		newline_indent(o);
		put_key(o, f);
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			json_repeated(o, m, f);
		else
			put_value(o, f, (const char *)m + f->offset);
	}
	o->depth--;
	newline_indent(o);
	fputc('}', o->f);
}

/* ------------------------------------------------------------ YAML
 *
 * Every emitter starts just after "key:" (or "- " when after_dash) and
 * ends with a newline; o->depth is the indentation of the fields of the
 * message being written. */

static void yaml_fields(struct out *o, const ProtobufCMessage *m,
			const ProtobufCMessageDescriptor *d, bool after_dash);

static void yaml_repeated(struct out *o, const ProtobufCMessage *m,
			  const ProtobufCFieldDescriptor *f)
{
	size_t n = repeated_count(m, f);
	if (n == 0) {
		fputs(" []\n", o->f);
		return;
	}
	fputc('\n', o->f);
	o->depth++;
	for (size_t i = 0; i < n; i++) {
		const void *p = repeated_elem(m, f, i);
		indent(o);
		fputs("- ", o->f);
		if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
			put_value(o, f, p);
			fputc('\n', o->f);
			continue;
		}
		/* The item's first key follows "- "; the others align with it. */
		o->depth++;
		yaml_message_value(o, *(ProtobufCMessage *const *)p, f->descriptor, true);
		o->depth--;
	}
	o->depth--;
}

static void yaml_message_value(struct out *o, const ProtobufCMessage *m,
			       const ProtobufCMessageDescriptor *d, bool after_dash)
{
	const char *sp = after_dash ? "" : " ";
	ProtobufCMessage *def = NULL;
	if (m == NULL && (def = defaults_enter(o, d)) == NULL) {
		fprintf(o->f, "%snull\n", sp);
		return;
	}
	if (o->depth >= MAX_DEPTH) {
		fprintf(o->f, "%snull\n", sp);
	} else if (message_empty(m ? m : def, d)) {
		fprintf(o->f, "%s{}\n", sp);
	} else {
		if (!after_dash)
			fputc('\n', o->f);
		yaml_fields(o, m ? m : def, d, after_dash);
	}
	if (def)
		defaults_leave(o, def);
}

static void yaml_field(struct out *o, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	put_key(o, f);
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		yaml_repeated(o, m, f);
		return;
	}
	const void *p = (const char *)m + f->offset;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
		o->depth++;
		yaml_message_value(o, *(ProtobufCMessage *const *)p, f->descriptor, false);
		o->depth--;
		return;
	}
	fputc(' ', o->f);
	put_value(o, f, p);
	fputc('\n', o->f);
}

static void yaml_fields(struct out *o, const ProtobufCMessage *m,
			const ProtobufCMessageDescriptor *d, bool after_dash)
{
	bool first = true;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (!field_shown(m, f))
			continue;
		if (!(first && after_dash))
			indent(o);
		first = false;
		yaml_field(o, m, f);
	}
}

/* ------------------------------------------------------------ entry points */

int ctl_print_json(FILE *f, const ProtobufCMessage *m, bool pretty)
{
	struct out o = {.f = f, .pretty = pretty};
	json_message(&o, m, m->descriptor);
	fputc('\n', f);
	return ferror(f) ? -EIO : 0;
}

int ctl_print_yaml(FILE *f, const ProtobufCMessage *m)
{
	struct out o = {.f = f, .yaml = true};
	if (message_empty(m, m->descriptor))
		fputs("{}\n", f);
	else
		yaml_fields(&o, m, m->descriptor, false);
	return ferror(f) ? -EIO : 0;
}

int ctl_print_message(FILE *f, enum ctl_format fmt, const ProtobufCMessage *m)
{
	if (fmt == CTL_JSON)
		return ctl_print_json(f, m, true);
	if (fmt == CTL_YAML)
		return ctl_print_yaml(f, m);
	return -EINVAL;
}

int ctl_print_stream_item(FILE *f, enum ctl_format fmt, const ProtobufCMessage *m)
{
	if (fmt == CTL_JSON)
		return ctl_print_json(f, m, false);
	if (fmt != CTL_YAML)
		return -EINVAL;
	fputs("---\n", f);
	return ctl_print_yaml(f, m);
}

void ctl_json_name(const char *proto_name, char *buf, size_t len)
{
	size_t j = 0;
	bool upper = false;
	for (const char *s = proto_name; *s && j + 1 < len; s++) {
		if (*s == '_') {
			upper = true;
			continue;
		}
		buf[j++] = upper && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
		upper = false;
	}
	if (len > 0)
		buf[j] = '\0';
}

/* ------------------------------------------------------------ tables */

struct ctl_table {
	size_t ncols, nrows, cap;
	char **cells; /* row-major; row 0 is the header */
};

char *ctl_sanitize_dup(const char *s)
{
	if (s == NULL || *s == '\0')
		s = "-";
	size_t n = strlen(s) + 1;
	char *buf = malloc(n);
	if (buf == NULL)
		abort(); /* out of memory: nothing sensible to do */
	ctl_sanitize(s, buf, n);
	return buf;
}

struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers)
{
	struct ctl_table *t = calloc(1, sizeof(*t));
	if (t == NULL)
		abort();
	t->ncols = ncols;
	ctl_table_add(t, headers);
	return t;
}

void ctl_table_add(struct ctl_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->cells = reallocarray(t->cells, t->cap, t->ncols * sizeof(char *));
		if (t->cells == NULL)
			abort();
	}
	for (size_t c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = ctl_sanitize_dup(cells[c]);
	t->nrows++;
}

/* Terminal columns of a sanitized (valid UTF-8) string: code points. */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

int ctl_table_print(const struct ctl_table *t, FILE *f)
{
	size_t *width = calloc(t->ncols ? t->ncols : 1, sizeof(size_t));
	if (width == NULL)
		return -ENOMEM;
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			size_t w = text_width(t->cells[r * t->ncols + c]);
			width[c] = w > width[c] ? w : width[c];
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			fputs(cell, f);
			if (c + 1 < t->ncols)
				fprintf(f, "%*s", (int)(width[c] - text_width(cell) + 2), "");
		}
		fputc('\n', f);
	}
	free(width);
	return ferror(f) ? -EIO : 0;
}

void ctl_table_free(struct ctl_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void ctl_kv(FILE *f, const char *key, const char *value)
{
	char *v = ctl_sanitize_dup(value);
	fprintf(f, "%s: %s\n", key, v);
	free(v);
}

/* ------------------------------------------------------------ formatters */

void ctl_sanitize(const char *s, char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), j = 0;
	if (len == 0)
		return;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = utf8_next(p + i, n - i, &cp);
		bool bad = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ||
			   (cp == 0xfffd && l == 1);
		size_t out = bad ? 1 : l;
		if (j + out >= len)
			break;
		if (bad)
			buf[j++] = '?';
		else
			memcpy(buf + j, p + i, l), j += l;
		i += l;
	}
	buf[j] = '\0';
}

void ctl_fmt_size(uint64_t v, bool zero_dash, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	if (v == 0 && zero_dash) {
		snprintf(buf, len, "-");
		return;
	}
	int u = 0;
	double d = (double)v;
	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 "B", v);
	else
		snprintf(buf, len, "%.1f%c", d, units[u]);
}

void ctl_fmt_millicpus(uint32_t m, char *buf, size_t len)
{
	if (m == 0) {
		snprintf(buf, len, "-");
		return;
	}
	int n = snprintf(buf, len, "%" PRIu32 ".%03" PRIu32, m / 1000, m % 1000);
	/* strip trailing zeros, then a trailing '.' */
	while (n > 0 && (size_t)n < len && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && (size_t)n < len && buf[n - 1] == '.')
		buf[--n] = '\0';
}

void ctl_fmt_time(int64_t unix_s, char *buf, size_t len)
{
	struct tm tm;
	time_t t = (time_t)unix_s;
	if (unix_s == 0 || localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "-");
}

void ctl_fmt_time_ms(int64_t unix_ms, char *buf, size_t len)
{
	char s[32];
	ctl_fmt_time(unix_ms / 1000, s, sizeof(s));
	snprintf(buf, len, "%s.%03d", s, (int)(unix_ms % 1000 + 1000) % 1000);
}

void ctl_fmt_age(int64_t unix_s, int64_t now, char *buf, size_t len)
{
	if (unix_s == 0) {
		snprintf(buf, len, "-");
		return;
	}
	int64_t d = now > unix_s ? now - unix_s : 0;
	if (d < 120)
		snprintf(buf, len, "%" PRId64 "s", d);
	else if (d < 120 * 60)
		snprintf(buf, len, "%" PRId64 "m", d / 60);
	else if (d < 48 * 3600)
		snprintf(buf, len, "%" PRId64 "h", d / 3600);
	else
		snprintf(buf, len, "%" PRId64 "d", d / 86400);
}

/* "VeState" -> "VE_STATE_" */
static void enum_prefix(const char *short_name, char *buf, size_t len)
{
	size_t j = 0;
	for (const char *s = short_name; *s && j + 2 < len; s++) {
		if (s != short_name && *s >= 'A' && *s <= 'Z')
			buf[j++] = '_';
		if (j + 2 >= len)
			break;
		buf[j++] = (char)(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s);
	}
	buf[j++] = '_';
	buf[j] = '\0';
}

void ctl_fmt_enum(const ProtobufCEnumDescriptor *d, int value, char *buf, size_t len)
{
	const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, value);
	if (ev == NULL) {
		snprintf(buf, len, "%d", value);
		return;
	}
	char prefix[128];
	enum_prefix(d->short_name, prefix, sizeof(prefix));
	const char *name = ev->name;
	if (strncmp(name, prefix, strlen(prefix)) == 0)
		name += strlen(prefix);
	size_t j = 0;
	for (; name[j] && j + 1 < len; j++)
		buf[j] = (char)(name[j] >= 'A' && name[j] <= 'Z' ? name[j] - 'A' + 'a' : name[j]);
	if (len > 0)
		buf[j] = '\0';
}
