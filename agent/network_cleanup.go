package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/plugins/network"
)

// writeNetworkConfig records the config the plugin accepted, so that
// -cleanup-network can configure it the same way (and find what it
// installed) while the agent is not running.
func writeNetworkConfig(cfg *network.Config) error {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("network state dir: %w", err)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode network config: %w", err)
	}
	tmp := filepath.Join(cfg.StateDir, networkConfigFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write network config: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(cfg.StateDir, networkConfigFile)); err != nil {
		return fmt.Errorf("write network config: %w", err)
	}
	return nil
}

// placeholderSubnet configures a plugin that has no recorded config only
// so that it accepts Cleanup (which removes what SetConfig created too).
const (
	placeholderCluster = "10.88.0.0/16"
	placeholderSubnet  = "10.88.0.0/24"
)

// CleanupNetwork removes everything the agent's network plugin installed
// on this node (allocation namespaces, veths, routes, the bridge, the
// nftables table), for `berth agent -cleanup-network`. The plugin is
// configured with the last config it accepted on this data dir, so it
// knows its allocations; without one it still removes the node-wide
// parts. The agent must not be running.
func CleanupNetwork(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if logger != nil {
		cfg.Logger = logger
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Network == nil && cfg.NetworkPlugin == "" {
		return errors.New("cleanup network: no network plugin configured")
	}
	if cfg.DataDir == "" {
		return errors.New("cleanup network: a data dir is required")
	}
	if cfg.PluginCommand == nil {
		cfg.PluginCommand = defaultPluginCommand
	}
	stateDir := filepath.Join(cfg.DataDir, "network")
	ncfg := &network.Config{StateDir: stateDir, Bridge: cfg.Bridge, ClusterCIDR: placeholderCluster, NodeSubnet: placeholderSubnet, Routing: network.RoutingHostGW}
	if b, err := os.ReadFile(filepath.Join(stateDir, networkConfigFile)); err == nil {
		var saved network.Config
		if err := json.Unmarshal(b, &saved); err != nil {
			return fmt.Errorf("cleanup network: read %s: %w", networkConfigFile, err)
		}
		ncfg = &saved
	}
	n := cfg.Network
	if n == nil {
		sup := network.NewSupervisor(network.SupervisorConfig{
			Name: cfg.NetworkPlugin, Command: networkCommand(&cfg), Config: ncfg, Logger: cfg.Logger,
		})
		sctx, cancel := context.WithTimeout(ctx, pluginStartTimeout)
		defer cancel()
		if err := sup.Start(sctx); err != nil {
			return fmt.Errorf("cleanup network: start plugin: %w", err)
		}
		defer sup.Stop()
		n = sup.Network()
	} else if err := n.SetConfig(ctx, ncfg); err != nil {
		return fmt.Errorf("cleanup network: configure: %w", err)
	}
	if err := n.Cleanup(ctx); err != nil {
		return fmt.Errorf("cleanup network: %w", err)
	}
	if err := os.Remove(filepath.Join(stateDir, networkConfigFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cleanup network: %w", err)
	}
	return nil
}
