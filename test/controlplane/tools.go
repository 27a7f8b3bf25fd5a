//go:build tools

// Package controlplane pins the Kubernetes and etcd commands that the end-to-end
// tests run. It is never imported: the blank imports only make `go build` of these
// main packages resolve through this module's go.mod and go.sum.
package controlplane

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
