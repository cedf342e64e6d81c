package privdrop

import (
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
)

// Resolve builds an Identity from a user and an optional group, each given
// as a name ("alice") or a number ("2001"), and checks it against p.
//
// For a user found in the user database, the group defaults to the user's
// primary group and the supplementary groups are the user's memberships
// plus the chosen group, as initgroups(3) would set them (and as mpm-itk
// and PHP-FPM do). A number with no database entry is used as is; it then
// needs an explicit group and gets no supplementary groups.
func Resolve(userSpec, groupSpec string, p Policy) (Identity, error) {
	var id Identity
	if userSpec == "" {
		return id, errors.New("privdrop: resolve: empty user")
	}
	var u *user.User
	if n, err := strconv.ParseUint(userSpec, 10, 32); err == nil {
		id.UID = uint32(n)
		u, _ = user.LookupId(userSpec) // a bare number need not exist
	} else {
		u, err = user.Lookup(userSpec)
		if err != nil {
			return id, fmt.Errorf("privdrop: resolve user %q: %w (%v)", userSpec, ErrUnknown, err)
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			return id, fmt.Errorf("privdrop: resolve user %q: bad uid %q", userSpec, u.Uid)
		}
		id.UID = uint32(uid)
	}
	if u != nil {
		id.Name = u.Username
	}

	switch {
	case groupSpec != "":
		gid, err := lookupGroup(groupSpec)
		if err != nil {
			return id, fmt.Errorf("privdrop: resolve group %q for user %q: %w", groupSpec, userSpec, err)
		}
		id.GID = gid
	case u != nil:
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			return id, fmt.Errorf("privdrop: resolve user %q: bad primary gid %q", userSpec, u.Gid)
		}
		id.GID = uint32(gid)
	default:
		return id, fmt.Errorf("privdrop: resolve user %q: uid %d has no entry in the user database, so a group must be given", userSpec, id.UID)
	}

	if u != nil {
		// os/user lists the primary group first, then the groups that
		// name the user as a member: initgroups(user, gid) replaces the
		// first with the chosen gid, and so do we.
		ids, err := u.GroupIds()
		if err != nil {
			return id, fmt.Errorf("privdrop: resolve user %q: list groups: %w", userSpec, err)
		}
		id.Groups = []uint32{id.GID}
		for _, s := range ids[min(1, len(ids)):] {
			g, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return id, fmt.Errorf("privdrop: resolve user %q: bad group id %q", userSpec, s)
			}
			id.Groups = append(id.Groups, uint32(g))
		}
		slices.Sort(id.Groups)
		id.Groups = slices.Compact(id.Groups)
	}
	if err := p.Check(id); err != nil {
		return id, err
	}
	return id, nil
}

func lookupGroup(spec string) (uint32, error) {
	if n, err := strconv.ParseUint(spec, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(spec)
	if err != nil {
		return 0, fmt.Errorf("%w (%v)", ErrUnknown, err)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad gid %q", g.Gid)
	}
	return uint32(n), nil
}
