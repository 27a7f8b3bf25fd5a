//go:build tools

// Package prometheus pins the Prometheus server the live-alert test runs
// (test/e2e/prometheus.test.ts), from the same github.com/prometheus/prometheus pin as
// promtool. It is never imported: the blank import only makes `go build` of the server
// resolve through this module's go.mod and go.sum. Built without the `builtinassets` tag
// (the module zip carries no compiled web UI; the test uses the HTTP API only) and with
// `remove_all_sd` (file discovery only, no cloud service discovery).
package prometheus

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
