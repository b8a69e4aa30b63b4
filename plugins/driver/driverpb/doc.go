// Package driverpb is the generated gRPC code of the driver contract, from
// plugins/driver/proto/driver.proto (regenerate with `make proto`). Use it
// through plugins/driver, never directly.
package driverpb
