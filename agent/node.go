package agent

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/berth-dev/berth/agent/fingerprint"
	"github.com/berth-dev/berth/structs"
)

// buildNode fingerprints the host and the drivers into the node the agent
// registers.
func (a *Agent) buildNode(ctx context.Context) (*structs.Node, error) {
	host, err := fingerprint.Fingerprint(fingerprint.Options{
		DataDir: a.cfg.DataDir, AdvertiseIP: a.cfg.AdvertiseAddr, Version: a.cfg.Version,
	})
	if err != nil {
		return nil, fmt.Errorf("fingerprint host: %w", err)
	}
	res := host.Resources
	res.MinDynamicPort, res.MaxDynamicPort = a.cfg.MinDynamicPort, a.cfg.MaxDynamicPort
	r := a.cfg.ReservedResources
	n := &structs.Node{
		ID:            a.nodeID,
		SecretID:      a.secret,
		Datacenter:    a.cfg.Datacenter,
		Name:          a.cfg.NodeName,
		HTTPAddr:      a.HTTPAddr(),
		Attributes:    host.Attributes,
		NodeResources: &res,
		ReservedResources: &structs.NodeReservedResources{
			Cpu:      structs.NodeReservedCpuResources{CpuShares: uint64(r.CPU)},
			Memory:   structs.NodeReservedMemoryResources{MemoryMB: uint64(r.MemoryMB)},
			Disk:     structs.NodeReservedDiskResources{DiskMB: uint64(r.DiskMB)},
			Networks: structs.NodeReservedNetworkResources{ReservedHostPorts: r.Ports},
		},
		Meta:                  maps.Clone(a.cfg.Meta),
		NodeClass:             a.cfg.NodeClass,
		NodePool:              a.cfg.NodePool,
		SchedulingEligibility: structs.NodeSchedulingEligible,
		Status:                structs.NodeStatusReady,
	}
	if n.Meta == nil {
		n.Meta = map[string]string{}
	}
	n.Attributes["unique.advertise.address"] = n.HTTPAddr
	if name := a.net.pluginName(); name != "" {
		// asks the servers for an allocation subnet
		n.Attributes[structs.NodeNetworkPluginAttribute] = name
	}
	n.Drivers, _ = a.plugins.fingerprint(ctx)
	applyDriverAttributes(n)
	return n, nil
}

// applyDriverAttributes sets driver.<name>=1 (and the driver's own
// attributes) for every detected and healthy driver, as Nomad does.
func applyDriverAttributes(n *structs.Node) {
	for name, d := range n.Drivers {
		if d.Detected && d.Healthy {
			n.Attributes["driver."+name] = "1"
			maps.Copy(n.Attributes, d.Attributes)
		}
	}
}

// fingerprintLoop re-fingerprints the drivers periodically and registers
// again when their detection or health changed.
func (a *Agent) fingerprintLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.FingerprintInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		drivers, _ := a.plugins.fingerprint(ctx)
		cur := a.Node()
		if driversEqual(cur.Drivers, drivers) {
			continue
		}
		a.logger.Info("driver fingerprint changed, registering again")
		n := *cur
		n.Attributes = maps.Clone(cur.Attributes)
		for name := range cur.Drivers {
			delete(n.Attributes, "driver."+name)
		}
		n.Drivers = drivers
		applyDriverAttributes(&n)
		a.setNode(&n)
		select {
		case a.reregister <- struct{}{}:
		default:
		}
	}
}

func driversEqual(a, b map[string]*structs.DriverInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y := b[k]
		if y == nil || x.Detected != y.Detected || x.Healthy != y.Healthy || !maps.Equal(x.Attributes, y.Attributes) {
			return false
		}
	}
	return true
}
