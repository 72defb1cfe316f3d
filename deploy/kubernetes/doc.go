// Package kubernetes holds no code: its tests validate the manifests in
// this directory (the metricsd DaemonSet and its namespace) by decoding them
// strictly into the k8s.io/api types and checking what a node agent needs,
// and run the DaemonSet's container spec on a test dockerd. It is a module
// of its own so that the library's go.mod does not carry the Kubernetes
// API types.
package kubernetes
