package hoststats

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/api"
)

// fsUsage is what statfs(2) says of a filesystem, in bytes and inodes.
type fsUsage struct {
	Size, Free, Avail  uint64
	Inodes, InodesFree uint64
}

func statfsUsage(path string) (fsUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fsUsage{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	// block counts are in fragment-size units; Frsize is 0 on kernels that
	// predate it, where Bsize is the unit
	unit := uint64(st.Frsize)
	if unit == 0 {
		unit = uint64(st.Bsize)
	}
	return fsUsage{
		Size: st.Blocks * unit, Free: st.Bfree * unit, Avail: st.Bavail * unit,
		Inodes: st.Files, InodesFree: st.Ffree,
	}, nil
}

// diskStats converts statfs figures the way df does: used is what is not
// free, and the used percentage is of what non-root users can have
// (used + available), so a full disk reads 100% despite the root reserve.
func diskStats(device, mountpoint string, u fsUsage) *api.HostDiskStats {
	used := u.Size - min(u.Free, u.Size)
	s := &api.HostDiskStats{Device: device, Mountpoint: mountpoint, Size: u.Size, Used: used, Available: u.Avail}
	if used+u.Avail > 0 {
		s.UsedPercent = 100 * float64(used) / float64(used+u.Avail)
	}
	if u.Inodes > 0 { // btrfs and others report no inode counts
		s.InodesUsedPercent = 100 * float64(u.Inodes-min(u.InodesFree, u.Inodes)) / float64(u.Inodes)
	}
	return s
}

// RealMounts keeps the mounts of block-device filesystems (types in
// realFS; when that is empty, sources under /dev/), one per device: bind
// mounts of the same filesystem are reported once, at the shortest
// mountpoint. The result is sorted by mountpoint.
func RealMounts(mounts []Mount, realFS map[string]bool) []Mount {
	byDev := map[uint64]Mount{}
	for _, m := range mounts {
		isReal := realFS[m.FSType]
		if len(realFS) == 0 {
			isReal = strings.HasPrefix(m.Source, "/dev/")
		}
		if !isReal {
			continue
		}
		if have, ok := byDev[m.Device]; !ok || len(m.Mountpoint) < len(have.Mountpoint) {
			byDev[m.Device] = m
		}
	}
	out := make([]Mount, 0, len(byDev))
	for _, m := range byDev {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mountpoint < out[j].Mountpoint })
	return out
}

// MountOf returns the mount holding path (absolute and clean): the one
// with the longest mountpoint that is path or a parent of it; the last
// such mount wins, since later mounts cover earlier ones.
func MountOf(mounts []Mount, path string) (Mount, bool) {
	var best Mount
	found := false
	for _, m := range mounts {
		if !within(path, m.Mountpoint) {
			continue
		}
		if !found || len(m.Mountpoint) >= len(best.Mountpoint) {
			best, found = m, true
		}
	}
	return best, found
}

func within(path, dir string) bool {
	if dir == "/" || path == dir {
		return true
	}
	return strings.HasPrefix(path, dir+"/")
}

func (c *Collector) disks() ([]*api.HostDiskStats, *api.HostDiskStats, error) {
	data, err := c.readProc("self/mountinfo")
	if err != nil {
		return nil, nil, err
	}
	mounts, err := ParseMountinfo(data)
	if err != nil {
		return nil, nil, fmt.Errorf("host stats: %w", err)
	}
	var realFS map[string]bool
	if fsData, err := c.readProc("filesystems"); err == nil {
		realFS = ParseFilesystems(fsData)
	} else {
		c.logger.Debug("no filesystem list: reporting mounts of /dev/ sources", "error", err)
	}
	var disks []*api.HostDiskStats
	for _, m := range RealMounts(mounts, realFS) {
		u, err := c.statfs(m.Mountpoint)
		if err != nil {
			c.logger.Debug("filesystem left out of host stats", "mountpoint", m.Mountpoint, "error", err)
			continue
		}
		disks = append(disks, diskStats(m.Source, m.Mountpoint, u))
	}
	return disks, c.allocDir(mounts), nil
}

// allocDir measures the filesystem of the data directory, whatever its
// type (a tmpfs data dir of a dev agent counts too).
func (c *Collector) allocDir(mounts []Mount) *api.HostDiskStats {
	if c.dataDir == "" {
		return nil
	}
	dir, err := filepath.Abs(c.dataDir)
	if err == nil {
		// mountinfo lists resolved paths
		if resolved, rerr := filepath.EvalSymlinks(dir); rerr == nil {
			dir = resolved
		}
	}
	u, err := c.statfs(dir)
	if err != nil {
		c.logger.Warn("data directory left out of host stats", "data_dir", c.dataDir, "error", err)
		return nil
	}
	m, _ := MountOf(mounts, dir)
	return diskStats(m.Source, m.Mountpoint, u)
}
