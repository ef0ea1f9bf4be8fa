/* hspctl's generic printer: proto3 JSON and YAML of any message, tables. */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsp/v1/hsp.pb-c.h"
#include "print.h"

static char *json_of(const ProtobufCMessage *m, bool pretty)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(ctl_print_json(f, m, pretty), 0);
	fclose(f);
	return buf;
}

static char *yaml_of(const ProtobufCMessage *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(ctl_print_yaml(f, m), 0);
	fclose(f);
	return buf;
}

#define assert_has(hay, needle)                                                                    \
	ck_assert_msg(strstr((hay), (needle)) != NULL, "`%s` not in:\n%s", (needle), (hay))

/* ------------------------------------------------------------ a strict JSON checker */

struct js {
	const char *p;
};

static void ws(struct js *j)
{
	while (*j->p == ' ' || *j->p == '\n' || *j->p == '\t' || *j->p == '\r')
		j->p++;
}

static bool value(struct js *j);

static bool string(struct js *j)
{
	if (*j->p++ != '"')
		return false;
	while (*j->p != '"') {
		unsigned char c = (unsigned char)*j->p++;
		if (c < 0x20)
			return false; /* raw control character */
		if (c != '\\')
			continue;
		c = (unsigned char)*j->p++;
		if (c == 'u') {
			for (int i = 0; i < 4; i++)
				if (!strchr("0123456789abcdefABCDEF", *j->p++))
					return false;
		} else if (!strchr("\"\\/bfnrt", c) || c == 0) {
			return false;
		}
	}
	j->p++;
	return true;
}

static bool number(struct js *j)
{
	char *end;
	if (*j->p != '-' && (*j->p < '0' || *j->p > '9'))
		return false;
	strtod(j->p, &end);
	j->p = end;
	return true;
}

static bool members(struct js *j, char close, bool keys)
{
	j->p++;
	ws(j);
	if (*j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		ws(j);
		if (keys) {
			if (!string(j))
				return false;
			ws(j);
			if (*j->p++ != ':')
				return false;
		}
		if (!value(j))
			return false;
		ws(j);
		if (*j->p == close) {
			j->p++;
			return true;
		}
		if (*j->p++ != ',')
			return false;
	}
}

static bool value(struct js *j)
{
	ws(j);
	switch (*j->p) {
	case '{':
		return members(j, '}', true);
	case '[':
		return members(j, ']', false);
	case '"':
		return string(j);
	case 't':
		return strncmp(j->p, "true", 4) == 0 && (j->p += 4);
	case 'f':
		return strncmp(j->p, "false", 5) == 0 && (j->p += 5);
	case 'n':
		return strncmp(j->p, "null", 4) == 0 && (j->p += 4);
	}
	return number(j);
}

static void assert_valid_json(const char *s)
{
	struct js j = {.p = s};
	ck_assert_msg(value(&j), "invalid JSON near `%.20s` in:\n%s", j.p, s);
	ws(&j);
	ck_assert_msg(*j.p == '\0', "trailing data `%s`", j.p);
}

/* ------------------------------------------------------------ python, when there */

static bool have_python(const char *module)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "python3 -c 'import %s' >/dev/null 2>&1", module);
	return system(cmd) == 0;
}

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/hspctl-print-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* Runs a python3 program with the files as argv[1..]; it must exit 0. */
static void python_check(const char *module, const char *prog, const char *a, const char *b)
{
	if (!have_python(module)) {
		fprintf(stderr, "test_hspctl_print: no python3 %s, check skipped\n", module);
		return;
	}
	char *pa = write_tmp(a), *pb = b ? write_tmp(b) : NULL;
	char *pp = write_tmp(prog);
	char *cmd = NULL;
	ck_assert_int_ge(asprintf(&cmd, "python3 %s %s %s", pp, pa, pb ? pb : ""), 0);
	int r = system(cmd);
	ck_assert_msg(r == 0, "python check failed (%d):\n%s\non:\n%s", r, prog, a);
	unlink(pa);
	unlink(pp);
	if (pb)
		unlink(pb);
	free(pa);
	free(pb);
	free(pp);
	free(cmd);
}

/* ------------------------------------------------------------ fixtures */

static char *keys2[] = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO x@y", "ssh-rsa AAAAB3 z"};

static void make_ve(Hsp__V1__Ve *v, Hsp__V1__Limits *l, const char *name)
{
	hsp__v1__ve__init(v);
	hsp__v1__limits__init(l);
	v->name = (char *)name;
	v->tenant = "acme";
	v->template_ = "debian-12";
	v->state = HSP__V1__VE_STATE__VE_STATE_RUNNING;
	v->created_at = 1700000000;
	v->expires_at = -42;
	l->memory_bytes = 9223372036854775809ULL; /* 2^63 + 1: no double holds it */
	l->cpu_millis = 1500;
	v->limits = l;
}

/* ------------------------------------------------------------ JSON */

START_TEST(json_escapes)
{
	Hsp__V1__Ve v;
	Hsp__V1__Limits l;
	make_ve(&v, &l, "q\"b\\s/\n\t\r\b\f\x01\x1f\x7f é€😀 \xff end");
	v.message = "\xe2\x80\xa8"; /* U+2028 */
	char *s = json_of(&v.base, true);
	assert_valid_json(s);
	assert_has(s, "\"name\": \"q\\\"b\\\\s/\\n\\t\\r\\b\\f\\u0001\\u001f\\u007f é€😀 "
		      "\xef\xbf\xbd end\"");
	assert_has(s, "\"message\": \"\\u2028\"");
	python_check("json",
		     "import json,sys\n"
		     "d=json.load(open(sys.argv[1]))\n"
		     "assert d['name']=='q\"b\\\\s/\\n\\t\\r\\b\\f\\x01\\x1f\\x7f "
		     "\\u00e9\\u20ac\\U0001F600 \\ufffd end', repr(d['name'])\n"
		     "assert d['message']=='\\u2028'\n",
		     s, NULL);
	free(s);
}
END_TEST

START_TEST(json_scalars)
{
	Hsp__V1__Ve v;
	Hsp__V1__Limits l;
	make_ve(&v, &l, "web1");
	char *s = json_of(&v.base, true);
	assert_valid_json(s);
	assert_has(s, "\"state\": \"VE_STATE_RUNNING\"");
	assert_has(s, "\"createdAt\": \"1700000000\"");
	assert_has(s, "\"expiresAt\": \"-42\"");
	assert_has(s, "\"memoryBytes\": \"9223372036854775809\"");
	assert_has(s, "\"cpuMillis\": 1500");
	assert_has(s, "\"template\": \"debian-12\"");
	/* defaults are there too */
	assert_has(s, "\"ip\": \"\"");
	assert_has(s, "\"sshKeys\": []");
	assert_has(s, "\"swapBytes\": \"0\"");
	/* the unset usage message prints as its defaults */
	assert_has(s, "\"usage\": {\n    \"cpuNs\": \"0\"");
	ck_assert_ptr_null(strstr(s, "null"));
	free(s);

	v.state = 99; /* a value this build does not know */
	s = json_of(&v.base, false);
	assert_valid_json(s);
	assert_has(s, "\"state\":99,");
	free(s);
}
END_TEST

START_TEST(json_nested_repeated)
{
	Hsp__V1__Ve a, b;
	Hsp__V1__Limits la, lb;
	make_ve(&a, &la, "a");
	make_ve(&b, &lb, "b");
	b.limits = NULL;
	b.ssh_keys = keys2;
	b.n_ssh_keys = 2;
	Hsp__V1__Ve *ves[] = {&a, &b};
	Hsp__V1__ListVesResponse r = HSP__V1__LIST_VES_RESPONSE__INIT;
	r.ves = ves;
	r.n_ves = 2;
	char *s = json_of(&r.base, true);
	assert_valid_json(s);
	ck_assert_msg(strncmp(s, "{\n  \"ves\": [\n    {\n      \"name\": \"a\",", 36) == 0, "%s",
		      s);
	python_check("json",
		     "import json,sys\n"
		     "d=json.load(open(sys.argv[1]))\n"
		     "a,b=d['ves']\n"
		     "assert a['limits']['memoryBytes']=='9223372036854775809'\n"
		     "assert a['limits']['cpuMillis']==1500\n"
		     "assert b['limits']=={'memoryBytes':'0','swapBytes':'0','cpuMillis':0,"
		     "'cpuWeight':0,'pids':0,'ioWeight':0,'diskBytes':'0'}, b['limits']\n"
		     "assert b['sshKeys'][1]=='ssh-rsa AAAAB3 z'\n"
		     "assert a['sshKeys']==[]\n"
		     "assert set(a)==set(b)\n"
		     "assert a['usage']['diskUsedBytes']=='0'\n",
		     s, NULL);
	free(s);

	Hsp__V1__ListVesResponse empty = HSP__V1__LIST_VES_RESPONSE__INIT;
	s = json_of(&empty.base, true);
	ck_assert_str_eq(s, "{\n  \"ves\": []\n}\n");
	free(s);
	Hsp__V1__Empty e = HSP__V1__EMPTY__INIT;
	s = json_of(&e.base, true);
	ck_assert_str_eq(s, "{}\n");
	free(s);
}
END_TEST

START_TEST(json_bytes_bool_double)
{
	static const struct {
		const char *in;
		size_t len;
		const char *out;
	} cases[] = {
	    {"", 0, "\"\""},
	    {"f", 1, "\"Zg==\""},
	    {"fo", 2, "\"Zm8=\""},
	    {"foo", 3, "\"Zm9v\""},
	    {"hello\0\xff", 7, "\"aGVsbG8A/w==\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		Hsp__V1__ExecOutput o = HSP__V1__EXEC_OUTPUT__INIT;
		o.stream = HSP__V1__EXEC_OUTPUT__STREAM__STREAM_STDERR;
		o.data.data = (uint8_t *)cases[i].in;
		o.data.len = cases[i].len;
		o.exited = true;
		o.exit_code = -1;
		char *s = json_of(&o.base, false), *want = NULL;
		ck_assert_int_ge(
		    asprintf(&want,
			     "{\"stream\":\"STREAM_STDERR\",\"data\":%s,\"exited\":true,"
			     "\"exitCode\":-1}\n",
			     cases[i].out),
		    0);
		ck_assert_str_eq(s, want);
		free(s);
		free(want);
	}

	Hsp__V1__Node n = HSP__V1__NODE__INIT;
	n.load1 = 0.1;
	n.connected = true;
	char *s = json_of(&n.base, true);
	assert_valid_json(s);
	assert_has(s, "\"load1\": 0.1,");
	assert_has(s, "\"connected\": true,");
	assert_has(s, "\"capacity\": {");
	free(s);
	n.load1 = 1.0 / 3;
	s = json_of(&n.base, false);
	assert_has(s, "\"load1\":0.3333333333333333,");
	free(s);
}
END_TEST

START_TEST(json_names)
{
	char buf[64];
	ctl_json_name("disk_used_bytes", buf, sizeof(buf));
	ck_assert_str_eq(buf, "diskUsedBytes");
	ctl_json_name("load1", buf, sizeof(buf));
	ck_assert_str_eq(buf, "load1");
	ctl_json_name("template", buf, sizeof(buf));
	ck_assert_str_eq(buf, "template");
	ctl_json_name("a_b_c", buf, 3);
	ck_assert_str_eq(buf, "aB");
}
END_TEST

START_TEST(json_lines)
{
	Hsp__V1__Event ev = HSP__V1__EVENT__INIT;
	ev.seq = 18446744073709551615ULL;
	ev.kind = "operation";
	ev.message = "line1\nline2";
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(ctl_print_stream_item(f, CTL_JSON, &ev.base), 0);
	ck_assert_int_eq(ctl_print_stream_item(f, CTL_JSON, &ev.base), 0);
	fclose(f);
	char *nl = strchr(buf, '\n');
	ck_assert_ptr_nonnull(nl);
	*nl = '\0';
	assert_valid_json(buf);
	assert_has(buf, "\"seq\":\"18446744073709551615\"");
	ck_assert_str_eq(nl + 1 + strlen(buf), "\n"); /* two equal lines */
	free(buf);
}
END_TEST

/* ------------------------------------------------------------ YAML */

static const char yaml_equals_json[] = "import json,sys,yaml\n"
				       "j=json.load(open(sys.argv[1]))\n"
				       "y=yaml.safe_load(open(sys.argv[2]))\n"
				       "assert j==y, (j,y)\n";

START_TEST(yaml_structure)
{
	Hsp__V1__Ve a, b;
	Hsp__V1__Limits la, lb;
	make_ve(&a, &la, "a");
	make_ve(&b, &lb, "yes");
	b.limits = NULL;
	b.ssh_keys = keys2;
	b.n_ssh_keys = 2;
	b.hostname = "- x: y #z";
	b.ip = "10.0.0.2/24";
	b.message = "tab\there \"q\" \x01 \xc2\x85 é \xff";
	b.pool = "null";
	Hsp__V1__Ve *ves[] = {&a, &b};
	Hsp__V1__ListVesResponse r = HSP__V1__LIST_VES_RESPONSE__INIT;
	r.ves = ves;
	r.n_ves = 2;
	char *y = yaml_of(&r.base);
	assert_has(y, "ves:\n  - name: a\n    tenant: acme\n");
	assert_has(y, "    state: VE_STATE_RUNNING\n");
	assert_has(y, "    limits:\n      memoryBytes: \"9223372036854775809\"\n"
		      "      swapBytes: \"0\"\n      cpuMillis: 1500\n");
	assert_has(y, "    sshKeys: []\n");
	assert_has(y, "  - name: \"yes\"\n");
	assert_has(y, "    sshKeys:\n      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO x@y\n"
		      "      - ssh-rsa AAAAB3 z\n");
	assert_has(y, "    hostname: \"- x: y #z\"\n");
	assert_has(y, "    pool: \"null\"\n");
	assert_has(y, "    ip: \"\"\n"); /* a's */
	assert_has(y, "    message: \"tab\\there \\\"q\\\" \\u0001 \\u0085 é \xef\xbf\xbd\"\n");
	char *j = json_of(&r.base, true);
	python_check("yaml", yaml_equals_json, j, y);
	free(j);
	free(y);

	Hsp__V1__Empty e = HSP__V1__EMPTY__INIT;
	y = yaml_of(&e.base);
	ck_assert_str_eq(y, "{}\n");
	free(y);
	Hsp__V1__ListVesResponse empty = HSP__V1__LIST_VES_RESPONSE__INIT;
	y = yaml_of(&empty.base);
	ck_assert_str_eq(y, "ves: []\n");
	free(y);
}
END_TEST

START_TEST(yaml_scalars)
{
	Hsp__V1__Node n = HSP__V1__NODE__INIT;
	n.name = "n1";
	n.address = "192.168.1.5";
	n.agent_version = "1.0";
	n.load1 = 0.25;
	n.connected = true;
	char *caps[] = {"criu", "on", "~", "", "123", "a: b", "x\ny"};
	n.capabilities = caps;
	n.n_capabilities = sizeof(caps) / sizeof(caps[0]);
	char *y = yaml_of(&n.base);
	assert_has(y, "name: n1\n");
	assert_has(y, "state: NODE_STATE_UNSPECIFIED\n");
	assert_has(y, "address: \"192.168.1.5\"\n");
	assert_has(y, "capacity:\n  cpus: 0\n  memoryBytes: \"0\"\n");
	assert_has(y, "connected: true\n");
	assert_has(y, "load1: 0.25\n");
	assert_has(y, "  - criu\n  - \"on\"\n  - \"~\"\n  - \"\"\n  - \"123\"\n  - \"a: b\"\n"
		      "  - \"x\\ny\"\n");
	char *j = json_of(&n.base, false);
	python_check("yaml", yaml_equals_json, j, y);
	free(j);
	free(y);

	Hsp__V1__Event ev = HSP__V1__EVENT__INIT;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(ctl_print_stream_item(f, CTL_YAML, &ev.base), 0);
	fclose(f);
	ck_assert_msg(strncmp(buf, "---\nseq: \"0\"\n", 13) == 0, "%s", buf);
	free(buf);
}
END_TEST

/* ------------------------------------------------------------ tables, formatters */

START_TEST(table_aligned)
{
	static const char *const head[] = {"NAME", "STATE", "NOTE"};
	struct ctl_table *t = ctl_table_new(3, head);
	const char *r1[] = {"web-long-name", "running", "x"};
	const char *r2[] = {"é", "", "bad\x1b[31m\ttext"};
	ctl_table_add(t, r1);
	ctl_table_add(t, r2);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ck_assert_int_eq(ctl_table_print(t, f), 0);
	fclose(f);
	ctl_table_free(t);
	ck_assert_str_eq(buf, "NAME           STATE    NOTE\n"
			      "web-long-name  running  x\n"
			      "é              -        bad?[31m?text\n");
	free(buf);
}
END_TEST

START_TEST(formatters)
{
	char buf[64];
	ctl_fmt_size(0, true, buf, sizeof(buf));
	ck_assert_str_eq(buf, "-");
	ctl_fmt_size(512, true, buf, sizeof(buf));
	ck_assert_str_eq(buf, "512B");
	ctl_fmt_size(3ULL << 29, true, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1.5G");
	ctl_fmt_millicpus(1500, buf, sizeof(buf));
	ck_assert_str_eq(buf, "1.5");
	ctl_fmt_millicpus(2000, buf, sizeof(buf));
	ck_assert_str_eq(buf, "2");
	ctl_fmt_millicpus(250, buf, sizeof(buf));
	ck_assert_str_eq(buf, "0.25");
	ctl_fmt_millicpus(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "-");
	ctl_fmt_enum(&hsp__v1__ve_state__descriptor, HSP__V1__VE_STATE__VE_STATE_RUNNING, buf,
		     sizeof(buf));
	ck_assert_str_eq(buf, "running");
	ctl_fmt_enum(&hsp__v1__node_state__descriptor, HSP__V1__NODE_STATE__NODE_STATE_SUSPECT, buf,
		     sizeof(buf));
	ck_assert_str_eq(buf, "suspect");
	ctl_fmt_enum(&hsp__v1__exec_output__stream__descriptor,
		     HSP__V1__EXEC_OUTPUT__STREAM__STREAM_STDOUT, buf, sizeof(buf));
	ck_assert_str_eq(buf, "stdout");
	ctl_fmt_enum(&hsp__v1__ve_state__descriptor, 77, buf, sizeof(buf));
	ck_assert_str_eq(buf, "77");
	ctl_fmt_age(1000, 1090, buf, sizeof(buf));
	ck_assert_str_eq(buf, "90s");
	ctl_fmt_age(1000, 1000 + 3 * 3600, buf, sizeof(buf));
	ck_assert_str_eq(buf, "3h");
	ctl_fmt_age(0, 5, buf, sizeof(buf));
	ck_assert_str_eq(buf, "-");
	ctl_sanitize("ab\ncd\xc2\x9b\xe2\x82", buf, sizeof(buf));
	ck_assert_str_eq(buf, "ab?cd???");
	ctl_sanitize("日本語", buf, 5); /* whole characters only */
	ck_assert_str_eq(buf, "日");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("hspctl_print");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, json_escapes);
	tcase_add_test(tc, json_scalars);
	tcase_add_test(tc, json_nested_repeated);
	tcase_add_test(tc, json_bytes_bool_double);
	tcase_add_test(tc, json_names);
	tcase_add_test(tc, json_lines);
	tcase_add_test(tc, yaml_structure);
	tcase_add_test(tc, yaml_scalars);
	tcase_add_test(tc, table_aligned);
	tcase_add_test(tc, formatters);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
