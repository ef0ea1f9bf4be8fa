#define _GNU_SOURCE
#include "cli.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static void print_limit(const char *k, bool set, uint64_t v, bool size)
{
	char buf[32];
	if (!set)
		snprintf(buf, sizeof(buf), "-");
	else if (v == 0)
		snprintf(buf, sizeof(buf), "unlimited");
	else if (size)
		cli_format_size(v, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "%" PRIu64, v);
	printf("  %-11s %s\n", k, buf);
}

static void print_human(const struct hsp_ve_info *i)
{
	const struct hsp_limits *l = &i->limits;
	printf("name:       %s\n", i->name);
	printf("status:     %s%s\n", hsp_ve_status_name(i->status),
	       i->rescue ? " (rescue mode: the VE's own root is at /repair)" : "");
	printf("hostname:   %s\n", i->hostname ? i->hostname : "");
	printf("template:   %s\n", i->template ? i->template : "");
	printf("init pid:   %d\n", i->init_pid);
	printf("monitor:    %d\n", i->monitor_pid);
	printf("restarts:   %u\n", i->restarts);
	if (i->storage_lost)
		printf("stopped:    its pool's mount died under it\n");
	if (i->last_exit >= 0)
		printf("last exit:  %s %d\n", WIFSIGNALED(i->last_exit) ? "signal" : "code",
		       WIFSIGNALED(i->last_exit) ? WTERMSIG(i->last_exit)
						 : WEXITSTATUS(i->last_exit));
	printf("ids:        %u-%u\n", i->id_base, i->id_base + HSP_IDMAP_SIZE - 1);
	if (i->ip)
		printf("network:    %s on %s%s%s\n", i->ip, i->bridge, i->gateway ? " via " : "",
		       i->gateway ? i->gateway : "");
	printf("limits:\n");
	print_limit("memory", l->set & HSP_LIMIT_MEMORY, l->memory, true);
	print_limit("swap", l->set & HSP_LIMIT_SWAP, l->swap, true);
	if (l->set & HSP_LIMIT_CPUS && l->cpus_milli)
		printf("  %-11s %.2f\n", "cpus", l->cpus_milli / 1000.0);
	else
		print_limit("cpus", l->set & HSP_LIMIT_CPUS, 0, false);
	print_limit("cpu-weight", l->set & HSP_LIMIT_CPU_WEIGHT, l->cpu_weight, false);
	print_limit("pids", l->set & HSP_LIMIT_PIDS, l->pids, false);
	print_limit("io-weight", l->set & HSP_LIMIT_IO_WEIGHT, l->io_weight, false);
	print_limit("disk", l->set & HSP_LIMIT_DISK, l->disk, true);
	if (i->status == HSP_VE_STOPPED)
		return;
	char m[32], s[32];
	cli_format_size(i->usage.memory, m, sizeof(m));
	cli_format_size(i->usage.swap, s, sizeof(s));
	printf("usage:\n  memory      %s\n  swap        %s\n  cpu         %.3fs\n  pids        "
	       "%" PRIu64 "\n",
	       m, s, i->usage.cpu_ns / 1e9, i->usage.pids);
}

int cmd_state(struct cli *g, int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j')
			return cli_bad_option("state", argv);
		json = true;
	}
	if (optind + 1 != argc)
		return cli_usage("state: expected exactly one VE name");
	hsp_runtime_t *rt;
	if (cli_open(g, &rt))
		return 1;
	hsp_error_t err = NULL;
	struct hsp_ve_info info;
	int r = hsp_ve_info(rt, argv[optind], &info, &err);
	hsp_runtime_close(rt);
	if (r < 0)
		return cli_fail(&err);
	if (json) {
		json_object *o = cli_info_json(&info);
		cli_print_json(o);
		json_object_put(o);
	} else {
		print_human(&info);
	}
	hsp_ve_info_clear(&info);
	return 0;
}
