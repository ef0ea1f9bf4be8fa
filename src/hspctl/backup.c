/* backup: the Backups service. */
#define _GNU_SOURCE
#include "hspctl.h"
#include "utils.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKUPS "/hsp.v1.Backups/"

static void backup_list_table(const ProtobufCMessage *m)
{
	static const char *const head[] = {"ID", "VE", "STATE", "SIZE", "CREATED", "NODE", "POOL"};
	const Hsp__V1__ListBackupsResponse *r = (const Hsp__V1__ListBackupsResponse *)m;
	struct ctl_table *t = ctl_table_new(7, head);
	for (size_t i = 0; i < r->n_backups; i++) {
		const Hsp__V1__Backup *b = r->backups[i];
		char state[32], size[32], when[64];
		ctl_fmt_enum(&hsp__v1__backup_state__descriptor, b->state, state, sizeof(state));
		ctl_fmt_size(b->size_bytes, true, size, sizeof(size));
		ctl_fmt_time(b->created_at, when, sizeof(when));
		const char *row[] = {b->id, b->ve, state, size, when, b->node, b->pool};
		ctl_table_add(t, row);
	}
	ctl_table_print(t, stdout);
	ctl_table_free(t);
}

static void backup_show_table(const ProtobufCMessage *m)
{
	const Hsp__V1__Backup *b = (const Hsp__V1__Backup *)m;
	char buf[64];
	ctl_kv(stdout, "id", b->id);
	ctl_kv(stdout, "ve", b->ve);
	ctl_kv(stdout, "tenant", b->tenant);
	ctl_fmt_enum(&hsp__v1__backup_state__descriptor, b->state, buf, sizeof(buf));
	ctl_kv(stdout, "state", buf);
	ctl_fmt_size(b->size_bytes, true, buf, sizeof(buf));
	ctl_kv(stdout, "size", buf);
	ctl_fmt_time(b->created_at, buf, sizeof(buf));
	ctl_kv(stdout, "created", buf);
	ctl_kv(stdout, "node", b->node);
	ctl_kv(stdout, "pool", b->pool);
	ctl_kv(stdout, "template", b->template_);
	ctl_kv(stdout, "hostname", b->hostname);
	ctl_kv(stdout, "network", b->network ? "yes (a restore gets a new address)" : "no");
	ctl_kv(stdout, "operation", b->operation);
	ctl_kv(stdout, "message", b->message);
}

static int backup_create(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"id", required_argument, NULL, 'i'},
	    {"wait", no_argument, NULL, 'w'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	Hsp__V1__CreateBackupRequest req = HSP__V1__CREATE_BACKUP_REQUEST__INIT;
	bool wait = false;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "backup", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'i')
			req.backup = optarg;
		else
			wait = true;
	}
	rc = ctl_args(argc, 1, 1, "backup", "create", "expected exactly one VE name");
	if (rc)
		return rc;
	req.name = argv[optind];
	cleanup_free char *what = hsp_strdup_printf("backup create %s", req.name);
	return ctl_operation_call(g, what, BACKUPS "Create", &req.base, wait);
}

static int backup_list(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"ve", required_argument, NULL, 'v'},
	    {"tenant", required_argument, NULL, 't'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	Hsp__V1__ListBackupsRequest req = HSP__V1__LIST_BACKUPS_REQUEST__INIT;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "backup", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'v')
			req.ve = optarg;
		else
			req.tenant = optarg;
	}
	rc = ctl_args(argc, 0, 0, "backup", "list", "takes no arguments");
	if (rc)
		return rc;
	return ctl_query(g, "backup list", BACKUPS "List", &req.base,
			 &hsp__v1__list_backups_response__descriptor, backup_list_table);
}

/* show, delete: ID [--wait (delete)].  *id NULL when the verb must return
 * the exit code now. */
static int backup_one(struct ctl *g, int argc, char **argv, const char *verb, bool *wait,
		      const char **id)
{
	static const struct option opts[] = {
	    {"wait", no_argument, NULL, 'w'}, CTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
	int c, rc = 0;
	*id = NULL;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "backup", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (wait == NULL)
			return ctl_usage("backup", "backup %s: takes no --wait", verb);
		*wait = true;
	}
	rc = ctl_args(argc, 1, 1, "backup", verb, "expected exactly one backup id");
	*id = rc ? NULL : argv[optind];
	return rc;
}

static int backup_show(struct ctl *g, int argc, char **argv)
{
	Hsp__V1__BackupRef ref = HSP__V1__BACKUP_REF__INIT;
	const char *id = NULL;
	int rc = backup_one(g, argc, argv, "show", NULL, &id);
	if (id == NULL)
		return rc;
	ref.id = (char *)id;
	cleanup_free char *what = hsp_strdup_printf("backup show %s", ref.id);
	return ctl_query(g, what, BACKUPS "Get", &ref.base, &hsp__v1__backup__descriptor,
			 backup_show_table);
}

static int backup_delete(struct ctl *g, int argc, char **argv)
{
	Hsp__V1__BackupRef ref = HSP__V1__BACKUP_REF__INIT;
	bool wait = false;
	const char *id = NULL;
	int rc = backup_one(g, argc, argv, "delete", &wait, &id);
	if (id == NULL)
		return rc;
	ref.id = (char *)id;
	cleanup_free char *what = hsp_strdup_printf("backup delete %s", ref.id);
	return ctl_operation_call(g, what, BACKUPS "Delete", &ref.base, wait);
}

static int backup_restore(struct ctl *g, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"node", required_argument, NULL, 'N'},
	    {"start", no_argument, NULL, 's'},
	    {"wait", no_argument, NULL, 'w'},
	    CTL_COMMON_OPTIONS,
	    {NULL, 0, NULL, 0},
	};
	Hsp__V1__RestoreBackupRequest req = HSP__V1__RESTORE_BACKUP_REQUEST__INIT;
	bool wait = false;
	int c, rc = 0;
	while ((c = ctl_getopt(g, argc, argv, CTL_COMMON_SHORT, opts, "backup", &rc)) != -1) {
		if (c == -2)
			return rc;
		if (c == 'n')
			req.name = optarg;
		else if (c == 'N')
			req.node = optarg;
		else if (c == 's')
			req.start = true;
		else
			wait = true;
	}
	rc = ctl_args(argc, 1, 1, "backup", "restore", "expected exactly one backup id");
	if (rc)
		return rc;
	req.backup = argv[optind];
	cleanup_free char *what = hsp_strdup_printf("backup restore %s", req.backup);
	return ctl_operation_call(g, what, BACKUPS "Restore", &req.base, wait);
}

int cmd_backup(struct ctl *g, int argc, char **argv)
{
	static const struct ctl_subverb v[] = {
	    {"create", backup_create},	 {"list", backup_list},	    {"show", backup_show},
	    {"restore", backup_restore}, {"delete", backup_delete},
	};
	return ctl_dispatch(g, "backup", v, sizeof(v) / sizeof(v[0]), argc, argv);
}
