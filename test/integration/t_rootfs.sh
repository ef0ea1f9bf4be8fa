# VE root file systems: one shared, read-only template tree per template
# version under each VE's own writable layer; files stored with the ids they
# have inside the VE; the host's view through `mount`.

tree_of() { json_get "$(cat "$(pool_dir)/ves/$1/config.json")" tree; }
# Where this node keeps the busybox template's trees.
trees_dir() {
	if [ "$TEST_POOL" = cephfs ]; then echo "$T/root/trees/ceph/busybox"; else echo "$T/root/templates/busybox/trees"; fi
}

test_ves_share_one_template_tree() {
	hsp create s1 --template busybox
	hsp create s2 --template busybox
	local t1 t2
	t1=$(tree_of s1)
	t2=$(tree_of s2)
	[ -n "$t1" ] || fail "no tree recorded for s1"
	assert_eq "$t1" "$t2" "tree of two VEs of one template"
	assert_eq 1 "$(find "$(trees_dir)" -mindepth 1 -maxdepth 1 | wc -l)" "trees"
	# A new VE costs its disk's empty file system (a sparse 10G image:
	# ~4 MiB), not a copy of the template.
	local kb
	if [ "$TEST_POOL" = local ]; then
		# (ceph-fuse reports a sparse file's apparent size to du.)
		kb=$(du -sk "$(pool_dir)/ves/s1" | cut -f1)
		[ "$kb" -lt 8192 ] || fail "new VE uses $kb KiB"
	fi
	# The trees are not reachable by unprivileged host users.
	assert_eq 700 "$(stat -c %a "$(trees_dir)")" "trees mode"
	assert_eq 700 "$(stat -c %a "$(pool_dir)/ves")" "ves mode"
}

test_changes_are_private_and_persist() {
	new_ve p1
	new_ve p2
	hsp exec p1 -- sh -c 'rm /bin/vi && echo one > /etc/motd && mkdir -p /srv/d && echo x > /srv/d/f'
	# p2 and the template are untouched.
	hsp exec p2 -- test -e /bin/vi || fail "p1's delete reached p2"
	if hsp exec p2 -- test -e /srv/d/f; then fail "p1's file seen in p2"; fi
	local tree
	tree="$(trees_dir)/$(tree_of p1)"
	[ -e "$tree/bin/vi" ] || fail "p1's delete reached the template tree"
	hsp stop p1
	hsp start p1
	if hsp exec p1 -- test -e /bin/vi; then fail "deleted file back after restart"; fi
	assert_eq one "$(hsp exec p1 -- cat /etc/motd)" "changed file after restart"
	assert_eq x "$(hsp exec p1 -- cat /srv/d/f)" "new file after restart"
}

test_files_keep_the_ids_they_have_inside() {
	new_ve ids
	hsp exec ids -- sh -c 'echo u:x:1000:1000::/home/u:/bin/sh >> /etc/passwd;
		mkdir /home/u && touch /home/u/f && chown -R 1000:1000 /home/u && touch /rootfile'
	local pid base
	pid=$(json_get "$(hsp state --json ids)" init_pid)
	base=$(json_get "$(hsp state --json ids)" base)
	# The kernel sees them in the VE's range ...
	assert_eq "$((base + 1000))" "$(stat -c %u "/proc/$pid/root/home/u/f")" "host view while running"
	assert_eq "$base" "$(stat -c %u "/proc/$pid/root/rootfile")" "host view of a root file"
	hsp stop ids
	# ... but they are stored as the VE's own ids, so its files do not
	# depend on the range it got on this node.
	local mnt
	mnt=$(hsp mount ids)
	assert_eq "1000 1000" "$(stat -c '%u %g' "$mnt/home/u/f")" "stored owner"
	assert_eq 1000 "$(stat -c %u "$T/run/ids/disk/upper/home/u/f")" "owner in the upper layer"
	assert_eq 0 "$(stat -c %u "$mnt/rootfile")" "stored owner of a root file"
	hsp umount ids
}

test_mount_shows_a_stopped_ve() {
	hsp create m1 --template busybox
	local mnt
	mnt=$(hsp mount m1)
	assert_eq "$(pool_dir)/ves/m1/rootfs" "$mnt" "mount point"
	[ -x "$mnt/bin/busybox" ] || fail "template files not shown"
	echo planted >"$mnt/etc/planted"
	expect_fail hsp mount m1
	assert_match 'already mounted' "$ERR"
	hsp umount m1
	expect_fail hsp umount m1
	assert_match 'not mounted' "$ERR"
	hsp start m1
	assert_eq planted "$(hsp exec m1 -- cat /etc/planted)" "file written through the mount"
	expect_fail hsp mount m1
	assert_match 'is running' "$ERR"
	hsp stop m1
	# Read-only, and destroy takes the mount down with the VE.
	mnt=$(hsp mount --read-only m1)
	if touch "$mnt/x" 2>/dev/null; then fail "read-only mount writable"; fi
	hsp destroy m1
	[ ! -e "$(pool_dir)/ves/m1" ] || fail "VE dir left"
	assert_no_match "$(pool_dir)/ves/m1" "$(cat /proc/self/mountinfo)" "mount left"
	expect_fail hsp mount nope
	assert_match 'not found' "$ERR"
}

test_reimported_template_keeps_old_ves_on_their_tree() {
	new_ve old
	local t_old
	t_old=$(tree_of old)
	# Rebuild the template as images/build.sh does: a new archive renamed
	# over the old.
	local store
	store=$(pool_dir)/templates/busybox
	mkdir "$T/src"
	tar --zstd -xf "$store/rootfs.tar.zst" -C "$T/src"
	echo v2 >"$T/src/etc/version"
	tar --zstd --numeric-owner -cf "$store/.new.tar.zst" -C "$T/src" .
	mv -f "$store/.new.tar.zst" "$store/rootfs.tar.zst"
	hsp create new --template busybox
	local t_new
	t_new=$(tree_of new)
	[ "$t_new" != "$t_old" ] || fail "new import reused the old tree"
	hsp start new
	assert_eq v2 "$(hsp exec new -- cat /etc/version)" "new VE on the new template"
	if hsp exec old -- test -e /etc/version; then fail "old VE changed under it"; fi
	hsp restart old
	if hsp exec old -- test -e /etc/version; then fail "old VE changed after restart"; fi
	# The old tree goes with its last VE.
	[ -d "$(trees_dir)/$t_old" ] || fail "old tree removed while used"
	hsp destroy --force old
	[ ! -e "$(trees_dir)/$t_old" ] || fail "unused old tree left"
	[ -d "$(trees_dir)/$t_new" ] || fail "current tree removed"
}
