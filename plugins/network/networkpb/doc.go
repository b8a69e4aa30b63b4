// Package networkpb is the generated gRPC code of the network contract,
// from plugins/network/proto/network.proto (regenerate with `make proto`).
// Use it through plugins/network, never directly.
package networkpb
