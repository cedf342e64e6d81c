package privdrop

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/cap"
)

// EnvIdentity is the environment variable through which [Prepare] tells
// the child which identity to complete. [Complete] removes it.
const EnvIdentity = "MPM_PRIVDROP_IDENTITY"

// ErrNotPrepared is returned by [Complete] in a process that was not
// started by [Prepare].
var ErrNotPrepared = errors.New("privdrop: process was not started by Prepare (" + EnvIdentity + " is not set)")

// Prepare sets up cmd so that the process it starts becomes id once it
// calls [Complete] (normally first thing in main). The calling process must
// hold CAP_SETUID, CAP_SETGID and CAP_SETPCAP (plus CAP_SYS_CHROOT for a
// Chroot and CAP_SYS_NICE for a negative Nice) in its permitted, effective
// and bounding sets, as a master trimmed with [Trim] does.
//
// The split exists because os/exec can set the uids, gids and groups of a
// child but cannot empty its bounding set, set no_new_privs or chroot it
// without the executable inside the jail. So the child starts holding, as
// ambient capabilities, only what [Complete] needs to finish the drop:
// CAP_SETUID, CAP_SETGID and CAP_SETPCAP, and CAP_SYS_CHROOT or
// CAP_SYS_NICE when id needs them. libcap's cap.Launcher is not used: it
// ignores SetChroot when a callback sets the process attributes, and a
// Pdeathsig set through it fires when its launch thread exits (see
// DESIGN.md).
//
// The child starts as the caller's uid (root), not as id: a process that
// runs as id from its first instruction is dumpable after execve until it
// clears that itself, and in that window any process of id's uid (the
// tenant's own code) could attach to it or open its descriptors through
// /proc while it still holds capabilities and no no_new_privs. A process
// of uid 0 is out of the tenant's reach, and the kernel makes it not
// dumpable at the moment its uid changes. Under a master trimmed with
// [Trim] (SECBIT_NOROOT locked), uid 0 gives the child no capability
// beyond the ambient ones.
//
// Prepare keeps fields of an existing cmd.SysProcAttr (Setpgid, Pdeathsig,
// ...) and appends EnvIdentity to cmd.Env (to os.Environ() when cmd.Env is
// nil).
func Prepare(cmd *exec.Cmd, id Identity) error {
	if id.UID == 0 || id.GID == 0 {
		return fmt.Errorf("privdrop: prepare child as %s: %w", id, ErrRoot)
	}
	ambient := []cap.Value{cap.SETUID, cap.SETGID, cap.SETPCAP}
	if id.Chroot != "" {
		ambient = append(ambient, cap.SYS_CHROOT)
	}
	if id.Nice < 0 {
		ambient = append(ambient, cap.SYS_NICE)
	}
	need := ambient
	have, err := cap.GetPID(0)
	if err != nil {
		return fmt.Errorf("privdrop: prepare child as %s: read capabilities: %w", id, err)
	}
	var missing []string
	for _, v := range need {
		p, _ := have.GetFlag(cap.Permitted, v)
		e, _ := have.GetFlag(cap.Effective, v)
		b, _ := cap.GetBound(v)
		if !p || !e || !b {
			missing = append(missing, v.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("privdrop: prepare child as %s: this process (euid %d) lacks %s in its permitted, effective or bounding set: %w",
			id, os.Geteuid(), strings.Join(missing, ","), ErrNotAllowed)
	}

	enc, err := json.Marshal(id)
	if err != nil {
		return fmt.Errorf("privdrop: prepare child as %s: %w", id, err)
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if cmd.SysProcAttr.Credential != nil {
		return fmt.Errorf("privdrop: prepare child as %s: cmd.SysProcAttr.Credential is set: the child changes its own credentials in Complete", id)
	}
	cmd.SysProcAttr.AmbientCaps = cmd.SysProcAttr.AmbientCaps[:0]
	for _, v := range ambient {
		cmd.SysProcAttr.AmbientCaps = append(cmd.SysProcAttr.AmbientCaps, uintptr(v))
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, EnvIdentity+"="+string(enc))
	return nil
}

// Complete finishes, in a child started by a command set up with
// [Prepare], the drop to the identity the parent chose, exactly as [Drop]
// would, and returns that identity. Call it before anything else in main:
// until it returns the process holds capabilities. It returns
// ErrNotPrepared when the process was not started that way.
func Complete() (Identity, error) {
	// Not dumpable before anything else: a process started by Prepare is
	// root's, but one started another way may already be the identity's.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return Identity{}, fmt.Errorf("privdrop: complete: clear dumpable: %w", os.NewSyscallError("prctl", err))
	}
	var id Identity
	v, ok := os.LookupEnv(EnvIdentity)
	if !ok {
		return id, ErrNotPrepared
	}
	// Programs this process starts later (php-cgi) must not see it.
	os.Unsetenv(EnvIdentity)
	if err := json.Unmarshal([]byte(v), &id); err != nil {
		return id, fmt.Errorf("privdrop: complete: bad %s %q: %w", EnvIdentity, v, err)
	}
	return id, Drop(id)
}
