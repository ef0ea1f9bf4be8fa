#!/usr/bin/python3
# Mon commands for cluster.sh, all through librados in one process.
#
# Why Python and not the `ceph` CLI: every `ceph` call pays 0.2-0.5 s of
# start-up and authentication, and `up` needs four commands; one librados
# session does them in a few paxos rounds.  Why not a C helper: Debian's
# python3-rados is the same librados with nothing to compile, so the script
# works straight from a checkout.  It must run under Debian's /usr/bin/python3:
# the `python3` first on PATH may be a build without the rados module.
#
#   monctl.py CONF setup OSD_UUID OSD_LOG -- OSD_CMD...
#       creates osd.0, then starts it with OSD_CMD (output to OSD_LOG) so it
#       boots while the pools cephfs_metadata and cephfs_data and the file
#       system cephfs are made; returns once an MDS is active (a client mount
#       fails at once, rather than waiting, while none is).
#   monctl.py CONF authorize ENTITY PATH PERMS
#                                      `fs authorize cephfs`; prints the keyring
#   monctl.py CONF mds-gid            prints the gid of the active MDS (0: none)
#   monctl.py CONF wait [osd PID | mds GID]
#                                      returns once osd.0 is up and an MDS is
#                                      active: an OSD whose address nonce is
#                                      PID (the daemon's pid: a restarted one),
#                                      an MDS other than GID (the one killed)
#
# CONF names the cluster and the admin keyring (client.admin).  Errors: one
# line on stderr, exit status 1.
import concurrent.futures
import json
import subprocess
import sys
import time

try:
    import rados
except ImportError:
    sys.stderr.write("monctl: %s cannot import rados (package python3-rados)\n"
                     % sys.executable)
    sys.exit(1)

TIMEOUT = 30  # seconds, for connecting and for each command


class Failure(Exception):
    pass


def fail(msg):
    raise Failure(msg)


def command(cluster, what, **args):
    args["prefix"] = what
    args["format"] = "json"
    try:
        ret, out, outs = cluster.mon_command(json.dumps(args), b"", timeout=TIMEOUT)
    except rados.Error as e:
        fail("%s: %s" % (what, e))
    if ret != 0:
        fail("%s: %s (error %d)" % (what, outs.strip() or "failed", -ret))
    return out


def active_mds_gid(cluster):
    fsmap = json.loads(command(cluster, "fs dump"))
    for fs in fsmap.get("filesystems", []):
        for info in fs["mdsmap"]["info"].values():
            if info["state"] == "up:active":
                return info["gid"]
    return 0


def mds_active(cluster):
    return active_mds_gid(cluster) != 0


def setup(cluster, osd_uuid, osd_log, osd_cmd):
    def osd():
        command(cluster, "osd new", uuid=osd_uuid, id=0)
        # The daemon forks; its first process exits once the OSD runs.
        with open(osd_log, "wb") as log:
            if subprocess.call(osd_cmd, stdin=subprocess.DEVNULL, stdout=log,
                               stderr=subprocess.STDOUT) != 0:
                fail("ceph-osd failed (log: %s)" % osd_log)

    def pool(name):
        command(cluster, "osd pool create", pool=name, pg_num=8, pgp_num=8)

    # Concurrent commands share a paxos round, and the OSD boots meanwhile
    # (librados drops the GIL while it waits).
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        osd_started = ex.submit(osd)
        pools = [ex.submit(pool, p) for p in ("cephfs_metadata", "cephfs_data")]
        for p in pools:
            p.result()
        command(cluster, "fs new", fs_name="cephfs", metadata="cephfs_metadata",
                data="cephfs_data")
        osd_started.result()
    deadline = time.monotonic() + TIMEOUT
    while not mds_active(cluster):
        if time.monotonic() > deadline:
            fail("no MDS became active within %d s" % TIMEOUT)
        time.sleep(0.01)


def osd_up(cluster, pid):
    for o in json.loads(command(cluster, "osd dump")).get("osds", []):
        if o.get("osd") != 0 or o.get("up") != 1:
            continue
        nonces = [a.get("nonce") for a in o.get("public_addrs", {}).get("addrvec", [])]
        return pid is None or pid in nonces
    return False


def wait(cluster, what=None, arg=None):
    pid = int(arg) if what == "osd" else None
    old_gid = int(arg) if what == "mds" else None
    deadline = time.monotonic() + TIMEOUT
    while True:
        gid = active_mds_gid(cluster)
        if gid != 0 and gid != old_gid and osd_up(cluster, pid):
            return
        if time.monotonic() > deadline:
            fail("osd.0 not up or no MDS active within %d s" % TIMEOUT)
        time.sleep(0.02)


def authorize(cluster, entity, path, perms):
    out = command(cluster, "fs authorize", filesystem="cephfs", entity=entity,
                  caps=[path, perms])
    # With format=json the answer is the keyring as a list of entities.
    try:
        ent = json.loads(out)[0]
        key = ent["key"]
        caps = ent.get("caps", {})
    except (ValueError, LookupError, TypeError):
        fail("fs authorize: unexpected answer: %r" % out[:200])
    lines = ["[%s]" % entity, "\tkey = %s" % key]
    for svc in sorted(caps):
        lines.append('\tcaps %s = "%s"' % (svc, caps[svc]))
    sys.stdout.write("\n".join(lines) + "\n")


def main():
    argv = sys.argv[1:]
    usage = ("usage: monctl.py CONF setup OSD_UUID OSD_LOG -- OSD_CMD... | "
             "CONF authorize ENTITY PATH PERMS | CONF mds-gid | "
             "CONF wait [osd PID | mds GID]")
    if len(argv) < 2:
        fail(usage)
    conf, verb, args = argv[0], argv[1], argv[2:]
    if verb == "setup" and len(args) >= 4 and args[2] == "--":
        args = [args[0], args[1], args[3:]]
    elif not ((verb == "authorize" and len(args) == 3) or (verb == "mds-gid" and not args) or
              (verb == "wait" and (not args or (len(args) == 2 and args[0] in ("osd", "mds")
                                                and args[1].isdigit())))):
        fail(usage)
    try:
        cluster = rados.Rados(conffile=conf, name="client.admin",
                              conf={"rados_mon_op_timeout": str(TIMEOUT)})
        cluster.connect(timeout=TIMEOUT)
    except rados.Error as e:
        fail("cannot connect to the cluster: %s" % e)
    try:
        if verb == "setup":
            setup(cluster, *args)
        elif verb == "wait":
            wait(cluster, *args)
        elif verb == "mds-gid":
            print(active_mds_gid(cluster))
        else:
            authorize(cluster, *args)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        sys.stderr.write("monctl: %s\n" % " ".join(str(e).split()))
        sys.exit(1)
