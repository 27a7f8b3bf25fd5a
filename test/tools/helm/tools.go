//go:build tools

// Package helm pins the helm command that the chart's tests (test/e2e/helm.test.ts) run.
// It is never imported: the blank import only makes `go build` of helm's main package
// resolve through this module's go.mod and go.sum (test/tools/build.sh helm).
package helm

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
