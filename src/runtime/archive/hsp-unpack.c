/* hsp-unpack: the template work that needs libarchive, for the runtime.
 *
 *   hsp-unpack populate --name WHAT --source SRC --dest DIR --shift N
 *   hsp-unpack import --root DIR --name NAME --source SRC [--os OS]
 *                     [--version V] [--stop-signal SIG] -- INIT...
 *   hsp-unpack pack --source DIR --meta FILE --config FILE   (a backup, to stdout)
 *   hsp-unpack unbackup --dest DIR --meta-dir DIR            (a backup, from stdin)
 *
 * Exits 0, or 1 with "<errno>\t<message>" on stderr. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errpipe.h"
#include "template-internal.h"
#include "utils.h"

static int fail(hsp_error_t *err)
{
	hsp_errpipe_write(2, (*err)->status, "%s", (*err)->msg);
	hsp_error_release(err);
	return 1;
}

static int usage(void)
{
	hsp_errpipe_write(2, EINVAL, "hsp-unpack: usage: populate|import|pack|unbackup ...");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"source", required_argument, NULL, 's'},
	    {"dest", required_argument, NULL, 'd'},
	    {"shift", required_argument, NULL, 'S'},
	    {"root", required_argument, NULL, 'r'},
	    {"os", required_argument, NULL, 'o'},
	    {"version", required_argument, NULL, 'v'},
	    {"stop-signal", required_argument, NULL, 'k'},
	    {"meta", required_argument, NULL, 'm'},
	    {"config", required_argument, NULL, 'c'},
	    {"meta-dir", required_argument, NULL, 'M'},
	    {NULL, 0, NULL, 0},
	};
	if (argc < 2)
		return usage();
	const char *verb = argv[1];
	const char *name = NULL, *source = NULL, *dest = NULL, *root = NULL, *os = NULL;
	const char *version = NULL, *sig = NULL, *meta = NULL, *config = NULL, *meta_dir = NULL;
	uint64_t shift = 0;
	hsp_error_t err = NULL;
	int c;
	opterr = 0;
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 's':
			source = optarg;
			break;
		case 'd':
			dest = optarg;
			break;
		case 'S':
			if (hsp_parse_u64(optarg, 0, UINT32_MAX, &shift, "id shift", &err) < 0)
				return fail(&err);
			break;
		case 'r':
			root = optarg;
			break;
		case 'o':
			os = optarg;
			break;
		case 'v':
			version = optarg;
			break;
		case 'k':
			sig = optarg;
			break;
		case 'm':
			meta = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'M':
			meta_dir = optarg;
			break;
		default:
			return usage();
		}
	}
	if (strcmp(verb, "populate") == 0 && name && source && dest) {
		struct hsp_template t = {.name = (char *)name, .source = (char *)source};
		return hsp_archive_populate(&t, dest, (uid_t)shift, &err) < 0 ? fail(&err) : 0;
	}
	if (strcmp(verb, "import") == 0 && root && name && source) {
		char *const *init = optind < argc ? argv + optind : NULL;
		return hsp_archive_import(root, name, source, os, version, init, sig, &err) < 0
			   ? fail(&err)
			   : 0;
	}
	if (strcmp(verb, "pack") == 0 && source && meta && config)
		return hsp_archive_pack_backup(source, meta, config, 1, &err) < 0 ? fail(&err) : 0;
	if (strcmp(verb, "unbackup") == 0 && dest && meta_dir)
		return hsp_archive_unbackup(0, meta_dir, dest, &err) < 0 ? fail(&err) : 0;
	return usage();
}
