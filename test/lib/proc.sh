# shellcheck shell=bash
# Processes, for the test scripts (sourced).

# alive PID: one of the process's threads is not a zombie.  PID 1 here
# reaps no one, so kill -0 succeeds on a zombie; and a killed program's main
# thread turns zombie while its other threads still exit, holding its files
# and locks (a daemon's pid file, say).
alive() {
	local st t
	for t in /proc/"$1"/task/*/stat; do
		read -r st 2>/dev/null <"$t" || continue
		st=${st##*) }
		case ${st%% *} in Z | X | "") ;; *) return 0 ;; esac
	done
	return 1
}
