// Package pluginproc is the process side of berth's go-plugin contracts,
// shared by plugins/driver and plugins/network: launching a plugin binary
// and keeping it alive in the agent (Supervisor: health pings, crash
// detection, relaunch with backoff, kill with a timeout), serving one in
// the plugin process (Serve, which exits when the agent dies), and the
// logging glue between log/slog and the hclog go-plugin speaks.
//
// It knows nothing about what a plugin does: each contract passes its
// handshake, plugin set and the type it dispenses.
package pluginproc
