package command

import (
	"fmt"
	"io"

	"github.com/berth-dev/berth/api"
	"github.com/berth-dev/berth/structs"
)

// printHostStats prints a node's host usage as Nomad's `node status
// -stats` does: a one-line summary, then each CPU, memory and each disk.
func printHostStats(w io.Writer, n *structs.Node, s *api.HostStats) error {
	cpu := fmt.Sprintf("%.0f MHz", s.CPUTicksConsumed)
	if r := n.NodeResources; r != nil && r.Cpu.CpuShares > 0 {
		cpu = fmt.Sprintf("%.0f/%d MHz", s.CPUTicksConsumed, r.Cpu.CpuShares)
	}
	mem, disk := "<none>", "<none>"
	if m := s.Memory; m != nil {
		mem = humanBytes(m.Used) + "/" + humanBytes(m.Total)
	}
	// the data dir's filesystem is what allocations use
	if d := s.AllocDirStats; d != nil {
		disk = humanBytes(d.Used) + "/" + humanBytes(d.Size)
	}
	fmt.Fprintln(w, "\nHost Resource Utilization")
	if err := writeTable(w, []string{"CPU", "Memory", "Disk"}, [][]string{{cpu, mem, disk}}); err != nil {
		return err
	}
	if len(s.CPU) > 0 {
		rows := make([][]string, 0, len(s.CPU))
		for _, c := range s.CPU {
			rows = append(rows, []string{c.CPU, percent(c.User), percent(c.System), percent(c.Idle)})
		}
		fmt.Fprintln(w, "\nCPU Stats")
		if err := writeTable(w, []string{"CPU", "User", "System", "Idle"}, rows); err != nil {
			return err
		}
	}
	if m := s.Memory; m != nil {
		fmt.Fprintln(w, "\nMemory Stats")
		if err := writeKV(w, []kv{
			{"Total", humanBytes(m.Total)}, {"Available", humanBytes(m.Available)},
			{"Used", humanBytes(m.Used)}, {"Free", humanBytes(m.Free)},
		}); err != nil {
			return err
		}
	}
	if len(s.DiskStats) > 0 {
		rows := make([][]string, 0, len(s.DiskStats))
		for _, d := range s.DiskStats {
			rows = append(rows, []string{d.Device, d.Mountpoint, humanBytes(d.Size), humanBytes(d.Used),
				humanBytes(d.Available), percent(d.UsedPercent), percent(d.InodesUsedPercent)})
		}
		fmt.Fprintln(w, "\nDisk Stats")
		if err := writeTable(w, []string{"Device", "Mountpoint", "Size", "Used", "Available", "Used %", "Inodes %"}, rows); err != nil {
			return err
		}
	}
	return nil
}

func percent(v float64) string { return fmt.Sprintf("%.2f%%", v) }

// humanBytes prints bytes in binary units, as Nomad's CLI does.
func humanBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < 5; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
