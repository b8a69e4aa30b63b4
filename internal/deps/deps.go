// Package deps pins modules the agent work needs while it is in progress.
// Removed once the packages that import them land.
package deps

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/containerd/containerd"
	_ "github.com/containerd/containerd/remotes/docker"
	_ "github.com/creack/pty"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/mutate"
	_ "github.com/google/nftables"
	_ "github.com/gorilla/websocket"
	_ "github.com/hashicorp/go-plugin"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "go.etcd.io/bbolt"
	_ "google.golang.org/grpc"
	_ "google.golang.org/protobuf/proto"
)
