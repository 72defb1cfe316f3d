// Package grafana holds Grafana dashboards for the metricsd sinks:
// prometheus.json (PromQL over the cAdvisor-compatible series of
// sink/prometheus) and influxdb.json (InfluxQL over the measurements of
// sink/influx). Import them in Grafana and pick the data source.
//
// Both have a host variable (the daemon's host tag) and a container
// variable that follows it; every panel shows one series per host and
// container name. Network panels leave out the interfaces the
// exclude_interface variable matches, lo by default: a container's
// loopback traffic never leaves it (clear the variable to see it).
//
// The test checks that they are valid dashboards, that every metric,
// measurement and field they query is one the sinks write, that every query
// filters and groups by host and name, and, with the servers of
// scripts/test.sh, that Prometheus (promtool) and InfluxDB accept every
// query and give the expected figures on data of two hosts with lo and eth0
// traffic.
package grafana
