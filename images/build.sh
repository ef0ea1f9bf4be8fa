#!/bin/sh
# Builds an OS template into a runtime's template store:
#
#   images/build.sh TEMPLATE ROOTDIR   ->  ROOTDIR/templates/TEMPLATE/
#
# e.g. `images/build.sh busybox /var/lib/hsp`.  Each template is built by
# images/TEMPLATE/build.sh OUTDIR.
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 TEMPLATE ROOTDIR" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
template=$1
case $template in
'' | -* | *[!a-z0-9-]*) ok=no ;;
*) ok=yes ;;
esac
if [ "$ok" != yes ] || [ ! -f "$here/$template/build.sh" ]; then
	available=$(cd "$here" && for f in */build.sh; do printf ' %s' "${f%/build.sh}"; done)
	echo "images/build.sh: unknown template \`$template' (available:$available)" >&2
	exit 2
fi
exec sh "$here/$template/build.sh" "$2/templates/$template"
