package cgroup

// SetKillFile makes Group.Kill use cgroup.kill (true, the default) or the
// signal loop of kernels before 5.14 (false).
func SetKillFile(use bool) (restore func()) {
	old := useKillFile
	useKillFile = use
	return func() { useKillFile = old }
}

// SetLimitControllers replaces the controllers OpenParent enables: a test
// on a host whose v2 tree has none of cpu, memory and pids can still
// exercise the enabling with another one (hugetlb).
func SetLimitControllers(c []string) (restore func()) {
	old := limitControllers
	limitControllers = c
	return func() { limitControllers = old }
}
