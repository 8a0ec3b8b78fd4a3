package config

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"
	"syscall"
)

// ServiceGroup is the group the packaged service runs as
// (config/systemd): a file of that group may be group-readable.
const ServiceGroup = "groupbridge"

// FileModeWarning returns a warning when the configuration file at path
// can be read by users other than its owner and groupbridge itself: every
// valid configuration holds PINs, and may hold SIP passwords and the admin
// token. It returns "" when the mode is fine.
//
// Readable by others (o+r) always warrants the warning. Readable by its
// group does not when that group is one this process runs in (the service
// reading its own file) or is ServiceGroup (`config check` run by root
// before the service starts, as the README's install steps do).
func FileModeWarning(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("config: %w", err)
	}
	gid := -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		gid = int(st.Gid)
	}
	groups, _ := os.Getgroups()
	groups = append(groups, os.Getegid())
	group := strconv.Itoa(gid)
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return modeWarning(path, fi.Mode(), group, slices.Contains(groups, gid)), nil
}

// modeWarning decides for a file of mode whose group is group;
// ownGroup tells whether this process is in that group.
func modeWarning(path string, mode fs.FileMode, group string, ownGroup bool) string {
	perm := mode.Perm()
	switch {
	case perm&0o004 != 0:
		return fmt.Sprintf("%s is readable by every user of this machine (mode %04o) and holds PINs and passwords: chmod o-rwx %s", path, perm, path)
	case perm&0o040 != 0 && !ownGroup && group != ServiceGroup:
		return fmt.Sprintf("%s is readable by group %q (mode %04o) and holds PINs and passwords: chmod g-rwx %s, or chgrp %s %s", path, group, perm, path, ServiceGroup, path)
	}
	return ""
}
