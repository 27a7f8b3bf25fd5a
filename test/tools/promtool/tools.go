//go:build tools

// Package promtool pins the Prometheus rule checker the alert tests run
// (test/unit/alerts.test.ts). It is never imported: the blank import only makes
// `go build` of promtool resolve through this module's go.mod and go.sum.
package promtool

import (
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
