// Package corpus runs real-world job files from the shared job file corpus,
// unmodified, on an in-process berth server and agent with real containerd:
// every image the files name (redis:7, ghcr.io/…) is pulled through a
// registry mirror that serves berth's test image under those names, as an
// air-gapped cluster would pull from its own mirror.
//
// The package has tests only; this file holds its documentation.
package corpus
