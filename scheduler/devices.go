package scheduler

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/structs"
)

// Devices are simple for now: a node lists what it has as attributes
// "device.<vendor>/<type>/<model>" = count, and a task's device block asks
// for a count of a name ("type", "vendor/type" or "vendor/type/model").
const deviceAttrPrefix = "device."

type nodeDevice struct {
	key   string // vendor/type/model
	count int
}

func nodeDevices(n *structs.Node) []nodeDevice {
	var out []nodeDevice
	for k, v := range n.Attributes {
		key, ok := strings.CutPrefix(k, deviceAttrPrefix)
		if !ok || strings.Count(key, "/") != 2 {
			continue
		}
		if c, err := strconv.Atoi(v); err == nil && c > 0 {
			out = append(out, nodeDevice{key: key, count: c})
		}
	}
	return out
}

func deviceKey(d *structs.AllocatedDeviceResource) string {
	return d.Vendor + "/" + d.Type + "/" + d.Name
}

// nodeHasDevices reports whether the node has enough devices of every
// requested kind, used or not.
func nodeHasDevices(n *structs.Node, reqs []*structs.RequestedDevice) bool {
	devs := nodeDevices(n)
	for _, r := range reqs {
		total := 0
		for _, d := range devs {
			if deviceMatches(r.Name, d.key) {
				total += d.count
			}
		}
		if uint64(total) < max(r.Count, 1) {
			return false
		}
	}
	return true
}

// deviceFree returns the free count per device key on the node.
func deviceFree(u *nodeUsage) map[string]int {
	free := map[string]int{}
	for _, d := range nodeDevices(u.node) {
		free[d.key] = d.count
	}
	for _, a := range u.allocs {
		if a.AllocatedResources == nil {
			continue
		}
		for _, t := range a.AllocatedResources.Tasks {
			for _, d := range t.Devices {
				free[deviceKey(d)] -= len(d.DeviceIDs)
			}
		}
	}
	return free
}

// assignDevices picks devices for a task's requests from free, or reports
// false when they do not fit.
func assignDevices(free map[string]int, reqs []*structs.RequestedDevice) ([]*structs.AllocatedDeviceResource, bool) {
	var out []*structs.AllocatedDeviceResource
	for _, r := range reqs {
		need := int(max(r.Count, 1))
		placed := false
		for _, key := range slices.Sorted(maps.Keys(free)) {
			f := free[key]
			if f < need || !deviceMatches(r.Name, key) {
				continue
			}
			parts := strings.Split(key, "/")
			ad := &structs.AllocatedDeviceResource{Vendor: parts[0], Type: parts[1], Name: parts[2]}
			for i := range need {
				ad.DeviceIDs = append(ad.DeviceIDs, key+"#"+strconv.Itoa(f-need+i))
			}
			free[key] = f - need
			out = append(out, ad)
			placed = true
			break
		}
		if !placed {
			return nil, false
		}
	}
	return out, true
}

func devicesFit(u *nodeUsage, ask *tgAsk) string {
	free := deviceFree(u)
	for _, t := range ask.tasks {
		if _, ok := assignDevices(free, t.devices); !ok {
			return "devices"
		}
	}
	return ""
}
