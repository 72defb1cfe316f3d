// Package grafana holds Grafana dashboards for the metricsd sinks:
// prometheus.json (PromQL over the cAdvisor-compatible series of
// sink/prometheus) and influxdb.json (InfluxQL over the measurements of
// sink/influx). Import them in Grafana and pick the data source. The test
// checks that they are valid dashboards, that every metric, measurement and
// field they query is one the sinks write, and, with the servers of
// scripts/test.sh, that Prometheus and InfluxDB accept every query.
package grafana
